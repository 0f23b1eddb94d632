// orderctl: one protocol call from the command line (docs/PROTOCOL.md, "orderctl").
//
//   orderctl [options] <op> [--key value ...]
//   orderctl [options] call <op> ['<json args>']
//
// Exit codes: 0 ok, 1 error reply, 2 usage error, 3 no answer (connection failed or timed out),
// 4 a placed order ended REJECTED.
// Options are recognised anywhere on the line, so `--get token` may follow the op's args.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"
#include "client/cluster_status_text.hpp"
#include "client/op_catalog.hpp"
#include "client/reply_text.hpp"
#include "client/terminal_text.hpp"
#include "nodes/secret_file.hpp"

namespace {

using nlohmann::json;
namespace om = ordermesh::client;

constexpr int exit_ok = 0;
constexpr int exit_error_reply = 1;
constexpr int exit_usage = 2;
constexpr int exit_no_answer = 3;
constexpr int exit_rejected = 4;

constexpr const char* help_text = R"(usage: orderctl [options] <op> [--key value ...]
       orderctl [options] call <op> ['<json args>']

Sends one request to an ordermesh node and prints the result.

options (accepted anywhere on the line):
  --host H[:P][,H2:P2...]  node to talk to; repeat or separate by commas to give fallbacks,
                           tried in order (default 127.0.0.1)
  --port P                 port for hosts given without one (default 7400)
  --token T                session or admin token (default: $ORDERMESH_TOKEN); visible to
                           other local users in ps: prefer --token-file or the variable
  --token-file F           read the token from file F (mode 0600; one trailing newline is
                           dropped), e.g. a node's DATA_DIR/admin.token
  --json                   print the raw reply line instead of a readable rendering
  --get FIELD              print only this field of the result (a.b.0 for nested values)
  --timeout-ms N           how long to wait for the reply (default 5000)
  --connect-timeout-ms N   how long to wait for each host to accept (default 1000)
  --tls                    talk TLS (a node started with --client-tls-cert); the node's
                           certificate must name the --host given and chain to --cafile
  --cafile F               the CA (PEM) to verify the node's certificate with (with --tls;
                           default: the system's CA store)
  --version                print orderctl's version
  -h, --help               this text; after an op, that op's args

op args: --key value or --key=value; --user-id is the same as --user_id.
  amount_cents, price_cents and quantity are sent as integers, everything else as strings;
  --items takes a JSON array or the shorthand p1:2,p2:1 (product:quantity).

ops (orderctl OP --help for one op's args; who may call it on the right):
)";

// After the ops list (ops_summary(), from client/op_catalog.cpp).
constexpr const char* help_tail = R"(
exit status: 0 ok, 1 error reply (printed as "error <code>: <message>" on stderr),
             2 usage error, 3 no answer from any host (connect failed or timed out),
             4 order.place answered, but the order ended REJECTED (its reason on stderr)

examples:
  TOKEN=$(orderctl user.login --user-id alice --password pw --get token)
  orderctl --token "$TOKEN" order.place --order-id o1 --user-id alice --items p1:2
  orderctl --host n1:7400,n2:7400 call cluster.status '{}'
)";

/// A usage error: reported on stderr with exit status 2.
struct usage_error {
  std::string message;
};

std::string normalize_key(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c == '-') {
      c = '_';
    }
  }
  return out;
}

std::optional<int64_t> parse_integer(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

/// `--items`: a JSON array as is, or "p1:2,p2:1".
json parse_items(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first != std::string::npos && text[first] == '[') {
    json items = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (items.is_discarded() || !items.is_array()) {
      throw usage_error{"--items: not a valid JSON array"};
    }
    return items;
  }
  json items = json::array();
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view entry = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const auto colon = entry.rfind(':');
    const auto quantity =
        colon == std::string_view::npos ? std::nullopt : parse_integer(entry.substr(colon + 1));
    if (!quantity || colon == 0) {
      throw usage_error{"--items: expected product:quantity[,product:quantity...], got '" +
                        std::string(entry) + "'"};
    }
    items.push_back({{"product_id", std::string(entry.substr(0, colon))}, {"quantity", *quantity}});
  }
  if (items.empty()) {
    throw usage_error{"--items: no items given"};
  }
  return items;
}

