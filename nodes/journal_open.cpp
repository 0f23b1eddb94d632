#include "nodes/journal_open.hpp"

#include <cstdarg>
#include <filesystem>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>

namespace ordermesh::node {

namespace {

/// RocksDB's info log would be a file in the data dir: this one drops every line instead.
class discard_logger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
  void Logv(const rocksdb::InfoLogLevel, const char*, va_list) override {}
};

}  // namespace

std::string journal_database_path(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path child = fs::path(data_dir) / "db";
  if (fs::is_directory(child, ec)) {
    return child.string();
  }
  if (fs::exists(fs::path(data_dir) / "CURRENT", ec)) {
    return data_dir;
  }
  return child.string();  // does not exist: opening it reports that
}

std::unique_ptr<rocksdb::DB> open_journal_read_only(const std::string& data_dir,
                                                    std::string* error) {
  const std::string path = journal_database_path(data_dir);
  rocksdb::Options o;
  o.create_if_missing = false;
  o.error_if_exists = false;
  o.info_log = std::make_shared<discard_logger>();
  o.max_open_files = 256;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, path, &raw);
  if (!s.ok()) {
    if (error != nullptr) {
      *error = "cannot open the database '" + path + "' read-only: " + s.ToString();
    }
    return nullptr;
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

}  // namespace ordermesh::node
