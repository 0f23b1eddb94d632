// The answer half of the codec (etcd_codec.hpp): response bodies, errors and watch lines to
// structs. Nothing throws out of here: malformed input becomes bad_response.
#include <algorithm>
#include <charconv>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "cluster/etcd/etcd_base64.hpp"
#include "cluster/etcd/etcd_codec.hpp"

namespace ordermesh::etcd {

using json = nlohmann::json;

namespace {

// nlohmann's parser keeps its own stack, but deep nesting still costs memory and time, and no
// etcd answer nests more than a handful of levels: refuse anything deeper before parsing.
constexpr int max_json_depth = 32;

bool nesting_ok(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
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
    } else if (c == '{' || c == '[') {
      if (++depth > max_json_depth) {
        return false;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

error bad_response(std::string message) {
  return error{errc::bad_response, std::move(message)};
}

/// Parses `text` as a JSON object; nullopt (with `why`) when it is not one.
std::optional<json> parse_object(std::string_view text, std::string& why) {
  if (!nesting_ok(text)) {
    why = "JSON nested too deeply";
    return std::nullopt;
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    why = "not JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  return j;
}

/// Reads fields of JSON objects; the first malformed field is remembered and every later read
/// returns a default, so a decoder checks ok() once at the end.
class fields {
 public:
  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }

  void fail(std::string what) {
    if (problem_.empty()) {
      problem_ = std::move(what);
    }
  }

  /// The member `name` of `o`, or nullptr when `o` is not an object or has no such member.
  static const json* find(const json& o, const char* name) {
    if (!o.is_object()) {
      return nullptr;
    }
    const auto it = o.find(name);
    return it == o.end() ? nullptr : &*it;
  }

  /// int64 written as a string (or, tolerated, a number); absent: 0.
  int64_t i64(const json& o, const char* name) {
    const json* v = find(o, name);
    if (v == nullptr || v->is_null()) {
      return 0;
    }
    if (v->is_number_integer() && !v->is_number_unsigned()) {
      return v->get<int64_t>();
    }
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(u);
      }
    } else if (v->is_string()) {
      const auto& s = v->get_ref<const std::string&>();
      int64_t out = 0;
      const char* end = s.data() + s.size();
      const auto [ptr, ec] = std::from_chars(s.data(), end, out);
      if (!s.empty() && ec == std::errc{} && ptr == end) {
        return out;
      }
    }
    fail(std::string("field '") + name + "' is not an int64");
    return 0;
  }

  /// absent: false.
  bool boolean(const json& o, const char* name) {
    const json* v = find(o, name);
    if (v == nullptr || v->is_null()) {
      return false;
    }
    if (v->is_boolean()) {
      return v->get<bool>();
    }
    fail(std::string("field '") + name + "' is not a boolean");
    return false;
  }

  /// A plain string; absent: empty.
  std::string text(const json& o, const char* name) {
    const json* v = find(o, name);
    if (v == nullptr || v->is_null()) {
      return {};
    }
    if (v->is_string()) {
      return v->get<std::string>();
    }
    fail(std::string("field '") + name + "' is not a string");
    return {};
  }

  /// Bytes written as base64; absent: empty.
  std::string bytes(const json& o, const char* name) {
    const json* v = find(o, name);
    if (v == nullptr || v->is_null()) {
      return {};
    }
    std::string out;
    if (v->is_string() && base64_decode(v->get_ref<const std::string&>(), out)) {
      return out;
    }
    fail(std::string("field '") + name + "' is not base64");
    return {};
  }

  /// The array `name`; absent: nullptr. Not an array: nullptr and a failure.
  const json* array(const json& o, const char* name) {
    const json* v = find(o, name);
    if (v == nullptr || v->is_null()) {
      return nullptr;
    }
    if (v->is_array()) {
      return v;
    }
    fail(std::string("field '") + name + "' is not an array");
    return nullptr;
  }

  /// The object `name`; absent: nullptr. Not an object: nullptr and a failure.
  const json* object(const json& o, const char* name) {
    const json* v = find(o, name);
    if (v == nullptr || v->is_null()) {
      return nullptr;
    }
    if (v->is_object()) {
      return v;
    }
    fail(std::string("field '") + name + "' is not an object");
    return nullptr;
  }

  /// The header's revision; absent header or revision: 0.
  int64_t header_revision(const json& o) {
    const json* h = object(o, "header");
    return h == nullptr ? 0 : i64(*h, "revision");
  }

  key_value kv(const json& o) {
    key_value out;
    if (!o.is_object()) {
      fail("a key-value is not an object");
      return out;
    }
    out.key = bytes(o, "key");
    out.value = bytes(o, "value");
    out.create_revision = i64(o, "create_revision");
    out.mod_revision = i64(o, "mod_revision");
    out.version = i64(o, "version");
    out.lease = i64(o, "lease");
    return out;
  }

  std::vector<key_value> kvs(const json& o, const char* name) {
    std::vector<key_value> out;
    if (const json* a = array(o, name)) {
      out.reserve(a->size());
      for (const auto& e : *a) {
        out.push_back(kv(e));
      }
    }
    return out;
  }

 private:
  std::string problem_;
};

range_response range_from(fields& f, const json& o) {
  range_response r;
  r.revision = f.header_revision(o);
  r.kvs = f.kvs(o, "kvs");
  r.more = f.boolean(o, "more");
  r.count = f.i64(o, "count");
  return r;
}

put_response put_from(fields& f, const json& o) {
  put_response r;
  r.revision = f.header_revision(o);
  if (const json* prev = f.object(o, "prev_kv")) {
    r.prev_kv = f.kv(*prev);
  }
  return r;
}

delete_response delete_from(fields& f, const json& o) {
  delete_response r;
  r.revision = f.header_revision(o);
  r.deleted = f.i64(o, "deleted");
  r.prev_kvs = f.kvs(o, "prev_kvs");
  return r;
}

/// Runs `decode(fields&, const json& object)` on the parsed body; any failure or exception
/// becomes bad_response, so nothing escapes.
template <class T, class Decode>
result<T> decode_body(std::string_view body, const char* what, Decode&& decode) {
  try {
    std::string why;
    auto j = parse_object(body, why);
    if (!j) {
      return bad_response(std::string(what) + ": " + why);
    }
    fields f;
    T out = decode(f, *j);
    if (!f.ok()) {
      return bad_response(std::string(what) + ": " + f.problem());
    }
    return out;
  } catch (const std::exception& e) {
    return bad_response(std::string(what) + ": " + e.what());
  }
}

errc code_for(unsigned http_status, int grpc_code, std::string_view message) {
  // gRPC codes: 4 DEADLINE_EXCEEDED, 5 NOT_FOUND, 11 OUT_OF_RANGE, 14 UNAVAILABLE.
  if (grpc_code == 14 || http_status == 503) {
    return errc::unavailable;
  }
  if (grpc_code == 4 || http_status == 504) {
    return errc::timeout;
  }
  if (grpc_code == 11 && message.find("compacted") != std::string_view::npos) {
    return errc::compacted;
  }
  if (grpc_code == 5) {
    return errc::not_found;
  }
  return errc::http_error;
}

/// The in-band error of a streaming answer: {"error": {"grpc_code", "http_code", "message"}}.
error stream_error(fields& f, const json& e) {
  error out;
  out.grpc_code = static_cast<int>(f.i64(e, "grpc_code"));
  out.http_status = static_cast<int>(f.i64(e, "http_code"));
  out.message = f.text(e, "message");
  if (!f.ok()) {
    return bad_response("malformed in-band error: " + f.problem());
  }
  out.code = code_for(static_cast<unsigned>(out.http_status), out.grpc_code, out.message);
  return out;
}

/// Printable start of a body that is not JSON, for an error message.
std::string excerpt(std::string_view body) {
  constexpr std::size_t max = 200;
  std::string out;
  for (const char c : body.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '?')) {
    out.pop_back();
  }
  return out;
}

/// The first line of a streaming body (keepalive answers one line, then ends).
std::string_view first_line(std::string_view body) {
  const auto nl = body.find('\n');
  return nl == std::string_view::npos ? body : body.substr(0, nl);
}

}  // namespace

