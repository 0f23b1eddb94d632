// orderctl's op catalog (client/op_catalog.hpp): lookups, per-op help, suggestions for typos.
#include <catch2/catch.hpp>

#include <set>

#include "client/op_catalog.hpp"

using namespace ordermesh::client;

TEST_CASE("every op is listed once and found by name", "[op_catalog]") {
  std::set<std::string> names;
  for (const auto& op : op_catalog()) {
    CHECK(names.insert(op.name).second);
    CHECK(find_op(op.name) == &op);
    CHECK_FALSE(op.who.empty());
  }
  CHECK(names.count("order.place") == 1);
  CHECK(names.count("cluster.leave") == 1);
  CHECK(find_op("order.plac") == nullptr);
}

TEST_CASE("an op's help names each arg and who may call it", "[op_catalog]") {
  auto text = op_help(*find_op("order.place"));
  CHECK(text.find("usage: orderctl [options] order.place --order-id") != std::string::npos);
  CHECK(text.find("--user-id") != std::string::npos);
  CHECK(text.find("--items") != std::string::npos);
  CHECK(text.find("who may call it: own token") != std::string::npos);
  auto reg = op_help(*find_op("user.register"));
  CHECK(reg.find("[--name N]") != std::string::npos);  // optional args in brackets
  CHECK(ops_summary().find("cluster.force-primary --shard --node-id") != std::string::npos);
  CHECK(ops_summary().find("admin.backup --dir") != std::string::npos);
  CHECK(op_help(*find_op("admin.backup")).find("--backup-dir") != std::string::npos);
}

TEST_CASE("a near miss gets a suggestion, a far one none", "[op_catalog]") {
  std::vector<std::string> ops;
  for (const auto& op : op_catalog())
    ops.push_back(op.name);
  CHECK(closest("ordr.place", ops) == "order.place");
  CHECK(closest("order.plcae", ops) == "order.place");
  CHECK(closest("user.deposti", ops) == "user.deposit");
  CHECK(closest("transfer", ops).empty());
  CHECK(closest("usr_id", {"user_id", "password"}) == "user_id");
  CHECK(closest("x", {"user_id"}).empty());
  CHECK(closest("tokn", {"token", "token_file"}) == "token");
}
