// libFuzzer target: session token parsing (nodes/session_tokens.cpp), the one client-supplied
// text a gateway parses outside the request parser. Two paths: the raw input as a token (a
// forged one must fail the MAC check), and a token minted over the input (the first 8 bytes an
// expiry, the rest a user id, unchecked by mint) so that the fields behind a valid MAC are fuzzed
// too. Contract (session_tokens.hpp, docs/SECURITY.md "Session tokens never throw"): verify
// never throws, refuses forged tokens, and accepts a minted one exactly when its user id is
// valid, it has not expired and it fits the 256-byte bound.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "domain/types.hpp"
#include "fuzz/fuzz_check.hpp"
#include "nodes/session_tokens.hpp"

namespace {

constexpr int64_t now_ms = 1700000000000;
constexpr size_t max_token_bytes = 256;  // session_tokens::verify's bound

void check_minted(const ordermesh::node::session_tokens& tokens, const uint8_t* data, size_t size) {
  if (size < sizeof(int64_t))
    return;
  int64_t expires_ms = 0;
  std::memcpy(&expires_ms, data, sizeof expires_ms);
  const std::string_view user(reinterpret_cast<const char*>(data) + sizeof expires_ms,
                              size - sizeof expires_ms);
  const std::string token = tokens.mint(user, expires_ms);
  const auto who = tokens.verify(token, now_ms);
  const bool should_pass =
      ordermesh::domain::valid_id(user) && expires_ms > now_ms && token.size() <= max_token_bytes;
  FUZZ_CHECK(who.has_value() == should_pass);
  if (who)
    FUZZ_CHECK(*who == user);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ordermesh::node::session_tokens tokens("fuzz-admin-token-0123456789");
  try {
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    FUZZ_CHECK(!tokens.verify(raw, now_ms).has_value());
    check_minted(tokens, data, size);
  } catch (...) {
    FUZZ_CHECK(!"session_tokens threw");
  }
  return 0;
}
