#pragma once
// TLS for the client library (docs/SECURITY.md, "Client plane TLS"): OpenSSL driven over the
// client's non-blocking socket, so that the handshake, like every other wait of client.cpp,
// ends at a deadline. The server's certificate must chain to the given CA file (or the system's
// store) and name the host the client dialled (a DNS name, or an IP address SAN).
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

namespace ordermesh::client {

class tls_session {
 public:
  using clock_type = std::chrono::steady_clock;
  /// Handshakes over connected non-blocking socket `fd` (which stays owned by the caller) with
  /// server `host`, trusting `cafile` (PEM; empty: the system's default CA store). Null with
  /// `error` set (e.g. "TLS: certificate verify failed: ...") when that fails or `deadline`
  /// passes first.
  static std::unique_ptr<tls_session> handshake(int fd, const std::string& host,
                                                const std::string& cafile,
                                                clock_type::time_point deadline,
                                                std::string& error);
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  /// Like send()/recv() on a non-blocking socket: bytes moved (> 0); 0 from read() when the
  /// server closed; -1 with `error` empty when it would block (poll, then call again), -1 with
  /// `error` set when the session failed.
  ssize_t write(const char* data, size_t size, std::string& error);
  ssize_t read(char* data, size_t size, std::string& error);
  /// Decrypted bytes already held in memory: poll() cannot see them, read() returns them.
  bool pending() const;

 private:
  struct state;
  explicit tls_session(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

}  // namespace ordermesh::client
