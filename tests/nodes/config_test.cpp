// Tests for orderd's settings (nodes/config.cpp, nodes/config_sources.cpp): the command line, the
// ORDERMESH_* environment and a --config file, their precedence, the errors for unknown keys and
// variables, --version, and the units --help names.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "nodes/config.hpp"

using ordermesh::node::node_config;
using ordermesh::node::parse_config;

namespace {

/// One parse_config call with its exit code and what it printed.
struct outcome {
  std::optional<node_config> cfg;
  int code = -1;
  std::string out, err;
};

outcome parse(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), "orderd");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  outcome r;
  std::ostringstream out, err;
  r.cfg = parse_config(static_cast<int>(args.size()), argv.data(), env, &r.code, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

/// A config file with `content` in a private temp dir, removed with the fixture.
struct temp_config {
  std::string dir, path;
  explicit temp_config(const std::string& content) {
    char tmpl[] = "/tmp/config_test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/orderd.conf";
    std::ofstream(path, std::ios::binary) << content;
  }
  ~temp_config() {
    std::remove(path.c_str());
    ::rmdir(dir.c_str());
  }
};

const std::vector<std::string> required = {"--node-id", "n1", "--data-dir", "/tmp/d"};

std::vector<std::string> with_required(std::vector<std::string> more) {
  more.insert(more.begin(), required.begin(), required.end());
  return more;
}

}  // namespace

TEST_CASE("settings come from the command line then the environment then the config file") {
  temp_config file(
      "# a comment\n"
      "node-id = from-file\n"
      "data-dir = /tmp/file-dir\n"
      "client-port = 7001\n"
      "cluster-port = 7501\n"
      "shards = 16\n"
      "log-level = debug\n");
  auto r = parse({"--config", file.path, "--client-port", "7003"},
                 {"ORDERMESH_CLIENT_PORT=7002", "ORDERMESH_SHARDS=8", "PATH=/usr/bin"});
  INFO(r.err);
  REQUIRE(r.cfg.has_value());
  CHECK(r.cfg->client_port == 7003);     // command line over environment and file
  CHECK(r.cfg->shards == 8);             // environment over file
  CHECK(r.cfg->cluster_port == 7501);    // file over default
  CHECK(r.cfg->log_level == "debug");    // file over default
  CHECK(r.cfg->node_id == "from-file");  // required flags may come from the file alone
  CHECK(r.cfg->data_dir == "/tmp/file-dir");
  CHECK(r.cfg->request_timeout == std::chrono::seconds(10));  // default
  CHECK(r.cfg->config_file == file.path);
}

TEST_CASE("the config file sets durations switches and strings like the flags do") {
  temp_config file(
      "request-timeout = 2s\n"
      "passivate-after = 90s\n"
      "drain = true\n"
      "log-format = json\n"
      "log-file = /tmp/orderd.log\n"
      "max-unsent-bytes = 65536\n");
  auto r = parse(with_required({"--config", file.path}));
  INFO(r.err);
  REQUIRE(r.cfg.has_value());
  CHECK(r.cfg->request_timeout == std::chrono::seconds(2));
  CHECK(r.cfg->entities.passivate_after == std::chrono::seconds(90));
  CHECK(r.cfg->drain);
  CHECK(r.cfg->log_format == "json");
  CHECK(r.cfg->log_file == "/tmp/orderd.log");
  CHECK(r.cfg->max_unsent_bytes == 65536);
  // The values are checked as the flags' are.
  temp_config bad("request-timeout = soon\n");
  auto b = parse(with_required({"--config", bad.path}));
  CHECK_FALSE(b.cfg.has_value());
  CHECK(b.code == 2);
  CHECK_THAT(b.err, Catch::Contains("--request-timeout") && Catch::Contains("soon"));
}

