// orderbench: a load generator for ordermesh over the JSON-lines protocol.
//
// Closed loop (--connections N --inflight K: each connection keeps K ops going) or open loop
// (--rate R: ops start on a fixed schedule over all connections and their latency counts from
// the intended start, so a stalled server cannot hide its queue: no coordinated omission).
// One op is a whole workload step: place+pay is the placement *and* its payment. Every reply is
// counted; only successful ops count as throughput, errors are reported by code. Latencies go
// into log-linear histograms (client/bench_stats.hpp). See README.md, "orderbench".
#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/bench_connection.hpp"
#include "client/bench_stats.hpp"
#include "client/bench_workload.hpp"

namespace ob = ordermesh::bench;
using nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

// Op kinds and request names (indexes into the stats arrays).
enum kind : uint8_t { k_place_pay, k_place_cancel, k_order_get, k_inventory_get, k_kinds };
const char* kind_names[k_kinds] = {"place+pay", "place+cancel", "order.get", "inventory.get"};
enum rname : uint8_t { r_place, r_pay, r_cancel, r_get, r_inv, r_names };
const char* request_names[r_names] = {"order.place", "order.pay", "order.cancel", "order.get",
                                      "inventory.get"};

struct code_counts {
  std::map<std::string, uint64_t> by_code;
  uint64_t total = 0;
  void add(const std::string& code, uint64_t n = 1) {
    by_code[code] += n;
    total += n;
  }
  void merge(const code_counts& o) {
    for (auto& [c, n] : o.by_code)
      add(c, n);
  }
};

/// Everything one worker measured; guarded by its mutex (the main thread merges every second).
struct stats {
  ob::histogram ops;  // latency of successful ops, microseconds
  std::array<ob::histogram, k_kinds> ops_by_kind;
  std::array<uint64_t, k_kinds> ok_by_kind{};
  std::array<code_counts, k_kinds> errors_by_kind;
  code_counts op_errors;
  uint64_t ops_ok = 0;        // successful ops completed inside the measured window
  uint64_t ops_ok_after = 0;  // ... completed while draining after it
  std::array<ob::histogram, r_names> requests;  // latency of every reply, ok or not
  std::array<uint64_t, r_names> req_ok{};
  std::array<code_counts, r_names> req_errors;
  uint64_t sent = 0, replies = 0, late_replies = 0, unanswered = 0;
  uint64_t warmup_ok = 0, warmup_errors = 0;
  void merge(const stats& o) {
    ops.merge(o.ops);
    for (int k = 0; k < k_kinds; ++k) {
      ops_by_kind[k].merge(o.ops_by_kind[k]);
      ok_by_kind[k] += o.ok_by_kind[k];
      errors_by_kind[k].merge(o.errors_by_kind[k]);
    }
    op_errors.merge(o.op_errors);
    ops_ok += o.ops_ok;
    ops_ok_after += o.ops_ok_after;
    for (int r = 0; r < r_names; ++r) {
      requests[r].merge(o.requests[r]);
      req_ok[r] += o.req_ok[r];
      req_errors[r].merge(o.req_errors[r]);
    }
    sent += o.sent;
    replies += o.replies;
    late_replies += o.late_replies;
    unanswered += o.unanswered;
    warmup_ok += o.warmup_ok;
    warmup_errors += o.warmup_errors;
  }
};

struct timing {
  int64_t start = 0;          // run start (warmup begins)
  int64_t measure_start = 0;  // warmup ends
  int64_t end = 0;            // no op starts after this
  int64_t drain_end = 0;      // unanswered requests are given up here
};

struct op_state {
  kind k = k_place_pay;
  uint8_t step = 0;
  bool active = false;
  uint32_t conn = 0;
  uint32_t user = 0;
  int64_t start = 0;  // intended start (open loop) or actual start (closed loop)
  std::string order_id;
};

struct pending {
  uint32_t op;
  rname name;
  int64_t sent;
};

struct conn_state {
  ob::connection c;
  ordermesh::client::endpoint ep;
  std::unordered_map<uint64_t, pending> inflight;  // request id -> what it was
  uint32_t active_ops = 0;
  int64_t retry_at = 0;  // when closed: next connect attempt
};

