#pragma once
// How an event or snapshot value is stored: the bytes the domain codec wrote, followed by a
// 4-byte CRC32C (big-endian) of the record's key and those bytes.
//
//   stored value = payload || crc32c(key || payload):u32be
//
// The key is in the checksum so that a value found under another key (a misdirected write, a
// copy gone wrong) is caught too. The checksum is part of the stored bytes: replication, shard
// copies and backups move values byte for byte, and every reader (load, export, import, apply,
// ordermesh-journal) checks it before trusting the payload. Wakeup entries and meta records
// stay as they are (the engine parses them itself and refuses malformed ones).
//
// The format of a data dir is named by the meta record "value_format" (value_format::current),
// written when a dir is created; a dir without it was written by 0.2.0 and is migrated once when
// it is opened (persistence/value_migration.hpp).
#include <cstdint>
#include <string>
#include <string_view>

#include "persistence/status.hpp"

namespace ordermesh::persistence::value_format {

/// The meta record naming the value format of a data dir, and the one this version writes.
constexpr std::string_view meta_name = "value_format";
constexpr std::string_view current = "crc32c-1";
constexpr size_t trailer_bytes = 4;

/// The stored form of `payload` under `key`.
std::string seal(std::string_view key, std::string_view payload);

/// Checks a stored value and sets `payload` to the bytes before the trailer (a view into
/// `stored`). status corruption naming the record (describe(key)) when the checksum does not
/// match or the value is too short to hold one.
status unseal(std::string_view key, std::string_view stored, std::string_view& payload);

/// Whether values under `key` carry a checksum (event and snapshot records).
bool is_checked(std::string_view key);

/// unseal for checked keys, ok for every other key: what import and apply run on raw records.
status check(std::string_view key, std::string_view stored);

/// "kind 1 id u-7 event 3 (shard 12)": the record a key names, for messages; a key that is no
/// event or snapshot key is shown as hex.
std::string describe(std::string_view key);

}  // namespace ordermesh::persistence::value_format
