#include "nodes/gateway.hpp"

#include <algorithm>
#include <exception>
#include <map>
#include <optional>
#include <unordered_map>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "cluster/cluster_messages.hpp"
#include "cluster/member_agent.hpp"
#include "nodes/cluster_status_json.hpp"
#include "nodes/protocol.hpp"
#include "nodes/request_metrics.hpp"
#include "persistence/storage_engine.hpp"

// Local-only messages between the I/O thread, the hasher threads and a gateway actor.
namespace ordermesh::node {
struct hashed {  // a password hash is ready
  uint64_t job;
  std::string hash;
};
struct verified {  // a password check is done
  uint64_t job;
  bool ok;
};
}  // namespace ordermesh::node
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::protocol::request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::node::hashed)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::node::verified)

namespace ordermesh::node {

namespace {

using actors::entity_ref;
using domain::entity_kind;
using domain::errc;
using json = nlohmann::json;
using protocol::op;

struct gateway_state {
  std::shared_ptr<gateway_shared> g;
  std::shared_ptr<client_connection> conn;
  std::string address;  // the client's, as the password pool and limits key it
  uint64_t next_job = 0;
  int64_t outstanding = 0;  // requests of this connection not answered yet
  // Requests waiting for the hasher, by job number.
  std::unordered_map<uint64_t, protocol::request> hashing;
  static inline const char* name = "ordermesh.gateway";
  ~gateway_state() {
    // Requests that die with the connection are no longer in flight.
    if (g)
      g->in_flight.fetch_sub(outstanding, std::memory_order_relaxed);
  }
};
using self_ptr = caf::stateful_actor<gateway_state>*;

// ---- answering ----

void send_line(self_ptr self, std::string line) {
  auto& s = self->state;
  --s.outstanding;
  s.g->in_flight.fetch_sub(1, std::memory_order_relaxed);
  s.g->requests.fetch_add(1, std::memory_order_relaxed);
  if (s.conn)
    s.conn->send(std::move(line));
}

/// Names the request in the entry node's log when it arrives and when it is answered.
void log_answer(self_ptr self, const protocol::request& req, std::string_view outcome) {
  auto& ctx = *self->state.g->ctx;
  ctx.log().debug("node={} req={} op={} answered {}", ctx.node_id(), req.req_id,
                  protocol::to_string(req.operation), outcome);
}

void answer(self_ptr self, const protocol::request& req, const json& result) {
  meter_reply(req, errc::none);
  log_answer(self, req, "ok");
  send_line(self, protocol::render_ok(req.id, result, req.req_id));
}

void refuse(self_ptr self, const protocol::request& req, errc code, std::string_view message) {
  meter_reply(req, code);
  log_answer(self, req, domain::to_string(code));
  // A node cut off from its peers, or shutting down, refuses whatever it is asked until that
  // ends, while another node would serve it: say so, and the client's retry goes elsewhere at
  // once instead of coming back here (a third of first attempts, with three nodes).
  const auto& g = *self->state.g;
  const bool cut_off = g.cut_off && g.cut_off->load(std::memory_order_relaxed);
  if (code == errc::unavailable && (cut_off || g.draining.load(std::memory_order_relaxed))) {
    std::string why(message);
    if (cut_off)
      why += " (this node is cut off from its peers: retry on another node)";
    send_line(self, protocol::render_error(req.id, code, why, req.req_id, true));
    return;
  }
  send_line(self, protocol::render_error(req.id, code, message, req.req_id));
}

void refuse(self_ptr self, const protocol::request& req, const caf::error& err) {
  auto f = actors::to_failure(err);
  refuse(self, req, f.code, f.message);
}

/// Sends (to, xs...) to the entity's shard and answers the client with render(View).
template <class View, class Render, class... Ts>
void call(self_ptr self, const protocol::request& req, const entity_ref& to, Render render,
          Ts&&... xs) {
  auto& g = *self->state.g;
  entity_ref traced = to;  // the request id travels with the message (actors/messages.hpp)
  traced.req = req.req_id;
  self->request(g.ctx->route(to), g.request_timeout, std::move(traced), std::forward<Ts>(xs)...)
      .then([self, req, render](const View& v) { answer(self, req, render(v)); },
            [self, req](caf::error& err) { refuse(self, req, err); });
}

template <class View>
json as_json(const View& v) {
  return protocol::to_json(v);
}

// ---- authentication ----

/// The caller, from the request's token. nullopt: a token was given and is not valid.
std::optional<domain::principal> authenticate(self_ptr self, const protocol::request& req) {
  auto& g = *self->state.g;
  domain::principal who;
  if (req.token.empty())
    return who;
  if (secrets_equal(req.token, g.admin_token)) {
    who.admin = true;
    return who;
  }
  auto user = g.tokens.verify(req.token, g.ctx->now_ms());
  if (!user)
    return std::nullopt;
  who.user_id = std::move(*user);
  return who;
}

bool anonymous_allowed(op o) {
  switch (o) {
    case op::user_register:
    case op::user_login:
    case op::product_get:
    case op::inventory_get:
    case op::cluster_status:
      return true;
    default:
      return false;
  }
}

// ---- ops that need more than one message ----

/// Password work may start: the rate limits per address and per user id allow it. Else the
/// request is answered `overloaded` (nothing was hashed) and false.
bool admit_password_work(self_ptr self, const protocol::request& req) {
  auto& s = self->state;
  auto refusal = s.g->limits.admit(s.address, req.user_id, bucket_clock::now());
  if (!refusal)
    return true;
  refuse(self, req, errc::overloaded, *refusal);
  return false;
}

/// Answers a job the hasher did not queue; false when it was queued.
bool refused_by_pool(self_ptr self, uint64_t job, password_hasher::admission a) {
  if (a == password_hasher::admission::queued)
    return false;
  auto& s = self->state;
  auto req = std::move(s.hashing[job]);
  s.hashing.erase(job);
  refuse(self, req, errc::overloaded,
         a == password_hasher::admission::address_full
             ? "too many password operations queued from this address; retry"
             : "too many password operations in progress; retry");
  return true;
}

void start_register(self_ptr self, protocol::request req) {
  if (!admit_password_work(self, req))
    return;
  auto& s = self->state;
  auto job = ++s.next_job;
  auto password = req.password;
  s.hashing.emplace(job, std::move(req));
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto queued = s.g->hasher.hash(s.address, std::move(password), [me, job](std::string hash) {
    caf::anon_send(me, hashed{job, std::move(hash)});
  });
  refused_by_pool(self, job, queued);
}

void finish_register(self_ptr self, const hashed& h) {
  auto& s = self->state;
  auto it = s.hashing.find(h.job);
  if (it == s.hashing.end())
    return;
  auto req = std::move(it->second);
  s.hashing.erase(it);
  if (h.hash.empty()) {
    refuse(self, req, errc::internal, "password hashing failed");
    return;
  }
  call<domain::user_view>(
      self, req, actors::ref(entity_kind::user, req.user_id),
      [](const domain::user_view& v) {
        return json{{"user_id", v.user_id}};
      },
      actors::register_atom::value, req.name, h.hash);
}

/// Queues the password check. `hash` nullopt: no such user; the check then runs against the
/// hasher's dummy hash, so that an unknown user id costs (and answers) what a wrong password does.
void queue_verify(self_ptr self, protocol::request req, std::optional<std::string> hash) {
  auto& s = self->state;
  auto job = ++s.next_job;
  auto password = req.password;
  s.hashing.emplace(job, std::move(req));
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto queued =
      s.g->hasher.verify(s.address, std::move(password), std::move(hash), [me, job](bool ok) {
        caf::anon_send(me, verified{job, ok});
      });
  refused_by_pool(self, job, queued);
}

void start_login(self_ptr self, protocol::request req) {
  if (!admit_password_work(self, req))
    return;
  auto& g = *self->state.g;
  auto to = actors::ref(entity_kind::user, req.user_id, req.req_id);
  self->request(g.ctx->route(to), g.request_timeout, to, actors::creds_atom::value)
      .then(
          [self, req](const actors::credentials& c) mutable {
            queue_verify(self, std::move(req), c.password_hash);
          },
          [self, req](caf::error& err) mutable {
            auto f = actors::to_failure(err);
            if (f.code == errc::not_found)
              queue_verify(self, std::move(req), std::nullopt);
            else
              refuse(self, req, f.code, f.message);
          });
}

void finish_login(self_ptr self, const verified& v) {
  auto& s = self->state;
  auto it = s.hashing.find(v.job);
  if (it == s.hashing.end())
    return;
  auto req = std::move(it->second);
  s.hashing.erase(it);
  if (!v.ok) {
    refuse(self, req, errc::unauthorized, "wrong user id or password");
    return;
  }
  auto expires = s.g->ctx->now_ms() + s.g->session_ttl.count();
  answer(self, req,
         json{{"token", s.g->tokens.mint(req.user_id, expires)}, {"expires_at", expires}});
}

/// order.list: the user's order ids, then each order (the most recent ones, bounded).
void list_orders(self_ptr self, const protocol::request& req, const domain::principal& who) {
  auto& g = *self->state.g;
  auto to = actors::ref(entity_kind::user, req.user_id, req.req_id);
  self->request(g.ctx->route(to), g.request_timeout, to, actors::orders_atom::value, who)
      .then(
          [self, req, who](const actors::order_ids& ids) {
            auto& gs = *self->state.g;
            size_t n = std::min(ids.ids.size(), domain::limits::max_orders_listed);
            if (n == 0) {
              answer(self, req, json{{"orders", json::array()}});
              return;
            }
            struct gather {
              std::vector<domain::order_view> orders;
              size_t pending;
              domain::failure first_error;
            };
            auto acc = std::make_shared<gather>();
            acc->orders.resize(n);
            acc->pending = n;
            auto first = ids.ids.size() - n;
            auto done = [self, req, acc] {
              if (--acc->pending > 0)
                return;
              if (acc->first_error.code != errc::none) {
                refuse(self, req, acc->first_error.code, acc->first_error.message);
                return;
              }
              domain::order_list_view list;
              list.orders = std::move(acc->orders);
              answer(self, req, protocol::to_json(list));
            };
            for (size_t i = 0; i < n; ++i) {
              auto oref = actors::ref(entity_kind::order, ids.ids[first + i], req.req_id);
              self->request(gs.ctx->route(oref), gs.request_timeout, oref, actors::read_atom::value,
                            who)
                  .then(
                      [acc, i, done](const domain::order_view& v) {
                        acc->orders[i] = v;
                        done();
                      },
                      [acc, done](caf::error& err) {
                        if (acc->first_error.code == errc::none)
                          acc->first_error = actors::to_failure(err);
                        done();
                      });
            }
          },
          [self, req](caf::error& err) { refuse(self, req, err); });
}

/// cluster.status: what the coordination store holds (etcd, or the local store of a node alone),
/// rendered by cluster_status_json (shared with the admin port's /status.json).
void cluster_status(self_ptr self, const protocol::request& req) {
  auto& g = *self->state.g;
  self->request(g.agent, g.request_timeout, cluster::member_status_atom::value)
      .then(
          [self, req](const cluster::member_status& ms) {
            auto& gs = *self->state.g;
            answer(self, req, cluster_status_json(ms, *gs.ctx, gs.requests.load()));
          },
          [self, req](caf::error& err) { refuse(self, req, err); });
}

/// cluster.remove-member: the agent checks it against the store's state and records the
/// removal (cluster/agent/member_removal.cpp); each refusal maps to the code a client can act on.
void remove_member(self_ptr self, const protocol::request& req, const domain::principal& who) {
  auto& g = *self->state.g;
  if (!who.admin) {
    refuse(self, req, errc::forbidden, "cluster.remove-member needs the admin token");
    return;
  }
  if (g.alone) {
    refuse(self, req, errc::invalid_state, "a node alone (no --etcd) has no other member");
    return;
  }
  self->request(g.agent, g.request_timeout, cluster::remove_member_atom::value, req.node_id)
      .then(
          [self, req](const std::string& refusal, const std::string& why) {
            if (refusal.empty())
              answer(self, req, json{{"node_id", req.node_id}, {"state", "removing"}});
            else if (refusal == "unknown")
              refuse(self, req, errc::not_found, why);
            else if (refusal == "store")
              refuse(self, req, errc::unavailable, why);
            else  // live_member, too_few_members, not_replicated
              refuse(self, req, errc::invalid_state, why);
          },
          [self, req](caf::error& err) { refuse(self, req, err); });
}

// ---- admin.backup ----

using backup_atom = caf::atom_constant<caf::atom("backup")>;

/// One backup on a thread of its own (a flush and a log copy must not stall the actor pool),
/// then gone. Answers the manifest as JSON text, or the refusal as a typed error.
caf::behavior backup_worker(caf::event_based_actor* self, std::shared_ptr<online_backup> job) {
  return {[self, job](backup_atom, const std::string& dir) {
    auto rp = self->make_response_promise();
    auto out = job->run(dir);
    if (out.error.code == errc::none)
      rp.deliver(out.manifest.dump());
    else
      rp.deliver(actors::make_error(out.error));
    self->quit();
  }};
}

void start_backup(self_ptr self, const protocol::request& req) {
  auto& g = *self->state.g;
  if (g.backup->running()) {  // answered here: no thread for a request that cannot run
    refuse(self, req, errc::overloaded, backup_busy);
    return;
  }
  auto worker = self->spawn<caf::detached>(backup_worker, g.backup);
  self->request(worker, g.request_timeout, backup_atom::value, req.dir)
      .then([self, req](const std::string& manifest) { answer(self, req, json::parse(manifest)); },
            [self, req](caf::error& err) { refuse(self, req, err); });
}

// ---- dispatch ----

/// True when a session token names a user_id other than its own in an op that acts for one user.
/// Answered `forbidden` here, before any entity is asked, so that the reply and its timing are
/// the same whether that user exists or not (user ids cannot be probed; docs/PROTOCOL.md).
bool names_another_user(const protocol::request& req, const domain::principal& who) {
  switch (req.operation) {
    case op::user_get:
    case op::user_deposit:
    case op::order_list:
    case op::order_place:
      return !who.admin && !who.may_act_for(req.user_id);
    default:
      return false;
  }
}

void handle(self_ptr self, protocol::request req) {
  auto& g = *self->state.g;
  ++self->state.outstanding;
  g.in_flight.fetch_add(1, std::memory_order_relaxed);
  if (req.req_id.empty())
    req.req_id = g.request_ids.next();
  g.ctx->log().debug("node={} req={} op={} received", g.ctx->node_id(), req.req_id,
                     protocol::to_string(req.operation));
  if (g.draining.load()) {
    refuse(self, req, errc::unavailable, "the node is shutting down; retry on another node");
    return;
  }
  auto who_opt = authenticate(self, req);
  if (!who_opt) {
    refuse(self, req, errc::unauthorized, "invalid or expired token");
    return;
  }
  auto who = *who_opt;
  bool anonymous = !who.admin && who.user_id.empty();
  if (anonymous && !anonymous_allowed(req.operation)) {
    refuse(self, req, errc::unauthorized, "this operation needs a token");
    return;
  }
  if (names_another_user(req, who)) {
    refuse(self, req, errc::forbidden, "may not act for another user");
    return;
  }
  auto user = [&] { return actors::ref(entity_kind::user, req.user_id); };
  auto product = [&] { return actors::ref(entity_kind::product, req.product_id); };
  auto stock = [&] { return actors::ref(entity_kind::inventory, req.product_id); };
  auto order = [&] { return actors::ref(entity_kind::order, req.order_id); };
  using namespace actors;
  switch (req.operation) {
    case op::user_register:
      start_register(self, std::move(req));
      return;
    case op::user_login:
      start_login(self, std::move(req));
      return;
    case op::user_get:
      call<domain::user_view>(self, req, user(), as_json<domain::user_view>, read_atom::value, who);
      return;
    case op::user_deposit:
      call<domain::user_view>(
          self, req, user(),
          [](const domain::user_view& v) {
            return json{{"balance_cents", v.balance_cents}};
          },
          deposit_atom::value, who, req.request_id, req.amount_cents);
      return;
    case op::product_create:
      call<domain::product_view>(self, req, product(), as_json<domain::product_view>,
                                 create_atom::value, who, req.name, req.price_cents);
      return;
    case op::product_get:
      call<domain::product_view>(self, req, product(), as_json<domain::product_view>,
                                 read_atom::value, who);
      return;
    case op::inventory_add:
      call<domain::inventory_view>(self, req, stock(), as_json<domain::inventory_view>,
                                   restock_atom::value, who, req.request_id, req.quantity);
      return;
    case op::inventory_get:
      call<domain::inventory_view>(self, req, stock(), as_json<domain::inventory_view>,
                                   read_atom::value, who);
      return;
    case op::order_place:
      call<domain::order_view>(self, req, order(), as_json<domain::order_view>, place_atom::value,
                               who, req.user_id, req.items);
      return;
    case op::order_pay:
      call<domain::order_view>(self, req, order(), as_json<domain::order_view>, pay_atom::value,
                               who);
      return;
    case op::order_cancel:
      call<domain::order_view>(self, req, order(), as_json<domain::order_view>, cancel_atom::value,
                               who);
      return;
    case op::order_get:
      call<domain::order_view>(self, req, order(), as_json<domain::order_view>, read_atom::value,
                               who);
      return;
    case op::order_list:
      list_orders(self, req, who);
      return;
    case op::order_timeline:
      call<domain::order_timeline_view>(self, req, order(), as_json<domain::order_timeline_view>,
                                        timeline_atom::value, who);
      return;
    case op::admin_crash: {
      if (!who.admin) {
        refuse(self, req, errc::forbidden, "admin.crash needs the admin token");
        return;
      }
      if (!g.ctx->settings().fault_injection) {
        refuse(self, req, errc::forbidden,
               "fault injection is off (start orderd with --enable-fault-injection)");
        return;
      }
      entity_ref target{static_cast<uint8_t>(req.crash_kind), req.crash_id};
      g.ctx->log().warn("node={} entity={}/{} crash injected by admin.crash", g.ctx->node_id(),
                        domain::to_string(req.crash_kind), req.crash_id);
      caf::anon_send(g.ctx->route(target), target, crash_atom::value);
      answer(self, req, json::object());
      return;
    }
    case op::cluster_status:
      cluster_status(self, req);
      return;
    case op::admin_backup:
      if (!who.admin) {
        refuse(self, req, errc::forbidden, "admin.backup needs the admin token");
        return;
      }
      start_backup(self, req);
      return;
    case op::cluster_leave:
      if (!who.admin) {
        refuse(self, req, errc::forbidden, "cluster.leave needs the admin token");
        return;
      }
      if (g.alone) {
        refuse(self, req, errc::invalid_state,
               "a node alone (no --etcd) has nobody to hand its shards to: stop it with SIGTERM");
        return;
      }
      self->request(g.agent, g.request_timeout, cluster::leave_atom::value, req.node_id)
          .then(
              [self, req](bool ok) {
                if (ok)
                  answer(self, req, json{{"node_id", req.node_id}, {"state", "leaving"}});
                else
                  refuse(self, req, errc::not_found, "no member " + req.node_id);
              },
              [self, req](caf::error& err) { refuse(self, req, err); });
      return;
    case op::cluster_force_primary:
      if (!who.admin) {
        refuse(self, req, errc::forbidden, "cluster.force-primary needs the admin token");
        return;
      }
      if (g.alone) {
        refuse(self, req, errc::invalid_state, "a node alone has no replicas to promote");
        return;
      }
      self->request(g.agent, g.request_timeout, cluster::force_primary_atom::value,
                    static_cast<uint16_t>(req.shard), req.node_id)
          .then(
              [self, req](bool done, uint64_t epoch, const std::string& why) {
                if (!done) {
                  refuse(self, req, errc::invalid_state, why);
                  return;
                }
                answer(self, req,
                       json{{"shard", req.shard},
                            {"primary", req.node_id},
                            {"epoch", epoch},
                            {"warning", "forced: acknowledged writes that were not on " +
                                            req.node_id + " are lost"}});
              },
              [self, req](caf::error& err) { refuse(self, req, err); });
      return;
    case op::cluster_remove_member:
      remove_member(self, req, who);
      return;
  }
  refuse(self, req, errc::bad_request, "unknown op");
}

caf::behavior gateway_actor(self_ptr self, std::shared_ptr<gateway_shared> g,
                            std::shared_ptr<client_connection> conn) {
  self->state.g = std::move(g);
  self->state.address = conn->remote_address().to_string();
  self->state.conn = std::move(conn);
  self->set_exception_handler(
      [self](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
        try {
          std::rethrow_exception(eptr);
        } catch (const std::exception& e) {
          self->state.g->ctx->log().error("gateway: exception {}", e.what());
        }
        return caf::sec::runtime_error;
      });
  self->set_default_handler([self](caf::scheduled_actor*,
                                   caf::message_view& xs) -> caf::result<caf::message> {
    self->state.g->ctx->log().error("gateway: unexpected message {}", caf::to_string(xs.content()));
    return caf::sec::unexpected_message;
  });
  return {
      [self](protocol::request& req) {
        // A throw here would kill this connection's gateway (and leave its client hanging):
        // answer `internal` instead when the request was not answered yet. Nothing in handle()
        // is known to throw; this is the net under a bug, as parse_request has its own.
        const auto before = self->state.outstanding;
        auto id = req.id;
        try {
          handle(self, std::move(req));
        } catch (const std::exception& e) {
          self->state.g->ctx->log().error("gateway: request failed: {}", e.what());
          if (self->state.outstanding > before) {
            protocol::request failed;
            failed.id = std::move(id);
            refuse(self, failed, errc::internal, "internal error");
          }
        }
      },
      [self](const hashed& h) { finish_register(self, h); },
      [self](const verified& v) { finish_login(self, v); },
  };
}

/// Bridges the listener's I/O thread to the connection's gateway actor.
class gateway_handler : public connection_handler {
 public:
  gateway_handler(caf::actor actor, std::shared_ptr<gateway_shared> g,
                  std::shared_ptr<client_connection> conn)
      : actor_(std::move(actor)), g_(std::move(g)), conn_(std::move(conn)) {}

