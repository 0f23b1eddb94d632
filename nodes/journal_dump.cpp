#include "nodes/journal_dump.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/product.hpp"
#include "domain/types.hpp"
#include "domain/user.hpp"
#include "nodes/journal_open.hpp"
#include "nodes/protocol.hpp"
#include "persistence/big_endian.hpp"
#include "persistence/keys.hpp"
#include "persistence/value_format.hpp"

namespace ordermesh::node {

namespace {

using nlohmann::json;
namespace keys = persistence::keys;

/// One entity kind's domain functions: how its records decode, apply and render.
template <class State, class Event, class View>
struct kind_fns {
  std::string State::*id;  // the member the entity's id goes to (as the actors' init does)
  bool (*decode)(std::string_view, Event&);
  bool (*decode_snapshot)(std::string_view, State&);
  void (*apply)(State&, const Event&);
  View (*view)(const State&);
};

template <class State, class Event, class View>
kind_fns<State, Event, View> make_fns(std::string State::*id,
                                      bool (*decode)(std::string_view, Event&),
                                      bool (*decode_snapshot)(std::string_view, State&),
                                      void (*apply)(State&, const Event&),
                                      View (*view)(const State&)) {
  return {id, decode, decode_snapshot, apply, view};
}

/// One stored record (event or snapshot) of the entity being read.
struct record {
  uint64_t seq = 0;
  std::string bytes;
};

/// Everything on disk for one entity, as the scan found it (events and snapshots in seq order).
struct entity_records {
  persistence::entity_key key;
  std::vector<record> events;
  std::vector<record> snapshots;
};

/// Sets out["state"] to the state of `e` (latest snapshot + later events, rendered as the
/// protocol's reads return it) and out["seq"] to its last seq, or out["error"]. When the events
/// from seq 1 are on disk too, out["snapshot_consistent"] says whether replaying all of them gives
/// the same state.
template <class State, class Event, class View>
void replay(const entity_records& e, const kind_fns<State, Event, View>& kind, json& out) {
  State st;
  st.*kind.id = e.key.id;
  uint64_t from = 0;  // the events up to here are covered by the snapshot
  if (!e.snapshots.empty()) {
    const record& snap = e.snapshots.back();
    if (!kind.decode_snapshot(snap.bytes, st)) {
      out["error"] = "snapshot at seq " + std::to_string(snap.seq) + " does not decode";
      return;
    }
    from = snap.seq;
  }
  out["snapshot_seq"] = from;
  uint64_t last = from;
  if (!e.events.empty()) {
    const uint64_t first = e.events.front().seq;
    if (first > from + 1) {
      out["error"] = "events start at seq " + std::to_string(first) +
                     " and no snapshot covers the ones before";
      return;
    }
    for (size_t i = 0; i < e.events.size(); ++i) {
      if (e.events[i].seq != first + i) {
        out["error"] = "journal gap: expected seq " + std::to_string(first + i) + ", found " +
                       std::to_string(e.events[i].seq);
        return;
      }
    }
    last = std::max(last, e.events.back().seq);
  }
  const bool full =
      from != 0 && !e.events.empty() && e.events.front().seq == 1 && e.events.back().seq >= from;
  State scratch;
  scratch.*kind.id = e.key.id;
  for (const record& r : e.events) {
    if (r.seq <= from && !full) {
      continue;
    }
    Event ev;
    if (!kind.decode(r.bytes, ev)) {
      out["error"] = "event at seq " + std::to_string(r.seq) + " does not decode";
      return;
    }
    if (full) {
      kind.apply(scratch, ev);
    }
    if (r.seq > from) {
      kind.apply(st, ev);
    }
  }
  out["seq"] = last;
  out["state"] = protocol::to_json(kind.view(st));
  if (full) {
    out["snapshot_consistent"] = protocol::to_json(kind.view(scratch)) == out["state"];
  }
}

/// Whole of `text` as a decimal number, nothing else.
template <class T>
bool parse_decimal(std::string_view text, T& out) {
  if (text.empty()) {
    return false;
  }
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

/// Printable form of a key for error messages (bytes outside [A-Za-z0-9._-] as \xNN).
std::string printable(std::string_view key) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || u == '.' ||
        u == '_' || u == '-') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xF]);
    }
  }
  return out;
}

/// The scan's state: the output under construction and its bounds.
class dumper {
 public:
  dumper(const journal_dump_options& opts, json& out) : opts_(opts), out_(out) {}

  void error(std::string message) {
    ++error_count_;
    if (out_["errors"].size() < opts_.max_errors) {
      out_["errors"].push_back(std::move(message));
    }
  }