result<range_response> decode_range(std::string_view body) {
  return decode_body<range_response>(body, "range", range_from);
}

result<put_response> decode_put(std::string_view body) {
  return decode_body<put_response>(body, "put", put_from);
}

result<delete_response> decode_delete(std::string_view body) {
  return decode_body<delete_response>(body, "delete", delete_from);
}

result<txn_response> decode_txn(std::string_view body) {
  return decode_body<txn_response>(body, "txn", [](fields& f, const json& o) {
    txn_response r;
    r.revision = f.header_revision(o);
    r.succeeded = f.boolean(o, "succeeded");
    if (const json* a = f.array(o, "responses")) {
      for (const auto& e : *a) {
        if (const json* rr = f.object(e, "response_range")) {
          r.responses.emplace_back(range_from(f, *rr));
        } else if (const json* pr = f.object(e, "response_put")) {
          r.responses.emplace_back(put_from(f, *pr));
        } else if (const json* dr = f.object(e, "response_delete_range")) {
          r.responses.emplace_back(delete_from(f, *dr));
        } else {
          f.fail("a txn response is neither range, put nor delete");
        }
      }
    }
    return r;
  });
}

result<lease_grant_response> decode_lease_grant(std::string_view body) {
  return decode_body<lease_grant_response>(body, "lease grant", [](fields& f, const json& o) {
    lease_grant_response r;
    r.revision = f.header_revision(o);
    r.id = f.i64(o, "ID");
    r.ttl = f.i64(o, "TTL");
    // LeaseGrantResponse has a string "error" field; etcd never sets it, but do not hand back a
    // lease that etcd says it did not grant.
    const std::string problem = f.text(o, "error");
    if (!problem.empty()) {
      f.fail("etcd reports: " + problem);
    }
    if (f.ok() && r.id == 0) {
      f.fail("no lease ID");
    }
    return r;
  });
}

