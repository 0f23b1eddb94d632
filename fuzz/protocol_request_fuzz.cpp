// libFuzzer target: the client request parser and validator (nodes/protocol.cpp) on arbitrary
// lines. Its contract (protocol.hpp): parse_request never throws, and a refused line carries
// bad_request or too_large; an accepted one names an operation and carries no error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "nodes/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ordermesh::domain::errc;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  ordermesh::protocol::parsed p;
  try {
    p = ordermesh::protocol::parse_request(line);
  } catch (...) {
    FUZZ_CHECK(!"parse_request threw");
  }
  if (p.ok()) {
    FUZZ_CHECK(!ordermesh::protocol::to_string(p.req.operation).empty());
  } else {
    FUZZ_CHECK(p.error.code == errc::bad_request || p.error.code == errc::too_large);
  }
  if (size > ordermesh::protocol::max_line_bytes)
    FUZZ_CHECK(!p.ok());
  return 0;
}
