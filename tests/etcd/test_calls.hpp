#pragma once
// Small builders and checks shared by the etcd test files (client_test.cpp and watch_test.cpp
// predate it and keep their own copies).
#include <chrono>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "cluster/etcd/etcd_client.hpp"

namespace ordermesh::etcd::test {

/// A deadline 5 s from now: ample on a loaded machine, still a bound.
inline deadline soon() {
  return deadline_after(std::chrono::seconds(5));
}

/// REQUIREs success (logging the error otherwise) and returns the value.
template <class T>
T ok(result<T> r) {
  INFO((r.ok() ? std::string("ok") : to_string(r.err())));
  REQUIRE(r.ok());
  return std::move(r.value());
}

inline range_request key_only(std::string key) {
  range_request r;
  r.key = std::move(key);
  return r;
}

inline put_request kv(std::string key, std::string value, int64_t lease = 0) {
  put_request p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

/// Client options with these TLS files.
inline client_options with_tls(tls_files files) {
  client_options o;
  o.tls = std::move(files);
  return o;
}

}  // namespace ordermesh::etcd::test
