#include "cluster/etcd/etcd_error.hpp"

namespace ordermesh::etcd {

std::string_view to_string(errc code) {
  switch (code) {
    case errc::none:
      return "none";
    case errc::unavailable:
      return "unavailable";
    case errc::timeout:
      return "timeout";
    case errc::http_error:
      return "http_error";
    case errc::bad_response:
      return "bad_response";
    case errc::compacted:
      return "compacted";
    case errc::not_found:
      return "not_found";
    case errc::too_large:
      return "too_large";
    case errc::closed:
      return "closed";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string to_string(const error& e) {
  std::string s(to_string(e.code));
  if (e.http_status != 0) {
    s += " (http ";
    s += std::to_string(e.http_status);
    s += ')';
  }
  if (!e.message.empty()) {
    s += ": ";
    s += e.message;
  }
  return s;
}

}  // namespace ordermesh::etcd
