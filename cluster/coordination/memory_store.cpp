#include "cluster/coordination/memory_store.hpp"

#include <algorithm>

namespace ordermesh::cluster::coordination {

namespace {

error fail(errc code, std::string message) {
  return error{code, std::move(message)};
}

}  // namespace

/// One member's handle on a memory_store. All state lives in the store, under its mutex; the
/// handle only remembers who it is (node id, incarnation, lease).
class memory_session final : public session {
 public:
  memory_session(memory_store& store, std::string kind) : store_(store), kind_(std::move(kind)) {}

  std::string_view kind() const override { return kind_; }

  result<member_record> join(const member_info& me, std::chrono::milliseconds ttl) override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (store_.unreachable_.count(me.node_id))
      return unreachable(me.node_id);
    if (me.node_id.empty())
      return fail(errc::invalid, "empty node id");
    if (ttl <= std::chrono::milliseconds::zero())
      return fail(errc::invalid, "ttl must be > 0");
    // An earlier life's key goes first (as a delete, then a create, in etcd): the new key has a
    // new create revision, and the earlier incarnation is fenced from here on.
    if (auto it = store_.members_.find(me.node_id); it != store_.members_.end()) {
      store_.revoke_locked(it->second.lease_id);
    }
    int64_t lease_id = store_.next_lease_++;
    store_.leases_[lease_id] = memory_store::lease{ttl, store_.clock_() + ttl};
    member_record rec{me.node_id, me.cluster_address, me.client_address,
                      me.leaving, ++store_.revision_, me.disk};
    rec.draining = me.draining;
    store_.members_[me.node_id] = memory_store::member_entry{rec, lease_id};
    node_id_ = me.node_id;
    incarnation_ = rec.incarnation;
    lease_id_ = lease_id;
    store_.changed_.notify_all();
    return rec;
  }

  result<member_record> update(const member_info& me) override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_joined())
      return *e;
    if (me.node_id != node_id_)
      return fail(errc::invalid, "cannot update another member");
    if (!store_.current_locked(node_id_, incarnation_)) {
      return fail(errc::fenced, "incarnation " + std::to_string(incarnation_) + " is not current");
    }
    auto& rec = store_.members_.at(node_id_).record;
    rec.cluster_address = me.cluster_address;
    rec.client_address = me.client_address;
    rec.leaving = me.leaving;
    rec.draining = me.draining;
    ++store_.revision_;
    store_.changed_.notify_all();
    return rec;
  }

  result<std::chrono::milliseconds> keepalive() override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_joined())
      return *e;
    auto it = store_.leases_.find(lease_id_);
    if (it == store_.leases_.end())
      return fail(errc::lease_lost, "lease expired or revoked");
    it->second.expires = store_.clock_() + it->second.ttl;
    return it->second.ttl;
  }

  result<bool> leave() override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_joined())
      return *e;
    store_.revoke_locked(lease_id_);
    incarnation_ = 0;
    store_.changed_.notify_all();
    return true;
  }

  result<member_record> campaign() override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_current())
      return *e;
    if (!store_.controller_) {
      store_.controller_ = memory_store::controller_entry{node_id_, lease_id_};
      ++store_.revision_;
      store_.changed_.notify_all();
    }
    return store_.members_.at(store_.controller_->node_id).record;
  }

  result<bool> depose_controller(const member_record& controller) override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_current())
      return *e;
    if (!store_.controller_ || store_.controller_->node_id != controller.node_id)
      return false;
    auto holder = store_.members_.find(controller.node_id);
    if (holder == store_.members_.end() ||
        holder->second.record.incarnation != controller.incarnation ||
        holder->second.lease_id != store_.controller_->lease_id)
      return false;
    store_.controller_.reset();
    ++store_.revision_;
    store_.changed_.notify_all();
    return true;
  }

  result<cluster_state> read() override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (!node_id_.empty() && store_.unreachable_.count(node_id_))
      return unreachable(node_id_);
    cluster_state s;
    s.revision = store_.revision_;
    s.config = store_.config_;
    s.config_revision = store_.config_revision_;
    for (const auto& [id, m] : store_.members_)
      s.members.push_back(m.record);
    if (store_.controller_)
      s.controller = store_.members_.at(store_.controller_->node_id).record;
    s.shards = store_.shards_;
    return s;
  }

  result<bool> bootstrap(const cluster_config& config,
                         const std::vector<shard_assignment>& shards) override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_current())
      return *e;
    if (store_.config_)
      return false;
    if (config.cluster_id.empty())
      return fail(errc::invalid, "empty cluster id");
    if (config.shard_count == 0 || shards.size() != config.shard_count) {
      return fail(errc::invalid, "need one assignment per shard");
    }
    for (size_t i = 0; i < shards.size(); ++i) {
      if (shards[i].shard != i || shards[i].epoch == 0 || shards[i].primary.empty()) {
        return fail(errc::invalid, "assignment " + std::to_string(i) + " is malformed");
      }
    }
    int64_t rev = ++store_.revision_;  // one txn: config and every shard at one revision
    store_.config_ = config;
    store_.config_revision_ = rev;
    store_.shards_ = shards;
    for (auto& s : store_.shards_)
      s.mod_revision = rev;
    store_.changed_.notify_all();
    return true;
  }

  result<bool> write_shard(const shard_assignment& next, int64_t expected_revision) override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    store_.expire_due_locked();
    if (auto e = check_current())
      return *e;
    if (next.shard >= store_.shards_.size()) {
      return fail(errc::invalid, "no shard " + std::to_string(next.shard));
    }
    auto& cur = store_.shards_[next.shard];
    if (cur.mod_revision != expected_revision)
      return false;
    if (next.epoch < cur.epoch || (next.primary != cur.primary && next.epoch == cur.epoch)) {
      return fail(errc::invalid, "epoch " + std::to_string(next.epoch) + " after " +
                                     std::to_string(cur.epoch) + " (a new primary needs more)");
    }
    if (next.primary.empty())
      return fail(errc::invalid, "no primary");
    cur = next;
    cur.mod_revision = ++store_.revision_;
    store_.changed_.notify_all();
    return true;
  }

  result<int64_t> wait_change(int64_t after, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(store_.mutex_);
    if (!node_id_.empty() && store_.unreachable_.count(node_id_))
      return unreachable(node_id_);
    store_.changed_.wait_for(lock, timeout, [&] { return store_.revision_ > after; });
    store_.expire_due_locked();
    return store_.revision_;
  }

 private:
  std::optional<error> check_joined() const {
    if (incarnation_ == 0)
      return fail(errc::not_joined, "join first");
    if (store_.unreachable_.count(node_id_))
      return unreachable(node_id_);
    return std::nullopt;
  }
  /// check_joined, and this handle's incarnation is still the member's current one.
  std::optional<error> check_current() const {
    if (auto e = check_joined())
      return e;
    if (!store_.current_locked(node_id_, incarnation_))
      return fail(errc::fenced, "incarnation " + std::to_string(incarnation_) + " is not current");
    return std::nullopt;
  }
  static error unreachable(const std::string& node_id) {
    return fail(errc::unavailable, node_id + " cannot reach the store");
  }

  memory_store& store_;
  std::string kind_;
  std::string node_id_;
  int64_t incarnation_ = 0;
  int64_t lease_id_ = 0;
};

