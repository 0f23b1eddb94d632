#include "cluster/coordination_driver.hpp"

#include <algorithm>

#include <spdlog/logger.h>
#include <caf/all.hpp>

namespace ordermesh::cluster {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace co = coordination;

using tick_atom = caf::atom_constant<caf::atom("k_tick")>;

struct driver_state {
  std::unique_ptr<co::session> session;
  driver_config cfg;
  caf::actor agent;
  std::shared_ptr<spdlog::logger> log;
  bool joined = false;
  bool left = false;  // left for good (leave): never join again
  int64_t incarnation = 0;
  int64_t revision = 0;
  bool force_read = true;
  clock_type::time_point next_renewal{};
  uint32_t failures = 0;  // store calls failed in a row; logged on the first and every 20th
  static inline const char* name = "ordermesh.coordination_driver";
};
using self_ptr = caf::stateful_actor<driver_state>*;

int64_t to_ns(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

caf::error to_caf(const co::error& e) {
  return caf::make_error(caf::sec::runtime_error, e.to_string());
}

void failed(self_ptr self, const char* what, const co::error& e) {
  auto& s = self->state;
  if (s.failures++ % 20 == 0)
    s.log->warn("node={} coordination: {} failed ({} in a row): {}", s.cfg.me.node_id, what,
                s.failures, e.to_string());
}

void succeeded(self_ptr self) {
  auto& s = self->state;
  if (s.failures > 0)
    s.log->info("node={} coordination: the store answers again", s.cfg.me.node_id);
  s.failures = 0;
}

void publish_lease(self_ptr self, clock_type::time_point until) {
  auto& s = self->state;
  self->send(s.agent, coord_lease_atom::value, s.joined ? to_ns(until) : int64_t{0}, s.incarnation);
}

void join(self_ptr self) {
  auto& s = self->state;
  auto t0 = clock_type::now();
  auto r = s.session->join(s.cfg.me, s.cfg.lease_ttl);
  if (!r) {
    failed(self, "join", r.err());
    return;
  }
  succeeded(self);
  s.joined = true;
  s.incarnation = r.value().incarnation;
  s.force_read = true;
  s.next_renewal = t0 + s.cfg.lease_ttl / 3;
  s.log->info("node={} joined the {} store as incarnation {}", s.cfg.me.node_id, s.session->kind(),
              s.incarnation);
  publish_lease(self, t0 + s.cfg.lease_ttl - lease_margin(s.cfg.lease_ttl));
}

void renew(self_ptr self) {
  auto& s = self->state;
  auto t0 = clock_type::now();
  auto r = s.session->keepalive();
  if (r) {
    succeeded(self);
    auto ttl =
        std::min(std::chrono::duration_cast<std::chrono::milliseconds>(r.value()), s.cfg.lease_ttl);
    s.next_renewal = t0 + s.cfg.lease_ttl / 3;
    publish_lease(self, t0 + ttl - lease_margin(s.cfg.lease_ttl));
    return;
  }
  if (r.err().code == co::errc::lease_lost || r.err().code == co::errc::fenced) {
    // The store ended this membership: join again as a new incarnation. Until then the node
    // holds no lease and serves nothing (the agent routes its shards to `unavailable`).
    s.log->warn("node={} lost its membership ({}); joining again", s.cfg.me.node_id,
                r.err().to_string());
    s.joined = false;
    publish_lease(self, {});
    return;
  }
  failed(self, "lease renewal", r.err());
  s.next_renewal = t0 + 200ms;  // retry soon; the lease runs out on the agent's clock meanwhile
}

void read(self_ptr self) {
  auto& s = self->state;
  auto r = s.session->read();
  if (!r) {
    failed(self, "read", r.err());
    return;
  }
  succeeded(self);
  s.force_read = false;
  s.revision = r.value().revision;
  self->send(s.agent, coord_state_atom::value,
             std::make_shared<const co::cluster_state>(std::move(r.value())));
}

/// One round: keep the membership, then wait (bounded) for a change and read it.
void tick(self_ptr self) {
  auto& s = self->state;
  if (s.left)
    return;
  if (!s.joined)
    join(self);
  if (s.joined && clock_type::now() >= s.next_renewal)
    renew(self);
  if (!s.joined) {
    self->delayed_send(self, s.failures > 0 ? 500ms : 50ms, tick_atom::value);
    return;
  }
  auto until_renewal =
      std::chrono::duration_cast<std::chrono::milliseconds>(s.next_renewal - clock_type::now());
  auto wait = std::clamp(until_renewal, 0ms, s.cfg.poll);
  if (!s.force_read) {
    auto w = s.session->wait_change(s.revision, wait);
    if (!w) {
      failed(self, "watch", w.err());
      self->delayed_send(self, 200ms, tick_atom::value);
      return;
    }
    s.force_read = w.value() > s.revision;
  }
  if (s.force_read)
    read(self);
  self->send(self, tick_atom::value);
}

template <class T>
caf::result<T> answer(self_ptr self, co::result<T> r) {
  if (!r)
    return to_caf(r.err());
  self->state.force_read = true;
  return std::move(r.value());
}

caf::behavior driver(self_ptr self, std::unique_ptr<co::session>* session, driver_config cfg,
                     caf::actor agent, std::shared_ptr<spdlog::logger> log) {
  auto& s = self->state;
  s.session = std::move(*session);
  delete session;
  s.cfg = std::move(cfg);
  s.agent = agent;
  s.log = std::move(log);
  self->monitor(agent);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) { tick(self); },
      [self](coord_write_atom, const co::shard_assignment& next,
             int64_t expected) -> caf::result<bool> {
        return answer(self, self->state.session->write_shard(next, expected));
      },
      [self](coord_campaign_atom) -> caf::result<std::string> {
        auto r = self->state.session->campaign();
        if (!r)
          return to_caf(r.err());
        self->state.force_read = true;
        return r.value().node_id;
      },
      [self](coord_depose_atom, const std::string& node, int64_t incarnation) -> caf::result<bool> {
        co::member_record controller;
        controller.node_id = node;
        controller.incarnation = incarnation;
        return answer(self, self->state.session->depose_controller(controller));
      },
      [self](coord_bootstrap_atom, const co::cluster_config& config,
             const assignments_ptr& shards) -> caf::result<bool> {
        return answer(self, self->state.session->bootstrap(config, *shards));
      },
      [self](coord_update_atom, bool leaving) -> caf::result<bool> {
        auto me = self->state.cfg.me;
        me.leaving = leaving;
        auto r = self->state.session->update(me);
        if (!r)
          return to_caf(r.err());
        self->state.cfg.me = me;
        self->state.force_read = true;
        return true;
      },
      [self](coord_drain_atom) -> caf::result<bool> {
        auto me = self->state.cfg.me;
        me.draining = true;
        auto r = self->state.session->update(me);
        if (!r)
          return to_caf(r.err());
        self->state.cfg.me = me;
        self->state.force_read = true;
        return true;
      },
      [self](coord_depart_atom, co::departure_kind kind,
             const co::departure_record& r) -> caf::result<bool> {
        return answer(self, self->state.session->write_departure(kind, r));
      },
      [self](coord_forget_atom, co::departure_kind kind, const std::string& node,
             int64_t expected) -> caf::result<bool> {
        return answer(self, self->state.session->forget_departure(kind, node, expected));
      },
      [self](coord_leave_atom) -> caf::result<bool> {
        auto r = self->state.session->leave();
        if (!r)
          return to_caf(r.err());
        self->state.joined = false;
        self->state.left = true;
        return true;
      },
  };
}

}  // namespace

std::chrono::milliseconds lease_margin(std::chrono::milliseconds ttl) {
  return std::max<std::chrono::milliseconds>(ttl / 6, 250ms);
}

caf::actor spawn_coordination_driver(caf::actor_system& sys,
                                     std::unique_ptr<coordination::session> session,
                                     driver_config cfg, caf::actor agent,
                                     std::shared_ptr<spdlog::logger> log) {
  // CAF copies spawn arguments: the session travels as a raw pointer the driver takes over.
  auto* owned = new std::unique_ptr<coordination::session>(std::move(session));
  return sys.spawn<caf::detached>(driver, owned, std::move(cfg), std::move(agent), std::move(log));
}

}  // namespace ordermesh::cluster
