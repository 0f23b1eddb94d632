#pragma once
// Applies the cluster port's bounds to sockets (docs/SECURITY.md, "Cluster plane"): registers
// accepted connections in a handshake_registry, shuts down the ones it evicts or that miss the
// handshake deadline (a sweeper thread, every 250 ms), refuses frames above the bound, counts
// all of it in the node's metrics and logs it (rate-limited) through the node's logger.
//
// A connection is closed with ::shutdown(fd, SHUT_RDWR), never ::close: CAF then reads EOF and
// cleans up as for any lost peer, and the fd stays CAF's to close. No CAF here.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "nodes/cluster_transport/handshake_registry.hpp"

namespace ordermesh::cluster_transport {

struct guard_options {
  handshake_limits limits;
  /// Largest BASP read (header or payload) a connection may ask for, in bytes.
  size_t max_frame_bytes = size_t{64} << 20;
  std::string node_id;
  std::shared_ptr<spdlog::logger> log;
};

class connection_guard {
 public:
  /// Starts the sweeper thread; the destructor stops it.
  explicit connection_guard(guard_options options);
  ~connection_guard();
  connection_guard(const connection_guard&) = delete;
  connection_guard& operator=(const connection_guard&) = delete;

  size_t max_frame_bytes() const { return options_.max_frame_bytes; }

  /// A connection was accepted on `fd`: its registry id, or empty when the total cap is full
  /// (the caller closes the fd at once). May shut down the oldest pending connection.
  std::optional<uint64_t> on_accept(int fd, const std::string& peer);

  /// The connection read application data: its handshake is done.
  void on_established(uint64_t id);

  /// The connection's socket is about to be closed (its scribe is being destroyed). Taken under
  /// the lock the sweeper shuts sockets down under, so no fd is shut down after its close (and
  /// possible reuse by another connection).
  void on_closed(uint64_t id);

  /// A read of `bytes` was asked for on `fd`, above the frame bound: shuts the socket down.
  void on_oversized_frame(int fd, size_t bytes, const std::string& peer);

 private:
  void sweep_loop();
  void sweep_once();
  /// Logs a warning unless one of this kind was logged within the last second; the ones held
  /// back are counted in the next.
  void warn(const char* what, const std::string& detail);
  void publish_pending_locked();

  guard_options options_;
  std::mutex mu_;  // guards registry_ and every ::shutdown of a registered fd
  handshake_registry registry_;
  std::mutex log_mu_;
  std::chrono::steady_clock::time_point last_warning_{};
  size_t held_back_ = 0;

  // The node's metrics (observability/): defined in the .cpp, whose includers name `ordermesh`
  // `om` (orderd_main.cpp) and so cannot see the observability namespace.
  struct metrics;
  std::unique_ptr<metrics> metrics_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace ordermesh::cluster_transport
