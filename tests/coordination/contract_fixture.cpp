#include "tests/coordination/contract_fixture.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "cluster/coordination/memory_store.hpp"
#include "tests/coordination/etcd_fixture.hpp"

namespace ordermesh::cluster::coordination::test {

using namespace std::chrono_literals;

namespace {

/// A clock the test moves by hand.
struct manual_clock {
  std::chrono::steady_clock::time_point now{};
  memory_store::clock_fn fn() {
    return [this] { return now; };
  }
};

class memory_fixture final : public contract_fixture {
 public:
  std::string name() const override { return "memory"; }
  std::unique_ptr<session> connect() override { return store_.connect(); }
  std::unique_ptr<session> connect_other_cluster() override { return other_.connect(); }
  std::unique_ptr<session> connect_as(const std::string&) override { return store_.connect(); }
  void set_reachable(const std::string& node_id, bool reachable) override {
    store_.set_reachable(node_id, reachable);
  }
  void let_lease_run_out(const std::string&, session& alive) override {
    // Every lease in these cases is 3 s: after 4 s without renewal it is gone; `alive` renewed
    // halfway keeps its own.
    clock_.now += 2s;
    REQUIRE(alive.keepalive());
    clock_.now += 2s;
  }
  void expire_lease(const std::string& node_id) override { store_.expire_lease(node_id); }
  int64_t revision() override { return store_.revision(); }

 private:
  manual_clock clock_;
  memory_store store_{clock_.fn()};
  memory_store other_{clock_.fn()};
};

/// How long a real lease expiry may take: TTL (3 s in these cases) plus etcd's expiry sweep
/// (every 500 ms) and a loaded machine's slack.
constexpr auto expiry_bound = 20s;

}  // namespace

std::unique_ptr<contract_fixture> make_memory_fixture() {
  return std::make_unique<memory_fixture>();
}

std::unique_ptr<contract_fixture> make_etcd_fixture() {
  return std::make_unique<etcd_fixture>();
}

etcd_fixture::etcd_fixture(std::string cluster)
    : raw_({etcd_.client_endpoint()}), cluster_(std::move(cluster)) {}

etcd_session_config etcd_fixture::config() const {
  etcd_session_config c;
  c.endpoints = {etcd_.client_endpoint()};
  c.cluster = cluster_;
  return c;
}

std::unique_ptr<session> etcd_fixture::connect() {
  return make_etcd_session(config());
}

std::unique_ptr<session> etcd_fixture::connect_other_cluster() {
  auto c = config();
  c.cluster = cluster_ + "-other";
  return make_etcd_session(c);
}

std::unique_ptr<session> etcd_fixture::connect_as(const std::string& node_id) {
  auto& proxy = proxies_[node_id];
  if (!proxy)
    proxy = std::make_unique<tcp_proxy>(etcd_.client_endpoint().port);
  auto c = config();
  c.endpoints = {etcd::endpoint{"127.0.0.1", proxy->port()}};
  return make_etcd_session(c);
}

void etcd_fixture::set_reachable(const std::string& node_id, bool reachable) {
  auto it = proxies_.find(node_id);
  REQUIRE(it != proxies_.end());
  it->second->set_cut(!reachable);
}

void etcd_fixture::let_lease_run_out(const std::string& node_id, session& alive) {
  etcd::range_request r;
  r.key = key("members/" + node_id);
  const auto give_up = std::chrono::steady_clock::now() + expiry_bound;
  // Bounded by expiry_bound.
  while (std::chrono::steady_clock::now() < give_up) {
    REQUIRE(alive.keepalive());
    auto got = raw_.range(r, etcd::deadline_after(2s));
    REQUIRE(got.ok());
    if (got->kvs.empty())
      return;
    std::this_thread::sleep_for(200ms);
  }
  FAIL("the lease of " << node_id << " did not expire within " << expiry_bound.count() << " s");
}

void etcd_fixture::expire_lease(const std::string& node_id) {
  etcd::range_request r;
  r.key = key("members/" + node_id);
  auto got = raw_.range(r, etcd::deadline_after(2s));
  REQUIRE(got.ok());
  REQUIRE(got->kvs.size() == 1);
  REQUIRE(got->kvs[0].lease != 0);
  auto revoked = raw_.lease_revoke(got->kvs[0].lease, etcd::deadline_after(2s));
  REQUIRE(revoked.ok());
}

int64_t etcd_fixture::revision() {
  etcd::range_request r;
  r.key = key("config");
  r.count_only = true;
  auto got = raw_.range(r, etcd::deadline_after(2s));
  REQUIRE(got.ok());
  return got->revision;
}

}  // namespace ordermesh::cluster::coordination::test