  /// Reads the shard ownership records (meta "shard_epoch/<n>").
  bool read_ownership(rocksdb::DB& db, std::string* why) {
    const std::string prefix = keys::meta("shard_epoch/");
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
    json& owned = out_["owned"][opts_.node_id];
    json& epochs = out_["shard_epochs"][opts_.node_id];
    owned = json::object();
    epochs = json::object();
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const std::string name = it->key().ToString().substr(prefix.size());
      const std::string value = it->value().ToString();
      uint32_t shard = 0;
      uint64_t epoch = 0;
      bool is_owned = false;
      bool ok = parse_decimal(std::string_view(name), shard) && shard < keys::meta_shard;
      if (ok && value.rfind("owned ", 0) == 0) {
        is_owned = true;
        ok = parse_decimal(std::string_view(value).substr(6), epoch);
      } else if (ok && value.rfind("released ", 0) == 0) {
        ok = parse_decimal(std::string_view(value).substr(9), epoch);
      } else {
        ok = false;
      }
      if (!ok || epoch == 0) {
        error("malformed shard ownership record '" + printable(name) + "' = '" + printable(value) +
              "'");
        continue;
      }
      owned_epoch_[static_cast<uint16_t>(shard)] = is_owned ? epoch : 0;
      owned[name] = {{"epoch", epoch}, {"owned", is_owned}};
      epochs[name] = json::array({epoch});
    }
    if (!it->status().ok()) {
      *why = "reading the shard ownership records: " + it->status().ToString();
      return false;
    }
    return true;
  }

  /// Reads every entity record of every shard, in key order.
  bool read_entities(rocksdb::DB& db, std::string* why) {
    const std::string upper = keys::shard_prefix(keys::meta_shard);  // the meta range
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!visit(std::string_view(it->key().data(), it->key().size()),
                 std::string_view(it->value().data(), it->value().size()), why)) {
        return false;
      }
    }
    if (!it->status().ok()) {
      *why = "reading the journal: " + it->status().ToString();
      return false;
    }
    flush();
    out_["stats"] = {{"events", events_},
                     {"snapshots", snapshots_},
                     {"entities", entities_},
                     {"wakeups", wakeups_},
                     {"errors", error_count_}};
    json unowned = json::array();
    for (uint16_t shard : shards_seen_) {
      auto found = owned_epoch_.find(shard);
      if (found == owned_epoch_.end() || found->second == 0) {
        unowned.push_back(shard);
      }
    }
    out_["unowned_data"][opts_.node_id] = std::move(unowned);
    return true;
  }

 private:
  bool visit(std::string_view key, std::string_view value, std::string* why) {
    if (key.size() < 3) {
      error("short key '" + printable(key) + "'");
      return true;
    }
    const uint16_t shard = persistence::detail::get_u16be(key);
    if (shards_seen_.empty() || shards_seen_.back() != shard) {
      shards_seen_.push_back(shard);
    }
    if (static_cast<uint8_t>(key[2]) == keys::wakeup_tag) {
      persistence::entity_key k;
      if (!keys::parse_wakeup(key, k) || value.size() != 8) {
        error("malformed wakeup entry '" + printable(key) + "'");
      }
      ++wakeups_;
      return true;
    }
    // [shard:2][kind:1][id][0x00][tag][seq:8]
    const size_t end = key.find('\0', 3);
    persistence::entity_key k;
    k.shard = shard;
    k.kind = static_cast<uint8_t>(key[2]);
    if (end != std::string_view::npos) {
      k.id.assign(key.substr(3, end - 3));
    }
    const bool shaped = end != std::string_view::npos && key.size() == end + 2 + 8 &&
                        (key[end + 1] == 'e' || key[end + 1] == 's');
    if (!shaped || !keys::valid(k) || k.kind < 1 || k.kind > 4) {
      error("malformed entity key '" + printable(key) + "'");
      return true;
    }
    if (events_ + snapshots_ >= opts_.max_records) {
      *why = "more than " + std::to_string(opts_.max_records) +
             " journal records (raise --max-records)";
      return false;
    }
    if (!current_ || current_->key.shard != k.shard || current_->key.kind != k.kind ||
        current_->key.id != k.id) {
      flush();
      current_ = std::make_unique<entity_records>();
      current_->key = k;
    }
    const bool snapshot = key[end + 1] == 's';
    // The payload (the codec's bytes, without the checksum) is decoded and digested once its
    // checksum holds; a damaged record is listed under errors only.
    std::string_view payload;
    if (persistence::status st = persistence::value_format::unseal(key, value, payload);
        !st.is_ok()) {
      error(st.message());
      return true;
    }
    record r{persistence::detail::get_u64be(key.substr(end + 2)), std::string(payload)};
    json entry = {{"node", opts_.node_id},
                  {"shard", k.shard},
                  {"kind", kind_name(k.kind)},
                  {"id", k.id},
                  {"seq", r.seq},
                  {"digest", journal_digest(payload)}};
    if (snapshot) {
      entry["snapshot"] = true;
      ++snapshots_;
      current_->snapshots.push_back(std::move(r));
    } else {
      ++events_;
      current_->events.push_back(std::move(r));
    }
    out_["entries"].push_back(std::move(entry));
    return true;
  }

  static std::string kind_name(uint8_t kind) {
    return std::string(domain::to_string(static_cast<domain::entity_kind>(kind)));
  }

  /// Replays the entity read so far and adds it to `replayed`.
  void flush() {
    if (!current_) {
      return;
    }
    const entity_records& e = *current_;
    ++entities_;
    auto owner = owned_epoch_.find(e.key.shard);
    json rep = {{"node", opts_.node_id},
                {"shard", e.key.shard},
                {"kind", kind_name(e.key.kind)},
                {"id", e.key.id},
                {"owned", owner != owned_epoch_.end() && owner->second != 0}};
    namespace d = domain;
    switch (static_cast<domain::entity_kind>(e.key.kind)) {
      case domain::entity_kind::user:
        replay(e,
               make_fns(&d::user::state::user_id, d::user::decode, d::user::decode_snapshot,
                        d::user::apply, d::user::view),
               rep);
        break;
      case domain::entity_kind::product:
        replay(e,
               make_fns(&d::product::state::product_id, d::product::decode,
                        d::product::decode_snapshot, d::product::apply, d::product::view),
               rep);
        break;
      case domain::entity_kind::inventory:
        replay(e,
               make_fns(&d::inventory::state::product_id, d::inventory::decode,
                        d::inventory::decode_snapshot, d::inventory::apply, d::inventory::view),
               rep);
        break;
      case domain::entity_kind::order:
        replay(e,
               make_fns(&d::order::state::order_id, d::order::decode, d::order::decode_snapshot,
                        d::order::apply, d::order::view),
               rep);
        break;
    }
    if (rep.contains("error")) {
      error(kind_name(e.key.kind) + "/" + e.key.id + " on shard " + std::to_string(e.key.shard) +
            ": " + rep["error"].get<std::string>());
    }
    out_["replayed"].push_back(std::move(rep));
    current_.reset();
  }

  const journal_dump_options& opts_;
  json& out_;
  std::map<uint16_t, uint64_t> owned_epoch_;  // shard -> owned epoch (0: released)
  std::vector<uint16_t> shards_seen_;         // shards with any key on disk, ascending
  std::unique_ptr<entity_records> current_;
  uint64_t events_ = 0;
  uint64_t snapshots_ = 0;
  uint64_t entities_ = 0;
  uint64_t wakeups_ = 0;
  uint64_t error_count_ = 0;
};

}  // namespace

