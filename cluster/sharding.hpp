#pragma once
// Entity -> shard: a stable hash of (kind, id) modulo the shard count fixed when the cluster was
// founded. Stable means the same on every node, build and release (FNV-1a 64, not std::hash).
#include <cstdint>
#include <string_view>

namespace ordermesh::cluster {

constexpr uint16_t default_shard_count = 64;
constexpr uint16_t max_shard_count = 4096;

uint64_t stable_hash(uint8_t kind, std::string_view id);

inline uint16_t shard_of(uint8_t kind, std::string_view id, uint16_t shard_count) {
  return static_cast<uint16_t>(stable_hash(kind, id) % shard_count);
}

}  // namespace ordermesh::cluster
