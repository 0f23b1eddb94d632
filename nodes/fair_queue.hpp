#pragma once
// A queue that serves its keys (client addresses) round-robin: one item of each key with work
// in turn, so that a key that queued a thousand items delays another key's next item by at most
// one of its own items, not a thousand. Bounded per key and in all. Not thread-safe: the
// password pool holds a lock around it.
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace ordermesh::node {

template <class T>
class fair_queue {
 public:
  enum class push_result { queued, key_full, total_full };

  fair_queue(size_t max_per_key, size_t max_total)
      : max_per_key_(max_per_key), max_total_(max_total) {}

  /// Appends `item` to `key`'s queue, or says which bound refused it (nothing is queued then).
  push_result push(const std::string& key, T item) {
    if (size_ >= max_total_)
      return push_result::total_full;
    auto it = queues_.find(key);
    if (it == queues_.end()) {
      it = queues_.emplace(key, std::deque<T>()).first;
      ring_.push_back(key);  // a key with new work joins the round at its end
    } else if (it->second.size() >= max_per_key_) {
      return push_result::key_full;
    }
    it->second.push_back(std::move(item));
    ++size_;
    return push_result::queued;
  }

  /// The oldest item of the key whose turn it is; that key goes to the end of the round (or
  /// leaves it, when it has nothing more). nullopt when empty.
  std::optional<T> pop() {
    if (ring_.empty())
      return std::nullopt;
    auto key = std::move(ring_.front());
    ring_.pop_front();
    auto it = queues_.find(key);
    T item = std::move(it->second.front());
    it->second.pop_front();
    --size_;
    if (it->second.empty())
      queues_.erase(it);
    else
      ring_.push_back(std::move(key));
    return item;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// Keys with at least one item queued.
  size_t keys() const { return ring_.size(); }
  size_t queued_for(const std::string& key) const {
    auto it = queues_.find(key);
    return it == queues_.end() ? 0 : it->second.size();
  }

 private:
  size_t max_per_key_, max_total_;
  size_t size_ = 0;
  std::unordered_map<std::string, std::deque<T>> queues_;  // only keys with work
  std::deque<std::string> ring_;                           // the round: each key once
};

}  // namespace ordermesh::node
