// Tests for nodes/secret_file: one trailing newline dropped, files others may read refused, and
// the refusal never quotes the secret.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "nodes/secret_file.hpp"

using ordermesh::secrets::read_secret_file;

namespace {

/// A fresh file with `content` and `mode` in a private temp dir, removed with the fixture.
struct temp_secret {
  std::string dir;
  std::string path;
  temp_secret(const std::string& content, mode_t mode) {
    char tmpl[] = "/tmp/secret_file_test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/secret";
    std::ofstream(path, std::ios::binary) << content;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
  }
  ~temp_secret() {
    std::remove(path.c_str());
    ::rmdir(dir.c_str());
  }
};

}  // namespace

TEST_CASE("secret files give their content less one trailing newline") {
  std::string why;
  for (const auto& [content, want] :
       {std::pair<std::string, std::string>{"s3cret-token-abc\n", "s3cret-token-abc"},
        {"s3cret-token-abc", "s3cret-token-abc"},
        {"s3cret-token-abc\r\n", "s3cret-token-abc"},
        {" spaced secret ", " spaced secret "}}) {
    temp_secret f(content, 0600);
    auto got = read_secret_file(f.path, &why);
    INFO(why);
    REQUIRE(got.has_value());
    CHECK(*got == want);
  }
  temp_secret read_only(std::string("x-token-0123456789\n"), 0400);
  CHECK(read_secret_file(read_only.path, &why).value_or("") == "x-token-0123456789");
}

TEST_CASE("secret files that others may read or that hold no single secret are refused") {
  const std::string secret = "do-not-print-this-secret";
  struct bad_case {
    std::string content;
    mode_t mode;
    const char* needle;
  };
  const bad_case cases[] = {
      {secret + "\n", 0644, "chmod 600"},
      {secret + "\n", 0640, "group or others"},
      {secret + "\n", 0604, "mode 0604"},
      {secret + "\n", 0620, "group or others"},
      {"", 0600, "empty"},
      {"\n", 0600, "empty"},
      {secret + "\n\n", 0600, "line"},
      {secret + "\nsecond\n", 0600, "line"},
      {std::string(5000, 'a'), 0600, "larger"},
  };
  for (const auto& c : cases) {
    temp_secret f(c.content, c.mode);
    std::string why;
    auto got = read_secret_file(f.path, &why);
    INFO("mode " << c.mode << " why: " << why);
    CHECK_FALSE(got.has_value());
    CHECK(why.find(c.needle) != std::string::npos);
    CHECK(why.find(secret) == std::string::npos);
  }
  std::string why;
  CHECK_FALSE(read_secret_file("/nonexistent/secret", &why).has_value());
  CHECK(why.find("/nonexistent/secret") != std::string::npos);
  CHECK_FALSE(read_secret_file("/tmp", &why).has_value());
}
