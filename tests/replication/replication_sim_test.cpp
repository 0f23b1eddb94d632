// A randomized simulation of one replicated shard on 3 or 4 nodes, driving the pure state
// machines (follower_log, primary_log, choose_failover) the way the storage engine and the
// member agent will: client writes, appends and acks over a network that delays, reorders and
// drops, ISR changes by txn whose outcome reaches the primary late, crashes (with and without a
// wiped disk), pauses longer than the lease (zombie primaries), lease expiry and failover, and
// reads through the read barrier. Time is injected (100 ms a step). After every step it checks:
//  - every committed position is on at least min_insync disks when it commits, and, with the
//    same contents, on every ISR member that etcd lists
//    at the incarnation the member still has (so any failover finds it on the promoted node);
//  - a position once committed is never committed with other contents (nothing acknowledged
//    goes back), and the node promoted by a failover holds every committed position;
//  - one primary commits per epoch, and a deposed primary commits nothing its successor lacks;
//  - a read answers with every position committed before the read arrived.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <optional>
#include <random>

#include "cluster/replication/failover.hpp"
#include "cluster/replication/follower_log.hpp"
#include "cluster/replication/primary_log.hpp"

using namespace ordermesh::cluster::replication;
using namespace std::chrono_literals;

namespace {

constexpr size_t max_messages = 512;
constexpr position max_batch = 16;
constexpr auto lease_ttl = 3s;

struct message {
  enum class kind : uint8_t { announce, append, ack, need, refuse, copy } what = kind::ack;
  size_t from = 0, to = 0;
  epoch_number epoch = 0;
  announcement ann;                // announce, copy
  append_request req;              // append
  std::vector<epoch_number> tags;  // append: epochs of req.first..req.last; copy: whole log
  position end = 0;                // ack: durable end; need: first position needed (0: sync)
  uint64_t round = 0;
  int64_t incarnation = 0;  // ack: the sender's life
  size_t deliver_at = 0;
};

struct read_wait {
  read_ticket ticket;
  position committed_before = 0;  // what was committed (anywhere) when the read arrived
};

struct sim_node {
  std::string id;
  bool alive = true;
  size_t paused_until = 0;
  int64_t incarnation = 0;
  // Durable: the replica state and the log itself (the epoch that wrote each position).
  follower_log replica;
  std::vector<epoch_number> log;
  // Volatile.
  std::optional<primary_log> primary;
  int64_t view_version = 0;  // the shard key's version this node last read
  std::map<size_t, position> peer_end;
  std::optional<std::pair<bool, size_t>> txn_result;  // landed?, deliver at step
  std::vector<read_wait> reads;                       // at most 4
};

struct simulation {
  clock_time now{};
  size_t step = 0;
  std::mt19937 rng;
  std::vector<sim_node> nodes;
  // etcd: the shard key (with a version standing for its mod revision) and the members.
  coord::cluster_state store;
  int64_t version = 1;
  std::map<std::string, clock_time> lease_until;
  int64_t next_incarnation = 100;
  primary_config config;
  // What clients were told: committed position -> the epoch that wrote it.
  std::vector<epoch_number> committed;
  std::map<epoch_number, size_t> committer;  // epoch -> the one node that commits in it
  std::deque<message> net;
  std::vector<std::vector<epoch_number>> wiped_logs;  // the logs wiped disks held (bounded by
                                                      // the number of wipes)
  size_t writes = 0, commits = 0, failovers = 0, shrinks = 0, expands = 0, crashes = 0, wipes = 0,
         truncations = 0, reads = 0, zombie_refusals = 0;

  simulation(size_t n, uint32_t seed) : rng(seed) {
    config.min_insync = 2;
    config.max_lag_positions = 20;
    config.max_lag_time = 1000ms;
    store.config = coord::cluster_config{"sim", 1, static_cast<uint16_t>(n), 2};
    coord::shard_assignment a;
    a.epoch = 1;
    for (size_t i = 0; i < n; ++i) {
      sim_node x;
      x.id = "n" + std::to_string(i);
      x.incarnation = next_incarnation++;
      nodes.push_back(std::move(x));
      a.replicas.push_back(nodes[i].id);
      a.isr.push_back(nodes[i].id);
      a.isr_disks.push_back(nodes[i].incarnation);
      join(i);
    }
    a.primary = nodes[0].id;
    store.shards.push_back(a);
  }

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }
  coord::shard_assignment& shard() { return store.shards[0]; }

