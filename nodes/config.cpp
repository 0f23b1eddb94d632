#include "nodes/config.hpp"

#include <algorithm>
#include <iostream>

#include <unistd.h>
#include <boost/asio/ip/address.hpp>

#include <boost/program_options.hpp>

#include "cluster/sharding.hpp"
#include "domain/types.hpp"
#include "nodes/config_sources.hpp"
#include "nodes/secret_file.hpp"
#include "nodes/version.hpp"

namespace ordermesh::node {

namespace po = boost::program_options;

namespace {

/// Read by parse_config itself, not as a flag: it applies only when neither --admin-token nor
/// --admin-token-file is given anywhere (as before --config and ORDERMESH_<FLAG> existed).
const std::string admin_token_variable = "ORDERMESH_ADMIN_TOKEN=";

/// --admin-token and --admin-token-file are one setting given two ways: when a higher source
/// gave either, a lower source's other is dropped rather than refused as a conflict.
void drop_shadowed(po::parsed_options& lower, const po::variables_map& higher) {
  if (!higher.count("admin-token") && !higher.count("admin-token-file"))
    return;
  auto& o = lower.options;
  o.erase(std::remove_if(o.begin(), o.end(),
                         [](const po::option& x) {
                           return x.string_key == "admin-token" ||
                                  x.string_key == "admin-token-file";
                         }),
          o.end());
}

}  // namespace

bool parse_duration(const std::string& text, std::chrono::milliseconds& out) {
  if (text.empty() || text.size() > 32)
    return false;
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  if (digits == 0 || digits > 12)
    return false;
  int64_t n = std::stoll(text.substr(0, digits));
  auto unit = text.substr(digits);
  int64_t ms_per_unit;
  if (unit.empty() || unit == "s")
    ms_per_unit = 1000;
  else if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "m")
    ms_per_unit = 60 * 1000;
  else if (unit == "h")
    ms_per_unit = 3600 * 1000;
  else
    return false;
  out = std::chrono::milliseconds(n * ms_per_unit);
  return true;
}

std::string check_cluster_tls_flags(const node_config& c) {
  int given = !c.tls_cert.empty() + !c.tls_key.empty() + !c.tls_ca.empty();
  if (given != 0 && given != 3)
    return "--tls-cert, --tls-key and --tls-ca go together: give all three (missing:" +
           std::string(c.tls_cert.empty() ? " --tls-cert" : "") +
           (c.tls_key.empty() ? " --tls-key" : "") + (c.tls_ca.empty() ? " --tls-ca" : "") + ")";
  if (given == 3 && c.insecure_cluster)
    return "--insecure-cluster and the --tls-* flags exclude each other: give one";
  // BASP trusts every peer (ENGINEERING.md §2 note 9): a cluster without TLS must be asked for.
  if (!c.etcd.empty() && given == 0 && !c.insecure_cluster)
    return "a cluster node (--etcd) needs --tls-cert, --tls-key and --tls-ca (make them with "
           "scripts/gen-certs.sh DIR NODE_ID), or --insecure-cluster to run without TLS, where "
           "anyone who reaches the cluster port is a member";
  return {};
}

std::vector<std::string> process_environment() {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry)
    env.emplace_back(*entry);
  return env;
}

std::optional<node_config> parse_config(int argc, char** argv, int* exit_code) {
  return parse_config(argc, argv, process_environment(), exit_code, std::cout, std::cerr);
}

