#pragma once
// Argon2id password hashing off the actor threads: hashing is deliberately slow (tens of ms),
// and a blocked scheduler worker would stall every entity. A fixed pool of threads takes jobs
// from a fair queue keyed by client address (nodes/fair_queue.hpp): addresses are served
// round-robin, each with a bounded queue, the whole queue bounded too, so that one address
// flooding registrations delays another address's login by at most one hash per address ahead
// of it (docs/SECURITY.md, "Password work"). A full queue refuses (the client gets `overloaded`).
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nodes/fair_queue.hpp"

namespace ordermesh::node {

struct password_pool_options {
  size_t threads = 1;
  size_t max_queued = 256;             // jobs waiting, all addresses together
  size_t max_queued_per_address = 16;  // jobs waiting from one address
};

class password_hasher {
 public:
  enum class cost { interactive, fast };
  /// What became of a job: queued, or refused by which bound.
  enum class admission { queued, address_full, full };

  password_hasher(cost c, password_pool_options opts);
  ~password_hasher();  // finishes queued jobs, then joins

  /// Hashes `password`; `done(hash)` runs on a pool thread (empty hash: hashing failed).
  admission hash(const std::string& address, std::string password,
                 std::function<void(std::string)> done);
  /// Verifies `password` against `hash`; `done(ok)` runs on a pool thread. nullopt: the user
  /// does not exist; the password is then checked against a dummy hash made at start with the
  /// same cost, so that the answer costs what a wrong password costs, and `done(false)`.
  admission verify(const std::string& address, std::string password,
                   std::optional<std::string> hash, std::function<void(bool)> done);

  /// Synchronous forms (tests, tools).
  std::string hash_now(const std::string& password) const;
  /// False for a wrong password and for an unusable hash; either way after one full check.
  bool verify_now(const std::string& password, const std::string& hash) const;

 private:
  admission enqueue(const std::string& address, std::function<void()> job);
  void run();

  unsigned long long opslimit_;
  size_t memlimit_;
  std::string dummy_hash_;  // of a random password nobody knows
  std::mutex mutex_;
  std::condition_variable cv_;
  fair_queue<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ordermesh::node
