#include "cluster/sharding.hpp"

namespace ordermesh::cluster {

uint64_t stable_hash(uint8_t kind, std::string_view id) {
  constexpr uint64_t fnv_offset = 14695981039346656037ull;
  constexpr uint64_t fnv_prime = 1099511628211ull;
  uint64_t h = fnv_offset;
  h = (h ^ kind) * fnv_prime;
  for (unsigned char c : id)
    h = (h ^ c) * fnv_prime;
  // FNV's low bits mix poorly for short keys; a final avalanche (splitmix64) spreads them.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace ordermesh::cluster
