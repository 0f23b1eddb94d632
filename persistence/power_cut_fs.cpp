#include "persistence/power_cut_fs.hpp"

#include <unistd.h>
#include <algorithm>
#include <optional>
#include <utility>

namespace ordermesh::persistence {

namespace {

/// A rename over a file larger than this is undone by removing the target instead of putting
/// its old bytes back (harsher; RocksDB renames only files of a few bytes over others).
constexpr uint64_t max_restored_bytes = 64u << 10;

/// Cuts a file back on the local disk. RocksDB's Posix file system does not implement
/// FileSystem::Truncate (NotSupported), so the cut truncates through POSIX: the wrapper simulates
/// a local disk only.
bool truncate_on_disk(const std::string& path, uint64_t length) {
  return ::truncate(path.c_str(), static_cast<off_t>(length)) == 0;
}

rocksdb::IOStatus power_cut_error() {
  return rocksdb::IOStatus::IOError("power cut (simulated)");
}

/// A writable file whose appends and syncs the file system tracks.
class tracked_writable_file : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  tracked_writable_file(std::string fname, std::unique_ptr<rocksdb::FSWritableFile> target,
                        power_cut_fs& fs)
      : FSWritableFileOwnerWrapper(std::move(target)), fname_(std::move(fname)), fs_(fs) {}

