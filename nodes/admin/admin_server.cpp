#include "nodes/admin/admin_server.hpp"

#include <array>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ordermesh::node::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

/// How long, and how many bytes, a refused connection is read and dropped before closing.
constexpr std::chrono::seconds linger_timeout{2};
constexpr size_t linger_max_bytes = 256 * 1024;

/// One admin connection: wait for a request's first byte (idle timeout), read its header
/// (read deadline, header limit), answer, repeat while kept alive and under the request cap.
class admin_session : public std::enable_shared_from_this<admin_session> {
 public:
  admin_session(tcp::socket socket, const admin_server_options& options,
                const admin_sources& sources, std::shared_ptr<std::atomic<size_t>> open)
      : stream_(std::move(socket)), options_(options), sources_(sources), open_(std::move(open)) {}
  ~admin_session() { open_->fetch_sub(1); }

  void run() { wait_for_request(options_.read_timeout); }

 private:
  void wait_for_request(std::chrono::milliseconds deadline) {
    if (buffer_.size() > 0)  // a pipelined request is here already
      return read_header();
    stream_.expires_after(deadline);
    stream_.async_read_some(buffer_.prepare(options_.header_limit),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec)
                                return self->close();
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options_.header_limit));
    stream_.expires_after(options_.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec == http::error::header_limit)
      return refuse(
          http::status::request_header_fields_too_large,
          "request header larger than " + std::to_string(options_.header_limit) + " bytes\n");
    if (ec)
      return close();         // timeout, reset, malformed: nothing worth an answer
    if (!parser_->is_done())  // a body follows: nothing here takes one
      return refuse(http::status::payload_too_large, "request bodies are refused\n");
    auto& req = parser_->get();
    ++requests_;
    auto reply = route_admin_request(
        std::string_view(req.method_string().data(), req.method_string().size()),
        std::string_view(req.target().data(), req.target().size()), sources_);
    bool keep = req.keep_alive() && requests_ < options_.max_requests_per_connection;
    send(std::move(reply), keep, req.version());
  }

  void refuse(http::status status, std::string why) {
    admin_reply r;
    r.status = static_cast<unsigned>(status);
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(why);
    refusing_ = true;
    send(std::move(r), false, 11);
  }

  /// After a refusal the client may still be sending (a huge header, a body): closing with
  /// unread input would reset the connection and could destroy the answer before the client
  /// reads it. So stop sending, read and drop what still comes (bounded in bytes and time).
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(linger_timeout);
    drain(0);
  }

  void drain(size_t drained) {
    if (drained > linger_max_bytes)
      return close();
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                              if (ec)
                                return self->close();
                              self->drain(drained + n);
                            });
  }

  void send(admin_reply reply, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), version);
    res->set(http::field::server, "orderd-admin");
    res->set(http::field::content_type, reply.content_type);
    res->set(http::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    // The status page is its own inline script and style; it may fetch only from this origin.
    res->set("Content-Security-Policy",
             "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src data:");
    if (!reply.allow.empty())
      res->set(http::field::allow, reply.allow);
    res->keep_alive(keep_alive);
    res->content_length(reply.body.size());
    if (!reply.omit_body)
      res->body() = std::move(reply.body);
    stream_.expires_after(options_.write_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                        if (!ec && self->refusing_)
                          return self->linger_close();
                        if (ec || !keep_alive)
                          return self->close();
                        self->wait_for_request(self->options_.idle_timeout);
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  const admin_server_options& options_;
  const admin_sources& sources_;
  std::shared_ptr<std::atomic<size_t>> open_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  size_t requests_ = 0;
  bool refusing_ = false;
  std::array<char, 4096> discard_{};
};

}  // namespace

struct admin_server::impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::shared_ptr<std::atomic<size_t>> open = std::make_shared<std::atomic<size_t>>(0);
};

admin_server::admin_server(admin_server_options options, admin_sources sources)
    : options_(std::move(options)), sources_(std::move(sources)), impl_(std::make_unique<impl>()) {}

admin_server::~admin_server() {
  stop();
}

namespace {

void accept_next(tcp::acceptor& acceptor, const admin_server_options& options,
                 const admin_sources& sources, std::shared_ptr<std::atomic<size_t>> open,
                 std::atomic<uint64_t>& refused) {
  acceptor.async_accept(
      [&acceptor, &options, &sources, open, &refused](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
          return;
        if (!ec) {
          if (open->load() >= options.max_connections) {
            ++refused;  // over the cap: closed unanswered, the client retries later
            beast::error_code ignored;
            socket.close(ignored);
          } else {
            open->fetch_add(1);
            std::make_shared<admin_session>(std::move(socket), options, sources, open)->run();
          }
        }
        accept_next(acceptor, options, sources, open, refused);
      });
}

}  // namespace

bool admin_server::start(std::string* why) {
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (ec) {
    *why = "--admin-bind " + options_.host + ": not an IP address";
    return false;
  }
  tcp::endpoint endpoint{address, options_.port};
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(static_cast<int>(options_.max_connections), ec);
  if (ec) {
    *why = "cannot listen on admin port " + options_.host + ":" + std::to_string(options_.port) +
           ": " + ec.message();
    return false;
  }
  bound_port_ = acceptor.local_endpoint().port();
  accept_next(acceptor, options_, sources_, impl_->open, refused_);
  thread_ = std::thread([this] { impl_->io.run(); });
  return true;
}

void admin_server::stop() {
  if (!thread_.joinable())
    return;
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();  // open sessions are destroyed with the io_context's pending handlers
  });
  thread_.join();
}

}  // namespace ordermesh::node::admin
