#include "persistence/replica_meta.hpp"

#include <algorithm>

#include "persistence/decimal.hpp"

namespace ordermesh::persistence::detail {

namespace {

/// Reads "<word> <number>" at the front of `text` and what follows a single space after it.
bool take_field(std::string_view& text, std::string_view word, uint64_t& out) {
  if (text.substr(0, word.size()) != word || text.substr(word.size(), 1) != " ") {
    return false;
  }
  text.remove_prefix(word.size() + 1);
  const size_t end = text.find(' ');
  if (!parse_decimal(text.substr(0, end), out)) {
    return false;
  }
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  return true;
}

std::string at(const shard_delta& d) {
  return "shard " + std::to_string(d.shard) + " delta at position " + std::to_string(d.position) +
         " epoch " + std::to_string(d.epoch);
}

}  // namespace

std::string replica_meta_name(uint16_t shard) {
  return std::string(replica_meta) + std::to_string(shard);
}

std::string encode_replica(const replica_state& s) {
  return "position " + std::to_string(s.position) + " epoch " + std::to_string(s.epoch) +
         " fence " + std::to_string(s.fence);
}

bool parse_replica(std::string_view name, std::string_view value, uint16_t& shard,
                   replica_state& out) {
  uint32_t n = 0;
  if (!parse_decimal(name, n) || n >= keys::meta_shard) {
    return false;
  }
  shard = static_cast<uint16_t>(n);
  replica_state s;
  if (!take_field(value, "position", s.position) || !take_field(value, "epoch", s.epoch) ||
      !take_field(value, "fence", s.fence) || !value.empty()) {
    return false;
  }
  // The fence is the highest epoch seen, so it can never be below the last batch's epoch.
  if (s.fence < s.epoch) {
    return false;
  }
  out = s;
  return true;
}

status check_apply(const replica_state& current, const shard_delta& d) {
  if (std::max(d.epoch, d.sent_at_epoch) < current.fence) {
    // A deposed primary: refusing it forever is what keeps it from collecting a full set of acks.
    return status::invalid(at(d) + " is below the fence " + std::to_string(current.fence) +
                           " (a newer primary exists)");
  }
  if (d.position > current.position + 1) {
    return status::out_of_order(at(d) + " but this replica is at position " +
                                std::to_string(current.position) + ": catch up from " +
                                std::to_string(current.position + 1));
  }
  // Each (position, epoch) is written by exactly one primary (one per epoch, positions never
  // reused), and a follower takes position p only if its entry at p - 1 has the epoch the
  // primary had there (prev_epoch): by induction, the same (position, epoch) at two nodes means
  // the same batches up to it (Raft's log matching). Anything else is a divergent history.
  if (d.position <= current.position) {
    if (d.epoch == current.epoch) {
      return status::duplicate(at(d) + " is already applied (replica at position " +
                               std::to_string(current.position) + ")");
    }
    return status::diverged(at(d) + " but this replica holds position " +
                            std::to_string(current.position) + " from epoch " +
                            std::to_string(current.epoch) + ": re-seed it by a full copy");
  }
  if (d.prev_epoch != current.epoch) {
    return status::diverged(at(d) + " follows a batch of epoch " + std::to_string(d.prev_epoch) +
                            " but this replica's position " + std::to_string(current.position) +
                            " is from epoch " + std::to_string(current.epoch) +
                            ": re-seed it by a full copy");
  }
  return status::ok();
}

}  // namespace ordermesh::persistence::detail
