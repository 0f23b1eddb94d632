// Tests for nodes/client_listener: the client plane's bounds, against a real listener on
// 127.0.0.1 (port 0) with real sockets and a tiny handler. Every wait is bounded; no assertion
// is about speed (only that nothing closes early and that everything ends within a bound).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nodes/client_listener.hpp"

namespace node = ordermesh::node;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

/// Answers every line at once, on the listener's thread: "big N K" with a line of N bytes
/// that starts with "K:", "hold" not at all (the test answers it), anything else with itself.
class test_handler : public node::connection_handler {
 public:
  explicit test_handler(std::shared_ptr<node::client_connection> conn) : conn_(std::move(conn)) {}

  void on_line(std::string line) override {
    if (line == "hold")
      return;
    if (line.rfind("big ", 0) == 0) {
      size_t size = 0, key = 0;
      REQUIRE(sscanf(line.c_str(), "big %zu %zu", &size, &key) == 2);
      auto reply = std::to_string(key) + ":";
      reply.resize(size - 1, 'x');
      conn_->send(reply + "\n");
      return;
    }
    conn_->send(line + "\n");
  }
  void on_oversized() override { conn_->send("too_large\n"); }
  void on_close() override { conn_.reset(); }

 private:
  std::shared_ptr<node::client_connection> conn_;
};

/// A listener on 127.0.0.1:0 with test_handler; keeps every connection for inspection.
struct fixture {
  explicit fixture(node::listener_options opts) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    listener = std::make_unique<node::client_listener>(
        opts, [this](std::shared_ptr<node::client_connection> c) {
          std::lock_guard<std::mutex> lock(mutex);
          conns.push_back(c);
          return std::make_unique<test_handler>(std::move(c));
        });
    std::string error;
    REQUIRE(listener->start(&error));
  }
  ~fixture() { listener->stop(); }
  uint16_t port() const { return listener->bound_port(); }
  std::shared_ptr<node::client_connection> last() {
    std::lock_guard<std::mutex> lock(mutex);
    return conns.empty() ? nullptr : conns.back();
  }

  // Declared in this order so that the connections go before the listener: each holds a
  // socket and a timer of the listener's io_context, which must outlive them (ASan found a
  // heap-use-after-free when the io_context went first).
  std::mutex mutex;
  std::unique_ptr<node::client_listener> listener;
  std::vector<std::shared_ptr<node::client_connection>> conns;
};

/// A blocking client socket, closed on scope exit.
class client {
 public:
  /// Connects to 127.0.0.1:port from `source` (any address of 127.0.0.0/8: all loopback).
  explicit client(uint16_t port, const char* source = "127.0.0.1", int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (rcvbuf > 0)
      REQUIRE(setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, source, &src.sin_addr) == 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr) == 1);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~client() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// False once the peer has closed (EPIPE, ECONNRESET).
  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  /// The next line without its '\n'; "<eof>" when closed, "<timeout>" when none came in time.
  std::string line(std::chrono::milliseconds timeout = 10s) {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        auto l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      auto r = fill(deadline);
      if (r == 0)
        return "<eof>";
      if (r < 0)
        return "<timeout>";
    }
  }

  /// True when the peer closes within `timeout` (whatever it sends before is dropped).
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
      auto r = fill(deadline);
      if (r == 0)
        return true;
      if (r < 0)
        return false;
      buf_.clear();
    }
  }

 private:
  /// 1: read something; 0: eof or reset; -1: deadline passed.
  int fill(clock_type::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0)
      return -1;
    pollfd p{fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(left.count()));
    if (pr == 0)
      return -1;
    char tmp[64 * 1024];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0)
      return 0;
    buf_.append(tmp, static_cast<size_t>(n));
    return 1;
  }

  int fd_ = -1;
  std::string buf_;
};

