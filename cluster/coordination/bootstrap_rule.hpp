#pragma once
// When the controller creates the shard map of a new replicated cluster: a pure function, so
// unit tests drive it without a store or a clock. Every shard starts with all its replicas once
// --replication-factor members have joined (the usual start: all nodes within a second). If
// fewer have joined after --bootstrap-grace, the map is made on those, as long as they are at
// least --min-insync (fewer could acknowledge no write anyway); the replica planning then adds
// the missing replicas, and moves leadership to them, as members join (docs/REPLICATION.md,
// "Replication factor above the number of nodes").
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace ordermesh::cluster::coordination {

/// Whether to create the map now, with `members` joined (none leaving), after waiting `waited`
/// since the controller first saw too few; `grace` <= 0 waits for the full factor.
bool should_create_map(size_t members, uint16_t replication_factor, uint16_t min_insync,
                       std::chrono::milliseconds waited, std::chrono::milliseconds grace);

}  // namespace ordermesh::cluster::coordination
