#include "nodes/node_meta.hpp"

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

}  // namespace ordermesh::node
