#include "persistence/storage_engine.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <spdlog/spdlog.h>

#include "persistence/big_endian.hpp"
#include "persistence/decimal.hpp"
#include "persistence/group_commit.hpp"
#include "persistence/replica_meta.hpp"
#include "persistence/shard_table.hpp"
#include "persistence/value_format.hpp"
#include "persistence/value_migration.hpp"

namespace ordermesh::persistence {

namespace {

// Memtable budget for OptimizeLevelStyleCompaction (its default, 512 MiB, is sized for a
// dedicated server; a node here shares 2 cores and its memory with the rest of the system).
constexpr uint64_t memtable_budget_bytes = 128u << 20;
constexpr uint64_t max_wal_bytes = 16u << 20;

rocksdb::Options make_options(const storage_options& opts) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.IncreaseParallelism(2);
  o.OptimizeLevelStyleCompaction(memtable_budget_bytes);
  // Bound the log a restart must replay (DB::Open replays every unflushed log: about 11 MiB/s
  // on these machines, so 65 MiB took 5.7 s, docs/BENCHMARKS_MICRO.md): past this size RocksDB
  // flushes the memtables and drops old logs, keeping any restart near the 2 s target.
  o.max_total_wal_size = max_wal_bytes;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  // Whole-key bloom filter: speeds up point reads (meta); range reads are prefix seeks anyway.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

bool starts_with(const rocksdb::Slice& s, const std::string& prefix) {
  return s.starts_with(rocksdb::Slice(prefix));
}

std::string_view view(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

status from_rocksdb(const rocksdb::Status& s) {
  if (s.ok()) {
    return status::ok();
  }
  if (s.IsNotFound()) {
    return status::not_found();
  }
  if (s.IsCorruption()) {
    return status::corruption(s.ToString());
  }
  return status::io_error(s.ToString());
}

/// Seq of an event or snapshot key under `record_prefix` (entity prefix + tag); false if the key
/// does not have exactly 8 bytes after it.
bool record_seq(const rocksdb::Slice& key, const std::string& record_prefix, uint64_t& seq) {
  if (key.size() != record_prefix.size() + 8) {
    return false;
  }
  seq = detail::get_u64be(view(key).substr(record_prefix.size()));
  return true;
}

/// Checks a stored event or snapshot value and copies its payload to `out`.
status unseal_into(const rocksdb::Slice& key, const rocksdb::Slice& stored, std::string& out) {
  std::string_view payload;
  status st = value_format::unseal(view(key), view(stored), payload);
  if (st.is_ok()) {
    out.assign(payload);
  }
  return st;
}

/// A RocksDB error while reading one entity's records (e.g. a block whose own checksum fails):
/// named after the entity, so the caller can quarantine it alone.
status entity_read_error(const entity_key& key, const rocksdb::Status& s) {
  status st = from_rocksdb(s);
  const std::string who = "kind " + std::to_string(key.kind) + " id " + key.id + " (shard " +
                          std::to_string(key.shard) + "): ";
  return st.kind() == status::code::corruption ? status::corruption(who + st.message()) : st;
}

// Shard ownership records: meta "shard_epoch/<shard in decimal>" -> "owned <epoch>" or
// "released <epoch>". Text, so that an operator can read them with any RocksDB tool.
constexpr std::string_view shard_epoch_meta = "shard_epoch/";
constexpr std::string_view owned_word = "owned ";
constexpr std::string_view released_word = "released ";

std::string shard_epoch_name(uint16_t shard) {
  return std::string(shard_epoch_meta) + std::to_string(shard);
}

std::string shard_epoch_value(uint64_t epoch, bool owned) {
  return std::string(owned ? owned_word : released_word) + std::to_string(epoch);
}

/// What the durable record says about one shard.
struct shard_record {
  uint64_t epoch = 0;  // last recorded epoch, owned or released
  bool owned = false;  // as on disk
};

bool parse_shard_record(std::string_view name, std::string_view value, uint16_t& shard,
                        shard_record& out) {
  uint32_t n = 0;
  if (!detail::parse_decimal(name, n) || n >= keys::meta_shard) {
    return false;
  }
  shard = static_cast<uint16_t>(n);
  for (const auto& [word, owned] : {std::pair{owned_word, true}, std::pair{released_word, false}}) {
    if (value.substr(0, word.size()) == word) {
      out.owned = owned;
      return detail::parse_decimal(value.substr(word.size()), out.epoch) && out.epoch != 0;
    }
  }
  return false;
}

}  // namespace

struct storage_engine::impl {
  storage_options opts;
  std::unique_ptr<rocksdb::Env> env;  // over opts.file_system, if set; outlives db
  std::unique_ptr<rocksdb::DB> db;
  std::unique_ptr<detail::shard_table> shards;   // read by the writer: outlives it
  std::mutex ownership_mutex;                    // one own/release at a time, across its fsync
  std::map<uint16_t, shard_record> records;      // guarded by ownership_mutex
  std::unique_ptr<detail::group_commit> writer;  // destroyed (drained) before db
  /// set_writes_paused: per shard, whether submit() refuses entity writes (unavailable).
  std::unique_ptr<std::atomic<bool>[]> writes_paused { new std::atomic<bool>[ 0x10000 ]() };