  void on_line(std::string line) override {
    // Parsing happens here, on the I/O thread, so bad input never reaches an actor.
    auto parsed = protocol::parse_request(line);
    if (!parsed.ok()) {
      meter_unparsed(parsed.error.code);
      conn_->send(protocol::render_error(parsed.id, parsed.error.code, parsed.error.message));
      return;
    }
    parsed.req.received = std::chrono::steady_clock::now();
    caf::anon_send(actor_, std::move(parsed.req));
  }

  void on_oversized() override {
    meter_unparsed(errc::too_large);
    conn_->send(protocol::render_error(nullptr, errc::too_large,
                                       "a request line may be at most 65536 bytes"));
  }

  void on_close() override {
    // The actor holds the connection; ending it breaks the cycle. Answers still in flight
    // are dropped by the closed connection.
    caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
    conn_.reset();
  }

 private:
  caf::actor actor_;
  std::shared_ptr<gateway_shared> g_;
  std::shared_ptr<client_connection> conn_;
};

}  // namespace

handler_factory make_gateway_factory(caf::actor_system& sys,
                                     std::shared_ptr<gateway_shared> shared) {
  return [&sys,
          shared](std::shared_ptr<client_connection> conn) -> std::unique_ptr<connection_handler> {
    auto actor = sys.spawn(gateway_actor, shared, conn);
    return std::make_unique<gateway_handler>(std::move(actor), shared, std::move(conn));
  };
}

}  // namespace ordermesh::node
