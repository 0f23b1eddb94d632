// libFuzzer target: the order's event and snapshot decoders (domain/order_codec.cpp) on arbitrary
// bytes, with the round trip of entity_codec_contract.hpp.
#include "domain/order.hpp"
#include "fuzz/entity_codec_contract.hpp"

ORDERMESH_ENTITY_CODEC_FUZZ_TARGET(ordermesh::domain::order, -1)
