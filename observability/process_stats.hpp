#pragma once
// What the kernel knows of this process, read from /proc at render time (no sampling thread):
// CPU time, memory, open descriptors, start time. Linux only; elsewhere read_process_stats()
// returns nullopt and the process metrics are left out.
#include <cstdint>
#include <optional>
#include <string_view>

namespace om::obs {

struct process_stats {
  double cpu_seconds = 0;         // user + system
  uint64_t resident_bytes = 0;    // RSS
  uint64_t virtual_bytes = 0;     // address space
  uint64_t open_fds = 0;          // entries of /proc/self/fd (at most max_counted_fds)
  uint64_t max_fds = 0;           // RLIMIT_NOFILE soft limit
  double start_time_seconds = 0;  // since the Unix epoch
};

/// Descriptors counted at most (the loop over /proc/self/fd is bounded).
constexpr uint64_t max_counted_fds = 1 << 20;

/// The fields of /proc/<pid>/stat that the metrics use, in the kernel's units.
struct proc_stat_fields {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot
  uint64_t vsize_bytes = 0;
  uint64_t rss_pages = 0;
};

/// Parses one /proc/<pid>/stat line (the command name may hold spaces and parentheses: the
/// fields start after the last ')'). nullopt when it is not one.
std::optional<proc_stat_fields> parse_proc_stat(std::string_view line);

/// Reads /proc/self now. nullopt when /proc cannot be read.
std::optional<process_stats> read_process_stats();

}  // namespace om::obs
