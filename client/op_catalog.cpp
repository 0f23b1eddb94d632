#include "client/op_catalog.hpp"

#include <algorithm>
#include <sstream>

namespace ordermesh::client {

namespace {

op_arg req(std::string name, std::string value, std::string help) {
  return op_arg{std::move(name), true, std::move(value), std::move(help)};
}
op_arg opt(std::string name, std::string value, std::string help) {
  return op_arg{std::move(name), false, std::move(value), std::move(help)};
}

std::vector<op_spec> make_catalog() {
  const std::string order = "the order: order_id, user_id, status, items, total_cents, ...";
  return {
      {"user.register",
       {req("user_id", "U", ""), req("password", "P", "1..1024 bytes"),
        opt("name", "N", "0..200 bytes, default the user id")},
       "anyone",
       "user_id"},
      {"user.login",
       {req("user_id", "U", ""), req("password", "P", "")},
       "anyone",
       "token, expires_at"},
      {"user.get", {req("user_id", "U", "")}, "own token or admin", "user_id, name, balance_cents"},
      {"user.deposit",
       {req("user_id", "U", ""), req("amount_cents", "N", "0..10^12"),
        req("request_id", "R", "the idempotency key; retry with the same one")},
       "own token or admin",
       "balance_cents"},
      {"product.create",
       {req("product_id", "P", ""), req("name", "N", "1..200 bytes"),
        req("price_cents", "N", "0..10^12")},
       "admin",
       "product_id, name, price_cents"},
      {"product.get", {req("product_id", "P", "")}, "anyone", "product_id, name, price_cents"},
      {"inventory.add",
       {req("product_id", "P", ""), req("quantity", "N", "1..100000"),
        req("request_id", "R", "the idempotency key; retry with the same one")},
       "admin",
       "product_id, available, reserved, sold"},
      {"inventory.get",
       {req("product_id", "P", "")},
       "anyone",
       "product_id, available, reserved, sold"},
      {"order.place",
       {req("order_id", "O", "the idempotency key; retry with the same one"),
        req("user_id", "U", ""),
        req("items", "p1:2,p2:1",
            "product:quantity pairs, or a JSON array; 1..100 distinct products")},
       "own token (for user_id) or admin",
       order + "; a REJECTED order makes orderctl exit 4"},
      {"order.pay", {req("order_id", "O", "")}, "the order's user or admin", order},
      {"order.cancel", {req("order_id", "O", "")}, "the order's user or admin", order},
      {"order.get", {req("order_id", "O", "")}, "the order's user or admin", order},
      {"order.timeline",
       {req("order_id", "O", "")},
       "the order's user or admin",
       "order_id, steps (step, outcome, at, node, request_id; oldest first), truncated"},
      {"order.list",
       {req("user_id", "U", "")},
       "own token or admin",
       "orders: the 1000 most recent"},
      {"admin.crash",
       {req("entity", "kind/id", "kind user, product, inventory or order")},
       "admin; only with orderd --enable-fault-injection",
       "nothing"},
      {"cluster.status", {}, "anyone", "node and cluster information (see also cluster-status)"},
      {"cluster-status",
       {},
       "anyone",
       "cluster.status as tables: members, controller, unreachable members, the shards each "
       "member leads, and per replica set its in-sync replicas (ISR)"},
      {"cluster.leave",
       {req("node_id", "ID", "")},
       "admin",
       "node_id, state; the node hands its shards (or replicas) to the others, then exits"},
      {"cluster.force-primary",
       {req("shard", "N", ""), req("node_id", "ID", "also spelled --node")},
       "admin. CAN LOSE ACKNOWLEDGED WRITES: only for a shard whose every in-sync replica is "
       "gone for good",
       "shard, primary, epoch, warning"},
      {"cluster.remove-member",
       {req("node_id", "ID", "also spelled --node")},
       "admin. For a node that is gone for good (its machine lost): refused for a live member "
       "(use cluster.leave), an unknown id, or when fewer live members than the replication "
       "factor would remain",
       "node_id, state (removing): each shard it held gets a new replica on a live member, "
       "which catches up and enters the in-sync set before the dead one is dropped"},
      {"admin.backup",
       {req("dir", "D",
            "absolute, new, below the node's --backup-dir; created on the node's own disk")},
       "admin",
       "node_id, cluster_id, sequence, shards (owned, with epochs), created_at_ms, dir: an "
       "online RocksDB checkpoint plus backup.json; restore with orderd --restore-from D"},
  };
}

std::string dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::vector<op_spec>& op_catalog() {
  static const std::vector<op_spec> catalog = make_catalog();
  return catalog;
}

const op_spec* find_op(std::string_view name) {
  for (const auto& op : op_catalog())
    if (op.name == name)
      return &op;
  return nullptr;
}

std::string op_help(const op_spec& op) {
  std::ostringstream out;
  out << "usage: orderctl [options] " << op.name;
  for (const auto& a : op.args)
    out << (a.required ? " --" : " [--") << dashed(a.name) << ' ' << a.value
        << (a.required ? "" : "]");
  out << "\n\n";
  if (!op.args.empty()) {
    out << "args:\n";
    for (const auto& a : op.args) {
      std::string line = "  --" + dashed(a.name) + ' ' + a.value;
      std::string note = a.help;
      if (!a.required)
        note += note.empty() ? "optional" : " (optional)";
      if (!note.empty())
        line += std::string(line.size() < 28 ? 28 - line.size() : 1, ' ') + note;
      out << line << '\n';
    }
    out << '\n';
  }
  out << "who may call it: " << op.who << "\nresult: " << op.returns << '\n';
  return out.str();
}

std::string ops_summary() {
  std::ostringstream out;
  for (const auto& op : op_catalog()) {
    std::string line = "  " + op.name;
    for (const auto& a : op.args)
      line += (a.required ? " --" : " [--") + dashed(a.name) + (a.required ? "" : "]");
    out << line;
    if (line.size() < 60)
      out << std::string(60 - line.size(), ' ');
    else
      out << "\n" << std::string(60, ' ');
    out << ' ' << op.who.substr(0, op.who.find('.')) << '\n';
  }
  return out.str();
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 0;
  const size_t limit = std::max<size_t>(1, std::min<size_t>(2, word.size() / 3));
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d <= limit && (best.empty() || d < best_distance)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace ordermesh::client
