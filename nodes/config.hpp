#pragma once
// orderd's settings: the command line, ORDERMESH_* environment variables and a --config file
// (config_sources.hpp), in that order of precedence. Every flag has a default except --node-id
// and --data-dir.
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "actors/node_context.hpp"

namespace ordermesh::node {

struct node_config {
  std::string node_id;
  std::string data_dir;
  std::string client_host = "127.0.0.1";
  uint16_t client_port = 7400;
  std::string cluster_host = "127.0.0.1";
  uint16_t cluster_port = 7500;
  /// etcd client URLs (http://host:port); non-empty: membership and the shard map live in etcd,
  /// empty: a node alone, coordinated by a local store seeded from its disk.
  std::string etcd;
  std::string cluster_name = "default";  // every etcd key lives under /ordermesh/<name>/
  /// Mutual TLS on the cluster plane (docs/SECURITY.md, "Cluster plane"): this node's
  /// certificate and key (PEM) and the cluster CA that every peer's certificate must chain to.
  /// A cluster node (--etcd) needs all three or an explicit insecure_cluster. With https://
  /// --etcd URLs they also serve etcd: orderd verifies etcd's certificate against the CA and
  /// presents its own (etcd's --client-cert-auth).
  std::string tls_cert, tls_key, tls_ca;
  bool insecure_cluster = false;  // --insecure-cluster: plain BASP, anyone reaching the port joins
  /// The cluster port's bounds (docs/SECURITY.md, "Cluster plane"): a connection still in its
  /// handshake after this is closed; at most this many such connections (a new one evicts the
  /// oldest); at most this many accepted connections in all (more are closed at once); no BASP
  /// frame above this many bytes (the connection is closed).
  std::chrono::milliseconds cluster_handshake_timeout{5000};
  size_t cluster_max_pending = 64;
  size_t cluster_max_connections = 1024;
  size_t cluster_max_frame_bytes = size_t{64} << 20;
  std::chrono::milliseconds lease_ttl{3000};
  /// Copies of each shard on distinct nodes, and the in-sync copies a write needs before it is
  /// acknowledged (issue 12). Read by the node that creates the cluster; the store's value
  /// rules after that. A node alone: 1 and 1.
  uint16_t replication_factor = 1;
  uint16_t min_insync = 0;  // 0: 2 when replication_factor > 1, else 1
  std::chrono::milliseconds replica_lag_timeout{1000};
  std::chrono::milliseconds commit_timeout{6000};
  std::chrono::milliseconds suspect_after{1000};
  /// Replicated cluster: how long a node may be without a member key before the controller
  /// removes it and replaces its replicas (docs/REPLICATION.md, "A member that dies for good").
  /// 0: never (only cluster.remove-member).
  std::chrono::milliseconds dead_member_timeout{300000};
  /// Replicated cluster, first start: how long the first members wait for
  /// --replication-factor of them before creating the cluster on fewer (at least --min-insync;
  /// docs/REPLICATION.md, "Replication factor above the number of nodes"). 0: wait for all.
  std::chrono::milliseconds bootstrap_grace{10000};
  std::string admin_token;       // --admin-token(-file) or ORDERMESH_ADMIN_TOKEN; generated if none
  std::string admin_token_file;  // where it was read from, if from a file
  bool admin_token_on_command_line = false;  // --admin-token: visible in ps, worth a warning
  uint16_t shards = 64;
  std::string log_level = "info";
  std::string log_file;                // empty: stderr
  std::string log_format = "text";     // or "json" (log_line_format.hpp)
  std::string config_file;             // --config: where the lowest-precedence settings came from
  std::string pwhash = "interactive";  // or "fast" (tests and benchmarks only)
  // Password work (docs/SECURITY.md, "Password work"): rate limits (attempts per second, 0:
  // unlimited; bursts in attempts) and the hashing pool with its fair queue.
  double login_rate_per_user = 5, login_burst_per_user = 10;
  double login_rate_per_address = 20, login_burst_per_address = 40;
  size_t password_threads = 0;  // 0: half the cores, at least 1
  size_t password_queue = 256;
  size_t password_queue_per_address = 16;
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds session_ttl{24 * 3600 * 1000};
  // The client plane's bounds (docs/SECURITY.md, "Client plane").
  size_t max_connections = 1024;
  size_t max_connections_per_address = 256;
  size_t max_in_flight_per_connection = 256;
  size_t max_unsent_bytes = 1024 * 1024;
  std::chrono::milliseconds client_idle_timeout{300 * 1000};
  std::chrono::milliseconds client_line_timeout{10 * 1000};
  /// TLS on the client port (docs/SECURITY.md, "Client plane TLS"): both or neither; empty:
  /// plain TCP. Clients that do not finish the handshake in client_tls_handshake_timeout go.
  std::string client_tls_cert, client_tls_key;
  std::chrono::milliseconds client_tls_handshake_timeout{5 * 1000};
  size_t scheduler_threads = 0;  // 0: one per core
  /// CAF's scheduler policy: "sharing" (one queue; idle workers block until work arrives) or
  /// "stealing" (a queue per worker; idle workers poll with short sleeps). docs/BENCHMARKS.md,
  /// "Scheduler policy": polling cost a third of a core per idle node here.
  std::string scheduler_policy = "sharing";
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds join_timeout{30000};  // a new node waits this long to join
  size_t max_moves = 2;                           // shards the controller moves at a time
  bool drain = false;                             // SIGTERM hands off every shard before exiting
  size_t handoff_chunk_bytes = 256 * 1024;
  std::chrono::milliseconds handoff_chunk_delay{0};  // fault injection only
  actors::entity_settings entities;
  /// Online backup and restore (docs/OPERATIONS.md, "Backup and restore"): admin.backup writes
  /// only into new directories under backup_dir (absolute; empty: admin.backup is refused), and
  /// restore_from names a backup to copy into an empty --data-dir before starting.
  std::string backup_dir;
  std::string restore_from;
  // The HTTP admin port (docs/OPERATIONS.md, "Health checks and the admin port"): read-only,
  // no token, so it binds to loopback unless the operator says otherwise.
  uint16_t admin_port = 0;  // 0: off
  std::string admin_bind = "127.0.0.1";
};

/// Parses the settings, highest precedence first: argv, the ORDERMESH_<FLAG> variables of `env`
/// (NAME=VALUE strings, as in environ), the --config file, the defaults. On --help or --version
/// prints to `out` and returns nullopt with *exit_code 0; on a bad flag, value, variable or
/// config key prints a message naming it to `err` and returns nullopt with *exit_code 2.
std::optional<node_config> parse_config(int argc, char** argv, const std::vector<std::string>& env,
                                        int* exit_code, std::ostream& out, std::ostream& err);

/// The same with the process's environment, std::cout and std::cerr.
std::optional<node_config> parse_config(int argc, char** argv, int* exit_code);

/// The process's environment as NAME=VALUE strings.
std::vector<std::string> process_environment();

/// The rules of the cluster-plane TLS flags: all three --tls-* or none; not with
/// --insecure-cluster; a cluster node (--etcd) needs one of the two. Empty when they hold,
/// otherwise the message to exit 2 with. Files are checked later (tls_identity.hpp).
std::string check_cluster_tls_flags(const node_config& c);

/// "500ms", "30s", "15m", "1h", or a plain number of seconds. False for anything else.
bool parse_duration(const std::string& text, std::chrono::milliseconds& out);

}  // namespace ordermesh::node
