#pragma once
// A consensus store held in one process's memory, with etcd's semantics where the coordination
// interface relies on them: one revision that grows with every change, leases that delete their
// keys when they expire, create and mod revisions per key, compare-and-set. Two uses:
//   - the local coordinator of a node without etcd (one member, nothing to reach);
//   - the fake that unit tests drive: several members share one store, the clock is the test's,
//     and faults are injected (a member that cannot reach the store, a lease that expires now).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::coordination {

class memory_store {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

  /// A store on the steady clock, or on `clock` (tests move time by hand).
  explicit memory_store(clock_fn clock = {});

  /// A handle for one member. kind() answers `kind` ("local" or "memory").
  std::unique_ptr<session> connect(std::string kind = "memory");

  // ---- fault injection (tests) ----
  /// Calls from `node_id` fail with errc::unavailable and change nothing while unreachable.
  void set_reachable(const std::string& node_id, bool reachable);
  /// Expires `node_id`'s lease at once, as if its keepalives had stopped TTL ago.
  void expire_lease(const std::string& node_id);
  /// Expires every lease whose time is up by the clock; called by every operation too.
  void expire_due();
  /// The current revision.
  int64_t revision();
  /// Starts the store bootstrapped: `config` and `shards` written at one revision, as a
  /// session's bootstrap() would, without a member. False (nothing changed) if it already holds
  /// a config or the shards do not fit it.
  bool preload(const cluster_config& config, std::vector<shard_assignment> shards);

 private:
  friend class memory_session;

  struct lease {
    std::chrono::milliseconds ttl{0};
    std::chrono::steady_clock::time_point expires;
  };
  struct member_entry {
    member_record record;
    int64_t lease_id = 0;
  };
  struct controller_entry {
    std::string node_id;
    int64_t lease_id = 0;
  };

  void expire_due_locked();
  void revoke_locked(int64_t lease_id);
  bool current_locked(const std::string& node_id, int64_t incarnation) const;

  clock_fn clock_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t revision_ = 1;
  int64_t next_lease_ = 1;
  std::map<int64_t, lease> leases_;
  std::map<std::string, member_entry> members_;
  std::optional<controller_entry> controller_;
  std::optional<cluster_config> config_;
  int64_t config_revision_ = 0;
  std::vector<shard_assignment> shards_;
  std::set<std::string> unreachable_;
};

/// The coordination of a node without etcd: a private in-memory store of which it is the only
/// member (kind "local"). Fast, nothing to run; it cannot survive the process, and needs not:
/// it starts from what the node's disk holds (`config` and `shards`, see local_seed.hpp).
/// Without them it starts empty (the contract tests). nullptr if they do not fit each other.
std::unique_ptr<session> make_local_coordination();
std::unique_ptr<session> make_local_coordination(const cluster_config& config,
                                                 std::vector<shard_assignment> shards);

}  // namespace ordermesh::cluster::coordination
