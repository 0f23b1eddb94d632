#include "client/reply_text.hpp"

#include <algorithm>

#include "client/terminal_text.hpp"

namespace ordermesh::client {

std::string scalar_text(const nlohmann::json& v) {
  return printable(v.is_string()
                       ? v.get<std::string>()
                       : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                 const std::string& indent) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    out << indent;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c + 1 < row.size()) {
        out << row[c] << std::string(widths[c] - row[c].size() + 2, ' ');
      } else {
        out << row[c];
      }
    }
    out << '\n';
  }
}

}  // namespace ordermesh::client
