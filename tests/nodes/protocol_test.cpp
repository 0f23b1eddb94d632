// Tests for nodes/protocol: parsing and validating request lines, rendering replies and views.
#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <utility>

#include "nodes/protocol.hpp"

using nlohmann::json;
using ordermesh::domain::errc;
namespace protocol = ordermesh::protocol;
namespace domain = ordermesh::domain;

namespace {

/// A request line for `op` with `args`, id 7.
std::string line_of(const std::string& op, const json& args) {
  return json{{"id", 7}, {"op", op}, {"args", args}}.dump();
}

protocol::parsed parse_op(const std::string& op, const json& args) {
  return protocol::parse_request(line_of(op, args));
}

/// Checks a refusal: its code, that the message names `needle`, and that the id was kept.
void require_bad(const protocol::parsed& p, const std::string& needle, const json& id = 7,
                 errc code = errc::bad_request) {
  INFO("message: " << p.error.message);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error.code == code);
  CHECK(p.id == id);
  CHECK(p.error.message.find(needle) != std::string::npos);
}

const json valid_items = json::array({{{"product_id", "p1"}, {"quantity", 2}}});

}  // namespace

TEST_CASE("op names round-trip through to_string", "[protocol]") {
  CHECK(protocol::to_string(protocol::op::user_register) == "user.register");
  CHECK(protocol::to_string(protocol::op::inventory_add) == "inventory.add");
  CHECK(protocol::to_string(protocol::op::cluster_status) == "cluster.status");
  for (auto o = static_cast<int>(protocol::op::user_register);
       o <= static_cast<int>(protocol::op::cluster_status); ++o) {
    const auto name = std::string(protocol::to_string(static_cast<protocol::op>(o)));
    json args = json::object();
    // Parsing the name must land on the same op (args may be missing: only the op matters).
    auto p = protocol::parse_request(json{{"id", 1}, {"op", name}, {"args", args}}.dump());
    if (p.ok()) {
      CHECK(static_cast<int>(p.req.operation) == o);
    } else {
      CHECK(p.error.message.find("unknown op") == std::string::npos);
    }
  }
}