  /// Queues `w` and waits for its callback. `on_ok`, if set, runs on the writer thread right after
  /// the successful commit, before any later batch is checked against the shard table (and
  /// before the callback, which replication may hold).
  status write_and_wait(detail::pending_write w, bool bounded, std::function<void()> on_ok = {});
  /// Reads every ownership record into `records` and the shard table (at open).
  status load_shard_records();
  /// Reads every replica record, with each fence raised to the shard's ownership epoch (at open,
  /// after load_shard_records).
  status load_replica_records(std::unordered_map<uint16_t, replica_state>& out) const;
  /// Reads one shard's replica record as seen by `ro`; all zero when there is none.
  status read_replica(uint16_t shard, const rocksdb::ReadOptions& ro, replica_state& out) const;
  /// Reads one shard's chunk and replica record from the view of `ro` (its snapshot set).
  status read_chunk(uint16_t shard, const std::string& after_key, size_t max_bytes,
                    const rocksdb::ReadOptions& ro, shard_chunk& out) const;
};

status storage_engine::impl::write_and_wait(detail::pending_write w, bool bounded,
                                            std::function<void()> on_ok) {
  if (writer->on_writer_thread()) {
    // It would wait for the writer thread, which is busy running this very callback.
    return status::invalid("blocking storage call from a write callback");
  }
  auto promise = std::make_shared<std::promise<status>>();
  std::future<status> result = promise->get_future();
  w.on_commit = std::move(on_ok);
  w.done = [promise](const status& s) { promise->set_value(s); };
  status why;
  if (!writer->submit(w, bounded, &why)) {
    return why;
  }
  return result.get();
}

status storage_engine::impl::load_shard_records() {
  const std::string prefix = keys::meta(shard_epoch_meta);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && starts_with(it->key(), prefix); it->Next()) {
    const std::string_view name = view(it->key()).substr(prefix.size());
    uint16_t shard = 0;
    shard_record record;
    // Refuse to open rather than guess: a lost record could let ownership go back in epochs.
    if (!parse_shard_record(name, view(it->value()), shard, record)) {
      return status::corruption("malformed shard ownership record '" + std::string(name) + "' = '" +
                                it->value().ToString() + "'");
    }
    records[shard] = record;
    shards->set_owned(shard, record.owned ? record.epoch : 0);
  }
  return from_rocksdb(it->status());
}

status storage_engine::impl::load_replica_records(
    std::unordered_map<uint16_t, replica_state>& out) const {
  const std::string prefix = keys::meta(detail::replica_meta);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && starts_with(it->key(), prefix); it->Next()) {
    const std::string_view name = view(it->key()).substr(prefix.size());
    uint16_t shard = 0;
    replica_state state;
    // Refuse to open rather than guess: a lost fence could let a deposed primary collect acks.
    if (!detail::parse_replica(name, view(it->value()), shard, state)) {
      return status::corruption("malformed replica record '" + std::string(name) + "' = '" +
                                it->value().ToString() + "'");
    }
    out[shard] = state;
  }
  if (!it->status().ok()) {
    return from_rocksdb(it->status());
  }
  // Having owned a shard at epoch E is having seen E: the fence covers it (own_shard raises the
  // in-memory fence the same way, the ownership record is what persists it).
  for (const auto& [shard, record] : records) {
    replica_state& state = out[shard];
    state.fence = std::max(state.fence, record.epoch);
  }
  return status::ok();
}

