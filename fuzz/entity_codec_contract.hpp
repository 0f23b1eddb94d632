#pragma once
// The contract every entity codec of domain/ promises (domain/codec.hpp), checked on arbitrary
// bytes: decode and decode_snapshot never throw and never read out of bounds (ASan), and what
// they accept is a value whose encoding decodes again to the same value. "The same" is checked
// on the encoding: the entity structs have no operator==, and two values with one encoding are
// the same record on disk. Stricter still, every record has one spelling: an accepted input is
// byte for byte the encoding of its value (varints canonical, bools 0/1, maps in key order, no
// trailing bytes), so a damaged record cannot pass for another one. The one exception is an
// older snapshot layout still read for compatibility, which the encoder writes in the new one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"

namespace ordermesh::fuzz {

/// Decodes `bytes` as a `Value`; when that succeeds, its encoding must decode again and encode
/// to the same bytes, and, when `one_spelling`, be `bytes` itself.
template <class Value, class Decode, class Encode>
void check_round_trip(std::string_view bytes, Decode decode, Encode encode, bool one_spelling) {
  Value first;
  if (!decode(bytes, first))
    return;
  const std::string once = encode(first);
  if (one_spelling)
    FUZZ_CHECK(once == bytes);
  Value again;
  FUZZ_CHECK(decode(once, again));
  FUZZ_CHECK(encode(again) == once);
}

/// `Entity` is a struct of static functions forwarding to one entity namespace's codec (see
/// the macro below): event, state, encode, decode, encode_snapshot, decode_snapshot.
/// `older_snapshot_tag` is the tag of a snapshot layout still read but no longer written (-1:
/// none).
template <class Entity>
void check_entity_codec(const uint8_t* data, size_t size, int older_snapshot_tag) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_round_trip<typename Entity::event>(bytes, Entity::decode, Entity::encode, true);
  // Every record starts [format version][tag].
  const bool older_layout = size > 1 && data[1] == older_snapshot_tag;
  check_round_trip<typename Entity::state>(bytes, Entity::decode_snapshot, Entity::encode_snapshot,
                                           !older_layout);
}

}  // namespace ordermesh::fuzz

/// Defines the fuzz target of one entity namespace `NS` of domain/ (see check_entity_codec for
/// `OLDER_SNAPSHOT_TAG`).
#define ORDERMESH_ENTITY_CODEC_FUZZ_TARGET(NS, OLDER_SNAPSHOT_TAG)                        \
  namespace {                                                                             \
  struct entity_codec {                                                                   \
    using event = NS::event;                                                              \
    using state = NS::state;                                                              \
    static std::string encode(const event& x) { return NS::encode(x); }                   \
    static bool decode(std::string_view b, event& x) { return NS::decode(b, x); }         \
    static std::string encode_snapshot(const state& x) { return NS::encode_snapshot(x); } \
    static bool decode_snapshot(std::string_view b, state& x) {                           \
      return NS::decode_snapshot(b, x);                                                   \
    }                                                                                     \
  };                                                                                      \
  }                                                                                       \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {               \
    ordermesh::fuzz::check_entity_codec<entity_codec>(data, size, OLDER_SNAPSHOT_TAG);    \
    return 0;                                                                             \
  }
