#pragma once
// A simulated power cut for tests (issue 13): a RocksDB FileSystem wrapper that remembers what a
// real disk would still hold after losing power, and on cut() makes the files on disk look so.
// Public RocksDB API only (<rocksdb/file_system.h>); knows nothing of the engine above it.
//
// What is durable, per call (Linux, ext4 with data=ordered, as a node runs here):
//   * Append / Flush / Close write to the page cache: nothing durable. (PositionedAppend, for
//     direct I/O only, is refused: ordermesh does not use direct I/O.)
//   * Sync (fdatasync) and Fsync make the file's bytes up to its length at the call durable.
//   * RangeSync (sync_file_range) makes nothing durable: it neither writes the metadata that
//     says how long the file is nor flushes the disk's cache (its man page says as much).
//   * A file's name (its creation, a rename into place, a hard link) is durable only once its
//     directory is fsynced (FSDirectory::Fsync / FsyncWithDirOptions) after it; syncing the file
//     itself does not make its directory entry durable.
//
// cut() then, atomically with respect to every other call of the wrapper:
//   * removes every file whose name is not durable yet (created, linked or renamed into place
//     since its directory's last fsync); a rename over an existing file is undone by putting the
//     old file's bytes back (RocksDB renames only small files over others: CURRENT, IDENTITY);
//   * truncates every other file it saw written to its durable length;
//   * and from then on refuses every call that would change the disk (IOError "power cut"),
//     as a machine without power would: nothing completes after the cut.
//
// Simplifications, each at least as harsh as a real power cut for RocksDB's use of the disk:
//   * A rename whose source name was durable is not undone to the old name: the target is
//     removed (for a target over an existing file: the old bytes come back). The source name
//     coming back would only be a stray file, which RocksDB ignores or deletes as obsolete.
//   * Deletions are immediate and durable (a real cut may bring a deleted file back). RocksDB
//     deletes only files that a synced MANIFEST no longer names, and deletes such leftovers
//     itself at open, so a file coming back never changes what it recovers.
//   * Unsynced bytes vanish entirely (a real disk may keep some of them, or some pages but
//     not others): the most a cut can lose. Not simulated: a tail of garbage or of a torn page
//     (RocksDB's log records carry checksums for that; a test of it would corrupt bytes).
//   * Directories are never removed, and creating or removing one is not refused after the cut
//     (a new, empty data dir surviving a cut is the same for RocksDB as one that did not:
//     create_if_missing makes what is missing; a process cut off does not create any more).
//   * Files are append-only (RocksDB's writable files are): rewrites inside the durable
//     length are not tracked. Random read-write files and file reuse (log recycling, off in
//     ordermesh) are refused, so nothing escapes the tracking silently.
//   * Files that existed before the wrapper saw them are durable as they are.
//   * RocksDB's info LOG is written around the wrapper (FileSystem::NewLogger) and kept whole:
//     recovery never reads it.
//
// Thread safety: one mutex guards the state and every write; the fsync itself runs outside it
// (it can take milliseconds) and its result is recorded under it only if no cut came first:
// a Sync that returned ok before cut() is kept, one still running at the cut fails.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/file_system.h>

namespace ordermesh::persistence {

/// What cut() did, for the test's log and assertions.
struct power_cut_report {
  uint64_t files_truncated = 0;  // files that lost bytes
  uint64_t bytes_dropped = 0;    // bytes those files lost
  uint64_t files_removed = 0;    // files whose name was not durable
  uint64_t renames_undone = 0;   // renames over an existing file, old bytes put back
  uint64_t errors = 0;           // files the cut could not fix up (then the disk is suspect)
};

class power_cut_fs : public rocksdb::FileSystemWrapper {
 public:
  /// Wraps `target` (e.g. rocksdb::FileSystem::Default()).
  explicit power_cut_fs(const std::shared_ptr<rocksdb::FileSystem>& target);
  ~power_cut_fs() override;

