#pragma once
// The requests and answers of etcd's v3 API as plain structs, named as in etcd's protobufs.
// Keys and values are arbitrary bytes held in std::string; revisions, versions, lease ids and
// TTLs are int64. A field etcd leaves out (its default) reads as 0, false or empty here.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ordermesh::etcd {

using clock = std::chrono::steady_clock;
/// Every call takes an absolute deadline on the monotonic clock.
using deadline = clock::time_point;

/// The deadline `d` from now.
inline deadline deadline_after(clock::duration d) {
  return clock::now() + d;
}

/// The range_end that selects every key starting with `prefix` (etcd's rule: drop trailing
/// 0xff bytes, then add one to the last byte). When no such key exists (empty prefix, or only
/// 0xff bytes) returns "\0", which etcd reads as "every key >= key".
std::string prefix_end(std::string_view prefix);

/// One stored key. `create_revision` identifies one incarnation of the key (it changes when the
/// key is deleted and created again); `version` counts writes since that creation.
struct key_value {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: not bound to a lease
};

/// Reads keys in [key, range_end); an empty range_end reads `key` alone.
struct range_request {
  std::string key;
  std::string range_end;
  int64_t limit = 0;     // 0: no limit
  int64_t revision = 0;  // 0: the current revision; older ones may be compacted
  bool keys_only = false;
  bool count_only = false;
};

struct range_response {
  int64_t revision = 0;  // the store's revision when the read was served
  std::vector<key_value> kvs;
  bool more = false;  // the limit cut the answer short
  int64_t count = 0;  // keys in the range (regardless of limit)
};

struct put_request {
  std::string key;
  std::string value;
  int64_t lease = 0;  // 0: no lease; a lease that does not exist fails with not_found
  bool prev_kv = false;
};

struct put_response {
  int64_t revision = 0;              // the revision this put created
  std::optional<key_value> prev_kv;  // with prev_kv, when the key existed before
};

/// Deletes keys in [key, range_end); an empty range_end deletes `key` alone.
struct delete_request {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
};

struct delete_response {
  int64_t revision = 0;
  int64_t deleted = 0;
  std::vector<key_value> prev_kvs;
};

enum class compare_target : uint8_t { value, version, create, mod, lease };
enum class compare_result : uint8_t { equal, greater, less, not_equal };

/// One condition of a txn: `target` of `key` compared with a number (version, create or mod
/// revision, lease id) or with `value`. Build it with the factories.
struct compare {
  std::string key;
  std::string range_end;  // rarely used: compare every key in [key, range_end)
  compare_target target = compare_target::create;
  compare_result result = compare_result::equal;
  int64_t number = 0;  // version, create_revision, mod_revision or lease id
  std::string value;   // for compare_target::value

  /// create_revision `r` n; `absent(key)` is create_revision == 0.
  static compare create(std::string key, compare_result r, int64_t n);
  static compare mod(std::string key, compare_result r, int64_t n);
  static compare version(std::string key, compare_result r, int64_t n);
  static compare lease(std::string key, compare_result r, int64_t id);
  static compare value_is(std::string key, compare_result r, std::string value);
  /// True when `key` does not exist (create_revision == 0).
  static compare absent(std::string key) {
    return create(std::move(key), compare_result::equal, 0);
  }
};

using request_op = std::variant<range_request, put_request, delete_request>;
using response_op = std::variant<range_response, put_response, delete_response>;

/// If every compare holds, runs `success`, else `failure`, atomically.
struct txn_request {
  std::vector<compare> compares;
  std::vector<request_op> success;
  std::vector<request_op> failure;
};

struct txn_response {
  int64_t revision = 0;
  bool succeeded = false;              // etcd omits it when false
  std::vector<response_op> responses;  // one per op of the branch that ran, in order
};

struct lease_grant_response {
  int64_t revision = 0;
  int64_t id = 0;
  int64_t ttl = 0;  // seconds granted (etcd may raise a too short TTL to its minimum)
};

struct lease_ttl_response {
  int64_t id = 0;
  int64_t ttl = 0;                // seconds left; 0 when the lease expired or never existed
  int64_t granted_ttl = 0;        // 0 when the lease expired or never existed
  std::vector<std::string> keys;  // with keys requested: the keys bound to the lease
};

/// Watches keys in [key, range_end) from start_revision (0: from now on).
struct watch_request {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;
  bool prev_kv = false;
  bool progress_notify = false;
};

struct watch_event {
  enum class kind : uint8_t { put, del };
  kind type = kind::put;
  key_value kv;                      // for del: key and mod_revision (the deleting revision) only
  std::optional<key_value> prev_kv;  // with prev_kv requested
};

/// One line of a watch stream.
struct watch_response {
  enum class kind : uint8_t {
    events,    // `events` holds one revision's batch (or several), in revision order
    created,   // the watch is in place; events from start_revision follow
    canceled,  // etcd ended the watch; compact_revision > 0: start_revision was compacted
    progress,  // no events; `revision` says the watcher has seen everything up to it
  };
  kind type = kind::events;
  int64_t revision = 0;  // the header revision
  std::vector<watch_event> events;
  int64_t compact_revision = 0;
  std::string cancel_reason;
};

}  // namespace ordermesh::etcd
