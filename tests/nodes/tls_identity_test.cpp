// Tests for nodes/tls_identity: the start-up check of a node's own cluster certificate. The
// certificates are made here with OpenSSL's API (P-256 keys, fast), so that the cases the
// gen-certs.sh script never makes (expired, another CA, a wrong key) are easy to have.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "nodes/tls_identity.hpp"

using ordermesh::node::check_tls_identity;

namespace {

using key_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using cert_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

key_ptr new_key() {
  return key_ptr(EVP_EC_gen("P-256"), &EVP_PKEY_free);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct cert_spec {
  std::string cn;
  std::string san;             // e.g. "DNS:n1,IP:127.0.0.1"; empty: none
  long not_before = -3600;     // seconds from now
  long not_after = 24 * 3600;  // seconds from now
  bool ca = false;
};

/// A certificate for `key`, signed by `issuer_key` (issuer: `issuer`, or itself when null).
cert_ptr make_cert(const cert_spec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  cert_ptr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (spec.ca) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "CA:FALSE");
    add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (!spec.san.empty())
    add_ext(cert.get(), signer, NID_subject_alt_name, spec.san.c_str());
  REQUIRE(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0);
  return cert;
}

/// A temp dir with a CA (ca.pem) and helpers to write node certificates and keys into it.
struct pki {
  std::string dir;
  key_ptr ca_key = new_key();
  cert_ptr ca_cert = cert_ptr(nullptr, &X509_free);
  pki() {
    char tmpl[] = "/tmp/tls_identity_test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    cert_spec ca;
    ca.cn = "ordermesh test CA";
    ca.ca = true;
    ca_cert = make_cert(ca, ca_key.get(), nullptr, ca_key.get());
    write_cert("ca.pem", ca_cert.get());
  }
  ~pki() {
    std::string cmd = "rm -rf '" + dir + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string write_cert(const std::string& name, X509* cert) {
    std::FILE* f = std::fopen(path(name).c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, cert);
    std::fclose(f);
    return path(name);
  }
  std::string write_key(const std::string& name, EVP_PKEY* key) {
    std::FILE* f = std::fopen(path(name).c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    return path(name);
  }
  /// NAME.pem and NAME.key for a node certificate signed by this CA.
  void node(const std::string& name, const cert_spec& spec) {
    auto key = new_key();
    auto cert = make_cert(spec, key.get(), ca_cert.get(), ca_key.get());
    write_cert(name + ".pem", cert.get());
    write_key(name + ".key", key.get());
  }
  std::string check(const std::string& name, const std::string& node_id) const {
    return check_tls_identity(path(name + ".pem"), path(name + ".key"), path("ca.pem"), node_id);
  }
};

cert_spec node_spec(const std::string& cn, const std::string& san = "") {
  cert_spec s;
  s.cn = cn;
  s.san = san;
  return s;
}

}  // namespace

TEST_CASE("a certificate of the cluster CA that names the node passes") {
  pki p;
  p.node("n1", node_spec("n1", "DNS:n1,DNS:localhost,IP:127.0.0.1"));
  CHECK(p.check("n1", "n1").empty());
  // The name may be a DNS SAN only, the CN something else.
  p.node("alias", node_spec("ordermesh node", "DNS:localhost,DNS:node-7"));
  CHECK(p.check("alias", "node-7").empty());
}

TEST_CASE("a certificate that names another node is refused with both names") {
  pki p;
  p.node("n1", node_spec("n1", "DNS:n1,DNS:localhost"));
  auto why = p.check("n1", "n2");
  CHECK_THAT(why, Catch::Contains("n1.pem") && Catch::Contains("'n1' (CN)") &&
                      Catch::Contains("'n2'") && Catch::Contains("--node-id"));
  // Names are compared exactly: no case folding, no prefix.
  CHECK_FALSE(p.check("n1", "N1").empty());
  CHECK_FALSE(p.check("n1", "n").empty());
}

TEST_CASE("a certificate of another CA is refused") {
  pki p;
  pki other;
  other.node("n1", node_spec("n1", "DNS:n1"));
  auto why = check_tls_identity(other.path("n1.pem"), other.path("n1.key"), p.path("ca.pem"), "n1");
  CHECK_THAT(why, Catch::Contains("does not chain to a CA in --tls-ca") &&
                      Catch::Contains(p.path("ca.pem")));
}

TEST_CASE("a key that is not the certificate's is refused") {
  pki p;
  p.node("n1", node_spec("n1"));
  p.node("n2", node_spec("n2"));
  auto why = check_tls_identity(p.path("n1.pem"), p.path("n2.key"), p.path("ca.pem"), "n1");
  CHECK_THAT(why, Catch::Contains("--tls-key " + p.path("n2.key")) &&
                      Catch::Contains("is not the key of the certificate"));
}

TEST_CASE("an expired or not yet valid certificate is refused") {
  pki p;
  auto expired = node_spec("n1");
  expired.not_before = -7200;
  expired.not_after = -3600;
  p.node("old", expired);
  CHECK_THAT(p.check("old", "n1"), Catch::Contains("old.pem") && Catch::Contains("expired"));
  auto future = node_spec("n1");
  future.not_before = 3600;
  p.node("new", future);
  CHECK_THAT(p.check("new", "n1"), Catch::Contains("not valid yet"));
}

TEST_CASE("missing or unreadable files are named") {
  pki p;
  p.node("n1", node_spec("n1"));
  auto missing = p.path("nope.pem");
  CHECK_THAT(check_tls_identity(missing, p.path("n1.key"), p.path("ca.pem"), "n1"),
             Catch::Contains("--tls-cert " + missing) && Catch::Contains("No such file"));
  CHECK_THAT(check_tls_identity(p.path("n1.pem"), missing, p.path("ca.pem"), "n1"),
             Catch::Contains("--tls-key " + missing));
  CHECK_THAT(check_tls_identity(p.path("n1.pem"), p.path("n1.key"), missing, "n1"),
             Catch::Contains("--tls-ca " + missing));
  // A key where the certificate should be, and a certificate where the key should be.
  CHECK_THAT(check_tls_identity(p.path("n1.key"), p.path("n1.key"), p.path("ca.pem"), "n1"),
             Catch::Contains("holds no PEM certificate"));
  CHECK_THAT(check_tls_identity(p.path("n1.pem"), p.path("n1.pem"), p.path("ca.pem"), "n1"),
             Catch::Contains("not an unencrypted PEM private key"));
}

TEST_CASE("an encrypted key is refused without prompting") {
  pki p;
  p.node("n1", node_spec("n1"));
  auto key = new_key();
  auto cert = make_cert(node_spec("n9"), key.get(), p.ca_cert.get(), p.ca_key.get());
  p.write_cert("n9.pem", cert.get());
  std::FILE* f = std::fopen(p.path("n9.key").c_str(), "w");
  REQUIRE(f != nullptr);
  static char pass[] = "secret";
  PEM_write_PrivateKey(f, key.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr, pass);
  std::fclose(f);
  CHECK_THAT(p.check("n9", "n9"), Catch::Contains("not an unencrypted PEM private key"));
}
