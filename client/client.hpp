#pragma once
// A small client for the ordermesh JSON-lines protocol (docs/PROTOCOL.md), shared by orderctl
// and the load, chaos and benchmark drivers. It speaks only the wire protocol: it knows nothing
// of the domain, so it links no domain or actor code.
//
// Blocking calls with deadlines over one TCP connection (POSIX sockets + poll). Failures never
// throw: a call that gets no answer returns a reply with code "timeout" or "unavailable" and
// `local` set, which the protocol says is safe to retry with the same ids.
//
// A client is not thread-safe: use one per thread (connections are cheap).
#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ordermesh::client {

class tls_session;

constexpr uint16_t default_port = 7400;
/// Longest request line the server accepts (longer ones are refused with too_large).
constexpr size_t max_request_bytes = 64 * 1024;

/// One server address. `host` is a name, an IPv4 or an IPv6 address (without brackets).
struct endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = default_port;
  /// "host:port", with brackets around IPv6 addresses.
  std::string to_string() const;
};

/// Parses "h1:p1,h2:p2", "host", "[::1]:7400" and appends to `out`; entries without a port get
/// `fallback_port`. On a syntax error returns false with `error` set and `out` unchanged.
bool parse_endpoints(std::string_view text, uint16_t fallback_port, std::vector<endpoint>& out,
                     std::string& error);

struct options {
  /// Tried in order; a failed connect moves on to the next one.
  std::vector<endpoint> endpoints{endpoint{}};
  /// Bound on connecting to one endpoint (all of its addresses together).
  std::chrono::milliseconds connect_timeout{1000};
  /// Bound on one call, or on a whole call_many batch, from the first byte written.
  std::chrono::milliseconds call_timeout{5000};
  /// Longest reply line accepted. Larger than the 64 KiB request bound on purpose: an
  /// order.list of 1000 orders with many items is legitimately several megabytes.
  size_t max_reply_bytes = 16 * 1024 * 1024;
  /// call() repeats a request this many extra times after a retryable failure (unavailable,
  /// timeout, overloaded), reconnecting as needed. Safe because ids are idempotency keys.
  /// A refusal marked retry_elsewhere is repeated at once on the next endpoint.
  int retries = 0;
  /// Pause before the first retry; doubled for each further retry.
  std::chrono::milliseconds retry_backoff{100};
  /// TLS (docs/SECURITY.md, "Client plane TLS"): the server's certificate must chain to
  /// `cafile` (PEM; empty: the system's CA store) and name the endpoint's host.
  bool tls = false;
  std::string cafile;
};

/// One request. `id` null lets the client number it; otherwise it must be a number or a string
/// and is what the reply is matched by.
struct request {
  std::string op;
  nlohmann::json args = nlohmann::json::object();
  std::string token;  // sent only when not empty
  nlohmann::json id;
};

struct reply {
  bool ok = false;
  nlohmann::json result;  // the result object when ok
  std::string code;       // the error code when !ok, e.g. "not_found"
  std::string message;    // the error message when !ok
  nlohmann::json raw;     // the whole reply object (made up by the client when `local`)
  std::string line;       // the reply line as received, without '\n' (rendered raw if `local`)
  /// True when the client made this reply up because no answer came (timeout, unavailable,
  /// connection refused). The request may or may not have been executed.
  bool local = false;
  /// The node said it cannot serve anything now (cut off from its peers, or shutting down):
  /// retry on another node. call() does so at once when it has several endpoints.
  bool retry_elsewhere = false;
  /// True for the codes that are safe to retry with the same ids.
  bool retryable() const;
};

/// True for "unavailable", "timeout" and "overloaded".
bool is_retryable(std::string_view code);

class client {
 public:
  explicit client(options opts);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  client(client&& other) noexcept;
  client& operator=(client&& other) noexcept;

  /// Sends one request and waits for its reply (up to call_timeout, plus retries).
  reply call(std::string_view op, const nlohmann::json& args = nlohmann::json::object(),
             std::string_view token = {});
  reply call(const request& req);

  /// Pipelines: writes every request, then collects the replies, matched by id (the server may
  /// answer out of order). Returns one reply per request, in request order. One deadline covers
  /// the whole batch; requests still unanswered at its end get a local "timeout". No retries.
  std::vector<reply> call_many(const std::vector<request>& reqs);

  /// Sends `line` exactly as given (a '\n' is appended) and returns the next reply line,
  /// whatever its id. For tests of malformed input; not for pipelining.
  reply call_raw(std::string_view line);

  /// Connects now if not connected. False when no endpoint answered (see last_error()).
  bool connect();
  /// Closes the connection; the next call reconnects.
  void disconnect();
  bool connected() const { return fd_ >= 0; }
  /// The endpoint of the current (or last successful) connection.
  const endpoint& current_endpoint() const;
  /// Why the last connect failed, for messages.
  const std::string& last_error() const { return last_error_; }
  const options& opts() const { return opts_; }

 private:
  struct pending_call {
    std::string line;   // the request line, '\n' included
    nlohmann::json id;  // what the reply must carry; null matches any reply (call_raw)
  };
  std::vector<reply> exchange(std::vector<pending_call> calls);
  bool connect_one(const endpoint& ep, std::string& error);
  bool stale_connection();
  std::string render(const request& req, nlohmann::json& id);
  // send()/recv() on the connection, plain or TLS: bytes moved; 0 (recv) the server closed;
  // -1 with `error` empty: would block; -1 with `error` set: the connection failed.
  ssize_t send_some(const char* data, size_t size, std::string& error);
  ssize_t recv_some(char* data, size_t size, std::string& error);

  options opts_;
  int fd_ = -1;
  std::unique_ptr<tls_session> tls_;  // set while connected with opts_.tls
  size_t endpoint_index_ = 0;         // the next connect starts here: the last one that worked
  uint64_t next_id_ = 1;
  std::string inbuf_;  // bytes read past the last complete reply line
  std::string last_error_;
};

}  // namespace ordermesh::client
