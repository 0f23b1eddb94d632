#pragma once
// The TLS client context of the etcd library: the CA to trust and this client's certificate,
// loaded once per client and shared by its unary connection and its watch streams (a watch may
// outlive its client, so the context is reference-counted). Internal: pulls in Asio's SSL.
#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "cluster/etcd/etcd_config.hpp"
#include "cluster/etcd/etcd_error.hpp"

namespace ordermesh::etcd {

struct tls_context {
  explicit tls_context(boost::asio::ssl::context c) : ssl(std::move(c)) {}
  boost::asio::ssl::context ssl;
};

/// A client context (TLS 1.2 or later, peer verification on) from `files`, or invalid_argument
/// naming the file that could not be used. `files.ca_file` must be set.
result<std::shared_ptr<tls_context>> make_tls_context(const tls_files& files);

/// The context `endpoints` need: nullptr for http endpoints (or none), the loaded context for
/// https ones, or the error check_client_config describes.
result<std::shared_ptr<tls_context>> context_for(const std::vector<endpoint>& endpoints,
                                                 const client_options& options);

}  // namespace ordermesh::etcd
