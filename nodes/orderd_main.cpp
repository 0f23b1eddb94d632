// orderd: one ordermesh node. Wires storage, the entity layer and the client listener, then
// serves until SIGTERM/SIGINT, when it stops taking requests, finishes what is in flight and
// exits 0 with everything acknowledged on disk.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <thread>

#include <sodium.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/entity_layer.hpp"
#include "actors/messages.hpp"
#include "actors/unavailable_responder.hpp"
#include "cluster/cluster_messages.hpp"
#include "cluster/member_agent.hpp"
#include "cluster/replica_sink.hpp"
#include "nodes/admin/admin_server.hpp"
#include "nodes/admin/node_status.hpp"
#include "nodes/backup_restore.hpp"
#include "nodes/client_listener.hpp"
#include "nodes/client_tls.hpp"
#include "nodes/cluster_transport/guarded_middleman.hpp"
#include "nodes/config.hpp"
#include "nodes/coordination_session.hpp"
#include "nodes/gateway.hpp"
#include "nodes/memory_release.hpp"
#include "nodes/node_logger.hpp"
#include "nodes/node_meta.hpp"
#include "nodes/node_metrics.hpp"
#include "nodes/password_hasher.hpp"
#include "nodes/password_limits.hpp"
#include "nodes/power_cut_hook.hpp"
#include "nodes/tls_identity.hpp"
#include "nodes/tls_peer_prover.hpp"
#include "persistence/storage_engine.hpp"

namespace om = ordermesh;

