// Which end of a pair dials, and when (dial_order.hpp).
#include "cluster/coordination/dial_order.hpp"

namespace ordermesh::cluster::coordination {

bool should_dial(const std::string& self_id, const std::string& peer_id, int64_t peer_incarnation,
                 dial_wait& wait, dial_clock::time_point now, std::chrono::milliseconds grace) {
  if (self_id < peer_id)
    return true;
  if (!wait.since || wait.incarnation != peer_incarnation) {
    wait.since = now;
    wait.incarnation = peer_incarnation;
  }
  return now - *wait.since >= grace;
}

void dial_failed(const std::string& self_id, const std::string& peer_id, dial_wait& wait,
                 dial_clock::time_point now) {
  if (peer_id < self_id)
    wait.since = now;
}

void reset_dial_wait(dial_wait& wait) {
  wait.since.reset();
}

}  // namespace ordermesh::cluster::coordination
