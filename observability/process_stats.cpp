#include "observability/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace om::obs {

namespace {

/// The n-th (0-based) space-separated field of `s` as a number; false when absent or not one.
bool field(std::string_view s, size_t n, uint64_t& out) {
  size_t pos = 0;
  for (size_t i = 0; i <= n; ++i) {
    while (pos < s.size() && s[pos] == ' ')
      ++pos;
    size_t end = s.find(' ', pos);
    if (end == std::string_view::npos)
      end = s.size();
    if (pos >= end)
      return false;
    if (i == n) {
      auto r = std::from_chars(s.data() + pos, s.data() + end, out);
      return r.ec == std::errc{} && r.ptr == s.data() + end;
    }
    pos = end;
  }
  return false;
}

/// Boot time, seconds since the Unix epoch (`btime` of /proc/stat); 0 when unknown.
uint64_t boot_time_seconds() {
  std::ifstream in("/proc/stat");
  std::string line;
  for (int i = 0; i < 1024 && std::getline(in, line); ++i) {
    if (line.rfind("btime ", 0) == 0) {
      uint64_t v = 0;
      if (field(line, 1, v))
        return v;
    }
  }
  return 0;
}

uint64_t count_open_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d)
    return 0;
  uint64_t n = 0;
  while (n < max_counted_fds + 2) {
    auto* e = readdir(d);
    if (!e)
      break;
    if (e->d_name[0] != '.')
      ++n;
  }
  closedir(d);
  return n > 0 ? n - 1 : 0;  // the descriptor opendir itself holds
}

}  // namespace

std::optional<proc_stat_fields> parse_proc_stat(std::string_view line) {
  auto close = line.rfind(')');
  if (close == std::string_view::npos || close + 2 > line.size())
    return std::nullopt;
  // After "pid (comm) ": state is field 0, so utime (field 14 of stat(5)) is 11, and so on.
  auto rest = line.substr(close + 2);
  proc_stat_fields f;
  if (!field(rest, 11, f.utime_ticks) || !field(rest, 12, f.stime_ticks) ||
      !field(rest, 19, f.start_ticks) || !field(rest, 20, f.vsize_bytes) ||
      !field(rest, 21, f.rss_pages))
    return std::nullopt;
  return f;
}

std::optional<process_stats> read_process_stats() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line))
    return std::nullopt;
  auto f = parse_proc_stat(line);
  if (!f)
    return std::nullopt;
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (ticks <= 0 || page <= 0)
    return std::nullopt;
  process_stats s;
  s.cpu_seconds = static_cast<double>(f->utime_ticks + f->stime_ticks) / ticks;
  s.resident_bytes = f->rss_pages * static_cast<uint64_t>(page);
  s.virtual_bytes = f->vsize_bytes;
  s.open_fds = count_open_fds();
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
    s.max_fds = lim.rlim_cur;
  s.start_time_seconds =
      static_cast<double>(boot_time_seconds()) + static_cast<double>(f->start_ticks) / ticks;
  return s;
}

}  // namespace om::obs
