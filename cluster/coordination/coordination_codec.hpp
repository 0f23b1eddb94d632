#pragma once
// How the etcd session lays out the cluster in etcd's keys and values, as pure functions: the
// key names under /ordermesh/<cluster>/ and the JSON value of each kind of key. No I/O, no
// exceptions: a value that does not decode is an errc::invalid result naming what is wrong.
//
//   config                 {"cluster_id","shard_count","replication_factor","min_insync"}
//   members/<node_id>      {"node_id","cluster_address","client_address","leaving"}
//   controller             {"node_id","incarnation"}
//   shards/<NNNNN>         {"shard","epoch","primary","replicas","isr","target"}
//   secret_fingerprint     an opaque string, written once (session::claim_secret_fingerprint)
//   absent/<node_id>       {"node_id","since_ms"}       (departure_record, departure_kind::absent)
//   removed/<node_id>      {"node_id","since_ms","by"}  (departure_record, departure_kind::removed)
//
// A member's incarnation is its key's create revision and a shard's mod_revision its key's mod
// revision: etcd keeps both, so neither is in the value (encode ignores them, decode leaves 0).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <vector>

#include "cluster/coordination/coordination.hpp"
#include "cluster/etcd/etcd_types.hpp"

namespace ordermesh::cluster::coordination::codec {

/// The largest value decode accepts, and the deepest JSON nesting.
inline constexpr std::size_t max_value_bytes = 1 << 20;
inline constexpr int max_value_depth = 8;

/// The key names of one cluster. A cluster name is non-empty, at most 128 bytes, of letters,
/// digits, '-', '_' and '.'.
class key_layout {
 public:
  explicit key_layout(std::string_view cluster);
  /// Whether `cluster` is a usable cluster name (see above).
  static bool valid_cluster_name(std::string_view cluster);

  /// "/ordermesh/<cluster>/": every key of the cluster starts with it.
  const std::string& prefix() const { return prefix_; }
  std::string config() const { return prefix_ + "config"; }
  std::string controller() const { return prefix_ + "controller"; }
  /// Holds session::claim_secret_fingerprint's opaque value as is (not JSON); parse() calls it
  /// `other`, so nodes older than it ignore it.
  std::string secret_fingerprint() const { return prefix_ + "secret_fingerprint"; }
  std::string members_prefix() const { return prefix_ + "members/"; }
  std::string member(std::string_view node_id) const;
  std::string shards_prefix() const { return prefix_ + "shards/"; }
  /// "absent/<node_id>" or "removed/<node_id>".
  std::string departure(departure_kind k, std::string_view node_id) const;
  /// "shards/" and the shard number as 5 zero-padded decimal digits ("shards/00042").
  std::string shard(uint16_t shard) const;

  enum class kind : uint8_t { config, controller, member, shard, absent, removed, other };
  /// What a key is. For a member, an absent or a removed record, `node_id` is its id; for a shard,
  /// `shard` its number. A key under "shards/" that is not 5 digits is `other` with `bad_shard_key`
  /// set; a key outside the prefix or unknown under it is `other`.
  struct parsed {
    kind what = kind::other;
    std::string node_id;
    uint16_t shard = 0;
    bool bad_shard_key = false;
  };
  parsed parse(std::string_view key) const;

 private:
  std::string prefix_;
};

/// The controller key's value: who holds it, under which incarnation.
struct controller_value {
  std::string node_id;
  int64_t incarnation = 0;
};

std::string encode_member(const member_record& m);
/// node_id is required; the addresses and `leaving` default to empty / false. incarnation is 0.
result<member_record> decode_member(std::string_view json);

std::string encode_departure(const departure_record& d);
/// node_id and since_ms (>= 0) required; `by` defaults to empty. mod_revision is 0.
result<departure_record> decode_departure(std::string_view json);

std::string encode_controller(const controller_value& c);
/// Both fields required; incarnation > 0.
result<controller_value> decode_controller(std::string_view json);

std::string encode_config(const cluster_config& c);
/// Every field required; shard_count, replication_factor and min_insync >= 1.
result<cluster_config> decode_config(std::string_view json);

std::string encode_shard(const shard_assignment& s);
/// shard and epoch required (epoch >= 1), primary required and non-empty; replicas, isr and
/// target default to empty. mod_revision is 0.
result<shard_assignment> decode_shard(std::string_view json);

/// The controller's record: its member's record from `members` when that member's incarnation is
/// the one the controller key names, else a record with just node id and incarnation.
member_record resolve_controller(const controller_value& c,
                                 const std::vector<member_record>& members);

/// The cluster as stored in `kvs` (one range over the prefix, read at `revision`): members
/// ordered by node id with their key's create revision as incarnation, shards indexed by number
/// with their key's mod revision, the controller resolved to its member's record (just node id
/// and incarnation when that member's key is gone or belongs to another incarnation). Shards are
/// empty while there is no config; with one, every shard below shard_count must be there, and
/// keys at or above it (left by a bootstrap that crashed) are ignored. A key of a known kind whose
/// value does not decode, or whose value names another id or shard than its key, is errc::invalid
/// naming the key. Keys of unknown kinds are ignored.
result<cluster_state> decode_state(const key_layout& keys, int64_t revision,
                                   const std::vector<etcd::key_value>& kvs);

}  // namespace ordermesh::cluster::coordination::codec
