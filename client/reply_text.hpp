#pragma once
// Small pieces for printing reply values as text (orderctl's renderings): one value on a line,
// and rows as aligned columns. Every string passes through printable() (terminal_text.hpp).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace ordermesh::client {

/// A scalar as text: a string as is, anything else as compact JSON; made printable.
std::string scalar_text(const nlohmann::json& v);

/// "2023-11-14T22:13:20.000Z" for a millisecond timestamp since the Unix epoch.
std::string utc_text(int64_t ms);

/// `rows` as columns padded to the widest cell, each line after `indent`. The last column is
/// not padded: trailing blanks only get in the way of scripts.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                 const std::string& indent);

}  // namespace ordermesh::client