TEST_CASE("an unknown key in the config file is an error that names it") {
  temp_config file("clinet-port = 7001\n");
  auto r = parse(with_required({"--config", file.path}));
  CHECK_FALSE(r.cfg.has_value());
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown key 'clinet-port'") &&
                        Catch::Contains("did you mean 'client-port'") &&
                        Catch::Contains(file.path));
  // --help, --version and --config itself are not settings a file may hold.
  for (const char* key : {"config = /etc/other.conf\n", "version = 1\n", "help = 1\n"}) {
    temp_config f(key);
    auto k = parse(with_required({"--config", f.path}));
    INFO(key << k.err);
    CHECK_FALSE(k.cfg.has_value());
    CHECK(k.code == 2);
    CHECK_THAT(k.err, Catch::Contains("unknown key"));
  }
}

TEST_CASE("a config file that cannot be read or is too large is an error") {
  auto missing = parse(with_required({"--config", "/nonexistent/orderd.conf"}));
  CHECK_FALSE(missing.cfg.has_value());
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err,
             Catch::Contains("/nonexistent/orderd.conf") && Catch::Contains("cannot be read"));
  temp_config big(std::string(100 * 1024, '#') + "\n");
  auto large = parse(with_required({"--config", big.path}));
  CHECK_FALSE(large.cfg.has_value());
  CHECK(large.code == 2);
  CHECK_THAT(large.err, Catch::Contains("larger than"));
}

TEST_CASE("ORDERMESH variables set every kind of flag") {
  temp_config file("client-port = 7010\n");
  auto r = parse(
      {}, {"ORDERMESH_NODE_ID=env-node", "ORDERMESH_DATA_DIR=/tmp/env-dir", "ORDERMESH_DRAIN=true",
           "ORDERMESH_LEASE_TTL=5s", "ORDERMESH_LOG_FORMAT=json", "ORDERMESH_CONFIG=" + file.path,
           "ORDERMESH_CLUSTER_PORT=", "ORDERMESH_LOGIN_RATE_PER_USER=2.5"});
  INFO(r.err);
  REQUIRE(r.cfg.has_value());
  CHECK(r.cfg->node_id == "env-node");
  CHECK(r.cfg->data_dir == "/tmp/env-dir");
  CHECK(r.cfg->drain);
  CHECK(r.cfg->lease_ttl == std::chrono::seconds(5));
  CHECK(r.cfg->log_format == "json");
  CHECK(r.cfg->client_port == 7010);   // from the file ORDERMESH_CONFIG names
  CHECK(r.cfg->cluster_port == 7500);  // empty: unset
  CHECK(r.cfg->login_rate_per_user == 2.5);
  CHECK_FALSE(r.cfg->admin_token_on_command_line);
  // A bad value names the flag it sets.
  auto bad = parse(required, {"ORDERMESH_CLIENT_PORT=lots"});
  CHECK_FALSE(bad.cfg.has_value());
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("ORDERMESH_CLIENT_PORT: ") && Catch::Contains("lots"));
}

TEST_CASE("an unknown ORDERMESH variable that looks like a flag is an error") {
  struct typo {
    std::string var, suggestion;
  } typos[] = {{"ORDERMESH_CLIENT_PROT=7001", "ORDERMESH_CLIENT_PORT"},
               {"ORDERMESH_NODEID=n2", "ORDERMESH_NODE_ID"},
               {"ORDERMESH_REPLICATION=3", "ORDERMESH_REPLICATION_FACTOR"},
               {"ORDERMESH_LOG_FORMAT_STYLE=json", "ORDERMESH_LOG_FORMAT"}};
  for (const auto& t : typos) {
    auto r = parse(required, {t.var});
    INFO(t.var << " -> " << r.err);
    CHECK_FALSE(r.cfg.has_value());
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(t.var.substr(0, t.var.find('='))) &&
                          Catch::Contains("did you mean " + t.suggestion));
  }
}

