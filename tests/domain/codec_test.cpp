// The byte codec: primitives, bounds checks, canonical forms.
#include <cstdint>
#include <limits>
#include <string>

#include <catch2/catch.hpp>

#include "domain/codec.hpp"

using namespace ordermesh::domain;
using codec::reader;
using codec::writer;

namespace {
std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) {
    s.push_back(static_cast<char>(b));
  }
  return s;
}
}  // namespace

TEST_CASE("codec: a writer starts with version and tag", "[domain][codec]") {
  writer w(7);
  CHECK(w.take() == bytes({1, 7}));
  const std::string r_in = bytes({1, 7});
  reader r(r_in);
  uint8_t tag = 0;
  REQUIRE(r.header(tag));
  CHECK(tag == 7);
  CHECK(r.done());
}

TEST_CASE("codec: header rejects other versions and short input", "[domain][codec]") {
  uint8_t tag = 0;
  for (int version : {0, 2, 255}) {
    const std::string r_in = bytes({version, 1});
    reader r(r_in);
    CHECK_FALSE(r.header(tag));
    CHECK_FALSE(r.ok());
  }
  reader empty(std::string_view{});
  CHECK_FALSE(empty.header(tag));
  const std::string only_version_in = bytes({1});
  reader only_version(only_version_in);
  CHECK_FALSE(only_version.header(tag));
}

TEST_CASE("codec: u64 varints round-trip at every width boundary", "[domain][codec]") {
  std::vector<uint64_t> values = {0, 1, 127, 128, 255, 300, 16383, 16384};
  for (int shift = 7; shift < 64; shift += 7) {
    values.push_back((uint64_t{1} << shift) - 1);
    values.push_back(uint64_t{1} << shift);
  }
  values.push_back(std::numeric_limits<uint64_t>::max());
  for (uint64_t v : values) {
    writer w(0);
    w.u64(v);
    const std::string enc = w.take();
    reader r(enc);
    uint8_t tag = 0;
    uint64_t back = 0;
    INFO("value " << v);
    REQUIRE(r.header(tag));
    REQUIRE(r.u64(back));
    CHECK(back == v);
    CHECK(r.done());
  }
  writer w(0);
  w.u64(127);
  CHECK(w.take().size() == 3);  // one byte after the header
  writer w2(0);
  w2.u64(std::numeric_limits<uint64_t>::max());
  CHECK(w2.take().size() == 12);  // ten bytes after the header
}

TEST_CASE("codec: i64 zigzag round-trips including extremes", "[domain][codec]") {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{-64}, int64_t{64},
                    int64_t{1000000000000}, int64_t{-1000000000000},
                    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    writer w(0);
    w.i64(v);
    const std::string enc = w.take();
    reader r(enc);
    uint8_t tag = 0;
    int64_t back = 7;
    INFO("value " << v);
    REQUIRE(r.header(tag));
    REQUIRE(r.i64(back));
    CHECK(back == v);
    CHECK(r.done());
  }
  writer w(0);
  w.i64(-1);
  CHECK(w.take() == bytes({1, 0, 1}));  // zigzag keeps small negatives to one byte
}

TEST_CASE("codec: malformed varints are rejected", "[domain][codec]") {
  uint64_t v = 0;
  {
    const std::string r_in = bytes({0x80});
    reader r(r_in);  // continuation without a next byte
    CHECK_FALSE(r.u64(v));
  }
  {
    const std::string r_in = bytes({0x80, 0x00});
    reader r(r_in);  // overlong zero
    CHECK_FALSE(r.u64(v));
  }
  {
    const std::string r_in = bytes({0xff, 0x80, 0x00});
    reader r(r_in);  // overlong 127
    CHECK_FALSE(r.u64(v));
  }
  {
    // 11 bytes: more than 64 bits can need.
    const std::string r_in =
        bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01});
    reader r(r_in);
    CHECK_FALSE(r.u64(v));
  }
  {
    // The 10th byte carries bit 63 only; 0x02 would be bit 64.
    const std::string r_in = bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02});
    reader r(r_in);
    CHECK_FALSE(r.u64(v));
  }
  {
    const std::string r_in = bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01});
    reader r(r_in);
    REQUIRE(r.u64(v));
    CHECK(v == std::numeric_limits<uint64_t>::max());
  }
}

