#include "nodes/password_hasher.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace ordermesh::node {

password_hasher::password_hasher(cost c, password_pool_options opts)
    : jobs_(opts.max_queued_per_address, opts.max_queued) {
  if (sodium_init() < 0)
    throw std::runtime_error("libsodium failed to initialise");
  if (c == cost::interactive) {
    opslimit_ = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    memlimit_ = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  } else {
    // Still Argon2id, at libsodium's minimum cost: for tests and benchmarks only.
    opslimit_ = crypto_pwhash_OPSLIMIT_MIN;
    memlimit_ = crypto_pwhash_MEMLIMIT_MIN;
  }
  // Unknown users are checked against this, at the same cost as every hash this node makes.
  unsigned char secret[32];
  randombytes_buf(secret, sizeof secret);
  dummy_hash_ = hash_now(std::string(reinterpret_cast<char*>(secret), sizeof secret));
  sodium_memzero(secret, sizeof secret);
  if (dummy_hash_.empty())
    throw std::runtime_error("cannot hash a password (out of memory?)");
  for (size_t i = 0; i < std::max<size_t>(opts.threads, 1); ++i)
    threads_.emplace_back([this] { run(); });
}

password_hasher::~password_hasher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

std::string password_hasher::hash_now(const std::string& password) const {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), opslimit_, memlimit_,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    return {};
  return std::string(out);
}

bool password_hasher::verify_now(const std::string& password, const std::string& hash) const {
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) {
    // An unusable stored hash fails, but only after the work a real check costs.
    [[maybe_unused]] int never_matches =
        crypto_pwhash_str_verify(dummy_hash_.c_str(), password.data(), password.size());
    return false;
  }
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

password_hasher::admission password_hasher::hash(const std::string& address, std::string password,
                                                 std::function<void(std::string)> done) {
  return enqueue(address,
                 [this, pw = std::move(password), done = std::move(done)] { done(hash_now(pw)); });
}

password_hasher::admission password_hasher::verify(const std::string& address, std::string password,
                                                   std::optional<std::string> hash,
                                                   std::function<void(bool)> done) {
  return enqueue(
      address, [this, pw = std::move(password), h = std::move(hash), done = std::move(done)] {
        if (h) {
          done(verify_now(pw, *h));
        } else {
          verify_now(pw, dummy_hash_);  // the same work as a known user's check; never a match
          done(false);
        }
      });
}

password_hasher::admission password_hasher::enqueue(const std::string& address,
                                                    std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_)
      return admission::full;
    switch (jobs_.push(address, std::move(job))) {
      case fair_queue<std::function<void()>>::push_result::queued:
        break;
      case fair_queue<std::function<void()>>::push_result::key_full:
        return admission::address_full;
      case fair_queue<std::function<void()>>::push_result::total_full:
        return admission::full;
    }
  }
  cv_.notify_one();
  return admission::queued;
}

void password_hasher::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      auto next = jobs_.pop();
      if (!next)
        return;  // stopping and drained
      job = std::move(*next);
    }
    job();
  }
}

}  // namespace ordermesh::node
