// orderd: one ordermesh node. Wires storage, the entity layer and the client listener, then
// serves until SIGTERM/SIGINT, when it stops taking requests, finishes what is in flight and
// exits 0 with everything acknowledged on disk.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include <sodium.h>
#include <sys/stat.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/entity_layer.hpp"
#include "actors/messages.hpp"
#include "nodes/client_listener.hpp"
#include "nodes/config.hpp"
#include "nodes/gateway.hpp"
#include "nodes/node_meta.hpp"
#include "nodes/password_hasher.hpp"
#include "persistence/storage_engine.hpp"

namespace om = ordermesh;

namespace {

std::shared_ptr<spdlog::logger> make_logger(const om::node::node_config& cfg) {
  std::shared_ptr<spdlog::logger> log;
  if (cfg.log_file.empty())
    log = spdlog::stderr_logger_mt("orderd");
  else
    log = spdlog::basic_logger_mt("orderd", cfg.log_file);
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  log->set_level(spdlog::level::from_str(cfg.log_level));
  log->flush_on(spdlog::level::info);
  return log;
}

/// A random admin token, written next to the data (mode 0600) when none was given.
std::string generated_admin_token(const std::string& data_dir, spdlog::logger& log) {
  auto path = data_dir + "/admin.token";
  std::ifstream in(path);
  std::string token;
  if (in && std::getline(in, token) && token.size() >= 16)
    return token;
  unsigned char raw[24];
  randombytes_buf(raw, sizeof raw);
  char hex[sizeof raw * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  token = hex;
  auto old = umask(077);
  std::ofstream out(path, std::ios::trunc);
  out << token << "\n";
  umask(old);
  log.warn("no --admin-token given: generated one in {}", path);
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = om::node::parse_config(argc, argv, &exit_code);
  if (!parsed)
    return exit_code;
  auto cfg = std::move(*parsed);
  if (sodium_init() < 0) {
    std::cerr << "orderd: libsodium failed to initialise\n";
    return 1;
  }
  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (::mkdir(cfg.data_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::cerr << "orderd: cannot create --data-dir " << cfg.data_dir << "\n";
    return 1;
  }
  auto log = make_logger(cfg);
  if (cfg.admin_token.empty())
    cfg.admin_token = generated_admin_token(cfg.data_dir, *log);

  om::persistence::storage_options sopts;
  sopts.path = cfg.data_dir + "/db";
  om::persistence::status st;
  auto storage = om::persistence::storage_engine::open(sopts, &st);
  if (!storage) {
    log->critical("node={} cannot open storage at {}: {}", cfg.node_id, sopts.path, st.to_string());
    return 1;
  }
  std::string why;
  if (!om::node::check_node_meta(*storage, cfg, &why)) {
    log->critical("node={} {}", cfg.node_id, why);
    return 1;
  }

  int rc = 0;
  {
    caf::actor_system_config caf_cfg;
    om::actors::add_message_types(caf_cfg);
    if (cfg.scheduler_threads > 0)
      caf_cfg.set("scheduler.max-threads", cfg.scheduler_threads);
    caf::actor_system sys{caf_cfg};

    auto ctx = std::make_shared<om::actors::node_context>(cfg.node_id, storage.get(), cfg.entities,
                                                          cfg.shards, log);
    auto layer = om::actors::start_entity_layer(sys, ctx);
    om::node::password_hasher hasher(cfg.pwhash == "fast"
                                         ? om::node::password_hasher::cost::fast
                                         : om::node::password_hasher::cost::interactive,
                                     1, 256);
    auto shared = std::make_shared<om::node::gateway_shared>(ctx, cfg.admin_token, hasher,
                                                             cfg.request_timeout, cfg.session_ttl);
    om::node::listener_options lopts;
    lopts.host = cfg.client_host;
    lopts.port = cfg.client_port;
    lopts.max_connections = cfg.max_connections;
    lopts.max_in_flight = cfg.max_in_flight_per_connection;
    om::node::client_listener listener(lopts, om::node::make_gateway_factory(sys, shared));
    if (!listener.start(&why)) {
      log->critical("node={} {}", cfg.node_id, why);
      rc = 1;
    } else {
      shared->client_address = cfg.client_host + ":" + std::to_string(listener.bound_port());
      log->info("node={} ready: clients on {}, {} shards, data in {}", cfg.node_id,
                shared->client_address, cfg.shards, cfg.data_dir);
      int sig = 0;
      sigwait(&stop_signals, &sig);
      log->info("node={} signal {}: draining", cfg.node_id, sig);
      // Stop taking requests, let those in flight finish (bounded), then stop.
      shared->draining = true;
      listener.stop_accepting();
      // Requests already sent keep arriving for a moment: they are answered `unavailable`
      // rather than cut off, so clients know to retry elsewhere.
      auto start = std::chrono::steady_clock::now();
      auto deadline = start + cfg.request_timeout + std::chrono::seconds(1);
      auto grace = start + std::chrono::milliseconds(200);
      while ((shared->in_flight.load() > 0 || std::chrono::steady_clock::now() < grace) &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      listener.stop();
    }
    om::actors::stop_entity_layer(layer);
    // ~actor_system waits for every actor to finish.
  }
  // ~storage_engine commits and syncs whatever is still queued before closing.
  storage.reset();
  log->info("node={} stopped", cfg.node_id);
  return rc;
}
