#include "nodes/admin_fingerprint.hpp"

#include <sodium.h>

#include <stdexcept>

namespace ordermesh::node {

namespace {

// The BLAKE2b key: between crypto_generichash_KEYBYTES_MIN (16) and _MAX (64) bytes.
constexpr std::string_view fingerprint_context = "ordermesh admin fingerprint v1";
static_assert(fingerprint_context.size() >= crypto_generichash_KEYBYTES_MIN &&
              fingerprint_context.size() <= crypto_generichash_KEYBYTES_MAX);

}  // namespace

std::string admin_fingerprint(std::string_view admin_token) {
  if (sodium_init() < 0)
    throw std::runtime_error("libsodium failed to initialise");
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest,
                     reinterpret_cast<const unsigned char*>(admin_token.data()), admin_token.size(),
                     reinterpret_cast<const unsigned char*>(fingerprint_context.data()),
                     fingerprint_context.size());
  char hex[sizeof digest * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

}  // namespace ordermesh::node