TEST_CASE("the ORDERMESH variables of the admin token orderctl and the scripts keep working") {
  const std::string token = "env-admin-token-0123456789";
  auto r = parse(required, {"ORDERMESH_ADMIN_TOKEN=" + token, "ORDERMESH_TOKEN=user-token",
                            "ORDERMESH_CLUSTER_PORT_BASE=7600", "ORDERMESH_ETCD_PORT=7379",
                            "ORDERMESH_BUILD_DIR=build", "ORDERMESH_REPORT_DIR=/tmp/r",
                            "ORDERMESH_UNRELATED_THING_OF_MINE=1"});
  INFO(r.err);
  REQUIRE(r.cfg.has_value());
  CHECK(r.cfg->admin_token == token);
  CHECK_FALSE(r.cfg->admin_token_on_command_line);
  CHECK(r.cfg->cluster_port == 7500);
  // --admin-token on the command line wins over the variable, as before.
  const std::string flag_token = "flag-admin-token-0123456789";
  auto flag =
      parse(with_required({"--admin-token", flag_token}), {"ORDERMESH_ADMIN_TOKEN=" + token});
  REQUIRE(flag.cfg.has_value());
  CHECK(flag.cfg->admin_token == flag_token);
  CHECK(flag.cfg->admin_token_on_command_line);
  // A token in a higher source hides a token file in a lower one instead of conflicting.
  temp_config file("admin-token-file = /nonexistent/admin.token\n");
  auto shadowed = parse(with_required({"--config", file.path, "--admin-token", flag_token}));
  INFO(shadowed.err);
  REQUIRE(shadowed.cfg.has_value());
  CHECK(shadowed.cfg->admin_token == flag_token);
  // Both on the command line still exclude each other.
  auto both = parse(with_required({"--admin-token", flag_token, "--admin-token-file", "/x"}));
  CHECK_FALSE(both.cfg.has_value());
  CHECK_THAT(both.err, Catch::Contains("exclude each other"));
}

TEST_CASE("help names the unit of every duration and size") {
  auto r = parse({"--help"});
  CHECK_FALSE(r.cfg.has_value());
  CHECK(r.code == 0);
  // Every flag, with the value name program_options prints after it ("--lease-ttl DURATION").
  std::regex flag_line(R"(^\s+(?:-\w \[ )?--([a-z-]+)\]?(?: ([A-Z]+))?)");
  size_t durations = 0, sizes = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, flag_line))
      continue;
    const std::string flag = m[1], value_name = m[2];
    INFO(line);
    for (const char* suffix :
         {"-timeout", "-ttl", "-after", "-interval", "-delay", "-window", "-for"}) {
      const std::string s = suffix;
      if (flag.size() > s.size() && flag.compare(flag.size() - s.size(), s.size(), s) == 0) {
        CHECK(value_name == "DURATION");
        ++durations;
      }
    }
    if (flag.find("bytes") != std::string::npos) {
      CHECK(value_name == "BYTES");
      ++sizes;
    }
  }
  CHECK(durations >= 16);
  CHECK(sizes >= 2);
  // The units themselves are explained once, with the precedence of the sources.
  CHECK_THAT(r.out, Catch::Contains("DURATION: a number and a unit, 500ms, 30s, 15m") &&
                        Catch::Contains("BYTES: a number of bytes") &&
                        Catch::Contains("ORDERMESH_<FLAG>") && Catch::Contains("--config"));
}

TEST_CASE("version prints the project version and exits 0") {
  auto r = parse({"--version"});
  CHECK_FALSE(r.cfg.has_value());
  CHECK(r.code == 0);
  CHECK(std::regex_match(r.out, std::regex(R"(orderd \d+\.\d+\.\d+\n)")));
}

TEST_CASE("log format is text or json") {
  auto ok = parse(with_required({"--log-format", "json"}));
  REQUIRE(ok.cfg.has_value());
  CHECK(ok.cfg->log_format == "json");
  CHECK(parse(required).cfg->log_format == "text");
  auto bad = parse(with_required({"--log-format", "xml"}));
  CHECK_FALSE(bad.cfg.has_value());
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--log-format must be text or json"));
}

