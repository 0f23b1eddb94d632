#pragma once
// Internal: the decimal numbers of the engine's text meta records (ownership, replica).
#include <charconv>
#include <string_view>
#include <system_error>

namespace ordermesh::persistence::detail {

/// Whole of `text` as a decimal number, nothing else (no sign, no spaces).
template <class T>
bool parse_decimal(std::string_view text, T& out) {
  if (text.empty()) {
    return false;
  }
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

}  // namespace ordermesh::persistence::detail