storage_engine::storage_engine() : impl_(std::make_unique<impl>()) {}

std::unique_ptr<storage_engine> storage_engine::open(const storage_options& opts, status* err) {
  auto fail = [&](status s) -> std::unique_ptr<storage_engine> {
    spdlog::error("storage: cannot open '{}': {}", opts.path, s.to_string());
    if (err != nullptr) {
      *err = std::move(s);
    }
    return nullptr;
  };
  if (opts.path.empty()) {
    return fail(status::invalid("empty path"));
  }
  std::unique_ptr<storage_engine> engine(new storage_engine());
  impl& in = *engine->impl_;
  rocksdb::Options options = make_options(opts);
  if (opts.file_system) {
    in.env = rocksdb::NewCompositeEnv(opts.file_system);
    options.env = in.env.get();
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, opts.path, &raw);
  if (!s.ok()) {
    return fail(from_rocksdb(s));
  }
  in.opts = opts;
  in.db.reset(raw);
  // Before anything is read or served: every value must carry its checksum (value_format.hpp).
  if (status formatted = detail::ensure_value_format(*raw, opts.sync); !formatted.is_ok()) {
    return fail(std::move(formatted));
  }
  in.shards = std::make_unique<detail::shard_table>();
  // Before the writer starts: no write may be checked against a table not yet loaded.
  if (status loaded = in.load_shard_records(); !loaded.is_ok()) {
    return fail(std::move(loaded));  // the engine's destructor closes the database
  }
  std::unordered_map<uint16_t, replica_state> replicas;
  if (status loaded = in.load_replica_records(replicas); !loaded.is_ok()) {
    return fail(std::move(loaded));
  }
  in.writer = std::make_unique<detail::group_commit>(*raw, *in.shards, opts, std::move(replicas));
  spdlog::info("storage: opened '{}' (sync={}, check_shard_epochs={}, owned shards={})", opts.path,
               opts.sync, opts.check_shard_epochs, engine->owned_shards().size());
  if (err != nullptr) {
    *err = status::ok();
  }
  return engine;
}

storage_engine::~storage_engine() {
  if (!impl_ || !impl_->db) {
    return;
  }
  if (impl_->writer) {      // absent when open() failed after opening the database
    impl_->writer->stop();  // commits what is queued and runs its callbacks
    impl_->writer.reset();
  }
  // A clean stop flushes the memtables so that the next start has no log to replay (Close
  // alone leaves it to DB::Open). A failed flush only costs start-up time: the log has it all.
  rocksdb::Status s = impl_->db->Flush(rocksdb::FlushOptions());
  if (!s.ok()) {
    spdlog::warn("storage: flushing '{}' before closing: {}", impl_->opts.path, s.ToString());
  }
  s = impl_->db->Close();
  if (!s.ok()) {
    spdlog::error("storage: closing '{}': {}", impl_->opts.path, s.ToString());
  }
  impl_->db.reset();
  spdlog::info("storage: closed '{}'", impl_->opts.path);
}

