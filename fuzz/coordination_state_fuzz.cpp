// libFuzzer target: the whole stored view as a node reads it at start and on every watch event:
// an etcd range answer (etcd::decode_range) turned into the cluster's state
// (coordination::codec::decode_state). Contract (coordination_codec.hpp): no exceptions; an
// accepted state has its members ordered by node id, and with a config exactly shard_count
// shards indexed by number (none without one); a controller it names carries a node id.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/coordination/coordination_codec.hpp"
#include "cluster/etcd/etcd_codec.hpp"
#include "fuzz/fuzz_check.hpp"

namespace {

namespace coordination = ordermesh::cluster::coordination;

void check_state(const coordination::cluster_state& st) {
  FUZZ_CHECK(
      std::is_sorted(st.members.begin(), st.members.end(),
                     [](const coordination::member_record& a,
                        const coordination::member_record& b) { return a.node_id < b.node_id; }));
  if (!st.config) {
    FUZZ_CHECK(st.shards.empty());
  } else {
    FUZZ_CHECK(st.shards.size() == st.config->shard_count);
    for (size_t i = 0; i < st.shards.size(); ++i)
      FUZZ_CHECK(st.shards[i].shard == i);
  }
  if (st.controller)
    FUZZ_CHECK(!st.controller->node_id.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const auto range = ordermesh::etcd::decode_range(body);
    if (!range)
      return 0;
    const coordination::codec::key_layout keys("c1");
    const auto st =
        coordination::codec::decode_state(keys, range.value().revision, range.value().kvs);
    if (st.ok())
      check_state(st.value());
  } catch (...) {
    FUZZ_CHECK(!"decode_range or decode_state threw");
  }
  return 0;
}
