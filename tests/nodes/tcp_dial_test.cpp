// The cluster port's dial (nodes/cluster_transport/tcp_dial.hpp) on loopback: it connects to a
// listener, fails at once on a refusal, gives up at its deadline on a listener that drops SYNs
// (its accept queue full), and sets TCP_USER_TIMEOUT.
#include <chrono>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "nodes/cluster_transport/tcp_dial.hpp"

using namespace ordermesh::cluster_transport;
using namespace std::chrono_literals;

namespace {

/// A loopback listener on an ephemeral port with `backlog`; its port in `port`.
int listener(int backlog, uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(listen(fd, backlog) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port = ntohs(a.sin_port);
  return fd;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("tcp dial: connects to a listener, with TCP_USER_TIMEOUT set") {
  uint16_t port = 0;
  int l = listener(8, port);
  std::string why;
  int fd = dial_tcp("127.0.0.1", port, 1000ms, &why);
  REQUIRE(fd >= 0);
  CHECK(why.empty());
  unsigned int ms = 0;
  socklen_t len = sizeof(ms);
  REQUIRE(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, &len) == 0);
  CHECK(ms == 0);  // the kernel's default until set
  CHECK(set_user_timeout(fd, 2000ms));
  REQUIRE(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, &len) == 0);
  CHECK(ms == 2000);
  CHECK(set_user_timeout(fd, 0ms));  // 0: left as it is
  REQUIRE(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, &len) == 0);
  CHECK(ms == 2000);
  CHECK_FALSE(set_user_timeout(-1, 1000ms));
  close(fd);
  close(l);
}

TEST_CASE("tcp dial: a refused port fails at once, with the reason") {
  uint16_t port = 0;
  int l = listener(8, port);
  close(l);  // nothing listens there now
  std::string why;
  auto t = std::chrono::steady_clock::now();
  CHECK(dial_tcp("127.0.0.1", port, 5000ms, &why) < 0);
  CHECK(seconds_since(t) < 2.0);  // a bound for a refusal, far below the deadline
  CHECK(why.find("refused") != std::string::npos);
  CHECK(dial_tcp("not a host name!", port, 100ms, &why) < 0);
  CHECK(why.find("cannot resolve") != std::string::npos);
}

TEST_CASE("tcp dial: a listener that drops SYNs costs the deadline, not the kernel's retries") {
  uint16_t port = 0;
  int l = listener(0, port);  // never accepted: once its queue is full, SYNs are dropped
  std::vector<int> queued;
  std::string why;
  bool timed_out = false;
  // Fill the accept queue; the first dial that does not complete within the deadline is the
  // one the kernel drops (without the deadline it would wait about two minutes).
  for (int i = 0; i < 16 && !timed_out; ++i) {
    auto t = std::chrono::steady_clock::now();
    int fd = dial_tcp("127.0.0.1", port, 300ms, &why);
    if (fd >= 0) {
      queued.push_back(fd);
      continue;
    }
    timed_out = true;
    CHECK(seconds_since(t) >= 0.29);
    CHECK(seconds_since(t) < 5.0);
    CHECK(why == "no connection within the dial deadline");
  }
  CHECK(timed_out);
  for (int fd : queued)
    close(fd);
  close(l);
}
