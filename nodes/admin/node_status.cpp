#include "nodes/admin/node_status.hpp"

#include <spdlog/logger.h>
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include "nodes/cluster_status_json.hpp"
#include "nodes/version.hpp"
#include "observability/metrics_text.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::node::admin {

using json = nlohmann::json;

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

membership_view view_of(const cluster::member_status& ms) {
  membership_view v;
  for (auto& m : ms.members)
    v.members[m.node_id] = {m.leaving ? "leaving" : m.draining ? "draining" : "up", m.incarnation};
  for (auto& a : ms.shards)
    v.primaries[a.shard] = a.primary;
  v.unreachable = ms.unreachable;
  v.controller = ms.controller;
  return v;
}

json events_json(const std::vector<membership_event>& events) {
  auto out = json::array();
  for (auto& e : events)
    out.push_back({{"unix_ms", e.unix_ms}, {"kind", e.kind}, {"node", e.node}, {"text", e.text}});
  return out;
}

json activity_json() {
  auto out = json::array();
  for (auto& s : om::obs::recent_activity())
    out.push_back(
        {{"unix_ms", s.unix_ms}, {"requests_per_s", s.requests_per_s}, {"p99_ms", s.p99_ms}});
  return out;
}

}  // namespace

node_status::node_status(caf::actor_system& sys, caf::actor agent, actors::context_ptr ctx,
                         node_status_options options)
    : sys_(sys),
      agent_(std::move(agent)),
      ctx_(std::move(ctx)),
      options_(std::move(options)),
      events_(options_.event_capacity) {}

node_status::~node_status() {
  stop();
}

void node_status::start() {
  sampler_ = std::thread([this] { run(); });
}

void node_status::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sampler_.joinable())
    sampler_.join();
}

void node_status::set_serving(const std::atomic<uint64_t>* requests) {
  requests_ = requests;
}

void node_status::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    sample();
    lock.lock();
    wake_.wait_for(lock, options_.sample_interval, [this] { return stopping_; });
  }
}

void node_status::sample() {
  std::optional<cluster::member_status> got;
  {
    caf::scoped_actor self{sys_};
    self->request(agent_, options_.agent_timeout, cluster::member_status_atom::value)
        .receive([&got](const cluster::member_status& ms) { got = ms; },
                 [this](caf::error& err) {
                   // The view goes stale; /readyz says so once it is too old.
                   ctx_->log().debug("node={} admin status: the member agent did not answer: {}",
                                     ctx_->node_id(), sys_.render(err));
                 });
  }
  if (!got)
    return;
  auto view = view_of(*got);
  std::lock_guard<std::mutex> lock(mutex_);
  if (last_view_)
    events_.add(diff_views(*last_view_, view, unix_ms_now()));
  else
    events_.add({{unix_ms_now(), "observed", ctx_->node_id(),
                  "first view: " + std::to_string(view.members.size()) + " member(s)"}});
  last_view_ = std::move(view);
  last_ = std::move(got);
  last_at_ = std::chrono::steady_clock::now();
}

readiness_verdict node_status::readiness() const {
  readiness_inputs in;
  auto routes = ctx_->routes();
  in.draining = draining_.load();
  auto health = ctx_->storage().health();
  in.storage_healthy = health.is_ok();
  if (!in.storage_healthy)
    in.storage_error = health.to_string();
  std::lock_guard<std::mutex> lock(mutex_);
  // Fresh: answered within a few sampling intervals (a wedged agent stops answering).
  in.view_fresh = last_ && std::chrono::steady_clock::now() - last_at_ <
                               3 * options_.sample_interval + options_.agent_timeout;
  // Joined by the sampled view itself (a member, with a shard map), not only by the live
  // routes: a view sampled before the map existed lists no shards, so the "shards" check below
  // would pass for nothing, and the view (members, ISR) would not match what the node serves.
  bool member = false;
  if (last_)
    for (auto& m : last_->members)
      member = member || m.node_id == ctx_->node_id();
  in.joined = routes && requests_.load() != nullptr && member && !last_->shards.empty();
  in.lease_valid = ctx_->lease_valid() && last_ && last_->lease_valid;
  in.cut_off = last_ && last_->cut_off;
  if (last_)
    for (auto& a : last_->shards) {
      if (a.primary != ctx_->node_id())
        continue;
      bool served = routes && a.shard < routes->owner.size() &&
                    routes->owner[a.shard] == ctx_->node_id() && routes->epoch[a.shard] >= a.epoch;
      if (!served)
        in.shards_not_served.push_back(a.shard);
    }
  return evaluate_readiness(in);
}

json node_status::status() const {
  auto verdict = readiness();
  auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  json out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto requests = requests_.load();
    if (last_)
      out = cluster_status_json(*last_, *ctx_, requests ? requests->load() : 0);
    else
      out = {{"node_id", ctx_->node_id()}, {"members", json::array()}, {"shards", json::array()}};
    out["sampled_ms_ago"] = last_ ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - last_at_)
                                        .count()
                                  : -1;
  }
  out["version"] = node_version();
  out["uptime_s"] = uptime.count();
  out["ready"] = readiness_json(verdict);
  out["membership_events"] = events_json(events_.snapshot());
  out["activity"] = activity_json();
  return out;
}

admin_sources node_status::sources() {
  admin_sources s;
  s.metrics_text = [] { return om::obs::render_metrics_text(); };
  s.readiness = [this] { return readiness(); };
  s.status = [this] { return status(); };
  return s;
}

}  // namespace ordermesh::node::admin
