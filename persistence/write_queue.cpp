#include "persistence/write_queue.hpp"

#include <algorithm>
#include <iterator>

namespace ordermesh::persistence::detail {

write_queue::write_queue(size_t capacity) : capacity_(capacity) {}

bool write_queue::push(pending_write& w, bool bounded, status* why) {
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status refusal;
    if (!failure_.is_ok()) {
      refusal = failure_;
    } else if (closed_) {
      refusal = status::closed();
    } else if (bounded && items_.size() >= capacity_) {
      refusal = status::overloaded();
    }
    if (!refusal.is_ok()) {
      if (why != nullptr) {
        *why = std::move(refusal);
      }
      return false;
    }
    was_empty = items_.empty();
    items_.push_back(std::move(w));
  }
  // The writer only sleeps on an empty queue, so only the first entry needs to wake it.
  if (was_empty) {
    not_empty_.notify_one();
  }
  return true;
}

bool write_queue::pop_batch(size_t max, std::vector<pending_write>& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  not_empty_.wait(lock, [this] { return !items_.empty() || closed_; });
  if (items_.empty()) {
    return false;  // closed and drained
  }
  const size_t n = std::min(std::max<size_t>(max, 1), items_.size());
  auto end = items_.begin() + static_cast<std::ptrdiff_t>(n);
  std::move(items_.begin(), end, std::back_inserter(out));
  items_.erase(items_.begin(), end);
  return true;
}

void write_queue::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  not_empty_.notify_all();
}

void write_queue::fail(const status& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failure_.is_ok()) {
    failure_ = error;
  }
}

size_t write_queue::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return items_.size();
}

}  // namespace ordermesh::persistence::detail
