#pragma once
// Error codes shared by every layer. They are the protocol's error codes (docs/PROTOCOL.md):
// a code exists only if a caller can react to it differently.
#include <cstdint>
#include <string>
#include <string_view>

namespace ordermesh::domain {

enum class errc : uint8_t {
  none = 0,
  bad_request,
  unauthorized,
  forbidden,
  not_found,
  conflict,
  out_of_stock,
  insufficient_funds,
  invalid_state,
  unavailable,  // safe to retry with the same ids
  timeout,      // safe to retry with the same ids
  overloaded,   // safe to retry with the same ids
  too_large,
  internal,
  // Added after `internal`: codes cross nodes as their numbers, so existing ones keep theirs.
  limit_exceeded,  // a per-user cap (unpaid reservations) is reached; nothing changed
  corrupted,       // the entity's stored data is damaged: it serves nothing until restored
};

/// The highest code; anything above it from another node reads as `internal`.
constexpr errc last_errc = errc::corrupted;

/// The protocol spelling, e.g. "out_of_stock". Never empty.
std::string_view to_string(errc code);
/// Parses the protocol spelling; false for unknown text.
bool from_string(std::string_view text, errc& out);

/// A refusal from a rule: no events, a code and a message for people.
struct failure {
  errc code = errc::none;
  std::string message;
};

}  // namespace ordermesh::domain
