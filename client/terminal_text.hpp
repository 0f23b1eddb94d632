#pragma once
// Text from the server made safe to print on a terminal. A name is any UTF-8 the server took
// (docs/PROTOCOL.md), so it may carry a newline (a fake extra line in orderctl's output) or
// escape sequences (ESC [ ... that move the cursor, recolour or retitle the terminal). orderctl
// passes every string it prints from a reply through printable().
#include <string>
#include <string_view>

namespace ordermesh::client {

/// `text` with every byte below 0x20 (newline and tab too), DEL (0x7f) and every byte that is
/// not part of well-formed UTF-8 written as \xNN, and the C1 controls U+0080..U+009F (CSI
/// among them) as \u00NN. Other UTF-8 (accents, CJK, emoji) passes unchanged, and so do
/// backslashes: the escapes make the output unambiguous to a reader, not reversible.
std::string printable(std::string_view text);

/// Like printable(), for a whole reply line as received (orderctl --json): control bytes and
/// C1 controls as \u00NN, which keeps a JSON string valid (JSON holds raw control bytes only as
/// whitespace between tokens, which no server sends); bytes that are not UTF-8 (not valid JSON
/// anyway) as \xNN.
std::string printable_json_line(std::string_view line);

}  // namespace ordermesh::client
