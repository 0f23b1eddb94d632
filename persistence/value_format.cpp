#include "persistence/value_format.hpp"

#include "persistence/crc32c.hpp"
#include "persistence/keys.hpp"

namespace ordermesh::persistence::value_format {

namespace {

uint32_t record_crc(std::string_view key, std::string_view payload) {
  return detail::crc32c(payload, detail::crc32c(key));
}

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(digits[u >> 4]);
    out.push_back(digits[u & 0xF]);
  }
  return out;
}

}  // namespace

std::string seal(std::string_view key, std::string_view payload) {
  const uint32_t crc = record_crc(key, payload);
  std::string out;
  out.reserve(payload.size() + trailer_bytes);
  out.append(payload);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((crc >> shift) & 0xFFu));
  }
  return out;
}

status unseal(std::string_view key, std::string_view stored, std::string_view& payload) {
  if (stored.size() < trailer_bytes) {
    return status::corruption(describe(key) + ": stored value of " + std::to_string(stored.size()) +
                              " bytes has no checksum");
  }
  const std::string_view body = stored.substr(0, stored.size() - trailer_bytes);
  uint32_t found = 0;
  for (size_t i = body.size(); i < stored.size(); ++i) {
    found = (found << 8) | static_cast<uint8_t>(stored[i]);
  }
  if (const uint32_t expected = record_crc(key, body); found != expected) {
    return status::corruption(describe(key) + ": checksum mismatch (stored " +
                              std::to_string(found) + ", computed " + std::to_string(expected) +
                              ")");
  }
  payload = body;
  return status::ok();
}

bool is_checked(std::string_view key) {
  entity_key k;
  char tag = 0;
  uint64_t seq = 0;
  return keys::parse_record(key, k, tag, seq);
}

status check(std::string_view key, std::string_view stored) {
  if (!is_checked(key)) {
    return status::ok();
  }
  std::string_view payload;
  return unseal(key, stored, payload);
}

std::string describe(std::string_view key) {
  entity_key k;
  char tag = 0;
  uint64_t seq = 0;
  if (!keys::parse_record(key, k, tag, seq)) {
    return "key " + hex(key);
  }
  return "kind " + std::to_string(k.kind) + " id " + k.id +
         (tag == 'e' ? " event " : " snapshot ") + std::to_string(seq) + " (shard " +
         std::to_string(k.shard) + ")";
}

}  // namespace ordermesh::persistence::value_format
