#include "cluster/etcd/etcd_transport.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http.hpp>

namespace ordermesh::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string host_header(const endpoint& ep) {
  const bool v6 = ep.host.find(':') != std::string::npos;
  return (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
}

error transport_error(const boost::system::error_code& ec, std::string_view context) {
  std::string message(context);
  message += ": ";
  message += ec.message();
  if (ec == beast::error::timeout) {
    return error{errc::timeout, std::move(message)};
  }
  if (ec == http::error::body_limit || ec == http::error::header_limit ||
      ec == http::error::buffer_overflow) {
    return error{errc::too_large, std::move(message)};
  }
  // The peer closing the connection shows up as an HTTP error too; anything else from the HTTP
  // parser means the answer was not HTTP/1.1.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return error{errc::unavailable, std::move(message)};
  }
  if (ec.category() == make_error_code(http::error::end_of_stream).category()) {
    return error{errc::bad_response, std::move(message)};
  }
  // A TLS alert or failure (etcd refusing our certificate arrives on the first read with TLS
  // 1.3): the member is not usable by this client, which another member may well be.
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category()) {
    return error{errc::unavailable, "tls " + message};
  }
  return error{errc::unavailable, std::move(message)};
}

http_transport::http_transport(std::vector<endpoint> endpoints, client_options options,
                               std::shared_ptr<tls_context> tls)
    : endpoints_(std::move(endpoints)), options_(std::move(options)), tls_(std::move(tls)) {}

http_transport::~http_transport() {
  disconnect();
}

void http_transport::disconnect() {
  if (stream_) {
    stream_->close();
    stream_.reset();
  }
  buffer_.clear();
}

bool http_transport::usable(std::size_t index) {
  if (!stream_ || connected_ != index || !stream_->tcp().socket().is_open()) {
    return false;
  }
  // An idle keep-alive connection may have been closed by etcd (a restart, an idle timeout).
  // Peeking tells that before sending, so a request is never re-sent for that reason. Bytes
  // waiting on an idle connection mean it is out of step, or, with TLS, a close_notify alert:
  // drop it too.
  char probe = 0;
  const auto n =
      ::recv(stream_->tcp().socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return true;
  }
  return false;
}

result<http_reply> http_transport::exchange(std::string_view target, const std::string& body,
                                            deadline by) {
  http::request<http::string_body> req{http::verb::post,
                                       beast::string_view(target.data(), target.size()), 11};
  req.set(http::field::host, host_header(endpoints_[connected_]));
  req.set(http::field::content_type, "application/json");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();

  stream_->tcp().expires_at(by);
  auto ec = run_until_done(io_, [&](auto handler) {
    stream_->with([&](auto& s) { http::async_write(s, req, handler); });
  });
  if (ec) {
    return transport_error(ec, "send");
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  stream_->tcp().expires_at(by);
  ec = run_until_done(io_, [&](auto handler) {
    stream_->with([&](auto& s) { http::async_read(s, buffer_, parser, handler); });
  });
  if (ec) {
    return transport_error(ec, "receive");
  }
  stream_->tcp().expires_never();
  auto& res = parser.get();
  http_reply reply{res.result_int(), std::move(res.body())};
  if (!res.keep_alive()) {
    disconnect();
  }
  return reply;
}

result<http_reply> http_transport::post(std::string_view target, const std::string& body,
                                        deadline by, bool idempotent) {
  const std::size_t n = endpoints_.size();
  if (n == 0) {
    return error{errc::unavailable, "no etcd endpoints configured"};
  }
  std::string failures;  // "url: why; url: why" for the final message
  auto note = [&](std::size_t index, const std::string& why) {
    if (!failures.empty()) {
      failures += "; ";
    }
    failures += endpoints_[index].url();
    failures += ": ";
    failures += why;
  };
  const std::size_t first = preferred_;
  // One attempt per endpoint: bounded by the endpoint count.
  for (std::size_t attempt = 0; attempt < n; ++attempt) {
    const std::size_t index = (first + attempt) % n;
    if (clock::now() >= by) {
      return error{errc::timeout, "deadline passed; " + failures};
    }
    if (!usable(index)) {
      disconnect();
      stream_.emplace(io_, tls_);
      const std::string failed =
          stream_->connect(io_, endpoints_[index], by, options_.connect_timeout);
      if (!failed.empty()) {
        disconnect();
        note(index, failed);
        if (clock::now() >= by) {
          return error{errc::timeout, "deadline passed; " + failures};
        }
        continue;
      }
      connected_ = index;
    }
    auto reply = exchange(target, body, by);
    if (reply) {
      if (reply->status == 503 && idempotent && attempt + 1 < n) {
        // etcd's member is cut off from its leader; another member may answer.
        note(index, "http 503");
        disconnect();
        continue;
      }
      preferred_ = index;
      return reply;
    }
    disconnect();
    error e = reply.err();
    if (e.code == errc::too_large || e.code == errc::bad_response) {
      return e;  // another member would give the same answer
    }
    note(index, e.message);
    if (e.code == errc::timeout || !idempotent) {
      // The request may have reached etcd: do not send it twice. Start the next call elsewhere.
      preferred_ = (index + 1) % n;
      e.message = endpoints_[index].url() + ": " + e.message +
                  (idempotent ? "" : " (the request may or may not have been applied)");
      return e;
    }
  }
  return error{errc::unavailable, "no etcd endpoint answered: " + failures};
}

}  // namespace ordermesh::etcd
