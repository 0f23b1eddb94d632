#include "nodes/tls_identity.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "nodes/x509_checks.hpp"

namespace ordermesh::node {

namespace {

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

file_ptr open_file(const std::string& what, const std::string& path, std::string* why) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f)
    *why = what + " " + path + ": cannot open: " + std::strerror(errno);
  return f;
}

/// Every certificate in a PEM file, in order (empty with *why set when there is none).
std::vector<x509_ptr> read_certs(const std::string& what, const std::string& path,
                                 std::string* why) {
  std::vector<x509_ptr> out;
  auto f = open_file(what, path, why);
  if (!f)
    return out;
  while (auto* x = PEM_read_X509(f.get(), nullptr, nullptr, nullptr))
    out.emplace_back(x);
  // The loop ends on "no start line" after the last certificate: that is not an error.
  ERR_clear_error();
  if (out.empty())
    *why = what + " " + path + ": holds no PEM certificate";
  return out;
}

/// Refuses to prompt for a passphrase: orderd runs unattended, an encrypted key is a mistake.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

}  // namespace

std::string check_tls_identity(const std::string& cert_file, const std::string& key_file,
                               const std::string& ca_file, const std::string& node_id) {
  std::string why;
  auto certs = read_certs("--tls-cert", cert_file, &why);
  if (certs.empty())
    return why;
  auto cas = read_certs("--tls-ca", ca_file, &why);
  if (cas.empty())
    return why;
  auto key_in = open_file("--tls-key", key_file, &why);
  if (!key_in)
    return why;
  pkey_ptr key(PEM_read_PrivateKey(key_in.get(), nullptr, &no_passphrase, nullptr));
  if (!key)
    return "--tls-key " + key_file + ": not an unencrypted PEM private key (" + openssl_reason() +
           ")";
  X509* cert = certs.front().get();
  if (X509_check_private_key(cert, key.get()) != 1) {
    ERR_clear_error();
    return "--tls-key " + key_file + ": is not the key of the certificate in " + cert_file;
  }
  // Said apart from the chain check, whose "certificate has expired" could be about the CA.
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
    return "--tls-cert " + cert_file + ": the certificate has expired";
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
    return "--tls-cert " + cert_file + ": the certificate is not valid yet";
  std::vector<x509_ptr> intermediates(std::make_move_iterator(certs.begin() + 1),
                                      std::make_move_iterator(certs.end()));
  if (auto reason = verify_chain(cert, intermediates, cas); !reason.empty())
    return "--tls-cert " + cert_file + ": does not chain to a CA in --tls-ca " + ca_file + ": " +
           reason;
  // Peers refuse a node whose certificate does not name the id it claims (the hello's proof,
  // tls_peer_prover.cpp); checked here too, so that a wrong file is an exit 2 that says so
  // rather than refused hellos in the peers' logs.
  if (auto bad = name_mismatch(cert, node_id); !bad.empty())
    return "--tls-cert " + cert_file + ": " + bad +
           ": a node's certificate must name its --node-id";
  return {};
}

}  // namespace ordermesh::node
