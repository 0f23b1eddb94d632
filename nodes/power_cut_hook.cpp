#include "nodes/power_cut_hook.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <pthread.h>
#include <rocksdb/file_system.h>

#include "persistence/power_cut_fs.hpp"

namespace ordermesh::node {

namespace {

/// How long SIGUSR2 waits for a write to cut in before it cuts an idle node.
constexpr std::chrono::milliseconds idle_cut_after{500};

sigset_t cut_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  return set;
}

}  // namespace

power_cut_hook::power_cut_hook()
    : fs_(std::make_shared<persistence::power_cut_fs>(rocksdb::FileSystem::Default())) {}

power_cut_hook::~power_cut_hook() = default;

std::unique_ptr<power_cut_hook> power_cut_hook::from_environment() {
  const char* value = std::getenv("ORDERMESH_TEST_POWER_CUT");
  if (value == nullptr || std::strcmp(value, "1") != 0)
    return nullptr;
  sigset_t set = cut_signal();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return std::unique_ptr<power_cut_hook>(new power_cut_hook());
}

std::shared_ptr<rocksdb::FileSystem> power_cut_hook::file_system() const {
  return fs_;
}

void power_cut_hook::arm(std::shared_ptr<spdlog::logger> log, const std::string& node_id) {
  log->warn(
      "node={} ORDERMESH_TEST_POWER_CUT=1: FOR TESTS ONLY. Storage runs over a simulated "
      "disk, and SIGUSR2 cuts its power: everything not synced is dropped and the process ends "
      "at once (exit {}). Never set this outside tests",
      node_id, power_cut_exit_code);
  std::thread([fs = fs_, log = std::move(log), node_id] {
    sigset_t set = cut_signal();
    int sig = 0;
    while (sigwait(&set, &sig) != 0 || sig != SIGUSR2) {
    }
    // Ends the process right where the cut happened: nothing runs on after it.
    auto end = [log, node_id](const char* when, const persistence::power_cut_report& r) {
      log->critical(
          "node={} SIGUSR2: simulated power cut {}: {} files cut back ({} bytes dropped), {} "
          "files removed, {} renames undone, {} errors; exiting now",
          node_id, when, r.files_truncated, r.bytes_dropped, r.files_removed, r.renames_undone,
          r.errors);
      log->flush();
      std::_Exit(power_cut_exit_code);
    };
    // Within a write if one comes soon (the harshest moment: written, not synced), else now.
    fs->cut_at_next_write(
        [end](const persistence::power_cut_report& r) { end("during a write", r); });
    std::this_thread::sleep_for(idle_cut_after);
    end("while idle", fs->cut());
  }).detach();
}

}  // namespace ordermesh::node
