#include "domain/codec.hpp"

namespace ordermesh::domain::codec {

void writer::u64(uint64_t v) {
  while (v >= 0x80) {
    u8(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  u8(static_cast<uint8_t>(v));
}

void writer::i64(int64_t v) {
  // Zigzag: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ... Computed on unsigned values to avoid UB.
  const auto u = static_cast<uint64_t>(v);
  u64((u << 1) ^ (v < 0 ? ~uint64_t{0} : uint64_t{0}));
}

void writer::str(std::string_view s) {
  u64(s.size());
  buf_.append(s.data(), s.size());
}

bool reader::header(uint8_t& tag) {
  uint8_t version = 0;
  if (!u8(version)) {
    return false;
  }
  if (version != format_version) {
    return fail();
  }
  return u8(tag);
}

bool reader::u8(uint8_t& v) {
  if (!ok_ || left() < 1) {
    return fail();
  }
  v = static_cast<uint8_t>(data_[pos_++]);
  return true;
}

bool reader::boolean(bool& v) {
  uint8_t b = 0;
  if (!u8(b)) {
    return false;
  }
  if (b > 1) {
    return fail();
  }
  v = b == 1;
  return true;
}

bool reader::u64(uint64_t& v) {
  uint64_t result = 0;
  for (unsigned i = 0; i < 10; ++i) {
    uint8_t b = 0;
    if (!u8(b)) {
      return false;
    }
    const uint64_t bits = b & 0x7f;
    // The 10th byte may only carry the single remaining bit (bit 63).
    if (i == 9 && (b & 0xfe) != 0) {
      return fail();
    }
    result |= bits << (7 * i);
    if ((b & 0x80) == 0) {
      // A final zero byte after other bytes adds nothing: overlong, so not what we write.
      if (i > 0 && b == 0) {
        return fail();
      }
      v = result;
      return true;
    }
  }
  return fail();  // unreachable: the 10th byte check above already failed
}

bool reader::i64(int64_t& v) {
  uint64_t u = 0;
  if (!u64(u)) {
    return false;
  }
  v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}

bool reader::str(std::string& v) {
  uint64_t n = 0;
  if (!u64(n)) {
    return false;
  }
  if (n > left()) {
    return fail();
  }
  v.assign(data_.data() + pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return true;
}

bool reader::count(size_t& n) {
  uint64_t c = 0;
  if (!u64(c)) {
    return false;
  }
  if (c > max_count || c > left()) {
    return fail();
  }
  n = static_cast<size_t>(c);
  return true;
}

}  // namespace ordermesh::domain::codec
