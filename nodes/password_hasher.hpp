#pragma once
// Argon2id password hashing off the actor threads: hashing is deliberately slow (tens of ms),
// and a blocked scheduler worker would stall every entity. A fixed pool of threads takes jobs
// from a bounded queue; a full queue refuses new jobs (the client gets `overloaded`).
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ordermesh::node {

class password_hasher {
 public:
  enum class cost { interactive, fast };

  password_hasher(cost c, size_t threads, size_t max_queued);
  ~password_hasher();  // finishes queued jobs, then joins

  /// Hashes `password`; `done(hash)` runs on a pool thread (empty hash: hashing failed).
  bool hash(std::string password, std::function<void(std::string)> done);
  /// Verifies `password` against `hash`; `done(ok)` runs on a pool thread.
  bool verify(std::string password, std::string hash, std::function<void(bool)> done);

  /// Synchronous forms (tests, tools).
  std::string hash_now(const std::string& password) const;
  bool verify_now(const std::string& password, const std::string& hash) const;

 private:
  bool enqueue(std::function<void()> job);
  void run();

  unsigned long long opslimit_;
  size_t memlimit_;
  size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ordermesh::node
