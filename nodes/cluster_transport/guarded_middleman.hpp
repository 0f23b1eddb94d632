#pragma once
// orderd's cluster transport (docs/SECURITY.md, "Cluster plane"): CAF's BASP over mutual TLS
// (or plain TCP for --insecure-cluster), through a middleman actor of its own instead of
// caf::openssl's or CAF's default one, so that what the cluster port accepts is bounded:
// a cap on connections in their handshake (the oldest is evicted) and on all accepted ones, a
// handshake deadline, and a bound on every BASP frame (connection_guard).
//
// publish / remote_actor send the same requests as caf::openssl::publish / remote_actor to it;
// the BASP broker is the system's one, so unpublish and everything else stay CAF's.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/io/middleman_actor.hpp>

#include "nodes/cluster_transport/connection_guard.hpp"

namespace ordermesh::cluster_transport {

struct transport_options {
  guard_options guard;
  /// Mutual TLS through caf::openssl's session (load caf::openssl::manager and set the
  /// openssl.* options first); false: plain TCP.
  bool tls = true;
  /// Bound on a publish or a connect request (a connect includes the BASP handshake).
  std::chrono::milliseconds request_timeout{30000};
  /// Bound on the TCP connect of a dial (tcp_dial.hpp): a peer cut off costs this, not the
  /// kernel's two minutes of SYN retries, and the next dial sends a fresh SYN.
  std::chrono::milliseconds connect_timeout{1000};
  /// TCP_USER_TIMEOUT of every cluster connection, dialed or accepted (0: the kernel's
  /// default): a link across a partition is dropped after this, not revived only at the next
  /// backed-off retransmission after the heal.
  std::chrono::milliseconds user_timeout{0};
};

class cluster_transport {
 public:
  /// Spawns the middleman actor and starts the guard's sweeper.
  cluster_transport(caf::actor_system& sys, transport_options options);
  /// Stops the middleman actor (waits for it). Connections already made stay with the BASP
  /// broker, and the guard with them.
  ~cluster_transport();
  cluster_transport(const cluster_transport&) = delete;
  cluster_transport& operator=(const cluster_transport&) = delete;

  /// Listens on host:port for `whom` (SO_REUSEADDR); the bound port.
  caf::expected<uint16_t> publish(const caf::actor& whom, uint16_t port, const std::string& host);

  /// Connects to the actor published at host:port.
  caf::expected<caf::actor> remote_actor(const std::string& host, uint16_t port);

 private:
  caf::actor_system& sys_;
  std::chrono::milliseconds request_timeout_;
  caf::io::middleman_actor middleman_;
};

}  // namespace ordermesh::cluster_transport
