#include "nodes/backup_target.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <sys/stat.h>

namespace ordermesh::node {

namespace {

using domain::errc;
using domain::failure;

failure refuse(errc code, std::string message) {
  return failure{code, std::move(message)};
}

/// True when every component between the '/'s is a real name (no "", "." or "..").
bool normal_form(const std::string& path) {
  if (path.size() < 2 || path.front() != '/' || path.back() == '/' ||
      path.find('\0') != std::string::npos)
    return false;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos)
      end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return false;
    start = end + 1;
  }
  return true;
}

/// realpath(3) as a string; empty when it fails (errno set).
std::string resolved(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> out(::realpath(path.c_str(), nullptr), &std::free);
  return out ? std::string(out.get()) : std::string();
}

bool below(const std::string& path, const std::string& root) {
  const std::string prefix = root == "/" ? root : root + "/";
  return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

failure check_backup_target(const std::string& allowed_root, const std::string& requested) {
  if (allowed_root.empty())
    return refuse(errc::forbidden, "backups are off on this node: start orderd with --backup-dir");
  if (requested.empty() || requested.front() != '/')
    return refuse(errc::bad_request, "dir must be an absolute path");
  if (!normal_form(requested))
    return refuse(errc::bad_request,
                  "dir must be in normal form: no '.', '..', '//' or trailing '/'");
  const std::string root = resolved(allowed_root);
  if (root.empty())
    return refuse(errc::internal,
                  "--backup-dir " + allowed_root + " cannot be resolved: " + std::strerror(errno));
  if (!below(requested, allowed_root) && !below(requested, root))
    return refuse(errc::forbidden, "dir must be below --backup-dir " + allowed_root);
  const std::string parent = requested.substr(0, requested.rfind('/'));
  const std::string real_parent = resolved(parent.empty() ? "/" : parent);
  if (real_parent.empty())
    return refuse(errc::not_found, "the parent directory of dir does not exist: " + parent);
  // A symbolic link below --backup-dir must not lead out of it.
  if (real_parent != root && !below(real_parent, root))
    return refuse(errc::forbidden, "dir must be below --backup-dir " + allowed_root +
                                       " (its parent resolves to " + real_parent + ")");
  struct stat st {};
  if (::lstat(requested.c_str(), &st) == 0)
    return refuse(errc::conflict, "dir exists already: a backup never overwrites anything");
  return failure{};
}

}  // namespace ordermesh::node
