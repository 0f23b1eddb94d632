// Tests for the client plane's TLS: nodes/client_tls (the server context and its start-up
// checks), the listener speaking TLS (client_stream.hpp), and the client library's side
// (client/tls_session) against it. Real sockets on 127.0.0.1, certificates made by
// scripts/gen-certs.sh in a temp dir. Every wait is bounded; nothing is about speed.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/tls_session.hpp"
#include "nodes/client_listener.hpp"
#include "nodes/client_tls.hpp"

namespace node = ordermesh::node;
using ordermesh::client::tls_session;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

/// A temp dir with two CAs from scripts/gen-certs.sh: DIR/a (ca.pem, n1.pem, n1.key) and DIR/b.
struct certs {
  std::string dir;
  certs() {
    char tmpl[] = "/tmp/client_tls_test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    for (const char* ca : {"a", "b"}) {
      std::string cmd = "bash '" ORDERMESH_SOURCE_DIR "/scripts/gen-certs.sh' '" + dir + "/" + ca +
                        "' n1 >/dev/null";
      REQUIRE(std::system(cmd.c_str()) == 0);
    }
  }
  ~certs() {
    std::string cmd = "rm -rf '" + dir + "'";
    CHECK(std::system(cmd.c_str()) == 0);
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
};

/// Echoes every line, on the listener's thread.
class echo_handler : public node::connection_handler {
 public:
  explicit echo_handler(std::shared_ptr<node::client_connection> conn) : conn_(std::move(conn)) {}
  void on_line(std::string line) override { conn_->send(line + "\n"); }
  void on_oversized() override { conn_->send("too_large\n"); }
  void on_close() override { conn_.reset(); }

 private:
  std::shared_ptr<node::client_connection> conn_;
};

/// A TLS listener on 127.0.0.1:0 presenting a/n1.pem.
struct tls_fixture {
  explicit tls_fixture(const certs& c, node::listener_options opts = {}) {
    std::string error;
    opts.tls = node::make_client_tls_context(c.path("a/n1.pem"), c.path("a/n1.key"), &error);
    REQUIRE(opts.tls);
    opts.host = "127.0.0.1";
    opts.port = 0;
    listener = std::make_unique<node::client_listener>(
        opts, [](std::shared_ptr<node::client_connection> conn) {
          return std::make_unique<echo_handler>(std::move(conn));
        });
    REQUIRE(listener->start(&error));
  }
  ~tls_fixture() { listener->stop(); }
  uint16_t port() const { return listener->bound_port(); }
  std::unique_ptr<node::client_listener> listener;
};

/// A non-blocking TCP socket connected to 127.0.0.1:port; closed on scope exit.
struct tcp_socket {
  int fd = -1;
  explicit tcp_socket(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr) == 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
    REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  }
  ~tcp_socket() { ::close(fd); }
  /// True when the peer closes within `timeout` (what it sends before is dropped).
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    while (clock_type::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0)
        continue;
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN))
        return true;
    }
    return false;
  }
};

/// Writes `line` and reads one reply line over `tls`, both within 10 s; "<error: ...>" if not.
std::string exchange(tls_session& tls, int fd, const std::string& line) {
  auto deadline = clock_type::now() + 10s;
  std::string error, in;
  size_t written = 0;
  while (clock_type::now() < deadline) {
    if (written < line.size()) {
      auto n = tls.write(line.data() + written, line.size() - written, error);
      if (n > 0)
        written += static_cast<size_t>(n);
    }
    char buf[4096];
    auto n = tls.read(buf, sizeof buf, error);
    if (n > 0)
      in.append(buf, static_cast<size_t>(n));
    if (n == 0 || !error.empty())
      return "<error: " + (n == 0 ? std::string("closed") : error) + ">";
    auto nl = in.find('\n');
    if (nl != std::string::npos)
      return in.substr(0, nl);
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 10);
  }
  return "<error: timeout>";
}

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

TEST_CASE("a TLS listener serves lines to a client that trusts its CA", "[client_tls]") {
  certs c;
  tls_fixture f(c);
  tcp_socket s(f.port());
  std::string error;
  auto tls =
      tls_session::handshake(s.fd, "127.0.0.1", c.path("a/ca.pem"), clock_type::now() + 10s, error);
  REQUIRE(tls);
  CHECK(error.empty());
  CHECK(exchange(*tls, s.fd, "hello\n") == "hello");
  // A reply larger than one TLS record (16 KiB) arrives whole.
  std::string big(40000, 'x');
  CHECK(exchange(*tls, s.fd, big + "\n") == big);
}

TEST_CASE("the client refuses a server of another CA or for another address", "[client_tls]") {
  certs c;
  tls_fixture f(c);
  std::string error;
  {
    tcp_socket s(f.port());
    CHECK_FALSE(tls_session::handshake(s.fd, "127.0.0.1", c.path("b/ca.pem"),
                                       clock_type::now() + 10s, error));
    CHECK(error.find("not trusted") != std::string::npos);
  }
  {
    // The certificate names 127.0.0.1, localhost and n1, not 127.0.0.2.
    tcp_socket s(f.port());
    error.clear();
    CHECK_FALSE(tls_session::handshake(s.fd, "127.0.0.2", c.path("a/ca.pem"),
                                       clock_type::now() + 10s, error));
    CHECK(error.find("not trusted") != std::string::npos);
  }
  {
    tcp_socket s(f.port());
    error.clear();
    CHECK_FALSE(tls_session::handshake(s.fd, "127.0.0.1", c.path("missing.pem"),
                                       clock_type::now() + 10s, error));
    CHECK(error.find("cannot load the CA file") != std::string::npos);
  }
}

TEST_CASE("a connection that never finishes its handshake is closed and counted idle",
          "[client_tls]") {
  certs c;
  node::listener_options opts;
  opts.handshake_timeout = 200ms;
  tls_fixture f(c, opts);
  tcp_socket silent(f.port());
  auto t0 = clock_type::now();
  CHECK(silent.closed_within(10s));
  CHECK(clock_type::now() - t0 >= 150ms);  // not before its time (ms clocks round)
  CHECK(eventually([&] { return f.listener->stats().closed_idle == 1; }));
  CHECK(eventually([&] { return f.listener->connections() == 0; }));
}

TEST_CASE("a plain client on a TLS listener gets no reply", "[client_tls]") {
  certs c;
  tls_fixture f(c);
  tcp_socket s(f.port());
  const std::string line = "hello\n";
  REQUIRE(::send(s.fd, line.data(), line.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(line.size()));
  CHECK(s.closed_within(10s));
  CHECK(eventually([&] { return f.listener->connections() == 0; }));
}

TEST_CASE("the server context names the file that cannot work", "[client_tls]") {
  certs c;
  std::string error;
  CHECK_FALSE(node::make_client_tls_context(c.path("a/none.pem"), c.path("a/n1.key"), &error));
  CHECK(error.find("--client-tls-cert") != std::string::npos);
  CHECK_FALSE(node::make_client_tls_context(c.path("a/n1.pem"), c.path("a/none.key"), &error));
  CHECK(error.find("--client-tls-key") != std::string::npos);
  CHECK_FALSE(node::make_client_tls_context(c.path("a/n1.pem"), c.path("b/n1.key"), &error));
  CHECK(error.find("does not belong") != std::string::npos);
  CHECK_FALSE(node::make_client_tls_context(c.path("a/n1.key"), c.path("a/n1.key"), &error));
  CHECK(node::make_client_tls_context(c.path("a/n1.pem"), c.path("a/n1.key"), &error));
}
