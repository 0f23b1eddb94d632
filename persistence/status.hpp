#pragma once
#include <string>

namespace ordermesh::persistence {

/// Outcome of a storage call. Named factories as in RocksDB's Status.
class status {
 public:
  /// unavailable: written on this node's disk but not acknowledged by its replicas (see
  /// storage_engine.hpp, replication). out_of_order, duplicate and diverged answer
  /// apply_replicated only; each asks the caller for a different reaction (catch up, ack again,
  /// re-seed the replica by a full copy).
  enum class code {
    ok,
    not_found,
    io_error,
    corruption,
    overloaded,
    closed,
    invalid,
    unavailable,
    out_of_order,
    duplicate,
    diverged
  };

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
  static status unavailable(std::string m) { return {code::unavailable, std::move(m)}; }
  static status out_of_order(std::string m) { return {code::out_of_order, std::move(m)}; }
  static status duplicate(std::string m) { return {code::duplicate, std::move(m)}; }
  static status diverged(std::string m) { return {code::diverged, std::move(m)}; }

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
