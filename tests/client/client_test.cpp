// Tests for client/: a real TCP server on 127.0.0.1 (ephemeral port, in a thread) plays the
// node, scripted per test: answering out of order, never answering, closing mid-reply, ...
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"

using nlohmann::json;
namespace om = ordermesh::client;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

/// Ends the whole process if a test case is still running after `limit`: a client bug that
/// hangs a call must fail the run, not stall it. Every test case starts one.
class watchdog {
 public:
  explicit watchdog(std::chrono::seconds limit = std::chrono::seconds(20))
      : thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: test case still running after %llds, aborting\n",
                         static_cast<long long>(limit.count()));
            std::_Exit(3);
          }
        }) {}
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// One accepted connection as the scripted server sees it.
class conn {
 public:
  conn(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}

  /// The next line (without '\n'), or nothing when the peer closed or the server is stopping.
  std::optional<std::string> read_line() {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (stop_) {
        return std::nullopt;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      char chunk[4096];
      const ssize_t k = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (k <= 0) {
        return std::nullopt;
      }
      buf_.append(chunk, static_cast<size_t>(k));
    }
  }

  void write(const std::string& text) {
    size_t done = 0;
    while (done < text.size() && !stop_) {
      const ssize_t k = ::send(fd_, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (k <= 0) {
        return;
      }
      done += static_cast<size_t>(k);
    }
  }

  /// Waits until the peer closes or the server stops, reading and dropping whatever comes.
  void drain() {
    while (read_line()) {
    }
  }

 private:
  int fd_;
  const std::atomic<bool>& stop_;
  std::string buf_;
};

/// A server on 127.0.0.1:<ephemeral>; `handler` runs for each accepted connection, one at a
/// time, in the server thread. The destructor stops it; a handler must return once `stop`
/// is set (conn's reads do).
class test_server {
 public:
  using handler = std::function<void(conn&)>;

  explicit test_server(handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~test_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  uint16_t port() const { return port_; }
  om::endpoint endpoint() const { return {"127.0.0.1", port_}; }
  int connections() const { return connections_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        continue;
      }
      ++connections_;
      conn connection(c, stop_);
      handler_(connection);
      ::close(c);
    }
  }

  handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

/// A port on 127.0.0.1 where nothing listens (bound once, then released).
uint16_t dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Answers every request with {op, args, token} echoed back, after collecting `batch` of them
/// and in reverse order, so replies never arrive in request order.
test_server::handler echo_reversed(size_t batch) {
  return [batch](conn& c) {
    std::vector<json> held;
    while (auto line = c.read_line()) {
      json req = json::parse(*line, nullptr, false);
      held.push_back(req);
      if (held.size() < batch) {
        continue;
      }
      std::string out;
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        const json& r = *it;
        json result = {{"op", r.value("op", "")}, {"args", r.value("args", json())}};
        if (r.contains("token")) {
          result["token"] = r["token"];
        }
        out += json{{"id", r["id"]}, {"ok", true}, {"result", result}}.dump() + "\n";
      }
      held.clear();
      c.write(out);
    }
  };
}

om::options options_for(std::vector<om::endpoint> endpoints,
                        std::chrono::milliseconds call_timeout = 2000ms) {
  om::options o;
  o.endpoints = std::move(endpoints);
  o.call_timeout = call_timeout;
  o.connect_timeout = 500ms;
  return o;
}

long elapsed_ms(steady::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

}  // namespace

TEST_CASE("parse_endpoints", "[client]") {
  watchdog guard;
  std::vector<om::endpoint> eps;
  std::string error;
  REQUIRE(om::parse_endpoints("h1:1,h2:2", 7400, eps, error));
  REQUIRE(eps.size() == 2);
  CHECK(eps[0].host == "h1");
  CHECK(eps[0].port == 1);
  CHECK(eps[1].host == "h2");
  CHECK(eps[1].port == 2);
  REQUIRE(om::parse_endpoints(" localhost , [::1]:9000,::1", 7401, eps, error));
  REQUIRE(eps.size() == 5);
  CHECK(eps[2].host == "localhost");
  CHECK(eps[2].port == 7401);
  CHECK(eps[3].host == "::1");
  CHECK(eps[3].port == 9000);
  CHECK(eps[3].to_string() == "[::1]:9000");
  CHECK(eps[4].host == "::1");
  CHECK(eps[4].port == 7401);
  CHECK(eps[0].to_string() == "h1:1");
  for (const char* bad : {"h:0", "h:65536", "h:x", "h:", ":80", "", ",", "[::1", "[::1]x"}) {
    INFO(bad);
    CHECK_FALSE(om::parse_endpoints(bad, 7400, eps, error));
    CHECK_FALSE(error.empty());
  }
  CHECK(eps.size() == 5);  // failures append nothing
}