status storage_engine::load(const entity_key& key, recovered_entity& out) const {
  out = recovered_entity{};
  if (!keys::valid(key)) {
    return status::invalid("bad entity key");
  }
  const std::string prefix = keys::entity_prefix(key);
  const std::string snap_prefix = prefix + 's';
  const std::string event_prefix = prefix + 'e';
  // Every key of this entity is below prefix-with-0x00-replaced-by-0x01; bounding the iterator
  // keeps it from reading into the next entity's blocks.
  std::string upper = prefix;
  upper.back() = '\x01';
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  // One iterator for both reads: it is a consistent view, so a snapshot and the events written
  // with it in one batch are seen together or not at all.
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro));

  it->SeekForPrev(keys::snapshot(key, std::numeric_limits<uint64_t>::max()));
  if (it->Valid() && starts_with(it->key(), snap_prefix)) {
    if (!record_seq(it->key(), snap_prefix, out.snapshot_seq)) {
      return status::corruption("malformed snapshot key for '" + key.id + "'");
    }
    if (status st = unseal_into(it->key(), it->value(), out.snapshot); !st.is_ok()) {
      out = recovered_entity{};
      return st;
    }
  }
  if (!it->status().ok()) {
    return entity_read_error(key, it->status());
  }

  uint64_t expected = out.snapshot_seq + 1;
  for (it->Seek(keys::event(key, expected)); it->Valid() && starts_with(it->key(), event_prefix);
       it->Next()) {
    uint64_t seq = 0;
    if (!record_seq(it->key(), event_prefix, seq)) {
      return status::corruption("malformed event key for '" + key.id + "'");
    }
    if (seq != expected) {
      return status::corruption("journal gap for '" + key.id + "': expected seq " +
                                std::to_string(expected) + ", found " + std::to_string(seq));
    }
    stored_event ev{seq, {}};
    if (status st = unseal_into(it->key(), it->value(), ev.bytes); !st.is_ok()) {
      out = recovered_entity{};
      return st;
    }
    out.events.push_back(std::move(ev));
    ++expected;
  }
  if (!it->status().ok()) {
    return entity_read_error(key, it->status());
  }
  out.last_seq = out.events.empty() ? out.snapshot_seq : out.events.back().seq;
  return status::ok();
}

status storage_engine::read_events(const entity_key& key, uint64_t from_seq, size_t max_events,
                                   std::vector<stored_event>& out) const {
  out.clear();
  if (!keys::valid(key)) {
    return status::invalid("bad entity key");
  }
  const std::string event_prefix = keys::entity_prefix(key) + 'e';
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(keys::event(key, from_seq));
       out.size() < max_events && it->Valid() && starts_with(it->key(), event_prefix); it->Next()) {
    uint64_t seq = 0;
    if (!record_seq(it->key(), event_prefix, seq)) {
      return status::corruption("malformed event key for '" + key.id + "'");
    }
    stored_event ev{seq, {}};
    if (status st = unseal_into(it->key(), it->value(), ev.bytes); !st.is_ok()) {
      out.clear();
      return st;
    }
    out.push_back(std::move(ev));
  }
  if (!it->status().ok()) {
    out.clear();
    return entity_read_error(key, it->status());
  }
  return status::ok();
}

bool storage_engine::submit(write_request req, write_callback done, status* why) {
  bool barrier = req.events.empty() && !req.snapshot && !req.wakeup_due_ms && !req.erase_wakeup;
  if (!barrier && impl_->writes_paused[req.key.shard].load(std::memory_order_acquire)) {
    if (why)
      *why = status::unavailable("shard " + std::to_string(req.key.shard) +
                                 " cannot acknowledge writes right now (too few in-sync replicas)");
    return false;
  }
  detail::pending_write w;
  w.req = std::move(req);
  w.done = std::move(done);
  return impl_->writer->submit(w, /*bounded=*/true, why);
}

status storage_engine::scan_wakeups(const std::function<void(const wakeup_entry&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  // Skip scan: one seek per shard that has data, landing directly on its wakeup range, instead of
  // reading every journal in between. Shard 0xFFFF is the meta range.
  uint32_t shard = 0;
  while (shard < 0xFFFF) {
    const std::string wprefix = keys::wakeup_prefix(static_cast<uint16_t>(shard));
    it->Seek(wprefix);
    if (!it->Valid()) {
      break;
    }
    if (!starts_with(it->key(), wprefix)) {
      if (it->key().size() < 2) {
        return status::corruption("short key in database");
      }
      const uint16_t next = detail::get_u16be(view(it->key()));
      // Past this shard's wakeups: continue with the shard the iterator landed in.
      shard = next > shard ? next : shard + 1;
      continue;
    }
    for (; it->Valid() && starts_with(it->key(), wprefix); it->Next()) {
      wakeup_entry e;
      if (!keys::parse_wakeup(view(it->key()), e.key) || it->value().size() != 8) {
        return status::corruption("malformed wakeup entry");
      }
      e.due_ms = detail::decode_i64(view(it->value()));
      visit(e);
    }
    shard += 1;
  }
  return from_rocksdb(it->status());
}

status storage_engine::get_meta(const std::string& name, std::string* value) const {
  if (value == nullptr) {
    return status::invalid("null value");
  }
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::meta(name), value);
  return s.IsNotFound() ? status::not_found(name) : from_rocksdb(s);
}

