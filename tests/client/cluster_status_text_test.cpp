// `orderctl cluster-status` (client/cluster_status_text.hpp): the shard map grouped per member and
// per replica set, and only current members listed as unreachable.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "client/cluster_status_text.hpp"

using nlohmann::json;
using ordermesh::client::cluster_status_text;
using ordermesh::client::shard_ranges;

namespace {

/// A cluster.status result of three members and 64 shards in the shape nodes/gateway.cpp sends:
/// n1 leads 0-21, n2 22-42, n3 43-63; every shard on all three; shards 60-63 lost n3 from their
/// in-sync set.
json three_node_status() {
  json members = json::array();
  for (const char* id : {"n1", "n2", "n3"}) {
    members.push_back({{"node_id", id},
                       {"state", "up"},
                       {"incarnation", 7},
                       {"client_address", std::string("127.0.0.1:740") + id[1]},
                       {"cluster_address", std::string("127.0.0.1:750") + id[1]},
                       {"shards_owned", 0}});
  }
  json shards = json::array();
  for (int s = 0; s < 64; ++s) {
    const std::string primary = s < 22 ? "n1" : s < 43 ? "n2" : "n3";
    json isr = s >= 60 ? json{"n2", "n1"} : json{"n3", "n1", "n2"};
    shards.push_back({{"shard", s},
                      {"primary", primary},
                      {"owner", primary},
                      {"epoch", s == 5 ? 9 : 2},
                      {"replicas", {"n1", "n2", "n3"}},
                      {"isr", isr},
                      {"target", s == 7 ? "n2" : ""}});
  }
  return json{{"node_id", "n1"},     {"coordination", "etcd"},
              {"cluster_id", "c-1"}, {"controller", "n2"},
              {"incarnation", 7},    {"lease_valid", true},
              {"shard_count", 64},   {"unreachable_from_here", json::array()},
              {"members", members},  {"shards", shards}};
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

size_t line_count(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("shard ranges compact runs and sort", "[cluster_status_text]") {
  CHECK(shard_ranges({}) == "(none)");
  CHECK(shard_ranges({4}) == "4");
  CHECK(shard_ranges({3, 0, 1, 2, 7, 9, 10, 10}) == "0-3,7,9-10");
  CHECK(shard_ranges({63, 62}) == "62-63");
}

TEST_CASE("the shard map is grouped per leader and per replica set", "[cluster_status_text]") {
  const std::string text = cluster_status_text(three_node_status());
  INFO(text);
  CHECK(has(text,
            "node n1 of cluster c-1 (incarnation 7, lease valid), coordinated through etcd, "
            "controller n2, 64 shards\n"));
  CHECK(has(text, "unreachable from n1: (none)\n"));
  // Per member: what it leads, as ranges.
  CHECK(has(text, "shards each member leads (highest epoch 9):\n"));
  CHECK(has(text, "  n1    22     0-21\n"));
  CHECK(has(text, "  n2    21     22-42\n"));
  CHECK(has(text, "  n3    21     43-63\n"));
  // Per replica set: the in-sync set, sorted, and a note where it is short.
  CHECK(has(text, "  n1,n2,n3  n1,n2,n3  60     0-59\n"));
  CHECK(has(text, "  n1,n2,n3  n1,n2     4      60-63   ISR smaller than the replicas\n"));
  CHECK(has(text, "moving: 7 -> n2\n"));
  // A screenful, not a line per shard.
  CHECK(line_count(text) < 25);
  CHECK_FALSE(has(text, " \n"));  // no trailing blanks
}

TEST_CASE("only current members are listed as unreachable", "[cluster_status_text]") {
  json status = three_node_status();
  status["unreachable_from_here"] = {"n3", "n9-left-long-ago"};
  const std::string text = cluster_status_text(status);
  INFO(text);
  CHECK(has(text, "unreachable from n1: n3\n"));
  CHECK_FALSE(has(text, "n9-left-long-ago"));
}

TEST_CASE("a member that leads nothing still has its row", "[cluster_status_text]") {
  json status = three_node_status();
  status["members"].push_back({{"node_id", "n4"}, {"state", "up"}, {"shards_owned", 0}});
  const std::string text = cluster_status_text(status);
  INFO(text);
  CHECK(has(text, "  n4    0      (none)\n"));
}

TEST_CASE("a node alone without replicas renders", "[cluster_status_text]") {
  json status = {
      {"node_id", "solo"},
      {"coordination", "local"},
      {"lease_valid", true},
      {"shard_count", 2},
      {"members", {{{"node_id", "solo"}, {"state", "up"}}}},
      {"shards", {{{"shard", 0}, {"owner", "solo"}}, {{"shard", 1}, {"owner", "solo"}}}}};
  const std::string text = cluster_status_text(status);
  INFO(text);
  CHECK(has(text, "alone (local coordination)"));
  CHECK(has(text, "  solo  2      0-1\n"));
  CHECK(has(text, "  -         -    2      0-1\n"));
}

TEST_CASE("odd replies do not break the rendering", "[cluster_status_text]") {
  CHECK(cluster_status_text(json::array({1, 2})) == "[1,2]\n");
  CHECK(cluster_status_text(json::object()).find("node ? of cluster ?") == 0);
  json status = three_node_status();
  status["shards"].push_back("not an object");
  status["shards"].push_back({{"shard", "x"}});
  status["members"].push_back(42);
  status["members"][0]["node_id"] = "n1\x1b[31m";
  const std::string text = cluster_status_text(status);
  CHECK_FALSE(has(text, "\x1b"));  // control characters from the reply are escaped
  CHECK(has(text, "n1\\x1b[31m"));
}

TEST_CASE("departed nodes are listed with their state and since when", "[cluster_status_text]") {
  // The shape nodes/cluster_status_json.cpp sends: absent first, then removing.
  json status = three_node_status();
  status["departed"] = {
      {{"node_id", "n4"}, {"state", "absent"}, {"since_ms", 1700000000000}, {"by", ""}},
      {{"node_id", "n5"}, {"state", "removing"}, {"since_ms", 1700000000123}, {"by", "operator"}}};
  const std::string text = cluster_status_text(status);
  INFO(text);
  CHECK(has(text, "\ndeparted (named by shards, no member):\n"));
  CHECK(has(text, "  NODE  STATE     SINCE                     BY\n"));
  CHECK(has(text, "  n4    absent    2023-11-14T22:13:20.000Z  -\n"));
  CHECK(has(text, "  n5    removing  2023-11-14T22:13:20.123Z  operator\n"));
  CHECK_FALSE(has(text, " \n"));
}

TEST_CASE("no departed section without departed nodes", "[cluster_status_text]") {
  json status = three_node_status();
  CHECK_FALSE(has(cluster_status_text(status), "departed"));
  status["departed"] = json::array();
  CHECK_FALSE(has(cluster_status_text(status), "departed"));
  // Odd entries: no object, no time; the rest still renders.
  status["departed"] = {7, {{"node_id", "n6"}, {"state", "absent"}}};
  const std::string text = cluster_status_text(status);
  INFO(text);
  CHECK(has(text, "  n6    absent  -      -\n"));
}
