#include "client/tls_session.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <mutex>

namespace ordermesh::client {

struct tls_session::state {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~state() {
    if (ssl)
      SSL_free(ssl);
    if (ctx)
      SSL_CTX_free(ctx);
  }
};

namespace {

/// OpenSSL's reason for the last failure (its error queue), or `fallback` when it has none.
std::string openssl_reason(const char* fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0)
    return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

int poll_ms(tls_session::clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                    tls_session::clock_type::now());
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, INT_MAX));
}

/// -1 with `error` empty (would block), or -1 with `error` set, for a failed SSL_read/write.
ssize_t io_failure(SSL* ssl, int rc, std::string& error) {
  int e = SSL_get_error(ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return -1;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
    error = errno != 0 ? std::string("TLS: ") + std::strerror(errno) : "TLS: connection reset";
  else
    error = "TLS: " + openssl_reason("session failed");
  return -1;
}

}  // namespace

tls_session::tls_session(std::unique_ptr<state> s) : s_(std::move(s)) {}
tls_session::~tls_session() = default;

std::unique_ptr<tls_session> tls_session::handshake(int fd, const std::string& host,
                                                    const std::string& cafile,
                                                    clock_type::time_point deadline,
                                                    std::string& error) {
  // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a server that closes mid-write would
  // kill the process with SIGPIPE. Ignoring it turns that into EPIPE, reported as an error.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  ERR_clear_error();
  auto s = std::make_unique<state>();
  s->ctx = SSL_CTX_new(TLS_client_method());
  if (!s->ctx) {
    error = "TLS: " + openssl_reason("cannot make a context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
  // Callers retry a write that would block with their buffer as it is then: grown by later
  // requests (so possibly moved), the unwritten bytes still first. Partial writes let a large
  // batch go out record by record rather than all or nothing.
  SSL_CTX_set_mode(s->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
  const int loaded = cafile.empty()
                         ? SSL_CTX_set_default_verify_paths(s->ctx)
                         : SSL_CTX_load_verify_locations(s->ctx, cafile.c_str(), nullptr);
  if (loaded != 1) {
    error = "TLS: cannot load the CA " +
            (cafile.empty() ? std::string("store of the system") : "file " + cafile) + ": " +
            openssl_reason("unreadable");
    return nullptr;
  }
  SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, nullptr);
  s->ssl = SSL_new(s->ctx);
  if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
    error = "TLS: " + openssl_reason("cannot make a session");
    return nullptr;
  }
  // The certificate must name what was dialled: an IP address SAN for an address, else a DNS
  // name (also sent as SNI).
  X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl);
  if (is_ip_address(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(s->ssl, host.c_str());
  }
  SSL_set_connect_state(s->ssl);
  for (;;) {
    const int rc = SSL_do_handshake(s->ssl);
    if (rc == 1)
      return std::unique_ptr<tls_session>(new tls_session(std::move(s)));
    const int e = SSL_get_error(s->ssl, rc);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      const long verify = SSL_get_verify_result(s->ssl);
      if (verify != X509_V_OK)
        error = std::string("TLS: the server's certificate is not trusted: ") +
                X509_verify_cert_error_string(verify);
      else
        error = "TLS handshake failed: " + openssl_reason("the server closed the connection");
      return nullptr;
    }
    pollfd p{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, poll_ms(deadline));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      error = "TLS handshake timed out";
      return nullptr;
    }
  }
}

ssize_t tls_session::write(const char* data, size_t size, std::string& error) {
  ERR_clear_error();
  errno = 0;
  const int n = SSL_write(s_->ssl, data, static_cast<int>(std::min<size_t>(size, INT_MAX)));
  return n > 0 ? n : io_failure(s_->ssl, n, error);
}

ssize_t tls_session::read(char* data, size_t size, std::string& error) {
  ERR_clear_error();
  errno = 0;
  const int n = SSL_read(s_->ssl, data, static_cast<int>(std::min<size_t>(size, INT_MAX)));
  if (n > 0)
    return n;
  if (SSL_get_error(s_->ssl, n) == SSL_ERROR_ZERO_RETURN)
    return 0;  // close_notify
  if (SSL_get_error(s_->ssl, n) == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
    return 0;  // closed without close_notify: for a line protocol, the same end
  return io_failure(s_->ssl, n, error);
}

bool tls_session::pending() const {
  return SSL_pending(s_->ssl) > 0;
}

}  // namespace ordermesh::client
