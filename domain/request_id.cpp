#include "domain/request_id.hpp"

#include <algorithm>

namespace ordermesh::domain {

namespace {
bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

std::string base36(uint64_t v) {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  do {
    out.push_back(digits[v % 36]);
    v /= 36;
  } while (v != 0);
  std::reverse(out.begin(), out.end());
  return out;
}
}  // namespace

bool valid_request_id(std::string_view id) {
  return !id.empty() && id.size() <= max_request_id_length &&
         std::all_of(id.begin(), id.end(), allowed);
}

std::string make_request_id(std::string_view node_id, int64_t start_ms, uint64_t n) {
  constexpr size_t max_node_part = 32;
  std::string out;
  // Node ids are [A-Za-z0-9._-], a subset of the request id alphabet; anything else is dropped
  // so that the result is always valid.
  for (char c : node_id.substr(0, max_node_part))
    if (allowed(c))
      out.push_back(c);
  out += '-';
  out += base36(static_cast<uint64_t>(std::max<int64_t>(0, start_ms)));
  out += '-';
  out += base36(n);
  return out;
}

}  // namespace ordermesh::domain
