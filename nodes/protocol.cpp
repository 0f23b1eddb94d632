// Parsing and rendering of the JSON-lines client protocol (docs/PROTOCOL.md).
//
// Everything here runs on untrusted input from the network, so nothing may throw out of it:
// the JSON parser runs with exceptions off, every value is type-checked before it is read, and
// numbers are range-checked before they are converted.
#include "nodes/protocol.hpp"

#include <array>
#include <exception>
#include <utility>

#include "domain/request_id.hpp"

namespace ordermesh::protocol {

namespace {

using domain::errc;
using nlohmann::json;
namespace limits = domain::limits;

constexpr std::string_view id_rule = "[A-Za-z0-9._-]{1,64}";

struct op_entry {
  std::string_view name;
  op value;
};

constexpr std::array<op_entry, 20> op_table{{
    {"user.register", op::user_register},
    {"user.login", op::user_login},
    {"user.get", op::user_get},
    {"user.deposit", op::user_deposit},
    {"product.create", op::product_create},
    {"product.get", op::product_get},
    {"inventory.add", op::inventory_add},
    {"inventory.get", op::inventory_get},
    {"order.place", op::order_place},
    {"order.pay", op::order_pay},
    {"order.cancel", op::order_cancel},
    {"order.get", op::order_get},
    {"order.list", op::order_list},
    {"order.timeline", op::order_timeline},
    {"admin.crash", op::admin_crash},
    {"cluster.status", op::cluster_status},
    {"cluster.leave", op::cluster_leave},
    {"cluster.force-primary", op::cluster_force_primary},
    {"cluster.remove-member", op::cluster_remove_member},
    {"admin.backup", op::admin_backup},
}};

bool op_from_string(std::string_view text, op& out) {
  for (const auto& entry : op_table) {
    if (entry.name == text) {
      out = entry.value;
      return true;
    }
  }
  return false;
}

/// Dumps without ever throwing: invalid UTF-8 (which the parser never lets in, but a caller's
/// message might carry) is replaced rather than raising type_error 316.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// Reads typed args out of one JSON object. The first failure is kept and every later read
/// becomes a no-op, so a handler can read all its args in a row and check once at the end.
/// `prefix` names the object in messages (e.g. "items[3].") so the caller knows which arg.
class arg_reader {
 public:
  arg_reader(const json& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  bool failed() const { return !message_.empty(); }
  const std::string& message() const { return message_; }

  /// A required id matching [A-Za-z0-9._-]{1,64}.
  void id(const char* key, std::string& out) {
    const json* v = find(key, true);
    if (v == nullptr) {
      return;
    }
    if (!v->is_string()) {
      return fail(key, "must be a string");
    }
    const auto& text = v->get_ref<const std::string&>();
    if (!domain::valid_id(text)) {
      return fail(key, "must match " + std::string(id_rule));
    }
    out = text;
  }

  /// A string of min..max bytes. Optional strings leave `out` untouched when absent and report
  /// whether they were present.
  bool text(const char* key, std::string& out, size_t min, size_t max, bool required = true) {
    const json* v = find(key, required);
    if (v == nullptr) {
      return false;
    }
    if (!v->is_string()) {
      fail(key, "must be a string");
      return false;
    }
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() < min || s.size() > max) {
      fail(key, "must be " + std::to_string(min) + ".." + std::to_string(max) + " bytes");
      return false;
    }
    out = s;
    return true;
  }

  /// A JSON integer in min..max. Floats (even 1.0), bools, strings and integers too large for
  /// 64 bits (the parser turns those into floats) are all refused.
  void integer(const char* key, int64_t& out, int64_t min, int64_t max) {
    const json* v = find(key, true);
    if (v == nullptr) {
      return;
    }
    const std::string rule =
        "must be an integer in " + std::to_string(min) + ".." + std::to_string(max);
    if (!v->is_number_integer()) {
      return fail(key, rule);
    }
    // Compare in the value's own signedness so a huge unsigned value cannot wrap around.
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      if (max < 0 || u > static_cast<uint64_t>(max) ||
          (min > 0 && u < static_cast<uint64_t>(min))) {
        return fail(key, rule);
      }
      out = static_cast<int64_t>(u);
      return;
    }
    const auto s = v->get<int64_t>();
    if (s < min || s > max) {
      return fail(key, rule);
    }
    out = s;
  }

