#include "cluster/coordination/coordination_codec.hpp"

#include <algorithm>
#include <charconv>
#include <exception>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

namespace ordermesh::cluster::coordination::codec {

namespace {

using json = nlohmann::json;

error invalid(std::string message) {
  return error{errc::invalid, std::move(message)};
}

/// The deepest nesting of [ and { outside strings, stopping early past `limit`: checked before
/// parsing so that a hostile value cannot make the parser recurse deep.
int nesting_depth(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit)
        return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

/// Parses `text` as a JSON object, or says why not. Never throws.
std::optional<json> parse_object(std::string_view text, const char* what, std::string& why) {
  if (text.size() > max_value_bytes) {
    why = std::string(what) + ": value of " + std::to_string(text.size()) + " bytes is too large";
    return std::nullopt;
  }
  if (nesting_depth(text, max_value_depth) > max_value_depth) {
    why = std::string(what) + ": value nested too deep";
    return std::nullopt;
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    why = std::string(what) + ": value is not JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    why = std::string(what) + ": value is not a JSON object";
    return std::nullopt;
  }
  return j;
}

/// A positive int64 written as a decimal string (how int64 values travel in JSON here).
bool parse_positive(const std::string& decimal, int64_t& out) {
  int64_t i = 0;
  auto [end, ec] = std::from_chars(decimal.data(), decimal.data() + decimal.size(), i);
  if (ec != std::errc() || end != decimal.data() + decimal.size() || i <= 0)
    return false;
  out = i;
  return true;
}

/// Reads typed fields of one object, remembering the first problem.
class reader {
 public:
  reader(const json& j, const char* what) : j_(j), what_(what) {}

  bool ok() const { return problem_.empty(); }
  error err() const { return invalid(std::string(what_) + ": " + problem_); }

  std::string text(const char* field, bool required) {
    const json* v = find(field, required);
    if (!v)
      return {};
    if (!v->is_string()) {
      fail(field, "is not a string");
      return {};
    }
    return v->get<std::string>();
  }

  bool flag(const char* field) {
    const json* v = find(field, false);
    if (!v)
      return false;
    if (!v->is_boolean()) {
      fail(field, "is not a boolean");
      return false;
    }
    return v->get<bool>();
  }