TEST_CASE("codec: strings round-trip, including empty and binary", "[domain][codec]") {
  const std::string binary("a\0b\xff", 4);
  writer w(0);
  w.str("");
  w.str("hello");
  w.str(binary);
  w.str(std::string(300, 'x'));  // a two-byte length
  const std::string enc = w.take();
  reader r(enc);
  uint8_t tag = 0;
  std::string a, b, c, d;
  REQUIRE(r.header(tag));
  REQUIRE(r.str(a));
  REQUIRE(r.str(b));
  REQUIRE(r.str(c));
  REQUIRE(r.str(d));
  CHECK(a.empty());
  CHECK(b == "hello");
  CHECK(c == binary);
  CHECK(d == std::string(300, 'x'));
  CHECK(r.done());
}

TEST_CASE("codec: a string length beyond the input fails without reading", "[domain][codec]") {
  std::string s;
  {
    const std::string r_in = bytes({3, 'a', 'b'});
    reader r(r_in);
    CHECK_FALSE(r.str(s));
  }
  {
    // Length 2^63: must not try to allocate.
    const std::string r_in =
        bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 'a'});
    reader r(r_in);
    CHECK_FALSE(r.str(s));
  }
  CHECK(s.empty());
}

TEST_CASE("codec: counts are bounded by max_count and by the bytes left", "[domain][codec]") {
  size_t n = 0;
  {
    const std::string r_in = bytes({3, 0, 0, 0});
    reader r(r_in);
    REQUIRE(r.count(n));
    CHECK(n == 3);
  }
  {
    const std::string r_in = bytes({4, 0, 0, 0});
    reader r(r_in);  // four elements need at least four bytes
    CHECK_FALSE(r.count(n));
  }
  {
    writer w(0);
    w.u64(codec::max_count + 1);
    std::string enc = w.take() + std::string(codec::max_count + 1, '\0');
    reader r(enc);
    uint8_t tag = 0;
    REQUIRE(r.header(tag));
    CHECK_FALSE(r.count(n));
  }
}

TEST_CASE("codec: booleans are 0 or 1", "[domain][codec]") {
  bool v = false;
  const std::string ok_in = bytes({1, 0});
  reader ok(ok_in);
  REQUIRE(ok.boolean(v));
  CHECK(v);
  REQUIRE(ok.boolean(v));
  CHECK_FALSE(v);
  const std::string bad_in = bytes({2});
  reader bad(bad_in);
  CHECK_FALSE(bad.boolean(v));
}

TEST_CASE("codec: failure is sticky and done() sees trailing bytes", "[domain][codec]") {
  const std::string r_in = bytes({5});
  reader r(r_in);
  uint64_t v = 0;
  std::string s;
  CHECK_FALSE(r.str(s));  // length 5, nothing follows
  CHECK_FALSE(r.ok());
  CHECK_FALSE(r.u64(v));  // the byte is still there, but the reader has failed
  CHECK_FALSE(r.done());

  const std::string trailing_in = bytes({5, 6});
  reader trailing(trailing_in);
  REQUIRE(trailing.u64(v));
  CHECK(trailing.ok());
  CHECK_FALSE(trailing.done());
}

TEST_CASE("codec: snapshot tags never collide with event tags", "[domain][codec]") {
  CHECK(codec::snapshot_tag(entity_kind::user) >= 0x80);
  CHECK(codec::snapshot_tag(entity_kind::order) != codec::snapshot_tag(entity_kind::inventory));
}
