#include "client/reply_text.hpp"

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <sstream>

#include "client/terminal_text.hpp"

namespace ordermesh::client {

std::string scalar_text(const nlohmann::json& v) {
  return printable(v.is_string()
                       ? v.get<std::string>()
                       : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string utc_text(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) {
    return "?";
  }
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  std::ostringstream out;
  out << text << '.' << std::setw(3) << std::setfill('0') << (ms % 1000) << 'Z';
  return out.str();
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