TEST_CASE("one call: request line format and reply fields", "[client]") {
  watchdog guard;
  std::string seen;
  test_server server([&](conn& c) {
    while (auto line = c.read_line()) {
      seen = *line;
      c.write(R"({"id":1,"ok":true,"result":{"user_id":"a","balance_cents":5}})"
              "\n");
    }
  });
  om::client client(options_for({server.endpoint()}));
  auto r = client.call("user.get", {{"user_id", "a"}}, "tok");
  REQUIRE(r.ok);
  CHECK_FALSE(r.local);
  CHECK(r.code.empty());
  CHECK(r.result == json{{"user_id", "a"}, {"balance_cents", 5}});
  CHECK(r.raw["id"] == 1);
  CHECK(r.line == R"({"id":1,"ok":true,"result":{"user_id":"a","balance_cents":5}})");
  CHECK(seen == R"({"id":1,"op":"user.get","token":"tok","args":{"user_id":"a"}})");
  CHECK(client.connected());
  CHECK(client.current_endpoint().port == server.port());
}

TEST_CASE("error replies carry code and message", "[client]") {
  watchdog guard;
  test_server server([](conn& c) {
    while (auto line = c.read_line()) {
      const json req = json::parse(*line);
      c.write(json{{"id", req["id"]},
                   {"ok", false},
                   {"error", {{"code", "out_of_stock"}, {"message", "only 1 left"}}}}
                  .dump() +
              "\n");
    }
  });
  om::client client(options_for({server.endpoint()}));
  auto r = client.call("order.place", json::object());
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.local);
  CHECK(r.code == "out_of_stock");
  CHECK(r.message == "only 1 left");
  CHECK_FALSE(r.retryable());
  // No token: the key is left out of the request entirely (checked via a second call's echo).
}

TEST_CASE("pipelined calls are matched by id", "[client]") {
  watchdog guard;
  const size_t n = 20;
  test_server server(echo_reversed(n));
  om::client client(options_for({server.endpoint()}));
  std::vector<om::request> reqs;
  for (size_t i = 0; i < n; ++i) {
    om::request r;
    r.op = "order.get";
    r.args = {{"order_id", "o" + std::to_string(i)}};
    if (i % 3 == 0) {
      r.id = "s" + std::to_string(i);  // caller-chosen string ids mix with numbered ones
    }
    if (i % 2 == 0) {
      r.token = "t" + std::to_string(i);
    }
    reqs.push_back(r);
  }
  auto replies = client.call_many(reqs);
  REQUIRE(replies.size() == n);
  for (size_t i = 0; i < n; ++i) {
    INFO(i);
    REQUIRE(replies[i].ok);
    CHECK(replies[i].result["args"]["order_id"] == "o" + std::to_string(i));
    if (i % 3 == 0) {
      CHECK(replies[i].raw["id"] == "s" + std::to_string(i));
    }
    CHECK(replies[i].result.contains("token") == (i % 2 == 0));
  }
  SECTION("the connection stays usable for further calls") {
    std::vector<om::request> more(n);
    for (size_t i = 0; i < n; ++i) {
      more[i].op = "x";
      more[i].args = {{"i", i}};
    }
    auto again = client.call_many(more);
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(again[i].ok);
      CHECK(again[i].result["args"]["i"] == i);
    }
    CHECK(server.connections() == 1);
  }
}

TEST_CASE("a large pipelined batch does not deadlock", "[client]") {
  watchdog guard;
  // 2000 requests of ~1 KiB each, answered one by one: more than the socket buffers hold in
  // either direction, so writing and reading must interleave.
  test_server server(echo_reversed(1));
  om::client client(options_for({server.endpoint()}, 10000ms));
  std::vector<om::request> reqs(2000);
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].op = "user.register";
    reqs[i].args = {{"user_id", "u" + std::to_string(i)}, {"password", std::string(1000, 'p')}};
  }
  auto replies = client.call_many(reqs);
  REQUIRE(replies.size() == reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    REQUIRE(replies[i].ok);
    REQUIRE(replies[i].result["args"]["user_id"] == "u" + std::to_string(i));
  }
}

TEST_CASE("a server that never answers gives timeout within the bound", "[client]") {
  watchdog guard;
  test_server server([](conn& c) { c.drain(); });
  om::client client(options_for({server.endpoint()}, 300ms));
  const auto start = steady::now();
  auto r = client.call("cluster.status");
  const long ms = elapsed_ms(start);
  CHECK_FALSE(r.ok);
  CHECK(r.local);
  CHECK(r.code == "timeout");
  CHECK(r.retryable());
  CHECK(ms >= 290);
  CHECK(ms < 1500);
  CHECK_FALSE(client.connected());  // a timed-out stream is never reused

  SECTION("call_many: every unanswered request times out, together") {
    std::vector<om::request> reqs(5);
    for (auto& q : reqs) {
      q.op = "cluster.status";
    }
    const auto batch_start = steady::now();
    auto replies = client.call_many(reqs);
    CHECK(elapsed_ms(batch_start) < 1500);
    for (const auto& q : replies) {
      CHECK(q.code == "timeout");
      CHECK(q.local);
    }
  }
}

