#pragma once
// Internal: the replica record of a shard in node meta, and the rule that decides whether a
// follower may apply a delta.
//
//   meta "replica/<shard in decimal>" -> "position <P> epoch <E> fence <F>"
// Text, like the shard_epoch/ records, so that an operator can read it with any RocksDB tool.
#include <cstdint>
#include <string>
#include <string_view>

#include "persistence/status.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::persistence::detail {

constexpr std::string_view replica_meta = "replica/";

std::string replica_meta_name(uint16_t shard);
std::string encode_replica(const replica_state& s);
/// Parses one record (name without the "replica/" prefix); false if malformed.
bool parse_replica(std::string_view name, std::string_view value, uint16_t& shard,
                   replica_state& out);

/// Whether a follower whose shard is at `current` may write `d` now (ok), or why not (invalid,
/// duplicate, out_of_order, diverged: see storage_engine::apply_replicated). Ownership is
/// checked by the caller.
status check_apply(const replica_state& current, const shard_delta& d);

}  // namespace ordermesh::persistence::detail
