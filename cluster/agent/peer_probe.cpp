// Whether a member whose connection was lost is gone: one plain TCP connect to its cluster
// port, closed at once. A refusal (nothing listens: its process died) makes it suspect at once
// (cluster/coordination/suspicion.hpp). The probe is not a BASP connection, so it does not
// depend on which side dials (dial_grace) and does not race the pair's own reconnect; on a TLS
// port the peer only sees a connection closed before its handshake.
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"

namespace ordermesh::cluster::agent {

namespace {

using probe_atom = caf::atom_constant<caf::atom("m_probe")>;  // (host, port) -> bool refused

/// True when `host:port` (a numeric address, as members publish them) refuses a TCP connection
/// within `within`; false when it accepts, does not answer in time, or cannot be tried.
bool port_refuses(const std::string& host, uint16_t port, std::chrono::milliseconds within) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // no name lookup: it has no deadline
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    return false;
  bool refused = false;
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int rc = connect(fd, found->ai_addr, found->ai_addrlen);
    if (rc != 0 && errno == ECONNREFUSED) {
      refused = true;
    } else if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, static_cast<int>(within.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        refused = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED;
      }
    }
    close(fd);
  }
  freeaddrinfo(found);
  return refused;
}

bool split_address(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  auto value = std::strtoul(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || value == 0 || value > 65535)
    return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

void probe_lost_peer(self_ptr self, const std::string& node_id, int tries_left) {
  auto& s = self->state;
  if (!s.state)
    return;
  std::string host;
  uint16_t port = 0;
  for (const auto& m : s.state->members)
    if (m.node_id == node_id && !split_address(m.cluster_address, host, port))
      return;
  if (port == 0)
    return;
  // A detached actor: connect and poll block (at most refusal_window). The unused int: CAF
  // 0.17 binds a null tuple for a function actor without arguments.
  auto prober = self->spawn<caf::detached>(
      [](caf::event_based_actor* h, int) -> caf::behavior {
        return {[h](probe_atom, const std::string& to_host, uint16_t to_port) {
          h->quit();
          return port_refuses(to_host, to_port, co::refusal_window);
        }};
      },
      0);
  self->request(prober, co::refusal_window * 4, probe_atom::value, host, port)
      .then(
          [self, node_id, tries_left](bool refused) {
            auto& peer = self->state.peers[node_id];
            if (peer.agent || !peer.down_since || peer.refused_since)
              return;  // back already, or suspected already
            if (!refused) {
              // A dying process closes its connections a moment before its listening socket:
              // a probe that soon may still be accepted. Tried again shortly, a few times.
              if (tries_left > 1)
                self->delayed_send(self, probe_retry_delay, probe_again_atom::value, node_id,
                                   tries_left - 1);
              return;
            }
            peer.refused_since = clock_type::now();
            self->state.log->warn(
                "node={} {} refused a new connection after its connection was lost: suspected "
                "at once",
                me(self), node_id);
            controller_round(self);
          },
          [](caf::error&) {});
}

}  // namespace ordermesh::cluster::agent
