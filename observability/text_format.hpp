#pragma once
// The pieces of the Prometheus text exposition format 0.0.4: names, escaping, numbers, one line
// per sample. The registry's render() puts them together; tests parse the result back.
#include <string>
#include <string_view>
#include <vector>

namespace om::obs::text {

/// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name);
/// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool valid_label_name(std::string_view name);

/// HELP text: backslash and newline escaped.
std::string escape_help(std::string_view help);
/// Label value: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);

/// A sample value: integers without a fraction, others in their shortest exact form, and the
/// format's spellings `+Inf`, `-Inf`, `NaN`.
std::string format_value(double v);

/// "# HELP name help\n# TYPE name type\n"
void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type);

/// One sample line: name{l1="v1",...,extra="x"} value\n (no braces when there are no labels).
/// `extra_label` empty: none (it is `le` for histogram buckets).
void append_sample(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, std::string_view extra_label,
                   std::string_view extra_value, std::string_view value);

}  // namespace om::obs::text
