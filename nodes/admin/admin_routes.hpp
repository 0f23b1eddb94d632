#pragma once
// The admin port's routing: (method, target) -> response, without sockets, so that every path,
// method and status code is unit-tested. Nothing here changes node state: every route reads.
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nodes/admin/readiness.hpp"

namespace ordermesh::node::admin {

/// Where the routes get what they answer (the node's status source, the metrics registry).
/// Each must be cheap and non-blocking: they run on the admin server's thread.
struct admin_sources {
  std::function<std::string()> metrics_text;     // Prometheus text
  std::function<readiness_verdict()> readiness;  // GET /readyz
  std::function<nlohmann::json()> status;        // GET /status.json
};

struct admin_reply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string allow;       // the Allow header of a 405
  bool omit_body = false;  // HEAD: the GET's headers (Content-Length included), no body
};

/// The Content-Type of GET /metrics (Prometheus text exposition format 0.0.4).
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4";

/// Answers one request. `target` is the request target as sent (a query string is ignored).
admin_reply route_admin_request(std::string_view method, std::string_view target,
                                const admin_sources& sources);

/// /readyz's body: {"ready":bool,"checks":[{"name","ok","detail"}...],"failing":[names]}.
nlohmann::json readiness_json(const readiness_verdict& v);

}  // namespace ordermesh::node::admin
