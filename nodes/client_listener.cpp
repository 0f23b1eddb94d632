#include "nodes/client_listener.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace ordermesh::node {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
std::atomic<uint64_t> next_connection_id{1};
}

client_connection::client_connection(tcp::socket socket, const listener_options& opts,
                                     std::function<void(client_connection*)> on_gone)
    : socket_(std::move(socket)),
      opts_(opts),
      on_gone_(std::move(on_gone)),
      id_(next_connection_id++) {}

client_connection::~client_connection() = default;

void client_connection::start(std::unique_ptr<connection_handler> handler) {
  handler_ = std::move(handler);
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  read_more();
}

void client_connection::close_when_done() {
  if (read_closed_ && in_flight_ == 0 && outbox_.empty() && !writing_)
    shutdown_now();
}

void client_connection::read_more() {
  if (reading_ || closed_ || read_closed_ || in_flight_ >= opts_.max_in_flight)
    return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(buf_),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            self->reading_ = false;
                            if (ec == asio::error::eof) {
                              // The client finished sending (half-close): answer what it asked,
                              // then close.
                              self->read_closed_ = true;
                              self->close_when_done();
                              return;
                            }
                            if (ec) {
                              self->shutdown_now();
                              return;
                            }
                            self->on_read(n);
                          });
}

void client_connection::on_read(size_t n) {
  size_t pos = 0;
  while (pos < n && !closed_) {
    auto* nl = static_cast<const char*>(memchr(buf_ + pos, '\n', n - pos));
    size_t end = nl ? static_cast<size_t>(nl - buf_) : n;
    if (discarding_) {
      if (nl)
        discarding_ = false;
    } else {
      inbox_.append(buf_ + pos, end - pos);
      if (inbox_.size() > opts_.max_line_bytes) {
        // Too long: answer once, drop the rest of this line as it arrives.
        inbox_.clear();
        discarding_ = !nl;
        ++in_flight_;
        handler_->on_oversized();
      } else if (nl) {
        std::string line;
        line.swap(inbox_);
        if (!line.empty() && line.back() == '\r')
          line.pop_back();
        if (!line.empty()) {
          ++in_flight_;
          handler_->on_line(std::move(line));
        }
      }
    }
    pos = end + 1;
  }
  read_more();
}

void client_connection::send(std::string line) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), l = std::move(line)]() mutable {
    if (self->in_flight_ > 0)
      --self->in_flight_;
    if (self->closed_)
      return;
    self->outbox_.push_back(std::move(l));
    self->write_next();
    self->read_more();
  });
}

void client_connection::write_next() {
  if (writing_ || outbox_.empty() || closed_)
    return;
  writing_ = true;
  // Coalesce what is queued into one write: fewer syscalls under pipelining.
  auto data = std::make_shared<std::string>();
  while (!outbox_.empty() && data->size() < 256 * 1024) {
    *data += outbox_.front();
    outbox_.pop_front();
  }
  asio::async_write(socket_, asio::buffer(*data),
                    [self = shared_from_this(), data](boost::system::error_code ec, size_t) {
                      self->writing_ = false;
                      if (ec) {
                        self->shutdown_now();
                        return;
                      }
                      self->write_next();
                      self->close_when_done();
                    });
}

void client_connection::close() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->shutdown_now(); });
}

void client_connection::shutdown_now() {
  if (closed_)
    return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  if (handler_)
    handler_->on_close();
  if (on_gone_)
    on_gone_(this);
}

client_listener::client_listener(listener_options opts, handler_factory factory)
    : opts_(std::move(opts)), factory_(std::move(factory)), acceptor_(io_) {}

client_listener::~client_listener() {
  stop();
}

bool client_listener::start(std::string* error) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) {
    *error = "bad client host '" + opts_.host + "': " + ec.message();
    return false;
  }
  tcp::endpoint ep(addr, opts_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec)
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec)
    acceptor_.bind(ep, ec);
  if (!ec)
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error =
        "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " + ec.message();
    return false;
  }
  bound_port_ = acceptor_.local_endpoint().port();
  accept_next();
  thread_ = std::thread([this] { io_.run(); });
  return true;
}

void client_listener::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open())
        return;
      accept_next();  // e.g. EMFILE: keep serving the connections we have
      return;
    }
    if (live_.load() >= opts_.max_connections) {
      static const std::string refusal =
          R"({"id":null,"ok":false,"error":{"code":"overloaded","message":"too many connections"}})"
          "\n";
      boost::system::error_code wec;
      asio::write(socket, asio::buffer(refusal), wec);
      socket.close(wec);
      accept_next();
      return;
    }
    auto conn =
        std::make_shared<client_connection>(std::move(socket), opts_, [this](client_connection* c) {
          std::lock_guard<std::mutex> lock(conns_mutex_);
          for (auto it = conns_.begin(); it != conns_.end(); ++it)
            if (it->get() == c) {
              conns_.erase(it);
              --live_;
              break;
            }
        });
    {
      std::lock_guard<std::mutex> lock(conns_mutex_);
      conns_.insert(conn);
      ++live_;
    }
    conn->start(factory_(conn));
    accept_next();
  });
}

void client_listener::stop_accepting() {
  asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

void client_listener::stop() {
  if (!thread_.joinable())
    return;
  stop_accepting();
  {
    std::lock_guard<std::mutex> lock(conns_mutex_);
    for (auto& c : conns_)
      c->close();
  }
  // Let the closes run, then end the loop.
  asio::post(io_, [this] { io_.stop(); });
  thread_.join();
}

}  // namespace ordermesh::node
