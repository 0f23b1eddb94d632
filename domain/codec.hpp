#pragma once
// Byte writer and reader for the storage encoding of events and snapshots.
//
// Layout of every record: [format version][tag][fields...]. Fields are u8, unsigned LEB128
// varints (u64), zigzag varints (i64) and varint-length-prefixed byte strings. The reader is
// defensive: it never reads past the end, never allocates more than the input could hold, and
// once a read fails every later read fails too, so callers can check once at the end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/types.hpp"

namespace ordermesh::domain::codec {

/// The only format version written and accepted. Bump it (and keep reading the old one) when a
/// field layout changes.
constexpr uint8_t format_version = 1;

/// Upper bound for any container count; well above any real state, far below what would make a
/// reader allocate absurd amounts of memory.
constexpr uint64_t max_count = 10000000;

/// The tag of a snapshot record of `kind`: high bit set so it never equals an event tag.
constexpr uint8_t snapshot_tag(entity_kind kind) {
  return static_cast<uint8_t>(0x80u | static_cast<uint8_t>(kind));
}

/// Appends encoded values to a byte string.
class writer {
 public:
  /// Starts a record: the format version, then `tag`.
  explicit writer(uint8_t tag) {
    u8(format_version);
    u8(tag);
  }

  /// One raw byte.
  void u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  /// A bool as one byte, 0 or 1.
  void boolean(bool v) { u8(v ? 1 : 0); }
  /// Unsigned LEB128: 7 bits per byte, high bit means "more follows"; at most 10 bytes.
  void u64(uint64_t v);
  /// Zigzag-mapped so small negative numbers stay short, then LEB128.
  void i64(int64_t v);
  /// Length (u64) then the bytes.
  void str(std::string_view s);

  /// The encoded record.
  std::string take() { return std::move(buf_); }

 private:
  std::string buf_;
};

/// Reads values back, with bounds checks. Failure is sticky.
class reader {
 public:
  explicit reader(std::string_view bytes) : data_(bytes) {}
  /// The reader only views its input: a temporary string would dangle.
  explicit reader(std::string&&) = delete;

  /// Reads and checks the format version, then reads the tag. False on an unknown version.
  bool header(uint8_t& tag);

  bool u8(uint8_t& v);
  /// Only 0 and 1 are valid.
  bool boolean(bool& v);
  /// Rejects overlong (non-canonical) encodings and values above 64 bits.
  bool u64(uint64_t& v);
  bool i64(int64_t& v);
  /// Rejects a length beyond the remaining input before allocating anything.
  bool str(std::string& v);
  /// A container count: at most `max_count` and at most the bytes left (every element takes at
  /// least one byte), so a lying count cannot trigger a huge allocation.
  bool count(size_t& n);

  /// Marks the input malformed (e.g. a field value out of its domain).
  bool fail() {
    ok_ = false;
    return false;
  }
  /// True when every read succeeded.
  bool ok() const { return ok_; }
  /// True when every read succeeded and the whole input was consumed (no trailing bytes).
  bool done() const { return ok_ && pos_ == data_.size(); }

 private:
  size_t left() const { return data_.size() - pos_; }

  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace ordermesh::domain::codec
