// libFuzzer target: the decoders of etcd's JSON gateway answers (cluster/etcd/
// etcd_codec_decode.cpp): every response body, a watch stream line, an error body, and the
// base64 of keys and values. Contract (etcd_codec.hpp, etcd_base64.hpp): no exceptions, a
// malformed body is a bad_response result, decode_error never fails, and base64 that decodes
// re-encodes to text that decodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/etcd/etcd_base64.hpp"
#include "cluster/etcd/etcd_codec.hpp"
#include "fuzz/fuzz_check.hpp"

namespace {

namespace etcd = ordermesh::etcd;

void check_base64(std::string_view text) {
  std::string bytes;
  if (!etcd::base64_decode(text, bytes))
    return;
  std::string again;
  FUZZ_CHECK(etcd::base64_decode(etcd::base64_encode(bytes), again));
  FUZZ_CHECK(again == bytes);
}

void decode_every_body(std::string_view body) {
  (void)etcd::decode_range(body);
  (void)etcd::decode_put(body);
  (void)etcd::decode_delete(body);
  (void)etcd::decode_txn(body);
  (void)etcd::decode_lease_grant(body);
  (void)etcd::decode_lease_keepalive(body);
  (void)etcd::decode_lease_revoke(body);
  (void)etcd::decode_lease_time_to_live(body);
  (void)etcd::decode_compact(body);
  (void)etcd::decode_watch_line(body);
  (void)etcd::decode_error(503, body);
  (void)etcd::decode_error(400, body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    decode_every_body(bytes);
    check_base64(bytes);
  } catch (...) {
    FUZZ_CHECK(!"an etcd decoder threw");
  }
  return 0;
}
