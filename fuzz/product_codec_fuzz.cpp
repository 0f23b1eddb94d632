// libFuzzer target: the product's event and snapshot decoders (domain/product_codec.cpp) on
// arbitrary bytes, with the round trip of entity_codec_contract.hpp.
#include "domain/product.hpp"
#include "fuzz/entity_codec_contract.hpp"

ORDERMESH_ENTITY_CODEC_FUZZ_TARGET(ordermesh::domain::product, -1)
