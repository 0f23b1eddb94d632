#include "nodes/password_limits.hpp"

namespace ordermesh::node {

password_limits::password_limits(password_limit_options opts)
    : per_address_(opts.per_address_rate, opts.per_address_burst, opts.max_tracked),
      per_user_(opts.per_user_rate, opts.per_user_burst, opts.max_tracked) {}

std::optional<std::string> password_limits::admit(const std::string& address,
                                                  const std::string& user_id,
                                                  bucket_clock::time_point now) {
  std::chrono::milliseconds wait{0};
  std::lock_guard<std::mutex> lock(mutex_);
  // The address first: a flood of distinct user ids from one address is stopped there, before
  // it can fill the per-user map.
  if (!per_address_.try_take(address, now, &wait))
    return "rate limited: too many password attempts from this address; retry in " +
           std::to_string(wait.count()) + " ms";
  if (!per_user_.try_take(user_id, now, &wait))
    return "rate limited: too many password attempts for this user id; retry in " +
           std::to_string(wait.count()) + " ms";
  return std::nullopt;
}

}  // namespace ordermesh::node
