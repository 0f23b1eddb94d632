#pragma once
// The cluster port's TCP sockets, below CAF: a dial with a deadline and a bound on how long sent
// data may stay unacknowledged. Both matter when a peer is cut off rather than dead: nothing
// refuses or resets, packets just vanish.
//  - CAF's connect blocks in connect(2) for the kernel's SYN retries (about two minutes), and
//    the middleman dials one peer at a time: one unreachable member held every other dial.
//  - An established connection across a partition keeps retransmitting with exponential
//    backoff; after the heal it stays silent until the next retransmission, up to the
//    partition's length again (3 s partitions left links dead for 3-6 s more). With
//    TCP_USER_TIMEOUT the kernel drops it instead, and the member agent dials a fresh one.
#include <chrono>
#include <cstdint>
#include <string>

namespace ordermesh::cluster_transport {

/// A connected, blocking TCP socket to host:port (every address the name resolves to, in
/// order), or -1 with `why` set: refused, unreachable, or no connection within `deadline` for
/// any address. The name lookup itself is not bounded (members publish numeric addresses).
int dial_tcp(const std::string& host, uint16_t port, std::chrono::milliseconds deadline,
             std::string* why);

/// Sets TCP_USER_TIMEOUT on `fd`: data unacknowledged for `timeout` closes the connection.
/// A timeout of 0 leaves the kernel's default (retransmit for about 15 minutes). Returns false
/// if the option could not be set.
bool set_user_timeout(int fd, std::chrono::milliseconds timeout);

}  // namespace ordermesh::cluster_transport
