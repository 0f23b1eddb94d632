#pragma once
// Token buckets for password work (docs/SECURITY.md, "Password work"): one per client address
// and one per user id. Time is passed in by the caller, never read here, so that tests drive
// the buckets with a made-up clock and no sleeps.
#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace ordermesh::node {

using bucket_clock = std::chrono::steady_clock;

/// `rate` tokens per second, at most `burst`; starts full.
class token_bucket {
 public:
  token_bucket(double rate, double burst, bucket_clock::time_point now);
  /// Takes one token if there is one (true), after adding what accrued since the last call.
  bool try_take(bucket_clock::time_point now);
  /// How long until one token is there (zero: now). Does not take it.
  std::chrono::milliseconds wait_for_one(bucket_clock::time_point now);
  /// True when the bucket is full at `now`: it is then the same as a fresh one.
  bool full(bucket_clock::time_point now);

 private:
  void refill(bucket_clock::time_point now);
  double rate_, burst_, tokens_;
  bucket_clock::time_point last_;
};

/// One bucket per key (an address, a user id), at most `max_keys` of them: keys are chosen by
/// clients, so the map must not grow without bound. A full bucket is forgotten when room is
/// needed (it equals a fresh one); when every bucket is in use the key is refused. Not
/// thread-safe: the caller holds a lock.
class keyed_buckets {
 public:
  /// rate 0: unlimited (every take succeeds, nothing is stored).
  keyed_buckets(double rate, double burst, size_t max_keys);
  /// True: a token was taken for `key`. False: *retry_after says when to come back.
  bool try_take(const std::string& key, bucket_clock::time_point now,
                std::chrono::milliseconds* retry_after);
  size_t size() const { return buckets_.size(); }

 private:
  void forget_full(bucket_clock::time_point now);
  double rate_, burst_;
  size_t max_keys_;
  std::unordered_map<std::string, token_bucket> buckets_;
};

}  // namespace ordermesh::node
