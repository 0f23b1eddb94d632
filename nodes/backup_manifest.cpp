#include "nodes/backup_manifest.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace ordermesh::node {

namespace {

using nlohmann::json;

constexpr std::streamsize max_manifest_bytes = 16 << 20;

bool fsync_path(const std::string& path, int flags, std::string* why) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    *why = "cannot sync " + path + ": " + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

template <class T>
bool read_unsigned(const json& j, const char* key, T& out, uint64_t max) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max)
    return false;
  out = static_cast<T>(it->get<uint64_t>());
  return true;
}

bool read_string(const json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > 4096)
    return false;
  out = it->get<std::string>();
  return true;
}

}  // namespace

json to_json(const backup_manifest& m) {
  json shards = json::array();
  for (const auto& [shard, epoch] : m.shards)
    shards.push_back({{"shard", shard}, {"epoch", epoch}});
  json files = json::array();
  for (const auto& [name, bytes] : m.files)
    files.push_back({{"name", name}, {"bytes", bytes}});
  return {{"format", m.format},
          {"node_id", m.node_id},
          {"cluster_id", m.cluster_id},
          {"shard_count", m.shard_count},
          {"created_at_ms", m.created_at_ms},
          {"orderd_version", m.orderd_version},
          {"sequence", m.sequence},
          {"shards", shards},
          {"files", files}};
}

bool from_json(const json& j, backup_manifest& out, std::string* why) {
  backup_manifest m;
  auto bad = [why](const std::string& what) {
    *why = "backup manifest: " + what;
    return false;
  };
  if (!j.is_object())
    return bad("not a JSON object");
  if (!j.contains("format") || !j["format"].is_number_integer() ||
      j["format"].get<int64_t>() != manifest_format)
    return bad("format is not " + std::to_string(manifest_format) +
               " (written by another orderd version?)");
  if (!read_string(j, "node_id", m.node_id) || m.node_id.empty() ||
      !read_string(j, "cluster_id", m.cluster_id) ||
      !read_string(j, "orderd_version", m.orderd_version))
    return bad("node_id, cluster_id or orderd_version missing or not a string");
  if (!read_unsigned(j, "shard_count", m.shard_count, 0xFFFE) || m.shard_count == 0 ||
      !read_unsigned(j, "sequence", m.sequence, UINT64_MAX))
    return bad("shard_count or sequence missing or out of range");
  if (!j.contains("created_at_ms") || !j["created_at_ms"].is_number_integer())
    return bad("created_at_ms missing");
  m.created_at_ms = j["created_at_ms"].get<int64_t>();
  const json* shards = j.contains("shards") ? &j["shards"] : nullptr;
  const json* files = j.contains("files") ? &j["files"] : nullptr;
  if (shards == nullptr || !shards->is_array() || shards->size() > m.shard_count)
    return bad("shards missing or longer than shard_count");
  for (const auto& s : *shards) {
    std::pair<uint16_t, uint64_t> entry;
    if (!s.is_object() || !read_unsigned(s, "shard", entry.first, m.shard_count - 1u) ||
        !read_unsigned(s, "epoch", entry.second, UINT64_MAX))
      return bad("a shards entry is not {shard, epoch} within shard_count");
    m.shards.push_back(entry);
  }
  if (files == nullptr || !files->is_array() || files->empty() || files->size() > max_backup_files)
    return bad("files missing, empty or longer than " + std::to_string(max_backup_files));
  for (const auto& f : *files) {
    std::pair<std::string, uint64_t> entry;
    if (!f.is_object() || !read_string(f, "name", entry.first) ||
        !read_unsigned(f, "bytes", entry.second, UINT64_MAX))
      return bad("a files entry is not {name, bytes}");
    // A name is one file inside the backup's db directory, never a path out of it.
    if (entry.first.empty() || entry.first == "." || entry.first == ".." ||
        entry.first.find('/') != std::string::npos || entry.first.find('\0') != std::string::npos)
      return bad("file name '" + entry.first + "' is not a plain file name");
    m.files.push_back(std::move(entry));
  }
  out = std::move(m);
  return true;
}

bool write_manifest(const std::string& dir, const backup_manifest& m, std::string* why) {
  const std::string path = dir + "/" + manifest_file;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << to_json(m).dump(2) << "\n";
    out.flush();
    if (!out) {
      *why = "cannot write " + tmp;
      return false;
    }
  }
  if (!fsync_path(tmp, O_RDONLY, why))
    return false;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = "cannot rename " + tmp + ": " + std::strerror(errno);
    return false;
  }
  return fsync_path(dir, O_RDONLY | O_DIRECTORY, why);
}

bool read_manifest(const std::string& dir, backup_manifest& out, std::string* why) {
  const std::string path = dir + "/" + manifest_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = "cannot read " + path + ": not a backup made by admin.backup";
    return false;
  }
  std::string text(static_cast<size_t>(max_manifest_bytes) + 1, '\0');
  in.read(text.data(), max_manifest_bytes + 1);
  if (in.gcount() > max_manifest_bytes) {
    *why = path + " is larger than 16 MiB: not a backup manifest";
    return false;
  }
  text.resize(static_cast<size_t>(in.gcount()));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *why = path + " is not JSON";
    return false;
  }
  return from_json(j, out, why);
}

}  // namespace ordermesh::node
