#pragma once
// Where admin.backup may write (docs/OPERATIONS.md, "Backup and restore"). The operator names one
// directory at start (--backup-dir); a backup is a new directory below it, never anything else:
// the admin token must not turn into "write anywhere this user may write" or "overwrite a file".
#include <string>

#include "domain/errors.hpp"

namespace ordermesh::node {

/// Checks the directory a backup would create. Code none when it may be created; otherwise:
///  - forbidden: no --backup-dir (backups are off), or `requested` is not below it (also after
///    resolving symbolic links in its parent);
///  - bad_request: not absolute, or not in normal form (an empty, "." or ".." component, a
///    trailing '/', a NUL byte);
///  - not_found: its parent directory does not exist;
///  - conflict: it exists already (a backup never overwrites).
/// Reads the file system (lstat, realpath); creates nothing. `allowed_root` is --backup-dir.
domain::failure check_backup_target(const std::string& allowed_root, const std::string& requested);

}  // namespace ordermesh::node
