#pragma once
// A strict reader of the Prometheus text format 0.0.4, for tests: it reads back what
// render_metrics_text() writes and fails loudly on any line that is not the format.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace om::obs::testing {

struct parsed_sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;  // as written: "+Inf", "12", "0.25"
  double number() const;
};

struct parsed_exposition {
  std::map<std::string, std::string> help;  // family -> unescaped help
  std::map<std::string, std::string> type;  // family -> type
  std::vector<parsed_sample> samples;
  /// The samples named `name` whose labels include every pair of `match`.
  std::vector<parsed_sample> find(const std::string& name,
                                  const std::map<std::string, std::string>& match = {}) const;
  /// The value of the one sample so named and labeled; throws when there is not exactly one.
  double value(const std::string& name, const std::map<std::string, std::string>& match = {}) const;
};

/// Throws std::runtime_error naming the line on anything malformed, including a sample whose
/// family has no TYPE line before it.
parsed_exposition parse_exposition(const std::string& text);

}  // namespace om::obs::testing
