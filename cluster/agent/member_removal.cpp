// The operator's removal of a dead node (orderctl cluster.remove-member): checked against this
// node's view of the store (replication::check_removal), then recorded by one txn that holds
// only while the node has no member key (the store's guard, whatever this view says). The
// controller does the rest (controller_duties.cpp): it replaces the node's replicas.
#include <chrono>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "cluster/replication/member_removal.hpp"

namespace ordermesh::cluster::agent {

caf::result<std::string, std::string> remove_member(self_ptr self, const std::string& node) {
  auto& s = self->state;
  using answer = caf::result<std::string, std::string>;
  if (!s.state)
    return answer(std::string(replication::to_string(replication::removal_refusal::not_replicated)),
                  std::string("this node has not read the cluster's state yet; ask again"));
  auto check = replication::check_removal(*s.state, node);
  if (check.refusal != replication::removal_refusal::none)
    return answer(std::string(replication::to_string(check.refusal)), check.reason);
  if (check.already)
    return answer(std::string{}, std::string("already being removed"));
  co::departure_record r;
  r.node_id = node;
  r.since_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  r.by = "operator";
  auto rp = self->make_response_promise<std::string, std::string>();
  self->request(s.driver, s.cfg.request_timeout, coord_depart_atom::value,
                co::departure_kind::removed, r)
      .then(
          [self, rp, node](bool written) mutable {
            if (!written) {
              rp.deliver(
                  std::string(replication::to_string(replication::removal_refusal::live_member)),
                  node + " joined again meanwhile: use cluster.leave on a live node");
              return;
            }
            self->state.log->warn(
                "node={} the operator removes {}: its replicas are replaced on live members",
                me(self), node);
            rp.deliver(std::string{}, std::string("removing"));
          },
          [rp](caf::error& err) mutable {
            rp.deliver(std::string("store"), "the store did not take it: " + caf::to_string(err));
          });
  return rp;
}

}  // namespace ordermesh::cluster::agent
