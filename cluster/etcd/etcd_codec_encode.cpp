// The request half of the codec (etcd_codec.hpp): structs to JSON bodies. Every int64 goes out
// as a string and every key and value as base64, as the gateway writes them; fields at their
// default are left out, as etcd does.
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "cluster/etcd/etcd_base64.hpp"
#include "cluster/etcd/etcd_codec.hpp"

namespace ordermesh::etcd {

using json = nlohmann::json;

namespace {

// int64 fields go out as strings, as etcd's gateway writes them (and parses either form).
std::string i64(int64_t v) {
  return std::to_string(v);
}

json range_json(const range_request& r) {
  json j = json::object();
  j["key"] = base64_encode(r.key);
  if (!r.range_end.empty()) {
    j["range_end"] = base64_encode(r.range_end);
  }
  if (r.limit != 0) {
    j["limit"] = i64(r.limit);
  }
  if (r.revision != 0) {
    j["revision"] = i64(r.revision);
  }
  if (r.keys_only) {
    j["keys_only"] = true;
  }
  if (r.count_only) {
    j["count_only"] = true;
  }
  return j;
}

json put_json(const put_request& r) {
  json j = json::object();
  j["key"] = base64_encode(r.key);
  j["value"] = base64_encode(r.value);
  if (r.lease != 0) {
    j["lease"] = i64(r.lease);
  }
  if (r.prev_kv) {
    j["prev_kv"] = true;
  }
  return j;
}

json delete_json(const delete_request& r) {
  json j = json::object();
  j["key"] = base64_encode(r.key);
  if (!r.range_end.empty()) {
    j["range_end"] = base64_encode(r.range_end);
  }
  if (r.prev_kv) {
    j["prev_kv"] = true;
  }
  return j;
}

const char* target_name(compare_target t) {
  switch (t) {
    case compare_target::value:
      return "VALUE";
    case compare_target::version:
      return "VERSION";
    case compare_target::create:
      return "CREATE";
    case compare_target::mod:
      return "MOD";
    case compare_target::lease:
      return "LEASE";
  }
  return "CREATE";
}

const char* result_name(compare_result r) {
  switch (r) {
    case compare_result::equal:
      return "EQUAL";
    case compare_result::greater:
      return "GREATER";
    case compare_result::less:
      return "LESS";
    case compare_result::not_equal:
      return "NOT_EQUAL";
  }
  return "EQUAL";
}

json compare_json(const compare& c) {
  json j = json::object();
  j["key"] = base64_encode(c.key);
  if (!c.range_end.empty()) {
    j["range_end"] = base64_encode(c.range_end);
  }
  j["target"] = target_name(c.target);
  j["result"] = result_name(c.result);
  switch (c.target) {
    case compare_target::value:
      j["value"] = base64_encode(c.value);
      break;
    case compare_target::version:
      j["version"] = i64(c.number);
      break;
    case compare_target::create:
      j["create_revision"] = i64(c.number);
      break;
    case compare_target::mod:
      j["mod_revision"] = i64(c.number);
      break;
    case compare_target::lease:
      j["lease"] = i64(c.number);
      break;
  }
  return j;
}

json op_json(const request_op& op) {
  json j = json::object();
  if (const auto* r = std::get_if<range_request>(&op)) {
    j["request_range"] = range_json(*r);
  } else if (const auto* p = std::get_if<put_request>(&op)) {
    j["request_put"] = put_json(*p);
  } else if (const auto* d = std::get_if<delete_request>(&op)) {
    j["request_delete_range"] = delete_json(*d);
  }
  return j;
}

json ops_json(const std::vector<request_op>& ops) {
  json a = json::array();
  for (const auto& op : ops) {
    a.push_back(op_json(op));
  }
  return a;
}

}  // namespace

std::string encode_range(const range_request& r) {
  return range_json(r).dump();
}

std::string encode_put(const put_request& r) {
  return put_json(r).dump();
}

std::string encode_delete(const delete_request& r) {
  return delete_json(r).dump();
}

std::string encode_txn(const txn_request& r) {
  json j = json::object();
  json compares = json::array();
  for (const auto& c : r.compares) {
    compares.push_back(compare_json(c));
  }
  j["compare"] = std::move(compares);
  j["success"] = ops_json(r.success);
  j["failure"] = ops_json(r.failure);
  return j.dump();
}

std::string encode_lease_grant(int64_t ttl_seconds, int64_t id) {
  json j = json::object();
  j["TTL"] = i64(ttl_seconds);
  if (id != 0) {
    j["ID"] = i64(id);
  }
  return j.dump();
}

std::string encode_lease_id(int64_t id) {
  json j = json::object();
  j["ID"] = i64(id);
  return j.dump();
}

std::string encode_lease_time_to_live(int64_t id, bool keys) {
  json j = json::object();
  j["ID"] = i64(id);
  if (keys) {
    j["keys"] = true;
  }
  return j.dump();
}

std::string encode_compact(int64_t revision) {
  json j = json::object();
  j["revision"] = i64(revision);
  return j.dump();
}

std::string encode_watch_create(const watch_request& r) {
  json c = json::object();
  c["key"] = base64_encode(r.key);
  if (!r.range_end.empty()) {
    c["range_end"] = base64_encode(r.range_end);
  }
  if (r.start_revision != 0) {
    c["start_revision"] = i64(r.start_revision);
  }
  if (r.prev_kv) {
    c["prev_kv"] = true;
  }
  if (r.progress_notify) {
    c["progress_notify"] = true;
  }
  json j = json::object();
  j["create_request"] = std::move(c);
  return j.dump();
}

}  // namespace ordermesh::etcd
