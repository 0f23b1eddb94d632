// The client against a real etcd serving TLS with --client-cert-auth: every kind of call works
// with a certificate from the cluster's CA, and every way for TLS to go wrong is refused with a
// clear error by the call's deadline: no client certificate, a server from another CA, a server
// certificate that does not name the host, a server that never answers the handshake.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "cluster/etcd/etcd_client.hpp"
#include "etcd_process.hpp"
#include "test_calls.hpp"
#include "test_certs.hpp"

using namespace ordermesh::etcd;
using namespace ordermesh::etcd::test;
using namespace std::chrono_literals;

namespace {

/// etcd serving `server`'s certificate from `certs`, probed with the "probe" certificate.
etcd_tls serving(const test_certs& certs, const std::string& server,
                 const std::string& probe_host = "127.0.0.1") {
  return etcd_tls{certs.ca(), certs.cert(server), certs.key(server), certs.client("probe"),
                  probe_host};
}

/// INFO-logs the error and says whether its message contains `text`.
template <class T>
bool refused_with_tls(const result<T>& r, const std::string& text) {
  INFO((r.ok() ? std::string("ok") : to_string(r.err())));
  return !r.ok() && r.code() == errc::unavailable &&
         r.err().message.find(text) != std::string::npos;
}

/// A socket on 127.0.0.1 that listens and never accepts: connects succeed (the kernel's
/// backlog), and nothing is ever answered.
class black_hole {
 public:
  black_hole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~black_hole() { ::close(fd_); }
  black_hole(const black_hole&) = delete;
  black_hole& operator=(const black_hole&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace

TEST_CASE("etcd TLS put range txn lease and watch with a client certificate", "[etcd][tls]") {
  test_certs certs({"etcd", "probe", "n1"});
  etcd_process etcd(serving(certs, "etcd"));
  CHECK(etcd.url().rfind("https://127.0.0.1:", 0) == 0);
  client c({etcd.client_endpoint()}, with_tls(certs.client("n1")));

  auto w = ok(c.watch(watch_request{"/tls/", prefix_end("/tls/"), 0, false, false}, soon()));
  CHECK(ok(w->next(soon())).type == watch_response::kind::created);

  const auto put = ok(c.put(kv("/tls/a", "1"), soon()));
  CHECK(ok(c.range(key_only("/tls/a"), soon())).kvs.at(0).value == "1");

  txn_request t;
  t.compares.push_back(compare::absent("/tls/controller"));
  t.success.push_back(kv("/tls/controller", "n1"));
  CHECK(ok(c.txn(t, soon())).succeeded);
  CHECK_FALSE(ok(c.txn(t, soon())).succeeded);

  const auto lease = ok(c.lease_grant(10, 0, soon()));
  ok(c.put(kv("/tls/members/n1", "addr", lease.id), soon()));
  CHECK(ok(c.lease_keepalive(lease.id, soon())) > 0);
  ok(c.lease_revoke(lease.id, soon()));
  CHECK(ok(c.range(key_only("/tls/members/n1"), soon())).kvs.empty());

  // The watch saw every change, in order, over its own TLS connection.
  std::vector<std::pair<watch_event::kind, std::string>> seen;
  const auto by = soon();
  // Bounded by `by`: each next() returns by it.
  while (seen.size() < 4) {
    auto r = ok(w->next(by));
    for (const auto& e : r.events) {
      seen.emplace_back(e.type, e.kv.key);
    }
  }
  using k = watch_event::kind;
  CHECK(seen ==
        std::vector<std::pair<watch_event::kind, std::string>>{{k::put, "/tls/a"},
                                                               {k::put, "/tls/controller"},
                                                               {k::put, "/tls/members/n1"},
                                                               {k::del, "/tls/members/n1"}});
  CHECK(put.revision > 0);
  w->close();
  CHECK(w->next(soon()).code() == errc::closed);

  // The kept connection is reused across calls and survives an etcd restart.
  etcd.restart();
  ok(c.put(kv("/tls/a", "2"), soon()));
  CHECK(ok(c.range(key_only("/tls/a"), soon())).kvs.at(0).version == 2);
}

TEST_CASE("etcd TLS accepts a server named by a DNS SAN", "[etcd][tls]") {
  test_certs certs({"probe", "n1"});
  certs.add({"etcd"}, "DNS:localhost");  // no IP SAN: only the name is right
  etcd_process etcd(serving(certs, "etcd", "localhost"));
  // etcd listens on 127.0.0.1 only; "localhost" may resolve to ::1 first, which is refused.
  client by_name({endpoint{"localhost", etcd.client_endpoint().port, true}},
                 with_tls(certs.client("n1")));
  ok(by_name.put(kv("/dns/a", "1"), soon()));

  // The same server reached by its address is refused: the certificate does not name it.
  client by_address({etcd.client_endpoint()}, with_tls(certs.client("n1")));
  const auto start = clock::now();
  const auto r = by_address.range(key_only("/dns/a"), deadline_after(3s));
  CHECK(clock::now() - start < 3s);
  CHECK(refused_with_tls(r, "tls handshake"));
  CHECK(refused_with_tls(r, "IP address mismatch"));
  CHECK(by_address.watch(watch_request{"/dns/", "", 0, false, false}, deadline_after(3s)).code() ==
        errc::unavailable);
}

TEST_CASE("etcd TLS refuses a client without a certificate", "[etcd][tls]") {
  test_certs certs({"etcd", "probe"});
  etcd_process etcd(serving(certs, "etcd"));
  client anonymous({etcd.client_endpoint()}, with_tls({certs.ca(), "", ""}));
  const auto start = clock::now();
  const auto r = anonymous.range(key_only("/x"), deadline_after(3s));
  const auto w = anonymous.put(kv("/x", "1"), deadline_after(3s));
  const auto watch = anonymous.watch(watch_request{"/x", "", 0, false, false}, deadline_after(3s));
  CHECK(clock::now() - start < 9s);
  // TLS 1.3: etcd's refusal arrives as an alert on the first read, after the handshake.
  CHECK(refused_with_tls(r, "tls"));
  CHECK(refused_with_tls(r, "certificate"));
  CHECK(refused_with_tls(w, "tls"));
  CHECK(watch.code() == errc::unavailable);
  // Nothing was written: a client with a certificate sees no key.
  client member({etcd.client_endpoint()}, with_tls(certs.client("probe")));
  CHECK(ok(member.range(key_only("/x"), soon())).kvs.empty());
}

TEST_CASE("etcd TLS client trusting another CA refuses the server", "[etcd][tls]") {
  test_certs certs({"etcd", "probe"});
  test_certs other({"n1"});  // another CA: its certificates and its trust
  etcd_process etcd(serving(certs, "etcd"));
  client c({etcd.client_endpoint()}, with_tls(other.client("n1")));
  const auto start = clock::now();
  const auto r = c.put(kv("/y", "1"), deadline_after(3s));
  CHECK(clock::now() - start < 3s);
  CHECK(refused_with_tls(r, "tls handshake"));
  CHECK(refused_with_tls(r, "certificate verify failed"));
  // Refused before sending: so a write too moves on, and says nothing about "may have applied".
  CHECK(r.err().message.find("may or may not") == std::string::npos);
}

TEST_CASE("etcd TLS handshake against a black hole ends by the deadline", "[etcd][tls]") {
  test_certs certs({"n1"});
  black_hole hole;
  client_options o = with_tls(certs.client("n1"));
  o.connect_timeout = 5s;  // longer than the call: the call's deadline must end the handshake
  client c({endpoint{"127.0.0.1", hole.port(), true}}, o);
  auto start = clock::now();
  const auto r = c.range(key_only("/z"), deadline_after(800ms));
  auto elapsed = clock::now() - start;
  INFO(to_string(r.err()));
  CHECK(r.code() == errc::timeout);
  CHECK(r.err().message.find("tls handshake") != std::string::npos);
  CHECK(elapsed >= 700ms);
  CHECK(elapsed < 2s);

  start = clock::now();
  const auto w = c.watch(watch_request{"/z", "", 0, false, false}, deadline_after(800ms));
  elapsed = clock::now() - start;
  CHECK(w.code() == errc::timeout);
  CHECK(elapsed < 2s);

  // With the connect timeout shorter than the call, the handshake's own bound moves the call
  // on to the next endpoint in time: a read, and a write too (nothing was sent to the hole).
  certs.add({"etcd", "probe"});
  etcd_process etcd(serving(certs, "etcd"));
  o.connect_timeout = 300ms;
  client failover({endpoint{"127.0.0.1", hole.port(), true}, etcd.client_endpoint()}, o);
  start = clock::now();
  ok(failover.put(kv("/z", "1"), deadline_after(3s)));
  CHECK(clock::now() - start < 2s);
  CHECK(ok(failover.range(key_only("/z"), soon())).kvs.at(0).value == "1");
}