json arg_value(const std::string& key, const std::string& value) {
  if (key == "amount_cents" || key == "price_cents" || key == "quantity" || key == "shard") {
    auto number = parse_integer(value);
    if (!number) {
      throw usage_error{"--" + key + " expects an integer, got '" + value + "'"};
    }
    return *number;
  }
  if (key == "items") {
    return parse_items(value);
  }
  return value;
}

struct command_line {
  std::vector<std::string> hosts;
  uint16_t port = om::default_port;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  bool raw_json = false;
  bool tls = false;
  std::optional<std::string> cafile;
  std::optional<std::string> get_field;
  int64_t timeout_ms = 5000;
  int64_t connect_timeout_ms = 1000;
  bool help = false;
  bool version = false;
  std::string op;
  json args = json::object();
};

int64_t positive_option(const std::string& name, const std::string& value) {
  auto number = parse_integer(value);
  if (!number || *number <= 0) {
    throw usage_error{"--" + name + " expects a positive integer, got '" + value + "'"};
  }
  return *number;
}

using ordermesh::client::closest;
using ordermesh::client::find_op;
using ordermesh::client::op_catalog;
using ordermesh::client::op_spec;
using ordermesh::client::print_table;
using ordermesh::client::printable;
using ordermesh::client::scalar_text;
using ordermesh::client::utc_text;

std::string dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

/// The options orderctl itself takes (not sent to the node), for suggestions.
const std::vector<std::string>& global_options() {
  static const std::vector<std::string> names{"host", "port",    "token",      "token_file",
                                              "json", "get",     "timeout_ms", "connect_timeout_ms",
                                              "help", "version", "tls",        "cafile"};
  return names;
}

usage_error unknown_op(const std::string& op) {
  std::vector<std::string> names;
  for (const auto& o : op_catalog()) {
    names.push_back(o.name);
  }
  const std::string near = closest(op, names);
  return usage_error{"unknown op '" + printable(op) + "'" +
                     (near.empty() ? "" : " (did you mean " + near + "?)") +
                     "; orderctl --help lists the ops, orderctl call OP '<json>' sends any op"};
}

/// An arg the op does not take is a usage error (the node would ignore it), with the nearest
/// arg or global option as a suggestion: `--usr-id` is a typo, not a new arg.
void check_arg_known(const op_spec& spec, const std::string& key) {
  std::vector<std::string> names;
  for (const auto& a : spec.args) {
    if (a.name == key) {
      return;
    }
    names.push_back(a.name);
  }
  names.insert(names.end(), global_options().begin(), global_options().end());
  const std::string near = closest(key, names);
  throw usage_error{spec.name + " takes no --" + printable(dashed(key)) +
                    (near.empty() ? "" : " (did you mean --" + dashed(near) + "?)") +
                    "; orderctl " + spec.name + " --help lists its args"};
}

/// An option that is neither orderctl's nor an arg `spec` takes (null: none is),
/// with the nearest global option as a suggestion: `--colour`, `--jsn`.
usage_error unknown_option(const std::string& key, const op_spec* spec, const std::string& hint) {
  std::vector<std::string> names = global_options();
  if (spec != nullptr) {
    for (const auto& a : spec->args) {
      names.push_back(a.name);
    }
  }
  const std::string near = closest(key, names);
  return usage_error{"unknown option --" + printable(dashed(key)) +
                     (near.empty() ? "" : " (did you mean --" + dashed(near) + "?)") + hint};
}

bool takes_arg(const op_spec* spec, const std::string& key) {
  return spec != nullptr && std::any_of(spec->args.begin(), spec->args.end(),
                                        [&key](const auto& a) { return a.name == key; });
}

/// `call OP '<json>' --key ...`: an arg of OP given the named way, or an option orderctl does
/// not know (the old message, "--colour needs a value", hid that it is unknown).
usage_error option_after_call(const std::string& key, const std::vector<std::string>& positional) {
  const op_spec* spec = positional.size() > 1 ? find_op(positional[1]) : nullptr;
  if (takes_arg(spec, key)) {
    return usage_error{"call takes its args as JSON, not as --" + dashed(key)};
  }
  return unknown_option(key, nullptr, "; call takes the op's args as JSON (orderctl --help)");
}