  void join(size_t i) {
    auto& x = nodes[i];
    auto& ms = store.members;
    ms.erase(std::remove_if(ms.begin(), ms.end(), [&](const auto& m) { return m.node_id == x.id; }),
             ms.end());
    ms.push_back({x.id, "", "", false, x.incarnation, x.incarnation});  // each life a new disk
    lease_until[x.id] = now + lease_ttl;
  }

  bool running(const sim_node& x) const { return x.alive && x.paused_until <= step; }

  void send(message m) {
    if (net.size() >= max_messages)
      return;  // a full queue drops, as a broken connection would
    m.deliver_at = step + pick(6);
    net.push_back(std::move(m));
  }

  // ---- the checks -----------------------------------------------------------------------

  bool holds_committed(const sim_node& x, position upto) const {
    if (x.log.size() < upto)
      return false;
    for (position p = 1; p <= upto; ++p) {
      if (x.log[p - 1] != committed[p - 1])
        return false;
    }
    return true;
  }

  void check() {
    const auto& a = store.shards[0];
    for (size_t i = 0; i < a.isr.size(); ++i) {
      for (const auto& x : nodes) {
        if (x.id != a.isr[i] || x.incarnation != a.isr_disks[i])
          continue;
        INFO("ISR member " << x.id << " at epoch " << a.epoch << " lacks a committed position");
        REQUIRE(holds_committed(x, committed.size()));
      }
    }
  }

  /// A primary's committed position may have moved: record what clients are now told.
  void note_commits(size_t i) {
    auto& x = nodes[i];
    auto c = x.primary->committed();
    auto e = x.primary->epoch();
    for (position p = committed.size() + 1; p <= c; ++p) {
      committed.push_back(x.log[p - 1]);
      ++commits;
      // A disk wiped after it acknowledged still counts: the primary cannot know of the wipe
      // before the node's new life answers (the wiped node is no failover choice meanwhile:
      // its ISR entry names its old incarnation).
      size_t disks = 0;
      for (const auto& y : nodes)
        disks += y.log.size() >= p && y.log[p - 1] == committed[p - 1];
      for (const auto& lost : wiped_logs)
        disks += lost.size() >= p && lost[p - 1] == committed[p - 1];
      INFO("position " << p << " acknowledged on " << disks << " disks");
      REQUIRE(disks >= config.min_insync);
      auto [it, fresh] = committer.emplace(e, i);
      INFO("two primaries committed at epoch " << e);
      REQUIRE(it->second == i);
      // A deposed primary may finish a commit only if its successor already holds it.
      if (shard().epoch > e) {
        for (const auto& y : nodes) {
          if (y.id == shard().primary && y.primary) {
            INFO("a deposed primary committed what its successor lacks");
            REQUIRE(holds_committed(y, p));
          }
        }
      }
    }
    for (position p = 1; p <= c && p <= committed.size(); ++p) {
      INFO("position " << p << " committed with other contents");
      REQUIRE(x.log[p - 1] == committed[p - 1]);
    }
  }

  // ---- the primary's side ----------------------------------------------------------------

  void demote(sim_node& x) {
    x.primary.reset();
    x.reads.clear();
    x.txn_result.reset();
  }

  void read_store(size_t i) {
    auto& x = nodes[i];
    const auto& a = shard();
    x.replica.observe_epoch(a.epoch);
    if (x.primary && x.primary->epoch() < a.epoch)
      demote(x);
    bool named = false;
    for (size_t k = 0; k < a.isr.size(); ++k)
      named |= a.isr[k] == x.id && a.isr_disks[k] == x.incarnation && a.primary == x.id;
    if (x.primary && version != x.view_version) {
      // Newer than the guard of any txn of ours: its outcome shows here.
      x.primary->store_changed(a.replicas, a.isr, now);
      note_commits(i);
    }
    x.view_version = version;
    if (x.primary || !named)
      return;
    auto p = x.replica.promote(a.epoch);
    if (p.outcome != promote_outcome::ok)
      return;
    INFO("the promoted node lacks a committed position");
    REQUIRE(holds_committed(x, committed.size()));
    x.primary.emplace(x.id, a.epoch, a.replicas, a.isr, x.replica.state().end,
                      x.replica.state().committed, config, now);
    x.peer_end.clear();
    note_commits(i);
  }

