#include <catch2/catch.hpp>

#include "cluster/replication/commit_waiters.hpp"
#include "cluster/replication/delta_ring.hpp"

using namespace ordermesh::cluster::replication;
using ordermesh::persistence::shard_delta;
using clock_type = std::chrono::steady_clock;

namespace {

shard_delta delta(position p, size_t value_bytes = 10, uint64_t epoch = 1) {
  shard_delta d;
  d.shard = 3;
  d.epoch = epoch;
  d.position = p;
  d.prev_epoch = p > 1 ? epoch : 0;
  d.records.push_back({ordermesh::persistence::replica_record::op::put, "k" + std::to_string(p),
                       std::string(value_bytes, 'v')});
  return d;
}

}  // namespace

TEST_CASE("commit waiters: a batch is answered once every shard it wrote committed it") {
  commit_waiters w;
  auto now = clock_type::now();
  w.add(1, {{3, 5}, {7, 2}}, now);
  w.add(2, {{3, 6}}, now);
  CHECK(w.committed(3, 4).empty());
  CHECK(w.committed(3, 5).empty());  // batch 1 still waits for shard 7
  CHECK(w.committed(7, 2) == std::vector<uint64_t>{1});
  CHECK(w.committed(3, 9) == std::vector<uint64_t>{2});
  CHECK(w.size() == 0);
}

TEST_CASE("commit waiters: a lost shard fails what waits on it, and old batches expire") {
  commit_waiters w;
  auto t0 = clock_type::now();
  w.add(1, {{3, 5}}, t0);
  w.add(2, {{4, 1}, {3, 6}}, t0 + std::chrono::seconds(1));
  w.add(3, {{4, 2}}, t0 + std::chrono::seconds(2));
  CHECK(w.fail_shard(3) == std::vector<uint64_t>{1, 2});
  CHECK(w.expired(t0 + std::chrono::seconds(2)).empty());
  CHECK(w.expired(t0 + std::chrono::seconds(3)) == std::vector<uint64_t>{3});
  CHECK(w.size() == 0);
}

TEST_CASE("delta ring: recent positions in order, bounded by count and by bytes") {
  delta_ring r(4, 1u << 20);
  CHECK(r.from(1, 10, 1u << 20)->empty());  // past the (empty) end: nothing to send
  for (position p = 1; p <= 6; ++p)
    r.push(delta(p));
  CHECK(r.first() == 3);
  CHECK(r.last() == 6);
  CHECK_FALSE(r.from(2, 10, 1u << 20));  // no longer held: a full copy
  auto got = r.from(4, 10, 1u << 20);
  REQUIRE(got);
  REQUIRE(got->size() == 3);
  CHECK((*got)[0].position == 4);
  CHECK((*got)[2].position == 6);
  CHECK(r.from(7, 10, 1u << 20)->empty());
  CHECK(r.from(3, 2, 1u << 20)->size() == 2);  // at most max_count

  delta_ring small(100, 3 * delta_ring::size_of(delta(10, 1000)));
  for (position p = 1; p <= 10; ++p)
    small.push(delta(p, 1000));
  CHECK(small.last() == 10);
  CHECK(small.first() == 8);  // the byte bound keeps three
  auto one_only = small.from(8, 10, 1);
  REQUIRE(one_only);
  CHECK(one_only->size() == 1);  // at least one, even over max_bytes
  delta_ring one(100, 10);
  one.push(delta(1, 5000));
  CHECK(one.last() == 1);  // the newest stays even when it alone is over the bound
}

TEST_CASE("delta ring: a position that does not follow starts the ring again") {
  delta_ring r(10, 1u << 20);
  r.push(delta(1));
  r.push(delta(2));
  r.push(delta(40));  // a full copy installed at 39
  CHECK(r.first() == 40);
  CHECK_FALSE(r.from(2, 10, 1u << 20));
  r.clear();
  CHECK(r.last() == 0);
  CHECK(r.bytes() == 0);
}
