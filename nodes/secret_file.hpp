#pragma once
// Secrets read from files (orderd --admin-token-file, orderctl --token-file): a secret on the
// command line is visible to every local user in `ps` and /proc/PID/cmdline, a file is not.
// No sodium, no CAF: orderctl links it too.
#include <optional>
#include <string>

namespace ordermesh::secrets {

/// The secret in the file at `path`: its bytes less one trailing "\n" (or "\r\n"). nullopt, with
/// *why saying what is wrong (never the secret itself), when the file cannot be opened, is not a
/// regular file, is readable or writable by group or others (chmod 600 it: like ssh with a
/// private key, refused rather than warned about, since a warning in a log nobody reads does
/// not keep the secret), is empty, larger than 4 KiB, or holds a line break or NUL byte
/// inside the secret (two lines are a mistake, not a secret).
std::optional<std::string> read_secret_file(const std::string& path, std::string* why);

}  // namespace ordermesh::secrets