memory_store::memory_store(clock_fn clock) : clock_(std::move(clock)) {
  if (!clock_)
    clock_ = [] { return std::chrono::steady_clock::now(); };
}

std::unique_ptr<session> memory_store::connect(std::string kind) {
  return std::make_unique<memory_session>(*this, std::move(kind));
}

void memory_store::set_reachable(const std::string& node_id, bool reachable) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reachable) {
    unreachable_.erase(node_id);
  } else {
    unreachable_.insert(node_id);
  }
}

void memory_store::expire_lease(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = members_.find(node_id); it != members_.end())
    revoke_locked(it->second.lease_id);
  changed_.notify_all();
}

void memory_store::expire_due() {
  std::lock_guard<std::mutex> lock(mutex_);
  expire_due_locked();
}

int64_t memory_store::revision() {
  std::lock_guard<std::mutex> lock(mutex_);
  return revision_;
}

bool memory_store::preload(const cluster_config& config, std::vector<shard_assignment> shards) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (config_ || config.shard_count == 0 || shards.size() != config.shard_count)
    return false;
  for (size_t i = 0; i < shards.size(); ++i)
    if (shards[i].shard != i || shards[i].epoch == 0 || shards[i].primary.empty())
      return false;
  int64_t rev = ++revision_;  // as bootstrap: config and every shard at one revision
  config_ = config;
  config_revision_ = rev;
  shards_ = std::move(shards);
  for (auto& a : shards_)
    a.mod_revision = rev;
  changed_.notify_all();
  return true;
}

void memory_store::expire_due_locked() {
  auto now = clock_();
  std::vector<int64_t> due;
  for (const auto& [id, l] : leases_) {
    if (l.expires <= now)
      due.push_back(id);
  }
  for (auto id : due)
    revoke_locked(id);
  if (!due.empty())
    changed_.notify_all();
}

void memory_store::revoke_locked(int64_t lease_id) {
  if (leases_.erase(lease_id) == 0)
    return;
  // Each key bound to the lease is deleted, one revision per key, as etcd does.
  for (auto it = members_.begin(); it != members_.end();) {
    if (it->second.lease_id == lease_id) {
      it = members_.erase(it);
      ++revision_;
    } else {
      ++it;
    }
  }
  if (controller_ && controller_->lease_id == lease_id) {
    controller_.reset();
    ++revision_;
  }
}

bool memory_store::current_locked(const std::string& node_id, int64_t incarnation) const {
  auto it = members_.find(node_id);
  return it != members_.end() && it->second.record.incarnation == incarnation;
}

namespace {

/// The store and its one member's handle in one object: the store outlives the handle.
struct local_session final : session {
  memory_store store;
  std::unique_ptr<session> inner = store.connect("local");
  std::string_view kind() const override { return inner->kind(); }
  result<member_record> join(const member_info& me, std::chrono::milliseconds ttl) override {
    return inner->join(me, ttl);
  }
  result<member_record> update(const member_info& me) override { return inner->update(me); }
  result<std::chrono::milliseconds> keepalive() override { return inner->keepalive(); }
  result<bool> leave() override { return inner->leave(); }
  result<member_record> campaign() override { return inner->campaign(); }
  result<bool> depose_controller(const member_record& c) override {
    return inner->depose_controller(c);
  }
  result<cluster_state> read() override { return inner->read(); }
  result<bool> bootstrap(const cluster_config& c, const std::vector<shard_assignment>& s) override {
    return inner->bootstrap(c, s);
  }
  result<bool> write_shard(const shard_assignment& next, int64_t expected) override {
    return inner->write_shard(next, expected);
  }
  result<int64_t> wait_change(int64_t after, std::chrono::milliseconds timeout) override {
    return inner->wait_change(after, timeout);
  }
};

}  // namespace

std::unique_ptr<session> make_local_coordination() {
  return std::make_unique<local_session>();
}

std::unique_ptr<session> make_local_coordination(const cluster_config& config,
                                                 std::vector<shard_assignment> shards) {
  auto s = std::make_unique<local_session>();
  if (!s->store.preload(config, std::move(shards)))
    return nullptr;
  return s;
}

}  // namespace ordermesh::cluster::coordination