status storage_engine::put_meta(const std::string& name, const std::string& value) {
  if (impl_->writer->on_writer_thread()) {
    // It would wait for the writer thread, which is busy running this very callback.
    return status::invalid("put_meta called from a write callback");
  }
  if (std::string_view(name).substr(0, shard_epoch_meta.size()) == shard_epoch_meta) {
    // Overwriting an ownership record would bypass the never-go-back rule, and the in-memory
    // table would no longer match the disk.
    return status::invalid("meta name '" + name + "' is reserved for shard ownership");
  }
  if (std::string_view(name).substr(0, detail::replica_meta.size()) == detail::replica_meta) {
    // Positions and fences change only with the batches they describe.
    return status::invalid("meta name '" + name + "' is reserved for replication");
  }
  // Through the writer queue: never reordered with entity writes, and synced in order with them.
  detail::pending_write w;
  w.meta = detail::meta_put{name, value};
  return impl_->write_and_wait(std::move(w), /*bounded=*/false);
}

status storage_engine::own_shard(uint16_t shard, uint64_t epoch) {
  if (shard == keys::meta_shard) {
    return status::invalid("shard 65535 is the meta range, not an entity shard");
  }
  if (epoch == 0) {
    return status::invalid("epoch 0 means \"not owned\"; epochs start at 1");
  }
  std::lock_guard<std::mutex> lock(impl_->ownership_mutex);
  shard_record& record = impl_->records[shard];  // a new one is {0, false}
  if (epoch < record.epoch) {
    return status::invalid("shard " + std::to_string(shard) + ": epoch " + std::to_string(epoch) +
                           " is older than the recorded epoch " + std::to_string(record.epoch) +
                           " (ownership never goes back)");
  }
  if (record.owned && record.epoch == epoch) {
    return status::ok();  // already owned under this epoch, and durably so
  }
  if (const uint64_t fence = impl_->writer->replica(shard).fence; epoch < fence) {
    // A follower that took deltas of epoch F knows a primary of F existed: owning below it would
    // make this node a primary older than one it has already obeyed.
    return status::invalid("shard " + std::to_string(shard) + ": epoch " + std::to_string(epoch) +
                           " is older than the replica fence " + std::to_string(fence));
  }
  detail::pending_write w;
  w.meta = detail::meta_put{shard_epoch_name(shard), shard_epoch_value(epoch, true)};
  // The table changes only once the record is synced, and on the writer thread, so that every
  // write committed under the new epoch is committed after the record that allows it.
  detail::shard_table& table = *impl_->shards;
  detail::group_commit& writer = *impl_->writer;
  bool committed = false;  // written by the writer thread before write_and_wait returns
  status st = impl_->write_and_wait(std::move(w), /*bounded=*/false,
                                    [&table, &writer, &committed, shard, epoch] {
                                      table.set_owned(shard, epoch);
                                      writer.raise_fence(shard, epoch);
                                      committed = true;
                                    });
  // The record follows the table: once the table says owned, so must the record, or a later
  // release_shard would find nothing to release and leave the shard writable.
  if (st.is_ok() || committed) {
    record = shard_record{epoch, true};
  } else if (record.epoch == 0) {
    impl_->records.erase(shard);  // nothing was ever recorded
  }
  return st;
}