/// The last word is an option without its value. Say "needs a value" only when the option
/// exists: an unknown one is a typo, and saying so (with a suggestion) is what helps.
usage_error missing_value(const std::string& key, const std::vector<std::string>& positional) {
  const auto& globals = global_options();
  if (std::find(globals.begin(), globals.end(), key) != globals.end() || positional.empty()) {
    return usage_error{"--" + dashed(key) + " needs a value"};
  }
  if (positional[0] == "call") {
    return option_after_call(key, positional);
  }
  const op_spec* spec = find_op(positional[0]);
  if (spec == nullptr) {
    return unknown_op(positional[0]);
  }
  if (takes_arg(spec, key)) {
    return usage_error{"--" + dashed(key) + " needs a value"};
  }
  return unknown_option(key, spec, "; orderctl " + spec->name + " --help lists its args");
}

command_line parse_command_line(int argc, char** argv) {
  command_line cl;
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> op_args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "-h" || word == "--help") {
      cl.help = true;
      continue;
    }
    if (word.size() < 3 || word.substr(0, 2) != "--") {
      positional.emplace_back(word);
      continue;
    }
    // --key value or --key=value
    std::string key;
    std::optional<std::string> value;
    const auto eq = word.find('=');
    key = normalize_key(word.substr(2, eq == std::string_view::npos ? word.npos : eq - 2));
    if (eq != std::string_view::npos) {
      value = std::string(word.substr(eq + 1));
    }
    if (key == "json" || key == "version" || key == "tls") {
      if (value) {
        throw usage_error{"--" + key + " takes no value"};
      }
      (key == "json" ? cl.raw_json : key == "tls" ? cl.tls : cl.version) = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) {
        throw missing_value(key, positional);
      }
      value = argv[++i];
    }
    if (key == "host") {
      cl.hosts.push_back(*value);
    } else if (key == "port") {
      const auto port = parse_integer(*value);
      if (!port || *port <= 0 || *port > 65535) {
        throw usage_error{"--port expects 1..65535, got '" + *value + "'"};
      }
      cl.port = static_cast<uint16_t>(*port);
    } else if (key == "token") {
      cl.token = *value;
    } else if (key == "token_file") {
      cl.token_file = *value;
    } else if (key == "cafile") {
      cl.cafile = *value;
    } else if (key == "get") {
      cl.get_field = *value;
    } else if (key == "timeout_ms") {
      cl.timeout_ms = positive_option("timeout-ms", *value);
    } else if (key == "connect_timeout_ms") {
      cl.connect_timeout_ms = positive_option("connect-timeout-ms", *value);
    } else if (key.empty()) {
      throw usage_error{"empty option name in '" + std::string(word) + "'"};
    } else {
      op_args.emplace_back(key, *value);
    }
  }
  if (cl.version) {
    return cl;
  }
  if (cl.cafile && !cl.tls) {
    throw usage_error{"--cafile is for TLS: give --tls with it"};
  }
  if (cl.help) {
    // `orderctl OP --help`: that op's args; `orderctl call ... --help` and `--help`: all.
    if (!positional.empty() && positional[0] != "call") {
      cl.op = positional[0];
      if (find_op(cl.op) == nullptr) {
        throw unknown_op(cl.op);
      }
    }
    return cl;
  }
  if (positional.empty()) {
    if (!op_args.empty()) {
      // `orderctl --bogus user.get`: --bogus is no global option, and it took the op as its
      // value. Say that, not only that the op is missing.
      auto name = op_args[0].first;
      std::replace(name.begin(), name.end(), '_', '-');
      throw usage_error{"unknown option --" + name + " (it took '" + op_args[0].second +
                        "' as its value, so no op is left; an op's own args come after the op; "
                        "try orderctl --help)"};
    }
    throw usage_error{"no op given (try orderctl --help)"};
  }
  if (positional[0] == "call") {
    if (positional.size() < 2 || positional.size() > 3) {
      throw usage_error{"usage: orderctl [options] call <op> ['<json args>']"};
    }
    if (!op_args.empty()) {
      throw option_after_call(op_args[0].first, positional);
    }
    cl.op = positional[1];
    if (positional.size() == 3) {
      cl.args = json::parse(positional[2], nullptr, /*allow_exceptions=*/false);
      if (cl.args.is_discarded()) {
        throw usage_error{"call: args are not valid JSON: " + positional[2]};
      }
    }
    return cl;
  }
  if (positional.size() > 1) {
    throw usage_error{"unexpected argument '" + positional[1] + "' (args are --key value)"};
  }
  cl.op = positional[0];
  const op_spec* spec = find_op(cl.op);
  if (spec == nullptr) {
    throw unknown_op(cl.op);
  }
  for (auto [key, value] : op_args) {
    if (key == "node" && (cl.op == "cluster.force-primary" || cl.op == "cluster.remove-member")) {
      key = "node_id";  // the issue's and the docs' spelling: --node ID
    }
    check_arg_known(*spec, key);
    if (cl.args.contains(key)) {
      throw usage_error{"--" + key + " given twice"};
    }
    cl.args[key] = arg_value(key, value);
  }
  for (const auto& a : spec->args) {
    if (a.required && !cl.args.contains(a.name)) {
      throw usage_error{cl.op + " needs --" + dashed(a.name) + " (orderctl " + cl.op +
                        " --help lists its args)"};
    }
  }
  return cl;
}

