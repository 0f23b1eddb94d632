#pragma once
// The client protocol (docs/PROTOCOL.md): one JSON object per line. This file parses and
// validates a request line into a typed request, and renders replies. No sockets, no actors.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/errors.hpp"
#include "domain/order_timeline.hpp"
#include "domain/types.hpp"

namespace ordermesh::protocol {

constexpr size_t max_line_bytes = 64 * 1024;

enum class op : uint8_t {
  user_register,
  user_login,
  user_get,
  user_deposit,
  product_create,
  product_get,
  inventory_add,
  inventory_get,
  order_place,
  order_pay,
  order_cancel,
  order_get,
  order_list,
  order_timeline,
  admin_crash,
  cluster_status,
  cluster_leave,
  cluster_force_primary,
  cluster_remove_member,
  admin_backup,
};
/// "user.register", ...
std::string_view to_string(op o);

/// A request whose args passed validation. Only the fields its op uses are set.
struct request {
  nlohmann::json id;  // number or string, echoed in the reply
  op operation = op::user_get;
  std::string token;  // empty when absent
  /// The request id (top-level "request_id"; domain/request_id.hpp): the client's, or empty
  /// until the node assigns one. Not args.request_id, the idempotency key of deposits and adds.
  std::string req_id;
  std::string user_id;
  std::string product_id;
  std::string order_id;
  std::string request_id;
  std::string name;
  std::string password;
  int64_t amount_cents = 0;
  int64_t price_cents = 0;
  int64_t quantity = 0;
  std::vector<domain::order_item> items;                       // unit_price_cents 0
  domain::entity_kind crash_kind = domain::entity_kind::user;  // admin.crash {entity: "kind/id"}
  std::string crash_id;
  std::string node_id;  // cluster.leave, cluster.force-primary, cluster.remove-member
  int64_t shard = 0;    // cluster.force-primary
  std::string dir;      // admin.backup: the directory to create (checked by the node)
  /// When its line arrived (set by the gateway, not parsed): the latency metric starts here.
  std::chrono::steady_clock::time_point received{};
};

/// Parse outcome: on failure `error.code` is set (bad_request or too_large) and `id` holds the
/// request's id when it could be read (null otherwise).
struct parsed {
  request req;
  domain::failure error;
  nlohmann::json id;
  bool ok() const { return error.code == domain::errc::none; }
};

/// Parses one line (without its '\n'). Never throws.
parsed parse_request(std::string_view line);

/// Reply lines, each ending in '\n'. A non-empty `req_id` is echoed as "request_id".
std::string render_ok(const nlohmann::json& id, const nlohmann::json& result,
                      std::string_view req_id = {});
/// `retry_elsewhere` adds "retry_elsewhere": true to the error: this node cannot serve anything
/// now (cut off from its peers, or shutting down), so a client sends its retry to another node
/// and avoids this one for a while (docs/PROTOCOL.md, "Errors").
std::string render_error(const nlohmann::json& id, domain::errc code, std::string_view message,
                         std::string_view req_id = {}, bool retry_elsewhere = false);

nlohmann::json to_json(const domain::user_view& v);
nlohmann::json to_json(const domain::product_view& v);
nlohmann::json to_json(const domain::inventory_view& v);
nlohmann::json to_json(const domain::order_view& v);
nlohmann::json to_json(const domain::order_list_view& v);
nlohmann::json to_json(const domain::order_timeline_view& v);

}  // namespace ordermesh::protocol
