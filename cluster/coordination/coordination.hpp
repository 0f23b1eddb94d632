#pragma once
// The coordination interface: what a node asks of the cluster's consensus store (etcd in a
// cluster, an in-process store for a node alone). Who is a member, who is the controller, and
// who leads each shard at which epoch are decided here and nowhere else. Every change of a shard's
// assignment is a compare-and-set: it succeeds only if the shard is still as the writer last read
// it AND the writer is still a member under the incarnation it joined with. Lease timing decides
// liveness only; safety rests on these guards and on the epochs the storage enforces
// (docs/COORDINATION.md).
//
// Plain C++: no CAF, no sockets, nothing of orders. Calls block (bounded by the implementation's
// deadline): call them from a thread of their own, never from an actor on the shared scheduler.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ordermesh::cluster::coordination {

/// Why a coordination call did not do what it was asked.
enum class errc : uint8_t {
  unavailable = 1,  // the store could not be reached (or did not answer in time): retry later
  lease_lost,       // this member's lease is gone: it is no longer a member, join again
  fenced,           // this member's incarnation is no longer current: it must not write
  invalid,          // the request breaks a rule (an epoch that does not grow, a bad shard)
  not_joined,       // a call that needs membership before join()
};
std::string_view to_string(errc e);

struct error {
  errc code = errc::unavailable;
  std::string message;
  std::string to_string() const;
};

/// Either a value or an error; no exceptions cross the interface.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::move(e)) {}      // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

/// A member as stored under its key, bound to its lease.
struct member_record {
  std::string node_id;
  std::string cluster_address;  // host:port of its node-to-node endpoint
  std::string client_address;   // host:port of its client listener
  bool leaving = false;         // asked to leave: the controller moves its shards away
  /// The store revision that created this member key: one value per life of the node. A node
  /// that restarts gets a new one, which fences everything its earlier life might still send.
  int64_t incarnation = 0;
  /// The identity of the node's data dir (random, made with it; 0: none given): the same after a
  /// restart, new after a wipe. An ISR entry names the disk that holds the shard's committed
  /// writes, so a node that restarts with its disk intact is still the replica it vouches for.
  int64_t disk = 0;
  /// Asked to stop leading (SIGTERM with --drain in a replicated cluster): the controller moves
  /// the leadership of its shards to in-sync replicas and gives it none; it keeps its replicas
  /// (it comes back as a follower), unlike `leaving`.
  bool draining = false;
};

/// One shard's assignment: its leader and, once replication lands, its replicas and in-sync
/// set. `epoch` grows with every change; storage refuses writes under any other epoch.
struct shard_assignment {
  uint16_t shard = 0;
  uint64_t epoch = 0;
  std::string primary;
  std::vector<std::string> replicas;  // primary included
  std::vector<std::string> isr;       // in-sync replicas, primary included
  /// isr_disks[i] is the incarnation isr[i] had when it entered the ISR (failover promotes
  /// only a member still at it: a restarted node may have lost its disk). Parallel to `isr`;
  /// empty in values written before replication (and until the wiring fills it, issue 12).
  /// Stored as decimal strings (docs/REPLICATION.md).
  std::vector<int64_t> isr_disks;
  /// A move in progress: the node the controller asked the primary to hand the shard to, at
  /// epoch + 1. Empty when no move is pending. The target ends the move by writing itself as
  /// primary (the flip); the primary ends it by clearing `target` (an abort). Whichever txn
  /// lands first wins, the other finds the shard changed.
  std::string target;
  /// The store revision of the last change of this shard's key (the compare-and-set guard).
  /// Filled in by reads; ignored on writes.
  int64_t mod_revision = 0;
};

/// A node that shard keys still name while it has no member key (docs/REPLICATION.md, "A member
/// that dies for good"). Two kinds, each under its own key: `absent` (when the controller first
/// saw it gone: the clock of --dead-member-timeout, kept in the store so that it survives a
/// change of controller) and `removed` (its replicas are being replaced: by the operator's
/// cluster.remove-member or by the timeout). A removed id cannot join until the removal ends.
enum class departure_kind : uint8_t { absent, removed };
std::string_view to_string(departure_kind k);

struct departure_record {
  std::string node_id;
  /// The writer's wall clock, in milliseconds since the Unix epoch, when it wrote the record.
  int64_t since_ms = 0;
  /// removed: who asked ("operator" or "timeout"); absent: empty.
  std::string by;
  /// The store revision of the record's last change (the guard that deletes it). Filled in by
  /// reads; ignored on writes.
  int64_t mod_revision = 0;
};

/// Settings fixed when the cluster is first created.
struct cluster_config {
  /// Random, chosen at bootstrap. A node remembers it on its disk and refuses a store that
  /// holds another one (a wiped or different etcd): acting on it could drop real data.
  std::string cluster_id;
  uint16_t shard_count = 0;
  uint16_t replication_factor = 1;
  uint16_t min_insync = 1;
};

/// Everything in the store at one revision.
struct cluster_state {
  int64_t revision = 0;
  std::optional<cluster_config> config;  // nullopt until bootstrap
  /// The store revision that created the config (the bootstrap); 0 before it. A member whose
  /// incarnation is newer joined an existing cluster.
  int64_t config_revision = 0;
  std::vector<member_record> members;  // ordered by node id
  std::optional<member_record> controller;
  std::vector<shard_assignment> shards;   // index = shard; empty until bootstrap
  std::vector<departure_record> absent;   // ordered by node id
  std::vector<departure_record> removed;  // ordered by node id
};

