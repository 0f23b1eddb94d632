#include "nodes/config_sources.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace ordermesh::node {

namespace po = boost::program_options;

namespace {

constexpr const char* prefix = "ORDERMESH_";
constexpr size_t prefix_size = 10;

/// Edit distance, cut off above `limit` (flag names are short: at most a few dozen characters).
size_t edit_distance(const std::string& a, const std::string& b, size_t limit) {
  if (a.size() > b.size() + limit || b.size() > a.size() + limit)
    return limit + 1;
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

/// "replication" and "replication-factor": one is the other plus whole words.
bool word_prefix(const std::string& shorter, const std::string& longer) {
  return shorter.size() < longer.size() && longer.compare(0, shorter.size(), shorter) == 0 &&
         longer[shorter.size()] == '-';
}

std::string similar_flag(const po::options_description& settable, const std::string& name) {
  if (auto near = nearest_flag(settable, name); !near.empty())
    return near;
  for (auto& opt : settable.options()) {
    const auto& flag = opt->long_name();
    if (word_prefix(name, flag) || word_prefix(flag, name))
      return flag;
  }
  return {};
}

}  // namespace

std::string flag_of_variable(const std::string& var) {
  if (var.compare(0, prefix_size, prefix) != 0)
    return {};
  std::string flag = var.substr(prefix_size);
  for (auto& ch : flag)
    ch = ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return flag;
}

std::string variable_of_flag(const std::string& flag) {
  std::string var = prefix;
  for (char ch : flag)
    var.push_back(ch == '-' ? '_'
                            : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  return var;
}

bool is_other_variable(const std::string& var) {
  // Grep for ORDERMESH_ in scripts/, tests/ and chaos/ when adding one there.
  static const char* const others[] = {
      "ORDERMESH_ADMIN_TOKEN",
      "ORDERMESH_TOKEN",
      "ORDERMESH_ASAN_BUILD_DIR",
      "ORDERMESH_BENCH_BUILD_DIR",
      "ORDERMESH_BENCH_DIR",
      "ORDERMESH_BUILD",
      "ORDERMESH_BUILD_DIR",
      "ORDERMESH_BUILD_TARGET",
      "ORDERMESH_CERT_DAYS",
      "ORDERMESH_CHAOS_NETNS",
      "ORDERMESH_CLUSTER_ARGS",
      "ORDERMESH_CLUSTER_DIR",
      "ORDERMESH_CLUSTER_LOAD_CLIENTS",
      "ORDERMESH_CLUSTER_NAME",
      "ORDERMESH_CLUSTER_PORT_BASE",
      "ORDERMESH_CLUSTER_WAIT",
      "ORDERMESH_CRASH_MAX_OPS",
      "ORDERMESH_CRASH_SECONDS",
      "ORDERMESH_CRASH_THREADS",
      "ORDERMESH_CTEST_LABEL",
      "ORDERMESH_ENTITY_TRAITS",
      "ORDERMESH_ETCD_BIN",
      "ORDERMESH_ETCD_PORT",
      "ORDERMESH_ETCD_SYSTEM_TESTS",
      "ORDERMESH_JOBS",
      "ORDERMESH_JOURNAL",
      "ORDERMESH_LOADER",
      "ORDERMESH_MAKE_TEST_CERTS",
      "ORDERMESH_MICRO_DIR",
      "ORDERMESH_REPORT_DIR",
      "ORDERMESH_REPORT_SUITE",
      "ORDERMESH_SANITIZE",
      "ORDERMESH_SKIP_ASAN",
      "ORDERMESH_SKIP_SETUP",
      "ORDERMESH_SYSTEM_TESTS",
      "ORDERMESH_TEST_POWER_CUT",  // nodes/power_cut_hook.hpp reads it itself
      "ORDERMESH_TEST_SKIP_OWN_CERT_CHECK",
      "ORDERMESH_WERROR",
  };
  return std::any_of(std::begin(others), std::end(others),
                     [&var](const char* other) { return var == other; });
}

std::string nearest_flag(const po::options_description& settable, const std::string& name) {
  std::string best;
  size_t best_distance = 3;
  for (auto& opt : settable.options()) {
    auto d = edit_distance(name, opt->long_name(), 2);
    if (d < best_distance) {
      best_distance = d;
      best = opt->long_name();
    }
  }
  return best;
}

bool environment_options(const po::options_description& settable,
                         const std::vector<std::string>& env, po::parsed_options* out,
                         std::string* error) {
  for (const auto& entry : env) {
    auto eq = entry.find('=');
    if (eq == std::string::npos)
      continue;
    std::string var = entry.substr(0, eq), value = entry.substr(eq + 1);
    auto flag = flag_of_variable(var);
    if (flag.empty() || is_other_variable(var))
      continue;
    if (settable.find_nothrow(flag, false) != nullptr) {
      // Empty means unset, as shells treat it (and `ORDERMESH_DRAIN=` would otherwise mean on).
      if (value.empty())
        continue;
      po::option opt;
      opt.string_key = flag;
      opt.value.push_back(value);
      opt.original_tokens = {var, value};
      out->options.push_back(std::move(opt));
      continue;
    }
    if (auto similar = similar_flag(settable, flag); !similar.empty()) {
      *error = var + " is not an orderd setting (did you mean " + variable_of_flag(similar) +
               ", for --" + similar + "?); unset it";
      return false;
    }
  }
  return true;
}

bool config_file_options(const po::options_description& settable, const std::string& path,
                         po::parsed_options* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "--config " + path + ": cannot be read";
    return false;
  }
  std::string text;
  text.resize(max_config_file_bytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > max_config_file_bytes) {
    *error = "--config " + path + ": larger than " + std::to_string(max_config_file_bytes) +
             " bytes; is it the right file?";
    return false;
  }
  std::istringstream lines(text);
  try {
    auto parsed = po::parse_config_file(lines, settable, false);
    out->options = std::move(parsed.options);
  } catch (const po::unknown_option& e) {
    auto key = e.get_option_name();
    auto near = nearest_flag(settable, key);
    *error = "--config " + path + ": unknown key '" + key + "'" +
             (near.empty() ? std::string() : " (did you mean '" + near + "'?)") +
             "; keys are the long flags without --, e.g. node-id = n1";
    return false;
  } catch (const std::exception& e) {
    *error = "--config " + path + ": " + e.what();
    return false;
  }
  return true;
}

}  // namespace ordermesh::node
