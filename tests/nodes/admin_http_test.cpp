// The admin port's pure parts: the readiness rule, the routing, the membership events; and the
// Beast server over real loopback TCP (its bounds: header limit, bodies, methods, connections).
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "nodes/admin/admin_routes.hpp"
#include "nodes/admin/admin_server.hpp"
#include "nodes/admin/membership_events.hpp"
#include "nodes/admin/readiness.hpp"

using namespace ordermesh::node::admin;

namespace {

readiness_inputs all_good() {
  readiness_inputs in;
  in.joined = true;
  in.view_fresh = true;
  in.storage_healthy = true;
  in.lease_valid = true;
  return in;
}

std::vector<std::string> failing(const readiness_verdict& v) {
  std::vector<std::string> out;
  for (auto& c : v.checks)
    if (!c.ok)
      out.push_back(c.name);
  return out;
}

admin_sources fake_sources(bool ready) {
  admin_sources s;
  s.metrics_text = [] { return std::string("ordermesh_build_info{version=\"t\"} 1\n"); };
  s.readiness = [ready] {
    auto in = all_good();
    in.joined = ready;
    return evaluate_readiness(in);
  };
  s.status = [] { return nlohmann::json{{"node_id", "n1"}}; };
  return s;
}

/// Sends `request` to 127.0.0.1:port and reads until the server closes (or 5 s pass, then
/// *closed_by_server stays false: a server that failed to close cannot pass for one that did).
std::string http_exchange(uint16_t port, const std::string& request,
                          bool* closed_by_server = nullptr) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(sock, asio::buffer(request));
  timeval tv{5, 0};
  setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  for (int i = 0; i < 1000; ++i) {
    auto n = sock.read_some(asio::buffer(buf), ec);
    if (ec) {
      if (closed_by_server)
        *closed_by_server = ec == asio::error::eof || ec == asio::error::connection_reset;
      break;
    }
    out.append(buf, n);
  }
  return out;
}

}  // namespace

TEST_CASE("readiness is ready only when every check holds", "[admin]") {
  auto v = evaluate_readiness(all_good());
  CHECK(v.ready);
  CHECK(failing(v).empty());
  REQUIRE(v.checks.size() == 5);
}

TEST_CASE("readiness names each failing check", "[admin]") {
  auto in = all_good();
  in.joined = false;
  CHECK(failing(evaluate_readiness(in)) == std::vector<std::string>{"joined"});
  in = all_good();
  in.draining = true;
  CHECK(failing(evaluate_readiness(in)) == std::vector<std::string>{"joined"});
  in = all_good();
  in.view_fresh = false;
  CHECK(failing(evaluate_readiness(in)) == std::vector<std::string>{"joined"});
  in = all_good();
  in.storage_healthy = false;
  in.storage_error = "IO error: fsync";
  auto v = evaluate_readiness(in);
  CHECK_FALSE(v.ready);
  CHECK(failing(v) == std::vector<std::string>{"storage"});
  CHECK(v.checks[2].detail == "IO error: fsync");
  in = all_good();
  in.lease_valid = false;
  in.shards_not_served = {7, 3, 4, 5};
  v = evaluate_readiness(in);
  CHECK(failing(v) == std::vector<std::string>{"shards", "lease"});
  CHECK(v.checks[1].detail.find("3-5, 7") != std::string::npos);
}

TEST_CASE("a node cut off from its peers is not ready though its lease holds", "[admin]") {
  // The partition-isolate case: etcd still renews its lease, its peers are out of reach.
  auto in = all_good();
  in.cut_off = true;
  auto v = evaluate_readiness(in);
  CHECK_FALSE(v.ready);
  CHECK(failing(v) == std::vector<std::string>{"peers"});
  REQUIRE(v.checks.size() == 5);
  CHECK(v.checks[4].name == "peers");
  CHECK(v.checks[4].detail.find("cut off from its peers") != std::string::npos);
  in.cut_off = false;
  CHECK(evaluate_readiness(in).ready);
}

TEST_CASE("shard ranges compress runs", "[admin]") {
  CHECK(shard_ranges({}) == "");
  CHECK(shard_ranges({4}) == "4");
  CHECK(shard_ranges({9, 0, 1, 2, 5, 6, 2}) == "0-2, 5-6, 9");
}

TEST_CASE("routing answers each admin path", "[admin]") {
  auto s = fake_sources(true);
  CHECK(route_admin_request("GET", "/livez", s).status == 200);
  auto ready = route_admin_request("GET", "/readyz", s);
  CHECK(ready.status == 200);
  CHECK(nlohmann::json::parse(ready.body)["ready"] == true);
  auto metrics = route_admin_request("GET", "/metrics?x=1", s);
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == "text/plain; version=0.0.4");
  CHECK(metrics.body.find("ordermesh_build_info") != std::string::npos);
  auto page = route_admin_request("GET", "/status", s);
  CHECK(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  CHECK(page.body.find("<html") != std::string::npos);
  auto status = route_admin_request("GET", "/status.json", s);
  CHECK(nlohmann::json::parse(status.body)["node_id"] == "n1");
}

