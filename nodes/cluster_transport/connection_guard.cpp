#include "nodes/cluster_transport/connection_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "observability/registry.hpp"

namespace ordermesh::cluster_transport {

namespace obs = om::obs;

namespace {

constexpr auto sweep_interval = std::chrono::milliseconds(250);
constexpr auto warning_interval = std::chrono::seconds(1);

obs::counter& connections(const char* event) {
  return obs::registry::global()
      .counters("ordermesh_cluster_connections_total",
                "Connections on the cluster port by event: accepted, closed at once by the "
                "connection cap (refused_cap), evicted from the pending cap (evicted_pending), "
                "closed at the handshake deadline (handshake_timeout), closed for a frame above "
                "--cluster-max-frame-bytes (oversized_frame).",
                {"event"})
      .with({event});
}

/// host:port of the peer on `fd` (IPv4 and IPv6), for the logs.
std::string peer_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

struct connection_guard::metrics {
  obs::counter& accepted = connections("accepted");
  obs::counter& refused_cap = connections("refused_cap");
  obs::counter& evicted_pending = connections("evicted_pending");
  obs::counter& handshake_timeouts = connections("handshake_timeout");
  obs::counter& oversized_frames = connections("oversized_frame");
  obs::gauge& pending = obs::registry::global()
                            .gauges("ordermesh_cluster_connections_pending",
                                    "Accepted cluster connections still in their handshake.")
                            .with({});
};

connection_guard::connection_guard(guard_options options)
    : options_(std::move(options)),
      registry_(options_.limits),
      metrics_(std::make_unique<metrics>()) {
  sweeper_ = std::thread([this] { sweep_loop(); });
}

connection_guard::~connection_guard() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  sweeper_.join();
}

std::optional<uint64_t> connection_guard::on_accept(int fd, const std::string& peer) {
  handshake_registry::admission adm;
  {
    std::lock_guard<std::mutex> lock(mu_);
    adm = registry_.admit(fd, std::chrono::steady_clock::now());
    for (int victim : adm.evicted)
      ::shutdown(victim, SHUT_RDWR);
    publish_pending_locked();
  }
  if (!adm.id) {
    metrics_->refused_cap.inc();
    warn("cluster connection refused: the connection cap is reached",
         "peer=" + peer + " max_connections=" + std::to_string(registry_.limits().max_total));
    return std::nullopt;
  }
  metrics_->accepted.inc();
  if (!adm.evicted.empty()) {
    metrics_->evicted_pending.inc(adm.evicted.size());
    warn("cluster connection evicted: too many connections in their handshake",
         "oldest pending closed for peer=" + peer +
             " max_pending=" + std::to_string(registry_.limits().max_pending));
  }
  return adm.id;
}

void connection_guard::on_established(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  registry_.established(id);
  publish_pending_locked();
}

void connection_guard::on_closed(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  registry_.remove(id);
  publish_pending_locked();
}

void connection_guard::on_oversized_frame(int fd, size_t bytes, const std::string& peer) {
  // The fd belongs to the scribe calling this, alive for the call: no race with its close.
  ::shutdown(fd, SHUT_RDWR);
  metrics_->oversized_frames.inc();
  warn("cluster connection closed: frame above --cluster-max-frame-bytes",
       "peer=" + peer + " bytes=" + std::to_string(bytes) +
           " max=" + std::to_string(options_.max_frame_bytes));
}

void connection_guard::sweep_loop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, sweep_interval, [this] { return stopping_; }))
    sweep_once();
}

void connection_guard::sweep_once() {
  size_t closed = 0;
  std::string peers;  // the first few, for the warning
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : registry_.expired(std::chrono::steady_clock::now())) {
      if (closed < 4)
        peers += (peers.empty() ? "" : ",") + peer_of(fd);
      ::shutdown(fd, SHUT_RDWR);
      ++closed;
    }
    publish_pending_locked();
  }
  if (closed == 0)
    return;
  metrics_->handshake_timeouts.inc(closed);
  warn("cluster connection closed: no handshake within --cluster-handshake-timeout",
       "closed=" + std::to_string(closed) + " peers=" + peers +
           " timeout_ms=" + std::to_string(options_.limits.deadline.count()));
}

void connection_guard::warn(const char* what, const std::string& detail) {
  if (!options_.log)
    return;
  std::lock_guard<std::mutex> lock(log_mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_warning_ < warning_interval) {
    ++held_back_;
    return;
  }
  options_.log->warn("node={} {}: {} (similar warnings held back: {})", options_.node_id, what,
                     detail, held_back_);
  last_warning_ = now;
  held_back_ = 0;
}

void connection_guard::publish_pending_locked() {
  metrics_->pending.set(static_cast<int64_t>(registry_.pending()));
}

}  // namespace ordermesh::cluster_transport
