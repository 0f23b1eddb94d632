// Client for the JSON-lines protocol: POSIX sockets, non-blocking I/O driven by poll() so that
// every wait has a deadline, and writes and reads interleave (a large pipelined batch cannot
// deadlock with the server blocked on writing replies we are not yet reading).
#include "client/client.hpp"

#include "client/tls_session.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <thread>
#include <utility>

namespace ordermesh::client {

namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

std::string dump(const json& j) {
  // Never throws on invalid UTF-8 in caller-supplied strings: those bytes are replaced.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// The key a reply is matched by; empty for ids that cannot be matched (null, bool, ...).
std::string id_key(const json& id) {
  return id.is_number() || id.is_string() ? dump(id) : std::string();
}

/// A reply the client makes up when the server gave none.
reply local_reply(const json& id, std::string code, std::string message) {
  reply r;
  r.local = true;
  r.code = std::move(code);
  r.message = std::move(message);
  r.raw = {{"id", id}, {"ok", false}, {"error", {{"code", r.code}, {"message", r.message}}}};
  // Same key order as the server's lines, so `orderctl --json` output looks alike either way.
  r.line = "{\"id\":" + dump(id) + ",\"ok\":false,\"error\":{\"code\":" + dump(json(r.code)) +
           ",\"message\":" + dump(json(r.message)) + "}}";
  return r;
}

/// Interprets one parsed reply object. Malformed replies become "internal" errors rather than
/// exceptions so callers only ever look at ok/code.
reply from_wire(std::string line, json raw) {
  reply r;
  auto ok_it = raw.find("ok");
  r.ok = ok_it != raw.end() && ok_it->is_boolean() && ok_it->get<bool>();
  if (r.ok) {
    auto result_it = raw.find("result");
    r.result = result_it != raw.end() ? *result_it : json::object();
  } else {
    auto error_it = raw.find("error");
    if (error_it != raw.end() && error_it->is_object()) {
      auto code_it = error_it->find("code");
      auto message_it = error_it->find("message");
      if (code_it != error_it->end() && code_it->is_string()) {
        r.code = code_it->get<std::string>();
      }
      if (message_it != error_it->end() && message_it->is_string()) {
        r.message = message_it->get<std::string>();
      }
      auto elsewhere_it = error_it->find("retry_elsewhere");
      r.retry_elsewhere = elsewhere_it != error_it->end() && elsewhere_it->is_boolean() &&
                          elsewhere_it->get<bool>();
    }
    if (r.code.empty()) {
      r.code = "internal";
      if (r.message.empty()) {
        r.message = "reply without ok or error code";
      }
    }
  }
  r.line = std::move(line);
  r.raw = std::move(raw);
  return r;
}

bool parse_port(std::string_view text, uint16_t& out) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
    return false;
  }
  out = static_cast<uint16_t>(value);
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

int poll_ms(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  // Round up so we never spin on a sub-millisecond remainder.
  return static_cast<int>(std::max<int64_t>(0, left.count() + 1));
}

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

std::string endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool parse_endpoints(std::string_view text, uint16_t fallback_port, std::vector<endpoint>& out,
                     std::string& error) {
  std::vector<endpoint> found;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (entry.empty()) {
      continue;
    }
    endpoint ep;
    ep.port = fallback_port;
    std::string_view port_text;
    if (entry.front() == '[') {  // [v6]:port
      const auto close = entry.find(']');
      if (close == std::string_view::npos ||
          (close + 1 < entry.size() && entry[close + 1] != ':')) {
        error = "bad host '" + std::string(entry) + "'";
        return false;
      }
      ep.host = std::string(entry.substr(1, close - 1));
      if (close + 1 < entry.size()) {
        port_text = entry.substr(close + 2);
      }
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {  // host:port
      const auto colon = entry.find(':');
      ep.host = std::string(entry.substr(0, colon));
      port_text = entry.substr(colon + 1);
    } else {  // a name, IPv4, or a bare IPv6 address
      ep.host = std::string(entry);
    }
    if (ep.host.empty()) {
      error = "bad host '" + std::string(entry) + "'";
      return false;
    }
    if (!port_text.empty() || entry.back() == ':') {
      if (!parse_port(port_text, ep.port)) {
        error = "bad port in '" + std::string(entry) + "'";
        return false;
      }
    }
    found.push_back(std::move(ep));
  }
  if (found.empty()) {
    error = "no host given";
    return false;
  }
  out.insert(out.end(), found.begin(), found.end());
  return true;
}

bool is_retryable(std::string_view code) {
  return code == "unavailable" || code == "timeout" || code == "overloaded";
}

bool reply::retryable() const {
  return !ok && is_retryable(code);
}

client::client(options opts) : opts_(std::move(opts)) {}

client::~client() {
  disconnect();
}

client::client(client&& other) noexcept
    : opts_(std::move(other.opts_)),
      fd_(std::exchange(other.fd_, -1)),
      tls_(std::move(other.tls_)),
      endpoint_index_(other.endpoint_index_),
      next_id_(other.next_id_),
      inbuf_(std::move(other.inbuf_)),
      last_error_(std::move(other.last_error_)) {}

client& client::operator=(client&& other) noexcept {
  if (this != &other) {
    disconnect();
    opts_ = std::move(other.opts_);
    fd_ = std::exchange(other.fd_, -1);
    tls_ = std::move(other.tls_);
    endpoint_index_ = other.endpoint_index_;
    next_id_ = other.next_id_;
    inbuf_ = std::move(other.inbuf_);
    last_error_ = std::move(other.last_error_);
  }
  return *this;
}

const endpoint& client::current_endpoint() const {
  static const endpoint none{};
  return opts_.endpoints.empty() ? none : opts_.endpoints[endpoint_index_];
}

void client::disconnect() {
  tls_.reset();  // before its socket goes
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  inbuf_.clear();
}

bool client::stale_connection() {
  // Between calls nothing should arrive. Readable means the server closed the connection (a
  // restarted node) or sent something we cannot attribute; either way start afresh rather than
  // send a request into a dead socket and misreport it as lost.
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) {
    return tls_ && tls_->pending();
  }
  return (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

bool client::connect() {
  if (fd_ >= 0) {
    if (!stale_connection()) {
      return true;
    }
    disconnect();
  }
  if (opts_.endpoints.empty()) {
    last_error_ = "no endpoints configured";
    return false;
  }
  std::string errors;
  const size_t n = opts_.endpoints.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (endpoint_index_ + i) % n;
    std::string error;
    if (connect_one(opts_.endpoints[index], error)) {
      endpoint_index_ = index;
      return true;
    }
    errors += (errors.empty() ? "" : "; ") + opts_.endpoints[index].to_string() + ": " + error;
  }
  last_error_ = "could not connect: " + errors;
  return false;
}

bool client::connect_one(const endpoint& ep, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(ep.port);
  const int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    error = ::gai_strerror(rc);
    return false;
  }
  const auto deadline = clock_type::now() + opts_.connect_timeout;
  error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno_text(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int n = 0;
        do {
          n = ::poll(&p, 1, poll_ms(deadline));
        } while (n < 0 && errno == EINTR && clock_type::now() < deadline);
        if (n <= 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t len = sizeof(err);
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
          }
        }
      }
    }
    if (err != 0) {
      error = err == ETIMEDOUT ? "connect timed out" : errno_text(err);
      ::close(fd);
      if (clock_type::now() >= deadline) {
        break;
      }
      continue;
    }
    // Requests are small and latency matters more than packet count.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opts_.tls) {
      // The handshake shares the connect deadline: a server that accepts and never answers
      // costs connect_timeout, as one that never accepts does.
      tls_ = tls_session::handshake(fd, ep.host, opts_.cafile, deadline, error);
      if (!tls_) {
        ::close(fd);
        break;  // the next address of the same host has the same certificate
      }
    }
    fd_ = fd;
    inbuf_.clear();
    ::freeaddrinfo(found);
    return true;
  }
  ::freeaddrinfo(found);
  return false;
}