/// Calls fn until it is true or `timeout` passes; returns its last value.
template <class F>
bool eventually(F fn, std::chrono::milliseconds timeout = 10s) {
  auto deadline = clock_type::now() + timeout;
  while (!fn()) {
    if (clock_type::now() >= deadline)
      return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("client listener echoes lines and answers an oversized one", "[client_listener]") {
  node::listener_options opts;
  opts.max_line_bytes = 1024;
  fixture f(opts);
  client c(f.port());
  REQUIRE(c.send("hello\r\n\nworld\n"));
  CHECK(c.line() == "hello");
  CHECK(c.line() == "world");
  REQUIRE(c.send(std::string(5000, 'a') + "\nafter\n"));
  CHECK(c.line() == "too_large");
  CHECK(c.line() == "after");
}

TEST_CASE("client listener closes an idle connection after the idle timeout", "[client_listener]") {
  node::listener_options opts;
  opts.idle_timeout = 200ms;
  fixture f(opts);
  client c(f.port());
  REQUIRE(c.send("ping\n"));
  CHECK(c.line() == "ping");
  auto t0 = clock_type::now();
  CHECK(c.closed_within(10s));
  CHECK(clock_type::now() - t0 >= 150ms);  // not before its time (ms clocks round)
  CHECK(eventually([&] { return f.listener->stats().closed_idle == 1; }));
  CHECK(eventually([&] { return f.listener->connections() == 0; }));
}

TEST_CASE("client listener keeps a connection with a request in flight open", "[client_listener]") {
  node::listener_options opts;
  opts.idle_timeout = 100ms;
  fixture f(opts);
  client c(f.port());
  REQUIRE(c.send("hold\n"));
  REQUIRE(eventually([&] { return f.last() != nullptr; }));
  // Several idle timeouts pass while the request is in flight: still open.
  CHECK_FALSE(c.closed_within(500ms));
  CHECK(f.listener->stats().closed_idle == 0);
  f.last()->send("late answer\n");
  CHECK(c.line() == "late answer");
  // Answered: idle again, so closed.
  CHECK(c.closed_within(10s));
  CHECK(eventually([&] { return f.listener->stats().closed_idle == 1; }));
}

TEST_CASE("client listener closes a byte-at-a-time partial line at its deadline",
          "[client_listener]") {
  node::listener_options opts;
  opts.line_timeout = 300ms;
  opts.idle_timeout = 60s;
  fixture f(opts);
  client loris(f.port());
  client normal(f.port());
  auto t0 = clock_type::now();
  bool closed = false;
  // One byte every 20 ms, never a '\n' (bounded: at most 10 s of it).
  for (int i = 0; i < 500 && !closed; ++i) {
    if (!loris.send("x") || loris.closed_within(20ms))
      closed = true;
    if (i == 5) {  // meanwhile, a normal client on the same listener is served
      REQUIRE(normal.send("served\n"));
      CHECK(normal.line() == "served");
    }
  }
  CHECK(closed);
  CHECK(clock_type::now() - t0 >= 250ms);
  CHECK(eventually([&] { return f.listener->stats().closed_line_timeout == 1; }));
  // The normal client is still served after the loris is gone.
  REQUIRE(normal.send("still\n"));
  CHECK(normal.line() == "still");
}

TEST_CASE("client listener caps connections per address and keeps room for others",
          "[client_listener]") {
  node::listener_options opts;
  opts.max_connections = 5;
  opts.max_connections_per_address = 3;
  fixture f(opts);
  std::vector<std::unique_ptr<client>> ones;
  for (int i = 0; i < 3; ++i) {
    ones.push_back(std::make_unique<client>(f.port(), "127.0.0.1"));
    REQUIRE(ones.back()->send("hi\n"));
    REQUIRE(ones.back()->line() == "hi");
  }
  // A fourth from 127.0.0.1: one overloaded line, then closed.
  {
    client extra(f.port(), "127.0.0.1");
    auto l = extra.line();
    CHECK(l.find("\"overloaded\"") != std::string::npos);
    CHECK(l.find("from this address") != std::string::npos);
    CHECK(extra.line() == "<eof>");
  }
  CHECK(f.listener->stats().refused_per_address == 1);
  // Another address is served.
  client two(f.port(), "127.0.0.2");
  REQUIRE(two.send("from two\n"));
  CHECK(two.line() == "from two");
  // The total cap still holds: the fifth is accepted, a sixth (from a third address) is not.
  client two_b(f.port(), "127.0.0.2");
  REQUIRE(two_b.send("b\n"));
  CHECK(two_b.line() == "b");
  {
    client three(f.port(), "127.0.0.3");
    auto l = three.line();
    CHECK(l.find("\"overloaded\"") != std::string::npos);
    CHECK(l.find("too many connections") != std::string::npos);
  }
  CHECK(f.listener->stats().refused_total == 1);
  // A slot of 127.0.0.1 freed is taken again (the close is noticed asynchronously).
  ones.pop_back();
  REQUIRE(eventually([&] { return f.listener->connections() == 4; }));
  client again(f.port(), "127.0.0.1");
  REQUIRE(again.send("again\n"));
  CHECK(again.line() == "again");
}

TEST_CASE("client listener bounds the unsent output of a client that never reads",
          "[client_listener]") {
  node::listener_options opts;
  opts.max_unsent_bytes = 64 * 1024;
  fixture f(opts);
  constexpr size_t reply = 16 * 1024;
  constexpr int count = 2000;  // 32 MiB of replies: far more than the kernel's buffers
  client c(f.port(), "127.0.0.1", 4096);
  std::string requests;
  for (int i = 0; i < count; ++i)
    requests += "big " + std::to_string(reply) + " " + std::to_string(i) + "\n";
  REQUIRE(c.send(requests));  // about 25 KB: the node's receive buffer takes it all
  REQUIRE(eventually([&] { return f.last() != nullptr; }));
  auto conn = f.last();
  // The node fills the kernel's buffers, then its own queue up to the bound, and stops there.
  REQUIRE(eventually([&] { return conn->queued_bytes() >= opts.max_unsent_bytes; }));
  std::this_thread::sleep_for(200ms);
  CHECK(conn->peak_queued_bytes() <= opts.max_unsent_bytes + reply);
  // Now it reads: every reply, in order.
  for (int i = 0; i < count; ++i) {
    auto l = c.line(20s);
    REQUIRE(l.size() == reply - 1);
    REQUIRE(l.substr(0, l.find(':')) == std::to_string(i));
  }
  CHECK(conn->peak_queued_bytes() <= opts.max_unsent_bytes + reply);
  CHECK(eventually([&] { return conn->queued_bytes() == 0; }));
  // Still usable.
  REQUIRE(c.send("done\n"));
  CHECK(c.line() == "done");
}
