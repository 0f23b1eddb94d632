// A replica's log (cluster/replication/follower_log.hpp) and the epoch histories it compares:
// epoch fencing, truncation at an epoch boundary, appends in order, full copies, promotion.
#include <catch2/catch.hpp>

#include "cluster/replication/follower_log.hpp"

using namespace ordermesh::cluster::replication;

namespace {

epoch_history history(std::initializer_list<epoch_start> starts) {
  epoch_history h;
  for (const auto& s : starts)
    REQUIRE(h.begin(s.epoch, s.first));
  return h;
}

/// A replica holding positions 1..end written at the epochs of `h`, synced at `synced`.
follower_log replica(epoch_history h, position end, epoch_number synced) {
  follower_state s;
  s.seen_epoch = synced;
  s.synced_epoch = synced;
  s.end = end;
  s.history = std::move(h);
  return follower_log(s);
}

}  // namespace

TEST_CASE("epoch history: epochs grow - a start at the same position replaces an empty epoch") {
  epoch_history h;
  CHECK(h.begin(1, 1));
  CHECK(h.begin(2, 5));
  CHECK_FALSE(h.begin(2, 9));  // the epoch must grow
  CHECK_FALSE(h.begin(3, 4));  // and never start before the last start
  CHECK(h.begin(3, 5));        // epoch 2 wrote nothing: replaced
  CHECK(h.starts().size() == 2);
  CHECK(h.epoch_at(0) == 0);
  CHECK(h.epoch_at(4) == 1);
  CHECK(h.epoch_at(5) == 3);
  h.truncate_after(4);
  CHECK(h.last_epoch() == 1);
}

TEST_CASE("epoch history: it keeps a bounded number of epochs") {
  epoch_history h;
  for (epoch_number e = 1; e <= max_epoch_history + 10; ++e)
    REQUIRE(h.begin(e, e * 10));
  CHECK(h.starts().size() == max_epoch_history);
  CHECK(h.known_from() == 110);
  CHECK(h.epoch_at(105) == 0);  // below what is kept: unknown
}

TEST_CASE("common prefix: where two logs' epochs first differ") {
  auto a = history({{1, 1}, {2, 6}});  // 1..5 at 1, 6.. at 2
  auto b = history({{1, 1}, {3, 8}});  // 1..7 at 1, 8.. at 3
  CHECK(common_prefix(a, 10, b, 10) == position{5});
  CHECK(common_prefix(a, 4, b, 10) == position{4});  // a is simply behind
  CHECK(common_prefix(a, 10, a, 7) == position{7});
  CHECK(common_prefix(a, 0, b, 10) == position{0});
  auto c = history({{1, 1}, {2, 6}, {4, 9}});  // b's future after a's epoch 2
  CHECK(common_prefix(a, 12, c, 12) == position{8});
  // Nothing to compare: one history starts above the other's log.
  auto late = history({{7, 50}});
  CHECK_FALSE(common_prefix(a, 10, late, 60).has_value());
}

TEST_CASE("follower: once it has seen an epoch it refuses every lower one") {
  auto f = replica(history({{3, 1}}), 4, 3);
  CHECK(f.observe_epoch(5));  // etcd shows epoch 5 (the primary of 3 was replaced)
  CHECK_FALSE(f.observe_epoch(4));
  CHECK(f.accept({3, 5, 5, 0}).outcome == append_outcome::stale_epoch);
  CHECK(f.accept({3, 5, 5, 0}).ack == 0);  // never an ack
  CHECK(f.sync({3, 9, history({{3, 1}})}).outcome == sync_outcome::stale_epoch);
  CHECK(f.state().end == 4);
  // The new primary's appends wait for its announcement: the log is not cut for 5 yet.
  CHECK(f.accept({5, 5, 5, 0}).outcome == append_outcome::unsynced);
}

TEST_CASE("follower: appends apply in order - duplicates are acked again - gaps are asked for") {
  auto f = replica(history({{2, 1}}), 3, 2);
  auto v = f.accept({2, 4, 6, 3});
  CHECK(v.outcome == append_outcome::apply);
  CHECK(v.from == 4);
  CHECK(v.to == 6);
  CHECK(v.ack == 6);
  CHECK(f.state().end == 6);
  CHECK(f.state().committed == 3);
  auto overlap = f.accept({2, 5, 8, 6});  // partly held: only 7..8 are written
  CHECK(overlap.outcome == append_outcome::apply);
  CHECK(overlap.from == 7);
  CHECK(overlap.to == 8);
  auto dup = f.accept({2, 2, 5, 6});
  CHECK(dup.outcome == append_outcome::duplicate);
  CHECK(dup.ack == 8);
  auto gap = f.accept({2, 11, 12, 6});
  CHECK(gap.outcome == append_outcome::gap);
  CHECK(gap.from == 9);
  CHECK(f.accept({2, 1, 0, 8}).outcome == append_outcome::duplicate);  // a heartbeat
  CHECK(f.state().committed == 8);
  // A commit beyond what we hold is capped at our end.
  f.accept({2, 1, 0, 20});
  CHECK(f.state().committed == 8);
}