TEST_CASE("scheduler is sharing by default or stealing") {
  CHECK(parse(required).cfg->scheduler_policy == "sharing");
  auto ok = parse(with_required({"--scheduler", "stealing"}));
  REQUIRE(ok.cfg.has_value());
  CHECK(ok.cfg->scheduler_policy == "stealing");
  auto bad = parse(with_required({"--scheduler", "testing"}));
  CHECK_FALSE(bad.cfg.has_value());
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--scheduler must be sharing or stealing"));
}

TEST_CASE("dead member timeout is a duration - 5m by default - 0s for never") {
  CHECK(parse(required).cfg->dead_member_timeout == std::chrono::minutes(5));
  CHECK(parse(with_required({"--dead-member-timeout", "90s"})).cfg->dead_member_timeout ==
        std::chrono::seconds(90));
  CHECK(parse(with_required({"--dead-member-timeout", "0s"})).cfg->dead_member_timeout.count() ==
        0);
  auto bad = parse(with_required({"--dead-member-timeout", "soon"}));
  CHECK_FALSE(bad.cfg.has_value());
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--dead-member-timeout"));
}

TEST_CASE("bootstrap grace is a duration - 10s by default - 0s waits - below the join timeout") {
  CHECK(parse(required).cfg->bootstrap_grace == std::chrono::seconds(10));
  CHECK(parse(with_required({"--bootstrap-grace", "0s"})).cfg->bootstrap_grace.count() == 0);
  CHECK(parse(with_required({"--bootstrap-grace", "2s"})).cfg->bootstrap_grace ==
        std::chrono::seconds(2));
  // The default gives way to a join timeout it would outlast (the nodes exit before it ends).
  CHECK(parse(with_required({"--join-timeout", "3s"})).cfg->bootstrap_grace.count() == 0);
  CHECK(parse(with_required({"--join-timeout", "3s", "--bootstrap-grace", "1s"}))
            .cfg->bootstrap_grace == std::chrono::seconds(1));
  for (auto bad : {parse(with_required({"--bootstrap-grace", "soon"})),
                   parse(with_required({"--bootstrap-grace", "30s"})),
                   parse(with_required({"--bootstrap-grace", "20s", "--join-timeout", "10s"}))}) {
    CHECK_FALSE(bad.cfg.has_value());
    CHECK(bad.code == 2);
    CHECK_THAT(bad.err, Catch::Contains("--bootstrap-grace"));
  }
}

TEST_CASE("client TLS takes a certificate and a key together and a bounded handshake timeout") {
  auto ok = parse(with_required({"--client-tls-cert", "/c.pem", "--client-tls-key", "/c.key",
                                 "--client-tls-handshake-timeout", "2s"}));
  REQUIRE(ok.cfg.has_value());
  CHECK(ok.cfg->client_tls_cert == "/c.pem");
  CHECK(ok.cfg->client_tls_key == "/c.key");
  CHECK(ok.cfg->client_tls_handshake_timeout == std::chrono::seconds(2));
  CHECK(parse(required).cfg->client_tls_cert.empty());  // plain TCP unless asked
  for (const auto& one : {std::vector<std::string>{"--client-tls-cert", "/c.pem"},
                          std::vector<std::string>{"--client-tls-key", "/c.key"}}) {
    auto bad = parse(with_required(one));
    CHECK_FALSE(bad.cfg.has_value());
    CHECK(bad.code == 2);
    CHECK_THAT(bad.err, Catch::Contains("--client-tls-cert and --client-tls-key go together"));
  }
  for (const char* d : {"0s", "6m", "soon"}) {
    auto bad = parse(with_required({"--client-tls-handshake-timeout", d}));
    CHECK_FALSE(bad.cfg.has_value());
    CHECK(bad.code == 2);
    CHECK_THAT(bad.err, Catch::Contains("--client-tls-handshake-timeout"));
  }
}
