#include "persistence/write_queue.hpp"

#include <algorithm>
#include <iterator>

namespace ordermesh::persistence::detail {

namespace {
void move_front(std::deque<pending_write>& from, size_t max, std::vector<pending_write>& out) {
  const size_t n = std::min(std::max<size_t>(max, 1), from.size());
  auto end = from.begin() + static_cast<std::ptrdiff_t>(n);
  std::move(from.begin(), end, std::back_inserter(out));
  from.erase(from.begin(), end);
}
}  // namespace

write_queue::write_queue(size_t capacity) : capacity_(capacity) {}

bool write_queue::push(pending_write& w, bool bounded, status* why, lane to) {
  std::deque<pending_write>& items = to == lane::main ? items_ : replica_items_;
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status refusal;
    if (!failure_.is_ok()) {
      refusal = failure_;
    } else if (closed_) {
      refusal = status::closed();
    } else if (bounded && items.size() >= capacity_) {
      refusal = status::overloaded();
    }
    if (!refusal.is_ok()) {
      if (why != nullptr) {
        *why = std::move(refusal);
      }
      return false;
    }
    was_empty = items.empty();
    items.push_back(std::move(w));
  }
  // The writer sleeps only with an empty replica lane and a main lane that is empty or that it
  // does not want (too many batches held: an ack wakes it then), so only a first entry wakes it.
  if (was_empty) {
    wake_.notify_one();
  }
  return true;
}

bool write_queue::take(size_t max, bool take_main, bool holding,
                       std::vector<pending_write>& replica, std::vector<pending_write>& main) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto drained = [&] { return closed_ && items_.empty() && replica_items_.empty(); };
  wake_.wait(lock, [&] {
    return !replica_items_.empty() || (take_main && !items_.empty()) || acks_posted_ > 0 ||
           (drained() && !holding);
  });
  acks_posted_ = 0;
  if (drained() && !holding) {
    return false;  // closed, drained, and no answer to wait for
  }
  if (!replica_items_.empty()) {
    move_front(replica_items_, max, replica);
  }
  if (take_main && !items_.empty()) {
    move_front(items_, max, main);
  }
  return true;
}

bool write_queue::post_ack(ack_slot& slot, status result) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (slot.answered) {
    return false;
  }
  slot.answered = true;
  slot.result = std::move(result);
  ++acks_posted_;
  // Under the lock: the writer cannot see the answer, finish and destroy the queue before this
  // call is done with it (the sink's done also keeps the queue alive, see group_commit).
  wake_.notify_one();
  return true;
}

bool write_queue::answered(const ack_slot& slot, status* result) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (slot.answered && result != nullptr) {
    *result = slot.result;
  }
  return slot.answered;
}

void write_queue::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  wake_.notify_all();
}

void write_queue::fail(const status& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failure_.is_ok()) {
    failure_ = error;
  }
}

size_t write_queue::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return items_.size() + replica_items_.size();
}

}  // namespace ordermesh::persistence::detail
