#include "nodes/session_tokens.hpp"

#include <sodium.h>

#include <charconv>
#include <stdexcept>
#include <system_error>

#include "domain/types.hpp"

namespace ordermesh::node {

namespace {

constexpr std::string_view key_context = "ordermesh session key v1";

std::string hex(const unsigned char* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

std::string mac_of(const std::array<unsigned char, 32>& key, std::string_view body) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(body.data()), body.size(),
                         key.data());
  return hex(mac, sizeof mac);
}

/// Milliseconds since the epoch: 1..19 decimal digits that fit int64 and are > 0. No sign, no
/// spaces, no trailing bytes (std::from_chars never throws, unlike std::stoll).
std::optional<int64_t> parse_expiry(std::string_view text) {
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0)
    return std::nullopt;
  return value;
}

}  // namespace

session_tokens::session_tokens(std::string_view admin_token) {
  if (sodium_init() < 0)
    throw std::runtime_error("libsodium failed to initialise");
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, key_.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(key_context.data()),
                            key_context.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(admin_token.data()),
                            admin_token.size());
  crypto_generichash_final(&st, key_.data(), key_.size());
}

std::string session_tokens::mint(std::string_view user_id, int64_t expires_ms) const {
  unsigned char nonce[16];
  randombytes_buf(nonce, sizeof nonce);
  std::string body = "s1~";
  body += user_id;
  body += '~';
  body += std::to_string(expires_ms);
  body += '~';
  body += hex(nonce, sizeof nonce);
  auto mac = mac_of(key_, body);
  return body + "~" + mac;
}

std::optional<std::string> session_tokens::verify(std::string_view token, int64_t now_ms) const {
  if (token.size() > 256 || token.substr(0, 3) != "s1~")
    return std::nullopt;
  auto last = token.rfind('~');
  if (last == std::string_view::npos || last < 3)
    return std::nullopt;
  auto body = token.substr(0, last);
  auto mac = token.substr(last + 1);
  auto expected = mac_of(key_, body);
  if (!secrets_equal(mac, expected))
    return std::nullopt;
  // The MAC is good, so the fields should be ours: s1~user~expires~nonce. Still parse them
  // strictly and without exceptions: a token minted by a buggy or older node, or by whoever holds
  // the admin token, must be refused, never thrown into the gateway.
  auto fields = body.substr(3);
  auto user_end = fields.find('~');
  if (user_end == std::string_view::npos)
    return std::nullopt;
  auto user = fields.substr(0, user_end);
  auto rest = fields.substr(user_end + 1);
  auto exp_end = rest.find('~');
  if (exp_end == std::string_view::npos)
    return std::nullopt;
  auto expires_text = rest.substr(0, exp_end);
  auto nonce = rest.substr(exp_end + 1);
  if (nonce.size() != 32 || nonce.find_first_not_of("0123456789abcdef") != std::string_view::npos)
    return std::nullopt;  // also catches an extra '~'
  auto expires = parse_expiry(expires_text);
  if (!expires || *expires <= now_ms || !domain::valid_id(user))
    return std::nullopt;
  return std::string(user);
}

bool secrets_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ordermesh::node
