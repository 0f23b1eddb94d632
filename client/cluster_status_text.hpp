#pragma once
// `orderctl cluster-status`: the cluster.status result (docs/PROTOCOL.md) as a few tables rather
// than the 64 shard objects the JSON holds: the members; per member, the shards it leads as
// ranges; per shard group (shards with the same replicas and in-sync set), that set; moves in
// progress. Pure functions of the reply, so unit tests can check them without a node.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ordermesh::client {

/// "0-3,7,9-10" for shard numbers in any order (duplicates once); "(none)" for none.
std::string shard_ranges(std::vector<int64_t> shards);

/// The whole rendering, lines without trailing blanks. Fields it does not know are left out
/// (`orderctl --json` shows everything); a result that is not an object is dumped as JSON.
/// Only current members are listed as unreachable: an id the reply names that is no member any
/// more (it left) is not a node anyone should go and look for.
std::string cluster_status_text(const nlohmann::json& status);

}  // namespace ordermesh::client
