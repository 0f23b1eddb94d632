#include "persistence/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ordermesh::persistence::detail {

namespace {

constexpr uint32_t reflected_polynomial = 0x82F63B78u;

/// Slice-by-8: table[k][b] is the CRC of byte b followed by k zero bytes, so eight bytes are
/// folded per step with eight lookups instead of one bit at a time.
using tables = std::array<std::array<uint32_t, 256>, 8>;

tables make_tables() {
  tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit) {
      c = (c & 1u) != 0 ? (c >> 1) ^ reflected_polynomial : c >> 1;
    }
    t[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (size_t k = 1; k < 8; ++k) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
    }
  }
  return t;
}

const tables& table() {
  static const tables t = make_tables();
  return t;
}

uint32_t portable_raw(const unsigned char* p, size_t n, uint32_t c) {
  const tables& t = table();
  while (n >= 8) {
    uint32_t lo = 0;
    uint32_t hi = 0;
    std::memcpy(&lo, p, 4);  // little-endian machines only, as every target of this project
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) {
    c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  }
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t hardware_raw(const unsigned char* p, size_t n,
                                                        uint32_t c) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t word = 0;
    std::memcpy(&word, p, 8);
    c64 = _mm_crc32_u64(c64, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c64);
  while (n-- > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
  }
  return c32;
}

bool detect_hardware() {
  return __builtin_cpu_supports("sse4.2") != 0;
}
#else
uint32_t hardware_raw(const unsigned char* p, size_t n, uint32_t c) {
  return portable_raw(p, n, c);
}

bool detect_hardware() {
  return false;
}
#endif

}  // namespace

bool crc32c_hardware() {
  static const bool has = detect_hardware();
  return has;
}

uint32_t crc32c_portable(std::string_view data, uint32_t crc) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  return ~portable_raw(p, data.size(), ~crc);
}

uint32_t crc32c(std::string_view data, uint32_t crc) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  return crc32c_hardware() ? ~hardware_raw(p, data.size(), ~crc)
                           : ~portable_raw(p, data.size(), ~crc);
}

}  // namespace ordermesh::persistence::detail
