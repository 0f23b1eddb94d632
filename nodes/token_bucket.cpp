#include "nodes/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace ordermesh::node {

token_bucket::token_bucket(double rate, double burst, bucket_clock::time_point now)
    : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

void token_bucket::refill(bucket_clock::time_point now) {
  if (now <= last_)
    return;  // a clock that stands still (or a caller's older reading) adds nothing
  std::chrono::duration<double> elapsed = now - last_;
  tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
  last_ = now;
}

bool token_bucket::try_take(bucket_clock::time_point now) {
  refill(now);
  if (tokens_ < 1.0)
    return false;
  tokens_ -= 1.0;
  return true;
}

std::chrono::milliseconds token_bucket::wait_for_one(bucket_clock::time_point now) {
  refill(now);
  if (tokens_ >= 1.0)
    return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil((1.0 - tokens_) / rate_ * 1000)));
}

bool token_bucket::full(bucket_clock::time_point now) {
  refill(now);
  return tokens_ >= burst_;
}

keyed_buckets::keyed_buckets(double rate, double burst, size_t max_keys)
    : rate_(rate), burst_(burst), max_keys_(max_keys) {}

void keyed_buckets::forget_full(bucket_clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();)
    it = it->second.full(now) ? buckets_.erase(it) : std::next(it);
}

bool keyed_buckets::try_take(const std::string& key, bucket_clock::time_point now,
                             std::chrono::milliseconds* retry_after) {
  if (rate_ <= 0)
    return true;
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    // A sweep costs O(keys) but runs only when the map is full, and frees every bucket that
    // refilled since: at most once per burst/rate seconds of a key's life.
    if (buckets_.size() >= max_keys_)
      forget_full(now);
    if (buckets_.size() >= max_keys_) {
      // Every bucket is in use: more keys than the node can track are active. Refusing keeps
      // memory bounded; the flood that fills the map is itself rate limited per address.
      *retry_after = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(1000 / rate_)));
      return false;
    }
    it = buckets_.emplace(key, token_bucket(rate_, burst_, now)).first;
  }
  if (it->second.try_take(now))
    return true;
  *retry_after = it->second.wait_for_one(now);
  return false;
}

}  // namespace ordermesh::node
