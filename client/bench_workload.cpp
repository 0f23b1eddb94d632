#include "client/bench_workload.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>
#include <thread>

#include "client/bench_stats.hpp"

namespace ordermesh::bench {

using nlohmann::json;

namespace {

const char* usage_text =
    "usage: orderbench [options]\n"
    "  --host H:P[,H:P...]     nodes; connections are spread over all of them (127.0.0.1:7400)\n"
    "  --connections N         TCP connections (16)\n"
    "  --inflight K            closed loop: ops in flight per connection (1);\n"
    "                          open loop: cap on ops in flight per connection (128)\n"
    "  --rate R                open loop: start R ops/s over all connections; latency counts\n"
    "                          from each op's intended start. Without it: closed loop\n"
    "  --poisson               open loop: Poisson arrivals (exponential gaps, like pgbench -R)\n"
    "                          instead of evenly spaced starts\n"
    "  --threads T             client threads (min(2, N))\n"
    "  --workload W            place+pay (default), place+cancel, reads, mix\n"
    "  --dist D                products chosen uniform (default) or zipf\n"
    "  --zipf-theta X          zipf exponent in (0, 1) (0.99)\n"
    "  --users U               users created by the setup phase (100)\n"
    "  --products P            products created by the setup phase (1000)\n"
    "  --read-orders N         orders placed in setup for reads and mix (1000)\n"
    "  --duration S            measured seconds (10)\n"
    "  --warmup S              seconds before measuring (2)\n"
    "  --seed N                random seed (1)\n"
    "  --admin-token T         admin token (or --admin-token-file F, or env\n"
    "                          ORDERMESH_ADMIN_TOKEN)\n"
    "  --prefix S              prefix of the bench's user and product ids (bench)\n"
    "  --stock-rate R          closed loop: ops/s assumed when sizing stock (20000)\n"
    "  --timeout-ms N          a request unanswered this long counts as a timeout (10000)\n"
    "  --skip-setup            reuse users and products of an earlier run with this prefix\n"
    "  --tls                   connect over TLS (a node started with --client-tls-cert)\n"
    "  --cafile F              with --tls: the CA (PEM) to verify the node with (default: the\n"
    "                          system's CA store)\n"
    "  --json                  print the results as one JSON object on stdout\n"
    "  --quiet                 no progress lines\n";

bool parse_number(std::string_view text, double& out) {
  std::string s(text);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(out);
}

/// call_many with retries of the retryable codes (same ids, so safe); replies in request order.
/// Retries for up to two minutes, pausing at most 1 s between rounds: a node's password limits
/// (docs/SECURITY.md, "Password work") admit the setup's registrations and logins from this one
/// address at a steady rate, and longer pauses would only leave their tokens unused.
std::vector<client::reply> call_all(client::client& c, const std::vector<client::request>& reqs) {
  std::vector<client::reply> out(reqs.size());
  std::vector<size_t> todo(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i)
    todo[i] = i;
  constexpr size_t batch = 128;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  for (int attempt = 0;
       !todo.empty() && (attempt == 0 || std::chrono::steady_clock::now() < deadline); ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min(100 << std::min(attempt, 4), 1000)));
    std::vector<size_t> again;
    for (size_t at = 0; at < todo.size(); at += batch) {
      std::vector<client::request> part;
      size_t end = std::min(todo.size(), at + batch);
      for (size_t i = at; i < end; ++i)
        part.push_back(reqs[todo[i]]);
      auto replies = c.call_many(part);
      for (size_t i = at; i < end; ++i) {
        out[todo[i]] = std::move(replies[i - at]);
        if (!out[todo[i]].ok && out[todo[i]].retryable())
          again.push_back(todo[i]);
      }
    }
    todo.swap(again);
  }
  return out;
}

bool refused(const std::string& what, const client::reply& r) {
  std::cerr << "orderbench: setup: " << what << ": error " << r.code << ": " << r.message << "\n";
  return false;
}

client::request make(std::string op, json args, const std::string& token) {
  client::request r;
  r.op = std::move(op);
  r.args = std::move(args);
  r.token = token;
  return r;
}

}  // namespace

