#pragma once
// A private etcd for a test: free ports on 127.0.0.1, a temp data dir, started with fork/exec and
// waited for (at most 20 s); the destructor kills exactly that pid and removes the dir. A missing
// /usr/bin/etcd fails the test: these tests never skip. In TLS mode its client URL is
// https://127.0.0.1:port with --client-cert-auth (peer URLs stay plain http on loopback: one
// member, no peer traffic).
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cluster/etcd/etcd_config.hpp"

namespace ordermesh::etcd::test {

/// What a TLS etcd serves with, and how the launcher's readiness probe reaches it.
struct etcd_tls {
  std::string ca_file;    // --trusted-ca-file: the CA client certificates must chain to
  std::string cert_file;  // --cert-file (also the gateway's client certificate: clientAuth)
  std::string key_file;   // --key-file
  tls_files probe;        // the probe's CA and client certificate
  std::string probe_host = "127.0.0.1";  // the host the probe names (a SAN of cert_file)
};

/// A port on 127.0.0.1 that nothing listens on (bound, then closed): connecting is refused.
uint16_t unused_port();

class etcd_process {
 public:
  /// Starts etcd (plain http, or TLS with client-cert-auth when `tls` is set) and waits until
  /// it answers a read; FAILs the test when it cannot.
  explicit etcd_process(std::optional<etcd_tls> tls = std::nullopt);
  ~etcd_process();
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  /// "http://127.0.0.1:<client port>" ("https://" in TLS mode).
  std::string url() const;
  endpoint client_endpoint() const { return endpoint{"127.0.0.1", client_port_, tls_.has_value()}; }

  /// SIGKILL and reap; the data dir stays for restart().
  void kill();
  /// Starts etcd again on the same ports and data dir and waits until it answers.
  void restart();
  /// SIGSTOP / SIGCONT: etcd keeps its sockets but answers nothing.
  void pause();
  void resume();

 private:
  /// Forks and execs etcd; true when it answers within the bound (false with `why`).
  bool launch(std::string& why);
  std::string log_tail() const;

  std::optional<etcd_tls> tls_;
  std::string dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ordermesh::etcd::test
