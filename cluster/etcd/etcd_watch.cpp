#include "cluster/etcd/etcd_watch.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>

#include "cluster/etcd/etcd_codec.hpp"
#include "cluster/etcd/etcd_line_buffer.hpp"
#include "cluster/etcd/etcd_stream.hpp"
#include "cluster/etcd/etcd_transport.hpp"

namespace ordermesh::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
// An error answer to the create request is small; anything bigger is not etcd's.
constexpr std::size_t max_error_body_bytes = 64 * 1024;
// Each read adds at most this many body bytes, so a next() decodes at most one read's worth of
// lines before reading again.
constexpr std::size_t read_chunk_bytes = 16 * 1024;

error closed_error() {
  return error{errc::closed, "watch closed"};
}
}  // namespace

struct watch_stream::impl {
  impl(const client_options& options, std::shared_ptr<tls_context> tls)
      : stream(io, std::move(tls)), lines(options.max_watch_line_bytes) {
    // The stream is endless: the bound is on each line (line_buffer), not on the body.
    parser.body_limit(boost::none);
  }

  asio::io_context io;  // first: destroyed last, after everything that refers to it
  etcd_stream stream;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  std::array<char, read_chunk_bytes> chunk{};
  line_buffer lines;
  bool reading = false;                  // an async_read_some is pending
  boost::system::error_code read_error;  // of the last completed read
  std::optional<error> finished;         // once set, every next() returns it
  std::atomic<bool> closed{false};

  void start_read() {
    auto& body = parser.get().body();
    body.data = chunk.data();
    body.size = chunk.size();
    body.more = true;
    reading = true;
    stream.with([this](auto& s) {
      http::async_read_some(s, buffer, parser,
                            [this](boost::system::error_code ec, std::size_t) { on_read(ec); });
    });
  }

  void on_read(boost::system::error_code ec) {
    reading = false;
    const std::size_t got = chunk.size() - parser.get().body().size;
    if (got > 0) {
      lines.append(std::string_view(chunk.data(), got));  // an overflow is checked by next()
    }
    // need_buffer only says our chunk is full: not an error.
    read_error = ec == http::error::need_buffer ? boost::system::error_code{} : ec;
  }

  /// Reads the (small) body of a non-200 answer to the create request, by the stream's expiry.
  std::string read_error_body() {
    std::string body;
    // Bounded: every round reads at least one byte or ends, and the body is capped.
    for (int round = 0; round < 1024 && !parser.is_done(); ++round) {
      auto& b = parser.get().body();
      b.data = chunk.data();
      b.size = chunk.size();
      const auto ec = run_until_done(io, [&](auto handler) {
        stream.with([&](auto& s) { http::async_read_some(s, buffer, parser, handler); });
      });
      body.append(chunk.data(), chunk.size() - parser.get().body().size);
      if ((ec && ec != http::error::need_buffer) || body.size() > max_error_body_bytes) {
        break;
      }
    }
    return body;
  }

  void shut() { stream.close(); }
};

