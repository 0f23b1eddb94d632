#include "cluster/etcd/etcd_line_buffer.hpp"

namespace ordermesh::etcd {

bool line_buffer::append(std::string_view bytes) {
  if (overflowed_) {
    return false;
  }
  // Any line, complete or not, may exceed the bound: count the length of the current line
  // across appends.
  std::size_t tail = tail_bytes_;
  for (const char c : bytes) {
    tail = c == '\n' ? 0 : tail + 1;
    if (tail > max_line_bytes_) {
      overflowed_ = true;
      return false;
    }
  }
  tail_bytes_ = tail;
  // Drop returned lines before growing, so the buffer holds little more than unreturned bytes.
  if (start_ > 0 && start_ >= data_.size() / 2) {
    data_.erase(0, start_);
    start_ = 0;
  }
  data_.append(bytes.data(), bytes.size());
  return true;
}

std::optional<std::string> line_buffer::pop() {
  const auto nl = data_.find('\n', start_);
  if (nl == std::string::npos) {
    return std::nullopt;
  }
  std::size_t end = nl;
  if (end > start_ && data_[end - 1] == '\r') {
    --end;
  }
  std::string line = data_.substr(start_, end - start_);
  start_ = nl + 1;
  if (start_ == data_.size()) {
    data_.clear();
    start_ = 0;
  }
  return line;
}

}  // namespace ordermesh::etcd
