// Heartbeat failure detection with injected time.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cluster/failure_detector.hpp"

using namespace ordermesh::cluster;
using names = std::vector<std::string>;

TEST_CASE("failure_detector: a watched member gets a full timeout", "[cluster][fd]") {
  failure_detector fd(1000);
  fd.watch("n2", 5000);
  CHECK(fd.alive("n2", 5000));
  CHECK(fd.alive("n2", 6000));  // exactly the timeout: not yet "longer than"
  CHECK(fd.suspects(6000).empty());
  CHECK_FALSE(fd.alive("n2", 6001));
  CHECK(fd.suspects(6001) == names{"n2"});
}

TEST_CASE("failure_detector: hearing from a member restarts its timeout", "[cluster][fd]") {
  failure_detector fd(1000);
  fd.watch("n2", 0);
  fd.heard("n2", 800);
  CHECK(fd.alive("n2", 1500));
  CHECK(fd.suspects(1500).empty());
  CHECK(fd.suspects(1801) == names{"n2"});
  // A suspect that speaks again is alive again.
  fd.heard("n2", 2500);
  CHECK(fd.alive("n2", 2500));
  CHECK(fd.suspects(2500).empty());
}

TEST_CASE("failure_detector: an older timestamp does not undo a newer one", "[cluster][fd]") {
  failure_detector fd(1000);
  fd.watch("n2", 0);
  fd.heard("n2", 900);
  fd.heard("n2", 100);  // delivered late
  CHECK(fd.alive("n2", 1900));
}

TEST_CASE("failure_detector: watching again keeps the last-heard time", "[cluster][fd]") {
  // The node layer re-watches all members on every view; that must not hide a silent one.
  failure_detector fd(1000);
  fd.watch("n2", 0);
  fd.watch("n2", 900);
  CHECK(fd.suspects(1001) == names{"n2"});
}

TEST_CASE("failure_detector: unwatched and forgotten nodes are not tracked", "[cluster][fd]") {
  failure_detector fd(1000);
  fd.heard("stray", 0);
  CHECK_FALSE(fd.alive("stray", 0));
  CHECK(fd.suspects(5000).empty());

  fd.watch("n2", 0);
  fd.forget("n2");
  CHECK_FALSE(fd.alive("n2", 0));
  CHECK(fd.suspects(5000).empty());
  fd.forget("never-watched");  // harmless
}

TEST_CASE("failure_detector: suspects are sorted and only the silent ones", "[cluster][fd]") {
  failure_detector fd(100);
  for (const char* id : {"n5", "n1", "n4", "n3", "n2", "n0"})
    fd.watch(id, 0);
  fd.heard("n3", 150);
  fd.heard("n0", 150);
  CHECK(fd.suspects(200) == names{"n1", "n2", "n4", "n5"});
  CHECK(fd.alive("n3", 200));
  CHECK_FALSE(fd.alive("n1", 200));
}