std::optional<node_config> parse_config(int argc, char** argv, const std::vector<std::string>& env,
                                        int* exit_code, std::ostream& out, std::ostream& err) {
  node_config c;
  std::string reservation_ttl = "15m", passivate_after = "5m", request_timeout = "10s";
  std::string passivate_settled_after = "30s";
  std::string step_timeout = "2s", restart_window = "10s", quarantine_for = "30s";
  std::string heartbeat_interval = "500ms", join_timeout = "30s";
  std::string handoff_chunk_delay = "0ms", lease_ttl = "3s";
  std::string replica_lag_timeout = "1s", commit_timeout = "6s", suspect_after = "1s";
  std::string dead_member_timeout = "5m", bootstrap_grace = "10s";
  std::string client_idle_timeout = "300s", client_line_timeout = "10s";
  std::string client_tls_handshake_timeout = "5s", cluster_handshake_timeout = "5s";
  uint32_t replication_factor = 0, min_insync = 0;  // 0: the default for the mode
  // Caps on one user's unpaid reservations (docs/SECURITY.md, "Reservation caps"): 20 open
  // orders is far more than a person pays at once, and 1000 units lets one order of a few
  // hundred through, while a user without money can no longer hold a whole stock.
  int64_t max_open_orders = 20, max_reserved_units = 1000;
  uint32_t snapshot_every = c.entities.snapshot_every, restart_limit = c.entities.restart_limit;
  uint32_t client_port = c.client_port, cluster_port = c.cluster_port, shards = c.shards;
  uint32_t admin_port = 0;
  // The unit of every duration and size, in --help (the unit test checks every such flag).
  auto duration = [](std::string* text) { return po::value(text)->value_name("DURATION"); };
  auto bytes = [](size_t* n) { return po::value(n)->value_name("BYTES"); };
  po::options_description opts("orderd options");
  opts.add_options()("help,h", "print this help")("version", "print orderd's version")(
      "config", po::value(&c.config_file)->value_name("FILE"),
      "read settings from FILE, `key = value` lines with the long flags' names "
      "(node-id = n1); the command line and ORDERMESH_* variables win over it")(
      "node-id", po::value(&c.node_id), "this node's id ([A-Za-z0-9._-]{1,64}), required")(
      "data-dir", po::value(&c.data_dir), "directory of this node's RocksDB, required")(
      "backup-dir", po::value(&c.backup_dir),
      "absolute directory under which admin.backup may create backups (default: none, "
      "admin.backup is refused)")(
      "restore-from", po::value(&c.restore_from),
      "copy this backup (a directory admin.backup made) into --data-dir, which must be empty "
      "or absent, then start")("client-host", po::value(&c.client_host),
                               "address clients connect to (default 127.0.0.1)")(
      "client-port", po::value(&client_port), "client protocol port (default 7400)")(
      "client-idle-timeout", duration(&client_idle_timeout),
      "close a client connection with no request in flight that sent and received nothing "
      "for this long (300s)")(
      "client-line-timeout", duration(&client_line_timeout),
      "close a client connection whose request line is not complete this long after its "
      "first byte (10s)")(
      "client-tls-cert", po::value(&c.client_tls_cert)->value_name("FILE"),
      "serve clients over TLS with this certificate (PEM, then any intermediates); needs "
      "--client-tls-key (default: plain TCP)")("client-tls-key",
                                               po::value(&c.client_tls_key)->value_name("FILE"),
                                               "the private key (PEM) of --client-tls-cert")(
      "client-tls-handshake-timeout", duration(&client_tls_handshake_timeout),
      "close a TLS client connection whose handshake is not done this long after it "
      "connected (5s)")(
      "max-connections", po::value(&c.max_connections),
      "client connections in all; beyond: one overloaded line, then closed (1024)")(
      "max-connections-per-address", po::value(&c.max_connections_per_address),
      "client connections from one IP address, below --max-connections (256)")(
      "max-unsent-bytes", bytes(&c.max_unsent_bytes),
      "bytes of replies queued for one client connection before it stops being read, "
      "until the client reads them (1048576)")("cluster-host", po::value(&c.cluster_host),
                                               "address for node-to-node traffic")(
      "cluster-port", po::value(&cluster_port), "node-to-node port (default 7500)")(
      "etcd", po::value(&c.etcd),
      "http://host:port,... or https://host:port,... of etcd: membership and shards decided "
      "there (empty: no etcd); https needs --tls-cert, --tls-key and --tls-ca")(
      "cluster", po::value(&c.cluster_name), "cluster name, etcd keys under /ordermesh/NAME/")(
      "tls-cert", po::value(&c.tls_cert),
      "this node's certificate (PEM) for the cluster plane and etcd's https; its CN or a DNS "
      "name must be --node-id (with --etcd: required with --tls-key and --tls-ca, or "
      "--insecure-cluster)")("tls-key", po::value(&c.tls_key),
                             "the private key (PEM) of --tls-cert")(
      "tls-ca", po::value(&c.tls_ca),
      "the cluster CA (PEM): peers must present a certificate it signed")(
      "insecure-cluster", po::bool_switch(&c.insecure_cluster),
      "a cluster without TLS: anyone who reaches the cluster port is a member (a laptop only)")(
      "lease-ttl", duration(&lease_ttl),
      "membership lease in etcd; a node that cannot renew it stops serving sooner (3s)")(
      "replication-factor", po::value(&replication_factor),
      "copies of each shard on distinct nodes, set when the cluster is created (3 with --etcd: "
      "the cluster starts once that many nodes joined; 1, the only value, without --etcd)")(
      "min-insync", po::value(&min_insync),
      "in-sync copies a write needs before it is acknowledged (2 when --replication-factor > 1)")(
      "replica-lag-timeout", duration(&replica_lag_timeout),
      "a replica not caught up, or not heard from, for this long leaves the in-sync set (1s)")(
      "commit-timeout", duration(&commit_timeout),
      "a write its in-sync replicas did not acknowledge by then answers unavailable (6s)")(
      "suspect-after", duration(&suspect_after),
      "replicated cluster: the controller moves the shards a member leads to in-sync replicas "
      "once its cluster connection has been down, or it has not answered the controller's "
      "ping, this long, without waiting for its lease to expire (1s; 0s: wait for the lease)")(
      "dead-member-timeout", duration(&dead_member_timeout),
      "replicated cluster: a node without a lease (no member key) for this long is removed as "
      "cluster.remove-member would: its replicas are copied to live members, then it is dropped "
      "(a duration such as 90s or 5m; 5m; 0s: never, only cluster.remove-member)")(
      "bootstrap-grace", duration(&bootstrap_grace),
      "replicated cluster, first start: how long the first members wait for "
      "--replication-factor of them before creating the cluster on fewer, at least --min-insync "
      "(the missing replicas are added as nodes join) (10s, less than the join timeout; 0s: wait "
      "for "
      "all, which the default becomes when the join timeout is 10s or less)")(
      "admin-token", po::value(&c.admin_token),
      "admin token (or env ORDERMESH_ADMIN_TOKEN); visible in ps: prefer --admin-token-file")(
      "admin-token-file", po::value(&c.admin_token_file),
      "file holding the admin token (mode 0600 or stricter; one trailing newline is dropped)")(
      "shards", po::value(&shards), "shard count, fixed when the data dir is created (default 64)")(
      "reservation-ttl", duration(&reservation_ttl), "unpaid reservations lapse after (15m)")(
      "max-open-orders-per-user", po::value(&max_open_orders),
      "unpaid reservations one user may hold at once; beyond: limit_exceeded (20; 0: unlimited)")(
      "max-reserved-units-per-user", po::value(&max_reserved_units),
      "units one user may hold reserved unpaid, all orders together (1000; 0: unlimited)")(
      "snapshot-every", po::value(&snapshot_every), "snapshot an entity every N events (100)")(
      "passivate-after", duration(&passivate_after), "idle entities leave memory after (5m)")(
      "passivate-settled-after", duration(&passivate_settled_after),
      "idle PAID, CANCELLED or REJECTED orders leave memory after (30s)")(
      "request-timeout", duration(&request_timeout), "a client request's deadline (10s)")(
      "step-timeout", duration(&step_timeout), "a saga step's deadline before retrying (2s)")(
      "restart-limit", po::value(&restart_limit), "crashes within --restart-window (5) ...")(
      "restart-window", duration(&restart_window), "... that quarantine an entity (10s)")(
      "quarantine-for", duration(&quarantine_for), "how long a quarantine lasts (30s)")(
      "enable-fault-injection", po::bool_switch(&c.entities.fault_injection), "accept admin.crash")(
      "log-level", po::value(&c.log_level), "trace|debug|info|warn|error (info)")(
      "log-file", po::value(&c.log_file),
      "log to this file instead of stderr; SIGHUP reopens it (after logrotate moved it)")(
      "log-format", po::value(&c.log_format), "text (default) or json: one JSON object a line")(
      "pwhash", po::value(&c.pwhash), "interactive (default) or fast (tests, benchmarks)")(
      "login-rate-per-user", po::value(&c.login_rate_per_user),
      "user.login and user.register attempts per second for one user id; beyond: overloaded "
      "(5; 0: unlimited)")("login-burst-per-user", po::value(&c.login_burst_per_user),
                           "attempts one user id may make at once before the rate applies (10)")(
      "login-rate-per-address", po::value(&c.login_rate_per_address),
      "user.login and user.register attempts per second from one client address (20; 0: "
      "unlimited, e.g. for benchmarks that log in thousands of users)")(
      "login-burst-per-address", po::value(&c.login_burst_per_address),
      "attempts one address may make at once before the rate applies (40)")(
      "password-threads", po::value(&c.password_threads),
      "threads hashing and checking passwords (0: half the cores, at least 1)")(
      "password-queue", po::value(&c.password_queue),
      "password jobs waiting for a thread, all addresses together; beyond: overloaded (256)")(
      "password-queue-per-address", po::value(&c.password_queue_per_address),
      "password jobs waiting from one client address; beyond: overloaded (16)")(
      "threads", po::value(&c.scheduler_threads), "actor scheduler threads (0: one per core)")(
      "scheduler", po::value(&c.scheduler_policy),
      "actor scheduler: sharing (default; idle threads sleep until work comes) or stealing "
      "(per-thread queues, idle threads poll: for many cores)")(
      "heartbeat-interval", duration(&heartbeat_interval),
      "node-to-node keep-alive on idle connections (500ms)")(
      "join-timeout", duration(&join_timeout),
      "give up when the shard map is not known after (30s)")(
      "max-moves", po::value(&c.max_moves), "shards moved at a time when rebalancing (2)")(
      "drain", po::bool_switch(&c.drain),
      "on SIGTERM, hand off every shard (replicated: the leadership of every shard it leads), then "
      "exit")(
      "fault-ack-without-write", po::bool_switch(&c.entities.fault_ack_without_write),
      "acknowledge deposits without writing them (fault injection only: tests the checker)")(
      "handoff-chunk-bytes", bytes(&c.handoff_chunk_bytes), "bytes per handoff chunk (262144)")(
      "cluster-handshake-timeout", duration(&cluster_handshake_timeout),
      "an accepted cluster connection that has not finished its TLS handshake after "
      "this is closed (5s)")(
      "cluster-max-pending", po::value(&c.cluster_max_pending),
      "accepted cluster connections in their handshake at once; one more evicts the oldest "
      "(64)")("cluster-max-connections", po::value(&c.cluster_max_connections),
              "accepted cluster connections in all; more are closed at once (1024)")(
      "cluster-max-frame-bytes", bytes(&c.cluster_max_frame_bytes),
      "largest BASP message a cluster connection may announce, in bytes; a larger one closes "
      "the connection (67108864; at least twice the handoff chunk size + 1 MiB)")(
      "handoff-chunk-delay", duration(&handoff_chunk_delay),
      "pause between handoff chunks (fault injection only)")(
      "admin-port", po::value(&admin_port),
      "HTTP admin port: /livez /readyz /metrics /status, read-only, no token (0: off, the "
      "default)")("admin-bind", po::value(&c.admin_bind),
                  "IP address of the admin port (127.0.0.1: loopback only)");
  auto fail = [&](const std::string& why) -> std::optional<node_config> {
    err << "orderd: " << why << "\n(try --help)\n";
    *exit_code = 2;
    return std::nullopt;
  };
  // Flags of the removed --seeds mode: accepted only to say what replaced them (not in --help).
  std::vector<std::string> removed_seeds, removed_failure_timeout;
  po::options_description removed;
  removed.add_options()("seeds", po::value(&removed_seeds)->composing(), "")(
      "failure-timeout", po::value(&removed_failure_timeout)->composing(), "");
  po::options_description all;
  all.add(opts).add(removed);
  // What the environment may set: every flag but --help and --version; a config file: not
  // --config either (one file, no includes).
  po::options_description settable, env_settable;
  for (auto& opt : all.options()) {
    const auto& name = opt->long_name();
    if (name == "help" || name == "version")
      continue;
    env_settable.add(opt);
    if (name != "config")
      settable.add(opt);
  }
  po::variables_map vm;
  try {
    // No positional arguments: a stray word is a mistake, not something to ignore.
    po::positional_options_description none;
    po::store(po::command_line_parser(argc, argv).options(all).positional(none).run(), vm);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  // --help and --version answer whatever the environment or a config file hold.
  if (vm.count("help")) {
    out << "usage: orderd --node-id ID --data-dir DIR [options]\n"
        << "       orderd --config FILE [options]\n"
        << "Every flag can also be given as ORDERMESH_<FLAG> (ORDERMESH_NODE_ID=n1) or as a\n"
        << "`flag = value` line of --config FILE; the command line wins over the environment,\n"
        << "the environment over the file. DURATION: a number and a unit, 500ms, 30s, 15m or\n"
        << "1h (a plain number: seconds). BYTES: a number of bytes.\n"
        << opts << "\n";
    *exit_code = 0;
    return std::nullopt;
  }
  if (vm.count("version")) {
    out << "orderd " << node_version() << "\n";
    *exit_code = 0;
    return std::nullopt;
  }
  c.admin_token_on_command_line = vm.count("admin-token") > 0;
  // Each source below only fills what a higher one left unset (po::store keeps stored values).
  std::string source_error;
  po::parsed_options from_env(&env_settable);
  if (!environment_options(env_settable, env, &from_env, &source_error))
    return fail(source_error);
  drop_shadowed(from_env, vm);
  try {
    po::store(from_env, vm);
  } catch (const po::error_with_option_name& e) {
    auto flag = e.get_option_name();
    flag.erase(0, flag.find_first_not_of('-'));
    return fail(variable_of_flag(flag) + ": " + e.what());
  } catch (const std::exception& e) {
    return fail(std::string("in the environment (ORDERMESH_*): ") + e.what());
  }
  if (vm.count("config")) {
    const auto path = vm["config"].as<std::string>();
    po::parsed_options from_file(&settable);
    if (!config_file_options(settable, path, &from_file, &source_error))
      return fail(source_error);
    drop_shadowed(from_file, vm);
    try {
      po::store(from_file, vm);
    } catch (const std::exception& e) {
      return fail("--config " + path + ": " + e.what());
    }
  }
  try {
    po::notify(vm);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (vm.count("seeds"))
    return fail(
        "--seeds is gone: nodes find each other in etcd now. Start etcd (scripts/cluster.sh "
        "does) and give every node --etcd http://HOST:PORT (and the same --cluster NAME); "
        "without --etcd a node runs alone");
  if (vm.count("failure-timeout"))
    return fail(
        "--failure-timeout is gone: a member is gone when its lease in etcd expires "
        "(--lease-ttl)");
  if (!domain::valid_id(c.node_id))
    return fail("--node-id is required and must match [A-Za-z0-9._-]{1,64}");
  if (c.data_dir.empty())
    return fail("--data-dir is required");
  if (!c.backup_dir.empty() && c.backup_dir.front() != '/')
    return fail("--backup-dir must be an absolute path, not '" + c.backup_dir + "'");
  if (client_port == 0 || client_port > 65535 || cluster_port == 0 || cluster_port > 65535)
    return fail("ports must be 1..65535");
  c.client_port = static_cast<uint16_t>(client_port);
  c.cluster_port = static_cast<uint16_t>(cluster_port);
  if (admin_port > 65535)
    return fail("--admin-port must be 0..65535 (0: off)");
  c.admin_port = static_cast<uint16_t>(admin_port);
  boost::system::error_code bad_bind;
  boost::asio::ip::make_address(c.admin_bind, bad_bind);
  if (bad_bind)
    return fail("--admin-bind must be an IP address (e.g. 127.0.0.1), not '" + c.admin_bind + "'");
  if (shards == 0 || shards > cluster::max_shard_count)
    return fail("--shards must be 1.." + std::to_string(cluster::max_shard_count));
  c.shards = static_cast<uint16_t>(shards);
  std::chrono::milliseconds d;
  std::string why;
  struct {
    const char* flag;
    const std::string& text;
    std::chrono::milliseconds& target;
  } durations[] = {
      {"--passivate-after", passivate_after, c.entities.passivate_after},
      {"--passivate-settled-after", passivate_settled_after, c.entities.passivate_settled_after},
      {"--request-timeout", request_timeout, c.request_timeout},
      {"--step-timeout", step_timeout, c.entities.step_timeout},
      {"--restart-window", restart_window, c.entities.restart_window},
      {"--quarantine-for", quarantine_for, c.entities.quarantine_for},
      {"--heartbeat-interval", heartbeat_interval, c.heartbeat_interval},
      {"--join-timeout", join_timeout, c.join_timeout},
      {"--lease-ttl", lease_ttl, c.lease_ttl},
      {"--replica-lag-timeout", replica_lag_timeout, c.replica_lag_timeout},
      {"--commit-timeout", commit_timeout, c.commit_timeout},
      {"--client-idle-timeout", client_idle_timeout, c.client_idle_timeout},
      {"--client-line-timeout", client_line_timeout, c.client_line_timeout},
      {"--client-tls-handshake-timeout", client_tls_handshake_timeout,
       c.client_tls_handshake_timeout},
      {"--cluster-handshake-timeout", cluster_handshake_timeout, c.cluster_handshake_timeout},
  };
  for (auto& x : durations) {
    if (!parse_duration(x.text, x.target))
      return fail(std::string(x.flag) + ": not a duration: '" + x.text +
                  "' (e.g. 500ms, 30s, 15m)");
    if (x.target.count() <= 0)
      return fail(std::string(x.flag) + " must be more than 0, not '" + x.text + "'");
  }
  if (!parse_duration(reservation_ttl, d) || d.count() <= 0)
    return fail("--reservation-ttl: not a duration: '" + reservation_ttl + "'");
  c.entities.reservation_ttl_ms = d.count();
  if (snapshot_every == 0 || snapshot_every > 1000000)
    return fail("--snapshot-every must be 1..1000000");
  c.entities.snapshot_every = snapshot_every;
  c.entities.restart_limit = restart_limit;
  if (max_open_orders < 0 || max_open_orders > 1000000 || max_reserved_units < 0 ||
      max_reserved_units > domain::limits::max_stock)
    return fail(
        "--max-open-orders-per-user must be 0..1000000 and --max-reserved-units-per-user "
        "0..10^12 (0: unlimited)");
  c.entities.max_open_orders_per_user = max_open_orders;
  c.entities.max_reserved_units_per_user = max_reserved_units;
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error")
    return fail("--log-level must be trace, debug, info, warn or error");
  if (c.log_format != "text" && c.log_format != "json")
    return fail("--log-format must be text or json");
  if (c.pwhash != "interactive" && c.pwhash != "fast")
    return fail("--pwhash must be interactive or fast");
  // Password work (docs/SECURITY.md, "Password work").
  for (double rate : {c.login_rate_per_user, c.login_rate_per_address})
    if (!(rate >= 0 && rate <= 1e6))
      return fail(
          "--login-rate-per-user and --login-rate-per-address must be 0..1000000 "
          "(attempts per second; 0: unlimited)");
  for (double burst : {c.login_burst_per_user, c.login_burst_per_address})
    if (!(burst >= 1 && burst <= 1e6))
      return fail("--login-burst-per-user and --login-burst-per-address must be 1..1000000");
  if (c.password_threads > 64)
    return fail("--password-threads must be 0..64");
  if (c.password_queue == 0 || c.password_queue > 65536)
    return fail("--password-queue must be 1..65536");
  if (c.password_queue_per_address == 0 || c.password_queue_per_address > c.password_queue)
    return fail("--password-queue-per-address must be 1..--password-queue");
  if (!parse_duration(handoff_chunk_delay, c.handoff_chunk_delay))
    return fail("--handoff-chunk-delay: not a duration: '" + handoff_chunk_delay + "'");
  if (c.entities.fault_ack_without_write && !c.entities.fault_injection)
    return fail("--fault-ack-without-write needs --enable-fault-injection");
  if (c.handoff_chunk_delay.count() > 0 && !c.entities.fault_injection)
    return fail("--handoff-chunk-delay needs --enable-fault-injection");
  if (c.handoff_chunk_bytes < 256 || c.handoff_chunk_bytes > (64u << 20))
    return fail("--handoff-chunk-bytes must be 256..67108864");
  // The cluster port's bounds (docs/SECURITY.md, "Cluster plane").
  if (c.cluster_handshake_timeout > std::chrono::minutes(5))
    return fail("--cluster-handshake-timeout must be at most 5m");
  if (c.cluster_max_pending == 0 || c.cluster_max_pending > 65536)
    return fail("--cluster-max-pending must be 1..65536");
  if (c.cluster_max_connections <= c.cluster_max_pending || c.cluster_max_connections > 1000000)
    return fail(
        "--cluster-max-connections must be --cluster-max-pending + 1..1000000, so that "
        "established peers always have room");
  // A shard copy chunk is the largest message a member sends on purpose: the bound must let
  // any chunk through with room for its framing (docs/SECURITY.md, "Cluster plane").
  if (c.cluster_max_frame_bytes < 2 * c.handoff_chunk_bytes + (size_t{1} << 20) ||
      c.cluster_max_frame_bytes > (size_t{1} << 32))
    return fail("--cluster-max-frame-bytes must be 2 x --handoff-chunk-bytes + 1048576 (" +
                std::to_string(2 * c.handoff_chunk_bytes + (size_t{1} << 20)) +
                ")..4294967296 (bytes)");
  // The client plane's bounds (docs/SECURITY.md).
  if (c.client_idle_timeout > std::chrono::hours(24) ||
      c.client_line_timeout > std::chrono::hours(24))
    return fail("--client-idle-timeout and --client-line-timeout must be at most 24h");
  // A handshake is a few round trips: longer only lets a silent client hold a slot.
  if (c.client_tls_handshake_timeout > std::chrono::minutes(5))
    return fail("--client-tls-handshake-timeout must be at most 5m");
  if (c.max_connections < 2 || c.max_connections > 1000000)
    return fail("--max-connections must be 2..1000000");
  if (c.max_connections_per_address == 0 || c.max_connections_per_address >= c.max_connections)
    return fail("--max-connections-per-address must be 1..--max-connections - 1 (" +
                std::to_string(c.max_connections - 1) +
                "), so that one address cannot take every connection");
  if (c.max_unsent_bytes < 4096 || c.max_unsent_bytes > (1u << 30))
    return fail("--max-unsent-bytes must be 4096..1073741824 (bytes)");
  if (c.max_moves == 0 || c.max_moves > 64)
    return fail("--max-moves must be 1..64");
  if (c.scheduler_threads > 64)
    return fail("--threads must be 0..64");
  if (c.scheduler_policy != "sharing" && c.scheduler_policy != "stealing")
    return fail("--scheduler must be sharing or stealing");
  if (!domain::valid_id(c.cluster_name))
    return fail("--cluster must match [A-Za-z0-9._-]{1,64}");
  if (c.lease_ttl < std::chrono::seconds(2) || c.lease_ttl > std::chrono::seconds(60))
    return fail("--lease-ttl must be 2s..60s (etcd's shortest lease is about 2s)");
  if (!parse_duration(suspect_after, c.suspect_after) || c.suspect_after.count() < 0 ||
      (c.suspect_after.count() > 0 &&
       (c.suspect_after < std::chrono::milliseconds(200) || c.suspect_after >= c.lease_ttl)))
    return fail("--suspect-after must be 0s (off) or 200ms..less than --lease-ttl, not '" +
                suspect_after + "'");
  if (!parse_duration(dead_member_timeout, c.dead_member_timeout) ||
      c.dead_member_timeout.count() < 0)
    return fail("--dead-member-timeout: not a duration: '" + dead_member_timeout +
                "' (e.g. 90s, 5m; 0s: never)");
  if (!parse_duration(bootstrap_grace, c.bootstrap_grace) || c.bootstrap_grace.count() < 0)
    return fail("--bootstrap-grace: not a duration: '" + bootstrap_grace +
                "' (e.g. 10s, 1m; 0s: wait for --replication-factor nodes)");
  // A node without a shard map exits after --join-timeout, so a grace as long would never end:
  // an error when asked for, and the default gives way (0s: wait for all) to a short timeout.
  if (c.bootstrap_grace.count() > 0 && c.bootstrap_grace >= c.join_timeout) {
    if (vm.count("bootstrap-grace") && !vm["bootstrap-grace"].defaulted())
      return fail("--bootstrap-grace must be shorter than --join-timeout (or 0s)");
    c.bootstrap_grace = std::chrono::milliseconds{0};
  }
  if (!vm.count("replication-factor"))  // a cluster keeps each acknowledged write on 2+ disks
    replication_factor = c.etcd.empty() ? 1 : 3;
  if (replication_factor == 0 || replication_factor > 7)
    return fail("--replication-factor must be 1..7");
  c.replication_factor = static_cast<uint16_t>(replication_factor);
  if (min_insync == 0)
    min_insync = c.replication_factor > 1 ? 2 : 1;
  if (min_insync > c.replication_factor)
    return fail("--min-insync must be 1..--replication-factor");
  c.min_insync = static_cast<uint16_t>(min_insync);
  if (c.replication_factor > 1 && c.etcd.empty())
    return fail(
        "--replication-factor above 1 needs a cluster (--etcd): a node alone has no "
        "other disk to copy to");
  if (auto tls = check_cluster_tls_flags(c); !tls.empty())
    return fail(tls);
  if (c.client_tls_cert.empty() != c.client_tls_key.empty())
    return fail("--client-tls-cert and --client-tls-key go together: give both or neither");
  if (vm.count("admin-token") && vm.count("admin-token-file"))
    return fail("--admin-token and --admin-token-file exclude each other: give one");
  if (vm.count("admin-token-file")) {
    auto secret = secrets::read_secret_file(c.admin_token_file, &why);
    if (!secret)
      return fail("--admin-token-file: " + why);
    c.admin_token = std::move(*secret);
  }
  if (c.admin_token.empty())
    for (const auto& entry : env)
      if (entry.compare(0, admin_token_variable.size(), admin_token_variable) == 0)
        c.admin_token = entry.substr(admin_token_variable.size());
  if (!c.admin_token.empty() && c.admin_token.size() < 16)
    return fail("the admin token must be at least 16 characters");
  return c;
}

}  // namespace ordermesh::node
