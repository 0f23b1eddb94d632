#pragma once
// Internal: fixed-width big-endian integers, so that RocksDB's bytewise key order is numeric order.
#include <cstdint>
#include <string>
#include <string_view>

namespace ordermesh::persistence::detail {

inline void put_u16be(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

inline void put_u64be(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
}

/// Reads 2 bytes; the caller checks the length.
inline uint16_t get_u16be(std::string_view in) {
  return static_cast<uint16_t>((static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]));
}

/// Reads 8 bytes; the caller checks the length.
inline uint64_t get_u64be(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  }
  return v;
}

/// Two's complement as u64: due times are stored as i64 big-endian (8 bytes).
inline std::string encode_i64(int64_t v) {
  std::string out;
  out.reserve(8);
  put_u64be(out, static_cast<uint64_t>(v));
  return out;
}

inline int64_t decode_i64(std::string_view in) {
  return static_cast<int64_t>(get_u64be(in));
}

}  // namespace ordermesh::persistence::detail
