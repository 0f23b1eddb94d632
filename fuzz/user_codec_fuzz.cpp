// libFuzzer target: the user's event and snapshot decoders (domain/user_codec.cpp) on arbitrary
// bytes, with the round trip of entity_codec_contract.hpp.
#include "domain/codec.hpp"
#include "domain/user.hpp"
#include "fuzz/entity_codec_contract.hpp"

// The user's snapshot before open reservation slots (tag snapshot_tag(user)) is still read, and
// written again with the slots' tag (user_codec.cpp).
ORDERMESH_ENTITY_CODEC_FUZZ_TARGET(
    ordermesh::domain::user,
    ordermesh::domain::codec::snapshot_tag(ordermesh::domain::entity_kind::user))
