#include "nodes/session_tokens.hpp"

#include <sodium.h>

#include <stdexcept>

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
  // The MAC is good, so the fields are ours: s1~user~expires~nonce.
  auto user_end = body.find('~', 3);
  auto exp_end = body.find('~', user_end + 1);
  if (user_end == std::string_view::npos || exp_end == std::string_view::npos)
    return std::nullopt;
  auto user = body.substr(3, user_end - 3);
  auto expires = std::stoll(std::string(body.substr(user_end + 1, exp_end - user_end - 1)));
  if (expires <= now_ms || !domain::valid_id(user))
    return std::nullopt;
  return std::string(user);
}

bool secrets_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ordermesh::node
