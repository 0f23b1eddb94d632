#pragma once
// What the admin port answers about this node: a sampler thread asks the member agent for its
// view every second (the same view cluster.status shows) and keeps the latest, so that HTTP
// requests read a cached copy and never wait on the actor system. It also turns successive
// views into membership events, and applies the readiness rule to what it knows.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node_context.hpp"
#include "cluster/member_agent.hpp"
#include "nodes/admin/admin_routes.hpp"
#include "nodes/admin/membership_events.hpp"

namespace ordermesh::node::admin {

struct node_status_options {
  std::chrono::milliseconds sample_interval{1000};
  std::chrono::milliseconds agent_timeout{2000};  // one ask of the agent
  size_t event_capacity = 64;                     // membership events kept
};

class node_status {
 public:
  node_status(caf::actor_system& sys, caf::actor agent, actors::context_ptr ctx,
              node_status_options options);
  ~node_status();  // stops the sampler
  node_status(const node_status&) = delete;
  node_status& operator=(const node_status&) = delete;

  /// Starts the sampler thread.
  void start();
  /// Stops and joins it (before the actor system goes). Idempotent.
  void stop();
  /// Clients are served from now on; `requests` counts the answered ones (outlives this).
  void set_serving(const std::atomic<uint64_t>* requests);
  /// The node is stopping or leaving: not ready any more.
  void set_draining() { draining_ = true; }

  /// The routes' sources, reading this object (which must outlive the admin server).
  admin_sources sources();

  readiness_verdict readiness() const;
  nlohmann::json status() const;

 private:
  void sample();
  void run();

  caf::actor_system& sys_;
  caf::actor agent_;
  actors::context_ptr ctx_;
  node_status_options options_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<const std::atomic<uint64_t>*> requests_{nullptr};
  std::atomic<bool> draining_{false};
  membership_event_ring events_;

  mutable std::mutex mutex_;  // guards what follows
  std::optional<cluster::member_status> last_;
  std::chrono::steady_clock::time_point last_at_{};
  std::optional<membership_view> last_view_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread sampler_;
};

}  // namespace ordermesh::node::admin
