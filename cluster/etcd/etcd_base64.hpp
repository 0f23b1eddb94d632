#pragma once
// Base64 as etcd's JSON gateway writes keys and values (Go's encoding/json for []byte: the
// standard alphabet, padded). Pure: no I/O, no exceptions.
#include <string>
#include <string_view>

namespace ordermesh::etcd {

/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);
/// Decodes standard padded base64. Returns false (and leaves `out` unspecified) on a bad
/// length, a character outside the alphabet, or misplaced padding.
bool base64_decode(std::string_view text, std::string& out);

}  // namespace ordermesh::etcd