TEST_CASE("follower: an unacknowledged tail of the old epoch is cut at the new epoch's start") {
  // The replica got 1..7 from the primary of epoch 1; the new primary (epoch 2) has only 1..5
  // of them (6 and 7 were never acknowledged) and started its epoch at 6.
  auto f = replica(history({{1, 1}}), 7, 1);
  auto v = f.sync({2, 5, history({{1, 1}, {2, 6}})});
  CHECK(v.outcome == sync_outcome::truncate);
  CHECK(v.to == 5);
  CHECK(v.cut);
  CHECK(f.state().end == 5);
  CHECK(f.state().seen_epoch == 2);
  CHECK(f.state().synced_epoch == 2);
  // Now the new primary's 6 (written at epoch 2) applies where the old 6 was.
  CHECK(f.accept({2, 6, 6, 0}).outcome == append_outcome::apply);
  CHECK(f.state().history.epoch_at(6) == 2);
  // A repeated announcement cuts nothing.
  auto again = f.sync({2, 6, history({{1, 1}, {2, 6}})});
  CHECK(again.outcome == sync_outcome::truncate);
  CHECK(again.to == 6);
  CHECK_FALSE(again.cut);
}

TEST_CASE("follower: divergent epochs at the same positions are cut too - not only a long tail") {
  // The replica was primary at epoch 2 and wrote 6..8 that nobody acknowledged; the primary
  // of epoch 3 took over from a log that went to 9 under epoch 1. Same length, other contents.
  auto f = replica(history({{1, 1}, {2, 6}}), 8, 2);
  auto v = f.sync({3, 9, history({{1, 1}, {3, 10}})});
  CHECK(v.outcome == sync_outcome::truncate);
  CHECK(v.to == 5);
  CHECK(v.cut);
  // A replica that is merely behind keeps everything.
  auto behind = replica(history({{1, 1}}), 3, 1);
  auto b = behind.sync({3, 9, history({{1, 1}, {3, 10}})});
  CHECK(b.to == 3);
  CHECK_FALSE(b.cut);
  CHECK(behind.accept({3, 6, 9, 0}).outcome == append_outcome::gap);
}

TEST_CASE("follower: histories that cannot be compared ask for a full copy") {
  auto f = replica(history({{1, 1}}), 4, 1);
  auto late = history({{7, 50}});  // the primary kept only epochs from position 50 on
  auto v = f.sync({8, 60, late});
  CHECK(v.outcome == sync_outcome::full_copy);
  CHECK(f.state().seen_epoch == 8);  // fenced all the same
  CHECK(f.accept({8, 61, 61, 0}).outcome == append_outcome::unsynced);
  CHECK(f.install_copy({8, 60, late}));
  CHECK(f.state().end == 60);
  CHECK(f.accept({8, 61, 61, 0}).outcome == append_outcome::apply);
  CHECK_FALSE(f.install_copy({7, 60, late}));  // a copy from a deposed primary
}

TEST_CASE("follower: promotion starts the new epoch at the log's end") {
  auto f = replica(history({{1, 1}, {4, 30}}), 10, 1);  // the history names epoch 4 beyond us
  CHECK(f.observe_epoch(5));
  auto p = f.promote(5);
  REQUIRE(p.outcome == promote_outcome::ok);
  CHECK(p.first_word.epoch == 5);
  CHECK(p.first_word.log_end == 10);
  CHECK(p.first_word.history.epoch_at(10) == 1);
  CHECK(p.first_word.history.epoch_at(11) == 5);
  CHECK(p.first_word.history.starts().size() == 2);  // epoch 4 was not ours to continue
  CHECK(f.promote(5).first_word.history == p.first_word.history);  // again: the same
  // Its own writes go through the same rules.
  CHECK(f.accept({5, 11, 11, 0}).outcome == append_outcome::apply);
  f.observe_epoch(6);
  CHECK(f.promote(5).outcome == promote_outcome::stale_epoch);
  CHECK(f.accept({5, 12, 12, 0}).outcome == append_outcome::stale_epoch);  // deposed locally
}
