#include "nodes/client_listener.hpp"

#include <algorithm>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

namespace ordermesh::node {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::atomic<uint64_t> next_connection_id{1};

// Queued replies are coalesced into writes of about this size: fewer syscalls under pipelining,
// and a bounded copy.
constexpr size_t write_chunk_bytes = 256 * 1024;

// An inbox that one long line grew past this is given back, so that a connection which once
// sent a 64 KiB line does not keep 64 KiB for the rest of its life.
constexpr size_t inbox_keep_bytes = 4 * 1024;

std::string overloaded_line(const char* message) {
  return std::string(R"({"id":null,"ok":false,"error":{"code":"overloaded","message":")") +
         message + "\"}}\n";
}

/// The key connections are counted under for the per-address cap: the IPv4 address, or the /64
/// of an IPv6 one (one host usually holds a whole /64, so counting single IPv6 addresses would
/// give it millions of caps).
asio::ip::address address_key(const asio::ip::address& a) {
  if (!a.is_v6())
    return a;
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes);
}

}  // namespace

client_connection::client_connection(tcp::socket socket, asio::ip::address remote,
                                     const listener_options& opts,
                                     std::function<void(client_connection*, close_reason)> on_gone)
    : stream_(std::move(socket), opts.tls.get()),
      timer_(stream_.socket().get_executor()),
      opts_(opts),
      on_gone_(std::move(on_gone)),
      remote_(std::move(remote)),
      // Until replies have been seen, assume large ones: a first burst of pipelined requests
      // then starts at max_unsent_bytes / 16 of them (16), and widens as small replies come.
      reply_estimate_(opts.max_unsent_bytes / 16),
      id_(next_connection_id++) {}

client_connection::~client_connection() = default;

void client_connection::start(std::unique_ptr<connection_handler> handler) {
  handler_ = std::move(handler);
  boost::system::error_code ec;
  stream_.socket().set_option(tcp::no_delay(true), ec);
  last_activity_ = clock::now();
  if (stream_.is_tls()) {
    handshake();
    return;
  }
  arm_timer(last_activity_ + opts_.idle_timeout);
  read_more();
}

void client_connection::handshake() {
  // A client that connects and never finishes the handshake holds a slot like an idle one, so
  // it is closed like one, after handshake_timeout (on_timer).
  handshaking_ = true;
  handshake_deadline_ = last_activity_ + opts_.handshake_timeout;
  arm_timer(handshake_deadline_);
  stream_.async_handshake([self = shared_from_this()](boost::system::error_code ec) {
    self->handshaking_ = false;
    if (self->closed_)
      return;
    if (ec) {  // not TLS, a protocol error, or a client that refused our certificate
      self->shutdown_now(close_reason::error);
      return;
    }
    self->last_activity_ = clock::now();
    self->arm_timer(self->last_activity_ + self->opts_.idle_timeout);
    self->read_more();
  });
}

void client_connection::close_when_done() {
  if (read_closed_ && in_flight_ == 0 && outbox_.empty() && !writing_)
    shutdown_now(close_reason::client);
}

bool client_connection::may_dispatch() const {
  // Requests in flight count with the size their replies will probably have: a client that
  // pipelines requests with large replies is held near the bound before the replies exist.
  return in_flight_ < opts_.max_in_flight &&
         unsent_ + in_flight_ * reply_estimate_ <= opts_.max_unsent_bytes;
}

void client_connection::read_more() {
  if (reading_ || closed_)
    return;
  if (buf_pos_ < buf_end_) {
    consume();  // bytes parked by flow control come first
    if (closed_ || buf_pos_ < buf_end_)
      return;
  }
  if (read_closed_)
    return;
  if (!may_dispatch()) {
    paused_ = true;
    return;
  }
  if (paused_) {
    // The line clock stood still while this side was not reading: the client was not slow.
    paused_ = false;
    if (!inbox_.empty() || discarding_) {
      line_started_ = clock::now();
      arm_timer(line_started_ + opts_.line_timeout);
    }
  }
  reading_ = true;
  auto on_read = [self = shared_from_this()](boost::system::error_code ec, size_t n) {
    self->reading_ = false;
    if (self->closed_)
      return;
    // eof: the client finished sending (half-close, or TLS close_notify); stream_truncated: a
    // TLS client closed its socket without close_notify. Either way answer what it asked, then
    // close.
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      self->read_closed_ = true;
      self->close_when_done();
      return;
    }
    if (ec) {
      self->shutdown_now(close_reason::error);
      return;
    }
    self->last_activity_ = clock::now();
    self->buf_pos_ = 0;
    self->buf_end_ = n;
    self->consume();
    self->read_more();
  };
  stream_.visit([&](auto& s) { s.async_read_some(asio::buffer(buf_), std::move(on_read)); });
}