// ---- readable rendering ----

// Every string printed from a reply goes through printable() (declared above): a name with a
// newline or ESC codes must not fake a line or drive the terminal (client/terminal_text.hpp).

/// A multi-line dump made printable line by line (its own line breaks stay).
std::string printable_lines(const std::string& text) {
  std::string out;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find('\n', start);
    out += printable(std::string_view(text).substr(start, end - start));
    if (end == std::string::npos) {
      return out;
    }
    out += '\n';
    start = end + 1;
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// A value with a human hint for times and money: "1500 (15.00)", "17000... (2023-...Z)".
std::string decorated(const std::string& key, const json& v) {
  std::string text = scalar_text(v);
  if (!v.is_number_integer()) {
    return text;
  }
  const auto n = v.get<int64_t>();
  if (ends_with(key, "_at") && n > 0) {
    return text + " (" + utc_text(n) + ")";
  }
  if (ends_with(key, "_cents") && n > -1000000000000000000 && n < 1000000000000000000) {
    std::ostringstream out;
    out << text << " (" << (n < 0 ? "-" : "") << (std::llabs(n) / 100) << '.' << std::setw(2)
        << std::setfill('0') << (std::llabs(n) % 100) << ')';
    return out.str();
  }
  return text;
}

size_t key_width(const json& object) {
  size_t width = 0;
  for (const auto& [key, value] : object.items()) {
    width = std::max(width, key.size());
  }
  return width;
}

void render_object(std::ostream& out, const json& object, const std::string& indent);

void render_field(std::ostream& out, const std::string& key, const json& v, size_t width,
                  const std::string& indent) {
  out << indent << printable(key) << ':';
  if (v.is_object()) {
    out << (v.empty() ? " {}\n" : "\n");
    render_object(out, v, indent + "  ");
    return;
  }
  if (v.is_array()) {
    bool flat = true;
    for (const auto& e : v) {
      flat = flat && !e.is_structured();
    }
    if (flat) {
      out << std::string(width - key.size() + 1, ' ');
      for (size_t i = 0; i < v.size(); ++i) {
        out << (i == 0 ? "" : ", ") << scalar_text(v[i]);
      }
      out << (v.empty() ? "(none)\n" : "\n");
      return;
    }
    out << '\n';
    for (const auto& e : v) {
      out << indent << "  - " << scalar_text(e) << '\n';
    }
    return;
  }
  out << std::string(width - key.size() + 1, ' ') << decorated(key, v) << '\n';
}

void render_object(std::ostream& out, const json& object, const std::string& indent) {
  const size_t width = key_width(object);
  for (const auto& [key, value] : object.items()) {
    render_field(out, key, value, width, indent);
  }
}

std::string items_shorthand(const json& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) {
      out += ',';
    }
    out += scalar_text(item.value("product_id", json("?"))) + ":" +
           scalar_text(item.value("quantity", json("?")));
  }
  return out.size() > 40 ? out.substr(0, 37) + "..." : out;
}

