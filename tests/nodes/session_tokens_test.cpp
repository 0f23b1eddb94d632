// Tests for nodes/session_tokens: a token whose MAC is valid but whose fields are not what mint
// writes (malformed, overflowing or negative expiry, empty user, extra '~') is refused, and
// verify never throws. The MAC is recomputed here from the documented derivation, which also
// pins the token format: changing it would log out every session in a rolling upgrade.
#include <catch2/catch.hpp>

#include <sodium.h>

#include <array>
#include <string>
#include <string_view>

#include "nodes/session_tokens.hpp"

using ordermesh::node::session_tokens;

namespace {

constexpr std::string_view admin = "an-admin-token-of-32-characters!";
constexpr int64_t now = 1'700'000'000'000;
const std::string nonce(32, 'a');

std::string hex(const unsigned char* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

/// `body` with a valid MAC under `admin`'s session key appended.
std::string signed_token(const std::string& body) {
  REQUIRE(sodium_init() >= 0);
  const std::string_view context = "ordermesh session key v1";
  std::array<unsigned char, 32> key{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, key.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(context.data()),
                            context.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(admin.data()),
                            admin.size());
  crypto_generichash_final(&st, key.data(), key.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(body.data()), body.size(),
                         key.data());
  return body + "~" + hex(mac, sizeof mac);
}

}  // namespace

TEST_CASE("session tokens minted here verify and a signed well-formed token is accepted") {
  session_tokens tokens(admin);
  auto t = tokens.mint("alice", now + 1000);
  REQUIRE(tokens.verify(t, now) == std::optional<std::string>("alice"));
  REQUIRE_FALSE(tokens.verify(t, now + 1000).has_value());  // expired
  auto same = signed_token("s1~alice~" + std::to_string(now + 5) + "~" + nonce);
  REQUIRE(tokens.verify(same, now) == std::optional<std::string>("alice"));
  session_tokens other("another-admin-token-of-32-chars!");
  REQUIRE_FALSE(other.verify(t, now).has_value());
}

TEST_CASE("session tokens with a valid MAC and malformed fields are refused without throwing") {
  session_tokens tokens(admin);
  const std::string later = std::to_string(now + 60'000);
  const char* bodies[] = {
      "s1~alice~~",                                                     // empty expiry and nonce
      "s1~alice~",                                                      // no nonce field at all
      "s1~alice",                                                       // no expiry field
      "s1~",                                                            // nothing
      "s1~~",                                                           // empty user, no more
      "s1~alice~abc~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",                  // expiry not a number
      "s1~alice~ 99999999999999~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",      // leading space
      "s1~alice~+99999999999999~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",      // sign
      "s1~alice~99999999999999x~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",      // trailing garbage
      "s1~alice~-99999999999999~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",      // negative
      "s1~alice~-1~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",                   // negative
      "s1~alice~0~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",                    // zero
      "s1~alice~9223372036854775808~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  // int64 max + 1
      "s1~alice~99999999999999999999999~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  // overflows
      "s1~alice~1e20~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",                     // float
  };
  for (const char* body : bodies) {
    INFO("body: " << body);
    const auto t = signed_token(body);
    std::optional<std::string> user;
    REQUIRE_NOTHROW(user = tokens.verify(t, now));
    REQUIRE_FALSE(user.has_value());
  }
  const std::string structural[] = {
      "s1~~" + later + "~" + nonce,                      // empty user
      "s1~al~ice~" + later + "~" + nonce,                // extra '~' in the user
      "s1~alice~" + later + "~" + nonce + "~extra",      // extra field
      "s1~alice~" + later + "~~" + nonce,                // extra '~' before the nonce
      "s1~alice~" + later + "~" + nonce.substr(1),       // short nonce
      "s1~alice~" + later + "~" + std::string(32, 'Z'),  // nonce not lowercase hex
      "s1~al ice~" + later + "~" + nonce,                // user not an id
      "s1~alice~" + later + "~" + nonce + "~",           // trailing '~'
  };
  for (const auto& body : structural) {
    INFO("body: " << body);
    const auto t = signed_token(body);
    std::optional<std::string> user;
    REQUIRE_NOTHROW(user = tokens.verify(t, now));
    REQUIRE_FALSE(user.has_value());
  }
}

TEST_CASE("session tokens that are not tokens at all are refused without throwing") {
  session_tokens tokens(admin);
  const std::string inputs[] = {"",
                                "~",
                                "s1",
                                "s1~",
                                "s1~~~~",
                                "~~~~~~",
                                std::string(300, '~'),
                                "s1~alice~" + std::to_string(now + 1) + "~" + nonce + "~00"};
  for (const auto& in : inputs) {
    INFO("token: " << in);
    std::optional<std::string> user;
    REQUIRE_NOTHROW(user = tokens.verify(in, now));
    REQUIRE_FALSE(user.has_value());
  }
}
