#pragma once
// A private etcd for a test: free ports on 127.0.0.1, a temp data dir, started with fork/exec and
// waited for (at most 20 s); the destructor kills exactly that pid and removes the dir. A missing
// /usr/bin/etcd fails the test: these tests never skip.
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "cluster/etcd/etcd_config.hpp"

namespace ordermesh::etcd::test {

/// A port on 127.0.0.1 that nothing listens on (bound, then closed): connecting is refused.
uint16_t unused_port();

class etcd_process {
 public:
  /// Starts etcd and waits until it answers a read; FAILs the test when it cannot.
  etcd_process();
  ~etcd_process();
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  /// "http://127.0.0.1:<client port>".
  std::string url() const;
  endpoint client_endpoint() const { return endpoint{"127.0.0.1", client_port_}; }

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

  std::string dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ordermesh::etcd::test
