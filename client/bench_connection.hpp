#pragma once
// A non-blocking JSON-lines connection for orderbench: the caller queues request lines and
// polls the fd; complete reply lines come back through a callback. Unlike client::call_many it
// never waits for a batch, so a driver can keep K requests in flight per connection and send on
// a schedule (open loop). Bounded: a reply line longer than max_line closes the connection.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "client/client.hpp"
#include "client/tls_session.hpp"

namespace ordermesh::bench {

class connection {
 public:
  static constexpr size_t max_line = 16 * 1024 * 1024;

  connection() = default;
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  connection(connection&& other) noexcept;
  connection& operator=(connection&& other) noexcept;

  /// Connects (blocking, bounded by `timeout`; with `tls` the handshake too, verifying the node
  /// against `cafile`, empty: the system's CA store), then switches the socket to non-blocking
  /// with TCP_NODELAY. False with `error` set when no address of `ep` accepted.
  bool open(const client::endpoint& ep, std::chrono::milliseconds timeout, std::string& error,
            bool tls = false, const std::string& cafile = {});
  void close();
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  /// Queues `line` ('\n' is appended) and tries to write right away.
  /// False when the connection failed (it is closed then).
  bool send(std::string_view line);
  /// True while queued bytes wait for the socket to take them (poll for POLLOUT).
  bool want_write() const { return out_pos_ < out_.size(); }
  /// Call on POLLOUT. False when the connection failed.
  bool flush();
  /// Call on POLLIN: reads what is there and calls `on_line` for each complete line.
  /// False on EOF, error or an over-long line (the connection is closed then).
  bool read(const std::function<void(std::string_view)>& on_line);

 private:
  int fd_ = -1;
  std::unique_ptr<client::tls_session> tls_;  // set while open over TLS
  std::string out_;
  size_t out_pos_ = 0;
  std::string in_;
};

}  // namespace ordermesh::bench
