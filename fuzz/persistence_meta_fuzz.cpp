// libFuzzer target: the storage engine's decoders of its own records (persistence/): a replica
// record of node meta (replica_meta.cpp) and a wakeup key (keys.cpp). The first input byte picks
// the split between a replica record's name and value. Contract: false on anything malformed,
// and what is accepted encodes back to what parses to the same value (a wakeup key: to the very
// same bytes, since its layout has one spelling per key).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "persistence/keys.hpp"
#include "persistence/replica_meta.hpp"

namespace {

namespace persistence = ordermesh::persistence;

void check_replica_record(std::string_view name, std::string_view value) {
  uint16_t shard = 0;
  persistence::replica_state s;
  if (!persistence::detail::parse_replica(name, value, shard, s))
    return;
  FUZZ_CHECK(shard != persistence::keys::meta_shard);
  FUZZ_CHECK(s.fence >= s.epoch);
  const std::string again_name = persistence::detail::replica_meta_name(shard).substr(
      persistence::detail::replica_meta.size());
  uint16_t again_shard = 0;
  persistence::replica_state again;
  FUZZ_CHECK(persistence::detail::parse_replica(again_name, persistence::detail::encode_replica(s),
                                                again_shard, again));
  FUZZ_CHECK(again_shard == shard && again.position == s.position && again.epoch == s.epoch &&
             again.fence == s.fence);
}

void check_wakeup_key(std::string_view key) {
  persistence::entity_key k;
  if (!persistence::keys::parse_wakeup(key, k))
    return;
  FUZZ_CHECK(persistence::keys::valid(k));
  FUZZ_CHECK(persistence::keys::wakeup(k) == key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_wakeup_key(bytes);
  if (size > 0) {
    const std::string_view rest = bytes.substr(1);
    const size_t split = data[0] % (rest.size() + 1);
    check_replica_record(rest.substr(0, split), rest.substr(split));
  }
  return 0;
}