  /// Raw access for args with structure of their own (items). Null when absent or failed.
  const json* value(const char* key) { return find(key, true); }

  void fail(const char* key, const std::string& what) {
    fail_with("arg '" + prefix_ + key + "' " + what);
  }

  /// Keeps a message written elsewhere (a nested reader's) as this reader's failure.
  void fail_with(std::string message) {
    if (!failed()) {
      message_ = std::move(message);
    }
  }

 private:
  const json* find(const char* key, bool required) {
    if (failed()) {
      return nullptr;
    }
    auto it = object_.find(key);
    if (it == object_.end()) {
      if (required) {
        message_ = "missing arg '" + prefix_ + key + "'";
      }
      return nullptr;
    }
    return &*it;
  }

  const json& object_;
  std::string prefix_;
  std::string message_;
};

void read_items(arg_reader& args, std::vector<domain::order_item>& out) {
  const json* items = args.value("items");
  if (items == nullptr) {
    return;
  }
  const std::string rule = "must be an array of 1.." + std::to_string(limits::max_items) +
                           " objects {product_id, quantity}";
  if (!items->is_array() || items->empty() || items->size() > limits::max_items) {
    return args.fail("items", rule);
  }
  out.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const json& item = (*items)[i];
    const std::string prefix = "items[" + std::to_string(i) + "]";
    if (!item.is_object()) {
      return args.fail(prefix.c_str(), "must be an object {product_id, quantity}");
    }
    arg_reader fields(item, prefix + ".");
    domain::order_item parsed_item;
    fields.id("product_id", parsed_item.product_id);
    fields.integer("quantity", parsed_item.quantity, 1, limits::max_quantity);
    if (fields.failed()) {
      // The nested reader already wrote the whole message; pass it through unchanged.
      return args.fail_with(fields.message());
    }
    out.push_back(std::move(parsed_item));
  }
}

void read_crash_entity(arg_reader& args, request& req) {
  std::string entity;
  // Any length passes here; the kind and id checks below bound it.
  if (!args.text("entity", entity, 0, max_line_bytes)) {
    return;
  }
  const auto slash = entity.find('/');
  const std::string rule = "must be \"<kind>/<id>\" with kind user|product|inventory|order";
  if (slash == std::string::npos) {
    return args.fail("entity", rule);
  }
  const std::string_view kind_text(entity.data(), slash);
  const std::string_view id(entity.data() + slash + 1, entity.size() - slash - 1);
  if (!domain::from_string(kind_text, req.crash_kind) || !domain::valid_id(id)) {
    return args.fail("entity", rule);
  }
  req.crash_id = std::string(id);
}