  size_t index_of(const std::string& id) const {
    for (size_t k = 0; k < nodes.size(); ++k) {
      if (nodes[k].id == id)
        return k;
    }
    return nodes.size();
  }

  void client_write(size_t i) {
    auto& x = nodes[i];
    if (!x.primary || x.primary->can_write(now) != write_status::ok)
      return;
    auto e = x.primary->epoch();
    auto v = x.replica.accept({e, x.log.size() + 1, x.log.size() + 1, x.primary->committed()});
    if (v.outcome != append_outcome::apply) {
      demote(x);  // this node saw a higher epoch: it leads no more
      return;
    }
    x.log.push_back(e);
    x.primary->local_durable(x.log.size(), now);
    ++writes;
    note_commits(i);
  }

  void replicate(size_t i) {
    auto& x = nodes[i];
    if (!x.primary)
      return;
    auto round = x.primary->next_round();
    for (size_t k = 0; k < nodes.size(); ++k) {
      if (k == i)
        continue;
      message m;
      m.from = i;
      m.to = k;
      m.epoch = x.primary->epoch();
      m.round = round;
      auto known = x.peer_end.find(k);
      if (known == x.peer_end.end()) {
        m.what = message::kind::announce;
        m.ann = x.replica.promote(m.epoch).first_word;
        m.ann.log_end = x.log.size();
      } else {
        m.what = message::kind::append;
        position first = known->second + 1;
        position last = std::min<position>(x.log.size(), known->second + max_batch);
        m.req = {m.epoch, first, last, x.primary->committed()};
        for (position p = first; p <= last; ++p)
          m.tags.push_back(x.log[p - 1]);
      }
      send(std::move(m));
    }
    if (auto change = x.primary->propose(now))
      write_isr(i, *change);
  }

  /// The ISR txn: guarded by the version the primary read and by its epoch; its outcome
  /// reaches the primary some steps later.
  void write_isr(size_t i, const isr_change& change) {
    auto& x = nodes[i];
    auto& a = shard();
    bool landed = version == x.view_version && a.epoch == x.primary->epoch();
    if (landed) {
      std::vector<int64_t> incs;
      for (const auto& m : change.isr) {
        int64_t inc =
            change.what == isr_change::kind::expand && m == change.member ? change.incarnation : 0;
        for (size_t k = 0; k < a.isr.size(); ++k) {
          if (a.isr[k] == m)
            inc = a.isr_disks[k];
        }
        incs.push_back(inc);
      }
      a.isr = change.isr;
      a.isr_disks = incs;
      ++version;
      (change.what == isr_change::kind::shrink ? shrinks : expands)++;
    }
    x.txn_result = {landed, step + pick(8)};
  }

  // ---- delivery --------------------------------------------------------------------------

  void reply(const message& m, message::kind what, position end, epoch_number epoch) {
    message r;
    r.what = what;
    r.from = m.to;
    r.to = m.from;
    r.epoch = epoch;
    r.end = end;
    r.round = m.round;
    r.incarnation = nodes[m.to].incarnation;
    send(std::move(r));
  }

