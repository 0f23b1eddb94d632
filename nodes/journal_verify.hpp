#pragma once
// ordermesh-journal verify: checks every event and snapshot of a stopped node's data dir
// (opened read-only, as for dump: nodes/journal_open.hpp) and names each damaged entity.
//
// Checked per record: the key has the layout of persistence/keys.hpp, and the value's CRC32C
// (persistence/value_format.hpp) matches. Checked per entity: its events are contiguous
// (seq 1, 2, ... or, above a snapshot, from at most the snapshot's seq + 1 on). RocksDB checks
// its own block checksums while reading (verify_checksums): a block that fails them cannot be
// attributed to one entity; it is reported with the last entity read before it, and the scan
// goes on at the next shard. Wakeup entries are checked for their 8-byte value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ordermesh::node {

struct journal_verify_options {
  std::string data_dir;       // the node's --data-dir (or its database directory)
  size_t max_damaged = 1000;  // damaged entities listed at most (the rest are counted)
};

/// One damaged entity (or unreadable stretch): the first problem found and how many there were.
struct damaged_entity {
  uint16_t shard = 0;
  std::string kind;  // "user", "order", ... ("?" for an unreadable stretch or a malformed key)
  std::string id;
  std::string first_id;  // an unreadable stretch: the last entity read before it
  uint64_t seq = 0;      // the first damaged record's seq (0: not one record)
  std::string what;      // "event checksum mismatch ...", "journal gap ...", ...
  uint64_t problems = 0;
};

struct journal_verify_report {
  uint64_t entities = 0;
  uint64_t events = 0;
  uint64_t snapshots = 0;
  uint64_t wakeups = 0;
  uint64_t damaged_count = 0;           // entities (and unreadable stretches) with damage
  std::vector<damaged_entity> damaged;  // the first max_damaged of them, in key order
};

/// Scans the data dir. False and *error set when it cannot be opened, or its values are not in
/// value_format::current (a 0.2.0 dir has no checksums to verify: orderd migrates it at start);
/// true otherwise (damage is in the report).
bool verify_journal(const journal_verify_options& opts, journal_verify_report* out,
                    std::string* error);

/// "damaged: shard=3 kind=user id=u-1 seq=4 problems=1: event checksum mismatch ...".
std::string describe(const damaged_entity& d);

}  // namespace ordermesh::node