TEST_CASE("a dead first host: the second one is used", "[client]") {
  watchdog guard;
  test_server server(echo_reversed(1));
  om::client client(options_for({{"127.0.0.1", dead_port()}, server.endpoint()}));
  auto r = client.call("cluster.status");
  REQUIRE(r.ok);
  CHECK(client.current_endpoint().port == server.port());
  CHECK(server.connections() == 1);
}

TEST_CASE("a host that does not accept in time: connect timeout, then the next", "[client]") {
  watchdog guard;
  // A listener whose accept queue is full drops further SYNs, so connecting to it hangs:
  // the stand-in for a host that does not answer at all.
  const int full = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(full, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(full, 0) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(full, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const uint16_t full_port = ntohs(addr.sin_port);
  std::vector<om::client> fillers;
  for (int i = 0; i < 4; ++i) {
    om::options o = options_for({{"127.0.0.1", full_port}});
    o.connect_timeout = 100ms;
    fillers.emplace_back(o);
    fillers.back().connect();
  }

  test_server server(echo_reversed(1));
  om::options o = options_for({{"127.0.0.1", full_port}, server.endpoint()});
  o.connect_timeout = 300ms;
  om::client client(o);
  const auto start = steady::now();
  auto r = client.call("cluster.status");
  const long ms = elapsed_ms(start);
  REQUIRE(r.ok);
  CHECK(client.current_endpoint().port == server.port());
  CHECK(ms >= 250);  // it did wait for the first host ...
  CHECK(ms < 1500);  // ... but no longer than its connect timeout
  ::close(full);
}

TEST_CASE("no host answers: local unavailable, quickly", "[client]") {
  watchdog guard;
  om::client client(options_for({{"127.0.0.1", dead_port()}, {"127.0.0.1", dead_port()}}));
  const auto start = steady::now();
  auto r = client.call("cluster.status");
  CHECK(elapsed_ms(start) < 1000);
  CHECK_FALSE(r.ok);
  CHECK(r.local);
  CHECK(r.code == "unavailable");
  CHECK(r.message.find("could not connect") != std::string::npos);
  CHECK(r.raw["error"]["code"] == "unavailable");
  CHECK(json::parse(r.line)["ok"] == false);
  CHECK_FALSE(client.connected());

  om::options none;
  none.endpoints.clear();
  om::client nowhere(none);
  CHECK(nowhere.call("cluster.status").code == "unavailable");
}

TEST_CASE("a server that closes mid-reply gives unavailable", "[client]") {
  watchdog guard;
  test_server server([](conn& c) {
    if (c.read_line()) {
      c.write(R"({"id":1,"ok":tr)");
    }
  });
  om::client client(options_for({server.endpoint()}));
  auto r = client.call("cluster.status");
  CHECK_FALSE(r.ok);
  CHECK(r.local);
  CHECK(r.code == "unavailable");
  CHECK(r.retryable());
  CHECK_FALSE(client.connected());
}

TEST_CASE("broken replies give unavailable", "[client]") {
  watchdog guard;
  SECTION("a line that is not JSON") {
    test_server server([](conn& c) {
      while (c.read_line()) {
        c.write("hello\n");
      }
    });
    om::client client(options_for({server.endpoint()}));
    auto r = client.call("cluster.status");
    CHECK(r.code == "unavailable");
    CHECK(r.local);
  }
  SECTION("a reply line longer than the bound") {
    test_server server([](conn& c) {
      if (c.read_line()) {
        c.write(R"({"id":1,"ok":true,"result":{"pad":")" + std::string(300000, 'x'));
        c.drain();
      }
    });
    om::options o = options_for({server.endpoint()});
    o.max_reply_bytes = 100000;
    om::client client(o);
    auto r = client.call("cluster.status");
    CHECK(r.code == "unavailable");
    CHECK(r.message.find("exceeds") != std::string::npos);
  }
  SECTION("a reply without ok or error is an internal error, not a crash") {
    test_server server([](conn& c) {
      while (c.read_line()) {
        c.write("{\"id\":1}\n");
      }
    });
    om::client client(options_for({server.endpoint()}));
    auto r = client.call("cluster.status");
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.local);
    CHECK(r.code == "internal");
  }
}

TEST_CASE("a closed idle connection is replaced before the next call", "[client]") {
  watchdog guard;
  // The server answers one request per connection and then hangs up, like a restarted node.
  test_server server([](conn& c) {
    if (auto line = c.read_line()) {
      const json req = json::parse(*line);
      c.write(json{{"id", req["id"]}, {"ok", true}, {"result", json::object()}}.dump() + "\n");
    }
  });
  om::client client(options_for({server.endpoint()}));
  REQUIRE(client.call("cluster.status").ok);
  std::this_thread::sleep_for(100ms);  // let the close arrive
  auto r = client.call("cluster.status");
  CHECK(r.ok);
  CHECK(server.connections() == 2);
}

TEST_CASE("retries: a retryable error is repeated with the same id", "[client]") {
  watchdog guard;
  std::vector<json> ids;
  test_server server([&](conn& c) {
    while (auto line = c.read_line()) {
      const json req = json::parse(*line);
      ids.push_back(req["id"]);
      const bool overloaded = ids.size() < 3;
      c.write((overloaded ? json{{"id", req["id"]},
                                 {"ok", false},
                                 {"error", {{"code", "overloaded"}, {"message", "busy"}}}}
                          : json{{"id", req["id"]}, {"ok", true}, {"result", {{"n", ids.size()}}}})
                  .dump() +
              "\n");
    }
  });
  om::options o = options_for({server.endpoint()});
  o.retries = 3;
  o.retry_backoff = 10ms;
  om::client client(o);
  auto r = client.call("cluster.status");
  REQUIRE(r.ok);
  CHECK(r.result["n"] == 3);
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] == ids[1]);
  CHECK(ids[1] == ids[2]);

  SECTION("without retries the first answer is returned") {
    client.disconnect();  // the server serves one connection at a time
    om::client once(options_for({server.endpoint()}));
    ids.assign(0, json());
    auto first = once.call("cluster.status");
    CHECK(first.code == "overloaded");
    CHECK(first.retryable());
    CHECK(ids.size() == 1);
  }
}

