#pragma once
// Errors of the etcd client. Nothing in this library throws across its public API: every call
// returns a result<T> holding either the answer or an error. A code exists only if a caller can
// react to it differently (see domain/errors.hpp for the same rule at the protocol level).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ordermesh::etcd {

enum class errc : uint8_t {
  none = 0,
  /// No endpoint could be reached, a connection broke, or etcd answered "unavailable" (HTTP
  /// 503: no leader, request timed out inside etcd). Retry later, possibly elsewhere. For a
  /// write whose request was already sent, the outcome is unknown: read before deciding.
  unavailable,
  /// The call's deadline passed. For a write, the outcome is unknown: read before deciding.
  timeout,
  /// etcd refused the request (HTTP status other than 200, e.g. 400 for a malformed request);
  /// `http_status`, `grpc_code` and the message say why. Retrying the same request won't help.
  http_error,
  /// The answer was not the JSON this client expects (malformed, wrong field types).
  bad_response,
  /// The requested revision was compacted away: list again at the current revision.
  compacted,
  /// etcd does not know the lease (expired or revoked): grant a new one.
  not_found,
  /// A response body or a watch line exceeded the client's bound.
  too_large,
  /// The watch was closed by close() or canceled by etcd; it yields nothing more.
  closed,
  /// The caller passed something unusable (e.g. an endpoint that is not http://host:port).
  invalid_argument,
  /// A bug or resource exhaustion inside the client (an exception caught at the boundary).
  internal,
};

/// The spelling of a code, e.g. "unavailable". Never empty.
std::string_view to_string(errc code);

/// Why a call failed. `http_status` is set when etcd answered (0 otherwise); `grpc_code` is
/// the gRPC status code from etcd's error body (0 when absent).
struct error {
  errc code = errc::none;
  std::string message;
  int http_status = 0;
  int grpc_code = 0;
};

/// "code: message" (plus the HTTP status when there is one), for logs.
std::string to_string(const error& e);

/// Either a value or an error; never both, never neither.
template <class T>
class result {
 public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(error e) : state_(std::in_place_index<1>, std::move(e)) {}

  /// True when the call succeeded and value() may be used.
  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  /// The value; only when ok().
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; only when !ok().
  const error& err() const { return std::get<1>(state_); }
  /// The error code, or errc::none when ok().
  errc code() const { return ok() ? errc::none : err().code; }

 private:
  std::variant<T, error> state_;
};

}  // namespace ordermesh::etcd
