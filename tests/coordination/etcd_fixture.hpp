#pragma once
// The contract fixture on a real etcd, with what the etcd-only cases need besides: the private
// etcd process, a raw client on it (to see keys as stored, put garbage, revoke a lease) and the
// session configuration.
#include <map>
#include <memory>
#include <string>

#include "cluster/coordination/etcd_session.hpp"
#include "cluster/etcd/etcd_client.hpp"
#include "tests/coordination/contract_fixture.hpp"
#include "tests/coordination/tcp_proxy.hpp"
#include "tests/etcd/etcd_process.hpp"

namespace ordermesh::cluster::coordination::test {

class etcd_fixture final : public contract_fixture {
 public:
  /// Starts etcd (FAILs the test when it cannot); keys go under /ordermesh/<cluster>/.
  explicit etcd_fixture(std::string cluster = "t");

  std::string name() const override { return "etcd"; }
  std::unique_ptr<session> connect() override;
  std::unique_ptr<session> connect_other_cluster() override;
  std::unique_ptr<session> connect_as(const std::string& node_id) override;
  void set_reachable(const std::string& node_id, bool reachable) override;
  void let_lease_run_out(const std::string& node_id, session& alive) override;
  void expire_lease(const std::string& node_id) override;
  int64_t revision() override;

  /// A session configuration for this etcd and cluster.
  etcd_session_config config() const;
  etcd::test::etcd_process& process() { return etcd_; }
  /// A client of its own (not any session's): sees keys as stored.
  etcd::client& raw() { return raw_; }
  /// "/ordermesh/<cluster>/" + rest.
  std::string key(const std::string& rest) const { return "/ordermesh/" + cluster_ + "/" + rest; }

 private:
  etcd::test::etcd_process etcd_;
  etcd::client raw_;
  std::string cluster_;
  std::map<std::string, std::unique_ptr<tcp_proxy>> proxies_;
};

}  // namespace ordermesh::cluster::coordination::test
