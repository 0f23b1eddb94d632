// Key layout: RocksDB's bytewise order must be (shard, kind, id, type, seq) order.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <rocksdb/comparator.h>
#include <catch2/catch.hpp>

#include "persistence/keys.hpp"

using namespace ordermesh::persistence;

namespace {
bool bytewise_less(const std::string& a, const std::string& b) {
  return rocksdb::BytewiseComparator()->Compare(a, b) < 0;
}

entity_key ek(uint16_t shard, uint8_t kind, std::string id) {
  return {shard, kind, std::move(id)};
}
}  // namespace

TEST_CASE("keys: bytewise order is shard, kind, id, type, seq", "[persistence][keys]") {
  // Listed in the order they must sort in.
  const std::vector<std::string> expected = {
      keys::event(ek(0, 1, "a"), 1),
      keys::event(ek(0, 1, "a"), 255),
      keys::event(ek(0, 1, "a"), 256),  // big-endian: 256 after 255
      keys::event(ek(0, 1, "a"), (uint64_t{1} << 40)),
      keys::snapshot(ek(0, 1, "a"), 1),  // all snapshots after all events
      keys::snapshot(ek(0, 1, "a"), UINT64_MAX - 1),
      keys::event(ek(0, 1, "a-"), 1),  // '-' (0x2D) > the 0x00 terminator of "a"
      keys::event(ek(0, 1, "ab"), 0),  // "ab" never mixes into "a"'s range
      keys::snapshot(ek(0, 1, "ab"), 7),
      keys::event(ek(0, 1, "b"), 1),
      keys::event(ek(0, 2, "a"), 1),  // kind after id
      keys::wakeup(ek(0, 1, "zz")),   // shard 0 wakeup range after shard 0 entities
      keys::wakeup(ek(0, 2, "a")),
      keys::event(ek(1, 0, "a"), 1),  // shard 1 after everything of shard 0
      keys::event(ek(255, 0, "a"), 1),
      keys::event(ek(256, 0, "a"), 1),  // big-endian shard
      keys::wakeup(ek(256, 0, "a")),
      keys::event(ek(0xFFFE, 0, "a"), 1),
      keys::meta("cluster_id"),  // meta after every shard
  };
  std::vector<std::string> shuffled = expected;
  std::mt19937 rng(42);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::sort(shuffled.begin(), shuffled.end(), bytewise_less);
  CHECK(shuffled == expected);
}

TEST_CASE("keys: prefix ids never share a range", "[persistence][keys]") {
  const entity_key a = ek(3, 1, "a");
  const entity_key ab = ek(3, 1, "ab");
  const std::string pa = keys::entity_prefix(a);
  for (uint64_t seq : {uint64_t{0}, uint64_t{1}, UINT64_MAX}) {
    CHECK(keys::event(a, seq).rfind(pa, 0) == 0);
    CHECK(keys::event(ab, seq).rfind(pa, 0) != 0);
    CHECK(keys::snapshot(ab, seq).rfind(pa, 0) != 0);
  }
  CHECK(keys::entity_prefix(a) == std::string("\x00\x03\x01"
                                              "a\x00",
                                              5));
  CHECK(keys::event(a, 0x0102) == std::string("\x00\x03\x01"
                                              "a\x00"
                                              "e\0\0\0\0\0\0\x01\x02",
                                              14));
  CHECK(keys::shard_prefix(0x0102) == std::string("\x01\x02", 2));
  CHECK(keys::wakeup_prefix(3) == std::string("\x00\x03\xF0", 3));
  CHECK(keys::meta("x") == std::string("\xFF\xFFmx", 4));
}

TEST_CASE("keys: wakeup keys round-trip and nothing else parses", "[persistence][keys]") {
  const entity_key k = ek(0x1234, 7, "order-42.x_Y");
  entity_key out;
  REQUIRE(keys::parse_wakeup(keys::wakeup(k), out));
  CHECK(out.shard == k.shard);
  CHECK(out.kind == k.kind);
  CHECK(out.id == k.id);
  CHECK(keys::wakeup(k).rfind(keys::wakeup_prefix(0x1234), 0) == 0);

  CHECK_FALSE(keys::parse_wakeup(keys::event(k, 1), out));
  CHECK_FALSE(keys::parse_wakeup(keys::snapshot(k, 1), out));
  CHECK_FALSE(keys::parse_wakeup(keys::meta("m"), out));
  CHECK_FALSE(keys::parse_wakeup(keys::wakeup_prefix(1), out));
  CHECK_FALSE(keys::parse_wakeup(std::string("\x00\x01\xF0\x01", 4), out));  // empty id
}

TEST_CASE("keys: a shard range starts at shard_prefix and ends before shard_end",
          "[persistence][keys]") {
  CHECK(keys::shard_end(0x0102) == std::string("\x01\x03", 2));
  CHECK(keys::shard_end(0x01FF) == std::string("\x02\x00", 2));  // carries into the high byte
  CHECK(keys::shard_end(0xFFFE) == keys::shard_prefix(keys::meta_shard));  // meta stays outside
  for (uint16_t shard : {uint16_t{0}, uint16_t{12}, uint16_t{0x01FF}, uint16_t{0xFFFE}}) {
    INFO("shard " << shard);
    const std::vector<std::string> inside = {keys::event(ek(shard, 0, "a"), 0),
                                             keys::snapshot(ek(shard, 0xFF, "z"), UINT64_MAX),
                                             keys::wakeup(ek(shard, 0xFF, "zzz"))};
    for (const std::string& k : inside) {
      CHECK(keys::in_shard(k, shard));
      CHECK(bytewise_less(keys::shard_prefix(shard), k));
      CHECK(bytewise_less(k, keys::shard_end(shard)));
    }
    CHECK_FALSE(keys::in_shard(keys::shard_prefix(shard), shard));  // a bare prefix is no key
    CHECK_FALSE(keys::in_shard(keys::shard_end(shard) + "x", shard));
    CHECK_FALSE(keys::in_shard(keys::meta("x"), shard));
    CHECK_FALSE(keys::in_shard("", shard));
  }
  CHECK_FALSE(keys::in_shard(keys::event(ek(13, 0, "a"), 1), 12));
  CHECK_FALSE(keys::in_shard(keys::event(ek(0x010C, 0, "a"), 1), 12));  // low byte alike
}

TEST_CASE("keys: valid entity keys", "[persistence][keys]") {
  CHECK(keys::valid(ek(0, 0, "A-z_0.9")));
  CHECK(keys::valid(ek(0xFFFE, 0xFF, "x")));
  CHECK_FALSE(keys::valid(ek(0, 0, "")));
  CHECK_FALSE(keys::valid(ek(0, 0, std::string("a\0b", 3))));
  CHECK_FALSE(keys::valid(ek(0, 0, "a/b")));
  CHECK_FALSE(keys::valid(ek(0, keys::wakeup_tag, "a")));
  CHECK_FALSE(keys::valid(ek(0xFFFF, 0, "a")));
}