  /// An integer in [lo, hi].
  uint64_t number(const char* field, uint64_t lo, uint64_t hi) {
    const json* v = find(field, true);
    if (!v)
      return 0;
    if (!v->is_number_unsigned()) {
      // A negative, fractional or non-numeric value.
      fail(field, "is not a non-negative integer");
      return 0;
    }
    auto n = v->get<uint64_t>();
    if (n < lo || n > hi) {
      fail(field, "is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return 0;
    }
    return n;
  }

  /// An optional positive int64 written as a decimal string (0 when absent).
  int64_t decimal(const char* field) {
    auto t = text(field, false);
    int64_t out = 0;
    if (!t.empty() && !parse_positive(t, out))
      fail(field, "is not a positive decimal");
    return out;
  }

  std::vector<std::string> texts(const char* field) {
    std::vector<std::string> out;
    const json* v = find(field, false);
    if (!v)
      return out;
    if (!v->is_array()) {
      fail(field, "is not an array");
      return out;
    }
    for (const auto& e : *v) {
      if (!e.is_string()) {
        fail(field, "holds a non-string");
        return {};
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }

 private:
  const json* find(const char* field, bool required) {
    auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) {
      if (required)
        fail(field, "is missing");
      return nullptr;
    }
    return &*it;
  }
  void fail(const char* field, const std::string& why) {
    if (problem_.empty())
      problem_ = std::string("field \"") + field + "\" " + why;
  }

  const json& j_;
  const char* what_;
  std::string problem_;
};

/// Runs `decode(reader&)` on the parsed object; a bad value or any exception becomes invalid.
template <class T, class Decode>
result<T> decode_object(std::string_view text, const char* what, Decode&& decode) {
  try {
    std::string why;
    auto j = parse_object(text, what, why);
    if (!j)
      return invalid(why);
    reader r(*j, what);
    T out = decode(r);
    if (!r.ok())
      return r.err();
    return out;
  } catch (const std::exception& e) {
    return invalid(std::string(what) + ": " + e.what());
  }
}

/// Dumps without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

}  // namespace

key_layout::key_layout(std::string_view cluster)
    : prefix_("/ordermesh/" + std::string(cluster) + "/") {}

bool key_layout::valid_cluster_name(std::string_view cluster) {
  if (cluster.empty() || cluster.size() > 128)
    return false;
  for (char c : cluster) {
    if (!is_name_char(c))
      return false;
  }
  return true;
}

std::string key_layout::member(std::string_view node_id) const {
  return members_prefix() + std::string(node_id);
}

std::string key_layout::shard(uint16_t shard) const {
  std::string digits = std::to_string(shard);
  return shards_prefix() + std::string(5 - digits.size(), '0') + digits;
}

std::string key_layout::departure(departure_kind k, std::string_view node_id) const {
  return prefix_ + std::string(to_string(k)) + "/" + std::string(node_id);
}

key_layout::parsed key_layout::parse(std::string_view key) const {
  parsed p;
  if (key.substr(0, prefix_.size()) != prefix_)
    return p;
  std::string_view rest = key.substr(prefix_.size());
  constexpr std::string_view members = "members/";
  constexpr std::string_view shards = "shards/";
  constexpr std::string_view absent = "absent/";
  constexpr std::string_view removed = "removed/";
  auto under = [&](std::string_view dir) {
    return rest.substr(0, dir.size()) == dir && rest.size() > dir.size();
  };
  if (rest == "config") {
    p.what = kind::config;
  } else if (rest == "controller") {
    p.what = kind::controller;
  } else if (rest.substr(0, members.size()) == members && rest.size() > members.size()) {
    p.what = kind::member;
    p.node_id = std::string(rest.substr(members.size()));
  } else if (under(absent)) {
    p.what = kind::absent;
    p.node_id = std::string(rest.substr(absent.size()));
  } else if (under(removed)) {
    p.what = kind::removed;
    p.node_id = std::string(rest.substr(removed.size()));
  } else if (rest.substr(0, shards.size()) == shards) {
    std::string_view digits = rest.substr(shards.size());
    uint32_t n = 0;
    bool ok = digits.size() == 5;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (ok && n <= std::numeric_limits<uint16_t>::max()) {
      p.what = kind::shard;
      p.shard = static_cast<uint16_t>(n);
    } else {
      p.bad_shard_key = true;
    }
  }
  return p;
}

std::string encode_member(const member_record& m) {
  json j = {{"node_id", m.node_id},
            {"cluster_address", m.cluster_address},
            {"client_address", m.client_address},
            {"leaving", m.leaving}};
  if (m.disk > 0)
    j["disk"] = std::to_string(m.disk);  // a decimal string, like the other int64 fields
  if (m.draining)
    j["draining"] = true;  // absent when false: older nodes read the same records
  return dump(j);
}

result<member_record> decode_member(std::string_view text) {
  return decode_object<member_record>(text, "member", [](reader& r) {
    member_record m;
    m.node_id = r.text("node_id", true);
    m.cluster_address = r.text("cluster_address", false);
    m.client_address = r.text("client_address", false);
    m.leaving = r.flag("leaving");
    m.disk = r.decimal("disk");
    m.draining = r.flag("draining");
    return m;
  });
}

std::string encode_departure(const departure_record& d) {
  json j = {{"node_id", d.node_id}, {"since_ms", d.since_ms}};
  if (!d.by.empty())
    j["by"] = d.by;
  return dump(j);
}

result<departure_record> decode_departure(std::string_view text) {
  return decode_object<departure_record>(text, "departure", [](reader& r) {
    departure_record d;
    d.node_id = r.text("node_id", true);
    d.since_ms = static_cast<int64_t>(
        r.number("since_ms", 0, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
    d.by = r.text("by", false);
    return d;
  });
}

std::string encode_controller(const controller_value& c) {
  return dump(json{{"node_id", c.node_id}, {"incarnation", c.incarnation}});
}

result<controller_value> decode_controller(std::string_view text) {
  auto out = decode_object<controller_value>(text, "controller", [](reader& r) {
    controller_value c;
    c.node_id = r.text("node_id", true);
    c.incarnation = static_cast<int64_t>(
        r.number("incarnation", 1, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
    return c;
  });
  if (out && out.value().node_id.empty())
    return invalid("controller: field \"node_id\" is empty");
  return out;
}

std::string encode_config(const cluster_config& c) {
  return dump(json{{"cluster_id", c.cluster_id},
                   {"shard_count", c.shard_count},
                   {"replication_factor", c.replication_factor},
                   {"min_insync", c.min_insync}});
}

result<cluster_config> decode_config(std::string_view text) {
  return decode_object<cluster_config>(text, "config", [](reader& r) {
    constexpr uint64_t max16 = std::numeric_limits<uint16_t>::max();
    cluster_config c;
    c.cluster_id = r.text("cluster_id", true);
    c.shard_count = static_cast<uint16_t>(r.number("shard_count", 1, max16));
    c.replication_factor = static_cast<uint16_t>(r.number("replication_factor", 1, max16));
    c.min_insync = static_cast<uint16_t>(r.number("min_insync", 1, max16));
    return c;
  });
}

std::string encode_shard(const shard_assignment& s) {
  json j{{"shard", s.shard},       {"epoch", s.epoch}, {"primary", s.primary},
         {"replicas", s.replicas}, {"isr", s.isr},     {"target", s.target}};
  // Decimal strings, like the gateway's own int64 fields (docs/REPLICATION.md); left out when
  // empty, so values written before replication read back the same.
  if (!s.isr_disks.empty()) {
    json incarnations = json::array();
    for (auto i : s.isr_disks)
      incarnations.push_back(std::to_string(i));
    j["isr_disks"] = std::move(incarnations);
  }
  return dump(j);
}

result<shard_assignment> decode_shard(std::string_view text) {
  auto out = decode_object<shard_assignment>(text, "shard", [](reader& r) {
    shard_assignment s;
    s.shard = static_cast<uint16_t>(r.number("shard", 0, std::numeric_limits<uint16_t>::max()));
    s.epoch = r.number("epoch", 1, std::numeric_limits<uint64_t>::max());
    s.primary = r.text("primary", true);
    s.replicas = r.texts("replicas");
    s.isr = r.texts("isr");
    for (const auto& decimal : r.texts("isr_disks")) {
      int64_t i = 0;
      if (!parse_positive(decimal, i))
        i = 0;  // refused below
      s.isr_disks.push_back(i);
    }
    s.target = r.text("target", false);
    return s;
  });
  if (out && out.value().primary.empty())
    return invalid("shard: field \"primary\" is empty");
  if (out) {
    const auto& a = out.value();
    if (!a.isr_disks.empty() && a.isr_disks.size() != a.isr.size())
      return invalid("shard: field \"isr_disks\" does not match \"isr\"");
    for (auto i : a.isr_disks)
      if (i <= 0)
        return invalid("shard: field \"isr_disks\" holds a non-positive or non-decimal value");
  }
  return out;
}

member_record resolve_controller(const controller_value& c,
                                 const std::vector<member_record>& members) {
  for (const auto& m : members) {
    if (m.node_id == c.node_id && m.incarnation == c.incarnation)
      return m;
  }
  member_record gone;
  gone.node_id = c.node_id;
  gone.incarnation = c.incarnation;
  return gone;
}

result<cluster_state> decode_state(const key_layout& keys, int64_t revision,
                                   const std::vector<etcd::key_value>& kvs) {
  auto bad_key = [](const std::string& key, const std::string& why) {
    return invalid("key " + key + ": " + why);
  };
  cluster_state st;
  st.revision = revision;
  std::optional<controller_value> controller;
  std::map<uint16_t, shard_assignment> shards;
  for (const auto& kv : kvs) {
    auto p = keys.parse(kv.key);
    switch (p.what) {
      case key_layout::kind::config: {
        auto c = decode_config(kv.value);
        if (!c)
          return bad_key(kv.key, c.err().message);
        st.config = std::move(c.value());
        st.config_revision = kv.create_revision;
        break;
      }
      case key_layout::kind::controller: {
        auto c = decode_controller(kv.value);
        if (!c)
          return bad_key(kv.key, c.err().message);
        controller = std::move(c.value());
        break;
      }
      case key_layout::kind::member: {
        auto m = decode_member(kv.value);
        if (!m)
          return bad_key(kv.key, m.err().message);
        if (m.value().node_id != p.node_id)
          return bad_key(kv.key, "holds member " + m.value().node_id);
        m.value().incarnation = kv.create_revision;
        st.members.push_back(std::move(m.value()));
        break;
      }
      case key_layout::kind::shard: {
        auto s = decode_shard(kv.value);
        if (!s)
          return bad_key(kv.key, s.err().message);
        if (s.value().shard != p.shard)
          return bad_key(kv.key, "holds shard " + std::to_string(s.value().shard));
        s.value().mod_revision = kv.mod_revision;
        shards[p.shard] = std::move(s.value());
        break;
      }
      case key_layout::kind::absent:
      case key_layout::kind::removed: {
        auto d = decode_departure(kv.value);
        if (!d)
          return bad_key(kv.key, d.err().message);
        if (d.value().node_id != p.node_id)
          return bad_key(kv.key, "holds node " + d.value().node_id);
        d.value().mod_revision = kv.mod_revision;
        (p.what == key_layout::kind::absent ? st.absent : st.removed)
            .push_back(std::move(d.value()));
        break;
      }
      case key_layout::kind::other:
        if (p.bad_shard_key)
          return bad_key(kv.key, "is not a shard key (shards/ and 5 digits)");
        break;
    }
  }
  std::sort(st.members.begin(), st.members.end(),
            [](const member_record& a, const member_record& b) { return a.node_id < b.node_id; });
  auto by_id = [](const departure_record& a, const departure_record& b) {
    return a.node_id < b.node_id;
  };
  std::sort(st.absent.begin(), st.absent.end(), by_id);
  std::sort(st.removed.begin(), st.removed.end(), by_id);
  if (st.config) {
    st.shards.reserve(st.config->shard_count);
    for (uint32_t i = 0; i < st.config->shard_count; ++i) {
      auto it = shards.find(static_cast<uint16_t>(i));
      if (it == shards.end()) {
        return bad_key(
            keys.shard(static_cast<uint16_t>(i)),
            "is missing (the config says " + std::to_string(st.config->shard_count) + " shards)");
      }
      st.shards.push_back(std::move(it->second));
    }
  }
  if (controller)
    st.controller = resolve_controller(*controller, st.members);
  return st;
}

}  // namespace ordermesh::cluster::coordination::codec