bool parse_args(int argc, char** argv, config& cfg, int& exit_code) {
  exit_code = 2;
  std::string token_file;
  std::string hosts = "127.0.0.1:7400";
  std::string dist = "uniform";
  auto bad = [&](const std::string& why) {
    std::cerr << "orderbench: " << why << "\n(try --help)\n";
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << usage_text;
      exit_code = 0;
      return false;
    }
    if (arg == "--json" || arg == "--quiet" || arg == "--skip-setup" || arg == "--poisson" ||
        arg == "--tls") {
      (arg == "--json"      ? cfg.json
       : arg == "--quiet"   ? cfg.quiet
       : arg == "--poisson" ? cfg.poisson
       : arg == "--tls"     ? cfg.tls
                            : cfg.skip_setup) = true;
      continue;
    }
    if (i + 1 >= argc)
      return bad("unknown option or missing value: " + std::string(arg));
    std::string_view val = argv[++i];
    double num = 0;
    bool is_num = parse_number(val, num);
    auto need_int = [&](double lo, double hi) {
      return is_num && num == std::floor(num) && num >= lo && num <= hi;
    };
    if (arg == "--host") {
      hosts = std::string(val);
    } else if (arg == "--workload") {
      cfg.load_name = std::string(val);
      if (val == "place+pay")
        cfg.load = workload::place_pay;
      else if (val == "place+cancel")
        cfg.load = workload::place_cancel;
      else if (val == "reads")
        cfg.load = workload::reads;
      else if (val == "mix")
        cfg.load = workload::mix;
      else
        return bad("--workload must be place+pay, place+cancel, reads or mix");
    } else if (arg == "--dist") {
      dist = std::string(val);
    } else if (arg == "--admin-token") {
      cfg.admin_token = std::string(val);
    } else if (arg == "--admin-token-file") {
      token_file = std::string(val);
    } else if (arg == "--cafile") {
      cfg.cafile = std::string(val);
    } else if (arg == "--prefix") {
      cfg.prefix = std::string(val);
    } else if (arg == "--zipf-theta") {
      if (!(is_num && num > 0 && num < 1))
        return bad("--zipf-theta must be in (0, 1)");
      cfg.zipf_theta = num;
    } else if (arg == "--rate" || arg == "--duration" || arg == "--warmup" ||
               arg == "--stock-rate") {
      if (!(is_num && num >= 0))
        return bad(std::string(arg) + " must be a number >= 0");
      (arg == "--rate"       ? cfg.rate
       : arg == "--duration" ? cfg.duration_s
       : arg == "--warmup"   ? cfg.warmup_s
                             : cfg.stock_rate) = num;
    } else if (arg == "--connections" || arg == "--inflight" || arg == "--threads" ||
               arg == "--timeout-ms") {
      if (!need_int(1, 100000))
        return bad(std::string(arg) + " must be an integer in 1..100000");
      (arg == "--connections" ? cfg.connections
       : arg == "--inflight"  ? cfg.inflight
       : arg == "--threads"   ? cfg.threads
                              : cfg.timeout_ms) = static_cast<int>(num);
    } else if (arg == "--users" || arg == "--products" || arg == "--read-orders" ||
               arg == "--seed") {
      if (!need_int(arg == "--read-orders" || arg == "--seed" ? 0 : 1, 1e12))
        return bad(std::string(arg) + " must be a positive integer");
      (arg == "--users"      ? cfg.users
       : arg == "--products" ? cfg.products
       : arg == "--seed"     ? cfg.seed
                             : cfg.read_orders) = static_cast<uint64_t>(num);
    } else {
      return bad("unknown option " + std::string(arg));
    }
  }
  std::string error;
  if (!client::parse_endpoints(hosts, client::default_port, cfg.hosts, error))
    return bad("--host: " + error);
  if (!cfg.cafile.empty() && !cfg.tls)
    return bad("--cafile is for TLS: give --tls with it");
  if (dist != "uniform" && dist != "zipf")
    return bad("--dist must be uniform or zipf");
  cfg.zipf = dist == "zipf";
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!(in >> cfg.admin_token))
      return bad("cannot read an admin token from " + token_file);
  }
  if (cfg.admin_token.empty())
    if (const char* env = std::getenv("ORDERMESH_ADMIN_TOKEN"))
      cfg.admin_token = env;
  if (cfg.admin_token.empty() && !cfg.skip_setup)
    return bad("the setup phase needs the admin token (--admin-token or --admin-token-file)");
  if (cfg.products < 3)
    return bad("--products must be at least 3 (orders have 2 or 3 distinct items)");
  if (cfg.duration_s <= 0)
    return bad("--duration must be positive");
  if (cfg.inflight == 0)
    cfg.inflight = cfg.rate > 0 ? 128 : 1;
  if (cfg.threads == 0)
    cfg.threads = std::min(2, cfg.connections);
  cfg.threads = std::min(cfg.threads, cfg.connections);
  exit_code = 0;
  return true;
}

