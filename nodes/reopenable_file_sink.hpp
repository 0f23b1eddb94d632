#pragma once
// A file sink that can reopen its path: logrotate moves the file away, sends SIGHUP, and the
// next lines go to a new file at the same path (spdlog's basic_file_sink has no reopen in 1.10).
#include <mutex>
#include <string>

#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>

namespace ordermesh::node {

class reopenable_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /// Opens (appends to) `path`; throws spdlog::spdlog_ex when it cannot.
  explicit reopenable_file_sink(const std::string& path) { file_.open(path, false); }

  /// Closes the file and opens `path` again, creating it if it was moved away.
  void reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    file_.reopen(false);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_.write(formatted);
  }
  void flush_() override { file_.flush(); }

 private:
  spdlog::details::file_helper file_;
};

}  // namespace ordermesh::node
