#include "persistence/storage_engine.hpp"

#include <future>
#include <limits>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include "persistence/big_endian.hpp"
#include "persistence/group_commit.hpp"

namespace ordermesh::persistence {

namespace {

// Memtable budget for OptimizeLevelStyleCompaction (its default, 512 MiB, is sized for a
// dedicated server; a node here shares 2 cores and its memory with the rest of the system).
constexpr uint64_t memtable_budget_bytes = 128u << 20;

rocksdb::Options make_options(const storage_options& opts) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.IncreaseParallelism(2);
  o.OptimizeLevelStyleCompaction(memtable_budget_bytes);
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

}  // namespace

struct storage_engine::impl {
  storage_options opts;
  std::unique_ptr<rocksdb::DB> db;
  std::unique_ptr<detail::group_commit> writer;  // destroyed (drained) before db
};

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
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(make_options(opts), opts.path, &raw);
  if (!s.ok()) {
    return fail(from_rocksdb(s));
  }
  std::unique_ptr<storage_engine> engine(new storage_engine());
  engine->impl_->opts = opts;
  engine->impl_->db.reset(raw);
  engine->impl_->writer = std::make_unique<detail::group_commit>(*raw, opts);
  spdlog::info("storage: opened '{}' (sync={})", opts.path, opts.sync);
  if (err != nullptr) {
    *err = status::ok();
  }
  return engine;
}

storage_engine::~storage_engine() {
  if (!impl_ || !impl_->db) {
    return;
  }
  impl_->writer->stop();  // commits what is queued and runs its callbacks
  impl_->writer.reset();
  rocksdb::Status s = impl_->db->Close();
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
    out.snapshot = it->value().ToString();
  }
  if (!it->status().ok()) {
    return from_rocksdb(it->status());
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
    out.events.push_back(stored_event{seq, it->value().ToString()});
    ++expected;
  }
  if (!it->status().ok()) {
    return from_rocksdb(it->status());
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
    out.push_back(stored_event{seq, it->value().ToString()});
  }
  return from_rocksdb(it->status());
}

bool storage_engine::submit(write_request req, write_callback done, status* why) {
  detail::pending_write w{std::move(req), std::nullopt, std::move(done)};
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
  // Through the writer queue: never reordered with entity writes, and synced in order with them.
  auto promise = std::make_shared<std::promise<status>>();
  std::future<status> result = promise->get_future();
  detail::pending_write w{write_request{}, detail::meta_put{name, value},
                          [promise](const status& s) { promise->set_value(s); }};
  status why;
  if (!impl_->writer->submit(w, /*bounded=*/false, &why)) {
    return why;
  }
  return result.get();
}

status storage_engine::health() const {
  return impl_->writer->health();
}

storage_stats storage_engine::stats() const {
  return impl_->writer->stats();
}

}  // namespace ordermesh::persistence