status storage_engine::release_shard(uint16_t shard) {
  if (shard == keys::meta_shard) {
    return status::invalid("shard 65535 is the meta range, not an entity shard");
  }
  std::lock_guard<std::mutex> lock(impl_->ownership_mutex);
  auto it = impl_->records.find(shard);
  if (it == impl_->records.end() || !it->second.owned) {
    return status::ok();  // not owned, durably: nothing to do
  }
  shard_record& record = it->second;
  if (impl_->writer->on_writer_thread()) {
    return status::invalid("release_shard called from a write callback");
  }
  // The table first, the record after: from here on every write of the shard is refused, at
  // submit() or at commit; writes checked before this line are in batches ahead of the record's,
  // so once it is synced none of them is in flight and the range is stable for export.
  // If the record fails to be written, the engine is failed and writes nothing more anyway.
  impl_->shards->set_owned(shard, 0);
  detail::pending_write w;
  w.meta = detail::meta_put{shard_epoch_name(shard), shard_epoch_value(record.epoch, false)};
  status st = impl_->write_and_wait(std::move(w), /*bounded=*/false);
  if (st.is_ok()) {
    record.owned = false;
  }
  return st;
}

void storage_engine::set_writes_paused(uint16_t shard, bool paused) {
  impl_->writes_paused[shard].store(paused, std::memory_order_release);
}

bool storage_engine::writes_paused(uint16_t shard) const {
  return impl_->writes_paused[shard].load(std::memory_order_acquire);
}

uint64_t storage_engine::owned_epoch(uint16_t shard) const {
  return impl_->shards->owned(shard);
}

std::vector<std::pair<uint16_t, uint64_t>> storage_engine::owned_shards() const {
  // From the lock-free table, not the records: no waiting behind an own/release being synced.
  std::vector<std::pair<uint16_t, uint64_t>> out;
  for (uint32_t shard = 0; shard < keys::meta_shard; ++shard) {
    if (const uint64_t epoch = impl_->shards->owned(static_cast<uint16_t>(shard)); epoch != 0) {
      out.emplace_back(static_cast<uint16_t>(shard), epoch);
    }
  }
  return out;
}

status storage_engine::impl::read_replica(uint16_t shard, const rocksdb::ReadOptions& ro,
                                          replica_state& out) const {
  out = replica_state{};
  std::string value;
  rocksdb::Status got = db->Get(ro, keys::meta(detail::replica_meta_name(shard)), &value);
  if (got.IsNotFound()) {
    return status::ok();  // nothing was ever committed for the shard
  }
  if (!got.ok()) {
    return from_rocksdb(got);
  }
  uint16_t parsed = 0;
  if (!detail::parse_replica(std::to_string(shard), value, parsed, out)) {
    return status::corruption("malformed replica record of shard " + std::to_string(shard));
  }
  return status::ok();
}

status storage_engine::impl::read_chunk(uint16_t shard, const std::string& after_key,
                                        size_t max_bytes, const rocksdb::ReadOptions& base,
                                        shard_chunk& out) const {
  out = shard_chunk{};
  out.shard = shard;
  out.last_key = after_key;
  if (shard == keys::meta_shard) {
    return status::invalid("shard 65535 is the meta range, not an entity shard");
  }
  if (!after_key.empty() && !keys::in_shard(after_key, shard)) {
    return status::invalid("after_key is not in shard " + std::to_string(shard));
  }
  // The position from the same snapshot as the records: both are written in one batch, so the
  // copy is the shard exactly as of that position.
  replica_state state;
  if (status st = read_replica(shard, base, state); !st.is_ok()) {
    return st;
  }
  out.position = state.position;
  out.epoch = state.epoch;
  // The upper bound keeps the iterator inside the shard: no key of a neighbour is ever read.
  const std::string upper = keys::shard_end(shard);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro = base;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  it->Seek(after_key.empty() ? keys::shard_prefix(shard) : after_key);
  if (!after_key.empty() && it->Valid() && view(it->key()) == after_key) {
    it->Next();  // strictly after
  }
  size_t bytes = 0;
  for (; it->Valid(); it->Next()) {
    const size_t size = it->key().size() + it->value().size();
    if (!out.records.empty() && bytes + size > max_bytes) {
      break;  // the first record always goes in, so that a chunk makes progress
    }
    // An export feeds handoffs and replica re-seeds: a damaged value stops it here.
    if (status st = value_format::check(view(it->key()), view(it->value())); !st.is_ok()) {
      out.records.clear();
      return st;
    }
    out.records.emplace_back(it->key().ToString(), it->value().ToString());
    bytes += size;
  }
  if (!it->status().ok()) {
    status st = from_rocksdb(it->status());
    out.records.clear();
    return st;
  }
  out.done = !it->Valid();
  if (!out.records.empty()) {
    out.last_key = out.records.back().first;
  }
  return status::ok();
}

