#include "test_certs.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>

namespace ordermesh::etcd::test {

namespace {

/// Runs the script with `args` (no shell: paths are passed as they are); its exit status.
int run_script(std::vector<std::string> args) {
  args.insert(args.begin(), ORDERMESH_MAKE_TEST_CERTS);
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace

test_certs::test_certs(const std::vector<std::string>& names) {
  char tmpl[] = "/tmp/ordermesh-certs-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  dir_ = tmpl;
  add(names);
}

test_certs::~test_certs() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void test_certs::add(const std::vector<std::string>& names, const std::string& san) {
  std::vector<std::string> args;
  if (!san.empty()) {
    args = {"--san", san};
  }
  args.push_back(dir_);
  args.insert(args.end(), names.begin(), names.end());
  const int status = run_script(args);
  if (status != 0) {
    FAIL(ORDERMESH_MAKE_TEST_CERTS << " failed with status " << status);
  }
}

}  // namespace ordermesh::etcd::test
