#pragma once
// Internal to guarded_middleman.cpp: one cluster connection as CAF sees it (a scribe), with the
// bounds of connection_guard around CAF's own stream. A copy-and-extend of the scribe in CAF
// 0.17.6's libcaf_openssl/src/openssl/middleman_actor.cpp (and libcaf_io's scribe_impl for
// plain TCP), templated on how bytes are read: through an OpenSSL session or plain TCP.
//
// What it adds:
// - configure_read: a read size above the frame bound is never passed to the stream (BASP would
//   resize its buffer to whatever a peer's header announces, up to 4 GiB); the socket is shut
//   down and every later read fails, so CAF tears the connection down as for a lost peer;
// - the first application data read or written (TLS done) ends the handshake;
// - the destructor deregisters the connection before ~event_handler closes its fd.
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/io/scribe.hpp>
#include <caf/openssl/session.hpp>
#include <caf/policy/tcp.hpp>

#include "nodes/cluster_transport/connection_guard.hpp"

namespace ordermesh::cluster_transport::detail {

using caf::io::network::native_socket;
using caf::io::network::rw_state;

/// Shared by a scribe and the read policy inside its stream.
struct connection_state {
  std::shared_ptr<connection_guard> guard;
  std::optional<uint64_t> id;  // set for accepted connections only: dialled ones have no deadline
  bool established = false;    // multiplexer thread only
  std::atomic<bool> refused{false};

  void on_application_data() {
    if (established)
      return;
    established = true;
    if (id)
      guard->on_established(*id);
  }
};

/// Bytes through an OpenSSL session (the handshake runs inside the first reads and writes).
///
/// The thread's OpenSSL error queue is cleared around every call: CAF's session reads it through
/// SSL_get_error but drains it only when CAF's own logging is compiled in, so one failed
/// handshake (a stranger, a cut-short ClientHello) left an error that made the next harmless
/// SSL_ERROR_WANT_READ on ANOTHER connection of the same thread look fatal, dropping a healthy
/// member connection (seen in cluster_port_limits_test; also the cause of the member
/// connections that dropped while an intruder was listed: 22 to 29 drops in cluster_tls_test's
/// 12 s before, none since; docs/SECURITY.md, "Cluster plane").
struct tls_io {
  caf::openssl::session_ptr session;
  rw_state read_some(size_t& result, native_socket fd, void* buf, size_t len) {
    ERR_clear_error();
    auto res = session->read_some(result, fd, buf, len);
    ERR_clear_error();
    return res;
  }
  rw_state write_some(size_t& result, native_socket fd, const void* buf, size_t len) {
    ERR_clear_error();
    auto res = session->write_some(result, fd, buf, len);
    ERR_clear_error();
    return res;
  }
  bool must_read_more(native_socket fd, size_t threshold) {
    return session->must_read_more(fd, threshold);
  }
};

/// Plain TCP (--insecure-cluster): CAF's own policy.
struct plain_io {
  rw_state read_some(size_t& result, native_socket fd, void* buf, size_t len) {
    return caf::policy::tcp::read_some(result, fd, buf, len);
  }
  rw_state write_some(size_t& result, native_socket fd, const void* buf, size_t len) {
    return caf::policy::tcp::write_some(result, fd, buf, len);
  }
  bool must_read_more(native_socket, size_t) { return false; }
};

/// The stream's protocol policy: the transport's reads, failing once the frame bound refused
/// a read, and noticing the first application data moved either way. Through TLS that means
/// SSL_accept has completed: the peer showed a certificate of the cluster CA, and an
/// authenticated peer is trusted (docs/SECURITY.md), so the deadline and the pending cap cover
/// exactly the unauthenticated part. Plain TCP (--insecure-cluster) authenticates nobody:
/// BASP's greeting is written at once, so only the total cap and the frame bound apply there.
template <class Io>
class guarded_policy {
 public:
  guarded_policy(std::shared_ptr<connection_state> state, Io io)
      : state_(std::move(state)), io_(std::move(io)) {}

  rw_state read_some(size_t& result, native_socket fd, void* buf, size_t len) {
    result = 0;
    if (state_->refused.load())
      return rw_state::failure;
    auto res = io_.read_some(result, fd, buf, len);
    if (res == rw_state::success && result > 0)
      state_->on_application_data();
    return res;
  }
  rw_state write_some(size_t& result, native_socket fd, const void* buf, size_t len) {
    auto res = io_.write_some(result, fd, buf, len);
    if (res == rw_state::success && result > 0)
      state_->on_application_data();
    return res;
  }
  bool must_read_more(native_socket fd, size_t threshold) {
    return !state_->refused.load() && io_.must_read_more(fd, threshold);
  }

 private:
  std::shared_ptr<connection_state> state_;
  Io io_;
};

template <class Io>
class guarded_scribe : public caf::io::scribe {
 public:
  /// `tls`: kick the TLS handshake with an empty write at launch, as CAF's OpenSSL scribe does.
  guarded_scribe(caf::io::network::default_multiplexer& mpx, native_socket fd,
                 std::shared_ptr<connection_state> state, Io io, bool tls)
      : caf::io::scribe(caf::io::network::conn_hdl_from_socket(fd)),
        state_(state),
        tls_(tls),
        stream_(mpx, fd, std::move(state), std::move(io)) {}

  ~guarded_scribe() override {
    // Before ~event_handler closes the fd: the sweeper never shuts down a closed (reused) fd.
    if (state_->id)
      state_->guard->on_closed(*state_->id);
  }

  void configure_read(caf::io::receive_policy::config config) override {
    if (config.second > state_->guard->max_frame_bytes() && !state_->refused.exchange(true))
      state_->guard->on_oversized_frame(stream_.fd(), config.second, peer());
    if (!state_->refused.load())
      stream_.configure_read(config);
    if (!launched_)
      launch();
  }

  void ack_writes(bool enable) override { stream_.ack_writes(enable); }
  std::vector<char>& wr_buf() override { return stream_.wr_buf(); }
  std::vector<char>& rd_buf() override { return stream_.rd_buf(); }

  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }

  void flush() override { stream_.flush(this); }

  std::string addr() const override {
    auto x = caf::io::network::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }

  uint16_t port() const override {
    auto x = caf::io::network::remote_port_of_fd(stream_.fd());
    return x ? *x : uint16_t{0};
  }

  void add_to_loop() override { stream_.activate(this); }
  void remove_from_loop() override { stream_.passivate(); }

 private:
  std::string peer() const { return addr() + ":" + std::to_string(port()); }

  void launch() {
    launched_ = true;
    stream_.start(this);
    // Schedules the scribe while SSL_accept / SSL_connect still has to run.
    if (tls_)
      stream_.force_empty_write(this);
  }

  std::shared_ptr<connection_state> state_;
  bool tls_;
  bool launched_ = false;
  caf::io::network::stream_impl<guarded_policy<Io>> stream_;
};

}  // namespace ordermesh::cluster_transport::detail
