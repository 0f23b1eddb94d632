// libFuzzer target: the inventory's event and snapshot decoders (domain/inventory_codec.cpp) on
// arbitrary bytes, with the round trip of entity_codec_contract.hpp.
#include "domain/inventory.hpp"
#include "fuzz/entity_codec_contract.hpp"

ORDERMESH_ENTITY_CODEC_FUZZ_TARGET(ordermesh::domain::inventory, -1)
