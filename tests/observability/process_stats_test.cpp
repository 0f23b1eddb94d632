// /proc/self read at render time, and the metrics every node has.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "observability/metrics_text.hpp"
#include "observability/process_stats.hpp"
#include "tests/observability/exposition_parser.hpp"

using namespace om::obs;
using om::obs::testing::parse_exposition;

TEST_CASE("proc stat parsing copes with parentheses and spaces in the command name",
          "[observability]") {
  const std::string line =
      "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 9 0 123456 "
      "987654321 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto f = parse_proc_stat(line);
  REQUIRE(f);
  CHECK(f->utime_ticks == 150);
  CHECK(f->stime_ticks == 50);
  CHECK(f->start_ticks == 123456);
  CHECK(f->vsize_bytes == 987654321);
  CHECK(f->rss_pages == 2048);
  CHECK_FALSE(parse_proc_stat("4242 (truncated) S 1 2"));
  CHECK_FALSE(parse_proc_stat("no parenthesis at all"));
}

TEST_CASE("process stats of this process follow what it does", "[observability]") {
  auto before = read_process_stats();
  REQUIRE(before);
  CHECK(before->resident_bytes > 0);
  CHECK(before->start_time_seconds > 1.6e9);  // after 2020: read from boot time, not zero
  // Opening descriptors shows in the count (read /proc/self/fd, not guessed).
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i)
    fds.push_back(open("/dev/null", O_RDONLY));
  auto after = read_process_stats();
  REQUIRE(after);
  CHECK(after->open_fds >= before->open_fds + 20);
  for (int fd : fds)
    close(fd);
  // CPU time only grows.
  volatile double x = 0;
  for (int i = 0; i < 20'000'000; ++i)
    x = x + i;
  auto later = read_process_stats();
  REQUIRE(later);
  CHECK(later->cpu_seconds >= before->cpu_seconds);
}

TEST_CASE("the node's metrics text holds process metrics and build info", "[observability]") {
  auto p = parse_exposition(render_metrics_text());
  CHECK(p.type.at("process_cpu_seconds_total") == "counter");
  CHECK(p.value("process_resident_memory_bytes") > 0);
  CHECK(p.value("process_open_fds") > 0);
  CHECK(p.value("process_start_time_seconds") > 1.6e9);
  auto build = p.find("ordermesh_build_info");
  REQUIRE(build.size() == 1);
  CHECK(build[0].labels.at("version") != "");
  CHECK(build[0].number() == 1);
}
