#pragma once
// The TCP side of the client protocol: accepts connections, splits the byte stream into lines
// (at most max_line_bytes each), and writes replies. It knows nothing of actors or JSON: each
// connection gets a handler (the gateway) that receives lines and sends replies.
//
// Flow control: a connection stops reading while `max_in_flight` requests await their reply,
// so a client that pipelines faster than the node answers is slowed down, never buffered
// without bound.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace ordermesh::node {

class client_connection;

/// Receives one connection's requests; implemented by the gateway.
class connection_handler {
 public:
  virtual ~connection_handler() = default;
  /// One complete line, without its '\n'. Each must be answered with exactly one send().
  virtual void on_line(std::string line) = 0;
  /// A line longer than the limit was discarded; answer it with one send() (too_large).
  virtual void on_oversized() = 0;
  /// The connection is gone; sends after this are dropped.
  virtual void on_close() = 0;
};

using handler_factory =
    std::function<std::unique_ptr<connection_handler>(std::shared_ptr<client_connection>)>;

struct listener_options {
  std::string host = "127.0.0.1";
  uint16_t port = 7400;  // 0: any free port (see bound_port())
  size_t max_line_bytes = 64 * 1024;
  size_t max_connections = 1024;
  size_t max_in_flight = 256;
};

class client_connection : public std::enable_shared_from_this<client_connection> {
 public:
  client_connection(boost::asio::ip::tcp::socket socket, const listener_options& opts,
                    std::function<void(client_connection*)> on_gone);
  ~client_connection();

  void start(std::unique_ptr<connection_handler> handler);
  /// Queues one reply line (must end in '\n'); thread-safe. Ends one request in flight.
  void send(std::string line);
  /// Closes the socket; thread-safe.
  void close();
  uint64_t id() const { return id_; }

 private:
  void read_more();
  void on_read(size_t n);
  void write_next();
  void shutdown_now();
  void close_when_done();

  boost::asio::ip::tcp::socket socket_;
  const listener_options& opts_;
  std::function<void(client_connection*)> on_gone_;
  std::unique_ptr<connection_handler> handler_;
  std::string inbox_;        // bytes read, not yet a complete line
  bool discarding_ = false;  // inside an oversized line: drop until '\n'
  char buf_[16 * 1024];
  bool reading_ = false;
  bool closed_ = false;
  bool read_closed_ = false;  // the client half-closed: finish replies, then close
  size_t in_flight_ = 0;      // io thread only
  std::deque<std::string> outbox_;
  bool writing_ = false;
  uint64_t id_;
};

class client_listener {
 public:
  client_listener(listener_options opts, handler_factory factory);
  ~client_listener();

  /// Binds and starts the I/O thread. False (with *error) when the address cannot be bound.
  bool start(std::string* error);
  uint16_t bound_port() const { return bound_port_; }
  /// Stops accepting new connections; existing ones keep being served.
  void stop_accepting();
  /// Closes every connection and stops the I/O thread.
  void stop();
  size_t connections() const { return live_.load(); }

 private:
  void accept_next();

  listener_options opts_;
  handler_factory factory_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  uint16_t bound_port_ = 0;
  std::atomic<size_t> live_{0};
  std::mutex conns_mutex_;
  std::unordered_set<std::shared_ptr<client_connection>> conns_;
};

}  // namespace ordermesh::node