/// What a node says about itself when it joins.
struct member_info {
  std::string node_id;
  std::string cluster_address;
  std::string client_address;
  bool leaving = false;
  int64_t disk = 0;  // member_record::disk
  bool draining = false;
};

/// One node's session with the store: its membership (lease, incarnation) and every call it
/// makes. Not thread-safe: one thread per session.
class session {
 public:
  virtual ~session() = default;

  /// "etcd" or "local", for cluster.status.
  virtual std::string_view kind() const = 0;

  /// Becomes a member: takes a lease of `ttl` and writes the member key bound to it. A key left
  /// by an earlier life of the same node id is replaced, so the node gets a new incarnation and
  /// the earlier one is fenced. Returns the record as stored. errc::invalid while the store
  /// holds a `removed` record for the id (its replicas are being replaced; it joins once that
  /// ends, as a new member).
  virtual result<member_record> join(const member_info& me, std::chrono::milliseconds ttl) = 0;

  /// Rewrites this member's record (addresses, leaving) under the same lease and incarnation,
  /// only while that incarnation is current (errc::fenced otherwise). `me.node_id` must be the
  /// joined id (errc::invalid otherwise).
  virtual result<member_record> update(const member_info& me) = 0;

  /// Renews the lease once. Returns the time left on it (by the store's clock); errc::lease_lost
  /// once it has expired (the member key is gone), errc::fenced when the lease lives but a newer
  /// life of the same node id replaced the member key: either way the node must join again.
  virtual result<std::chrono::milliseconds> keepalive() = 0;

  /// Ends the membership: the lease is revoked, so the member key and, if held, the controller
  /// key disappear at once.
  virtual result<bool> leave() = 0;

  /// Tries to become the controller: creates the controller key, bound to this member's lease,
  /// only if it is absent. Returns the controller as stored after the call (this member if it
  /// won or already held it; someone else otherwise).
  virtual result<member_record> campaign() = 0;

  /// Deletes the controller key if it still names `controller` (node id and incarnation) and
  /// this member is current: a member that has heard nothing from the controller for a while
  /// (and still reaches a majority) calls it so that a new controller is elected without
  /// waiting out the silent one's lease. Returns true if it deleted the key, false if the key
  /// names someone else or is gone already. Safe even if the controller was alive: every
  /// controller write is a compare-and-set, so two controllers for a moment decide nothing the
  /// shard keys would not refuse; the deposed one sees the new key and stops.
  virtual result<bool> depose_controller(const member_record& controller) = 0;

  /// Reads everything at one revision.
  virtual result<cluster_state> read() = 0;

  /// Creates the cluster's config and every shard's first assignment, only if no config exists
  /// yet, and only while this member is current. Returns true if it wrote them, false if a
  /// config was already there (read it).
  virtual result<bool> bootstrap(const cluster_config& config,
                                 const std::vector<shard_assignment>& shards) = 0;

  /// Replaces one shard's assignment by `next` if the shard's key still has `expected_revision`
  /// (its mod_revision as last read) and this member is still current. Epochs never go down,
  /// and a new primary needs a higher epoch (errc::invalid otherwise). Returns true if written;
  /// false if the shard changed since (read again); errc::fenced if this member's incarnation
  /// is no longer current.
  virtual result<bool> write_shard(const shard_assignment& next, int64_t expected_revision) = 0;

  /// Waits until the store's revision passes `after` or `timeout` passes. Returns the revision
  /// seen (equal to `after` on timeout).
  virtual result<int64_t> wait_change(int64_t after, std::chrono::milliseconds timeout) = 0;

  /// Writes the `kind` record of `r.node_id`, only while no member key of that id exists, no
  /// record of that kind exists for it yet, and this member is current. Writing `removed` also
  /// deletes the `absent` record (its clock has done its job). Returns true if written or if
  /// that record exists already (asked twice), false if the node is a member (read again);
  /// errc::fenced if this member is not current. The default (a store of one node, which never has
  /// a dead member): errc::invalid.
  virtual result<bool> write_departure(departure_kind kind, const departure_record& r) {
    (void)kind;
    (void)r;
    return error{errc::invalid, "this store keeps no departure records"};
  }

  /// Deletes the `kind` record of `node_id` if its key still has `expected_revision` and this
  /// member is current. Returns true if deleted, false if it changed or is gone.
  virtual result<bool> forget_departure(departure_kind kind, const std::string& node_id,
                                        int64_t expected_revision) {
    (void)kind;
    (void)node_id;
    (void)expected_revision;
    return error{errc::invalid, "this store keeps no departure records"};
  }

  /// The cluster's shared-secret fingerprint: an opaque string the caller derives from a secret
  /// every member must share (the node's admin token), never the secret itself. Stores
  /// `fingerprint` if the store holds none yet (the first node to ask sets it for everyone,
  /// atomically), and returns the one stored: the caller refuses to join when it differs from
  /// its own. Needs no membership: call it before join(). A cluster created before this existed
  /// gets the fingerprint of the first node that asks. The default (a store of one node, which
  /// has nobody to disagree with) stores nothing and returns `fingerprint`.
  virtual result<std::string> claim_secret_fingerprint(const std::string& fingerprint) {
    return fingerprint;
  }
};

/// The first assignment of every shard: shard i led by members[i % n] at epoch 1, replicated on
/// the next `replication_factor - 1` members in the same order (as many as there are). Pure and
/// deterministic; `members` must not be empty.
std::vector<shard_assignment> initial_assignments(const std::vector<std::string>& members,
                                                  const cluster_config& config);

}  // namespace ordermesh::cluster::coordination
