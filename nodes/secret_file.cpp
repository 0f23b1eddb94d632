#include "nodes/secret_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ordermesh::secrets {

namespace {

/// Secrets are short; a bigger file is the wrong file.
constexpr size_t max_secret_file_bytes = 4096;

std::optional<std::string> fail(std::string* why, std::string message) {
  *why = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> read_secret_file(const std::string& path, std::string* why) {
  // O_NOFOLLOW is not used: a symlink to a 0600 file is fine; the mode checked is the target's,
  // through the descriptor read from (no window between the check and the read).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return fail(why, "cannot open " + path + ": " + std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_on_return{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return fail(why, "cannot stat " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return fail(why, path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(why, path + " is accessible by group or others (mode " + mode +
                         "): the secret in it is not secret; chmod 600 " + path);
  }
  if (static_cast<size_t>(st.st_size) > max_secret_file_bytes)
    return fail(why, path + " is larger than " + std::to_string(max_secret_file_bytes) +
                         " bytes: not a secret file");
  std::string text;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail(why, "cannot read " + path + ": " + std::strerror(errno));
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_secret_file_bytes)
      return fail(why, path + " is larger than " + std::to_string(max_secret_file_bytes) +
                           " bytes: not a secret file");
  }
  // One trailing line break, as `echo secret > file` and editors leave it.
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r')
      text.pop_back();
  }
  if (text.empty())
    return fail(why, path + " is empty");
  if (text.find_first_of(std::string("\n\r\0", 3)) != std::string::npos)
    return fail(why, path + " holds more than one line: put only the secret in it");
  return text;
}

}  // namespace ordermesh::secrets
