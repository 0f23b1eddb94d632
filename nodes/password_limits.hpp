#pragma once
// Who may start password work (a hash at user.register, a check at user.login) right now: a
// token bucket per client address and one per user id (docs/SECURITY.md, "Password work").
// Checked by the gateway before a job is queued, so that a refused attempt costs no hash.
// Thread-safe: every gateway actor of the node shares one.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "nodes/token_bucket.hpp"

namespace ordermesh::node {

struct password_limit_options {
  double per_user_rate = 5;  // attempts per second for one user id; 0: unlimited
  double per_user_burst = 10;
  double per_address_rate = 20;  // attempts per second from one client address; 0: unlimited
  double per_address_burst = 40;
  size_t max_tracked = 65536;  // buckets kept per kind (keys are chosen by clients)
};

class password_limits {
 public:
  explicit password_limits(password_limit_options opts);

  /// nullopt: the attempt may go ahead (a token was taken from both buckets). Otherwise the
  /// refusal's message for the client, naming the limit and when to retry.
  std::optional<std::string> admit(const std::string& address, const std::string& user_id,
                                   bucket_clock::time_point now);

 private:
  std::mutex mutex_;
  keyed_buckets per_address_, per_user_;
};

}  // namespace ordermesh::node