watch_stream::watch_stream(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

watch_stream::~watch_stream() {
  try {
    // Complete the aborted operations while everything they refer to still exists.
    impl_->shut();
    impl_->io.restart();
    impl_->io.poll();
  } catch (...) {
    // Nothing useful to do in a destructor; the members are destroyed next either way.
  }
}

result<std::unique_ptr<watch_stream>> watch_stream::open(const std::vector<endpoint>& endpoints,
                                                         std::size_t first, const watch_request& r,
                                                         const client_options& options,
                                                         std::shared_ptr<tls_context> tls,
                                                         deadline by) {
  try {
    const std::size_t n = endpoints.size();
    if (n == 0) {
      return error{errc::unavailable, "no etcd endpoints configured"};
    }
    const std::string body = encode_watch_create(r);
    std::string failures;
    auto note = [&](const endpoint& ep, const std::string& why) {
      failures += failures.empty() ? "" : "; ";
      failures += ep.url() + ": " + why;
    };
    auto timed_out = [&] { return error{errc::timeout, "watch: deadline passed; " + failures}; };
    // One attempt per endpoint. A watch only reads, so it may be sent to every endpoint.
    for (std::size_t attempt = 0; attempt < n; ++attempt) {
      const endpoint& ep = endpoints[(first + attempt) % n];
      if (clock::now() >= by) {
        return timed_out();
      }
      if (ep.tls != static_cast<bool>(tls)) {
        return error{errc::invalid_argument,
                     "watch: " + ep.url() + (tls ? " is not https" : " needs a TLS context")};
      }
      auto s = std::make_unique<impl>(options, tls);
      const std::string failed = s->stream.connect(s->io, ep, by, options.connect_timeout);
      if (!failed.empty()) {
        note(ep, failed);
        continue;
      }
      http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
      req.set(http::field::host, host_header(ep));
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      s->stream.tcp().expires_at(by);
      auto ec = run_until_done(s->io, [&](auto handler) {
        s->stream.with([&](auto& st) { http::async_write(st, req, handler); });
      });
      if (!ec) {
        s->stream.tcp().expires_at(by);
        ec = run_until_done(s->io, [&](auto handler) {
          s->stream.with(
              [&](auto& st) { http::async_read_header(st, s->buffer, s->parser, handler); });
        });
      }
      if (ec) {
        const error e = transport_error(ec, "watch");
        if (e.code == errc::too_large || e.code == errc::bad_response) {
          return e;
        }
        note(ep, e.message);
        continue;
      }
      const unsigned status = s->parser.get().result_int();
      if (status != 200) {
        error e = decode_error(status, s->read_error_body());
        if (e.code != errc::unavailable) {
          return e;
        }
        note(ep, "http " + std::to_string(status) + ": " + e.message);
        continue;
      }
      // From now on next() bounds each wait by its own deadline, without closing the stream.
      s->stream.tcp().expires_never();
      return std::unique_ptr<watch_stream>(new watch_stream(std::move(s)));
    }
    if (clock::now() >= by) {
      return timed_out();
    }
    return error{errc::unavailable, "watch: no etcd endpoint answered: " + failures};
  } catch (const std::exception& e) {
    return error{errc::internal, std::string("watch: ") + e.what()};
  }
}

result<watch_response> watch_stream::next(deadline by) {
  impl& s = *impl_;
  try {
    // Bounded: each round returns, or pops a line, or completes a read (each read ends the
    // buffered data or adds to it; the time bound `by` ends the waiting).
    for (int round = 0; round < 1'000'000; ++round) {
      if (s.closed.load()) {
        return closed_error();
      }
      if (s.finished) {
        return *s.finished;
      }
      if (auto line = s.lines.pop()) {
        if (line->empty()) {
          continue;
        }
        auto w = decode_watch_line(*line);
        if (!w) {
          s.finished = w.err();
        } else if (w->type == watch_response::kind::canceled) {
          s.finished =
              error{errc::closed,
                    "watch canceled by etcd" +
                        (w->cancel_reason.empty() ? std::string() : ": " + w->cancel_reason)};
        }
        return w;
      }
      if (s.lines.overflowed()) {
        s.finished = error{errc::too_large, "watch: a line exceeds max_watch_line_bytes"};
        continue;
      }
      if (s.read_error) {
        s.finished = transport_error(s.read_error, "watch");
        if (s.finished->code == errc::timeout) {
          s.finished->code = errc::unavailable;  // no expiry is set: this was not our deadline
        }
        continue;
      }
      if (s.parser.is_done()) {
        s.finished = error{errc::unavailable, "watch: etcd ended the stream"};
        continue;
      }
      if (!s.reading) {
        s.start_read();
      }
      // Wait for the read; a close() posted from another thread runs here too and aborts it.
      while (s.reading) {
        if (s.io.stopped()) {
          s.io.restart();
        }
        if (s.io.run_one_until(by) == 0 && clock::now() >= by) {
          return error{errc::timeout, "watch: no event before the deadline"};
        }
      }
    }
    return error{errc::internal, "watch: next() did not settle"};
  } catch (const std::exception& e) {
    s.finished = error{errc::internal, std::string("watch: ") + e.what()};
    return *s.finished;
  }
}

void watch_stream::close() {
  if (impl_->closed.exchange(true)) {
    return;
  }
  try {
    // The socket belongs to the reader's io_context: close it there, not from this thread.
    asio::post(impl_->io, [s = impl_.get()] { s->shut(); });
  } catch (...) {
    // Out of memory: a blocked reader then wakes only by its deadline; closed is set anyway.
  }
}

}  // namespace ordermesh::etcd
