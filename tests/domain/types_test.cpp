// Error codes, entity kinds, order status spellings and id validation.
#include <string>

#include <catch2/catch.hpp>

#include "domain/errors.hpp"
#include "domain/types.hpp"

using namespace ordermesh::domain;

TEST_CASE("errc spellings are the protocol's and round-trip", "[domain][types]") {
  CHECK(to_string(errc::bad_request) == "bad_request");
  CHECK(to_string(errc::out_of_stock) == "out_of_stock");
  CHECK(to_string(errc::insufficient_funds) == "insufficient_funds");
  CHECK(to_string(errc::invalid_state) == "invalid_state");
  CHECK(to_string(errc::too_large) == "too_large");
  CHECK(to_string(errc::limit_exceeded) == "limit_exceeded");
  CHECK(to_string(errc::corrupted) == "corrupted");
  for (int i = 0; i <= static_cast<int>(last_errc); ++i) {
    const auto code = static_cast<errc>(i);
    INFO("code " << i);
    CHECK_FALSE(to_string(code).empty());
    errc parsed = errc::internal;
    if (code == errc::internal) {
      parsed = errc::none;
    }
    REQUIRE(from_string(to_string(code), parsed));
    CHECK(parsed == code);
  }
  // Distinct spellings: otherwise a parse could map a code to another one.
  for (int i = 0; i <= static_cast<int>(last_errc); ++i) {
    for (int j = i + 1; j <= static_cast<int>(last_errc); ++j) {
      CHECK(to_string(static_cast<errc>(i)) != to_string(static_cast<errc>(j)));
    }
  }
  CHECK_FALSE(to_string(static_cast<errc>(200)).empty());
}

TEST_CASE("errc from_string rejects unknown text and leaves the output alone", "[domain][types]") {
  errc out = errc::conflict;
  CHECK_FALSE(from_string("", out));
  CHECK_FALSE(from_string("Bad_Request", out));
  CHECK_FALSE(from_string("out_of_stock ", out));
  CHECK(out == errc::conflict);
}

TEST_CASE("entity_kind spellings round-trip", "[domain][types]") {
  for (auto kind :
       {entity_kind::user, entity_kind::product, entity_kind::inventory, entity_kind::order}) {
    entity_kind parsed = kind == entity_kind::user ? entity_kind::order : entity_kind::user;
    REQUIRE(from_string(to_string(kind), parsed));
    CHECK(parsed == kind);
  }
  CHECK(to_string(entity_kind::inventory) == "inventory");
  entity_kind out = entity_kind::product;
  CHECK_FALSE(from_string("orders", out));
  CHECK(out == entity_kind::product);
}

TEST_CASE("order_status spellings", "[domain][types]") {
  CHECK(to_string(order_status::none) == "NONE");
  CHECK(to_string(order_status::pending) == "PENDING");
  CHECK(to_string(order_status::reserved) == "RESERVED");
  CHECK(to_string(order_status::paid) == "PAID");
  CHECK(to_string(order_status::cancelled) == "CANCELLED");
  CHECK(to_string(order_status::rejected) == "REJECTED");
}

TEST_CASE("valid_id accepts [A-Za-z0-9._-]{1,64} only", "[domain][types]") {
  CHECK(valid_id("a"));
  CHECK(valid_id("Order-1_2.x"));
  CHECK(valid_id("0123456789"));
  CHECK(valid_id("ABCXYZabcxyz.-_"));
  CHECK(valid_id(std::string(64, 'z')));
  CHECK_FALSE(valid_id(""));
  CHECK_FALSE(valid_id(std::string(65, 'z')));
  for (char c : std::string(" /:@#\t\n*+!?\\\"'`{}[]()~,;<>=$%^&|")) {
    INFO("char " << static_cast<int>(c));
    CHECK_FALSE(valid_id(std::string("ab") + c));
  }
  CHECK_FALSE(valid_id(std::string("a\0b", 3)));
  CHECK_FALSE(valid_id("caf\xc3\xa9"));  // non-ASCII letters are not in the alphabet
}

TEST_CASE("principal may act for itself or as admin", "[domain][types]") {
  CHECK(principal{"u1", false}.may_act_for("u1"));
  CHECK_FALSE(principal{"u1", false}.may_act_for("u2"));
  CHECK(principal{"", true}.may_act_for("u2"));
  CHECK_FALSE(principal{"", false}.may_act_for(""));
}