result<int64_t> decode_lease_keepalive(std::string_view body) {
  try {
    std::string why;
    auto j = parse_object(first_line(body), why);
    if (!j) {
      return bad_response("lease keepalive: " + why);
    }
    fields f;
    if (const json* e = f.object(*j, "error")) {
      return stream_error(f, *e);
    }
    // The gateway wraps stream messages in "result"; accept a bare answer too.
    const json* r = f.object(*j, "result");
    const int64_t ttl = f.i64(r != nullptr ? *r : *j, "TTL");
    if (!f.ok()) {
      return bad_response("lease keepalive: " + f.problem());
    }
    return ttl > 0 ? ttl : 0;
  } catch (const std::exception& e) {
    return bad_response(std::string("lease keepalive: ") + e.what());
  }
}

result<int64_t> decode_lease_revoke(std::string_view body) {
  return decode_body<int64_t>(body, "lease revoke",
                              [](fields& f, const json& o) { return f.header_revision(o); });
}

result<lease_ttl_response> decode_lease_time_to_live(std::string_view body) {
  return decode_body<lease_ttl_response>(body, "lease timetolive", [](fields& f, const json& o) {
    lease_ttl_response r;
    r.id = f.i64(o, "ID");
    // etcd says TTL -1 for a lease it does not know; 0 is this client's "gone".
    r.ttl = std::max<int64_t>(0, f.i64(o, "TTL"));
    r.granted_ttl = r.ttl > 0 ? f.i64(o, "grantedTTL") : 0;
    if (const json* a = f.array(o, "keys")) {
      for (const auto& k : *a) {
        std::string key;
        if (!k.is_string() || !base64_decode(k.get_ref<const std::string&>(), key)) {
          f.fail("a lease key is not base64");
          break;
        }
        r.keys.push_back(std::move(key));
      }
    }
    return r;
  });
}

