#include "client/cluster_status_text.hpp"

#include <algorithm>
#include <map>
#include <sstream>

#include "client/reply_text.hpp"
#include "client/terminal_text.hpp"

namespace ordermesh::client {

using nlohmann::json;

namespace {

/// The strings of a JSON array, sorted ("n1,n2,n3"), or "-" when there are none.
std::string id_set(const json& ids) {
  std::vector<std::string> out;
  if (ids.is_array()) {
    for (const auto& id : ids) {
      out.push_back(scalar_text(id));
    }
  }
  std::sort(out.begin(), out.end());
  std::string text;
  for (const auto& id : out) {
    text += (text.empty() ? "" : ",") + id;
  }
  return text.empty() ? "-" : text;
}

std::string text_field(const json& object, const char* key, const char* fallback) {
  return object.contains(key) && !object[key].is_null() ? scalar_text(object[key]) : fallback;
}

void render_header(std::ostream& out, const json& status, const std::vector<std::string>& ids) {
  const std::string here = text_field(status, "node_id", "?");
  // Coordinated through etcd, or locally (a node alone): a controller, incarnations, a lease.
  const std::string kind = text_field(status, "coordination", "?");
  const std::string controller = text_field(status, "controller", "");
  out << "node " << here << " of cluster " << text_field(status, "cluster_id", "?")
      << " (incarnation " << text_field(status, "incarnation", "?") << ", lease "
      << (status.value("lease_valid", false) ? "valid" : "NOT valid") << "), "
      << (kind == "etcd"    ? "coordinated through etcd"
          : kind == "local" ? "alone (local coordination)"
                            : "coordinated by " + kind)
      << ", controller " << (controller.empty() ? "(none)" : controller) << ", "
      << text_field(status, "shard_count", "?") << " shards\n";
  std::string unreachable;
  for (const auto& id : status.value("unreachable_from_here", json::array())) {
    const std::string name = scalar_text(id);
    if (std::find(ids.begin(), ids.end(), name) != ids.end()) {
      unreachable += (unreachable.empty() ? "" : ", ") + name;
    }
  }
  out << "unreachable from " << here << ": " << (unreachable.empty() ? "(none)" : unreachable)
      << "\n\n";
}

void render_members(std::ostream& out, const json& status) {
  const std::string here = text_field(status, "node_id", "?");
  const std::string controller = text_field(status, "controller", "");
  std::vector<std::vector<std::string>> rows{
      {"NODE", "STATE", "LEADS", "CLIENT", "CLUSTER", "ACTIVE_ENTITIES", "NOTE"}};
  for (const auto& m : status.value("members", json::array())) {
    if (!m.is_object()) {
      continue;
    }
    const std::string id = text_field(m, "node_id", "?");
    std::vector<std::string> notes;
    if (id == here) {
      notes.emplace_back("this node");
    }
    if (id == controller) {
      notes.emplace_back("controller");
    }
    if (m.contains("incarnation")) {
      notes.push_back("incarnation " + scalar_text(m["incarnation"]));
    }
    std::string note;
    for (const auto& n : notes) {
      note += (note.empty() ? "" : ", ") + n;
    }
    rows.push_back({id, text_field(m, "state", "?"), text_field(m, "shards_owned", "?"),
                    text_field(m, "client_address", ""), text_field(m, "cluster_address", ""),
                    text_field(m, "active_entities", "-"), note});
  }
  print_table(out, rows, "");
}

/// One shard of the reply, the fields the tables use.
struct shard_row {
  int64_t shard = 0;
  std::string primary;
  std::string replicas;  // sorted ids, "-" for none
  std::string isr;
  size_t replica_count = 0;
  size_t isr_count = 0;
  int64_t epoch = 0;
  std::string target;  // a move in progress: the node it is handed to
};

std::vector<shard_row> shard_rows(const json& status) {
  std::vector<shard_row> rows;
  for (const auto& s : status.value("shards", json::array())) {
    if (!s.is_object() || !s.contains("shard") || !s["shard"].is_number_integer()) {
      continue;
    }
    shard_row r;
    r.shard = s["shard"].get<int64_t>();
    // "primary" since replication; "owner" is the same value, kept for older scripts.
    r.primary = text_field(s, "primary", "");
    if (r.primary.empty()) {
      r.primary = text_field(s, "owner", "");
    }
    if (r.primary.empty()) {
      r.primary = "(none)";
    }
    r.replicas = id_set(s.value("replicas", json::array()));
    r.isr = id_set(s.value("isr", json::array()));
    r.replica_count = s.value("replicas", json::array()).size();
    r.isr_count = s.value("isr", json::array()).size();
    if (s.contains("epoch") && s["epoch"].is_number_integer()) {
      r.epoch = s["epoch"].get<int64_t>();
    }
    r.target = s.contains("target") && s["target"].is_string() ? scalar_text(s["target"]) : "";
    rows.push_back(std::move(r));
  }
  return rows;
}

void render_leaders(std::ostream& out, const std::vector<shard_row>& shards,
                    const std::vector<std::string>& member_ids) {
  std::map<std::string, std::vector<int64_t>> led;
  int64_t max_epoch = 0;
  for (const auto& s : shards) {
    led[s.primary].push_back(s.shard);
    max_epoch = std::max(max_epoch, s.epoch);
  }
  // Members first, in the members table's order (those leading nothing too), then any primary
  // that is no member.
  std::vector<std::string> order = member_ids;
  for (const auto& [id, list] : led) {
    if (std::find(order.begin(), order.end(), id) == order.end()) {
      order.push_back(id);
    }
  }
  out << "\nshards each member leads (highest epoch " << max_epoch << "):\n";
  std::vector<std::vector<std::string>> rows{{"NODE", "LEADS", "SHARDS"}};
  for (const auto& id : order) {
    const auto it = led.find(id);
    const std::vector<int64_t> none;
    const auto& list = it == led.end() ? none : it->second;
    rows.push_back({id, std::to_string(list.size()), shard_ranges(list)});
  }
  print_table(out, rows, "  ");
}

void render_groups(std::ostream& out, const std::vector<shard_row>& shards) {
  // Shards with the same replicas and in-sync set: with 64 shards on 3 nodes, one or a few rows.
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> groups;
  std::map<std::pair<std::string, std::string>, bool> short_of_replicas;
  for (const auto& s : shards) {
    const auto key = std::make_pair(s.replicas, s.isr);
    groups[key].push_back(s.shard);
    short_of_replicas[key] = s.isr_count < s.replica_count;
  }
  out << "\nshard groups (replicas and in-sync replicas, ISR):\n";
  std::vector<std::vector<std::string>> rows{{"REPLICAS", "ISR", "COUNT", "SHARDS", "NOTE"}};
  for (const auto& [key, list] : groups) {
    rows.push_back({key.first, key.second, std::to_string(list.size()), shard_ranges(list),
                    short_of_replicas[key] ? "ISR smaller than the replicas" : ""});
  }
  print_table(out, rows, "  ");
  std::string moving;
  for (const auto& s : shards) {
    if (!s.target.empty()) {
      moving += (moving.empty() ? "" : ", ") + std::to_string(s.shard) + " -> " + s.target;
    }
  }
  if (!moving.empty()) {
    out << "\nmoving: " << moving << "\n";
  }
}

/// Nodes the shards still name that are no members (cluster.status "departed"): `absent`, the
/// clock of --dead-member-timeout runs; `removing`, their replicas are being replaced. The
/// members table cannot show them, and they are what an operator has to act on or wait for.
void render_departed(std::ostream& out, const json& status) {
  const json departed = status.value("departed", json::array());
  if (!departed.is_array() || departed.empty()) {
    return;
  }
  out << "\ndeparted (named by shards, no member):\n";
  std::vector<std::vector<std::string>> rows{{"NODE", "STATE", "SINCE", "BY"}};
  for (const auto& d : departed) {
    if (!d.is_object()) {
      continue;
    }
    const json since = d.value("since_ms", json());
    const std::string by = text_field(d, "by", "");
    rows.push_back({text_field(d, "node_id", "?"), text_field(d, "state", "?"),
                    since.is_number_integer() && since.get<int64_t>() > 0
                        ? utc_text(since.get<int64_t>())
                        : "-",
                    by.empty() ? "-" : by});
  }
  print_table(out, rows, "  ");
}

std::string without_trailing_blanks(const std::string& text) {
  std::istringstream lines(text);
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    const auto end = line.find_last_not_of(' ');
    out += (end == std::string::npos ? std::string() : line.substr(0, end + 1)) + '\n';
  }
  return out;
}

}  // namespace

std::string shard_ranges(std::vector<int64_t> shards) {
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  std::string out;
  for (size_t i = 0; i < shards.size();) {
    size_t j = i;
    while (j + 1 < shards.size() && shards[j + 1] == shards[j] + 1) {
      ++j;
    }
    out += (out.empty() ? "" : ",") + std::to_string(shards[i]);
    if (j > i) {
      out += "-" + std::to_string(shards[j]);
    }
    i = j + 1;
  }
  return out.empty() ? "(none)" : out;
}

std::string cluster_status_text(const json& status) {
  if (!status.is_object()) {
    return scalar_text(status) + '\n';
  }
  std::vector<std::string> member_ids;
  for (const auto& m : status.value("members", json::array())) {
    if (m.is_object()) {
      member_ids.push_back(text_field(m, "node_id", "?"));
    }
  }
  std::ostringstream out;
  render_header(out, status, member_ids);
  render_members(out, status);
  render_departed(out, status);
  const auto shards = shard_rows(status);
  if (!shards.empty()) {
    render_leaders(out, shards, member_ids);
    render_groups(out, shards);
  }
  return without_trailing_blanks(out.str());
}

}  // namespace ordermesh::client
