#include "persistence/status.hpp"

namespace ordermesh::persistence {

namespace {
const char* code_name(status::code c) {
  switch (c) {
    case status::code::ok:
      return "ok";
    case status::code::not_found:
      return "not_found";
    case status::code::io_error:
      return "io_error";
    case status::code::corruption:
      return "corruption";
    case status::code::overloaded:
      return "overloaded";
    case status::code::closed:
      return "closed";
    case status::code::invalid:
      return "invalid";
    case status::code::unavailable:
      return "unavailable";
    case status::code::out_of_order:
      return "out_of_order";
    case status::code::duplicate:
      return "duplicate";
    case status::code::diverged:
      return "diverged";
  }
  return "unknown";
}
}  // namespace

std::string status::to_string() const {
  std::string s = code_name(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace ordermesh::persistence
