#include "nodes/x509_checks.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace ordermesh::node {

namespace {

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

}  // namespace

std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0)
    return "not a PEM file of the expected kind";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

std::vector<x509_ptr> certs_from_pem(const std::string& pem, size_t max_certs) {
  std::vector<x509_ptr> out;
  std::unique_ptr<BIO, decltype(&BIO_free)> in(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!in)
    return out;
  while (auto* x = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x);
    if (out.size() > max_certs) {
      out.clear();
      break;
    }
  }
  // The loop ends on "no start line" after the last certificate: that is not an error.
  ERR_clear_error();
  return out;
}

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

std::string name_mismatch(X509* cert, const std::string& node_id) {
  auto cn = common_name(cert);
  if (cn == node_id)
    return {};
  for (const auto& dns : dns_names(cert))
    if (dns == node_id)
      return {};
  return "names '" + cn + "' (CN) and no DNS name '" + node_id + "'";
}

}  // namespace ordermesh::node
