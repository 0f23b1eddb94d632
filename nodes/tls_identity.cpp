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

namespace ordermesh::node {

namespace {

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

/// The newest OpenSSL error as text (and the queue cleared, so it cannot leak into CAF's).
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0)
    return "not a PEM file of the expected kind";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

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

/// The subject's common name, or empty.
std::string common_name(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i < 0)
    return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<size_t>(ASN1_STRING_length(data)));
}

/// The DNS names among the subject alternative names.
std::vector<std::string> dns_names(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names)
    return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS)
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                       static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

/// Empty when `cert` chains to a CA of `ca_file` and every certificate of the chain is valid
/// now; otherwise OpenSSL's reason.
std::string verify_chain(X509* cert, const std::vector<x509_ptr>& intermediates,
                         const std::vector<x509_ptr>& cas) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  for (const auto& ca : cas)
    X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> chain(
      sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_free(s); });
  for (const auto& x : intermediates)
    sk_X509_push(chain.get(), x.get());  // borrowed: freed by `intermediates`
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert, chain.get()) != 1)
    return "cannot set up the verification: " + openssl_reason();
  if (X509_verify_cert(ctx.get()) == 1)
    return {};
  std::string reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  ERR_clear_error();
  return reason;
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
  // Peers check only that a certificate comes from the cluster CA (CAF does no name check):
  // a node whose certificate names another node would be a misconfiguration waiting to hide a
  // stolen identity, so orderd refuses to start with one.
  auto cn = common_name(cert);
  if (cn == node_id)
    return {};
  for (const auto& dns : dns_names(cert))
    if (dns == node_id)
      return {};
  return "--tls-cert " + cert_file + ": names '" + cn + "' (CN) and no DNS name '" + node_id +
         "': a node's certificate must name its --node-id";
}

}  // namespace ordermesh::node
