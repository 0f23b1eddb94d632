#pragma once
// ordermesh-journal's way into a stopped node's data dir, shared by dump and verify: RocksDB's
// read-only mode (the write-ahead log of a killed node is replayed in memory only; no file of
// the data dir is created, renamed or written; RocksDB's info log is discarded; the database
// lock is not taken).
#include <memory>
#include <string>

namespace rocksdb {
class DB;
}

namespace ordermesh::node {

/// The database directory of a data dir: `<dir>/db`, or `dir` itself if it is a database.
std::string journal_database_path(const std::string& data_dir);

/// Opens the database of `data_dir` read-only; null and *error set when it cannot.
std::unique_ptr<rocksdb::DB> open_journal_read_only(const std::string& data_dir,
                                                    std::string* error);

}  // namespace ordermesh::node
