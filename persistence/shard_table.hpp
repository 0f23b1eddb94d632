#pragma once
// Internal: the epoch under which this node owns each shard, read on every write.
//
// The table is only the in-memory, lock-free view: the durable record (meta "shard_epoch/<n>")
// and the rules for changing it live in storage_engine. Both submit() and the writer thread read
// it, so a write is checked when queued and again just before it is committed.
#include <array>
#include <atomic>
#include <cstdint>

#include "persistence/status.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::persistence::detail {

class shard_table {
 public:
  /// Epoch under which this node owns `shard`; 0: not owned. One atomic load: the hot path.
  uint64_t owned(uint16_t shard) const { return owned_[shard].load(std::memory_order_acquire); }
  /// Sets the owned epoch (0: release). Called by storage_engine only, under its ownership lock.
  void set_owned(uint16_t shard, uint64_t epoch) {
    owned_[shard].store(epoch, std::memory_order_release);
  }

  /// ok when `req` (not a barrier) may be written now: its shard_epoch is the owned epoch of its
  /// shard. Otherwise status invalid saying why.
  status check_epoch(const write_request& req) const;
  /// ok when this node does not own `shard`; `what` names the refused operation.
  status check_not_owned(uint16_t shard, const char* what) const;

 private:
  // Indexed by shard; value-initialized to 0 (nothing owned). 512 KiB per engine buys a check
  // without a lock or a hash lookup on every write.
  std::array<std::atomic<uint64_t>, 0x10000> owned_{};
};

}  // namespace ordermesh::persistence::detail
