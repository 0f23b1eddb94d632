// Tests for cluster/agent/proven_peers.hpp over a real BASP hop: two actor systems in this
// process, connected on 127.0.0.1. A message from the other system counts as a proven member's
// only once its node is recorded as proven, one from this system as this node's, and an
// anonymous one from the other system (BASP delivers it with no sender) as unknown: what the
// member agent and the replica follower refuse.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "cluster/agent/proven_peers.hpp"

namespace agent = ordermesh::cluster::agent;
using namespace std::chrono_literals;

namespace {

using kind_atom = caf::atom_constant<caf::atom("t_kind")>;
using anon_atom = caf::atom_constant<caf::atom("t_anon")>;

struct probe_env {
  agent::proven_peers* proven;
  std::atomic<int>* last_anon;  // what the last anonymous message was classified as
};

/// Answers kind_atom with how it classifies the sender, and records anon_atom's.
caf::behavior probe(caf::event_based_actor* self, probe_env* env) {
  auto classify = [self, env](std::string* member) {
    return static_cast<int>(
        agent::classify_sender(self->current_sender(), self->node(), *env->proven, member));
  };
  return {
      [classify](kind_atom) {
        std::string member;
        int k = classify(&member);
        return std::make_tuple(k, member);
      },
      [classify, env](anon_atom) {
        std::string member;
        env->last_anon->store(classify(&member));
      },
  };
}

caf::actor_system_config& with_middleman(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 2);
  return cfg;
}

/// (kind, member) as `asker` sees `target` classify it.
std::pair<int, std::string> ask(caf::scoped_actor& asker, const caf::actor& target) {
  std::pair<int, std::string> out{-1, ""};
  asker->request(target, 5s, kind_atom::value)
      .receive(
          [&](int k, std::string& m) {
            out = {k, m};
          },
          [&](caf::error& err) { FAIL("no answer: " << caf::to_string(err)); });
  return out;
}

}  // namespace

TEST_CASE("senders are this node, a proven member, or unknown across a real BASP hop") {
  caf::actor_system_config cfg_here, cfg_peer;
  caf::actor_system here{with_middleman(cfg_here)};
  caf::actor_system peer{with_middleman(cfg_peer)};
  agent::proven_peers proven;
  std::atomic<int> last_anon{-1};
  probe_env env{&proven, &last_anon};
  auto target = here.spawn(probe, &env);
  auto port = here.middleman().publish(target, 0, "127.0.0.1");
  REQUIRE(port);
  auto remote = peer.middleman().remote_actor("127.0.0.1", *port);
  REQUIRE(remote);

  caf::scoped_actor local{here};
  CHECK(ask(local, target).first == static_cast<int>(agent::sender_kind::this_node));

  caf::scoped_actor from_peer{peer};
  CHECK(ask(from_peer, *remote).first == static_cast<int>(agent::sender_kind::unknown));

  proven.set(peer.node(), "n2");
  auto proven_answer = ask(from_peer, *remote);
  CHECK(proven_answer.first == static_cast<int>(agent::sender_kind::proven));
  CHECK(proven_answer.second == "n2");

  // Anonymous from the peer: no sender at all, so never "this node", even though proven.
  caf::anon_send(*remote, anon_atom::value);
  ask(from_peer, *remote);  // same connection, in order: the anonymous one was handled before
  CHECK(last_anon.load() == static_cast<int>(agent::sender_kind::unknown));

  proven.erase(peer.node());  // its connection is lost: nothing it sends is a member's any more
  CHECK(ask(from_peer, *remote).first == static_cast<int>(agent::sender_kind::unknown));
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}
