// libFuzzer target: the user's event and snapshot decoders (domain/user_codec.cpp) on arbitrary
// bytes, with the round trip of entity_codec_contract.hpp.
#include "domain/user.hpp"
#include "fuzz/entity_codec_contract.hpp"

ORDERMESH_ENTITY_CODEC_FUZZ_TARGET(ordermesh::domain::user)
