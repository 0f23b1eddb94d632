#pragma once
// The admin port's socket side: a small HTTP/1.1 server (Boost.Beast) on its own thread that
// hands each request to route_admin_request. Hostile input is bounded: header size, no request
// bodies, a deadline per request, an idle timeout, a cap on connections and on requests per
// connection. It never touches the actor system: its sources answer from cached state.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "nodes/admin/admin_routes.hpp"

namespace ordermesh::node::admin {

struct admin_server_options {
  std::string host = "127.0.0.1";  // loopback unless the operator asks otherwise
  uint16_t port = 0;               // 0: any free port (tests); orderd passes --admin-port
  size_t max_connections = 16;     // beyond: the connection is closed at once
  size_t header_limit = 8 * 1024;  // bytes of request line and headers; beyond: 431
  /// A request's line and headers must arrive within this long of its first byte (and a new
  /// connection's first byte within this long of the accept): slow senders are cut off.
  std::chrono::milliseconds read_timeout{5000};
  /// A kept-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{30000};
  /// A response must be taken by the client within this long.
  std::chrono::milliseconds write_timeout{10000};
  size_t max_requests_per_connection = 1000;  // then "Connection: close"
};

class admin_server {
 public:
  admin_server(admin_server_options options, admin_sources sources);
  ~admin_server();  // stops
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  /// Binds and starts the server thread. False, with *why, when it cannot bind.
  bool start(std::string* why);
  /// The port it listens on (after start).
  uint16_t bound_port() const { return bound_port_; }
  /// Closes the listener and every connection and joins the thread. Idempotent.
  void stop();

  /// Connections closed at once because max_connections were open (for tests and logs).
  uint64_t refused_connections() const { return refused_.load(); }

 private:
  struct impl;
  admin_server_options options_;
  admin_sources sources_;
  std::unique_ptr<impl> impl_;
  std::thread thread_;
  uint16_t bound_port_ = 0;
  std::atomic<uint64_t> refused_{0};
};

}  // namespace ordermesh::node::admin
