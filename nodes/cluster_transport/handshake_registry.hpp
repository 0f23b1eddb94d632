#pragma once
// The bookkeeping behind the cluster port's connection bounds (docs/SECURITY.md, "Cluster
// plane"): which accepted connections are still in their handshake, since when, and which of
// them to close. Pure: no sockets, no clock of its own (the caller passes `now`), no locking;
// connection_guard applies its decisions to file descriptors under its own mutex.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace ordermesh::cluster_transport {

struct handshake_limits {
  /// Accepted connections still in their handshake (TLS not done, or BASP not yet talking).
  size_t max_pending = 64;
  /// Accepted connections in any state (pending, established, closing): bounds the fds.
  size_t max_total = 1024;
  /// A pending connection older than this is closed.
  std::chrono::milliseconds deadline{5000};
};

class handshake_registry {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// What to do with a newly accepted connection.
  struct admission {
    /// Empty: the total cap is reached; close the new connection at once.
    std::optional<uint64_t> id;
    /// Handles of pending connections evicted to make room (the oldest first): shut them down.
    std::vector<int> evicted;
  };

  /// Limits of 0 are raised to 1 (a registry that admits nothing would lock out every peer).
  explicit handshake_registry(handshake_limits limits);

  /// Registers a connection accepted at `now`; `handle` is the caller's (its fd), returned when
  /// the connection is to be closed. When the pending cap is full the oldest pending connection
  /// is evicted rather than the new one refused, so idle connections cannot lock out a peer
  /// whose handshake takes milliseconds.
  admission admit(int handle, time_point now);

  /// The connection's handshake is done (it read application data): it no longer counts as
  /// pending and no deadline applies to it. Unknown or closing ids are ignored.
  void established(uint64_t id);

  /// Pending connections accepted more than the deadline before `now`, oldest first; they are
  /// marked closing (counted in the total until removed, never returned twice).
  std::vector<int> expired(time_point now);

  /// The connection is gone (its socket is about to be closed): forget it. Unknown ids are
  /// ignored.
  void remove(uint64_t id);

  size_t pending() const { return pending_.size(); }
  size_t total() const { return entries_.size(); }
  const handshake_limits& limits() const { return limits_; }

 private:
  enum class state { pending, established, closing };
  struct entry {
    int handle;
    time_point accepted_at;
    state st;
  };

  handshake_limits limits_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, entry> entries_;
  /// Ids of pending entries; ids grow with accept order, so begin() is the oldest.
  std::set<uint64_t> pending_;
};

}  // namespace ordermesh::cluster_transport
