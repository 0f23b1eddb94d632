#pragma once
// A TCP forwarder on 127.0.0.1 that a test can cut: the way to put one etcd session out of reach
// of etcd while the others still reach it. While cut, it drops every connection it forwards and
// closes each new one at once (the client sees a broken connection, as with a partition that
// resets). One thread, poll() with a short timeout, non-blocking sockets; stopped and joined by
// the destructor.
#include <atomic>
#include <cstdint>
#include <thread>

namespace ordermesh::cluster::coordination::test {

class tcp_proxy {
 public:
  /// Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:upstream_port.
  explicit tcp_proxy(uint16_t upstream_port);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  uint16_t port() const { return port_; }
  /// Cut: drop every connection and refuse new ones (accepted, then closed). Not cut: forward.
  /// Cutting returns once the forwarding loop has seen the cut and closed every connection
  /// (bounded: a few poll rounds), so nothing sent after it returns reaches the other side.
  void set_cut(bool cut);

 private:
  void run();

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  uint16_t upstream_ = 0;
  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> rounds_{0};  // forwarding rounds done: set_cut waits for two more
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ordermesh::cluster::coordination::test