void render_order(std::ostream& out, const json& order) {
  json head = order;
  head.erase("items");
  // Fixed order for the fields people look at first; anything else follows.
  static const char* order_keys[] = {"order_id",    "user_id",    "status",     "reason",
                                     "total_cents", "created_at", "updated_at", "expires_at"};
  const size_t width = key_width(head);
  for (const char* key : order_keys) {
    if (head.contains(key)) {
      render_field(out, key, head[key], width, "");
      head.erase(key);
    }
  }
  render_object(out, head, "");
  std::vector<std::vector<std::string>> rows{{"PRODUCT", "QUANTITY", "UNIT_PRICE_CENTS"}};
  for (const auto& item : order["items"]) {
    if (!item.is_object()) {
      continue;
    }
    rows.push_back({scalar_text(item.value("product_id", json(""))),
                    scalar_text(item.value("quantity", json(""))),
                    scalar_text(item.value("unit_price_cents", json("")))});
  }
  out << "items:\n";
  print_table(out, rows, "  ");
}

void render_order_list(std::ostream& out, const json& orders) {
  std::vector<std::vector<std::string>> rows{
      {"ORDER_ID", "STATUS", "TOTAL_CENTS", "ITEMS", "UPDATED_AT"}};
  for (const auto& order : orders) {
    if (!order.is_object()) {
      continue;
    }
    const json updated = order.value("updated_at", json(0));
    rows.push_back({scalar_text(order.value("order_id", json(""))),
                    scalar_text(order.value("status", json(""))),
                    scalar_text(order.value("total_cents", json(""))),
                    items_shorthand(order.value("items", json::array())),
                    updated.is_number_integer() ? utc_text(updated.get<int64_t>()) : ""});
  }
  print_table(out, rows, "");
  out << "(" << orders.size() << (orders.size() == 1 ? " order" : " orders") << ")\n";
}

void render_result(std::ostream& out, const json& result);

/// order.timeline: one line per step, oldest first.
void render_timeline(std::ostream& out, const json& timeline) {
  out << "order_id: " << scalar_text(timeline.value("order_id", json(""))) << '\n';
  std::vector<std::vector<std::string>> rows{{"AT", "STEP", "OUTCOME", "NODE", "REQUEST_ID"}};
  for (const auto& step : timeline["steps"]) {
    if (!step.is_object()) {
      continue;
    }
    const json at = step.value("at", json(0));
    rows.push_back({at.is_number_integer() ? utc_text(at.get<int64_t>()) : "",
                    scalar_text(step.value("step", json(""))),
                    scalar_text(step.value("outcome", json(""))),
                    scalar_text(step.value("node", json(""))),
                    scalar_text(step.value("request_id", json("")))});
  }
  print_table(out, rows, "");
  if (timeline.value("truncated", false)) {
    out << "(older steps left out)\n";
  }
}

void render_result(std::ostream& out, const json& result) {
  if (!result.is_object()) {
    out << printable_lines(result.dump(2, ' ', false, json::error_handler_t::replace)) << '\n';
  } else if (result.empty()) {
    out << "ok\n";
  } else if (result.contains("order_id") && result.contains("items") &&
             result["items"].is_array()) {
    render_order(out, result);
  } else if (result.contains("order_id") && result.contains("steps") &&
             result["steps"].is_array()) {
    render_timeline(out, result);
  } else if (result.size() == 1 && result.contains("orders") && result["orders"].is_array()) {
    render_order_list(out, result["orders"]);
  } else {
    render_object(out, result, "");
  }
}

