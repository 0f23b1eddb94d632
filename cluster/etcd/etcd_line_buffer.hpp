#pragma once
// The framing of etcd's streaming answers (watch, lease keepalive): newline-separated JSON
// objects inside a chunked HTTP body. Pure: no I/O.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ordermesh::etcd {

/// Splits a byte stream into '\n'-terminated lines with a bound on a line's length. Chunk
/// boundaries of the HTTP body fall anywhere, so bytes are appended as they come.
class line_buffer {
 public:
  explicit line_buffer(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  /// Appends bytes. Returns false (and keeps none of them) when a line exceeds the bound;
  /// overflowed() then stays true and every later append returns false.
  bool append(std::string_view bytes);
  /// The next complete line without its '\n' (a trailing '\r' is dropped too), or nullopt when
  /// no complete line is buffered.
  std::optional<std::string> pop();
  /// True once a line exceeded the bound.
  bool overflowed() const { return overflowed_; }
  /// Bytes buffered and not yet returned by pop().
  std::size_t pending() const { return data_.size() - start_; }

 private:
  std::size_t max_line_bytes_;
  std::string data_;
  std::size_t start_ = 0;       // the first byte not returned yet
  std::size_t tail_bytes_ = 0;  // length of the unfinished last line
  bool overflowed_ = false;
};

}  // namespace ordermesh::etcd
