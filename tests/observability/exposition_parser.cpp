#include "tests/observability/exposition_parser.hpp"

#include <cmath>
#include <sstream>

namespace om::obs::testing {

namespace {

[[noreturn]] void fail(const std::string& why, const std::string& line) {
  throw std::runtime_error(why + ": " + line);
}

bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

std::string read_name(const std::string& line, size_t& pos) {
  size_t start = pos;
  while (pos < line.size() && is_name_char(line[pos], pos == start))
    ++pos;
  if (pos == start)
    fail("expected a name", line);
  return line.substr(start, pos - start);
}

/// The family a sample belongs to: histogram lines carry a suffix.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name))
    return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      auto base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram")
        return base;
    }
  }
  return {};
}

parsed_sample parse_sample(const std::string& line) {
  parsed_sample s;
  size_t pos = 0;
  s.name = read_name(line, pos);
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (true) {
      if (pos >= line.size())
        fail("unterminated labels", line);
      if (line[pos] == '}') {
        ++pos;
        break;
      }
      auto label = read_name(line, pos);
      if (line.compare(pos, 2, "=\"") != 0)
        fail("expected =\" after a label name", line);
      pos += 2;
      std::string value;
      while (true) {
        if (pos >= line.size())
          fail("unterminated label value", line);
        char c = line[pos++];
        if (c == '"')
          break;
        if (c == '\n')
          fail("raw newline in a label value", line);
        if (c == '\\') {
          if (pos >= line.size())
            fail("dangling backslash", line);
          char e = line[pos++];
          if (e == 'n')
            value += '\n';
          else if (e == '\\' || e == '"')
            value += e;
          else
            fail("unknown escape in a label value", line);
        } else {
          value += c;
        }
      }
      if (!s.labels.emplace(label, value).second)
        fail("label given twice", line);
      if (pos < line.size() && line[pos] == ',')
        ++pos;
    }
  }
  if (pos >= line.size() || line[pos] != ' ')
    fail("expected one space before the value", line);
  s.value = line.substr(pos + 1);
  if (s.value.empty() || s.value.find(' ') != std::string::npos)
    fail("expected one value and no timestamp", line);
  (void)s.number();  // throws when not a number
  return s;
}

}  // namespace

double parsed_sample::number() const {
  if (value == "+Inf")
    return INFINITY;
  if (value == "-Inf")
    return -INFINITY;
  if (value == "NaN")
    return NAN;
  size_t used = 0;
  double d = std::stod(value, &used);
  if (used != value.size())
    throw std::runtime_error("not a number: " + value);
  return d;
}

std::vector<parsed_sample> parsed_exposition::find(
    const std::string& name, const std::map<std::string, std::string>& match) const {
  std::vector<parsed_sample> out;
  for (auto& s : samples) {
    if (s.name != name)
      continue;
    bool all = true;
    for (auto& [k, v] : match) {
      auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all)
      out.push_back(s);
  }
  return out;
}

double parsed_exposition::value(const std::string& name,
                                const std::map<std::string, std::string>& match) const {
  auto found = find(name, match);
  if (found.size() != 1)
    throw std::runtime_error("expected one sample " + name + ", found " +
                             std::to_string(found.size()));
  return found[0].number();
}

parsed_exposition parse_exposition(const std::string& text) {
  parsed_exposition out;
  if (!text.empty() && text.back() != '\n')
    throw std::runtime_error("the text must end with a newline");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      fail("empty line", line);
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      bool help = line[2] == 'H';
      size_t pos = 7;
      auto name = read_name(line, pos);
      if (pos >= line.size() || line[pos] != ' ')
        fail("expected a space after the name", line);
      auto rest = line.substr(pos + 1);
      if (help) {
        std::string unescaped;
        for (size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] == '\\' && i + 1 < rest.size() && (rest[i + 1] == 'n' || rest[i + 1] == '\\'))
            unescaped += rest[++i] == 'n' ? '\n' : '\\';
          else
            unescaped += rest[i];
        }
        if (!out.help.emplace(name, unescaped).second)
          fail("HELP given twice", line);
      } else {
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped")
          fail("unknown type", line);
        if (!out.type.emplace(name, rest).second)
          fail("TYPE given twice", line);
      }
      continue;
    }
    if (line[0] == '#')
      continue;  // a comment
    auto s = parse_sample(line);
    if (family_of(s.name, out.type).empty())
      fail("sample before its TYPE line", line);
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace om::obs::testing