TEST_CASE("every op parses its happy path", "[protocol]") {
  SECTION("user.register with and without name") {
    auto p = parse_op("user.register", {{"user_id", "alice"}, {"password", "pw"}, {"name", "Al"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::user_register);
    CHECK(p.req.id == 7);
    CHECK(p.id == 7);
    CHECK(p.req.user_id == "alice");
    CHECK(p.req.password == "pw");
    CHECK(p.req.name == "Al");

    auto q = parse_op("user.register", {{"user_id", "bob"}, {"password", "x"}});
    REQUIRE(q.ok());
    CHECK(q.req.name == "bob");  // defaults to the id

    auto e = parse_op("user.register", {{"user_id", "carl"}, {"password", "x"}, {"name", ""}});
    REQUIRE(e.ok());
    CHECK(e.req.name.empty());  // an explicit empty name is allowed and kept
  }
  SECTION("user.login") {
    auto p = parse_op("user.login", {{"user_id", "alice"}, {"password", "pw"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::user_login);
    CHECK(p.req.user_id == "alice");
    CHECK(p.req.password == "pw");
  }
  SECTION("user.get") {
    auto p = parse_op("user.get", {{"user_id", "alice"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::user_get);
    CHECK(p.req.user_id == "alice");
  }
  SECTION("user.deposit") {
    auto p = parse_op("user.deposit",
                      {{"user_id", "alice"}, {"amount_cents", 1500}, {"request_id", "r-1"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::user_deposit);
    CHECK(p.req.amount_cents == 1500);
    CHECK(p.req.request_id == "r-1");
  }
  SECTION("product.create") {
    auto p = parse_op("product.create",
                      {{"product_id", "p1"}, {"name", "Widget"}, {"price_cents", 250}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::product_create);
    CHECK(p.req.product_id == "p1");
    CHECK(p.req.name == "Widget");
    CHECK(p.req.price_cents == 250);
  }
  SECTION("product.get") {
    auto p = parse_op("product.get", {{"product_id", "p1"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::product_get);
    CHECK(p.req.product_id == "p1");
  }
  SECTION("inventory.add") {
    auto p =
        parse_op("inventory.add", {{"product_id", "p1"}, {"quantity", 10}, {"request_id", "r2"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::inventory_add);
    CHECK(p.req.quantity == 10);
    CHECK(p.req.request_id == "r2");
  }
  SECTION("inventory.get") {
    auto p = parse_op("inventory.get", {{"product_id", "p1"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::inventory_get);
    CHECK(p.req.product_id == "p1");
  }
  SECTION("order.place") {
    json items = json::array(
        {{{"product_id", "p1"}, {"quantity", 2}}, {{"product_id", "p2"}, {"quantity", 1}}});
    auto p = parse_op("order.place", {{"order_id", "o1"}, {"user_id", "alice"}, {"items", items}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::order_place);
    CHECK(p.req.order_id == "o1");
    CHECK(p.req.user_id == "alice");
    REQUIRE(p.req.items.size() == 2);
    CHECK(p.req.items[0].product_id == "p1");
    CHECK(p.req.items[0].quantity == 2);
    CHECK(p.req.items[0].unit_price_cents == 0);
    CHECK(p.req.items[1].product_id == "p2");
    CHECK(p.req.items[1].quantity == 1);
  }
  SECTION("order.pay, order.cancel, order.get") {
    for (auto [name, o] : {std::pair{"order.pay", protocol::op::order_pay},
                           std::pair{"order.cancel", protocol::op::order_cancel},
                           std::pair{"order.get", protocol::op::order_get}}) {
      auto p = parse_op(name, {{"order_id", "o-9"}});
      REQUIRE(p.ok());
      CHECK(p.req.operation == o);
      CHECK(p.req.order_id == "o-9");
    }
  }
  SECTION("order.list") {
    auto p = parse_op("order.list", {{"user_id", "alice"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::order_list);
    CHECK(p.req.user_id == "alice");
  }
  SECTION("admin.crash for every kind") {
    for (auto [kind, k] : {std::pair{"user", domain::entity_kind::user},
                           std::pair{"product", domain::entity_kind::product},
                           std::pair{"inventory", domain::entity_kind::inventory},
                           std::pair{"order", domain::entity_kind::order}}) {
      auto p = parse_op("admin.crash", {{"entity", std::string(kind) + "/x-1"}});
      REQUIRE(p.ok());
      CHECK(p.req.operation == protocol::op::admin_crash);
      CHECK(p.req.crash_kind == k);
      CHECK(p.req.crash_id == "x-1");
    }
  }
  SECTION("cluster.remove-member") {
    auto p = parse_op("cluster.remove-member", {{"node_id", "n4"}});
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::cluster_remove_member);
    CHECK(p.req.node_id == "n4");
    CHECK_FALSE(parse_op("cluster.remove-member", {}).ok());
    CHECK_FALSE(parse_op("cluster.remove-member", {{"node_id", "a b"}}).ok());
  }
  SECTION("cluster.status with args missing") {
    auto p = protocol::parse_request(R"({"id":1,"op":"cluster.status"})");
    REQUIRE(p.ok());
    CHECK(p.req.operation == protocol::op::cluster_status);
  }
}

TEST_CASE("envelope: id, op, token, args", "[protocol]") {
  SECTION("string ids and tokens are kept") {
    auto p = protocol::parse_request(
        R"({"id":"req-1","op":"user.get","token":"tok","args":{"user_id":"alice"}})");
    REQUIRE(p.ok());
    CHECK(p.req.id == "req-1");
    CHECK(p.id == "req-1");
    CHECK(p.req.token == "tok");
  }
  SECTION("token absent is empty") {
    auto p = protocol::parse_request(R"({"id":1,"op":"user.get","args":{"user_id":"alice"}})");
    REQUIRE(p.ok());
    CHECK(p.req.token.empty());
  }
  SECTION("unknown extra keys, in args and around them, are ignored") {
    auto p = protocol::parse_request(
        R"({"id":1,"op":"user.get","extra":[1,2],"args":{"user_id":"alice","color":"red"}})");
    REQUIRE(p.ok());
    CHECK(p.req.user_id == "alice");
  }
  SECTION("surrounding whitespace and a trailing CR are fine") {
    auto p = protocol::parse_request(" {\"id\":1,\"op\":\"cluster.status\"}\r");
    REQUIRE(p.ok());
  }
  SECTION("not JSON: bad_request with id null") {
    for (const char* text :
         {"", "hello", "{\"id\":1,", "{\"id\":1,\"op\":\"user.get\"}}", "\xff"}) {
      auto p = protocol::parse_request(text);
      INFO(text);
      REQUIRE_FALSE(p.ok());
      CHECK(p.error.code == errc::bad_request);
      CHECK(p.id.is_null());
    }
  }
  SECTION("invalid UTF-8 inside a string is not valid JSON") {
    auto p =
        protocol::parse_request("{\"id\":1,\"op\":\"user.get\",\"args\":{\"user_id\":\"a\xc3\"}}");
    REQUIRE_FALSE(p.ok());
    CHECK(p.error.code == errc::bad_request);
    CHECK(p.id.is_null());
  }
  SECTION("JSON that is not an object") {
    for (const char* text : {"[]", "1", "\"x\"", "null", "true"}) {
      auto p = protocol::parse_request(text);
      INFO(text);
      REQUIRE_FALSE(p.ok());
      CHECK(p.error.code == errc::bad_request);
      CHECK(p.id.is_null());
    }
  }
  SECTION("id missing or of the wrong type: id null") {
    for (const char* text :
         {R"({"op":"cluster.status"})", R"({"id":null,"op":"cluster.status"})",
          R"({"id":true,"op":"cluster.status"})", R"({"id":[1],"op":"cluster.status"})",
          R"({"id":{"a":1},"op":"cluster.status"})"}) {
      auto p = protocol::parse_request(text);
      INFO(text);
      REQUIRE_FALSE(p.ok());
      CHECK(p.error.code == errc::bad_request);
      CHECK(p.id.is_null());
      CHECK(p.error.message.find("id") != std::string::npos);
    }
  }
  SECTION("op missing, mistyped or unknown: id kept") {
    require_bad(protocol::parse_request(R"({"id":7,"args":{}})"), "missing op");
    require_bad(protocol::parse_request(R"({"id":7,"op":3})"), "op must be a string");
    require_bad(protocol::parse_request(R"({"id":7,"op":"user.delete"})"),
                "unknown op 'user.delete'");
    require_bad(protocol::parse_request(R"({"id":"s","op":""})"), "unknown op", "s");
    require_bad(protocol::parse_request(json{{"id", 7}, {"op", std::string(200, 'x')}}.dump()),
                "unknown op");
  }
  SECTION("token not a string") {
    require_bad(protocol::parse_request(R"({"id":7,"op":"cluster.status","token":5})"),
                "token must be a string");
    require_bad(protocol::parse_request(R"({"id":7,"op":"cluster.status","token":null})"),
                "token must be a string");
  }
  SECTION("args not an object") {
    for (const char* args : {"[]", "null", "\"x\"", "1"}) {
      auto p = protocol::parse_request(std::string(R"({"id":7,"op":"cluster.status","args":)") +
                                       args + "}");
      INFO(args);
      require_bad(p, "args must be a JSON object");
    }
  }
  SECTION("args missing means {} and then the first missing arg is named") {
    require_bad(protocol::parse_request(R"({"id":7,"op":"user.get"})"), "missing arg 'user_id'");
  }
  SECTION("float and negative ids are echoed as they are") {
    auto p = protocol::parse_request(R"({"id":-2.5,"op":"cluster.status"})");
    REQUIRE(p.ok());
    CHECK(p.req.id == -2.5);
  }
}

TEST_CASE("line size limit", "[protocol]") {
  const std::string head =
      R"({"id":1,"op":"user.register","args":{"user_id":"a","password":"x","pad":")";
  const std::string tail = "\"}}";
  SECTION("exactly 64 KiB parses") {
    std::string line =
        head + std::string(protocol::max_line_bytes - head.size() - tail.size(), 'a') + tail;
    REQUIRE(line.size() == protocol::max_line_bytes);
    CHECK(protocol::parse_request(line).ok());
  }
  SECTION("one byte more is too_large with id null") {
    std::string line =
        head + std::string(protocol::max_line_bytes - head.size() - tail.size() + 1, 'a') + tail;
    auto p = protocol::parse_request(line);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error.code == errc::too_large);
    CHECK(p.id.is_null());
  }
  SECTION("a huge line of garbage is too_large, not bad_request") {
    auto p = protocol::parse_request(std::string(1 << 20, '{'));
    REQUIRE_FALSE(p.ok());
    CHECK(p.error.code == errc::too_large);
  }
  SECTION("deep nesting inside the limit neither crashes nor passes") {
    const size_t depth = protocol::max_line_bytes / 2 - 100;
    std::string line = R"({"id":1,"op":"cluster.status","args":{"deep":)" +
                       std::string(depth, '[') + std::string(depth, ']') + "}}";
    REQUIRE(line.size() <= protocol::max_line_bytes);
    CHECK(protocol::parse_request(line).ok());  // unknown arg keys are ignored
  }
}

TEST_CASE("ids must match [A-Za-z0-9._-]{1,64}", "[protocol]") {
  const std::string ok64(64, 'a');
  CHECK(parse_op("user.get", {{"user_id", ok64}}).ok());
  CHECK(parse_op("user.get", {{"user_id", "A-z_0.9"}}).ok());
  require_bad(parse_op("user.get", {{"user_id", std::string(65, 'a')}}),
              "arg 'user_id' must match");
  require_bad(parse_op("user.get", {{"user_id", ""}}), "arg 'user_id' must match");
  for (const char* bad : {"a b", "a/b", "ä", "a\"b", "a\nb", "a:b", "a+b"}) {
    INFO(bad);
    require_bad(parse_op("user.get", {{"user_id", bad}}), "arg 'user_id' must match");
  }
  require_bad(parse_op("user.get", {{"user_id", 5}}), "arg 'user_id' must be a string");
  require_bad(parse_op("user.get", {{"user_id", nullptr}}), "arg 'user_id' must be a string");
  require_bad(parse_op("user.get", {{"user_id", json::array()}}), "arg 'user_id' must be a string");
  // Every id-typed arg of every op is checked.
  require_bad(parse_op("product.get", {{"product_id", "x y"}}), "'product_id'");
  require_bad(parse_op("inventory.get", {{"product_id", "x y"}}), "'product_id'");
  require_bad(parse_op("order.get", {{"order_id", "x y"}}), "'order_id'");
  require_bad(parse_op("order.pay", {{"order_id", ""}}), "'order_id'");
  require_bad(parse_op("order.cancel", {{"order_id", 1}}), "'order_id'");
  require_bad(parse_op("order.list", {{"user_id", "x y"}}), "'user_id'");
  require_bad(
      parse_op("user.deposit", {{"user_id", "a"}, {"amount_cents", 1}, {"request_id", "r r"}}),
      "'request_id'");
  require_bad(parse_op("inventory.add", {{"product_id", "p"}, {"quantity", 1}, {"request_id", ""}}),
              "'request_id'");
}

TEST_CASE("missing args are named", "[protocol]") {
  require_bad(parse_op("user.register", {{"password", "x"}}), "missing arg 'user_id'");
  require_bad(parse_op("user.register", {{"user_id", "a"}}), "missing arg 'password'");
  require_bad(parse_op("user.login", {{"user_id", "a"}}), "missing arg 'password'");
  require_bad(parse_op("user.deposit", {{"user_id", "a"}, {"request_id", "r"}}),
              "missing arg 'amount_cents'");
  require_bad(parse_op("user.deposit", {{"user_id", "a"}, {"amount_cents", 5}}),
              "missing arg 'request_id'");
  require_bad(parse_op("product.create", {{"product_id", "p"}, {"price_cents", 5}}),
              "missing arg 'name'");
  require_bad(parse_op("product.create", {{"product_id", "p"}, {"name", "n"}}),
              "missing arg 'price_cents'");
  require_bad(parse_op("inventory.add", {{"product_id", "p"}, {"request_id", "r"}}),
              "missing arg 'quantity'");
  require_bad(parse_op("order.place", {{"user_id", "a"}, {"items", valid_items}}),
              "missing arg 'order_id'");
  require_bad(parse_op("order.place", {{"order_id", "o"}, {"items", valid_items}}),
              "missing arg 'user_id'");
  require_bad(parse_op("order.place", {{"order_id", "o"}, {"user_id", "a"}}),
              "missing arg 'items'");
  require_bad(parse_op("admin.crash", json::object()), "missing arg 'entity'");
  require_bad(parse_op("order.get", json::object()), "missing arg 'order_id'");
}

TEST_CASE("integers: type and range", "[protocol]") {
  auto deposit = [](const json& amount) {
    return parse_op("user.deposit",
                    {{"user_id", "a"}, {"amount_cents", amount}, {"request_id", "r"}});
  };
  CHECK(deposit(0).ok());
  CHECK(deposit(1000000000000).ok());
  CHECK(deposit(1000000000000).req.amount_cents == 1000000000000);
  for (const json& bad :
       {json(1000000000001), json(-1), json(1.5), json(1.0), json("100"), json(true), json(nullptr),
        json::array({1}), json(std::numeric_limits<uint64_t>::max()),
        json(std::numeric_limits<int64_t>::min())}) {
    INFO(bad.dump());
    require_bad(deposit(bad), "arg 'amount_cents' must be an integer in 0..1000000000000");
  }
  SECTION("numbers too big for 64 bits and exponents are refused") {
    for (const char* text :
         {"99999999999999999999999", "-99999999999999999999999", "1e3", "1E2", "100.0", "-0.0"}) {
      INFO(text);
      auto p = protocol::parse_request(
          std::string(
              R"({"id":7,"op":"user.deposit","args":{"user_id":"a","request_id":"r","amount_cents":)") +
          text + "}}");
      require_bad(p, "'amount_cents'");
    }
  }
  SECTION("price_cents") {
    auto create = [](const json& price) {
      return parse_op("product.create",
                      {{"product_id", "p"}, {"name", "n"}, {"price_cents", price}});
    };
    CHECK(create(0).ok());
    CHECK(create(1000000000000).ok());
    require_bad(create(1000000000001), "arg 'price_cents' must be an integer");
    require_bad(create(-5), "arg 'price_cents' must be an integer");
    require_bad(create(2.5), "arg 'price_cents' must be an integer");
    require_bad(create("5"), "arg 'price_cents' must be an integer");
  }
  SECTION("quantity of inventory.add is 1..100000") {
    auto add = [](const json& quantity) {
      return parse_op("inventory.add",
                      {{"product_id", "p"}, {"quantity", quantity}, {"request_id", "r"}});
    };
    CHECK(add(1).ok());
    CHECK(add(100000).ok());
    for (const json& bad : {json(0), json(100001), json(-1), json(3.0), json("3"), json(false)}) {
      INFO(bad.dump());
      require_bad(add(bad), "arg 'quantity' must be an integer in 1..100000");
    }
  }
}

TEST_CASE("strings: type and length", "[protocol]") {
  auto reg = [](const json& password, const json& name) {
    json args = {{"user_id", "a"}, {"password", password}};
    if (!name.is_discarded()) {
      args["name"] = name;
    }
    return parse_op("user.register", args);
  };
  const json no_name = json(json::value_t::discarded);
  CHECK(reg(std::string(1024, 'p'), no_name).ok());
  require_bad(reg(std::string(1025, 'p'), no_name), "arg 'password' must be 1..1024 bytes");
  require_bad(reg("", no_name), "arg 'password' must be 1..1024 bytes");
  require_bad(reg(1234, no_name), "arg 'password' must be a string");
  CHECK(reg("pw", std::string(200, 'n')).ok());
  require_bad(reg("pw", std::string(201, 'n')), "arg 'name' must be 0..200 bytes");
  require_bad(reg("pw", nullptr), "arg 'name' must be a string");
  require_bad(reg("pw", 5), "arg 'name' must be a string");
  // Bytes, not characters: 100 two-byte characters fit, 101 do not.
  std::string umlauts;
  for (int i = 0; i < 101; ++i) {
    umlauts += "\xc3\xa4";
  }
  require_bad(reg("pw", umlauts), "arg 'name' must be 0..200 bytes");
  CHECK(reg("pw", umlauts.substr(2)).ok());

  require_bad(parse_op("user.login", {{"user_id", "a"}, {"password", ""}}), "'password'");
  require_bad(parse_op("user.login", {{"user_id", "a"}, {"password", std::string(1025, 'x')}}),
              "'password'");

  auto create = [](const json& name) {
    return parse_op("product.create", {{"product_id", "p"}, {"name", name}, {"price_cents", 1}});
  };
  CHECK(create(std::string(200, 'n')).ok());
  require_bad(create(""), "arg 'name' must be 1..200 bytes");
  require_bad(create(std::string(201, 'n')), "arg 'name' must be 1..200 bytes");
  require_bad(create(json::object()), "arg 'name' must be a string");
}

TEST_CASE("order.place items", "[protocol]") {
  auto place = [](const json& items) {
    return parse_op("order.place", {{"order_id", "o1"}, {"user_id", "a"}, {"items", items}});
  };
  auto item = [](const json& product, const json& quantity) {
    return json{{"product_id", product}, {"quantity", quantity}};
  };
  SECTION("1 and 100 items are fine, 0 and 101 are not") {
    json hundred = json::array();
    for (int i = 0; i < 100; ++i) {
      hundred.push_back(item("p" + std::to_string(i), 1));
    }
    auto p = place(hundred);
    REQUIRE(p.ok());
    CHECK(p.req.items.size() == 100);
    hundred.push_back(item("p100", 1));
    require_bad(place(hundred), "arg 'items' must be an array of 1..100");
    require_bad(place(json::array()), "arg 'items' must be an array of 1..100");
  }
  SECTION("items must be an array of objects") {
    require_bad(place(json::object()), "arg 'items'");
    require_bad(place("p1:2"), "arg 'items'");
    require_bad(place(json::array({"p1"})), "arg 'items[0]' must be an object");
    require_bad(place(json::array({item("p1", 1), 5})), "arg 'items[1]' must be an object");
  }
  SECTION("each item is validated and named by its index") {
    require_bad(place(json::array({item("p1", 1), item("bad id", 1)})),
                "arg 'items[1].product_id' must match");
    require_bad(place(json::array({item("p1", 0)})),
                "arg 'items[0].quantity' must be an integer in 1..100000");
    require_bad(place(json::array({item("p1", 100001)})), "arg 'items[0].quantity'");
    require_bad(place(json::array({item("p1", 1.5)})), "arg 'items[0].quantity'");
    require_bad(place(json::array({item("p1", -3)})), "arg 'items[0].quantity'");
    require_bad(place(json::array({item("p1", "2")})), "arg 'items[0].quantity'");
    require_bad(place(json::array({json{{"product_id", "p1"}}})),
                "missing arg 'items[0].quantity'");
    require_bad(place(json::array({json{{"quantity", 1}}})), "missing arg 'items[0].product_id'");
    require_bad(place(json::array({item(7, 1)})), "arg 'items[0].product_id' must be a string");
  }
  SECTION("extra keys in items are ignored; duplicates are left to the domain") {
    auto p = place(
        json::array({json{{"product_id", "p1"}, {"quantity", 1}, {"note", "x"}}, item("p1", 2)}));
    REQUIRE(p.ok());
    CHECK(p.req.items.size() == 2);
  }
}

TEST_CASE("admin.crash entity", "[protocol]") {
  for (const char* bad :
       {"user", "user/", "/x", "planet/x", "User/x", "user/a b", "user/x/y", ""}) {
    INFO(bad);
    require_bad(parse_op("admin.crash", {{"entity", bad}}), "arg 'entity'");
  }
  require_bad(parse_op("admin.crash", {{"entity", 4}}), "arg 'entity' must be a string");
  require_bad(parse_op("admin.crash", {{"entity", "user/" + std::string(65, 'z')}}),
              "arg 'entity' must be \"<kind>/<id>\"");
  auto p = parse_op("admin.crash", {{"entity", "inventory/" + std::string(64, 'z')}});
  REQUIRE(p.ok());
  CHECK(p.req.crash_id.size() == 64);
}

TEST_CASE("admin.backup dir", "[protocol]") {
  require_bad(parse_op("admin.backup", json::object()), "missing arg 'dir'");
  require_bad(parse_op("admin.backup", {{"dir", 7}}), "arg 'dir' must be a string");
  require_bad(parse_op("admin.backup", {{"dir", ""}}), "arg 'dir' must be 1..4096 bytes");
  require_bad(parse_op("admin.backup", {{"dir", "/" + std::string(4096, 'd')}}),
              "arg 'dir' must be 1..4096 bytes");
  // Which paths may be written is the node's rule (nodes/backup_target), not the parser's.
  auto p = parse_op("admin.backup", {{"dir", "relative/b1"}});
  REQUIRE(p.ok());
  CHECK(p.req.operation == protocol::op::admin_backup);
  CHECK(p.req.dir == "relative/b1");
}

TEST_CASE("replies render as exact JSON lines", "[protocol]") {
  CHECK(protocol::render_ok(7, {{"user_id", "alice"}}) ==
        "{\"id\":7,\"ok\":true,\"result\":{\"user_id\":\"alice\"}}\n");
  CHECK(protocol::render_ok("a\"b", json::object()) ==
        "{\"id\":\"a\\\"b\",\"ok\":true,\"result\":{}}\n");
  CHECK(protocol::render_error(nullptr, errc::bad_request, "request is not valid JSON") ==
        "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"request is "
        "not valid JSON\"}}\n");
  CHECK(protocol::render_error("x", errc::out_of_stock, "only 3 left") ==
        "{\"id\":\"x\",\"ok\":false,\"error\":{\"code\":\"out_of_stock\",\"message\":\"only 3 "
        "left\"}}\n");
  CHECK(protocol::render_error(1, errc::insufficient_funds, "") ==
        "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"insufficient_funds\",\"message\":\"\"}}\n");
  // A node cut off or shutting down: the same code, and where the client should retry.
  CHECK(protocol::render_error(2, errc::unavailable, "cut off", "r-9", true) ==
        "{\"id\":2,\"ok\":false,\"request_id\":\"r-9\",\"error\":{\"code\":\"unavailable\","
        "\"message\":\"cut off\",\"retry_elsewhere\":true}}\n");
  SECTION("every reply is one parseable line") {
    const auto line = protocol::render_error(3, errc::timeout, "line\nbreak and \"quotes\"");
    REQUIRE(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    auto j = json::parse(line);
    CHECK(j["error"]["message"] == "line\nbreak and \"quotes\"");
    CHECK(j["error"]["code"] == "timeout");
  }
  SECTION("invalid UTF-8 in a message does not throw") {
    std::string line;
    REQUIRE_NOTHROW(line = protocol::render_error(1, errc::internal, "bad \xff byte"));
    CHECK(json::accept(line));
  }
  SECTION("ids that are not number or string render as null") {
    CHECK(protocol::render_ok(json::array(), json::object()) ==
          "{\"id\":null,\"ok\":true,\"result\":{}}\n");
  }
  SECTION("a parsed failure renders with its id") {
    auto p = protocol::parse_request(R"({"id":"q1","op":"nope"})");
    CHECK(protocol::render_error(p.id, p.error.code, p.error.message) ==
          "{\"id\":\"q1\",\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"unknown "
          "op 'nope'\"}}\n");
  }
}

TEST_CASE("views render as exact JSON", "[protocol]") {
  CHECK(protocol::to_json(domain::user_view{"alice", "Alice", 1500}).dump() ==
        R"({"balance_cents":1500,"name":"Alice","user_id":"alice"})");
  CHECK(protocol::to_json(domain::product_view{"p1", "Widget", 250}).dump() ==
        R"({"name":"Widget","price_cents":250,"product_id":"p1"})");
  CHECK(protocol::to_json(domain::inventory_view{"p1", 7, 2, 1}).dump() ==
        R"({"available":7,"product_id":"p1","reserved":2,"sold":1})");

  domain::order_view reserved;
  reserved.order_id = "o1";
  reserved.user_id = "alice";
  reserved.status = static_cast<uint8_t>(domain::order_status::reserved);
  reserved.items = {{"p1", 2, 250}, {"p2", 1, 100}};
  reserved.total_cents = 600;
  reserved.created_at = 1700000000000;
  reserved.updated_at = 1700000000500;
  reserved.expires_at = 1700000900500;
  CHECK(protocol::to_json(reserved).dump() ==
        R"({"created_at":1700000000000,"expires_at":1700000900500,)"
        R"("items":[{"product_id":"p1","quantity":2,"unit_price_cents":250},)"
        R"({"product_id":"p2","quantity":1,"unit_price_cents":100}],)"
        R"("order_id":"o1","status":"RESERVED","total_cents":600,)"
        R"("updated_at":1700000000500,"user_id":"alice"})");

  domain::order_view cancelled = reserved;
  cancelled.status = static_cast<uint8_t>(domain::order_status::cancelled);
  cancelled.reason = "expired";
  cancelled.expires_at = 0;
  auto j = protocol::to_json(cancelled);
  CHECK(j["status"] == "CANCELLED");
  CHECK(j["reason"] == "expired");
  CHECK_FALSE(j.contains("expires_at"));

  domain::order_view paid = reserved;
  paid.status = static_cast<uint8_t>(domain::order_status::paid);
  paid.expires_at = 0;
  j = protocol::to_json(paid);
  CHECK(j["status"] == "PAID");
  CHECK_FALSE(j.contains("reason"));
  CHECK_FALSE(j.contains("expires_at"));

  for (auto [s, name] : {std::pair{domain::order_status::pending, "PENDING"},
                         std::pair{domain::order_status::rejected, "REJECTED"}}) {
    domain::order_view v = paid;
    v.status = static_cast<uint8_t>(s);
    CHECK(protocol::to_json(v)["status"] == name);
  }

  domain::order_list_view list;
  CHECK(protocol::to_json(list).dump() == R"({"orders":[]})");
  list.orders = {paid, cancelled};
  j = protocol::to_json(list);
  REQUIRE(j["orders"].size() == 2);
  CHECK(j["orders"][0] == protocol::to_json(paid));
  CHECK(j["orders"][1] == protocol::to_json(cancelled));

  domain::order_view empty;
  CHECK(protocol::to_json(empty)["items"] == json::array());
}

TEST_CASE("request_id: optional and validated and echoed in replies", "[protocol]") {
  SECTION("absent: empty and the node assigns one") {
    auto p = protocol::parse_request(R"({"id":1,"op":"order.get","args":{"order_id":"o1"}})");
    REQUIRE(p.ok());
    CHECK(p.req.req_id.empty());
  }
  SECTION("a valid one is kept and is not the idempotency key in args") {
    auto p = protocol::parse_request(
        R"({"id":1,"op":"user.deposit","request_id":"trace-7:a.b_c",)"
        R"("args":{"user_id":"alice","amount_cents":5,"request_id":"dep-1"}})");
    REQUIRE(p.ok());
    CHECK(p.req.req_id == "trace-7:a.b_c");
    CHECK(p.req.request_id == "dep-1");
  }
  SECTION("64 bytes pass and 65 do not") {
    const std::string at_limit(64, 'r');
    auto p = protocol::parse_request(
        json{{"id", 1}, {"op", "cluster.status"}, {"request_id", at_limit}}.dump());
    REQUIRE(p.ok());
    CHECK(p.req.req_id == at_limit);
    auto q = protocol::parse_request(
        json{{"id", 2}, {"op", "cluster.status"}, {"request_id", at_limit + "r"}}.dump());
    require_bad(q, "request_id must be", 2);
  }
  SECTION("wrong type or characters are bad_request") {
    for (const json& bad : {json(5), json(""), json("a b"), json("a\nb"), json("x\"y"),
                            json::array(), json(nullptr)}) {
      INFO("request_id " << bad.dump());
      auto p = protocol::parse_request(
          json{{"id", 3}, {"op", "cluster.status"}, {"request_id", bad}}.dump());
      require_bad(p, "request_id must be", 3);
    }
  }
  SECTION("replies carry it after ok") {
    CHECK(protocol::render_ok(7, json::object(), "r-1") ==
          "{\"id\":7,\"ok\":true,\"request_id\":\"r-1\",\"result\":{}}\n");
    CHECK(protocol::render_error(7, errc::not_found, "no", "r-2") ==
          "{\"id\":7,\"ok\":false,\"request_id\":\"r-2\",\"error\":{\"code\":\"not_found\","
          "\"message\":\"no\"}}\n");
    CHECK(json::parse(protocol::render_ok(1, json::object(), "n1-abc-1"))["request_id"] ==
          "n1-abc-1");
  }
}

TEST_CASE("order.timeline parses and renders", "[protocol]") {
  auto p = parse_op("order.timeline", {{"order_id", "o1"}});
  REQUIRE(p.ok());
  CHECK(p.req.operation == protocol::op::order_timeline);
  CHECK(p.req.order_id == "o1");
  require_bad(parse_op("order.timeline", json::object()), "missing arg 'order_id'");
  require_bad(parse_op("order.timeline", {{"order_id", "a b"}}), "order_id");

  domain::order_timeline_view v;
  v.order_id = "o1";
  v.steps = {{"reserve", "ok", 1700000000000, "n2", "t-1"}};
  CHECK(protocol::to_json(v).dump() ==
        R"({"order_id":"o1","steps":[{"at":1700000000000,"node":"n2","outcome":"ok",)"
        R"("request_id":"t-1","step":"reserve"}],"truncated":false})");
}