  static const char* kClassName() { return "OrdermeshPowerCutFileSystem"; }
  const char* Name() const override { return kClassName(); }

  /// Cuts the power: the files look as after a power loss (see above), and every later call
  /// that would write fails. Returns what it did; a second call does nothing.
  power_cut_report cut();
  /// Called right after a cut armed by cut_at_next_write, with what it did.
  using cut_callback = std::function<void(const power_cut_report&)>;
  /// Arms a cut at the next write through the wrapper, the moment a power loss hurts most: that
  /// append lands (in the page cache), the power is cut (dropping it and everything else not
  /// durable), and `on_cut` runs on the writing thread under the wrapper's lock (it must not call
  /// the wrapper; orderd's ends the process there). The append itself returns ok, as a write to
  /// the page cache does; the sync after it fails. A later cut() or cut_at_next_write replaces it.
  void cut_at_next_write(cut_callback on_cut);
  /// Whether cut() happened.
  bool is_cut() const;
  /// Bytes written but not durable now, over every tracked file (for tests).
  uint64_t unsynced_bytes() const;

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;

  // Called by the wrapped files and directories (under no lock of theirs).
  rocksdb::IOStatus append(const std::string& fname, rocksdb::FSWritableFile& file,
                           const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg);
  rocksdb::IOStatus truncate_open(const std::string& fname, rocksdb::FSWritableFile& file,
                                  uint64_t size, const rocksdb::IOOptions& options,
                                  rocksdb::IODebugContext* dbg);
  /// fsync-like: runs `do_sync` outside the lock, then records `fname` durable up to the length
  /// it had when called, unless the power was cut in between.
  rocksdb::IOStatus sync_file(const std::string& fname,
                              const std::function<rocksdb::IOStatus()>& do_sync);
  /// Directory fsync: the names pending in `dirname` when called become durable.
  rocksdb::IOStatus sync_dir(const std::string& dirname,
                             const std::function<rocksdb::IOStatus()>& do_sync);
  /// A writable file closed (or destroyed) after the cut: the target's close may have extended
  /// it again (PosixWritableFile::Close truncates to the size it wrote), so cut it back.
  void closed_after_cut(const std::string& fname);
  rocksdb::IOStatus refuse_if_cut() const;
  static std::string normalized(const std::string& path);

 private:
  /// What the disk would hold of one file written through the wrapper.
  struct file_state {
    uint64_t length = 0;   // bytes written (the page cache's view)
    uint64_t durable = 0;  // bytes a power cut keeps
  };
  /// A directory entry not durable yet, and what a cut does with it.
  struct pending_name {
    bool replaced_existing = false;  // a rename over a file: put `old_bytes` back
    std::string old_bytes;
  };

  static std::pair<std::string, std::string> split(const std::string& path);
  rocksdb::IOStatus open_tracked(const std::string& fname, const rocksdb::FileOptions& opts,
                                 bool reopen, std::unique_ptr<rocksdb::FSWritableFile>* result,
                                 rocksdb::IODebugContext* dbg);
  /// RenameFile (rename) or LinkFile: `target_name` is a new name, not durable yet.
  rocksdb::IOStatus add_name(const std::string& src, const std::string& target_name, bool rename,
                             const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg);
  void track_new_name(const std::string& path, pending_name how);
  void forget_name(const std::string& path);
  pending_name previous_of(const std::string& target) const;

  power_cut_report cut_locked();

  mutable std::mutex mutex_;
  bool cut_ = false;
  cut_callback on_next_write_;               // armed by cut_at_next_write
  std::map<std::string, file_state> files_;  // by normalized path
  /// Directory (normalized) -> file name -> what a cut does with it.
  std::map<std::string, std::map<std::string, pending_name>> pending_names_;
  /// Length each surviving file was cut to (closed_after_cut restores it).
  std::map<std::string, uint64_t> cut_lengths_;
};

}  // namespace ordermesh::persistence
