#include "etcd_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "cluster/etcd/etcd_client.hpp"

namespace ordermesh::etcd::test {

namespace {

constexpr const char* etcd_binary = "/usr/bin/etcd";
constexpr auto start_bound = std::chrono::seconds(20);

/// Binds a TCP socket to 127.0.0.1:0 and returns it with its port (the caller closes it).
int bound_socket(uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

uint16_t unused_port() {
  uint16_t port = 0;
  ::close(bound_socket(port));
  return port;
}

etcd_process::etcd_process(std::optional<etcd_tls> tls) : tls_(std::move(tls)) {
  if (::access(etcd_binary, X_OK) != 0) {
    FAIL(etcd_binary << " is missing: these tests need a real etcd "
                        "(apt-get install -y etcd-server etcd-client)");
  }
  char tmpl[] = "/tmp/ordermesh-etcd-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  dir_ = tmpl;
  std::string why;
  // Another process may grab a port between our check and etcd's bind: try fresh ports again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Hold both sockets at once so the two ports differ.
    uint16_t client = 0;
    uint16_t peer = 0;
    const int a = bound_socket(client);
    const int b = bound_socket(peer);
    ::close(a);
    ::close(b);
    client_port_ = client;
    peer_port_ = peer;
    std::error_code ignored;
    std::filesystem::remove_all(dir_ + "/data", ignored);
    if (launch(why)) {
      return;
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  FAIL("etcd did not start: " << why);
}

etcd_process::~etcd_process() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string etcd_process::url() const {
  return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(client_port_);
}

bool etcd_process::launch(std::string& why) {
  const std::string client_url = url();
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args = {etcd_binary,
                                   "--name",
                                   "t",
                                   "--data-dir",
                                   dir_ + "/data",
                                   "--listen-client-urls",
                                   client_url,
                                   "--advertise-client-urls",
                                   client_url,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   "t=" + peer,
                                   "--unsafe-no-fsync",
                                   "--log-level",
                                   "error"};
  if (tls_) {
    args.insert(args.end(), {"--cert-file", tls_->cert_file, "--key-file", tls_->key_file,
                             "--trusted-ca-file", tls_->ca_file, "--client-cert-auth"});
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const std::string log = dir_ + "/etcd.log";
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(log_fd >= 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. Die with the test process.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;

  client_options probe_options;
  endpoint probe_at = client_endpoint();
  if (tls_) {
    probe_options.tls = tls_->probe;
    probe_at.host = tls_->probe_host;
  }
  client probe({probe_at}, probe_options);
  const auto give_up = std::chrono::steady_clock::now() + start_bound;
  // Bounded by start_bound; each round waits at most about a second.
  while (std::chrono::steady_clock::now() < give_up) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      why = "etcd exited early; log: " + log_tail();
      return false;
    }
    range_request r;
    r.key = "probe";
    if (probe.range(r, deadline_after(std::chrono::seconds(1))).ok()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill();
  why = "etcd did not answer within 20 s; log: " + log_tail();
  return false;
}

std::string etcd_process::log_tail() const {
  std::ifstream in(dir_ + "/etcd.log");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

void etcd_process::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);  // also ends a SIGSTOPped process
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

void etcd_process::restart() {
  kill();
  std::string why;
  if (!launch(why)) {
    FAIL("etcd did not restart: " << why);
  }
}

void etcd_process::pause() {
  REQUIRE(pid_ > 0);
  REQUIRE(::kill(pid_, SIGSTOP) == 0);
  // SIGSTOP is asynchronous: until every thread has stopped, etcd may still answer a request
  // (seen in CI on a loaded machine). etcd is our child, so waitpid reports the stop.
  // Bounded: 5 s.
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WUNTRACED | WNOHANG);
    if (r == pid_ && WIFSTOPPED(status))
      return;
    REQUIRE(r == 0);  // not stopped yet (an exit or an error here is a broken fixture)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("etcd (pid " << pid_ << ") did not stop within 5 s of SIGSTOP");
}

void etcd_process::resume() {
  REQUIRE(pid_ > 0);
  REQUIRE(::kill(pid_, SIGCONT) == 0);
}

}  // namespace ordermesh::etcd::test