TEST_CASE("routing refuses unknown paths and writing methods", "[admin]") {
  auto s = fake_sources(false);
  auto not_ready = route_admin_request("GET", "/readyz", s);
  CHECK(not_ready.status == 503);
  CHECK(nlohmann::json::parse(not_ready.body)["failing"] == nlohmann::json::array({"joined"}));
  CHECK(route_admin_request("GET", "/", s).status == 404);
  CHECK(route_admin_request("GET", "/metrics/../admin", s).status == 404);
  for (auto m : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    auto r = route_admin_request(m, "/metrics", s);
    CHECK(r.status == 405);
    CHECK(r.allow == "GET, HEAD");
  }
  auto head = route_admin_request("HEAD", "/metrics", s);
  CHECK(head.status == 200);
  CHECK(head.omit_body);
}

TEST_CASE("membership events come from view differences", "[admin]") {
  membership_view a;
  a.members = {{"n1", {"up", 1}}, {"n2", {"up", 1}}};
  a.primaries = {{0, "n1"}, {1, "n2"}, {2, "n2"}, {3, "n1"}};
  a.controller = "n1";
  auto b = a;
  b.members.erase("n2");
  b.members["n3"] = {"up", 4};
  b.primaries[1] = "n1";
  b.primaries[2] = "n1";
  b.unreachable = {"n2"};
  auto events = diff_views(a, b, 42);
  std::vector<std::string> kinds;
  for (auto& e : events)
    kinds.push_back(e.kind);
  CHECK(kinds == std::vector<std::string>{"joined", "left", "primary", "suspected"});
  CHECK(events[2].text == "shards 1-2: primary n2 -> n1");
  CHECK(events[0].unix_ms == 42);
  CHECK(diff_views(a, a, 1).empty());
}

TEST_CASE("the membership event ring keeps the newest", "[admin]") {
  membership_event_ring ring(3);
  for (int i = 0; i < 5; ++i)
    ring.add({{i, "joined", "n" + std::to_string(i), ""}});
  auto kept = ring.snapshot();
  REQUIRE(kept.size() == 3);
  CHECK(kept.front().node == "n2");
  CHECK(kept.back().node == "n4");
}

TEST_CASE("the admin server answers over loopback TCP and enforces its bounds", "[admin]") {
  admin_server_options opts;
  opts.header_limit = 1024;
  opts.max_connections = 2;
  admin_server server(opts, fake_sources(true));
  std::string why;
  REQUIRE(server.start(&why));
  auto port = server.bound_port();
  REQUIRE(port != 0);

  auto live = http_exchange(port, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(live.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(live.find("\r\n\r\nok\n") != std::string::npos);

  auto metrics =
      http_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(metrics.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);

  auto head = http_exchange(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(head.find("ordermesh_build_info") == std::string::npos);

  auto post = http_exchange(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(post.rfind("HTTP/1.1 405", 0) == 0);

  auto body = http_exchange(port,
                            "GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            "Connection: close\r\n\r\nhello");
  CHECK(body.rfind("HTTP/1.1 413", 0) == 0);

  auto big = http_exchange(
      port, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  CHECK(big.rfind("HTTP/1.1 431", 0) == 0);

  // Two kept-alive requests on one connection (pipelined), then the server still answers.
  auto two = http_exchange(port,
                           "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(two.find("HTTP/1.1 200", 1) != std::string::npos);
  CHECK(two.find("\"ready\":true") != std::string::npos);

  server.stop();
  server.stop();  // idempotent
}

TEST_CASE("the admin server closes connections beyond its cap", "[admin]") {
  namespace asio = boost::asio;
  admin_server_options opts;
  opts.max_connections = 1;
  admin_server server(opts, fake_sources(true));
  std::string why;
  REQUIRE(server.start(&why));
  asio::io_context io;
  asio::ip::tcp::socket holder(io);  // takes the one connection and sends nothing
  holder.connect({asio::ip::make_address("127.0.0.1"), server.bound_port()});
  // The server counts the holder once it has accepted it; the next one is closed unanswered.
  std::string refused;
  bool closed = false;
  for (int i = 0; i < 200 && server.refused_connections() == 0; ++i) {
    refused = http_exchange(server.bound_port(), "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
    if (server.refused_connections() == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(server.refused_connections() >= 1);
  CHECK(closed);
  CHECK(refused.empty());
  holder.close();
  // With the holder gone, the slot frees up (bounded wait).
  std::string ok;
  for (int i = 0; i < 200 && ok.empty(); ++i) {
    ok = http_exchange(server.bound_port(),
                       "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if (ok.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(ok.rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("the admin server cuts off slow and idle connections", "[admin]") {
  admin_server_options opts;
  opts.read_timeout = std::chrono::milliseconds(200);
  opts.idle_timeout = std::chrono::milliseconds(200);
  admin_server server(opts, fake_sources(true));
  std::string why;
  REQUIRE(server.start(&why));
  // A request line that never ends: closed unanswered once its read deadline passed (well
  // before http_exchange's own 5 s receive timeout would end the wait).
  bool closed = false;
  auto slow = http_exchange(server.bound_port(), "GET /livez HTTP/1.1\r\nHost: x\r\n", &closed);
  CHECK(closed);
  CHECK(slow.empty());
  // A kept-alive connection: answered, then closed by the idle timeout (no "Connection: close").
  closed = false;
  auto idle = http_exchange(server.bound_port(), "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  CHECK(closed);
  CHECK(idle.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(idle.find("ok\n") != std::string::npos);
}
