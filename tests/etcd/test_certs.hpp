#pragma once
// Certificates for a test, made in a temp dir by tests/etcd/make_test_certs.sh (the openssl CLI)
// in scripts/gen-certs.sh's layout: ca.pem / ca.key, and NAME.pem / NAME.key with CN=NAME and
// SAN DNS:NAME,DNS:localhost,IP:127.0.0.1. The destructor removes the dir.
#include <string>
#include <vector>

#include "cluster/etcd/etcd_config.hpp"

namespace ordermesh::etcd::test {

class test_certs {
 public:
  /// A fresh CA and one certificate per name; FAILs the test when openssl fails.
  explicit test_certs(const std::vector<std::string>& names);
  ~test_certs();
  test_certs(const test_certs&) = delete;
  test_certs& operator=(const test_certs&) = delete;

  /// More certificates from the same CA; `san` replaces the SAN list when not empty
  /// (e.g. "DNS:localhost": a certificate that does not name 127.0.0.1).
  void add(const std::vector<std::string>& names, const std::string& san = "");

  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string cert(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  /// The files of a client that trusts this CA and presents `name`'s certificate.
  tls_files client(const std::string& name) const { return {ca(), cert(name), key(name)}; }

 private:
  std::string dir_;
};

}  // namespace ordermesh::etcd::test
