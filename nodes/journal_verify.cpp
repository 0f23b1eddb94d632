#include "nodes/journal_verify.hpp"

#include <memory>
#include <optional>
#include <string_view>

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "domain/types.hpp"
#include "nodes/journal_open.hpp"
#include "persistence/big_endian.hpp"
#include "persistence/keys.hpp"
#include "persistence/value_format.hpp"

namespace ordermesh::node {

namespace {

namespace keys = persistence::keys;

std::string kind_name(uint8_t kind) {
  if (kind < 1 || kind > 4) {
    return "kind" + std::to_string(kind);
  }
  return std::string(domain::to_string(static_cast<domain::entity_kind>(kind)));
}

/// The scan of one data dir: one entity at a time, in key order.
class verifier {
 public:
  verifier(const journal_verify_options& opts, journal_verify_report& out)
      : opts_(opts), out_(out) {}

  /// Reads every record below the meta range; after a read error, goes on at the next shard.
  void run(rocksdb::DB& db) {
    const std::string upper = keys::shard_prefix(keys::meta_shard);
    std::string from;  // where the next iterator starts
    // Bounded: each round either ends the scan or moves `from` to a later shard.
    for (uint32_t round = 0; round <= keys::meta_shard; ++round) {
      rocksdb::Slice upper_slice(upper);
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper_slice;
      ro.fill_cache = false;
      ro.verify_checksums = true;
      std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro));
      for (it->Seek(from); it->Valid(); it->Next()) {
        visit(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size()));
      }
      if (it->status().ok()) {
        break;
      }
      // RocksDB cannot read a block: name the entity read last, skip to the next shard.
      const uint16_t shard = current_ ? current_->shard : first_shard(from);
      std::string what = "unreadable: " + it->status().ToString();
      const bool same_block = !out_.damaged.empty() && out_.damaged.back().what == what &&
                              out_.damaged_count == out_.damaged.size() && !current_;
      if (same_block) {
        // One damaged block spans several shards: one line, with the last shard it reached.
        damaged_entity& last = out_.damaged.back();
        ++last.problems;
        last.id = last.first_id + " (and every entity after it through shard " +
                  std::to_string(shard) + ")";
      } else {
        damaged_entity d;
        d.shard = shard;
        d.kind = current_ ? current_->kind : "?";
        d.first_id = current_ ? current_->id : "?";
        d.id = d.first_id + " (or an entity after it)";
        d.what = std::move(what);
        d.problems = 1;
        current_.reset();  // its own damage, if any, is lost with the block: reported here
        add(std::move(d));
      }
      if (shard + 1u >= keys::meta_shard) {
        break;
      }
      from = keys::shard_prefix(static_cast<uint16_t>(shard + 1));
    }
    finish();
  }

 private:
  struct entity {
    uint16_t shard = 0;
    uint8_t kind_byte = 0;
    std::string kind;
    std::string id;
    uint64_t snapshot_seq = 0;  // latest snapshot (0: none)
    std::optional<uint64_t> first_event;
    uint64_t last_event = 0;
    std::optional<damaged_entity> damage;
  };

  static uint16_t first_shard(const std::string& from) {
    return from.size() >= 2 ? persistence::detail::get_u16be(from) : 0;
  }

  void add(damaged_entity d) {
    ++out_.damaged_count;
    if (out_.damaged.size() < opts_.max_damaged) {
      out_.damaged.push_back(std::move(d));
    }
  }

  void problem(entity& e, uint64_t seq, std::string what) {
    if (!e.damage) {
      e.damage = damaged_entity{e.shard, e.kind, e.id, e.id, seq, std::move(what), 0};
    }
    ++e.damage->problems;
  }

  /// Checks what only the whole entity shows (contiguity), then reports it if damaged.
  void finish() {
    if (!current_) {
      return;
    }
    entity& e = *current_;
    ++out_.entities;
    if (e.first_event && *e.first_event > e.snapshot_seq + 1) {
      problem(
          e, *e.first_event,
          "journal gap: events start at seq " + std::to_string(*e.first_event) +
              (e.snapshot_seq == 0 ? std::string(" with no snapshot")
                                   : " above the snapshot at " + std::to_string(e.snapshot_seq)));
    }
    if (e.damage) {
      add(std::move(*e.damage));
    }
    current_.reset();
  }

  void visit(std::string_view key, std::string_view value) {
    if (key.size() >= 3 && static_cast<uint8_t>(key[2]) == keys::wakeup_tag) {
      ++out_.wakeups;
      persistence::entity_key k;
      if (!keys::parse_wakeup(key, k) || value.size() != 8) {
        finish();
        add(damaged_entity{persistence::detail::get_u16be(key), kind_name(k.kind), k.id, k.id, 0,
                           "malformed wakeup entry " + persistence::value_format::describe(key),
                           1});
      }
      return;
    }
    persistence::entity_key k;
    char tag = 0;
    uint64_t seq = 0;
    if (!keys::parse_record(key, k, tag, seq)) {
      finish();
      add(damaged_entity{key.size() >= 2 ? persistence::detail::get_u16be(key) : uint16_t{0}, "?",
                         "?", "?", 0, "malformed " + persistence::value_format::describe(key), 1});
      return;
    }
    if (!current_ || current_->shard != k.shard || current_->kind_byte != k.kind ||
        current_->id != k.id) {
      finish();
      current_ = std::make_unique<entity>();
      current_->shard = k.shard;
      current_->kind_byte = k.kind;
      current_->kind = kind_name(k.kind);
      current_->id = k.id;
    }
    entity& e = *current_;
    std::string_view payload;
    if (persistence::status st = persistence::value_format::unseal(key, value, payload);
        !st.is_ok()) {
      problem(e, seq, (tag == 'e' ? "event " : "snapshot ") + st.message());
    }
    if (tag == 's') {  // an entity's snapshots sort after its events ('e' < 's')
      ++out_.snapshots;
      e.snapshot_seq = seq;
      return;
    }
    ++out_.events;
    if (!e.first_event) {
      e.first_event = seq;
    } else if (seq != e.last_event + 1) {
      problem(e, seq,
              "journal gap: expected seq " + std::to_string(e.last_event + 1) + ", found " +
                  std::to_string(seq));
    }
    e.last_event = seq;
  }

  const journal_verify_options& opts_;
  journal_verify_report& out_;
  std::unique_ptr<entity> current_;
};

}  // namespace

