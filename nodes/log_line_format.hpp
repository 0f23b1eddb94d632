#pragma once
// How orderd writes one log line, whoever logged it (the node's own code, or the storage library
// through spdlog's default logger): one format for everything, chosen by --log-format.
//   text: 2026-11-29T14:03:05.123+00:00 info node=n1 <message>
//   json: {"ts":"2026-11-29T14:03:05.123+00:00","level":"info","node":"n1","message":"...",
//          "entity":"order/o1"}   (entity, request, request_id: when the message has that
//          key=value)
// Timestamps are local time with the UTC offset (ISO 8601), so that lines from nodes in other
// time zones sort and compare without guessing.
#include <chrono>
#include <memory>
#include <string>

#include <spdlog/formatter.h>

namespace ordermesh::node {

enum class log_format { text, json };

/// Parses "text" or "json"; false for anything else.
bool parse_log_format(const std::string& name, log_format& out);

/// The spdlog formatter of every orderd sink.
class log_line_formatter final : public spdlog::formatter {
 public:
  log_line_formatter(log_format format, std::string node_id);
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  log_format format_;
  std::string node_id_;
};

/// "2026-11-29T14:03:05.123+01:00" for a point in time, in the process's local time zone.
std::string iso8601_with_offset(std::chrono::system_clock::time_point t);

}  // namespace ordermesh::node