class worker {
 public:
  worker(const ob::config& cfg, const ob::shop& shop, const timing& t, int index,
         std::vector<ordermesh::client::endpoint> eps)
      : cfg_(cfg),
        shop_(shop),
        t_(t),
        index_(index),
        rng_(cfg.seed * 1000003 + static_cast<uint64_t>(index)),
        products_(cfg.products, cfg.zipf, cfg.zipf_theta) {
    for (auto& ep : eps) {
      conn_state cs;
      cs.ep = ep;
      conns_.push_back(std::move(cs));
    }
  }

  std::mutex mu;
  stats st;  // guarded by mu
  std::atomic<uint64_t> ok_total{0}, errors_total{0};

  void run() {
    for (auto& cs : conns_)
      reconnect(cs, now_ns());
    // Open loop: this worker's share of the rate. Evenly spaced (op index*threads + index), or
    // with --poisson exponential gaps at rate/threads (like pgbench -R).
    const double per_ns = cfg_.rate > 0 ? 1e9 / cfg_.rate : 0;
    std::exponential_distribution<double> gap(cfg_.rate > 0 ? cfg_.rate / cfg_.threads / 1e9 : 1);
    uint64_t schedule_n = 0;
    double poisson_due = static_cast<double>(t_.start) + (cfg_.poisson ? gap(rng_) : 0);
    auto next_due = [&] {
      if (cfg_.poisson)
        return static_cast<int64_t>(poisson_due);
      return t_.start +
             static_cast<int64_t>(static_cast<double>(index_ + schedule_n * cfg_.threads) * per_ns);
    };
    int64_t next_timeout_scan = 0;
    std::vector<pollfd> pfds(conns_.size());
    for (;;) {
      int64_t now = now_ns();
      bool starting = now < t_.end;
      if (starting && cfg_.rate > 0) {
        for (;;) {
          auto due = next_due();
          if (due > now || due >= t_.end)
            break;
          ++schedule_n;
          poisson_due += cfg_.poisson ? gap(rng_) : 0;
          if (backlog_.size() >= 1'000'000) {
            finish_unstarted(due, "client_backlog");
            continue;
          }
          backlog_.push_back(due);
        }
        start_backlog();
      } else if (starting) {
        for (uint32_t i = 0; i < conns_.size(); ++i)
          while (conns_[i].c.is_open() &&
                 conns_[i].active_ops < static_cast<uint32_t>(cfg_.inflight))
            start_op(i, now);
      }
      if (!starting && !backlog_.empty()) {  // scheduled but never sent: not hidden
        for (auto due : backlog_)
          finish_unstarted(due, "not_sent");
        backlog_.clear();
      }
      if (now >= next_timeout_scan) {
        expire(now);
        next_timeout_scan = now + 100'000'000;
      }
      size_t open_ops = 0;
      for (auto& cs : conns_)
        open_ops += cs.inflight.size();
      if (!starting && (open_ops == 0 || now >= t_.drain_end)) {
        give_up(now);
        return;
      }
      // Wait for replies, the next scheduled start, or a connect retry (at most 10 ms).
      int64_t wait = 10'000'000;
      if (starting && cfg_.rate > 0) {
        wait = std::clamp<int64_t>(next_due() - now, 0, wait);
      }
      for (size_t i = 0; i < conns_.size(); ++i) {
        auto& cs = conns_[i];
        if (!cs.c.is_open()) {
          if (now >= cs.retry_at)
            reconnect(cs, now);
          pfds[i] = {-1, 0, 0};
          continue;
        }
        pfds[i] = {cs.c.fd(), static_cast<short>(POLLIN | (cs.c.want_write() ? POLLOUT : 0)), 0};
      }
      timespec ts{static_cast<time_t>(wait / 1'000'000'000),
                  static_cast<long>(wait % 1'000'000'000)};
      int n = ::ppoll(pfds.data(), pfds.size(), &ts, nullptr);
      if (n <= 0)
        continue;
      for (size_t i = 0; i < conns_.size(); ++i) {
        if (pfds[i].fd < 0 || pfds[i].revents == 0)
          continue;
        auto& cs = conns_[i];
        bool alive = true;
        if (pfds[i].revents & POLLOUT)
          alive = cs.c.flush();
        if (alive && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
          alive =
              cs.c.read([&](std::string_view line) { on_line(static_cast<uint32_t>(i), line); });
        if (!alive || !cs.c.is_open())
          lost(static_cast<uint32_t>(i), now_ns());
      }
    }
  }

 private:
  void reconnect(conn_state& cs, int64_t now) {
    std::string error;
    if (!cs.c.open(cs.ep, std::chrono::milliseconds(1000), error, cfg_.tls, cfg_.cafile)) {
      cs.retry_at = now + 200'000'000;
      if (!warned_) {
        std::cerr << "orderbench: connect " << error << " (retrying)\n";
        warned_ = true;
      }
    }
  }

  kind pick_kind() {
    switch (cfg_.load) {
      case ob::workload::place_pay:
        return k_place_pay;
      case ob::workload::place_cancel:
        return k_place_cancel;
      case ob::workload::reads:
        return coin(0.5) ? k_order_get : k_inventory_get;
      case ob::workload::mix: {
        // 40 % place+pay, 10 % place+cancel, 25 % order.get, 25 % inventory.get.
        double u = std::uniform_real_distribution<double>(0, 1)(rng_);
        return u < 0.4    ? k_place_pay
               : u < 0.5  ? k_place_cancel
               : u < 0.75 ? k_order_get
                          : k_inventory_get;
      }
    }
    return k_place_pay;
  }
  bool coin(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  uint32_t alloc_op() {
    if (free_.empty()) {
      ops_.emplace_back();
      return static_cast<uint32_t>(ops_.size() - 1);
    }
    uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }

  void start_backlog() {
    size_t tried = 0;
    while (!backlog_.empty() && tried < conns_.size()) {
      auto& cs = conns_[rr_];
      if (cs.c.is_open() && cs.active_ops < static_cast<uint32_t>(cfg_.inflight)) {
        start_op(rr_, backlog_.front());
        backlog_.pop_front();
        tried = 0;
      } else {
        ++tried;
      }
      rr_ = (rr_ + 1) % conns_.size();
    }
  }

  void start_op(uint32_t conn, int64_t start) {
    uint32_t i = alloc_op();
    auto& op = ops_[i];
    op.k = pick_kind();
    op.step = 0;
    op.active = true;
    op.conn = conn;
    op.start = start;
    op.user = static_cast<uint32_t>(
        std::uniform_int_distribution<uint64_t>(0, shop_.user_ids.size() - 1)(rng_));
    if (op.k == k_place_pay || op.k == k_place_cancel)
      op.order_id = cfg_.prefix + "-" + shop_.run_id + "-w" + std::to_string(index_) + "-" +
                    std::to_string(order_counter_++);
    if (op.k == k_order_get) {
      if (shop_.read_order_ids.empty()) {
        op.k = k_inventory_get;
      } else {
        auto r = std::uniform_int_distribution<size_t>(0, shop_.read_order_ids.size() - 1)(rng_);
        op.order_id = shop_.read_order_ids[r];
        op.user = shop_.read_order_users[r];
      }
    }
    ++conns_[conn].active_ops;
    send_step(i);
  }

  void send_step(uint32_t i) {
    auto& op = ops_[i];
    auto& cs = conns_[op.conn];
    uint64_t id = next_id_++;
    std::string line = "{\"id\":" + std::to_string(id) + ",\"op\":\"";
    const std::string& token = shop_.user_tokens_json[op.user];
    rname name;
    if ((op.k == k_place_pay || op.k == k_place_cancel) && op.step == 0) {
      name = r_place;
      // 2 or 3 distinct products, quantity 1 each.
      int n = coin(0.5) ? 2 : 3;
      uint64_t chosen[3];
      for (int j = 0; j < n;) {
        uint64_t p = products_.next(rng_);
        if (std::find(chosen, chosen + j, p) == chosen + j)
          chosen[j++] = p;
      }
      line += "order.place\",\"token\":" + token + ",\"args\":{\"order_id\":\"" + op.order_id +
              "\",\"user_id\":\"" + shop_.user_ids[op.user] + "\",\"items\":[";
      for (int j = 0; j < n; ++j)
        line += std::string(j ? "," : "") + "{\"product_id\":\"" + shop_.product_ids[chosen[j]] +
                "\",\"quantity\":1}";
      line += "]}}";
    } else if (op.k == k_inventory_get) {
      name = r_inv;
      line += "inventory.get\",\"args\":{\"product_id\":\"" +
              shop_.product_ids[products_.next(rng_)] + "\"}}";
    } else {
      name = op.k == k_order_get ? r_get : op.k == k_place_pay ? r_pay : r_cancel;
      line += std::string(request_names[name]) + "\",\"token\":" + token +
              ",\"args\":{\"order_id\":\"" + op.order_id + "\"}}";
    }
    int64_t now = now_ns();
    cs.inflight.emplace(id, pending{i, name, now});
    {
      std::lock_guard<std::mutex> lock(mu);
      ++st.sent;
    }
    if (!cs.c.send(line))
      lost(op.conn, now);
  }

  void on_line(uint32_t conn, std::string_view line) {
    int64_t now = now_ns();
    json reply = json::parse(line, nullptr, false);
    auto& cs = conns_[conn];
    const json* id = reply.is_object() && reply.contains("id") ? &reply["id"] : nullptr;
    if (id == nullptr || !id->is_number_unsigned()) {
      // A reply without our id (e.g. overloaded with id null): nothing to match it to.
      std::lock_guard<std::mutex> lock(mu);
      ++st.late_replies;
      return;
    }
    auto it = cs.inflight.find(id->get<uint64_t>());
    if (it == cs.inflight.end()) {  // answered after we gave it up as a timeout
      std::lock_guard<std::mutex> lock(mu);
      ++st.late_replies;
      return;
    }
    pending p = it->second;
    cs.inflight.erase(it);
    bool ok = reply.value("ok", false);
    std::string code;
    const json* result = nullptr;
    if (ok) {
      result = &reply["result"];
    } else {
      auto e = reply.find("error");
      code = e != reply.end() && e->is_object() ? e->value("code", "internal") : "internal";
    }
    record_request(p, now, ok, code);
    advance(p.op, now, ok, code, result);
  }

  void record_request(const pending& p, int64_t now, bool ok, const std::string& code) {
    std::lock_guard<std::mutex> lock(mu);
    ++st.replies;
    if (now < t_.measure_start)
      return;
    st.requests[p.name].record(static_cast<uint64_t>(std::max<int64_t>(0, now - p.sent) / 1000));
    if (ok)
      ++st.req_ok[p.name];
    else
      st.req_errors[p.name].add(code);
  }

  // A reply for op i's current step: next step, or the op is done.
  void advance(uint32_t i, int64_t now, bool ok, const std::string& code, const json* result) {
    auto& op = ops_[i];
    if (!ok)
      return finish(i, now, code);
    if (op.k == k_order_get || op.k == k_inventory_get)
      return finish(i, now, "");
    std::string status = result && result->is_object() ? result->value("status", "") : "";
    if (op.step == 0) {
      if (status != "RESERVED") {
        // REJECTED: the reason starts with the cause, e.g. "out_of_stock: p1: ...".
        std::string reason = result ? result->value("reason", "") : "";
        return finish(i, now, "rejected:" + reason.substr(0, reason.find(':')));
      }
      op.step = 1;
      return send_step(i);
    }
    const char* want = op.k == k_place_pay ? "PAID" : "CANCELLED";
    finish(i, now, status == want ? "" : "unexpected_status:" + status);
  }

  void finish(uint32_t i, int64_t now, const std::string& error) {
    auto& op = ops_[i];
    if (!op.active)
      return;
    op.active = false;
    --conns_[op.conn].active_ops;
    free_.push_back(i);
    record_op(op.k, op.start, now, error);
  }

  void record_op(kind k, int64_t start, int64_t now, const std::string& error) {
    (error.empty() ? ok_total : errors_total).fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu);
    if (now < t_.measure_start) {
      ++(error.empty() ? st.warmup_ok : st.warmup_errors);
      return;
    }
    if (!error.empty()) {
      st.op_errors.add(error);
      st.errors_by_kind[k].add(error);
      return;
    }
    auto us = static_cast<uint64_t>(std::max<int64_t>(0, now - start) / 1000);
    st.ops.record(us);
    st.ops_by_kind[k].record(us);
    ++st.ok_by_kind[k];
    ++(now <= t_.end ? st.ops_ok : st.ops_ok_after);
  }

  // An op that was due but never sent (client backlog full, or the run ended first).
  void finish_unstarted(int64_t due, const char* why) {
    record_op(k_place_pay, due, now_ns(), why);
  }

  // Requests unanswered for longer than the timeout fail their ops.
  void expire(int64_t now) {
    int64_t limit = static_cast<int64_t>(cfg_.timeout_ms) * 1'000'000;
    for (auto& cs : conns_) {
      for (auto it = cs.inflight.begin(); it != cs.inflight.end();) {
        if (now - it->second.sent < limit) {
          ++it;
          continue;
        }
        pending p = it->second;
        it = cs.inflight.erase(it);
        {
          std::lock_guard<std::mutex> lock(mu);
          ++st.unanswered;
        }
        finish(p.op, now, "timeout");
      }
    }
  }

  // The connection broke: its requests get no reply; their ops fail, it reconnects later.
  void lost(uint32_t conn, int64_t now) {
    auto& cs = conns_[conn];
    cs.c.close();
    cs.retry_at = now + 200'000'000;
    auto gone = std::move(cs.inflight);
    cs.inflight.clear();
    for (auto& [id, p] : gone) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++st.unanswered;
      }
      finish(p.op, now, "connection_lost");
    }
  }

  // The drain deadline passed: whatever is still open is unanswered.
  void give_up(int64_t now) {
    for (auto& cs : conns_) {
      for (auto& [id, p] : cs.inflight) {
        {
          std::lock_guard<std::mutex> lock(mu);
          ++st.unanswered;
        }
        finish(p.op, now, "unanswered");
      }
      cs.inflight.clear();
      cs.c.close();
    }
  }

  const ob::config& cfg_;
  const ob::shop& shop_;
  const timing& t_;
  int index_;
  std::mt19937_64 rng_;
  ob::key_chooser products_;
  std::vector<conn_state> conns_;
  std::vector<op_state> ops_;
  std::vector<uint32_t> free_;
  std::deque<int64_t> backlog_;
  size_t rr_ = 0;
  uint64_t next_id_ = 1;
  uint64_t order_counter_ = 0;
  bool warned_ = false;
};

double ms(uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

json latency_json(const ob::histogram& h) {
  return {{"count", h.count()},
          {"p50_ms", ms(h.percentile(50))},
          {"p90_ms", ms(h.percentile(90))},
          {"p99_ms", ms(h.percentile(99))},
          {"p999_ms", ms(h.percentile(99.9))},
          {"max_ms", ms(h.max())},
          {"mean_ms", h.mean() / 1000.0}};
}

json codes_json(const code_counts& c) {
  json j = json::object();
  for (auto& [code, n] : c.by_code)
    j[code] = n;
  return j;
}

json results_json(const ob::config& cfg, const stats& st, double measured_s) {
  json hosts = json::array();
  for (auto& h : cfg.hosts)
    hosts.push_back(h.to_string());
  json by_kind = json::object();
  for (int k = 0; k < k_kinds; ++k)
    if (st.ok_by_kind[k] || st.errors_by_kind[k].total)
      by_kind[kind_names[k]] = {{"ok", st.ok_by_kind[k]},
                                {"errors", st.errors_by_kind[k].total},
                                {"errors_by_code", codes_json(st.errors_by_kind[k])},
                                {"latency", latency_json(st.ops_by_kind[k])}};
  json by_request = json::object();
  uint64_t req_errors = 0;
  code_counts all_req_errors;
  for (int r = 0; r < r_names; ++r) {
    req_errors += st.req_errors[r].total;
    all_req_errors.merge(st.req_errors[r]);
    if (st.requests[r].count())
      by_request[request_names[r]] = {{"replies", st.requests[r].count()},
                                      {"ok", st.req_ok[r]},
                                      {"errors", st.req_errors[r].total},
                                      {"errors_by_code", codes_json(st.req_errors[r])},
                                      {"latency", latency_json(st.requests[r])}};
  }
  return {{"workload", cfg.load_name},
          {"mode", cfg.rate > 0 ? "open" : "closed"},
          {"arrivals", cfg.rate > 0 ? (cfg.poisson ? "poisson" : "even") : "closed"},
          {"rate", cfg.rate},
          {"connections", cfg.connections},
          {"inflight", cfg.inflight},
          {"threads", cfg.threads},
          {"hosts", hosts},
          {"dist", cfg.zipf ? "zipf" : "uniform"},
          {"zipf_theta", cfg.zipf ? json(cfg.zipf_theta) : json(nullptr)},
          {"users", cfg.users},
          {"products", cfg.products},
          {"duration_s", measured_s},
          {"warmup_s", cfg.warmup_s},
          {"seed", cfg.seed},
          {"ok", st.ops_ok},
          {"ok_after_end", st.ops_ok_after},
          {"errors", st.op_errors.total},
          {"errors_by_code", codes_json(st.op_errors)},
          {"throughput_ops_s", static_cast<double>(st.ops_ok) / measured_s},
          {"latency", latency_json(st.ops)},
          {"by_kind", by_kind},
          {"requests",
           {{"sent", st.sent},
            {"replies", st.replies},
            {"late_replies", st.late_replies},
            {"unanswered", st.unanswered},
            {"errors", req_errors},
            {"errors_by_code", codes_json(all_req_errors)},
            {"throughput_req_s",
             static_cast<double>(std::accumulate(st.req_ok.begin(), st.req_ok.end(), uint64_t{0})) /
                 measured_s},
            {"by_op", by_request}}},
          {"warmup", {{"ok", st.warmup_ok}, {"errors", st.warmup_errors}}}};
}

void print_summary(const json& r) {
  auto& l = r["latency"];
  std::fprintf(
      stderr,
      "\norderbench: %s, %s loop, %d connections x %d in flight%s, %.1f s measured\n"
      "  throughput   %.1f ok ops/s (%llu ok ops; %llu more finished while draining)\n"
      "  latency ms   p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (%llu ops)\n"
      "  errors       %llu ops",
      r["workload"].get<std::string>().c_str(), r["mode"].get<std::string>().c_str(),
      r["connections"].get<int>(), r["inflight"].get<int>(),
      r["rate"].get<double>() > 0
          ? (", " + std::to_string(static_cast<long>(r["rate"].get<double>())) + " ops/s intended")
                .c_str()
          : "",
      r["duration_s"].get<double>(), r["throughput_ops_s"].get<double>(),
      r["ok"].get<unsigned long long>(), r["ok_after_end"].get<unsigned long long>(),
      l["p50_ms"].get<double>(), l["p90_ms"].get<double>(), l["p99_ms"].get<double>(),
      l["p999_ms"].get<double>(), l["max_ms"].get<double>(), l["count"].get<unsigned long long>(),
      r["errors"].get<unsigned long long>());
  for (auto& [code, n] : r["errors_by_code"].items())
    std::fprintf(stderr, "  %s=%llu", code.c_str(), n.get<unsigned long long>());
  auto& q = r["requests"];
  std::fprintf(stderr,
               "\n  requests     %llu sent, %llu replies, %llu error replies, %llu unanswered\n",
               q["sent"].get<unsigned long long>(), q["replies"].get<unsigned long long>(),
               q["errors"].get<unsigned long long>(), q["unanswered"].get<unsigned long long>());
  for (auto& [name, v] : q["by_op"].items()) {
    auto& rl = v["latency"];
    std::fprintf(stderr, "    %-14s %8llu replies  p50 %.2f  p99 %.2f  max %.2f ms  errors %llu\n",
                 name.c_str(), v["replies"].get<unsigned long long>(), rl["p50_ms"].get<double>(),
                 rl["p99_ms"].get<double>(), rl["max_ms"].get<double>(),
                 v["errors"].get<unsigned long long>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  ob::config cfg;
  int exit_code = 0;
  if (!ob::parse_args(argc, argv, cfg, exit_code))
    return exit_code;
  ob::shop shop;
  auto setup_start = steady::now();
  if (!cfg.quiet)
    std::cerr << "orderbench: setup: " << cfg.users << " users, " << cfg.products << " products on "
              << cfg.hosts.front().to_string() << "\n";
  if (!ob::setup_shop(cfg, shop))
    return 1;
  double setup_s = std::chrono::duration<double>(steady::now() - setup_start).count();
  if (!cfg.quiet)
    std::cerr << "orderbench: setup done in " << setup_s << " s; running " << cfg.load_name
              << (cfg.rate > 0 ? " open loop at " + std::to_string(cfg.rate) + " ops/s"
                               : " closed loop")
              << " for " << cfg.warmup_s << " s warmup + " << cfg.duration_s << " s\n";

  timing t;
  t.start = now_ns() + 50'000'000;  // connections open first
  t.measure_start = t.start + static_cast<int64_t>(cfg.warmup_s * 1e9);
  t.end = t.measure_start + static_cast<int64_t>(cfg.duration_s * 1e9);
  t.drain_end = t.end + static_cast<int64_t>(cfg.timeout_ms) * 1'000'000 + 1'000'000'000;

  // Connection c goes to host c % hosts, worker c % threads.
  std::vector<std::vector<ordermesh::client::endpoint>> eps(static_cast<size_t>(cfg.threads));
  for (int c = 0; c < cfg.connections; ++c)
    eps[static_cast<size_t>(c % cfg.threads)].push_back(
        cfg.hosts[static_cast<size_t>(c) % cfg.hosts.size()]);
  std::vector<std::unique_ptr<worker>> workers;
  for (int w = 0; w < cfg.threads; ++w)
    workers.push_back(std::make_unique<worker>(cfg, shop, t, w, eps[static_cast<size_t>(w)]));
  std::vector<std::thread> threads;
  for (auto& w : workers)
    threads.emplace_back([&w] { w->run(); });

  // Progress once a second until the measured window ends.
  uint64_t last_ok = 0;
  for (int sec = 1;; ++sec) {
    int64_t tick = t.start + static_cast<int64_t>(sec) * 1'000'000'000;
    if (tick > t.end + 500'000'000)
      break;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<int64_t>(0, tick - now_ns())));
    if (cfg.quiet)
      continue;
    uint64_t ok = 0, errors = 0;
    ob::histogram h;
    for (auto& w : workers) {
      ok += w->ok_total.load();
      errors += w->errors_total.load();
      std::lock_guard<std::mutex> lock(w->mu);
      h.merge(w->st.ops);
    }
    bool warm = tick <= t.measure_start;
    char p99[32] = "-";
    if (h.count())
      std::snprintf(p99, sizeof p99, "%.2f ms", ms(h.percentile(99)));
    std::fprintf(stderr, "orderbench: %3ds %9.0f ops/s  errors %llu  p99 so far %s%s\n", sec,
                 static_cast<double>(ok - last_ok), static_cast<unsigned long long>(errors), p99,
                 warm ? "  (warmup)" : "");
    last_ok = ok;
  }
  for (auto& th : threads)
    th.join();
  stats total;
  for (auto& w : workers)
    total.merge(w->st);
  json r = results_json(cfg, total, cfg.duration_s);
  r["setup_s"] = setup_s;
  print_summary(r);
  if (cfg.json)
    std::cout << r.dump() << std::endl;
  return 0;
}