std::string client::render(const request& req, json& id) {
  id = req.id.is_null() ? json(next_id_++) : req.id;
  std::string line = "{\"id\":" + dump(id) + ",\"op\":" + dump(json(req.op));
  if (!req.token.empty()) {
    line += ",\"token\":" + dump(json(req.token));
  }
  line += ",\"args\":" + (req.args.is_null() ? std::string("{}") : dump(req.args)) + "}\n";
  return line;
}

std::vector<reply> client::exchange(std::vector<pending_call> calls) {
  std::vector<reply> replies(calls.size());
  if (calls.empty()) {
    return replies;
  }
  if (!connect()) {
    for (size_t i = 0; i < calls.size(); ++i) {
      replies[i] = local_reply(calls[i].id, "unavailable", last_error_);
    }
    return replies;
  }

  // Which calls wait for which reply id; FIFO per id so duplicate ids still pair up in order.
  std::map<std::string, std::deque<size_t>> waiting;
  std::deque<size_t> any;  // calls that take whatever reply comes (call_raw)
  std::string out;
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string key = id_key(calls[i].id);
    (key.empty() ? any : waiting[key]).push_back(i);
    out += calls[i].line;
  }
  std::vector<bool> done(calls.size(), false);
  size_t outstanding = calls.size();
  size_t written = 0;

  auto finish = [&](size_t i, reply r) {
    replies[i] = std::move(r);
    done[i] = true;
    --outstanding;
  };
  auto fail_rest = [&](const std::string& code, const std::string& message) {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (!done[i]) {
        finish(i, local_reply(calls[i].id, code, message));
      }
    }
    // The stream is out of step (or dead): never reuse it.
    disconnect();
  };
  auto pop_oldest = [&](std::deque<size_t>& queue) -> long {
    while (!queue.empty()) {
      const size_t i = queue.front();
      queue.pop_front();
      if (!done[i]) {
        return static_cast<long>(i);
      }
    }
    return -1;
  };
  // Hands one reply line to its call. False when the line is not a reply at all.
  auto deliver = [&](std::string line) -> bool {
    json raw = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (raw.is_discarded() || !raw.is_object()) {
      return false;
    }
    long target = -1;
    const auto id_it = raw.find("id");
    const json id = id_it != raw.end() ? *id_it : json();
    auto it = waiting.find(id_key(id));
    if (it != waiting.end()) {
      target = pop_oldest(it->second);
    }
    if (target < 0) {
      target = pop_oldest(any);
    }
    if (target < 0 && id.is_null()) {
      // The server could not read the id (e.g. too_large): give it to the oldest caller.
      for (size_t i = 0; i < calls.size() && target < 0; ++i) {
        if (!done[i]) {
          target = static_cast<long>(i);
        }
      }
    }
    if (target >= 0) {
      finish(static_cast<size_t>(target), from_wire(std::move(line), std::move(raw)));
    }
    return true;  // a reply to nobody we wait for (a late one) is dropped
  };

  const auto deadline = clock_type::now() + opts_.call_timeout;
  char buffer[64 * 1024];
  while (outstanding > 0) {
    if (clock_type::now() >= deadline) {
      fail_rest("timeout", "no reply within " + std::to_string(opts_.call_timeout.count()) +
                               " ms from " + current_endpoint().to_string());
      break;
    }
    pollfd p{fd_, static_cast<short>(POLLIN | (written < out.size() ? POLLOUT : 0)), 0};
    // Bytes TLS already decrypted are invisible to poll: take them without waiting.
    const int n =
        tls_ && tls_->pending() ? (p.revents = POLLIN, 1) : ::poll(&p, 1, poll_ms(deadline));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail_rest("unavailable", "poll: " + errno_text(errno));
      break;
    }
    if (n == 0) {
      continue;  // the deadline check above ends the loop
    }
    if ((p.revents & POLLOUT) != 0) {
      std::string error;
      const ssize_t k = send_some(out.data() + written, out.size() - written, error);
      if (k > 0) {
        written += static_cast<size_t>(k);
      } else if (!error.empty()) {
        fail_rest("unavailable", "write to " + current_endpoint().to_string() + ": " + error);
        break;
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      continue;
    }
    std::string error;
    const ssize_t k = recv_some(buffer, sizeof(buffer), error);
    if (k == 0) {
      fail_rest("unavailable",
                "connection closed by " + current_endpoint().to_string() + " before the reply");
      break;
    }
    if (k < 0) {
      if (!error.empty()) {
        fail_rest("unavailable", "read from " + current_endpoint().to_string() + ": " + error);
        break;
      }
      continue;
    }
    const size_t old_size = inbuf_.size();
    inbuf_.append(buffer, static_cast<size_t>(k));
    size_t start = 0;
    size_t scan = old_size;  // only the new bytes can hold the next '\n'
    bool broken = false;
    for (auto nl = inbuf_.find('\n', scan); nl != std::string::npos;
         nl = inbuf_.find('\n', start)) {
      std::string line = inbuf_.substr(start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.empty()) {
        continue;
      }
      if (!deliver(std::move(line))) {
        broken = true;
        break;
      }
    }
    if (broken) {
      fail_rest("unavailable", "invalid reply line from " + current_endpoint().to_string());
      break;
    }
    inbuf_.erase(0, start);
    if (inbuf_.size() > opts_.max_reply_bytes) {
      fail_rest("unavailable", "reply line from " + current_endpoint().to_string() + " exceeds " +
                                   std::to_string(opts_.max_reply_bytes) + " bytes");
      break;
    }
  }
  // Everything asked was answered; any extra bytes belong to nobody.
  inbuf_.clear();
  return replies;
}