  ~tracked_writable_file() override {
    // The target closes itself in its destructor if Close was never called.
    if (!closed_ && fs_.is_cut()) {
      target()->Close(rocksdb::IOOptions(), nullptr).PermitUncheckedError();
      fs_.closed_after_cut(fname_);
    }
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return fs_.append(fname_, *target(), data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& /*verification_info*/,
                           rocksdb::IODebugContext* dbg) override {
    return fs_.append(fname_, *target(), data, options, dbg);
  }
  // Direct I/O only, which ordermesh does not use: refused so that no write escapes tracking.
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                     rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("power_cut_fs: positioned appends are not tracked");
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                     const rocksdb::DataVerificationInfo&,
                                     rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("power_cut_fs: positioned appends are not tracked");
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    return fs_.truncate_open(fname_, *target(), size, options, dbg);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    // Closing syncs nothing. After the cut the descriptor is still released (a test reopens
    // the database in the same process), then the file is cut back to its durable length.
    closed_ = true;
    rocksdb::IOStatus s = target()->Close(options, dbg);
    if (fs_.is_cut()) {
      fs_.closed_after_cut(fname_);
      return power_cut_error();
    }
    return s;
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    // The target's Flush moves nothing to the disk (PosixWritableFile's does nothing).
    if (auto refused = fs_.refuse_if_cut(); !refused.ok())
      return refused;
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return fs_.sync_file(fname_, [&] { return target()->Sync(options, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_.sync_file(fname_, [&] { return target()->Fsync(options, dbg); });
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    // sync_file_range: starts write-back, makes nothing durable (see the header).
    if (auto refused = fs_.refuse_if_cut(); !refused.ok())
      return refused;
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  rocksdb::IOStatus Allocate(uint64_t offset, uint64_t len, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    // Preallocation keeps the file's size (FALLOC_FL_KEEP_SIZE): nothing to track.
    if (auto refused = fs_.refuse_if_cut(); !refused.ok())
      return refused;
    return target()->Allocate(offset, len, options, dbg);
  }

 private:
  std::string fname_;
  power_cut_fs& fs_;
  bool closed_ = false;
};

/// A directory whose fsync makes the names created in it durable.
class tracked_directory : public rocksdb::FSDirectoryWrapper {
 public:
  tracked_directory(std::string name, std::unique_ptr<rocksdb::FSDirectory> target,
                    power_cut_fs& fs)
      : FSDirectoryWrapper(target.get()),
        name_(std::move(name)),
        guard_(std::move(target)),
        fs_(fs) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_.sync_dir(name_, [&] { return guard_->Fsync(options, dbg); });
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& why) override {
    // The target may skip the fsync on btrfs for some reasons; ordermesh's disks are ext4.
    return fs_.sync_dir(name_, [&] { return guard_->FsyncWithDirOptions(options, dbg, why); });
  }

 private:
  std::string name_;
  std::unique_ptr<rocksdb::FSDirectory> guard_;
  power_cut_fs& fs_;
};

}  // namespace

power_cut_fs::power_cut_fs(const std::shared_ptr<rocksdb::FileSystem>& target)
    : FileSystemWrapper(target) {}

power_cut_fs::~power_cut_fs() = default;

std::string power_cut_fs::normalized(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/')
      continue;
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

std::pair<std::string, std::string> power_cut_fs::split(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

rocksdb::IOStatus power_cut_fs::refuse_if_cut() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cut_ ? power_cut_error() : rocksdb::IOStatus::OK();
}

bool power_cut_fs::is_cut() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cut_;
}

uint64_t power_cut_fs::unsynced_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t total = 0;
  for (const auto& [name, state] : files_)
    total += state.length - state.durable;
  return total;
}

void power_cut_fs::track_new_name(const std::string& path, pending_name how) {
  auto [dir, name] = split(path);
  pending_names_[dir][name] = std::move(how);
}

void power_cut_fs::forget_name(const std::string& path) {
  files_.erase(path);
  auto [dir, name] = split(path);
  if (auto it = pending_names_.find(dir); it != pending_names_.end()) {
    it->second.erase(name);
    if (it->second.empty())
      pending_names_.erase(it);
  }
}

power_cut_fs::pending_name power_cut_fs::previous_of(const std::string& target_path) const {
  pending_name how;
  auto [dir, name] = split(target_path);
  if (auto it = pending_names_.find(dir); it != pending_names_.end()) {
    if (auto entry = it->second.find(name); entry != it->second.end())
      return entry->second;  // the target's own name is not durable yet: its fate stays
  }
  uint64_t size = 0;
  rocksdb::IOOptions io;
  if (!target()->FileExists(target_path, io, nullptr).ok() ||
      !target()->GetFileSize(target_path, io, &size, nullptr).ok() || size > max_restored_bytes)
    return how;  // nothing there (or too big to keep): a cut removes the target
  if (!rocksdb::ReadFileToString(target(), target_path, &how.old_bytes).ok())
    return how;
  // Bytes not synced yet are not what the disk holds: keep only the durable part.
  if (auto it = files_.find(target_path); it != files_.end() && it->second.durable < size)
    how.old_bytes.resize(it->second.durable);
  how.replaced_existing = true;
  return how;
}

rocksdb::IOStatus power_cut_fs::open_tracked(const std::string& fname,
                                             const rocksdb::FileOptions& opts, bool reopen,
                                             std::unique_ptr<rocksdb::FSWritableFile>* result,
                                             rocksdb::IODebugContext* dbg) {
  const std::string path = normalized(fname);
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  uint64_t size = 0;
  const bool existed = target()->GetFileSize(path, opts.io_options, &size, dbg).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = reopen ? target()->ReopenWritableFile(fname, opts, &file, dbg)
                               : target()->NewWritableFile(fname, opts, &file, dbg);
  if (!s.ok())
    return s;
  if (!existed)
    track_new_name(path, {});
  if (!reopen)
    files_[path] = file_state{};  // created or truncated: nothing of it is durable
  else if (files_.count(path) == 0)
    files_[path] = file_state{size, size};  // not seen written before: durable as it is
  *result = std::make_unique<tracked_writable_file>(path, std::move(file), *this);
  return s;
}

rocksdb::IOStatus power_cut_fs::NewWritableFile(const std::string& fname,
                                                const rocksdb::FileOptions& opts,
                                                std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                rocksdb::IODebugContext* dbg) {
  return open_tracked(fname, opts, false, result, dbg);
}

rocksdb::IOStatus power_cut_fs::ReopenWritableFile(const std::string& fname,
                                                   const rocksdb::FileOptions& opts,
                                                   std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                   rocksdb::IODebugContext* dbg) {
  return open_tracked(fname, opts, true, result, dbg);
}

rocksdb::IOStatus power_cut_fs::ReuseWritableFile(const std::string&, const std::string&,
                                                  const rocksdb::FileOptions&,
                                                  std::unique_ptr<rocksdb::FSWritableFile>*,
                                                  rocksdb::IODebugContext*) {
  return rocksdb::IOStatus::NotSupported("power_cut_fs: log recycling is not simulated");
}

rocksdb::IOStatus power_cut_fs::NewRandomRWFile(const std::string&, const rocksdb::FileOptions&,
                                                std::unique_ptr<rocksdb::FSRandomRWFile>*,
                                                rocksdb::IODebugContext*) {
  return rocksdb::IOStatus::NotSupported("power_cut_fs: random read-write files are not tracked");
}

rocksdb::IOStatus power_cut_fs::NewDirectory(const std::string& name,
                                             const rocksdb::IOOptions& io_opts,
                                             std::unique_ptr<rocksdb::FSDirectory>* result,
                                             rocksdb::IODebugContext* dbg) {
  if (auto refused = refuse_if_cut(); !refused.ok())
    return refused;
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, io_opts, &dir, dbg);
  if (s.ok())
    *result = std::make_unique<tracked_directory>(normalized(name), std::move(dir), *this);
  return s;
}

rocksdb::IOStatus power_cut_fs::DeleteFile(const std::string& fname,
                                           const rocksdb::IOOptions& options,
                                           rocksdb::IODebugContext* dbg) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  rocksdb::IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok())
    forget_name(normalized(fname));
  return s;
}

