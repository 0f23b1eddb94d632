// The TLS configuration of the etcd client, checked before any connection: https endpoints,
// mixed schemes, missing or mismatched files. No etcd needed.
#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "cluster/etcd/etcd_client.hpp"
#include "test_calls.hpp"
#include "test_certs.hpp"

using namespace ordermesh::etcd;
using ordermesh::etcd::test::test_certs;
using ordermesh::etcd::test::with_tls;
using namespace std::chrono_literals;

namespace {

bool says(const error& e, const std::string& text) {
  UNSCOPED_INFO(to_string(e));
  return e.message.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("etcd endpoints parse https and refuse mixed schemes", "[etcd][tls]") {
  auto eps = parse_endpoints("https://127.0.0.1:2379, https://[::1]:2380/,https://etcd-1:2381");
  REQUIRE(eps.ok());
  REQUIRE(eps->size() == 3);
  CHECK((*eps)[0].tls);
  CHECK((*eps)[0].url() == "https://127.0.0.1:2379");
  CHECK((*eps)[1].url() == "https://[::1]:2380");
  CHECK((*eps)[2].host == "etcd-1");
  auto plain = parse_endpoints("http://127.0.0.1:2379");
  REQUIRE(plain.ok());
  CHECK_FALSE((*plain)[0].tls);

  // A TLS client must never fall back to a plain member.
  for (const char* mixed :
       {"https://127.0.0.1:1,http://127.0.0.1:2", "http://127.0.0.1:1,https://127.0.0.1:2"}) {
    auto r = parse_endpoints(mixed);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::invalid_argument);
    CHECK(says(r.err(), "mixed"));
  }
  CHECK(parse_endpoints("ftp://127.0.0.1:1").code() == errc::invalid_argument);
  CHECK(parse_endpoints("httpss://127.0.0.1:1").code() == errc::invalid_argument);
}

TEST_CASE("etcd TLS configuration errors are reported before any connection", "[etcd][tls]") {
  test_certs certs({"n1", "n2"});
  const std::vector<endpoint> tls_eps{endpoint{"127.0.0.1", 1, true}};
  const std::vector<endpoint> plain_eps{endpoint{"127.0.0.1", 1, false}};

  CHECK(check_client_config(tls_eps, with_tls(certs.client("n1"))).code == errc::none);
  // Verifying the server without presenting a certificate is a valid client configuration.
  CHECK(check_client_config(tls_eps, with_tls({certs.ca(), "", ""})).code == errc::none);
  CHECK(check_client_config(plain_eps, {}).code == errc::none);

  const error no_ca =
      check_client_config(tls_eps, with_tls({"", certs.cert("n1"), certs.key("n1")}));
  CHECK(no_ca.code == errc::invalid_argument);
  CHECK(says(no_ca, "CA file"));
  CHECK(check_client_config(tls_eps, {}).code == errc::invalid_argument);

  const error half = check_client_config(tls_eps, with_tls({certs.ca(), certs.cert("n1"), ""}));
  CHECK(half.code == errc::invalid_argument);
  CHECK(says(half, "both or neither"));

  const error missing = check_client_config(tls_eps, with_tls({certs.dir() + "/nope.pem", "", ""}));
  CHECK(missing.code == errc::invalid_argument);
  CHECK(says(missing, "nope.pem"));

  const error not_pem = check_client_config(tls_eps, with_tls({certs.key("n1"), "", ""}));
  CHECK(not_pem.code == errc::invalid_argument);

  const error mismatch =
      check_client_config(tls_eps, with_tls({certs.ca(), certs.cert("n1"), certs.key("n2")}));
  CHECK(mismatch.code == errc::invalid_argument);
  CHECK(says(mismatch, "does not match"));

  const error files_for_http = check_client_config(plain_eps, with_tls(certs.client("n1")));
  CHECK(files_for_http.code == errc::invalid_argument);
  CHECK(says(files_for_http, "https://"));

  const std::vector<endpoint> mixed{endpoint{"127.0.0.1", 1, true},
                                    endpoint{"127.0.0.1", 2, false}};
  CHECK(check_client_config(mixed, with_tls(certs.client("n1"))).code == errc::invalid_argument);

  // A client built from a bad configuration never connects: every call says why, at once.
  client c(tls_eps, with_tls({"", "", ""}));
  range_request r;
  r.key = "k";
  const auto start = clock::now();
  const auto got = c.range(r, deadline_after(5s));
  CHECK(got.code() == errc::invalid_argument);
  CHECK(c.watch(watch_request{"k", "", 0, false, false}, deadline_after(5s)).code() ==
        errc::invalid_argument);
  CHECK(clock::now() - start < 1s);
}