result<int64_t> decode_compact(std::string_view body) {
  return decode_body<int64_t>(body, "compact",
                              [](fields& f, const json& o) { return f.header_revision(o); });
}

error decode_error(unsigned http_status, std::string_view body) {
  error out;
  out.http_status = static_cast<int>(http_status);
  out.message = excerpt(body);  // unless etcd's own message is found below
  try {
    std::string why;
    const auto j = parse_object(first_line(body), why);
    const json* e = j ? fields::find(*j, "error") : nullptr;
    if (e != nullptr && e->is_object()) {
      // The streaming form, {"error": {"grpc_code", "http_code", "message"}}.
      fields f;
      error in_band = stream_error(f, *e);
      if (in_band.code != errc::bad_response) {
        in_band.http_status = in_band.http_status != 0 ? in_band.http_status : out.http_status;
        return in_band;
      }
    } else if (j) {
      // The unary form, {"error": "...", "message": "...", "code": <gRPC code>}.
      fields f;
      std::string message = f.text(*j, "error");
      if (message.empty()) {
        message = f.text(*j, "message");
      }
      const auto code = static_cast<int>(f.i64(*j, "code"));
      if (f.ok()) {
        out.message = std::move(message);
        out.grpc_code = code;
      }
    }
  } catch (const std::exception&) {
    // Keep the excerpt: the status alone still classifies the error.
  }
  out.code = code_for(http_status, out.grpc_code, out.message);
  return out;
}

result<watch_response> decode_watch_line(std::string_view line) {
  try {
    std::string why;
    auto j = parse_object(line, why);
    if (!j) {
      return bad_response("watch: " + why);
    }
    fields f;
    if (const json* e = f.object(*j, "error")) {
      return stream_error(f, *e);
    }
    const json* r = f.object(*j, "result");
    if (r == nullptr) {
      return bad_response(f.ok() ? "watch: no result" : "watch: " + f.problem());
    }
    watch_response w;
    w.revision = f.header_revision(*r);
    w.compact_revision = f.i64(*r, "compact_revision");
    w.cancel_reason = f.text(*r, "cancel_reason");
    const bool canceled = f.boolean(*r, "canceled");
    const bool created = f.boolean(*r, "created");
    if (const json* events = f.array(*r, "events")) {
      w.events.reserve(events->size());
      for (const auto& e : *events) {
        watch_event ev;
        const json* type = fields::find(e, "type");
        if (type == nullptr || (type->is_string() && *type == "PUT") ||
            (type->is_number_integer() && *type == 0)) {
          ev.type = watch_event::kind::put;
        } else if ((type->is_string() && *type == "DELETE") ||
                   (type->is_number_integer() && *type == 1)) {
          ev.type = watch_event::kind::del;
        } else {
          f.fail("an event type is neither PUT nor DELETE");
        }
        if (const json* kv = f.object(e, "kv")) {
          ev.kv = f.kv(*kv);
        } else {
          f.fail("an event has no kv");
        }
        if (const json* prev = f.object(e, "prev_kv")) {
          ev.prev_kv = f.kv(*prev);
        }
        w.events.push_back(std::move(ev));
      }
    }
    if (!f.ok()) {
      return bad_response("watch: " + f.problem());
    }
    if (canceled) {
      w.type = watch_response::kind::canceled;
    } else if (created) {
      w.type = watch_response::kind::created;
    } else if (!w.events.empty()) {
      w.type = watch_response::kind::events;
    } else {
      w.type = watch_response::kind::progress;
    }
    return w;
  } catch (const std::exception& e) {
    return bad_response(std::string("watch: ") + e.what());
  }
}

}  // namespace ordermesh::etcd
