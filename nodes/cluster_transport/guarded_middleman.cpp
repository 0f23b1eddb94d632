#include "nodes/cluster_transport/guarded_middleman.hpp"

#include <caf/atom.hpp>
#include <caf/function_view.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor_impl.hpp>
#include <caf/io/network/doorman_impl.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

#include "nodes/cluster_transport/guarded_scribe.hpp"
#include "nodes/cluster_transport/tcp_dial.hpp"

#include <openssl/err.h>

namespace ordermesh::cluster_transport {

namespace {

using caf::io::network::default_multiplexer;
using detail::connection_state;
using detail::guarded_scribe;
using detail::native_socket;

/// A scribe for `fd` (owned by the scribe from then on, or closed here on failure).
caf::expected<caf::io::scribe_ptr> make_scribe(caf::actor_system& sys, default_multiplexer& mpx,
                                               native_socket fd, bool accepted, bool tls,
                                               std::shared_ptr<connection_state> state) {
  caf::io::network::nonblocking(fd, true);
  if (!tls) {
    caf::io::network::keepalive(fd, true);  // as CAF's default multiplexer does
    return caf::make_counted<guarded_scribe<detail::plain_io>>(mpx, fd, std::move(state),
                                                               detail::plain_io{}, false);
  }
  ERR_clear_error();  // make_session runs SSL_accept / SSL_connect: see tls_io
  auto session = caf::openssl::make_session(sys, fd, accepted);
  ERR_clear_error();
  if (!session) {
    if (state->id)  // before the close: the sweeper must never see a closed fd
      state->guard->on_closed(*state->id);
    state->id.reset();
    caf::io::network::close_socket(fd);
    return caf::make_error(caf::sec::cannot_connect_to_node);
  }
  return caf::make_counted<guarded_scribe<detail::tls_io>>(
      mpx, fd, std::move(state), detail::tls_io{std::move(session)}, true);
}

/// The cluster port's acceptor: registers every accepted connection with the guard first.
class guarded_doorman : public caf::io::network::doorman_impl {
 public:
  guarded_doorman(default_multiplexer& mpx, native_socket fd,
                  std::shared_ptr<connection_guard> guard, bool tls,
                  std::chrono::milliseconds user_timeout)
      : caf::io::network::doorman_impl(mpx, fd),
        guard_(std::move(guard)),
        tls_(tls),
        user_timeout_(user_timeout) {}

  bool new_connection() override {
    if (detached())
      return false;  // the broker let go of this doorman while the poll set still had it
    auto& mpx = acceptor_.backend();
    auto fd = acceptor_.accepted_socket();
    auto peer = caf::io::network::remote_addr_of_fd(fd);
    auto state = std::make_shared<connection_state>();
    state->guard = guard_;
    state->id = guard_->on_accept(fd, peer ? *peer : std::string{"?"});
    if (!state->id) {
      caf::io::network::close_socket(fd);  // the connection cap: fds stay bounded
      return false;
    }
    set_user_timeout(fd, user_timeout_);
    auto scribe = make_scribe(parent()->system(), mpx, fd, true, tls_, std::move(state));
    if (!scribe)
      return false;  // make_scribe deregistered and closed it
    auto hdl = (*scribe)->hdl();
    parent()->add_scribe(std::move(*scribe));
    return doorman::new_connection(&mpx, hdl);
  }

 private:
  std::shared_ptr<connection_guard> guard_;
  bool tls_;
  std::chrono::milliseconds user_timeout_;
};

/// CAF's middleman actor with the guarded scribes and doorman in place of the default ones.
class guarded_middleman_actor : public caf::io::middleman_actor_impl {
 public:
  guarded_middleman_actor(caf::actor_config& cfg, caf::actor broker,
                          std::shared_ptr<connection_guard> guard, const transport_options& o)
      : caf::io::middleman_actor_impl(cfg, std::move(broker)),
        guard_(std::move(guard)),
        tls_(o.tls),
        connect_timeout_(o.connect_timeout),
        user_timeout_(o.user_timeout) {}

  const char* name() const override { return "ordermesh.guarded_middleman"; }

 protected:
  caf::expected<caf::io::scribe_ptr> connect(const std::string& host, uint16_t port) override {
    std::string why;
    native_socket fd = dial_tcp(host, port, connect_timeout_, &why);
    if (fd < 0)
      return caf::make_error(caf::sec::cannot_connect_to_node, host + ":" + std::to_string(port),
                             why);
    set_user_timeout(fd, user_timeout_);
    auto state = std::make_shared<connection_state>();
    state->guard = guard_;  // no id: a dialled connection has no handshake deadline
    return make_scribe(system(), mpx(), fd, false, tls_, std::move(state));
  }

  caf::expected<caf::io::doorman_ptr> open(uint16_t port, const char* addr, bool reuse) override {
    auto fd = caf::io::network::new_tcp_acceptor_impl(port, addr, reuse);
    if (!fd)
      return std::move(fd.error());
    return caf::make_counted<guarded_doorman>(mpx(), *fd, guard_, tls_, user_timeout_);
  }

 private:
  default_multiplexer& mpx() {
    return static_cast<default_multiplexer&>(system().middleman().backend());
  }

  std::shared_ptr<connection_guard> guard_;
  bool tls_;
  std::chrono::milliseconds connect_timeout_;
  std::chrono::milliseconds user_timeout_;
};

}  // namespace

cluster_transport::cluster_transport(caf::actor_system& sys, transport_options options)
    : sys_(sys), request_timeout_(options.request_timeout) {
  auto guard = std::make_shared<connection_guard>(std::move(options.guard));
  auto broker = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  // Detached like caf::openssl's: connect blocks in dial_tcp (at most connect_timeout).
  middleman_ = sys.spawn<guarded_middleman_actor, caf::detached + caf::hidden>(
      std::move(broker), std::move(guard), options);
}

cluster_transport::~cluster_transport() {
  caf::scoped_actor self{sys_, true};
  self->send_exit(middleman_, caf::exit_reason::kill);
  self->wait_for(middleman_);
}

caf::expected<uint16_t> cluster_transport::publish(const caf::actor& whom, uint16_t port,
                                                   const std::string& host) {
  auto f = caf::make_function_view(middleman_, caf::duration{request_timeout_});
  auto sigs = sys_.message_types(caf::detail::type_list<caf::actor>{});
  return f(caf::publish_atom::value, port, caf::actor_cast<caf::strong_actor_ptr>(whom),
           std::move(sigs), host, true);
}

caf::expected<caf::actor> cluster_transport::remote_actor(const std::string& host, uint16_t port) {
  auto f = caf::make_function_view(middleman_, caf::duration{request_timeout_});
  auto x = f(caf::connect_atom::value, host, port);
  if (!x)
    return std::move(x.error());
  auto& ptr = std::get<1>(*x);
  if (!ptr)
    return caf::make_error(caf::sec::no_actor_published_at_port);
  return caf::actor_cast<caf::actor>(std::move(ptr));
}

}  // namespace ordermesh::cluster_transport