std::string journal_digest(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  static const char hex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = hex[h & 0xF];
    h >>= 4;
  }
  return out;
}

bool dump_journal(const journal_dump_options& opts, json* out, std::string* error) {
  auto fail = [&](std::string why) {
    if (error != nullptr) {
      *error = std::move(why);
    }
    return false;
  };
  if (out == nullptr) {
    return fail("no output");
  }
  if (opts.data_dir.empty()) {
    return fail("--data-dir is required");
  }
  if (!domain::valid_id(opts.node_id)) {
    return fail("--node-id is required and must match [A-Za-z0-9._-]{1,64}");
  }
  const std::string path = journal_database_path(opts.data_dir);
  std::string why_not;
  std::unique_ptr<rocksdb::DB> db = open_journal_read_only(opts.data_dir, &why_not);
  if (!db) {
    return fail(why_not);
  }

  std::string recorded;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), keys::meta("node_id"), &recorded);
  if (s.ok() && recorded != opts.node_id) {
    return fail("the data dir '" + opts.data_dir + "' belongs to node '" + recorded + "', not '" +
                opts.node_id + "'");
  }
  if (!s.ok() && !s.IsNotFound()) {
    return fail("cannot read the node id of '" + path + "': " + s.ToString());
  }

  json result = {{"version", 1},
                 {"node", opts.node_id},
                 {"data_dir", opts.data_dir},
                 {"entries", json::array()},
                 {"replayed", json::array()},
                 {"errors", json::array()},
                 {"per_event_epochs", false}};
  std::string shard_count;
  if (db->Get(rocksdb::ReadOptions(), keys::meta("shard_count"), &shard_count).ok()) {
    uint32_t n = 0;
    if (parse_decimal(std::string_view(shard_count), n)) {
      result["shard_count"] = n;
    }
  }
  dumper d(opts, result);
  std::string why;
  if (!d.read_ownership(*db, &why) || !d.read_entities(*db, &why)) {
    return fail(why);
  }
  s = db->Close();
  if (!s.ok()) {
    return fail("closing '" + path + "': " + s.ToString());
  }
  *out = std::move(result);
  return true;
}

}  // namespace ordermesh::node
