#include "client/bench_connection.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ordermesh::bench {

connection::~connection() {
  close();
}

connection::connection(connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      tls_(std::move(other.tls_)),
      out_(std::move(other.out_)),
      out_pos_(std::exchange(other.out_pos_, 0)),
      in_(std::move(other.in_)) {}

connection& connection::operator=(connection&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    tls_ = std::move(other.tls_);
    out_ = std::move(other.out_);
    out_pos_ = std::exchange(other.out_pos_, 0);
    in_ = std::move(other.in_);
  }
  return *this;
}

void connection::close() {
  tls_.reset();  // before its socket goes
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
  out_.clear();
  out_pos_ = 0;
  in_.clear();
}

bool connection::open(const client::endpoint& ep, std::chrono::milliseconds timeout,
                      std::string& error, bool tls, const std::string& cafile) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    error = ep.to_string() + ": " + ::gai_strerror(rc);
    return false;
  }
  error = ep.to_string() + ": no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      r = ::poll(&p, 1, static_cast<int>(timeout.count()));
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (r == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
        r = 0;
      } else {
        error = ep.to_string() + ": " + (r == 0 ? "connect timed out" : std::strerror(soerr));
        r = -1;
      }
    } else if (r != 0) {
      error = ep.to_string() + ": " + std::strerror(errno);
    }
    if (r == 0 && tls) {
      std::string why;
      tls_ = client::tls_session::handshake(fd, ep.host, cafile, deadline, why);
      if (!tls_) {
        error = ep.to_string() + ": " + why;
        r = -1;
      }
    }
    if (r == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fd_ = fd;
      break;
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return fd_ >= 0;
}

bool connection::send(std::string_view line) {
  if (fd_ < 0)
    return false;
  out_.append(line);
  out_.push_back('\n');
  return flush();
}

bool connection::flush() {
  while (out_pos_ < out_.size()) {
    std::string tls_error;
    ssize_t n = tls_ ? tls_->write(out_.data() + out_pos_, out_.size() - out_pos_, tls_error)
                     : ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n > 0) {
      out_pos_ += static_cast<size_t>(n);
      continue;
    }
    if (tls_ && tls_error.empty())
      break;  // would block
    if (!tls_ && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (!tls_ && n < 0 && errno == EINTR)
      continue;
    // Only the socket: read() may be walking in_ (a reply handler that sends lands here).
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > 1024 * 1024) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  return true;
}

bool connection::read(const std::function<void(std::string_view)>& on_line) {
  if (fd_ < 0)
    return false;
  char buf[65536];
  for (;;) {
    std::string tls_error;
    ssize_t n = tls_ ? tls_->read(buf, sizeof buf, tls_error) : ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(in_.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r')
          line.remove_suffix(1);
        if (!line.empty())
          on_line(line);
      }
      if (fd_ < 0) {  // a handler's send failed
        close();
        return false;
      }
      in_.erase(0, start);
      if (in_.size() > max_line) {
        close();
        return false;
      }
      // A short read drained the socket; under TLS one record at most comes per read, so
      // read on until it would block (decrypted bytes left in memory are invisible to poll).
      if (!tls_ && static_cast<size_t>(n) < sizeof buf)
        return true;
      continue;
    }
    if (tls_ && n < 0 && tls_error.empty())
      return true;  // would block
    if (!tls_ && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    if (!tls_ && n < 0 && errno == EINTR)
      continue;
    close();
    return false;
  }
}

}  // namespace ordermesh::bench