  void deliver(const message& m) {
    auto& x = nodes[m.to];
    using k = message::kind;
    switch (m.what) {
      case k::announce: {
        if (x.primary && x.primary->epoch() < m.epoch)
          demote(x);
        auto v = x.replica.sync(m.ann);
        if (v.outcome == sync_outcome::truncate) {
          truncations += v.cut;
          x.log.resize(v.to);
          reply(m, k::ack, v.to, m.epoch);
        } else if (v.outcome == sync_outcome::full_copy) {
          reply(m, k::need, 0, m.epoch);
        } else {
          reply(m, k::refuse, 0, x.replica.state().seen_epoch);
        }
        break;
      }
      case k::copy:
        if (x.replica.install_copy(m.ann)) {
          x.log = m.tags;
          reply(m, k::ack, x.log.size(), m.epoch);
        }
        break;
      case k::append: {
        if (x.primary && x.primary->epoch() < m.epoch)
          demote(x);
        auto v = x.replica.accept(m.req);
        switch (v.outcome) {
          case append_outcome::apply:
            REQUIRE(x.log.size() + 1 == v.from);
            for (position p = v.from; p <= v.to; ++p)
              x.log.push_back(m.tags[p - m.req.first]);
            reply(m, k::ack, v.ack, m.epoch);
            break;
          case append_outcome::duplicate:
            reply(m, k::ack, v.ack, m.epoch);
            break;
          case append_outcome::gap:
            reply(m, k::need, v.from, m.epoch);
            break;
          case append_outcome::unsynced:
            reply(m, k::need, 0, m.epoch);
            break;
          case append_outcome::stale_epoch:
            ++zombie_refusals;
            reply(m, k::refuse, 0, x.replica.state().seen_epoch);
            break;
        }
        break;
      }
      case k::ack:
        if (x.primary &&
            x.primary->ack(nodes[m.from].id, m.incarnation, m.epoch, m.end, m.round, now)) {
          x.peer_end[m.from] = m.end;
          note_commits(m.to);
        }
        break;
      case k::need:
        if (!x.primary || m.epoch != x.primary->epoch())
          break;
        if (m.end == 0) {
          x.peer_end.erase(m.from);  // announce again
        } else {
          x.peer_end[m.from] = m.end - 1;
        }
        break;
      case k::refuse:
        x.replica.observe_epoch(m.epoch);
        if (x.primary && x.primary->epoch() < m.epoch)
          demote(x);
        break;
    }
  }

  void deliver_one() {
    if (net.empty())
      return;
    auto at = pick(net.size());
    if (net[at].deliver_at > step)
      return;
    auto m = std::move(net[at]);
    net.erase(net.begin() + static_cast<std::ptrdiff_t>(at));
    const auto& to = nodes[m.to];
    if (!to.alive)
      return;  // lost with the connection
    if (to.paused_until > step) {
      m.deliver_at = to.paused_until;  // waits in the socket buffer
      net.push_back(std::move(m));
      return;
    }
    deliver(m);
  }

  // ---- faults and the controller ---------------------------------------------------------

  void crash(size_t i) {
    auto& x = nodes[i];
    x.alive = false;
    demote(x);
    x.peer_end.clear();
    ++crashes;
  }

  void restart(size_t i) {
    auto& x = nodes[i];
    x.alive = true;
    x.paused_until = 0;
    x.incarnation = next_incarnation++;
    if (pick(5) == 0) {  // the disk was wiped: nothing survives, not even the seen epoch
      wiped_logs.push_back(std::move(x.log));
      x.log.clear();
      x.replica = follower_log{};
      ++wipes;
    }
    x.view_version = 0;
    join(i);
  }

