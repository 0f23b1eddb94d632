#include "nodes/log_line_format.hpp"

#include <cstdio>
#include <ctime>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ordermesh::node {

namespace {

/// The value of the first `key=value` token of a message ("entity=order/o1" gives "order/o1"),
/// empty when there is none. Values end at a blank; messages are written by this project with
/// ids that hold no blanks ([A-Za-z0-9._-], domain/types.hpp).
std::string_view token_value(std::string_view message, std::string_view key) {
  for (size_t at = 0; at < message.size();) {
    at = message.find(key, at);
    if (at == std::string_view::npos)
      return {};
    const bool word_start = at == 0 || message[at - 1] == ' ';
    const size_t value_at = at + key.size();
    if (word_start && value_at < message.size() && message[value_at] == '=') {
      auto end = message.find(' ', value_at + 1);
      return message.substr(value_at + 1, end == std::string_view::npos ? end : end - value_at - 1);
    }
    at = value_at;
  }
  return {};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool parse_log_format(const std::string& name, log_format& out) {
  if (name == "text")
    out = log_format::text;
  else if (name == "json")
    out = log_format::json;
  else
    return false;
  return true;
}

std::string iso8601_with_offset(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto since_epoch = t.time_since_epoch();
  const auto secs = duration_cast<seconds>(since_epoch);
  const auto millis = duration_cast<milliseconds>(since_epoch - secs).count();
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm local{};
  localtime_r(&tt, &local);
  const long offset_min = local.tm_gmtoff / 60;
  const long abs_min = offset_min < 0 ? -offset_min : offset_min;
  char buf[96];  // room for any int the fields could hold (-Wformat-truncation)
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld",
                local.tm_year + 1900, local.tm_mon + 1, local.tm_mday, local.tm_hour, local.tm_min,
                local.tm_sec, static_cast<int>(millis), offset_min < 0 ? '-' : '+', abs_min / 60,
                abs_min % 60);
  return buf;
}

log_line_formatter::log_line_formatter(log_format format, std::string node_id)
    : format_(format), node_id_(std::move(node_id)) {}

void log_line_formatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const std::string_view message(msg.payload.data(), msg.payload.size());
  const auto level = spdlog::level::to_string_view(msg.level);
  const std::string ts = iso8601_with_offset(msg.time);
  std::string line;
  if (format_ == log_format::text) {
    line.reserve(ts.size() + message.size() + node_id_.size() + 24);
    line.append(ts).append(" ").append(level.data(), level.size()).append(" ");
    // Lines from code that does not know the node (the storage library) get its id too.
    if (!starts_with(message, "node="))
      line.append("node=").append(node_id_).append(" ");
    line.append(message).append("\n");
  } else {
    // ordered: ts, level, node, message first, as a reader scans them.
    nlohmann::ordered_json j = {{"ts", ts},
                                {"level", std::string(level.data(), level.size())},
                                {"node", node_id_},
                                {"message", std::string(message)}};
    for (const char* key : {"entity", "request", "request_id"})
      if (auto v = token_value(message, key); !v.empty())
        j[key] = std::string(v);
    // replace: a message with invalid UTF-8 (a path, a peer's bytes) still gives valid JSON.
    line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line.push_back('\n');
  }
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> log_line_formatter::clone() const {
  return std::make_unique<log_line_formatter>(format_, node_id_);
}

}  // namespace ordermesh::node
