#pragma once
// Session tokens: "s1~<user_id>~<expires_ms>~<nonce>~<mac>" where nonce is 16 random bytes and
// mac is HMAC-SHA-256 over the rest, keyed by a key derived from the admin token. Any node of
// the cluster (they share the admin token) verifies a token without asking anyone, and nothing
// about sessions has to be stored or replicated. '~' never occurs in ids, so splitting is exact.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ordermesh::node {

class session_tokens {
 public:
  /// Derives the signing key from the admin token (libsodium generichash, domain-separated).
  explicit session_tokens(std::string_view admin_token);

  /// A new token for `user_id` that expires at `expires_ms` (ms since the Unix epoch).
  std::string mint(std::string_view user_id, int64_t expires_ms) const;

  /// The user id of a valid, unexpired token; nullopt otherwise (constant-time MAC check).
  std::optional<std::string> verify(std::string_view token, int64_t now_ms) const;

 private:
  std::array<unsigned char, 32> key_{};
};

/// Constant-time comparison of secrets.
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace ordermesh::node
