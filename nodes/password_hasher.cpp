#include "nodes/password_hasher.hpp"

#include <sodium.h>

#include <stdexcept>

namespace ordermesh::node {

password_hasher::password_hasher(cost c, size_t threads, size_t max_queued)
    : max_queued_(max_queued) {
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
  for (size_t i = 0; i < threads; ++i)
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
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES)
    return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool password_hasher::hash(std::string password, std::function<void(std::string)> done) {
  return enqueue([this, pw = std::move(password), done = std::move(done)] { done(hash_now(pw)); });
}

bool password_hasher::verify(std::string password, std::string hash,
                             std::function<void(bool)> done) {
  return enqueue([this, pw = std::move(password), h = std::move(hash), done = std::move(done)] {
    done(verify_now(pw, h));
  });
}

bool password_hasher::enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || jobs_.size() >= max_queued_)
      return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void password_hasher::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty())
        return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace ordermesh::node