status storage_engine::export_shard(uint16_t shard, const std::string& after_key, size_t max_bytes,
                                    shard_chunk& out) const {
  // One snapshot for the chunk and the position that goes with it.
  const rocksdb::Snapshot* snap = impl_->db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  status st = impl_->read_chunk(shard, after_key, max_bytes, ro, out);
  impl_->db->ReleaseSnapshot(snap);
  return st;
}

struct shard_export::impl {
  rocksdb::DB* db = nullptr;
  const storage_engine::impl* engine = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
  uint16_t shard = 0;
  uint64_t position = 0;
  uint64_t epoch = 0;
  std::string after_key;
  bool done = false;
};

shard_export::shard_export() : impl_(std::make_unique<impl>()) {}

shard_export::~shard_export() {
  if (impl_->snapshot != nullptr) {
    impl_->db->ReleaseSnapshot(impl_->snapshot);
  }
}

uint64_t shard_export::position() const {
  return impl_->position;
}

uint64_t shard_export::epoch() const {
  return impl_->epoch;
}

status shard_export::next(size_t max_bytes, shard_chunk& out) {
  if (impl_->done) {
    out = shard_chunk{};
    out.shard = impl_->shard;
    out.last_key = impl_->after_key;
    out.done = true;
    out.position = impl_->position;
    out.epoch = impl_->epoch;
    return status::ok();
  }
  rocksdb::ReadOptions ro;
  ro.snapshot = impl_->snapshot;
  status st = impl_->engine->read_chunk(impl_->shard, impl_->after_key, max_bytes, ro, out);
  if (st.is_ok()) {
    impl_->after_key = out.last_key;
    impl_->done = out.done;
  }
  return st;
}

std::unique_ptr<shard_export> storage_engine::begin_export(uint16_t shard, status* err) const {
  if (shard == keys::meta_shard) {
    if (err != nullptr) {
      *err = status::invalid("shard 65535 is the meta range, not an entity shard");
    }
    return nullptr;
  }
  std::unique_ptr<shard_export> out(new shard_export());
  shard_export::impl& in = *out->impl_;
  in.db = impl_->db.get();
  in.engine = impl_.get();
  in.snapshot = in.db->GetSnapshot();
  in.shard = shard;
  rocksdb::ReadOptions ro;
  ro.snapshot = in.snapshot;
  replica_state state;
  if (status st = impl_->read_replica(shard, ro, state); !st.is_ok()) {
    if (err != nullptr) {
      *err = std::move(st);
    }
    return nullptr;  // the destructor releases the snapshot
  }
  in.position = state.position;
  in.epoch = state.epoch;
  if (err != nullptr) {
    *err = status::ok();
  }
  return out;
}

bool storage_engine::submit_import(uint16_t shard, shard_records records, write_callback done,
                                   status* why) {
  detail::pending_write w;
  w.shard = detail::shard_op{shard, std::move(records), false};
  w.done = std::move(done);
  // Bounded like entity writes: an import is bulk data and waits its turn under load.
  return impl_->writer->submit(w, /*bounded=*/true, why);
}

status storage_engine::delete_shard(uint16_t shard) {
  detail::pending_write w;
  w.shard = detail::shard_op{shard, {}, true};
  return impl_->write_and_wait(std::move(w), /*bounded=*/false);
}

status storage_engine::forget_replica(uint16_t shard, uint64_t epoch) {
  if (epoch == 0)
    return status::invalid("forget_replica needs an epoch");
  detail::pending_write w;
  w.shard = detail::shard_op{shard, {}, true, epoch};
  return impl_->write_and_wait(std::move(w), /*bounded=*/false);
}

