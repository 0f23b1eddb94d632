#include "nodes/node_meta.hpp"

#include <charconv>
#include <cstdint>
#include <random>

#include "persistence/storage_engine.hpp"

namespace ordermesh::node {

bool check_node_meta(persistence::storage_engine& storage, const node_config& cfg,
                     std::string* why) {
  struct field {
    const char* name;
    std::string value;
    const char* flag;
  } fields[] = {{"node_id", cfg.node_id, "--node-id"},
                {"shard_count", std::to_string(cfg.shards), "--shards"}};
  for (auto& f : fields) {
    std::string stored;
    auto st = storage.get_meta(f.name, &stored);
    if (st.is_ok()) {
      if (stored != f.value) {
        *why = std::string("the data dir belongs to ") + f.name + "=" + stored + ", not " + f.flag +
               " " + f.value;
        return false;
      }
      continue;
    }
    if (st.kind() != persistence::status::code::not_found) {
      *why = "cannot read node metadata: " + st.to_string();
      return false;
    }
    st = storage.put_meta(f.name, f.value);
    if (!st) {
      *why = "cannot write node metadata: " + st.to_string();
      return false;
    }
  }
  return true;
}

int64_t disk_identity(persistence::storage_engine& storage, std::string* why) {
  std::string stored;
  auto st = storage.get_meta("disk_id", &stored);
  if (st.is_ok()) {
    int64_t id = 0;
    auto [end, ec] = std::from_chars(stored.data(), stored.data() + stored.size(), id);
    if (ec != std::errc() || end != stored.data() + stored.size() || id <= 0) {
      *why = "the data dir's disk_id is not a positive number: '" + stored + "'";
      return 0;
    }
    return id;
  }
  if (st.kind() != persistence::status::code::not_found) {
    *why = "cannot read node metadata: " + st.to_string();
    return 0;
  }
  return renew_disk_identity(storage, why) ? disk_identity(storage, why) : 0;
}

bool renew_disk_identity(persistence::storage_engine& storage, std::string* why) {
  std::random_device rd;
  // 53 bits: exact as a JSON number anywhere (cluster.status shows it), and plenty to tell apart
  // the data dirs one node id ever has.
  std::uniform_int_distribution<int64_t> pick(1, (int64_t{1} << 53) - 1);
  auto st = storage.put_meta("disk_id", std::to_string(pick(rd)));
  if (!st) {
    *why = "cannot write node metadata: " + st.to_string();
    return false;
  }
  return true;
}

}  // namespace ordermesh::node