  void controller() {
    auto& ms = store.members;
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const auto& m) { return lease_until[m.node_id] < now; }),
             ms.end());
    auto d = choose_failover(store, 0);
    if (d.outcome != failover_outcome::promote)
      return;
    shard() = d.next;
    ++version;
    ++failovers;
  }

  /// Clients talk to whichever node believes it leads (a zombie too), else to node `i`.
  void client(size_t i) {
    std::vector<size_t> leaders;
    for (size_t k = 0; k < nodes.size(); ++k) {
      if (running(nodes[k]) && nodes[k].primary)
        leaders.push_back(k);
    }
    if (!leaders.empty())
      i = leaders[pick(leaders.size())];
    if (pick(3) == 0) {
      begin_read(i);
      return;
    }
    for (size_t n = 1 + pick(3); n > 0; --n)
      client_write(i);
  }

  void begin_read(size_t i) {
    auto& x = nodes[i];
    if (!x.primary || x.reads.size() >= 4)
      return;
    x.reads.push_back({x.primary->begin_read(), committed.size()});
  }

  void serve_reads(size_t i) {
    auto& x = nodes[i];
    if (!x.primary)
      return;
    for (auto it = x.reads.begin(); it != x.reads.end();) {
      if (!x.primary->read_ready(it->ticket)) {
        ++it;
        continue;
      }
      INFO("a read missed a write committed before it arrived");
      REQUIRE(it->ticket.reflects >= it->committed_before);
      REQUIRE(holds_committed(x, it->committed_before));
      ++reads;
      it = x.reads.erase(it);
    }
  }

  void run(size_t steps) {
    for (step = 1; step <= steps; ++step) {
      now += 100ms;
      for (auto& x : nodes) {
        if (running(x) && store_has(x))
          lease_until[x.id] = now + lease_ttl;
      }
      for (size_t i = 0; i < nodes.size(); ++i) {
        auto& x = nodes[i];
        if (running(x) && x.txn_result && x.txn_result->second <= step) {
          if (x.primary) {
            x.primary->isr_changed(x.txn_result->first);
            if (x.txn_result->first)
              x.view_version = version;  // the txn's answer carries the new revision
            note_commits(i);
          }
          x.txn_result.reset();
        }
      }
      auto i = pick(nodes.size());
      auto& x = nodes[i];
      auto dice = pick(1000);
      if (!x.alive) {
        if (dice < 60)
          restart(i);
      } else if (!running(x)) {
        // paused: nothing happens on it
      } else if (dice < 2) {
        crash(i);
      } else if (dice < 5) {
        // Up to 20 s: often longer than the lease. Primaries most of all: the zombie case.
        auto& who = pick(2) == 0 && index_of(shard().primary) < nodes.size()
                        ? nodes[index_of(shard().primary)]
                        : x;
        if (running(who))
          who.paused_until = step + 5 + pick(200);
      } else if (dice < 60) {
        controller();
      } else if (dice < 160) {
        read_store(i);
      } else if (dice < 380) {
        client(i);
      } else if (dice < 520) {
        replicate(i);
      } else if (dice < 540 && !net.empty()) {
        net.erase(net.begin() + static_cast<std::ptrdiff_t>(pick(net.size())));  // lost
      } else {
        deliver_one();
      }
      for (size_t k = 0; k < nodes.size(); ++k) {
        // A primary woken from a pause finds its clients still there (SIGCONT on a zombie).
        if (nodes[k].alive && nodes[k].paused_until == step)
          begin_read(k);
        if (running(nodes[k]))
          serve_reads(k);
      }
      check();
    }
  }

  /// The node's member key is its current life's (a paused or dead life renews nothing).
  bool store_has(const sim_node& x) const {
    for (const auto& m : store.members) {
      if (m.node_id == x.id && m.incarnation == x.incarnation)
        return true;
    }
    return false;
  }
};

}  // namespace

TEST_CASE("replication: simulated shards keep every committed write through failures") {
  size_t writes = 0, commits = 0, failovers = 0, shrinks = 0, expands = 0, crashes = 0, wipes = 0,
         truncations = 0, reads = 0, refusals = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    INFO("seed " << seed);
    simulation sim(3 + seed % 2, seed);
    sim.run(2000);
    writes += sim.writes;
    commits += sim.commits;
    failovers += sim.failovers;
    shrinks += sim.shrinks;
    expands += sim.expands;
    crashes += sim.crashes;
    wipes += sim.wipes;
    truncations += sim.truncations;
    reads += sim.reads;
    refusals += sim.zombie_refusals;
  }
  // The runs exercised what they claim to.
  CHECK(commits > 10000);
  CHECK(failovers > 100);
  CHECK(shrinks > 100);
  CHECK(expands > 100);
  CHECK(crashes > 100);
  CHECK(wipes > 20);
  CHECK(truncations > 20);
  CHECK(reads > 1000);
  CHECK(refusals > 20);
  WARN("simulated " << writes << " writes, " << commits << " commits, " << failovers
                    << " failovers, " << shrinks << " ISR shrinks, " << expands << " expansions, "
                    << crashes << " crashes (" << wipes << " wiped), " << truncations
                    << " truncations, " << reads << " reads, " << refusals
                    << " appends refused by epoch");
}
