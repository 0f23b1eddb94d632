#pragma once
// ordermesh-journal: dumps a stopped node's journal for the chaos checker's one-writer audit
// (chaos/journal_audit.py, whose docstring defines the format).
//
// What it reads. The node's RocksDB (`<data-dir>/db`), opened with rocksdb::DB::OpenForReadOnly:
// the write-ahead log of a killed node is replayed in memory only, no file of the data dir is
// created, renamed or written (RocksDB's info log goes to a discarding logger), and the database
// lock is not taken. Run it on a stopped node only: a running node's later writes would not be
// seen. Every key is decoded with the layout of persistence/keys.hpp:
//   * every event and snapshot record of every entity, of every shard found on disk, owned or not
//     (after a handoff the old owner deletes its copy with delete_shard, but a copy it could not
//     delete yet, or a partial import of an aborted handoff, is still dumped and marked unowned);
//   * the shard ownership records (meta "shard_epoch/<shard>" = "owned E" or "released E").
//
// What it writes (stdout, one JSON object):
//   entries       every event {node, shard, kind, id, seq, digest} and snapshot (the same with
//                 "snapshot": true); digest = FNV-1a 64 of the record's payload (the codec's
//                 bytes, without the checksum of persistence/value_format.hpp), 16 hex digits
//   shard_epochs  {node: {shard: [E]}}: the storage engine keeps only the latest epoch per shard
//                 (owned or released), not the history, so each list has one element
//   owned         {node: {shard: {"epoch": E, "owned": bool}}}: the records themselves, so the
//                 checker can verify across nodes that each shard has exactly one owner, at the
//                 highest epoch any node recorded (journal_audit.py rule `ownership`)
//   replayed      per entity: the latest snapshot plus the later events, applied with the
//                 domain's own apply functions and rendered with protocol::to_json, i.e. the
//                 fields order.get / inventory.get / user.get / product.get return; with "seq",
//                 "snapshot_seq", "owned" (this node owns the entity's shard) and, when a snapshot
//                 exists and the events from seq 1 are on disk, "snapshot_consistent" (replaying
//                 every event from seq 1 renders the same state as snapshot + later events)
//   errors        records whose checksum fails (not listed in entries) or that do not decode
//                 (key, event or snapshot, ownership record)
//   stats         counts of events, snapshots, entities, wakeup entries
//
// What it cannot show: events carry no shard epoch on disk (the engine checks the epoch when it
// writes and does not store it), so the per-event `epoch` field of the audit format is absent;
// the epoch rule is checked across nodes with the ownership records instead. The on-disk format
// is deliberately left as it is.
//
// No CAF: links domain, persistence's key layout, protocol (for rendering) and RocksDB only.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ordermesh::node {

struct journal_dump_options {
  /// The node's --data-dir; the database is its `db` child (a directory that is itself a
  /// RocksDB database is accepted too).
  std::string data_dir;
  /// The node's --node-id: names the node in the output, and must match the id recorded in the
  /// data dir (when one is recorded).
  std::string node_id;
  /// Events plus snapshots at most; a larger journal is refused rather than held in memory.
  size_t max_records = 5000000;
  /// Decoding errors listed at most (the rest are counted).
  size_t max_errors = 100;
};

/// Dumps the journal of the stopped node at opts.data_dir. Returns true and sets *out to the JSON
/// object described above; returns false and sets *error when the data dir cannot be opened read
/// only, belongs to another node, or holds more than max_records records. Never writes to the
/// data dir.
bool dump_journal(const journal_dump_options& opts, nlohmann::json* out, std::string* error);

/// FNV-1a 64 of `bytes`, as 16 lowercase hex digits (the `digest` of an entry).
std::string journal_digest(std::string_view bytes);

}  // namespace ordermesh::node
