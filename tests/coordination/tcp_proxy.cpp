#include "tests/coordination/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ordermesh::cluster::coordination::test {

namespace {

constexpr std::size_t max_buffered = 1 << 20;  // per direction; reading pauses beyond it
constexpr int poll_ms = 20;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

/// One forwarded connection: `down` to the client, `up` to the server.
struct link {
  int down = -1;
  int up = -1;
  std::string to_up;
  std::string to_down;
  bool down_eof = false;
  bool up_eof = false;
  bool dead = false;

  void close_both() {
    if (down >= 0)
      ::close(down);
    if (up >= 0)
      ::close(up);
    down = up = -1;
    dead = true;
  }
};

/// Reads what `from` has into `into`; false on EOF or error.
bool pump_in(int from, std::string& into) {
  char buf[16384];
  // Bounded: each round reads data or stops; the buffer cap ends it too.
  for (int round = 0; round < 64 && into.size() < max_buffered; ++round) {
    ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n > 0) {
      into.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return true;
    return false;  // 0: EOF; < 0: error
  }
  return true;
}

/// Writes what it can of `from` to `to`; false on error.
bool pump_out(int to, std::string& from) {
  if (from.empty())
    return true;
  ssize_t n = ::send(to, from.data(), from.size(), MSG_NOSIGNAL);
  if (n > 0) {
    from.erase(0, static_cast<std::size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

}  // namespace

tcp_proxy::tcp_proxy(uint16_t upstream_port) : upstream_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0)
    throw std::runtime_error("tcp_proxy: socket failed");
  auto addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("tcp_proxy: cannot listen on 127.0.0.1");
  }
  set_nonblocking(listen_fd_);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

tcp_proxy::~tcp_proxy() {
  stop_.store(true);
  thread_.join();  // the loop sees stop_ within one poll timeout
  ::close(listen_fd_);
}

void tcp_proxy::set_cut(bool cut) {
  cut_.store(cut);
  if (!cut)
    return;
  // Two full rounds after the store: the second one started after the cut was set, so it
  // closed every link before forwarding anything more.
  auto seen = rounds_.load();
  for (int i = 0; i < 500 && rounds_.load() < seen + 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

void tcp_proxy::run() {
  std::vector<link> links;
  std::vector<pollfd> fds;
  for (; !stop_.load(); rounds_.fetch_add(1)) {
    const bool cut = cut_.load();
    for (auto& l : links) {
      // A side that ended closes the link once what it sent is delivered.
      if (cut || (l.down_eof && l.to_up.empty()) || (l.up_eof && l.to_down.empty()))
        l.close_both();
    }
    links.erase(std::remove_if(links.begin(), links.end(), [](const link& l) { return l.dead; }),
                links.end());

    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& l : links) {
      short down_ev =
          static_cast<short>((l.to_up.size() < max_buffered && !l.down_eof ? POLLIN : 0) |
                             (l.to_down.empty() ? 0 : POLLOUT));
      short up_ev = static_cast<short>((l.to_down.size() < max_buffered && !l.up_eof ? POLLIN : 0) |
                                       (l.to_up.empty() ? 0 : POLLOUT));
      fds.push_back({l.down, down_ev, 0});
      fds.push_back({l.up, up_ev, 0});
    }
    if (::poll(fds.data(), fds.size(), poll_ms) < 0)
      continue;  // EINTR; the loop condition bounds it

    // Cut during the poll: forward nothing more (the next round closes every link).
    for (std::size_t i = 0; i < links.size() && !cut_.load(); ++i) {
      auto& l = links[i];
      const short down_re = fds[1 + 2 * i].revents;
      const short up_re = fds[2 + 2 * i].revents;
      if ((down_re & (POLLIN | POLLHUP | POLLERR)) && !l.down_eof)
        l.down_eof = !pump_in(l.down, l.to_up);
      if ((up_re & (POLLIN | POLLHUP | POLLERR)) && !l.up_eof)
        l.up_eof = !pump_in(l.up, l.to_down);
      if (!pump_out(l.up, l.to_up) || !pump_out(l.down, l.to_down))
        l.close_both();
    }

    if (fds[0].revents & POLLIN) {
      // Bounded: at most a few accepts per round.
      for (int round = 0; round < 16; ++round) {
        int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (down < 0)
          break;
        if (cut_.load()) {
          ::close(down);
          continue;
        }
        int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto to = loopback(upstream_);
        // A blocking connect on loopback: refused or done at once.
        if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
          if (up >= 0)
            ::close(up);
          ::close(down);
          continue;
        }
        set_nonblocking(down);
        set_nonblocking(up);
        link l;
        l.down = down;
        l.up = up;
        links.push_back(std::move(l));
      }
    }
  }
  for (auto& l : links)
    l.close_both();
}

}  // namespace ordermesh::cluster::coordination::test