rocksdb::IOStatus power_cut_fs::add_name(const std::string& src, const std::string& target_name,
                                         bool rename, const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  const std::string from = normalized(src);
  const std::string to = normalized(target_name);
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  // A hard link never replaces a file (link(2) refuses an existing target).
  pending_name undo = rename ? previous_of(to) : pending_name{};
  rocksdb::IOStatus s = rename ? target()->RenameFile(src, target_name, options, dbg)
                               : target()->LinkFile(src, target_name, options, dbg);
  if (!s.ok())
    return s;
  std::optional<file_state> bytes;  // a link shares them: RocksDB links only finished files
  if (auto it = files_.find(from); it != files_.end())
    bytes = it->second;
  if (rename)
    forget_name(from);
  files_.erase(to);
  if (bytes)
    files_[to] = *bytes;
  track_new_name(to, std::move(undo));
  return s;
}

rocksdb::IOStatus power_cut_fs::RenameFile(const std::string& src, const std::string& target_name,
                                           const rocksdb::IOOptions& options,
                                           rocksdb::IODebugContext* dbg) {
  return add_name(src, target_name, true, options, dbg);
}

rocksdb::IOStatus power_cut_fs::LinkFile(const std::string& src, const std::string& target_name,
                                         const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  return add_name(src, target_name, false, options, dbg);
}

rocksdb::IOStatus power_cut_fs::Truncate(const std::string& fname, size_t size,
                                         const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  const std::string path = normalized(fname);
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  rocksdb::IOStatus s = target()->Truncate(fname, size, options, dbg);
  if (auto it = files_.find(path); s.ok() && it != files_.end()) {
    it->second.length = std::min<uint64_t>(it->second.length, size);
    it->second.durable = std::min<uint64_t>(it->second.durable, size);
  }
  return s;
}

rocksdb::IOStatus power_cut_fs::append(const std::string& fname, rocksdb::FSWritableFile& file,
                                       const rocksdb::Slice& data,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) {
  // Under the lock: a write either lands before the cut (and is cut away unless synced) or is
  // refused; none reaches the disk after the cut.
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  rocksdb::IOStatus s = file.Append(data, options, dbg);
  if (s.ok())
    files_[fname].length += data.size();
  if (on_next_write_) {
    cut_callback on_cut = std::move(on_next_write_);  // cut_locked disarms
    on_cut(cut_locked());
  }
  return s;
}