/// Reads the args of `req.operation`; returns the failure message or "" when all are valid.
std::string read_args(const json& object, request& req) {
  arg_reader args(object, "");
  switch (req.operation) {
    case op::user_register:
      args.id("user_id", req.user_id);
      args.text("password", req.password, 1, limits::max_password_length);
      if (!args.text("name", req.name, 0, limits::max_name_length, false) && !args.failed()) {
        req.name = req.user_id;  // a user without a name is called by their id
      }
      break;
    case op::user_login:
      args.id("user_id", req.user_id);
      args.text("password", req.password, 1, limits::max_password_length);
      break;
    case op::user_get:
    case op::order_list:
      args.id("user_id", req.user_id);
      break;
    case op::user_deposit:
      args.id("user_id", req.user_id);
      args.integer("amount_cents", req.amount_cents, 0, limits::max_money_cents);
      args.id("request_id", req.request_id);
      break;
    case op::product_create:
      args.id("product_id", req.product_id);
      args.text("name", req.name, 1, limits::max_name_length);
      args.integer("price_cents", req.price_cents, 0, limits::max_money_cents);
      break;
    case op::product_get:
    case op::inventory_get:
      args.id("product_id", req.product_id);
      break;
    case op::inventory_add:
      args.id("product_id", req.product_id);
      args.integer("quantity", req.quantity, 1, limits::max_quantity);
      args.id("request_id", req.request_id);
      break;
    case op::order_place:
      args.id("order_id", req.order_id);
      args.id("user_id", req.user_id);
      read_items(args, req.items);
      break;
    case op::order_pay:
    case op::order_cancel:
    case op::order_get:
    case op::order_timeline:
      args.id("order_id", req.order_id);
      break;
    case op::admin_crash:
      read_crash_entity(args, req);
      break;
    case op::cluster_status:
      break;
    case op::cluster_leave:
    case op::cluster_remove_member:
      args.id("node_id", req.node_id);
      break;
    case op::cluster_force_primary:
      args.integer("shard", req.shard, 0, 65534);
      args.id("node_id", req.node_id);
      break;
    case op::admin_backup:
      // Only its size here: which paths are allowed is the node's rule (nodes/backup_target).
      args.text("dir", req.dir, 1, 4096);
      break;
  }
  return args.message();
}

/// `"request_id":"<id>",` or nothing. Ids are [A-Za-z0-9._:-] only: nothing to escape.
std::string request_id_field(std::string_view req_id) {
  if (req_id.empty())
    return {};
  std::string out = "\"request_id\":\"";
  out += req_id;
  out += "\",";
  return out;
}

parsed fail(errc code, std::string message, json id = nullptr) {
  parsed out;
  out.error.code = code;
  out.error.message = std::move(message);
  out.id = std::move(id);
  return out;
}

parsed parse_unchecked(std::string_view line) {
  // Size first: a huge line is refused without spending time parsing it.
  if (line.size() > max_line_bytes) {
    return fail(errc::too_large,
                "request line exceeds " + std::to_string(max_line_bytes) + " bytes");
  }
  json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return fail(errc::bad_request, "request is not valid JSON");
  }
  if (!doc.is_object()) {
    return fail(errc::bad_request, "request must be a JSON object");
  }

  auto id_it = doc.find("id");
  if (id_it == doc.end()) {
    return fail(errc::bad_request, "missing id");
  }
  if (!id_it->is_number() && !id_it->is_string()) {
    return fail(errc::bad_request, "id must be a number or a string");
  }
  json id = *id_it;

  parsed out;
  out.id = id;
  request& req = out.req;
  req.id = std::move(id);

  auto op_it = doc.find("op");
  if (op_it == doc.end()) {
    return fail(errc::bad_request, "missing op", out.id);
  }
  if (!op_it->is_string()) {
    return fail(errc::bad_request, "op must be a string", out.id);
  }
  const auto& op_text = op_it->get_ref<const std::string&>();
  if (!op_from_string(op_text, req.operation)) {
    // Echo the name only when it is short enough to be a typo rather than garbage.
    return fail(errc::bad_request,
                op_text.size() <= 64 ? "unknown op '" + op_text + "'" : std::string("unknown op"),
                out.id);
  }

  auto token_it = doc.find("token");
  if (token_it != doc.end()) {
    if (!token_it->is_string()) {
      return fail(errc::bad_request, "token must be a string", out.id);
    }
    req.token = token_it->get_ref<const std::string&>();
  }

  auto req_id_it = doc.find("request_id");
  if (req_id_it != doc.end()) {
    if (!req_id_it->is_string() ||
        !domain::valid_request_id(req_id_it->get_ref<const std::string&>())) {
      return fail(errc::bad_request, "request_id must be a string matching [A-Za-z0-9._:-]{1,64}",
                  out.id);
    }
    req.req_id = req_id_it->get_ref<const std::string&>();
  }

  static const json no_args = json::object();
  const json* args = &no_args;
  auto args_it = doc.find("args");
  if (args_it != doc.end()) {
    if (!args_it->is_object()) {
      return fail(errc::bad_request, "args must be a JSON object", out.id);
    }
    args = &*args_it;
  }

  std::string problem = read_args(*args, req);
  if (!problem.empty()) {
    return fail(errc::bad_request, std::move(problem), out.id);
  }
  return out;
}

}  // namespace