void client_connection::consume() {
  auto now = clock::now();
  consuming_ = true;
  while (buf_pos_ < buf_end_ && !closed_) {
    if (!may_dispatch()) {
      // Over a bound: the rest stays in buf_ (no read until it is consumed).
      paused_ = true;
      break;
    }
    bool was_open = !inbox_.empty() || discarding_;
    const char* start = buf_ + buf_pos_;
    size_t avail = buf_end_ - buf_pos_;
    auto* nl = static_cast<const char*>(memchr(start, '\n', avail));
    size_t len = nl ? static_cast<size_t>(nl - start) : avail;
    buf_pos_ += nl ? len + 1 : len;
    if (discarding_) {
      if (nl)
        discarding_ = false;
    } else {
      inbox_.append(start, len);
      if (inbox_.size() > opts_.max_line_bytes) {
        // Too long: answer once, drop the rest of this line as it arrives.
        release_inbox();
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
    if (!was_open && (!inbox_.empty() || discarding_)) {
      // The first byte of a line: it must be complete within line_timeout (slow-loris).
      line_started_ = now;
      arm_timer(now + opts_.line_timeout);
    }
  }
  consuming_ = false;
  if (buf_pos_ == buf_end_)
    buf_pos_ = buf_end_ = 0;
}

void client_connection::release_inbox() {
  if (inbox_.capacity() > inbox_keep_bytes)
    std::string().swap(inbox_);
  else
    inbox_.clear();
}

void client_connection::send(std::string line) {
  if (std::this_thread::get_id() == io_thread_) {
    deliver(std::move(line));
    if (!consuming_)
      read_more();
    return;
  }
  asio::post(timer_.get_executor(), [self = shared_from_this(), l = std::move(line)]() mutable {
    self->deliver(std::move(l));
    self->read_more();
  });
}

void client_connection::deliver(std::string line) {
  if (in_flight_ > 0 && --in_flight_ == 0)
    last_activity_ = clock::now();  // idle from now on, not from the last byte read
  if (closed_)
    return;
  // A decaying maximum: one large reply makes the next requests count as large for a while.
  reply_estimate_ = std::max(line.size(), reply_estimate_ - reply_estimate_ / 8);
  unsent_ += line.size();
  set_queued(unsent_);
  outbox_.push_back(std::move(line));
  write_next();
}

void client_connection::set_queued(size_t n) {
  queued_.store(n, std::memory_order_relaxed);
  if (n > peak_queued_.load(std::memory_order_relaxed))
    peak_queued_.store(n, std::memory_order_relaxed);
}

void client_connection::write_next() {
  if (writing_ || outbox_.empty() || closed_)
    return;
  writing_ = true;
  // Coalesce what is queued into one write (a large reply is moved, not copied).
  auto data = std::make_shared<std::string>(std::move(outbox_.front()));
  outbox_.pop_front();
  while (!outbox_.empty() && data->size() < write_chunk_bytes) {
    *data += outbox_.front();
    outbox_.pop_front();
  }
  auto on_written = [self = shared_from_this(), data](boost::system::error_code ec, size_t) {
    self->writing_ = false;
    if (self->closed_)
      return;
    self->unsent_ -= data->size();
    self->set_queued(self->unsent_);
    if (ec) {
      self->shutdown_now(close_reason::error);
      return;
    }
    self->last_activity_ = clock::now();
    self->write_next();
    self->read_more();  // drained below the bound: read again
    self->close_when_done();
  };
  stream_.visit([&](auto& s) { asio::async_write(s, asio::buffer(*data), std::move(on_written)); });
}

void client_connection::arm_timer(clock::time_point at) {
  // Only ever moved earlier here; on_timer() works out the real deadline when it fires, so the
  // common case (another byte read) costs no timer operation at all.
  if (closed_ || at >= timer_at_)
    return;
  timer_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([self = shared_from_this(), at](boost::system::error_code) {
    if (self->closed_ || self->timer_at_ != at)
      return;  // closed, or re-armed for an earlier deadline since
    self->timer_at_ = clock::time_point::max();
    self->on_timer();
  });
}

void client_connection::on_timer() {
  auto now = clock::now();
  if (handshaking_) {
    if (now >= handshake_deadline_) {
      shutdown_now(close_reason::idle);
      return;
    }
    arm_timer(handshake_deadline_);
    return;
  }
  clock::time_point next;
  if (in_flight_ == 0) {
    auto idle_at = last_activity_ + opts_.idle_timeout;
    if (now >= idle_at) {
      shutdown_now(close_reason::idle);
      return;
    }
    next = idle_at;
  } else {
    next = now + opts_.idle_timeout;  // a request in flight keeps the connection alive
  }
  if (reading_ && (!inbox_.empty() || discarding_)) {
    // Waiting for the rest of a line (not paused by flow control).
    auto line_at = line_started_ + opts_.line_timeout;
    if (now >= line_at) {
      shutdown_now(close_reason::line_timeout);
      return;
    }
    next = std::min(next, line_at);
  }
  arm_timer(next);
}

void client_connection::close() {
  asio::post(timer_.get_executor(),
             [self = shared_from_this()] { self->shutdown_now(close_reason::shutdown); });
}

void client_connection::shutdown_now(close_reason why) {
  if (closed_)
    return;
  closed_ = true;
  boost::system::error_code ec;
  timer_.cancel();
  // Under TLS no close_notify: the socket goes at once, whatever state the session is in.
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  // Give the memory back now: the object may live on while replies still in flight arrive.
  std::deque<std::string>().swap(outbox_);
  unsent_ = 0;
  set_queued(0);
  std::string().swap(inbox_);
  buf_pos_ = buf_end_ = 0;
  if (handler_)
    handler_->on_close();
  if (on_gone_)
    on_gone_(this, why);
}

client_listener::client_listener(listener_options opts, handler_factory factory)
    : opts_(std::move(opts)), factory_(std::move(factory)), acceptor_(io_), accept_backoff_(io_) {}

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

void client_listener::refuse(tcp::socket& socket, const std::string& line) {
  // One non-blocking write into an empty send buffer, then close: a flood of refused
  // connections costs the I/O thread a few syscalls each and can never block it.
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  if (!line.empty())
    socket.write_some(asio::buffer(line), ec);
  socket.close(ec);
}

void client_listener::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open())
        return;
      // e.g. EMFILE: keep serving the connections we have, and retry a little later rather
      // than at once (the pending connection keeps the acceptor readable: a busy loop).
      accept_backoff_.expires_after(std::chrono::milliseconds(50));
      accept_backoff_.async_wait([this](boost::system::error_code wec) {
        if (!wec && acceptor_.is_open())
          accept_next();
      });
      return;
    }
    boost::system::error_code pec;
    auto peer = socket.remote_endpoint(pec);
    if (pec) {  // already reset by the client
      socket.close(pec);
      accept_next();
      return;
    }
    auto addr = address_key(peer.address());
    std::shared_ptr<client_connection> conn;
    const char* refusal = nullptr;
    {
      std::lock_guard<std::mutex> lock(conns_mutex_);
      auto it = per_address_.find(addr);
      if (live_.load() >= opts_.max_connections) {
        ++counters_.refused_total;
        refusal = "too many connections";
      } else if (it != per_address_.end() && it->second >= opts_.max_connections_per_address) {
        ++counters_.refused_per_address;
        refusal = "too many connections from this address";
      } else {
        conn = std::make_shared<client_connection>(
            std::move(socket), addr, opts_,
            [this](client_connection* c, close_reason why) { gone(c, why); });
        conns_.emplace(conn.get(), conn);
        ++per_address_[addr];
        ++live_;
        ++counters_.accepted;
      }
    }
    if (refusal) {
      // Under TLS a plain line would only break the client's handshake, and a handshake to say
      // it properly would cost what the cap is there to save: the connection is just closed.
      refuse(socket, opts_.tls ? std::string() : overloaded_line(refusal));
      accept_next();
      return;
    }
    conn->start(factory_(conn));
    accept_next();
  });
}

void client_listener::gone(client_connection* c, close_reason why) {
  std::lock_guard<std::mutex> lock(conns_mutex_);
  auto it = conns_.find(c);
  if (it == conns_.end())
    return;
  auto a = per_address_.find(c->remote_address());
  if (a != per_address_.end() && --a->second == 0)
    per_address_.erase(a);
  conns_.erase(it);
  --live_;
  if (why == close_reason::idle)
    ++counters_.closed_idle;
  else if (why == close_reason::line_timeout)
    ++counters_.closed_line_timeout;
}

client_listener::counters client_listener::stats() const {
  std::lock_guard<std::mutex> lock(conns_mutex_);
  return counters_;
}

void client_listener::stop_accepting() {
  asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    accept_backoff_.cancel();
  });
}

void client_listener::stop() {
  if (!thread_.joinable())
    return;
  stop_accepting();
  {
    std::lock_guard<std::mutex> lock(conns_mutex_);
    for (auto& c : conns_)
      c.second->close();
  }
  // Let the closes run, then end the loop.
  asio::post(io_, [this] { io_.stop(); });
  thread_.join();
}

}  // namespace ordermesh::node
