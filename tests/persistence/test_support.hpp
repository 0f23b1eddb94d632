#pragma once
// Helpers shared by the persistence tests: a temp dir per test, opening, waiting for callbacks.
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "persistence/storage_engine.hpp"

namespace ordermesh::persistence::test {

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/ordermesh-persistence-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// Where the database lives (a child, so RocksDB creates it).
  std::string db_path() const { return path_ + "/db"; }

 private:
  std::string path_;
};

inline storage_options options_for(const temp_dir& dir) {
  storage_options o;
  o.path = dir.db_path();
  o.block_cache_bytes = 8u << 20;
  return o;
}

/// Cluster mode: every write must carry the shard's owned epoch.
inline storage_options checked_options(const temp_dir& dir) {
  storage_options o = options_for(dir);
  o.check_shard_epochs = true;
  return o;
}

inline write_request at_epoch(write_request r, uint64_t epoch) {
  r.shard_epoch = epoch;
  return r;
}

inline std::unique_ptr<storage_engine> open_engine(const storage_options& o) {
  status st;
  auto engine = storage_engine::open(o, &st);
  INFO(st.to_string());
  REQUIRE(engine != nullptr);
  REQUIRE(st.is_ok());
  return engine;
}

inline write_request events_request(entity_key key, uint64_t first_seq,
                                    std::vector<std::string> events) {
  write_request r;
  r.key = std::move(key);
  r.first_seq = first_seq;
  r.events = std::move(events);
  return r;
}

/// Counts callbacks; lets a test wait for a number of them. The wait is a hang guard only.
class ack_counter {
 public:
  write_callback callback() {
    return [this](const status& s) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++acks_;
      if (!s.is_ok()) {
        ++errors_;
      }
      cv_.notify_all();
    };
  }
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::minutes(2), [&] { return acks_ >= n; });
  }
  size_t acks() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return acks_;
  }
  size_t errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  size_t acks_ = 0;
  size_t errors_ = 0;
};

/// Holds the writer thread inside a callback until opened, so a test controls what queues up.
/// Opened at the latest by its destructor: a failed REQUIRE then ends the test cleanly instead
/// of leaving the writer blocked on a gate that no longer exists.
class writer_gate {
 public:
  writer_gate() = default;
  ~writer_gate() { open(); }
  writer_gate(const writer_gate&) = delete;
  writer_gate& operator=(const writer_gate&) = delete;

  write_callback blocking_callback() {
    // Shared state, not `this`: the writer may still be inside the callback when the gate dies.
    return [s = state_](const status&) {
      s->entered.set_value();
      s->opened.wait();
    };
  }
  void wait_until_writer_blocked() { entered_.wait(); }
  void open() {
    if (!is_open_) {
      is_open_ = true;
      state_->open.set_value();
    }
  }

 private:
  struct state {
    std::promise<void> entered;
    std::promise<void> open;
    std::shared_future<void> opened = open.get_future().share();
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
  std::future<void> entered_ = state_->entered.get_future();
  bool is_open_ = false;
};

/// Submits `req` and waits for its callback; returns the callback's status.
inline status write_sync(storage_engine& engine, write_request req) {
  auto done = std::make_shared<std::promise<status>>();
  auto result = done->get_future();
  status why;
  if (!engine.submit(
          std::move(req), [done](const status& s) { done->set_value(s); }, &why)) {
    return why;
  }
  return result.get();
}

/// Imports records and waits for the callback.
inline status import_sync(storage_engine& engine, uint16_t shard, shard_records records) {
  auto done = std::make_shared<std::promise<status>>();
  auto result = done->get_future();
  status why;
  if (!engine.submit_import(
          shard, std::move(records), [done](const status& s) { done->set_value(s); }, &why)) {
    return why;
  }
  return result.get();
}

}  // namespace ordermesh::persistence::test