ssize_t client::send_some(const char* data, size_t size, std::string& error) {
  if (tls_) {
    return tls_->write(data, size, error);
  }
  const ssize_t k = ::send(fd_, data, size, MSG_NOSIGNAL);
  if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    error = errno_text(errno);
  }
  return k;
}

ssize_t client::recv_some(char* data, size_t size, std::string& error) {
  if (tls_) {
    return tls_->read(data, size, error);
  }
  const ssize_t k = ::recv(fd_, data, size, 0);
  if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    error = errno_text(errno);
  }
  return k;
}

reply client::call(std::string_view op, const json& args, std::string_view token) {
  request req;
  req.op = std::string(op);
  req.args = args;
  req.token = std::string(token);
  return call(req);
}

reply client::call(const request& req) {
  try {
    json id;
    std::string line = render(req, id);
    reply r;
    auto backoff = opts_.retry_backoff;
    for (int attempt = 0;; ++attempt) {
      std::vector<pending_call> one;
      one.push_back({line, id});
      r = std::move(exchange(std::move(one)).front());
      if (!r.retryable() || attempt >= opts_.retries) {
        return r;
      }
      if (r.retry_elsewhere && opts_.endpoints.size() > 1) {
        // That node refuses everything for now (cut off, or shutting down) while the others
        // serve: the retry goes to the next endpoint at once, and later calls stay there.
        disconnect();
        endpoint_index_ = (endpoint_index_ + 1) % opts_.endpoints.size();
        continue;
      }
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  } catch (const std::exception& e) {
    // Only allocation failure can get here; keep the promise of never throwing.
    disconnect();
    return local_reply(req.id, "internal", std::string("client error: ") + e.what());
  }
}

std::vector<reply> client::call_many(const std::vector<request>& reqs) {
  try {
    std::vector<pending_call> calls;
    calls.reserve(reqs.size());
    for (const auto& req : reqs) {
      pending_call c;
      c.line = render(req, c.id);
      calls.push_back(std::move(c));
    }
    return exchange(std::move(calls));
  } catch (const std::exception& e) {
    disconnect();
    std::vector<reply> out;
    for (const auto& req : reqs) {
      out.push_back(local_reply(req.id, "internal", std::string("client error: ") + e.what()));
    }
    return out;
  }
}

reply client::call_raw(std::string_view line) {
  try {
    std::vector<pending_call> one(1);
    one[0].line = std::string(line) + "\n";
    return std::move(exchange(std::move(one)).front());
  } catch (const std::exception& e) {
    disconnect();
    return local_reply(nullptr, "internal", std::string("client error: ") + e.what());
  }
}

}  // namespace ordermesh::client