namespace {

/// orderd's exit code when its storage failed a write (documented in the README).
constexpr int storage_failed_exit_code = 3;
/// How long the actor system may take to stop before the process ends anyway (see its use).
constexpr std::chrono::seconds shutdown_bound{15};
/// --drain in a replicated cluster: how long SIGTERM waits for the leadership of this node's
/// shards to move (one guarded txn and a tail pull per shard: about a second measured).
constexpr std::chrono::seconds drain_leadership_bound{20};

/// Creates `dir` (mode 0700), or makes an existing one 0700 when group or others may enter it
/// (data dirs were created 0755 before). False, with *note saying why, when it cannot; otherwise
/// *note says what was tightened (empty if nothing was).
bool owner_only_dir(const std::string& dir, std::string* note) {
  if (::mkdir(dir.c_str(), 0700) == 0)
    return true;
  if (errno != EEXIST) {
    *note = "cannot create --data-dir " + dir + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *note = "--data-dir " + dir + " is not a directory";
    return false;
  }
  if ((st.st_mode & 077) == 0)
    return true;
  if (::chmod(dir.c_str(), 0700) != 0) {
    *note = "cannot make --data-dir " + dir + " mode 0700: " + std::strerror(errno);
    return false;
  }
  // The files inside stay as they were, but nobody else can reach them through the dir now.
  char old[8];
  std::snprintf(old, sizeof old, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  *note = "data dir " + dir + " was mode " + old + ": made it 0700 (owner only)";
  return true;
}

/// Makes an existing log file 0600 when group or others may read it (a new one is 0600 by the
/// umask). Returns what was done, empty if nothing; a failure is reported, not fatal.
std::string owner_only_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0)
    return {};
  char old[8];
  std::snprintf(old, sizeof old, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (::chmod(path.c_str(), 0600) != 0)
    return "log file " + path + " is mode " + old +
           " and could not be made 0600: " + std::strerror(errno);
  return "log file " + path + " was mode " + old + ": made it 0600 (owner only)";
}

/// A random admin token, written next to the data (mode 0600) when none was given.
std::string generated_admin_token(const std::string& data_dir, spdlog::logger& log) {
  auto path = data_dir + "/admin.token";
  std::ifstream in(path);
  std::string token;
  if (in && std::getline(in, token) && token.size() >= 16)
    return token;
  unsigned char raw[24];
  randombytes_buf(raw, sizeof raw);
  char hex[sizeof raw * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  token = hex;
  auto old = umask(077);
  std::ofstream out(path, std::ios::trunc);
  out << token << "\n";
  umask(old);
  log.warn("no --admin-token given: generated one in {}", path);
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = om::node::parse_config(argc, argv, &exit_code);
  if (!parsed)
    return exit_code;
  auto cfg = std::move(*parsed);
  // A certificate that cannot work is a configuration error, said now rather than found out at
  // the first handshake in some peer's log.
  const bool cluster_tls = !cfg.tls_cert.empty();
  // Tests only (the impostor of tests/system/peer_identity_test.py): skips this convenience
  // check, which guards against a wrong file, not against an attacker (who can build a binary
  // without it); the peers' check of the hello's proof is the boundary.
  const bool skip_own_cert_check = std::getenv("ORDERMESH_TEST_SKIP_OWN_CERT_CHECK") != nullptr;
  if (cluster_tls && !skip_own_cert_check) {
    auto why = om::node::check_tls_identity(cfg.tls_cert, cfg.tls_key, cfg.tls_ca, cfg.node_id);
    if (!why.empty()) {
      std::cerr << "orderd: " << why << "\n";
      return 2;
    }
  }
  std::shared_ptr<om::cluster::identity::identity_prover> prover;
  if (cluster_tls) {
    std::string why;
    prover = om::node::make_tls_peer_prover(cfg.tls_cert, cfg.tls_key, cfg.tls_ca, &why);
    if (!prover) {
      std::cerr << "orderd: " << why << "\n";
      return 2;
    }
  }
  std::shared_ptr<boost::asio::ssl::context> client_tls;
  if (!cfg.client_tls_cert.empty()) {
    std::string why;
    client_tls = om::node::make_client_tls_context(cfg.client_tls_cert, cfg.client_tls_key, &why);
    if (!client_tls) {
      std::cerr << "orderd: " << why << "\n";
      return 2;
    }
  }
  if (sodium_init() < 0) {
    std::cerr << "orderd: libsodium failed to initialise\n";
    return 1;
  }
  // Block the stop signals in every thread; main waits for them with sigwait. SIGHUP too: it
  // reopens the log file (logrotate) instead of killing the node.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // Test-only simulated power cut (nodes/power_cut_hook.hpp); before any thread starts.
  auto power_cut = om::node::power_cut_hook::from_environment();

  // Everything orderd creates (data dir, RocksDB files, admin.token, log file) is its own
  // user's alone: the journal holds password hashes and balances. Set before anything is created.
  ::umask(077);
  // Backup and restore (docs/OPERATIONS.md): a restore fills the empty data dir before anything
  // opens it; the node then starts on the copy as on any data dir.
  std::string restored;
  if (!cfg.restore_from.empty() &&
      !om::node::restore_backup({cfg.restore_from, cfg.data_dir, cfg.node_id, cfg.shards},
                                &restored)) {
    std::cerr << "orderd: --restore-from: " << restored << "\n";
    return 2;
  }
  if (struct stat bst{}; !cfg.backup_dir.empty() &&
                         (::stat(cfg.backup_dir.c_str(), &bst) != 0 || !S_ISDIR(bst.st_mode))) {
    std::cerr << "orderd: --backup-dir " << cfg.backup_dir << " is not an existing directory\n";
    return 2;
  }
  std::string tightened;
  if (!owner_only_dir(cfg.data_dir, &tightened)) {
    std::cerr << "orderd: " << tightened << "\n";
    return 1;
  }
  std::string log_tightened;
  if (!cfg.log_file.empty())
    log_tightened = owner_only_file(cfg.log_file);
  om::node::log_format log_format{};
  om::node::parse_log_format(cfg.log_format, log_format);  // checked by parse_config
  om::node::node_logger logger;
  try {
    logger = om::node::make_node_logger(cfg.node_id, cfg.log_level, log_format, cfg.log_file);
  } catch (const spdlog::spdlog_ex& e) {
    std::cerr << "orderd: --log-file " << cfg.log_file << ": " << e.what() << "\n";
    return 1;
  }
  auto log = logger.log;
  if (!restored.empty())
    log->warn("node={} {}", cfg.node_id, restored);
  if (!tightened.empty())
    log->warn("node={} {}", cfg.node_id, tightened);
  if (!log_tightened.empty())
    log->warn("node={} {}", cfg.node_id, log_tightened);
  if (cfg.admin_token_on_command_line)
    log->warn(
        "node={} --admin-token on the command line is visible to every local user (ps); "
        "prefer --admin-token-file or ORDERMESH_ADMIN_TOKEN",
        cfg.node_id);
  if (skip_own_cert_check)
    log->critical(
        "node={} ORDERMESH_TEST_SKIP_OWN_CERT_CHECK is set: the start-up check of this node's "
        "certificate is skipped (tests only)",
        cfg.node_id);
  if (cfg.insecure_cluster && !cfg.etcd.empty())
    log->warn(
        "node={} --insecure-cluster: the cluster port {}:{} speaks plain CAF BASP without "
        "authentication; anyone who can reach it is a member (reads and writes every shard, "
        "and can make this node buffer gigabytes): use it on a laptop only, never on a network",
        cfg.node_id, cfg.cluster_host, cfg.cluster_port);
  if (cfg.entities.fault_ack_without_write)
    log->warn(
        "node={} --fault-ack-without-write: deposits are acknowledged WITHOUT being "
        "written; a restart loses them (a planted fault for the chaos checker)",
        cfg.node_id);
  if (cfg.admin_token.empty()) {
    cfg.admin_token = generated_admin_token(cfg.data_dir, *log);
    if (!cfg.etcd.empty())
      log->warn(
          "node={} a cluster node needs the cluster's admin token (--admin-token-file): one "
          "generated here is refused unless this node is the cluster's first",
          cfg.node_id);
  }

  om::persistence::storage_options sopts;
  sopts.path = cfg.data_dir + "/db";
  if (power_cut) {
    sopts.file_system = power_cut->file_system();
    power_cut->arm(log, cfg.node_id);
  }
  sopts.check_shard_epochs = true;  // a node writes only shards it owns, under their epoch
  // In a cluster every synced batch passes the replica sink: batches of shards with replicas
  // on other nodes are acknowledged only once the in-sync ones hold them (issue 12); the rest
  // at once. A node alone captures nothing.
  std::shared_ptr<om::cluster::replica_sink> sink;
  if (!cfg.etcd.empty()) {
    sink = std::make_shared<om::cluster::replica_sink>();
    sopts.replication = sink;
  } else {
    sopts.persist_replica_positions = false;  // a lone node's disk never joins a cluster
  }
  om::persistence::status st;
  auto storage = om::persistence::storage_engine::open(sopts, &st);
  if (!storage) {
    log->critical("node={} cannot open storage at {}: {}", cfg.node_id, sopts.path, st.to_string());
    return 1;
  }
  std::string why;
  if (!om::node::check_node_meta(*storage, cfg, &why)) {
    log->critical("node={} {}", cfg.node_id, why);
    return 1;
  }
  const int64_t disk = om::node::disk_identity(*storage, &why);
  if (disk == 0) {
    log->critical("node={} {}", cfg.node_id, why);
    return 1;
  }
  // The store that decides membership and the shard map: etcd, or a local one for a node alone.
  auto coordination = om::node::open_coordination(*storage, cfg, &why);
  if (!coordination) {
    log->critical("node={} {}", cfg.node_id, why);
    return 2;
  }
  // Sessions minted on one node must verify on every other: refuse a cluster whose admin token
  // differs, before this node becomes a member of it.
  if (!cfg.etcd.empty() && !om::node::check_admin_secret(*coordination, cfg, &why)) {
    log->critical("node={} {}", cfg.node_id, why);
    return 1;
  }

  int rc = 0;
  {
    caf::actor_system_config caf_cfg;
    om::actors::add_message_types(caf_cfg);
    om::cluster::add_message_types(caf_cfg);
    caf_cfg.load<caf::io::middleman>();
    if (cluster_tls) {
      // With certificate, key and CA set, CAF's OpenSSL module verifies both sides of every
      // cluster connection against the cluster CA (mutual TLS, no hostname check).
      caf_cfg.load<caf::openssl::manager>();
      caf_cfg.openssl_certificate = cfg.tls_cert;
      caf_cfg.openssl_key = cfg.tls_key;
      caf_cfg.openssl_cafile = cfg.tls_ca;
    }
    // BASP's own keep-alive, so a silent peer's connection is noticed and dropped even without
    // traffic (its shards then route to `unavailable`). Who is a member is etcd's to say.
    caf_cfg.set("middleman.heartbeat-interval", caf::timespan{cfg.heartbeat_interval});
    if (cfg.scheduler_threads > 0)
      caf_cfg.set("scheduler.max-threads", cfg.scheduler_threads);
    // Sharing by default: CAF's work stealing keeps idle workers polling with 50 us sleeps,
    // which cost a third of a core per idle node here and a quarter of the throughput under
    // load on 2 cores (docs/BENCHMARKS.md, "Scheduler policy").
    if (cfg.scheduler_policy == "stealing")
      caf_cfg.set("scheduler.policy", caf::atom("stealing"));
    else
      caf_cfg.set("scheduler.policy", caf::atom("sharing"));
    caf::actor_system sys{caf_cfg};

    auto ctx = std::make_shared<om::actors::node_context>(cfg.node_id, storage.get(), cfg.entities,
                                                          cfg.shards, log);
    if (sink) {
      // Reads of a replicated shard wait for the read barrier of this node's replica leader.
      ctx->set_read_barrier([sink](uint16_t shard) { return sink->read_barrier(shard); });
    }
    auto layer = om::actors::start_entity_layer(sys, ctx);
    auto unavailable = om::actors::spawn_unavailable_responder(sys);

    // The member agent follows the store: it owns, hands over and routes shards.
    std::promise<void> left;
    auto left_future = left.get_future();
    std::atomic<bool> left_once{false};
    std::promise<void> drained;  // --drain in a replicated cluster: it leads nothing any more
    auto drained_future = drained.get_future();
    std::atomic<bool> drained_once{false};
    om::cluster::member_agent_config mcfg;
    mcfg.node_id = cfg.node_id;
    mcfg.cluster_address = cfg.cluster_host + ":" + std::to_string(cfg.cluster_port);
    mcfg.client_address = cfg.client_host + ":" + std::to_string(cfg.client_port);
    mcfg.shard_count = cfg.shards;
    mcfg.lease_ttl = cfg.lease_ttl;
    mcfg.max_concurrent_moves = cfg.max_moves;
    mcfg.chunk_bytes = cfg.handoff_chunk_bytes;
    mcfg.chunk_delay = cfg.handoff_chunk_delay;
    mcfg.replication_factor = cfg.replication_factor;
    mcfg.min_insync = cfg.min_insync;
    mcfg.replica_lag_timeout = cfg.replica_lag_timeout;
    mcfg.commit_timeout = cfg.commit_timeout;
    mcfg.suspect_after = cfg.suspect_after;
    mcfg.dead_member_timeout = cfg.dead_member_timeout;
    mcfg.bootstrap_grace = cfg.bootstrap_grace;
    mcfg.disk = disk;
    om::cluster::agent_hooks hooks;
    hooks.supervisors = layer.supervisors;
    hooks.wakeups = layer.wakeups;
    hooks.unavailable = unavailable;
    hooks.publish_routes = [ctx](om::cluster::routing_ptr r) { ctx->set_routes(std::move(r)); };
    if (!cfg.etcd.empty()) {
      // In a cluster nothing is served before the first lease, nor past the last one. A node
      // alone has nobody to lose its shards to: it does not gate on its (local) lease.
      ctx->set_lease_until(0);
      hooks.set_lease_until = [ctx](int64_t until_ns) { ctx->set_lease_until(until_ns); };
    }
    hooks.prover = prover;
    auto cut_off = std::make_shared<std::atomic<bool>>(false);
    hooks.on_cut_off = [cut_off](bool cut) { cut_off->store(cut); };
    // The cluster port through orderd's own middleman (docs/SECURITY.md, "Cluster plane"):
    // TLS or plain, with a connection cap, a handshake deadline and a BASP frame bound.
    om::cluster_transport::transport_options topts;
    topts.tls = cluster_tls;
    topts.guard.limits.deadline = cfg.cluster_handshake_timeout;
    topts.guard.limits.max_pending = cfg.cluster_max_pending;
    topts.guard.limits.max_total = cfg.cluster_max_connections;
    topts.guard.max_frame_bytes = cfg.cluster_max_frame_bytes;
    topts.guard.node_id = cfg.node_id;
    topts.guard.log = log;
    // A link silent for twice the suspicion delay is dropped and dialed again (tcp_dial.hpp):
    // by then the member is suspected anyway, and a fresh connection is up as soon as a
    // partition heals. Without suspicion, the kernel's defaults.
    if (cfg.suspect_after.count() > 0)
      topts.user_timeout = std::max(std::chrono::milliseconds{1000}, cfg.suspect_after * 2);
    auto transport = std::make_shared<om::cluster_transport::cluster_transport>(sys, topts);
    // Weak: the transport stops (in this scope, before the actor system) whoever holds the hook.
    hooks.connect = [weak = std::weak_ptr(transport)](caf::actor_system&, const std::string& host,
                                                      uint16_t port) -> caf::expected<caf::actor> {
      if (auto t = weak.lock())
        return t->remote_actor(host, port);
      return caf::make_error(caf::sec::cannot_connect_to_node);
    };
    hooks.on_left = [&left, &left_once] {
      if (!left_once.exchange(true))
        left.set_value();
    };
    std::atomic<bool> refused{false};
    hooks.on_drained = [&drained, &drained_once] {
      if (!drained_once.exchange(true))
        drained.set_value();
    };
    hooks.on_refused = [&left, &left_once, &refused](const std::string&) {
      refused = true;
      if (!left_once.exchange(true))
        left.set_value();
    };
    auto agent = om::cluster::spawn_member_agent(sys, mcfg, *storage, hooks,
                                                 std::move(coordination), log, sink);
    // A node alone has no peers: nothing would ever connect to its cluster port, so it does
    // not listen on one (one port fewer for an attacker to reach).
    const bool listens = !cfg.etcd.empty();
    caf::expected<uint16_t> published{cfg.cluster_port};
    if (listens)
      published = transport->publish(agent, cfg.cluster_port, cfg.cluster_host);
    if (!published) {
      log->critical("node={} cannot listen for cluster traffic on {}: {}", cfg.node_id,
                    mcfg.cluster_address, sys.render(published.error()));
      rc = 1;
    }
    // The admin port (--admin-port): health, metrics and the status page over HTTP on a thread
    // of its own, up before the join so that /readyz answers 503 until the node is ready.
    om::node::admin::node_status admin_status(sys, agent, ctx, {});
    std::unique_ptr<om::node::admin::admin_server> admin_http;
    if (rc == 0 && cfg.admin_port != 0) {
      admin_status.start();
      om::node::admin::admin_server_options aopts;
      aopts.host = cfg.admin_bind;
      aopts.port = cfg.admin_port;
      admin_http = std::make_unique<om::node::admin::admin_server>(aopts, admin_status.sources());
      if (!admin_http->start(&why)) {
        log->critical("node={} {}", cfg.node_id, why);
        rc = 1;
      } else {
        log->info("node={} admin port on {}:{} (/livez /readyz /metrics /status)", cfg.node_id,
                  cfg.admin_bind, admin_http->bound_port());
      }
    }
    // Serve clients only once this node knows the shard map (at once for a node alone).
    auto join_deadline = std::chrono::steady_clock::now() + cfg.join_timeout;
    while (rc == 0 && !ctx->routes() && !refused &&
           std::chrono::steady_clock::now() < join_deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (refused)
      rc = 1;
    if (rc == 0 && !ctx->routes()) {
      log->critical("node={} could not join the cluster through {} within the join timeout",
                    cfg.node_id, cfg.etcd.empty() ? "its local store" : "etcd at " + cfg.etcd);
      rc = 1;
    }

    om::node::password_pool_options popts;
    // Half the cores by default: hashing is CPU- and memory-bound, and the other half keeps
    // the actors (every other request) responsive under a registration flood.
    popts.threads = cfg.password_threads > 0
                        ? cfg.password_threads
                        : std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
    popts.max_queued = cfg.password_queue;
    popts.max_queued_per_address = cfg.password_queue_per_address;
    om::node::password_hasher hasher(cfg.pwhash == "fast"
                                         ? om::node::password_hasher::cost::fast
                                         : om::node::password_hasher::cost::interactive,
                                     popts);
    om::node::password_limit_options lim;
    lim.per_user_rate = cfg.login_rate_per_user;
    lim.per_user_burst = cfg.login_burst_per_user;
    lim.per_address_rate = cfg.login_rate_per_address;
    lim.per_address_burst = cfg.login_burst_per_address;
    om::node::password_limits limits(lim);
    auto shared = std::make_shared<om::node::gateway_shared>(ctx, cfg.admin_token, hasher, limits,
                                                             cfg.request_timeout, cfg.session_ttl);
    shared->agent = agent;
    shared->alone = cfg.etcd.empty();
    shared->cut_off = cut_off;
    shared->backup = std::make_shared<om::node::online_backup>(*storage, cfg.backup_dir,
                                                               cfg.node_id, cfg.shards, log);
    om::node::listener_options lopts;
    lopts.host = cfg.client_host;
    lopts.port = cfg.client_port;
    lopts.max_connections = cfg.max_connections;
    lopts.max_connections_per_address = cfg.max_connections_per_address;
    lopts.max_in_flight = cfg.max_in_flight_per_connection;
    lopts.max_unsent_bytes = cfg.max_unsent_bytes;
    lopts.idle_timeout = cfg.client_idle_timeout;
    lopts.line_timeout = cfg.client_line_timeout;
    lopts.tls = client_tls;
    lopts.handshake_timeout = cfg.client_tls_handshake_timeout;
    om::node::client_listener listener(lopts, om::node::make_gateway_factory(sys, shared));
    const om::node::node_metrics metrics(*shared, listener);  // destroyed before the listener
    if (rc != 0) {
      // could not publish or join: nothing to serve
    } else if (!listener.start(&why)) {
      log->critical("node={} {}", cfg.node_id, why);
      rc = 1;
    } else {
      shared->client_address = cfg.client_host + ":" + std::to_string(listener.bound_port());
      admin_status.set_serving(&shared->requests);
      log->info("node={} ready: clients on {}{}, {} shards, data in {}, allocator {}", cfg.node_id,
                shared->client_address, client_tls ? " (TLS)" : "", cfg.shards, cfg.data_dir,
                om::node::allocator_name());
      // Wait for SIGTERM/SIGINT, or for the cluster to let this node go after cluster.leave.
      int sig = 0;
      timespec poll_interval{0, 100 * 1000 * 1000};
      // After a burst (e.g. a client pipelining order.list), give the freed memory back.
      om::node::memory_releaser releaser(std::chrono::seconds(10));
      for (;;) {
        sig = sigtimedwait(&stop_signals, nullptr, &poll_interval);
        if (sig == SIGHUP) {
          logger.reopen();
          log->info("node={} SIGHUP: {}", cfg.node_id,
                    cfg.log_file.empty() ? "no --log-file to reopen" : "reopened the log file");
          sig = 0;
        }
        if (sig > 0)
          break;
        releaser.poll(shared->requests.load(), shared->in_flight.load());
        // Fail-stop on a failed write (fsync error, disk full): nothing after it was
        // acknowledged, but the page cache may no longer match the disk, so the only safe way
        // on is a restart that replays the journal from disk (as PostgreSQL PANICs on fsync).
        if (auto health = storage->health(); !health.is_ok()) {
          log->critical(
              "node={} storage failed ({}): exiting with code {} so that a restart "
              "recovers from the journal",
              cfg.node_id, health.to_string(), storage_failed_exit_code);
          log->flush();
          std::_Exit(storage_failed_exit_code);
        }
        if (left_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
          break;
      }
      admin_status.set_draining();  // /readyz fails from the signal on, drain included
      if (sig > 0 && cfg.drain && cfg.etcd.empty())
        log->info("node={} --drain: a node alone has nobody to hand its shards to", cfg.node_id);
      if (sig > 0 && cfg.drain && !cfg.etcd.empty() &&
          left_future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        // --drain: in a replicated cluster, hand the leadership of every shard it leads to an
        // in-sync replica (its replicas stay: it comes back as a follower), so that no client
        // waits for a failover; else hand every shard to the other members. Both bounded.
        bool replicated = false;
        {
          caf::scoped_actor asker{sys};
          asker->request(agent, std::chrono::seconds(5), om::cluster::drain_atom::value)
              .receive([&replicated](bool yes) { replicated = yes; },
                       [&](caf::error& err) {
                         log->warn("node={} --drain: {}", cfg.node_id, sys.render(err));
                       });
        }
        if (replicated) {
          log->info("node={} signal {}: moving the leadership of its shards to in-sync replicas",
                    cfg.node_id, sig);
          if (drained_future.wait_for(drain_leadership_bound) != std::future_status::ready)
            log->warn(
                "node={} --drain: still leads shards after {} s; stopping anyway (they fail over "
                "to their in-sync replicas)",
                cfg.node_id,
                std::chrono::duration_cast<std::chrono::seconds>(drain_leadership_bound).count());
        } else {
          log->info("node={} signal {}: handing off its shards before leaving", cfg.node_id, sig);
          caf::scoped_actor leaver{sys};  // the agent takes leave from a sender of this node
          leaver->send(agent, om::cluster::leave_atom::value, cfg.node_id);
          left_future.wait_for(std::chrono::minutes(5));
        }
      }
      if (refused)
        rc = 1;
      log->info("node={} {}: draining", cfg.node_id,
                sig > 0 ? "signal " + std::to_string(sig) : std::string("left the cluster"));
      // Stop taking requests, let those in flight finish (bounded), then stop.
      shared->draining = true;
      listener.stop_accepting();
      // Requests already sent keep arriving for a moment: they are answered `unavailable`
      // rather than cut off, so clients know to retry elsewhere.
      auto start = std::chrono::steady_clock::now();
      auto deadline = start + cfg.request_timeout + std::chrono::seconds(1);
      auto grace = start + std::chrono::milliseconds(200);
      while ((shared->in_flight.load() > 0 || std::chrono::steady_clock::now() < grace) &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      listener.stop();
    }
    // A bound on the shutdown: ~actor_system waits for every actor, and one that never ends
    // (a cause not found yet: a node that had just left a replicated cluster hung here once in
    // CI) must not keep the process alive. Everything acknowledged is synced already, so ending
    // here is as safe as a kill -9: the next start recovers from the journal.
    std::thread([log, node_id = cfg.node_id, rc] {
      std::this_thread::sleep_for(shutdown_bound);
      log->error("node={} shutdown did not finish within {} s: exiting now", node_id,
                 std::chrono::duration_cast<std::chrono::seconds>(shutdown_bound).count());
      log->flush();
      std::_Exit(rc);
    }).detach();
    if (admin_http)
      admin_http->stop();
    admin_status.stop();
    caf::anon_send_exit(agent, caf::exit_reason::kill);
    caf::anon_send_exit(unavailable, caf::exit_reason::kill);
    if (listens)
      sys.middleman().unpublish(agent, cfg.cluster_port);
    om::actors::stop_entity_layer(layer);
    // ~actor_system waits for every actor to finish.
  }
  // ~storage_engine commits and syncs whatever is still queued before closing.
  storage.reset();
  log->info("node={} stopped", cfg.node_id);
  return rc;
}
