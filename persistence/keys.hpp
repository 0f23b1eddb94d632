#pragma once
// The on-disk key layout. Every key of an entity starts with its shard number, so one shard's
// data (journal, snapshots, wakeups) is one contiguous key range that can be copied as a unit.
//
//   event:     [shard:u16be][kind:u8][id bytes][0x00]['e'][seq:u64be]   -> event bytes
//   snapshot:  [shard:u16be][kind:u8][id bytes][0x00]['s'][seq:u64be]   -> state bytes
//   wakeup:    [shard:u16be][0xF0][kind:u8][id bytes]                   -> due_ms:i64be
//   meta:      [0xFF 0xFF]['m'][name]                                   -> value
// Ids never contain 0x00 (they match [A-Za-z0-9._-]), so the 0x00 ends the id unambiguously.
#include <cstdint>
#include <string>
#include <string_view>

namespace ordermesh::persistence {

struct entity_key {
  uint16_t shard = 0;
  uint8_t kind = 0;
  std::string id;
};

namespace keys {
constexpr uint8_t wakeup_tag = 0xF0;
/// The "shard" of node metadata: never an entity shard, never owned, exported or imported.
constexpr uint16_t meta_shard = 0xFFFF;
std::string entity_prefix(const entity_key& k);  // up to and including 0x00
std::string event(const entity_key& k, uint64_t seq);
std::string snapshot(const entity_key& k, uint64_t seq);
std::string wakeup(const entity_key& k);
std::string wakeup_prefix(uint16_t shard);
std::string shard_prefix(uint16_t shard);
/// Exclusive upper bound of `shard`'s key range: the prefix of the next shard (for the last
/// entity shard, 0xFFFE, that is the meta range, which is thus never part of a shard's range).
/// Only for shards below 0xFFFF.
std::string shard_end(uint16_t shard);
/// Whether `key` lies in `shard`'s range: its prefix followed by at least one byte (no key of
/// this layout is a bare prefix).
bool in_shard(std::string_view key, uint16_t shard);
std::string meta(std::string_view name);
/// Decodes an event or snapshot key: its entity, its tag ('e' or 's') and its seq; false when
/// `key` is not one (a wakeup, a meta key, or malformed).
bool parse_record(std::string_view key, entity_key& out, char& tag, uint64_t& seq);
/// Decodes a wakeup key; false when `key` is not one.
bool parse_wakeup(std::string_view key, entity_key& out);
/// Whether `k` can be stored: id non-empty and [A-Za-z0-9._-]+, kind != wakeup_tag (that byte
/// marks a shard's wakeup range), shard != 0xFFFF (the meta range).
bool valid(const entity_key& k);
}  // namespace keys

}  // namespace ordermesh::persistence
