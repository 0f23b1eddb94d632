// Tests for nodes/log_line_format: the text and JSON line formats every orderd sink uses.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <string>

#include <spdlog/details/log_msg.h>
#include <nlohmann/json.hpp>

#include "nodes/log_line_format.hpp"

using ordermesh::node::iso8601_with_offset;
using ordermesh::node::log_format;
using ordermesh::node::log_line_formatter;

namespace {

/// One line as the formatter writes it for `payload` at `level`.
std::string format_line(log_format format, const std::string& payload,
                        spdlog::level::level_enum level = spdlog::level::info) {
  log_line_formatter f(format, "n1");
  spdlog::details::log_msg msg(std::chrono::system_clock::now(), spdlog::source_loc{}, "orderd",
                               level, spdlog::string_view_t(payload.data(), payload.size()));
  spdlog::memory_buf_t out;
  f.format(msg, out);
  return std::string(out.data(), out.size());
}

/// Runs `body` with the process's time zone set to the POSIX TZ string `tz`, then restores it.
template <class F>
void in_time_zone(const char* tz, F body) {
  const char* old = std::getenv("TZ");
  std::string saved = old ? old : "";
  ::setenv("TZ", tz, 1);
  ::tzset();
  body();
  if (old)
    ::setenv("TZ", saved.c_str(), 1);
  else
    ::unsetenv("TZ");
  ::tzset();
}

}  // namespace

TEST_CASE("json lines carry ts level node message and the ids a message names") {
  auto line =
      format_line(log_format::json, "node=n1 entity=order/o1 step pay refused: \"no\" request=r-7",
                  spdlog::level::warn);
  REQUIRE(line.back() == '\n');
  REQUIRE(line.find('\n') == line.size() - 1);  // one line, whatever the message holds
  auto j = nlohmann::json::parse(line);
  CHECK(j["level"] == "warning");
  CHECK(j["node"] == "n1");
  CHECK(j["message"] == "node=n1 entity=order/o1 step pay refused: \"no\" request=r-7");
  CHECK(j["entity"] == "order/o1");
  CHECK(j["request"] == "r-7");
  CHECK_FALSE(j.contains("request_id"));
  // The first four keys in a fixed order, for a reader scanning the raw lines.
  CHECK(line.rfind("{\"ts\":", 0) == 0);
  CHECK(line.find("\"level\"") < line.find("\"node\""));
  CHECK(line.find("\"node\"") < line.find("\"message\""));
  // Only whole `key=` tokens count: "subentity=x" names no entity.
  auto other = nlohmann::json::parse(format_line(log_format::json, "subentity=x sharding"));
  CHECK_FALSE(other.contains("entity"));
}

TEST_CASE("json lines stay one valid line with control characters and invalid UTF-8") {
  const std::string payload = std::string("storage: cannot open '/d\n\x01\t\\") + "\xff\xfe'";
  auto line = format_line(log_format::json, payload, spdlog::level::err);
  REQUIRE(line.find('\n') == line.size() - 1);
  auto j = nlohmann::json::parse(line);
  const std::string message = j["message"];
  CHECK(message.rfind("storage: cannot open '/d\n\x01\t\\", 0) == 0);
  CHECK(message.find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD for each bad byte
  CHECK(j["level"] == "error");
}

TEST_CASE("text lines give every line the node id once") {
  auto storage = format_line(log_format::text, "storage: opened '/d/db'");
  CHECK_THAT(storage, Catch::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d )"
                                     R"(info node=n1 storage: opened '/d/db'\n)"));
  auto own = format_line(log_format::text, "node=n1 ready", spdlog::level::debug);
  CHECK_THAT(own, Catch::EndsWith(" debug node=n1 ready\n"));
}

TEST_CASE("timestamps are ISO 8601 with the local UTC offset") {
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(123));
  in_time_zone("UTC0", [&] { CHECK(iso8601_with_offset(t) == "1970-01-01T00:00:00.123+00:00"); });
  in_time_zone("IST-5:30",
               [&] { CHECK(iso8601_with_offset(t) == "1970-01-01T05:30:00.123+05:30"); });
  in_time_zone("NST+3:30",
               [&] { CHECK(iso8601_with_offset(t) == "1969-12-31T20:30:00.123-03:30"); });
}

TEST_CASE("log formats are text and json only") {
  log_format f = log_format::json;
  CHECK(ordermesh::node::parse_log_format("text", f));
  CHECK(f == log_format::text);
  CHECK(ordermesh::node::parse_log_format("json", f));
  CHECK(f == log_format::json);
  CHECK_FALSE(ordermesh::node::parse_log_format("JSON", f));
  CHECK_FALSE(ordermesh::node::parse_log_format("", f));
}
