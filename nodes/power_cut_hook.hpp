#pragma once
// Test-only: ORDERMESH_TEST_POWER_CUT=1 makes orderd open RocksDB through a
// persistence::power_cut_fs, and SIGUSR2 then cuts the node's power: the files lose everything
// not durable, as after a power loss, and the process ends at once (no shutdown, nothing more
// written). The cut waits for the next write through RocksDB (at most idle_cut_after, 0.5 s),
// so that it lands where it hurts most: a write in the page cache, not synced yet; a node with
// nothing to write is cut when the wait ends. The power-cut chaos scenario and
// tests/system/power_cut_test.py use it; it is not a user flag (undocumented in --help), and orderd
// logs a loud warning when it is set.
//
// The signal is taken by a thread of its own that waits for it (sigwait), never by a handler:
// the cut takes a mutex and truncates files, which no signal handler may do.
#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace ordermesh::persistence {
class power_cut_fs;
}  // namespace ordermesh::persistence

namespace ordermesh::node {

/// How orderd ends after a simulated power cut (as a shell reports a kill -9: it did not stop,
/// it was stopped).
constexpr int power_cut_exit_code = 137;

class power_cut_hook {
 public:
  /// Null unless ORDERMESH_TEST_POWER_CUT is "1". Otherwise blocks SIGUSR2 in the calling thread:
  /// call it before any other thread starts, so that every thread inherits the mask and only the
  /// hook's waiter ever takes the signal.
  static std::unique_ptr<power_cut_hook> from_environment();
  ~power_cut_hook();

  /// What storage_options::file_system must be set to.
  std::shared_ptr<rocksdb::FileSystem> file_system() const;
  /// Logs the warning and starts the (detached) thread that waits for SIGUSR2, then cuts the
  /// power (during the next write, or after 0.5 s), logs what the cut dropped and ends the
  /// process with power_cut_exit_code.
  void arm(std::shared_ptr<spdlog::logger> log, const std::string& node_id);

 private:
  power_cut_hook();
  std::shared_ptr<persistence::power_cut_fs> fs_;
};

}  // namespace ordermesh::node