bool verify_journal(const journal_verify_options& opts, journal_verify_report* out,
                    std::string* error) {
  if (out == nullptr || opts.data_dir.empty()) {
    if (error != nullptr) {
      *error = "verify needs --data-dir";
    }
    return false;
  }
  std::unique_ptr<rocksdb::DB> db = open_journal_read_only(opts.data_dir, error);
  if (!db) {
    return false;
  }
  // Without the format record the values have no checksums to check: every one would "fail".
  std::string format;
  rocksdb::Status got =
      db->Get(rocksdb::ReadOptions(), keys::meta(persistence::value_format::meta_name), &format);
  if (!got.ok() || format != persistence::value_format::current) {
    if (error != nullptr) {
      *error = got.IsNotFound()
                   ? "'" + opts.data_dir +
                         "' holds values without checksums (written by 0.2.0, or its migration "
                         "was cut short): start this version's orderd on it once to migrate it"
               : got.ok()
                   ? "'" + opts.data_dir + "' is in value format '" + format +
                         "', unknown to this version"
                   : "cannot read the value format of '" + opts.data_dir + "': " + got.ToString();
    }
    return false;
  }
  journal_verify_report report;
  verifier(opts, report).run(*db);
  db->Close().PermitUncheckedError();
  *out = std::move(report);
  return true;
}

std::string describe(const damaged_entity& d) {
  return "damaged: shard=" + std::to_string(d.shard) + " kind=" + d.kind + " id=" + d.id +
         " seq=" + std::to_string(d.seq) + " problems=" + std::to_string(d.problems) + ": " +
         d.what;
}

}  // namespace ordermesh::node