TEST_CASE("retries: a node that says retry_elsewhere is left for the next endpoint", "[client]") {
  watchdog guard;
  std::mutex mu;
  std::vector<json> refused_ids, served_ids;
  test_server cut_off([&](conn& c) {
    while (auto line = c.read_line()) {
      const json req = json::parse(*line);
      std::lock_guard<std::mutex> lock(mu);
      refused_ids.push_back(req["id"]);
      c.write(json{{"id", req["id"]},
                   {"ok", false},
                   {"error",
                    {{"code", "unavailable"},
                     {"message", "cut off from its peers"},
                     {"retry_elsewhere", true}}}}
                  .dump() +
              "\n");
    }
  });
  test_server healthy([&](conn& c) {
    while (auto line = c.read_line()) {
      const json req = json::parse(*line);
      std::lock_guard<std::mutex> lock(mu);
      served_ids.push_back(req["id"]);
      c.write(json{{"id", req["id"]}, {"ok", true}, {"result", json::object()}}.dump() + "\n");
    }
  });
  om::options o = options_for({cut_off.endpoint(), healthy.endpoint()});
  o.retries = 1;
  om::client client(o);
  auto r = client.call("user.get", {{"user_id", "u1"}});
  REQUIRE(r.ok);
  {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE(refused_ids.size() == 1);
    REQUIRE(served_ids.size() == 1);
    CHECK(refused_ids[0] == served_ids[0]);  // the same request, so the same idempotency
  }
  CHECK(client.current_endpoint().port == healthy.port());
  auto again = client.call("user.get", {{"user_id", "u1"}});  // stays on the healthy node
  CHECK(again.ok);
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(refused_ids.size() == 1);
    CHECK(served_ids.size() == 2);
  }

  SECTION("without retries the refusal is returned, marked") {
    om::options one = options_for({cut_off.endpoint()});
    client.disconnect();
    om::client single(one);
    auto first = single.call("user.get", {{"user_id", "u1"}});
    CHECK(first.code == "unavailable");
    CHECK(first.retry_elsewhere);
  }
}

TEST_CASE("call_raw and replies without an id", "[client]") {
  watchdog guard;
  test_server server([](conn& c) {
    while (auto line = c.read_line()) {
      const json req = json::parse(*line, nullptr, false);
      if (req.is_discarded()) {
        c.write(R"({"id":null,"ok":false,"error":{"code":"bad_request","message":"not JSON"}})"
                "\n");
      } else {
        c.write(json{{"id", req["id"]}, {"ok", true}, {"result", json::object()}}.dump() + "\n");
      }
    }
  });
  om::client client(options_for({server.endpoint()}));
  auto r = client.call_raw("this is not json");
  CHECK_FALSE(r.ok);
  CHECK(r.code == "bad_request");
  CHECK(r.raw["id"].is_null());
  // The connection is still in step: a normal call works after it.
  CHECK(client.call("cluster.status").ok);
}