std::string_view to_string(op o) {
  for (const auto& entry : op_table) {
    if (entry.value == o) {
      return entry.name;
    }
  }
  return "unknown";
}

parsed parse_request(std::string_view line) {
  try {
    return parse_unchecked(line);
  } catch (const std::exception&) {
    // Only allocation failure can get here; answer rather than take the connection down.
    return fail(errc::internal, "could not parse request");
  }
}

std::string render_ok(const json& id, const json& result, std::string_view req_id) {
  // Built by hand so the reply reads id, ok, result in that order (json objects sort keys).
  std::string out = "{\"id\":";
  out += (id.is_number() || id.is_string()) ? dump(id) : "null";
  out += ",\"ok\":true,";
  out += request_id_field(req_id);
  out += "\"result\":";
  out += result.is_discarded() ? "{}" : dump(result);
  out += "}\n";
  return out;
}

std::string render_error(const json& id, errc code, std::string_view message,
                         std::string_view req_id, bool retry_elsewhere) {
  // `none` is not a protocol code; a failed reply must carry one a client can act on.
  const errc shown = code == errc::none ? errc::internal : code;
  std::string out = "{\"id\":";
  out += (id.is_number() || id.is_string()) ? dump(id) : "null";
  out += ",\"ok\":false,";
  out += request_id_field(req_id);
  out += "\"error\":{\"code\":";
  out += dump(json(std::string(domain::to_string(shown))));
  out += ",\"message\":";
  out += dump(json(std::string(message)));
  if (retry_elsewhere)
    out += ",\"retry_elsewhere\":true";
  out += "}}\n";
  return out;
}

json to_json(const domain::user_view& v) {
  return {{"user_id", v.user_id}, {"name", v.name}, {"balance_cents", v.balance_cents}};
}

json to_json(const domain::product_view& v) {
  return {{"product_id", v.product_id}, {"name", v.name}, {"price_cents", v.price_cents}};
}

json to_json(const domain::inventory_view& v) {
  return {{"product_id", v.product_id},
          {"available", v.available},
          {"reserved", v.reserved},
          {"sold", v.sold}};
}

json to_json(const domain::order_view& v) {
  json items = json::array();
  for (const auto& item : v.items) {
    items.push_back({{"product_id", item.product_id},
                     {"quantity", item.quantity},
                     {"unit_price_cents", item.unit_price_cents}});
  }
  json out = {
      {"order_id", v.order_id},
      {"user_id", v.user_id},
      {"status", std::string(domain::to_string(static_cast<domain::order_status>(v.status)))},
      {"items", std::move(items)},
      {"total_cents", v.total_cents},
      {"created_at", v.created_at},
      {"updated_at", v.updated_at}};
  if (!v.reason.empty()) {
    out["reason"] = v.reason;
  }
  if (v.expires_at != 0) {
    out["expires_at"] = v.expires_at;
  }
  return out;
}

json to_json(const domain::order_list_view& v) {
  json orders = json::array();
  for (const auto& order : v.orders) {
    orders.push_back(to_json(order));
  }
  return {{"orders", std::move(orders)}};
}

json to_json(const domain::order_timeline_view& v) {
  json steps = json::array();
  for (const auto& step : v.steps) {
    steps.push_back({{"step", step.step},
                     {"outcome", step.outcome},
                     {"at", step.at_ms},
                     {"node", step.node},
                     {"request_id", step.request_id}});
  }
  return {{"order_id", v.order_id}, {"steps", std::move(steps)}, {"truncated", v.truncated}};
}

}  // namespace ordermesh::protocol