uint64_t storage_engine::replica_position(uint16_t shard) const {
  return impl_->writer->replica(shard).position;
}

replica_state storage_engine::replica(uint16_t shard) const {
  return impl_->writer->replica(shard);
}

status storage_engine::apply_replicated(const shard_delta& d) {
  detail::pending_write w;
  w.replica = detail::replica_op{detail::replica_op::kind::apply, d};
  // Bounded: a follower under load answers overloaded and the primary retries.
  return impl_->write_and_wait(std::move(w), /*bounded=*/true);
}

bool storage_engine::submit_replicated(shard_delta d, write_callback done, status* why) {
  detail::pending_write w;
  w.replica = detail::replica_op{detail::replica_op::kind::apply, std::move(d)};
  w.done = std::move(done);
  return impl_->writer->submit(w, /*bounded=*/true, why);
}

status storage_engine::fence_replica(uint16_t shard, uint64_t epoch) {
  detail::pending_write w;
  w.replica =
      detail::replica_op{detail::replica_op::kind::fence, shard_delta{shard, epoch, 0, 0, {}}};
  return impl_->write_and_wait(std::move(w), /*bounded=*/false);
}

void storage_engine::fence_replica_async(uint16_t shard, uint64_t epoch, write_callback done) {
  detail::pending_write w;
  w.replica =
      detail::replica_op{detail::replica_op::kind::fence, shard_delta{shard, epoch, 0, 0, {}}};
  w.done = done;
  status why;
  if (!impl_->writer->submit(w, /*bounded=*/false, &why))
    done(why);  // not queued (closed, failed): answered here, on the caller's thread
}

status storage_engine::reset_replica(uint16_t shard, uint64_t epoch, uint64_t position) {
  detail::pending_write w;
  w.replica = detail::replica_op{detail::replica_op::kind::reset,
                                 shard_delta{shard, epoch, position, 0, {}}};
  return impl_->write_and_wait(std::move(w), /*bounded=*/false);
}

status storage_engine::checkpoint(const std::string& dir, checkpoint_info* out) const {
  if (out == nullptr || dir.empty()) {
    return status::invalid("checkpoint needs a directory and an out parameter");
  }
  if (impl_->writer->on_writer_thread()) {
    return status::invalid("checkpoint called from a write callback");
  }
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) || ec) {
    return status::invalid("checkpoint directory '" + dir + "' exists already (or cannot be read)");
  }
  rocksdb::Checkpoint* raw = nullptr;
  if (rocksdb::Status s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw); !s.ok()) {
    return from_rocksdb(s);
  }
  std::unique_ptr<rocksdb::Checkpoint> maker(raw);
  checkpoint_info info;
  {
    // Held across the checkpoint: the ownership records in it are then the ones listed here.
    std::lock_guard<std::mutex> lock(impl_->ownership_mutex);
    // log_size_for_flush 0: flush always, so the checkpoint does not depend on replaying a log.
    if (rocksdb::Status s = maker->CreateCheckpoint(dir, 0, &info.sequence); !s.ok()) {
      return from_rocksdb(s);  // RocksDB removes its temporary directory itself
    }
    for (const auto& [shard, record] : impl_->records) {
      if (record.owned) {
        info.owned_shards.emplace_back(shard, record.epoch);
      }
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    info.files.emplace_back(entry.path().filename().string(), entry.file_size(ec));
    if (ec) {
      break;
    }
  }
  if (ec) {
    return status::io_error("listing checkpoint '" + dir + "': " + ec.message());
  }
  std::sort(info.files.begin(), info.files.end());
  spdlog::info("storage: checkpoint of '{}' in '{}' (sequence {}, {} files)", impl_->opts.path, dir,
               info.sequence, info.files.size());
  *out = std::move(info);
  return status::ok();
}

status storage_engine::health() const {
  return impl_->writer->health();
}

storage_stats storage_engine::stats() const {
  return impl_->writer->stats();
}

}  // namespace ordermesh::persistence