/// `--get a.b.0`: walks objects by key and arrays by index.
const json* find_field(const json& root, const std::string& path) {
  const json* at = &root;
  std::string_view rest = path;
  while (at != nullptr) {
    const auto dot = rest.find('.');
    const std::string part(rest.substr(0, dot));
    if (at->is_object()) {
      auto it = at->find(part);
      at = it == at->end() ? nullptr : &*it;
    } else if (at->is_array()) {
      auto index = parse_integer(part);
      at = index && *index >= 0 && static_cast<size_t>(*index) < at->size()
               ? &(*at)[static_cast<size_t>(*index)]
               : nullptr;
    } else {
      at = nullptr;
    }
    if (dot == std::string_view::npos) {
      break;
    }
    rest = rest.substr(dot + 1);
  }
  return at;
}

int run(int argc, char** argv) {
  command_line cl = parse_command_line(argc, argv);
  if (cl.version) {
    std::cout << "orderctl " << ORDERMESH_VERSION << '\n';
    return exit_ok;
  }
  if (cl.help) {
    if (!cl.op.empty()) {
      std::cout << ordermesh::client::op_help(*find_op(cl.op));
    } else {
      std::cout << help_text << ordermesh::client::ops_summary() << help_tail;
    }
    return exit_ok;
  }

  om::options opts;
  opts.endpoints.clear();
  for (const auto& host : cl.hosts) {
    std::string error;
    if (!om::parse_endpoints(host, cl.port, opts.endpoints, error)) {
      throw usage_error{"--host: " + error};
    }
  }
  if (opts.endpoints.empty()) {
    opts.endpoints.push_back(om::endpoint{"127.0.0.1", cl.port});
  }
  opts.call_timeout = std::chrono::milliseconds(cl.timeout_ms);
  opts.connect_timeout = std::chrono::milliseconds(cl.connect_timeout_ms);
  opts.tls = cl.tls;
  opts.cafile = cl.cafile.value_or("");

  std::string token;
  if (cl.token && cl.token_file) {
    throw usage_error{"--token and --token-file exclude each other: give one"};
  }
  if (cl.token_file) {
    std::string why;
    auto secret = ordermesh::secrets::read_secret_file(*cl.token_file, &why);
    if (!secret) {
      throw usage_error{"--token-file: " + why};
    }
    token = std::move(*secret);
  } else if (cl.token) {
    token = *cl.token;
  } else if (const char* env = std::getenv("ORDERMESH_TOKEN")) {
    token = env;
  }

  // `cluster-status` is cluster.status rendered as tables.
  const bool cluster_table = cl.op == "cluster-status";
  om::client client(opts);
  const om::reply reply = client.call(cluster_table ? "cluster.status" : cl.op, cl.args, token);

  if (cl.raw_json) {
    std::cout << ordermesh::client::printable_json_line(reply.line) << '\n';
  }
  if (!reply.ok) {
    std::cerr << "error " << printable(reply.code) << ": " << printable(reply.message) << '\n';
    return reply.local && (reply.code == "unavailable" || reply.code == "timeout")
               ? exit_no_answer
               : exit_error_reply;
  }
  if (cl.raw_json) {
    return exit_ok;
  }
  if (cl.get_field) {
    const json* field = find_field(reply.result, *cl.get_field);
    if (field == nullptr) {
      std::cerr << "error: no field '" << *cl.get_field << "' in the result\n";
      return exit_error_reply;
    }
    std::cout << scalar_text(*field) << '\n';
    return exit_ok;
  }
  if (cluster_table) {
    std::cout << ordermesh::client::cluster_status_text(reply.result);
  } else {
    render_result(std::cout, reply.result);
  }
  // A placement the node answered, but whose order ended REJECTED (no stock, no such user):
  // scripts must not take it for a placed order.
  if (cl.op == "order.place" && reply.result.is_object() &&
      reply.result.value("status", json("")) == "REJECTED") {
    std::cerr << "order " << printable(reply.result.value("order_id", std::string())) << " REJECTED"
              << (reply.result.contains("reason") ? ": " + scalar_text(reply.result["reason"])
                                                  : std::string())
              << '\n';
    return exit_rejected;
  }
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "orderctl: " << e.message << '\n';
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "orderctl: " << e.what() << '\n';
    return exit_error_reply;
  }
}
