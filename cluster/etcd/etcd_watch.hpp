#pragma once
// A watch on etcd's JSON gateway: POST /v3/watch on a connection of its own, answered by a
// chunked body of newline-separated {"result": {...}} objects that never ends while the watch
// lives.
#include <cstddef>
#include <memory>
#include <vector>

#include "cluster/etcd/etcd_config.hpp"
#include "cluster/etcd/etcd_error.hpp"
#include "cluster/etcd/etcd_types.hpp"

namespace ordermesh::etcd {

struct tls_context;

/// One reader thread calls next(); any thread may call close().
class watch_stream {
 public:
  /// Connects to `endpoints` (starting at index `first`, then the others in order), over TLS
  /// with `tls` for https endpoints (null for http ones), sends the create request and waits
  /// for etcd's 200 header. Returns the open stream, or:
  /// - unavailable: no endpoint accepted the watch (the message says why for each);
  /// - timeout: `by` passed;
  /// - http_error / compacted / too_large / bad_response from etcd's answer.
  static result<std::unique_ptr<watch_stream>> open(const std::vector<endpoint>& endpoints,
                                                    std::size_t first, const watch_request& r,
                                                    const client_options& options,
                                                    std::shared_ptr<tls_context> tls, deadline by);

  ~watch_stream();
  watch_stream(const watch_stream&) = delete;
  watch_stream& operator=(const watch_stream&) = delete;

  /// Blocks until the next line of the stream or `by`. Returns:
  /// - a watch_response: `created` first, then `events` batches in revision order (a lease
  ///   expiry is DELETE events), `progress`; or `canceled` (with compact_revision > 0 when
  ///   start_revision was compacted: list again, then watch from the listed revision + 1),
  ///   after which the stream is finished;
  /// - timeout when `by` passed first; the stream stays usable and nothing is lost;
  /// - closed after close() or after `canceled`, on every later call;
  /// - unavailable when the connection broke or etcd ended the stream, too_large when a line
  ///   exceeded max_watch_line_bytes, bad_response for a malformed line, or an error etcd sent
  ///   in-band; the stream is then finished and every later call returns that error. Events may
  ///   have been missed: list again and open a new watch.
  result<watch_response> next(deadline by);

  /// Ends the watch: a next() blocked in another thread returns closed promptly, and every later
  /// next() returns closed. Thread-safe, idempotent, never blocks.
  void close();

 private:
  struct impl;
  explicit watch_stream(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

}  // namespace ordermesh::etcd
