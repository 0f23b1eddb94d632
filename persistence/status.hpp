#pragma once
#include <string>

namespace ordermesh::persistence {

/// Outcome of a storage call. Named factories as in RocksDB's Status.
class status {
 public:
  enum class code { ok, not_found, io_error, corruption, overloaded, closed, invalid };

  status() = default;
  static status ok() { return {}; }
  static status not_found(std::string m = {}) { return {code::not_found, std::move(m)}; }
  static status io_error(std::string m) { return {code::io_error, std::move(m)}; }
  static status corruption(std::string m) { return {code::corruption, std::move(m)}; }
  static status overloaded(std::string m = "write queue full") {
    return {code::overloaded, std::move(m)};
  }
  static status closed(std::string m = "storage closed") { return {code::closed, std::move(m)}; }
  static status invalid(std::string m) { return {code::invalid, std::move(m)}; }

  bool is_ok() const { return code_ == code::ok; }
  explicit operator bool() const { return is_ok(); }
  code kind() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  status(code c, std::string m) : code_(c), message_(std::move(m)) {}
  code code_ = code::ok;
  std::string message_;
};

}  // namespace ordermesh::persistence
