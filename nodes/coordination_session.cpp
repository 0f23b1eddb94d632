#include "nodes/coordination_session.hpp"

#include <chrono>
#include <thread>

#include "cluster/coordination/etcd_session.hpp"
#include "cluster/coordination/local_seed.hpp"
#include "cluster/coordination/memory_store.hpp"
#include "cluster/etcd/etcd_config.hpp"
#include "nodes/admin_fingerprint.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::node {

namespace co = cluster::coordination;

namespace {

std::optional<std::string> meta(persistence::storage_engine& storage, const char* name) {
  std::string value;
  if (storage.get_meta(name, &value))
    return value;
  return std::nullopt;
}

std::unique_ptr<co::session> open_etcd(persistence::storage_engine& storage, const node_config& cfg,
                                       std::string* why) {
  // Refused before etcd hears of it: as a member it could be elected controller and bootstrap
  // a shard map around a node that then leaves for good.
  if (meta(storage, co::store_kind_meta).value_or("") == "local") {
    *why = "this data dir is a node alone's (cluster " +
           meta(storage, co::cluster_id_meta).value_or("?") +
           ", started without --etcd): it cannot join an etcd cluster";
    return nullptr;
  }
  auto endpoints = etcd::parse_endpoints(cfg.etcd);
  if (!endpoints) {
    *why = "--etcd: " + endpoints.err().message;
    return nullptr;
  }
  co::etcd_session_config ecfg;
  if (!endpoints->empty() && endpoints->front().tls) {
    // etcd runs with --client-cert-auth: without a certificate of our own nothing would work,
    // and without the CA we could not tell etcd from anyone listening on its port.
    if (cfg.tls_cert.empty() || cfg.tls_key.empty() || cfg.tls_ca.empty()) {
      *why = "--etcd " + cfg.etcd +
             " is https: give --tls-cert, --tls-key and --tls-ca (this node's certificate and "
             "key, and the CA that signed etcd's certificate)";
      return nullptr;
    }
    ecfg.client.tls = etcd::tls_files{cfg.tls_ca, cfg.tls_cert, cfg.tls_key};
  }
  // Unreadable or mismatched files are a start-up error, not a stream of failed calls later.
  const etcd::error bad = etcd::check_client_config(*endpoints, ecfg.client);
  if (bad.code != etcd::errc::none) {
    *why = "--etcd: " + bad.message;
    return nullptr;
  }
  ecfg.endpoints = std::move(endpoints.value());
  ecfg.cluster = cfg.cluster_name;
  return co::make_etcd_session(std::move(ecfg));
}

std::unique_ptr<co::session> open_local(persistence::storage_engine& storage,
                                        const node_config& cfg, std::string* why) {
  co::disk_facts facts;
  facts.cluster_id = meta(storage, co::cluster_id_meta);
  facts.store_kind = meta(storage, co::store_kind_meta);
  facts.has_seeds_view = meta(storage, co::seeds_view_meta).has_value();
  facts.owned_epochs.resize(cfg.shards);
  for (uint16_t i = 0; i < cfg.shards; ++i)
    facts.owned_epochs[i] = storage.owned_epoch(i);
  auto seed = co::seed_from_disk(facts, cfg.node_id, co::new_cluster_id());
  if (!seed) {
    *why = seed.err().message;
    return nullptr;
  }
  if (!facts.store_kind) {
    // Before the cluster id is (the agent writes it on the first state it reads): a disk with
    // an id but no kind is an etcd member's.
    auto st = storage.put_meta(co::store_kind_meta, "local");
    if (!st) {
      *why = "cannot record the coordination kind: " + st.to_string();
      return nullptr;
    }
  }
  auto session = co::make_local_coordination(seed.value().config, std::move(seed.value().shards));
  if (!session)
    *why = "the shard map read from the disk does not fit its shard count";
  return session;
}

}  // namespace

bool check_admin_secret(co::session& session, const node_config& cfg, std::string* why) {
  const std::string mine = admin_fingerprint(cfg.admin_token);
  const auto deadline = std::chrono::steady_clock::now() + cfg.join_timeout;
  for (;;) {
    auto stored = session.claim_secret_fingerprint(mine);
    if (stored && stored.value() == mine)
      return true;
    if (stored) {
      *why = "refused to join cluster '" + cfg.cluster_name +
             "': its admin token is not this node's (the admin-token fingerprints in etcd "
             "differ), so neither side could verify the other's session tokens. Start every "
             "node of a cluster with the same admin token (--admin-token-file)";
      return false;
    }
    if (stored.err().code != co::errc::unavailable ||
        std::chrono::steady_clock::now() >= deadline) {
      *why = "could not compare the admin token with cluster '" + cfg.cluster_name +
             "' in etcd: " + stored.err().to_string();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::unique_ptr<co::session> open_coordination(persistence::storage_engine& storage,
                                               const node_config& cfg, std::string* why) {
  return cfg.etcd.empty() ? open_local(storage, cfg, why) : open_etcd(storage, cfg, why);
}

}  // namespace ordermesh::node
