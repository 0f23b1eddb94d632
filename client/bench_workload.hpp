#pragma once
// orderbench's command line and the shop it drives: the options, the names of the bench's users
// and products, and the setup phase that creates them (through the blocking client library).
#include <cstdint>
#include <string>
#include <vector>

#include "client/client.hpp"

namespace ordermesh::bench {

enum class workload { place_pay, place_cancel, reads, mix };

struct config {
  std::vector<client::endpoint> hosts;
  int connections = 16;
  int inflight = 0;  // 0: 1 in closed loop, 128 (a cap) in open loop
  int threads = 0;   // 0: min(2, connections)
  double rate = 0;   // ops/s over all connections; 0: closed loop
  workload load = workload::place_pay;
  std::string load_name = "place+pay";
  bool zipf = false;
  double zipf_theta = 0.99;
  uint64_t users = 100;
  uint64_t products = 1000;
  uint64_t read_orders = 1000;
  double duration_s = 10;
  double warmup_s = 2;
  uint64_t seed = 1;
  std::string admin_token;
  std::string prefix = "bench";
  double stock_rate = 20000;  // ops/s assumed when sizing stock for a closed-loop run
  int timeout_ms = 10000;
  bool json = false;
  bool quiet = false;
  bool skip_setup = false;
  bool poisson = false;  // open loop: exponential gaps instead of even spacing
  bool tls = false;      // --tls: every connection (and the setup's) over TLS
  std::string cafile;    // --cafile: the CA to verify the node with (empty: the system's)
};

/// Parses argv; on error or --help prints to stderr / stdout and returns false with `exit_code`.
bool parse_args(int argc, char** argv, config& cfg, int& exit_code);

/// What the setup phase made: session tokens (rendered as JSON strings, quotes included), the
/// product ids, and orders (with their user) that reads can fetch.
struct shop {
  std::vector<std::string> user_ids;
  std::vector<std::string> user_tokens_json;
  std::vector<std::string> product_ids;
  std::vector<std::string> read_order_ids;
  std::vector<uint32_t> read_order_users;
  std::string run_id;
};

/// Registers (or reuses) the users, logs them in, tops up their wallets, creates the products and
/// adds the stock the run needs. False with a message on stderr if the cluster refuses.
bool setup_shop(const config& cfg, shop& out);

}  // namespace ordermesh::bench
