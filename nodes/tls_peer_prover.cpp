#include "nodes/tls_peer_prover.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cluster/identity/peer_proof.hpp"
#include "nodes/x509_checks.hpp"

namespace ordermesh::node {

namespace {

namespace id = cluster::identity;

/// A chain longer than this is not one of ours (gen-certs.sh makes leaf + CA).
constexpr size_t max_chain_certs = 4;

using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

/// The digest to sign with: none for the keys that hash internally (Ed25519, Ed448).
const EVP_MD* digest_for(EVP_PKEY* key) {
  int type = EVP_PKEY_get_base_id(key);
  return type == EVP_PKEY_ED25519 || type == EVP_PKEY_ED448 ? nullptr : EVP_sha256();
}

bool read_text(const std::string& path, std::string* out, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

/// The chain as PEM written by OpenSSL (whatever else the file holds, comments, is left out).
std::string to_pem(const std::vector<x509_ptr>& certs) {
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), &BIO_free);
  for (const auto& c : certs)
    PEM_write_bio_X509(out.get(), c.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string{};
}

class tls_peer_prover final : public id::identity_prover {
 public:
  tls_peer_prover(std::string chain_pem, pkey_ptr key, std::vector<x509_ptr> cas)
      : chain_pem_(std::move(chain_pem)), key_(std::move(key)), cas_(std::move(cas)) {}

  std::string challenge() override {
    std::string out(id::challenge_bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) != 1)
      out.clear();  // refused by every peer (check_challenge): never a guessable one
    return out;
  }

  bool prove(const std::string& transcript, id::identity_proof* out, std::string* why) override {
    md_ctx_ptr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    size_t n = 0;
    auto msg = reinterpret_cast<const unsigned char*>(transcript.data());
    if (!ctx ||
        EVP_DigestSignInit(ctx.get(), nullptr, digest_for(key_.get()), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &n, msg, transcript.size()) != 1) {
      *why = "cannot sign: " + openssl_reason();
      return false;
    }
    std::string sig(n, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, msg,
                       transcript.size()) != 1) {
      *why = "cannot sign: " + openssl_reason();
      return false;
    }
    sig.resize(n);
    out->certificate = chain_pem_;
    out->signature = std::move(sig);
    return true;
  }

  std::string verify(const id::identity_proof& proof, const std::string& claimed_id,
                     const std::string& transcript) override {
    auto certs = certs_from_pem(proof.certificate, max_chain_certs);
    if (certs.empty())
      return "no certificate chain (PEM, at most " + std::to_string(max_chain_certs) +
             " certificates)";
    X509* leaf = certs.front().get();
    std::vector<x509_ptr> intermediates(std::make_move_iterator(certs.begin() + 1),
                                        std::make_move_iterator(certs.end()));
    if (auto reason = verify_chain(leaf, intermediates, cas_); !reason.empty())
      return "its certificate does not chain to the cluster CA: " + reason;
    if (auto bad = name_mismatch(leaf, claimed_id); !bad.empty())
      return "its certificate " + bad;
    EVP_PKEY* key = X509_get0_pubkey(leaf);
    md_ctx_ptr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!key || !ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, digest_for(key), nullptr, key) != 1) {
      return "cannot check the signature: " + openssl_reason();
    }
    int ok = EVP_DigestVerify(
        ctx.get(), reinterpret_cast<const unsigned char*>(proof.signature.data()),
        proof.signature.size(), reinterpret_cast<const unsigned char*>(transcript.data()),
        transcript.size());
    if (ok != 1) {
      openssl_reason();  // clears the queue
      return "its signature does not verify (not made by its certificate's key over this "
             "hello)";
    }
    return {};
  }

 private:
  std::string chain_pem_;
  pkey_ptr key_;
  std::vector<x509_ptr> cas_;
};

/// Refuses to prompt for a passphrase: orderd runs unattended.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

}  // namespace

std::shared_ptr<id::identity_prover> make_tls_peer_prover(const std::string& cert_file,
                                                          const std::string& key_file,
                                                          const std::string& ca_file,
                                                          std::string* why) {
  std::string cert_text, key_text, ca_text;
  if (!read_text(cert_file, &cert_text, why) || !read_text(key_file, &key_text, why) ||
      !read_text(ca_file, &ca_text, why))
    return nullptr;
  auto chain = certs_from_pem(cert_text, max_chain_certs);
  if (chain.empty()) {
    *why =
        cert_file + ": no PEM certificate (or more than " + std::to_string(max_chain_certs) + ")";
    return nullptr;
  }
  auto cas = certs_from_pem(ca_text, 64);
  if (cas.empty()) {
    *why = ca_file + ": no PEM certificate";
    return nullptr;
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> in(
      BIO_new_mem_buf(key_text.data(), static_cast<int>(key_text.size())), &BIO_free);
  pkey_ptr key(in ? PEM_read_bio_PrivateKey(in.get(), nullptr, &no_passphrase, nullptr) : nullptr);
  if (!key) {
    *why = key_file + ": not an unencrypted PEM private key (" + openssl_reason() + ")";
    return nullptr;
  }
  auto pem = to_pem(chain);
  if (pem.size() > id::max_certificate_bytes) {
    *why = cert_file + ": the chain is " + std::to_string(pem.size()) +
           " bytes of PEM, more than a peer accepts (" + std::to_string(id::max_certificate_bytes) +
           ")";
    return nullptr;
  }
  return std::make_shared<tls_peer_prover>(std::move(pem), std::move(key), std::move(cas));
}

}  // namespace ordermesh::node
