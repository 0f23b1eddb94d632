#include "observability/text_format.hpp"

#include <charconv>
#include <cmath>

namespace om::obs::text {

namespace {

bool name_char(char c, bool first, bool colon_ok) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  bool digit = c >= '0' && c <= '9';
  return alpha || (!first && digit) || (colon_ok && c == ':');
}

bool valid_name(std::string_view name, bool colon_ok) {
  if (name.empty())
    return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon_ok))
      return false;
  }
  return true;
}

/// Backslash and newline escaped, and the double quote too inside a label value.
std::string escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

}  // namespace

bool valid_metric_name(std::string_view name) {
  return valid_name(name, true);
}

bool valid_label_name(std::string_view name) {
  return valid_name(name, false) && name.substr(0, 2) != "__";
}

std::string escape_help(std::string_view help) {
  return escape(help, false);
}

std::string escape_label_value(std::string_view value) {
  return escape(value, true);
}

std::string format_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Whole numbers below 2^53 are exact as integers: print them without exponent or fraction.
  if (std::fabs(v) < 9007199254740992.0 && v == std::trunc(v)) {
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    return std::string(buf, r.ptr);
  }
  // The shortest form that reads back exactly, as %g would write it: 0.0005, not 5e-04.
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  return std::string(buf, r.ptr);
}

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escape_help(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, std::string_view extra_label,
                   std::string_view extra_value, std::string_view value) {
  out += name;
  bool any = !label_names.empty() || !extra_label.empty();
  if (any) {
    out += '{';
    bool first = true;
    auto label = [&](std::string_view n, std::string_view v) {
      if (!first)
        out += ',';
      first = false;
      out += n;
      out += "=\"";
      out += escape_label_value(v);
      out += '"';
    };
    for (size_t i = 0; i < label_names.size() && i < label_values.size(); ++i)
      label(label_names[i], label_values[i]);
    if (!extra_label.empty())
      label(extra_label, extra_value);
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace om::obs::text