void power_cut_fs::cut_at_next_write(cut_callback on_cut) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cut_)
    on_next_write_ = std::move(on_cut);
}

rocksdb::IOStatus power_cut_fs::truncate_open(const std::string& fname,
                                              rocksdb::FSWritableFile& file, uint64_t size,
                                              const rocksdb::IOOptions& options,
                                              rocksdb::IODebugContext* dbg) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  rocksdb::IOStatus s = file.Truncate(size, options, dbg);
  if (s.ok()) {
    auto& state = files_[fname];
    state.length = std::min(state.length, size);
    state.durable = std::min(state.durable, size);
  }
  return s;
}

rocksdb::IOStatus power_cut_fs::sync_file(const std::string& fname,
                                          const std::function<rocksdb::IOStatus()>& do_sync) {
  uint64_t length_at_call = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cut_)
      return power_cut_error();
    length_at_call = files_[fname].length;
  }
  rocksdb::IOStatus s = do_sync();
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)  // the power went while the disk was syncing: the sync never finished
    return power_cut_error();
  if (auto it = files_.find(fname); s.ok() && it != files_.end())
    it->second.durable = std::max(it->second.durable, std::min(length_at_call, it->second.length));
  return s;
}

rocksdb::IOStatus power_cut_fs::sync_dir(const std::string& dirname,
                                         const std::function<rocksdb::IOStatus()>& do_sync) {
  std::map<std::string, pending_name> at_call;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cut_)
      return power_cut_error();
    if (auto it = pending_names_.find(dirname); it != pending_names_.end())
      at_call = it->second;
  }
  rocksdb::IOStatus s = do_sync();
  std::lock_guard<std::mutex> lock(mutex_);
  if (cut_)
    return power_cut_error();
  if (auto it = pending_names_.find(dirname); s.ok() && it != pending_names_.end()) {
    // Only the names there at the call are durable now; later ones wait for the next fsync.
    for (const auto& entry : at_call)
      it->second.erase(entry.first);
    if (it->second.empty())
      pending_names_.erase(it);
  }
  return s;
}

void power_cut_fs::closed_after_cut(const std::string& fname) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cut_lengths_.find(fname);
  if (it == cut_lengths_.end())
    return;  // removed by the cut (its descriptor pointed at an unlinked file)
  truncate_on_disk(fname, it->second);  // best effort: the cut's own truncate was counted
}

power_cut_report power_cut_fs::cut() {
  std::lock_guard<std::mutex> lock(mutex_);
  return cut_locked();
}

power_cut_report power_cut_fs::cut_locked() {
  power_cut_report report;
  if (cut_)
    return report;
  cut_ = true;
  on_next_write_ = nullptr;
  rocksdb::IOOptions io;
  // Names first: a file whose name was not durable is gone with all its bytes.
  for (const auto& [dir, names] : pending_names_) {
    for (const auto& [name, how] : names) {
      const std::string path = dir + "/" + name;
      files_.erase(path);
      rocksdb::IOStatus s;
      if (how.replaced_existing) {
        s = rocksdb::WriteStringToFile(target(), how.old_bytes, path, /*should_sync=*/true);
        ++report.renames_undone;
        cut_lengths_[path] = how.old_bytes.size();
      } else {
        s = target()->DeleteFile(path, io, nullptr);
        ++report.files_removed;
      }
      if (!s.ok() && !s.IsNotFound())
        ++report.errors;
    }
  }
  pending_names_.clear();
  for (const auto& [path, state] : files_) {
    cut_lengths_[path] = state.durable;
    if (state.length <= state.durable)
      continue;
    if (truncate_on_disk(path, state.durable)) {
      ++report.files_truncated;
      report.bytes_dropped += state.length - state.durable;
    } else {
      ++report.errors;
    }
  }
  files_.clear();
  return report;
}

}  // namespace ordermesh::persistence
