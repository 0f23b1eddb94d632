#include "nodes/cluster_transport/tcp_dial.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ordermesh::cluster_transport {

namespace {

/// One address: a non-blocking connect, then poll until `deadline`; blocking again on success.
int dial_one(const addrinfo& a, std::chrono::steady_clock::time_point deadline, std::string* why) {
  int fd = socket(a.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::strerror(errno);
    return -1;
  }
  int rc = connect(fd, a.ai_addr, a.ai_addrlen);
  if (rc != 0 && errno == EINPROGRESS) {
    for (;;) {  // bounded by the deadline: each pass waits for what is left of it
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        *why = "no connection within the dial deadline";
        close(fd);
        return -1;
      }
      pollfd p{fd, POLLOUT, 0};
      int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        continue;  // timed out: the deadline check above ends it
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
      rc = err == 0 ? 0 : -1;
      errno = err;
      break;
    }
  }
  if (rc != 0) {
    *why = std::strerror(errno);
    close(fd);
    return -1;
  }
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    *why = std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int dial_tcp(const std::string& host, uint16_t port, std::chrono::milliseconds deadline,
             std::string* why) {
  std::string ignored;
  if (why == nullptr)
    why = &ignored;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) {
    *why = std::string("cannot resolve ") + host + ": " + gai_strerror(gai);
    return -1;
  }
  auto until = std::chrono::steady_clock::now() + deadline;
  int fd = -1;
  for (auto* a = found; a != nullptr && fd < 0; a = a->ai_next)
    fd = dial_one(*a, until, why);
  freeaddrinfo(found);
  return fd;
}

bool set_user_timeout(int fd, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0)
    return true;
  auto ms = static_cast<unsigned int>(timeout.count());
  return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) == 0;
}

}  // namespace ordermesh::cluster_transport
