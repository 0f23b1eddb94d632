// Request ids (domain/request_id.hpp): which a client may choose, and the ones a node makes.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "domain/request_id.hpp"

using namespace ordermesh::domain;

TEST_CASE("request id: plain characters and 1 to 64 bytes", "[domain][request_id]") {
  CHECK(valid_request_id("a"));
  CHECK(valid_request_id("trace-1.2_3:x"));
  CHECK(valid_request_id(std::string(64, 'z')));
  CHECK_FALSE(valid_request_id(""));
  CHECK_FALSE(valid_request_id(std::string(65, 'z')));
  // What could fake or split a log line, or need quoting, is refused.
  for (const char* bad : {"a b", "a\nb", "a\"b", "a=b", "a/b", "\xc3\xa9", "a\tb", "a\x1b"})
    CHECK_FALSE(valid_request_id(bad));
}

TEST_CASE("request id: made ids name the node and its start and a counter",
          "[domain][request_id]") {
  CHECK(make_request_id("n1", 0, 0) == "n1-0-0");
  CHECK(make_request_id("n1", 36, 35) == "n1-10-z");
  const auto id = make_request_id("node-a", 1767225600000, 12345);
  CHECK(id.rfind("node-a-", 0) == 0);
  CHECK(valid_request_id(id));
}

TEST_CASE("request id: made ids stay valid for any node id and counter", "[domain][request_id]") {
  const std::string long_node(64, 'n');
  const auto id = make_request_id(long_node, INT64_MAX, UINT64_MAX);
  CHECK(valid_request_id(id));
  CHECK(id.size() <= max_request_id_length);
  CHECK(valid_request_id(make_request_id("odd node/\"name\"", -5, 1)));
}

TEST_CASE("request id: distinct across nodes and restarts and calls", "[domain][request_id]") {
  std::set<std::string> seen;
  for (const char* node : {"n1", "n2", "n10"})
    for (int64_t start : {1000, 1001})
      for (uint64_t n = 0; n < 50; ++n)
        CHECK(seen.insert(make_request_id(node, start, n)).second);
}

TEST_CASE("request id: a source never hands out the same id twice across threads",
          "[domain][request_id]") {
  request_id_source source("n1", 1700000000000);
  constexpr int threads = 4;
  constexpr int per_thread = 2000;
  std::vector<std::vector<std::string>> made(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&source, &made, t] {
      for (int i = 0; i < per_thread; ++i)
        made[t].push_back(source.next());
    });
  for (auto& w : workers)
    w.join();
  std::set<std::string> all;
  for (auto& ids : made)
    for (auto& id : ids) {
      CHECK(valid_request_id(id));
      all.insert(id);
    }
  CHECK(all.size() == static_cast<size_t>(threads * per_thread));
}
