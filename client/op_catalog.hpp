#pragma once
// The ops orderctl knows, with their args (docs/PROTOCOL.md, "Ops"): what `orderctl OP --help`
// prints, and what lets a mistyped op or arg name be an error with a suggestion instead of a
// request the node answers `bad_request` (or, for an unknown arg, silently ignores). `orderctl
// call` still sends any op as is.
#include <string>
#include <string_view>
#include <vector>

namespace ordermesh::client {

struct op_arg {
  std::string name;  // as sent: user_id (typed --user-id or --user_id)
  bool required = true;
  std::string value;  // its placeholder in the usage line: U, N, p1:2,p2:1
  std::string help;   // bounds and meaning, e.g. "1..100000"
};

struct op_spec {
  std::string name;
  std::vector<op_arg> args;
  std::string who;      // who may call it: "anyone", "admin", "own token or admin"
  std::string returns;  // what the result holds
};

/// Every op, in the order the help lists them.
const std::vector<op_spec>& op_catalog();

/// The op named `name`, or null.
const op_spec* find_op(std::string_view name);

/// `orderctl OP --help`: usage line, args, who may call it, what it returns.
std::string op_help(const op_spec& op);

/// One line per op for orderctl's --help.
std::string ops_summary();

/// The closest of `candidates` to `word` (edit distance at most 2, or at most a third of its
/// length for short words), or empty when none is close.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace ordermesh::client
