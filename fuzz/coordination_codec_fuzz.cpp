// libFuzzer target: the decoders of the cluster's stored view (cluster/coordination/
// coordination_codec.cpp): member records, the controller, the config and shard map entries as
// etcd holds them, and the key names. Contract (coordination_codec.hpp): no exceptions, a bad
// value is an errc::invalid result, and an accepted value encodes to JSON that decodes to the
// same value (compared on its encoding: the records have no operator==); a key parsed as a member
// or a shard is the key that layout would name it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/coordination/coordination_codec.hpp"
#include "fuzz/fuzz_check.hpp"

namespace {

namespace codec = ordermesh::cluster::coordination::codec;

template <class Decode, class Encode>
void check_round_trip(std::string_view json, Decode decode, Encode encode) {
  auto first = decode(json);
  if (!first.ok())
    return;
  const std::string once = encode(first.value());
  auto second = decode(once);
  FUZZ_CHECK(second.ok());
  FUZZ_CHECK(encode(second.value()) == once);
}

void check_key(std::string_view key) {
  const codec::key_layout keys("c1");
  const codec::key_layout::parsed p = keys.parse(key);
  if (p.what == codec::key_layout::kind::member)
    FUZZ_CHECK(keys.member(p.node_id) == key);
  if (p.what == codec::key_layout::kind::shard)
    FUZZ_CHECK(keys.shard(p.shard) == key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    check_round_trip(bytes, codec::decode_member, codec::encode_member);
    check_round_trip(bytes, codec::decode_controller, codec::encode_controller);
    check_round_trip(bytes, codec::decode_config, codec::encode_config);
    check_round_trip(bytes, codec::decode_shard, codec::encode_shard);
    check_key(bytes);
  } catch (...) {
    FUZZ_CHECK(!"a coordination decoder threw");
  }
  return 0;
}
