#pragma once
// The TCP side of the client protocol: accepts connections, splits the byte stream into lines
// (at most max_line_bytes each), and writes replies. It knows nothing of actors or JSON: each
// connection gets a handler (the gateway) that receives lines and sends replies.
//
// Every client is bounded here, whatever it sends or fails to read (docs/SECURITY.md, "Client
// plane"):
// - in flight: a connection stops reading while `max_in_flight` requests await their reply;
// - unsent output: it stops reading while its queued replies exceed `max_unsent_bytes` (a client
//   that pipelines and never reads holds at most that much plus what is in flight), and resumes
//   once the client has read them;
// - time: a connection with nothing in flight that neither sent nor received anything for
//   `idle_timeout` is closed, and so is one whose current line is not complete `line_timeout`
//   after its first byte (slow-loris);
// - count: `max_connections` in all, `max_connections_per_address` from one address, so that
//   one address can never take every slot. An excess connection gets one `overloaded` line.
// With `tls` set every connection first completes a TLS handshake (client_stream.hpp), within
// `handshake_timeout` of its accept or it is closed and counted as idle; every bound above then
// applies to the decrypted lines and replies alike.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nodes/client_stream.hpp"

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
  size_t max_connections_per_address = 256;  // below max_connections: others keep room
  size_t max_in_flight = 256;
  size_t max_unsent_bytes = 1024 * 1024;
  std::chrono::milliseconds idle_timeout{300 * 1000};
  std::chrono::milliseconds line_timeout{10 * 1000};
  /// Null: plain TCP. Otherwise the TLS server context (client_tls.hpp) of every connection.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::chrono::milliseconds handshake_timeout{5 * 1000};
};

/// Why a connection ended (counted per listener, for tests and operators).
enum class close_reason { client, idle, line_timeout, error, shutdown };

class client_connection : public std::enable_shared_from_this<client_connection> {
 public:
  client_connection(boost::asio::ip::tcp::socket socket, boost::asio::ip::address remote,
                    const listener_options& opts,
                    std::function<void(client_connection*, close_reason)> on_gone);
  ~client_connection();

  void start(std::unique_ptr<connection_handler> handler);
  /// Queues one reply line (must end in '\n'); thread-safe. Ends one request in flight. On the
  /// I/O thread (a handler answering inside on_line) the line is queued before send() returns.
  void send(std::string line);
  /// Closes the socket; thread-safe.
  void close();
  uint64_t id() const { return id_; }
  /// Reply bytes queued and not yet taken by the kernel; any thread (a snapshot).
  size_t queued_bytes() const { return queued_.load(std::memory_order_relaxed); }
  /// The most queued_bytes() has been since the connection started; any thread.
  size_t peak_queued_bytes() const { return peak_queued_.load(std::memory_order_relaxed); }
  /// The address its per-address cap counts it under (an IPv6 address's /64).
  const boost::asio::ip::address& remote_address() const { return remote_; }

 private:
  using clock = std::chrono::steady_clock;
  void handshake();
  void read_more();
  void consume();
  bool may_dispatch() const;
  void dispatched();
  void deliver(std::string line);
  void write_next();
  void set_queued(size_t n);
  void arm_timer(clock::time_point at);
  void on_timer();
  void shutdown_now(close_reason why);
  void close_when_done();
  void release_inbox();

  client_stream stream_;
  // Constructed on the I/O thread: a send() from it (a handler answering at once) queues the
  // reply directly, so the unsent-bytes bound sees it before the next line is dispatched.
  const std::thread::id io_thread_ = std::this_thread::get_id();
  boost::asio::steady_timer timer_;
  clock::time_point timer_at_ = clock::time_point::max();  // what timer_ is armed for
  const listener_options& opts_;
  std::function<void(client_connection*, close_reason)> on_gone_;
  std::unique_ptr<connection_handler> handler_;
  boost::asio::ip::address remote_;
  std::string inbox_;        // bytes read, not yet a complete line
  bool discarding_ = false;  // inside an oversized line: drop until '\n'
  char buf_[16 * 1024];
  size_t buf_pos_ = 0, buf_end_ = 0;  // bytes of buf_ read and not yet consumed (flow control)
  bool handshaking_ = false;          // TLS handshake not done yet: handshake_timeout applies
  clock::time_point handshake_deadline_;
  bool reading_ = false;
  bool consuming_ = false;  // inside consume(): an inline send() must not start a read
  bool paused_ = false;     // flow control declined to read: the client is not to blame for delays
  bool closed_ = false;
  bool read_closed_ = false;  // the client half-closed: finish replies, then close
  size_t in_flight_ = 0;      // io thread only
  // A guess at the size of the next reply (decaying maximum of recent ones), so that requests
  // in flight count against the unsent-bytes bound before their replies exist.
  size_t reply_estimate_;
  clock::time_point last_activity_;  // last byte read or written, or last request answered
  clock::time_point line_started_;   // first byte of the incomplete line in inbox_
  std::deque<std::string> outbox_;
  size_t unsent_ = 0;  // bytes in outbox_ plus the write in progress; io thread only
  std::atomic<size_t> queued_{0}, peak_queued_{0};
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

  struct counters {
    uint64_t accepted = 0;
    uint64_t refused_total = 0;        // over max_connections
    uint64_t refused_per_address = 0;  // over max_connections_per_address
    uint64_t closed_idle = 0;
    uint64_t closed_line_timeout = 0;
  };
  /// A snapshot; any thread.
  counters stats() const;

 private:
  void accept_next();
  void refuse(boost::asio::ip::tcp::socket& socket, const std::string& line);
  void gone(client_connection* c, close_reason why);

  listener_options opts_;
  handler_factory factory_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_backoff_;  // after a failed accept (EMFILE)
  std::thread thread_;
  uint16_t bound_port_ = 0;
  std::atomic<size_t> live_{0};
  mutable std::mutex conns_mutex_;  // conns_, per_address_, counters_
  std::unordered_map<client_connection*, std::shared_ptr<client_connection>> conns_;
  std::map<boost::asio::ip::address, size_t> per_address_;
  counters counters_;
};

}  // namespace ordermesh::node