bool setup_shop(const config& cfg, shop& out) {
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::ostringstream rid;
  rid << std::hex << now_ms << "s" << cfg.seed;
  out.run_id = rid.str();
  const std::string password = cfg.prefix + "-password";
  for (uint64_t u = 0; u < cfg.users; ++u)
    out.user_ids.push_back(cfg.prefix + "-u" + std::to_string(u));
  for (uint64_t p = 0; p < cfg.products; ++p)
    out.product_ids.push_back(cfg.prefix + "-p" + std::to_string(p));

  client::options opts;
  opts.endpoints = {cfg.hosts.front()};
  opts.call_timeout = std::chrono::milliseconds(std::max(cfg.timeout_ms, 30000));
  opts.tls = cfg.tls;
  opts.cafile = cfg.cafile;
  client::client c(opts);
  if (!c.connect()) {
    std::cerr << "orderbench: cannot connect: " << c.last_error() << "\n";
    return false;
  }
  const std::string& admin = cfg.admin_token;
  std::vector<client::request> reqs;

  // Users: register (conflict: it exists from an earlier run), then log in.
  if (!cfg.skip_setup) {
    for (auto& u : out.user_ids)
      reqs.push_back(make("user.register", {{"user_id", u}, {"password", password}}, ""));
    auto replies = call_all(c, reqs);
    for (size_t i = 0; i < replies.size(); ++i)
      if (!replies[i].ok && replies[i].code != "conflict")
        return refused("user.register " + out.user_ids[i], replies[i]);
  }
  reqs.clear();
  for (auto& u : out.user_ids)
    reqs.push_back(make("user.login", {{"user_id", u}, {"password", password}}, ""));
  auto logins = call_all(c, reqs);
  for (size_t i = 0; i < logins.size(); ++i) {
    if (!logins[i].ok)
      return refused("user.login " + out.user_ids[i], logins[i]);
    out.user_tokens_json.push_back(logins[i].result.value("token", std::string()));
  }
  if (!cfg.skip_setup) {
    // Wallets: at least 10^10 cents each (an order costs at most 3 * 999 cents).
    reqs.clear();
    for (size_t i = 0; i < out.user_ids.size(); ++i)
      reqs.push_back(make("user.get", {{"user_id", out.user_ids[i]}}, admin));
    auto gets = call_all(c, reqs);
    reqs.clear();
    for (size_t i = 0; i < gets.size(); ++i) {
      if (!gets[i].ok)
        return refused("user.get " + out.user_ids[i], gets[i]);
      if (gets[i].result.value("balance_cents", int64_t{0}) < 10'000'000'000)
        reqs.push_back(make("user.deposit",
                            {{"user_id", out.user_ids[i]},
                             {"amount_cents", 100'000'000'000},
                             {"request_id", "dep-" + out.run_id}},
                            admin));
    }
    for (auto& r : call_all(c, reqs))
      if (!r.ok)
        return refused("user.deposit", r);

    // Products and their stock: enough for the whole run at the rate assumed, 1.5x, per
    // product by its probability under the chosen distribution.
    reqs.clear();
    for (uint64_t p = 0; p < cfg.products; ++p)
      reqs.push_back(make("product.create",
                          {{"product_id", out.product_ids[p]},
                           {"name", "bench product " + std::to_string(p)},
                           {"price_cents", 100 + static_cast<int64_t>(p % 900)}},
                          admin));
    for (auto& r : call_all(c, reqs))
      if (!r.ok)
        return refused("product.create", r);
    reqs.clear();
    for (auto& p : out.product_ids)
      reqs.push_back(make("inventory.get", {{"product_id", p}}, ""));
    auto stock = call_all(c, reqs);
    key_chooser chooser(cfg.products, cfg.zipf, cfg.zipf_theta);
    double ops = (cfg.rate > 0 ? cfg.rate : cfg.stock_rate) * (cfg.duration_s + cfg.warmup_s + 5);
    bool reads = cfg.load == workload::reads || cfg.load == workload::mix;
    double items = ops * 2.5 + (reads ? static_cast<double>(cfg.read_orders) * 2 : 0.0);
    reqs.clear();
    for (uint64_t p = 0; p < cfg.products; ++p) {
      if (!stock[p].ok)
        return refused("inventory.get " + out.product_ids[p], stock[p]);
      auto need = static_cast<int64_t>(std::ceil(items * chooser.probability(p) * 1.5)) + 100;
      int64_t missing = need - stock[p].result.value("available", int64_t{0});
      for (int chunk = 0; missing > 0; ++chunk) {
        int64_t q = std::min<int64_t>(missing, 100000);
        reqs.push_back(make("inventory.add",
                            {{"product_id", out.product_ids[p]},
                             {"quantity", q},
                             {"request_id", "stock-" + out.run_id + "-" + std::to_string(chunk)}},
                            admin));
        missing -= q;
      }
    }
    for (auto& r : call_all(c, reqs))
      if (!r.ok)
        return refused("inventory.add", r);
  }

  // Orders for the reads to fetch: placed and paid now.
  if (cfg.load == workload::reads || cfg.load == workload::mix) {
    std::vector<client::request> places, pays;
    for (uint64_t k = 0; k < cfg.read_orders; ++k) {
      auto user = static_cast<uint32_t>(k % cfg.users);
      std::string id = cfg.prefix + "-" + out.run_id + "-r" + std::to_string(k);
      json items =
          json::array({{{"product_id", out.product_ids[k % cfg.products]}, {"quantity", 1}},
                       {{"product_id", out.product_ids[(k + 1) % cfg.products]}, {"quantity", 1}}});
      places.push_back(make("order.place",
                            {{"order_id", id}, {"user_id", out.user_ids[user]}, {"items", items}},
                            admin));
      pays.push_back(make("order.pay", {{"order_id", id}}, admin));
      out.read_order_ids.push_back(id);
      out.read_order_users.push_back(user);
    }
    for (auto& r : call_all(c, places))
      if (!r.ok)
        return refused("order.place (read set)", r);
    for (auto& r : call_all(c, pays))
      if (!r.ok)
        return refused("order.pay (read set)", r);
  }
  // Tokens as JSON strings, ready to paste into request lines.
  for (auto& t : out.user_tokens_json)
    t = json(t).dump();
  return true;
}

}  // namespace ordermesh::bench
