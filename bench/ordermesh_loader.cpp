// ordermesh_loader: fills a node's data dir with a shop's history, fast, for the micro-benchmarks
// (docs/BENCHMARKS_MICRO.md). It writes through the persistence layer with the domain's own event
// and snapshot codecs, so what it writes is exactly what orderd writes and reads; no CAF.
//
// The shop: U users, P products (a product and an inventory entity each) and O orders, every one
// PAID. Order i belongs to user i % U and holds K items, products (i*K + j) % P. Each entity's
// journal is what orderd would have written for that history:
//   order      placed, reserved, payment_started, debited, paid            (5 events)
//   user       registered, deposited, then per order: order_linked, debited
//   product    created
//   inventory  stock_added, then per order item: reserved, committed
// with a snapshot at every --snapshot-every-th event, like orderd's default (100). Events:
// O * (7 + 2K) + 2U + 2P. Writes are not synced (storage_options::sync = false); the engine's
// destructor commits everything before the loader exits. Then start orderd with the same
// --shards on the data dir: it founds a cluster, owns every shard and serves these entities.
//
// At the end it prints one JSON line: counts per kind, events, and the encoded size of each
// entity's latest snapshot state (min / mean / max per kind).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "cluster/sharding.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/product.hpp"
#include "domain/types.hpp"
#include "domain/user.hpp"
#include "persistence/storage_engine.hpp"

namespace {

namespace dom = ordermesh::domain;
namespace ps = ordermesh::persistence;

struct options {
  std::string data_dir;
  uint64_t users = 1000;
  uint64_t products = 100;
  uint64_t orders = 10000;
  uint64_t items = 2;
  uint32_t shards = 64;
  uint64_t snapshot_every = 100;
};

/// Size statistics of one kind's snapshots (the encoded state after its last event).
struct kind_stats {
  uint64_t entities = 0;
  uint64_t events = 0;
  uint64_t snap_min = std::numeric_limits<uint64_t>::max();
  uint64_t snap_max = 0;
  uint64_t snap_sum = 0;
  void add(uint64_t n_events, size_t snapshot_bytes) {
    ++entities;
    events += n_events;
    snap_min = std::min<uint64_t>(snap_min, snapshot_bytes);
    snap_max = std::max<uint64_t>(snap_max, snapshot_bytes);
    snap_sum += snapshot_bytes;
  }
  std::string json(const char* kind) const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "\"%s\":{\"entities\":%llu,\"events\":%llu,\"snapshot_bytes_min\":%llu,"
                  "\"snapshot_bytes_mean\":%.1f,\"snapshot_bytes_max\":%llu}",
                  kind, static_cast<unsigned long long>(entities),
                  static_cast<unsigned long long>(events),
                  static_cast<unsigned long long>(entities ? snap_min : 0),
                  entities ? double(snap_sum) / double(entities) : 0.0,
                  static_cast<unsigned long long>(snap_max));
    return buf;
  }
};

/// Submits journals through the engine's group commit, retrying while its queue is full.
class writer {
 public:
  writer(ps::storage_engine& engine, const options& o) : engine_(engine), opts_(o) {}

  /// Applies `events` to `st` (a fresh state) one by one, encoding each, and writes them with the
  /// states at the snapshot points; adds the entity to `stats`.
  template <class State, class Event>
  void entity(dom::entity_kind kind, const std::string& id, State& st,
              const std::vector<Event>& events, void (*apply)(State&, const Event&),
              std::string (*encode)(const Event&), std::string (*encode_snapshot)(const State&),
              kind_stats& stats) {
    std::vector<std::string> encoded, snapshots;
    encoded.reserve(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      encoded.push_back(encode(events[i]));
      apply(st, events[i]);
      if ((i + 1) % opts_.snapshot_every == 0)
        snapshots.push_back(encode_snapshot(st));
    }
    stats.add(events.size(), encode_snapshot(st).size());
    journal(static_cast<uint8_t>(kind), id, std::move(encoded),
            [&](uint64_t seq) { return snapshots.at(seq / opts_.snapshot_every - 1); });
  }

  /// Writes one entity's whole journal: requests of at most `snapshot_every` events, split at
  /// the multiples of snapshot_every, each such request carrying the snapshot at its last seq.
  /// `snapshot_at(seq)` encodes the state after event `seq`.
  template <class SnapshotAt>
  void journal(uint8_t kind, const std::string& id, std::vector<std::string> events,
               SnapshotAt snapshot_at) {
    ps::entity_key key{ordermesh::cluster::shard_of(kind, id, static_cast<uint16_t>(opts_.shards)),
                       kind, id};
    uint64_t seq = 1;
    size_t i = 0;
    while (i < events.size()) {
      ps::write_request req;
      req.key = key;
      req.first_seq = seq;
      uint64_t room = opts_.snapshot_every - ((seq - 1) % opts_.snapshot_every);
      while (i < events.size() && room-- > 0) {
        req.events.push_back(std::move(events[i++]));
        ++seq;
      }
      uint64_t last = seq - 1;
      if (last % opts_.snapshot_every == 0)
        req.snapshot = snapshot_at(last);
      submit(std::move(req));
    }
  }

  void wait_all() {
    while (done_.load() < submitted_)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  bool failed() const { return failed_.load(); }
  std::string failure() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

 private:
  void submit(ps::write_request req) {
    for (;;) {
      ps::status why;
      auto copy = req;  // submit consumes the request even when it refuses it
      bool ok = engine_.submit(
          std::move(copy),
          [this](const ps::status& st) {
            if (!st.is_ok() && !failed_.exchange(true)) {
              std::lock_guard<std::mutex> lock(mutex_);
              failure_ = st.to_string();
            }
            done_.fetch_add(1);
          },
          &why);
      if (ok) {
        ++submitted_;
        return;
      }
      if (why.kind() != ps::status::code::overloaded) {
        std::cerr << "ordermesh_loader: write refused: " << why.to_string() << "\n";
        std::exit(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  ps::storage_engine& engine_;
  const options& opts_;
  uint64_t submitted_ = 0;
  std::atomic<uint64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::string failure_;
};

constexpr int64_t day_ms = 24LL * 3600 * 1000;

int64_t price_of(uint64_t p) {
  return 100 + static_cast<int64_t>(p % 900);
}
int64_t quantity_of(uint64_t order, uint64_t item) {
  return 1 + static_cast<int64_t>((order + item) % 3);
}

bool parse_u64(const char* text, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  auto v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0')
    return false;
  out = v;
  return true;
}

int usage() {
  std::cerr << "usage: ordermesh_loader --data-dir DIR [--users N] [--products N] [--orders N]\n"
               "         [--items K] [--shards N] [--snapshot-every N]\n"
               "writes DIR/db for `orderd --data-dir DIR --shards N` (default 64 shards)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help")
      return usage();
    if (i + 1 >= argc)
      return usage();
    const char* v = argv[++i];
    uint64_t n = 0;
    if (a == "--data-dir") {
      o.data_dir = v;
      continue;
    }
    if (!parse_u64(v, n))
      return usage();
    if (a == "--users")
      o.users = n;
    else if (a == "--products")
      o.products = n;
    else if (a == "--orders")
      o.orders = n;
    else if (a == "--items")
      o.items = n;
    else if (a == "--shards")
      o.shards = static_cast<uint32_t>(n);
    else if (a == "--snapshot-every")
      o.snapshot_every = n;
    else
      return usage();
  }
  if (o.data_dir.empty() || o.users == 0 || o.products == 0 || o.items == 0 ||
      o.items > o.products || o.items > dom::limits::max_items || o.shards == 0 ||
      o.shards > ordermesh::cluster::max_shard_count || o.snapshot_every == 0)
    return usage();
  ::mkdir(o.data_dir.c_str(), 0755);

  auto t0 = std::chrono::steady_clock::now();
  ps::storage_options sopts;
  sopts.path = o.data_dir + "/db";
  sopts.sync = false;
  ps::status st;
  auto engine = ps::storage_engine::open(sopts, &st);
  if (!engine) {
    std::cerr << "ordermesh_loader: cannot open " << sopts.path << ": " << st.to_string() << "\n";
    return 1;
  }
  // orderd refuses to start with another --shards than the data was sharded for.
  std::string stored;
  if (engine->get_meta("shard_count", &stored).is_ok() && stored != std::to_string(o.shards)) {
    std::cerr << "ordermesh_loader: " << sopts.path << " has shard_count " << stored << "\n";
    return 1;
  }
  if (auto s = engine->put_meta("shard_count", std::to_string(o.shards)); !s.is_ok()) {
    std::cerr << "ordermesh_loader: " << s.to_string() << "\n";
    return 1;
  }

  writer w(*engine, o);
  const int64_t base = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() -
                       30 * day_ms;
  auto order_at = [&](uint64_t i) { return base + static_cast<int64_t>(i) * 2; };
  auto oid = [](uint64_t i) { return "o" + std::to_string(i); };
  auto uid = [](uint64_t i) { return "u" + std::to_string(i); };
  auto pid = [](uint64_t i) { return "p" + std::to_string(i); };
  kind_stats users, products, inventories, orders;

  // Products.
  for (uint64_t p = 0; p < o.products; ++p) {
    dom::product::state s;
    s.product_id = pid(p);
    std::vector<dom::product::event> evs{
        dom::product::created{"product " + std::to_string(p), price_of(p), base - day_ms}};
    w.entity(dom::entity_kind::product, s.product_id, s, evs, dom::product::apply,
             dom::product::encode, dom::product::encode_snapshot, products);
  }

  // Orders (and the per-product list of (order, quantity) for the inventories).
  std::vector<std::vector<std::pair<uint32_t, uint8_t>>> by_product(o.products);
  for (uint64_t i = 0; i < o.orders; ++i) {
    dom::order::state s;
    s.order_id = oid(i);
    dom::order::placed pl;
    pl.user_id = uid(i % o.users);
    for (uint64_t j = 0; j < o.items; ++j) {
      uint64_t p = (i * o.items + j) % o.products;
      pl.items.push_back(dom::order_item{pid(p), quantity_of(i, j), price_of(p)});
      pl.total_cents += quantity_of(i, j) * price_of(p);
      by_product[p].emplace_back(static_cast<uint32_t>(i), static_cast<uint8_t>(quantity_of(i, j)));
    }
    int64_t at = order_at(i);
    pl.at_ms = at;
    std::vector<dom::order::event> evs{pl, dom::order::reserved{at + 1, at + 1 + 15 * 60 * 1000},
                                       dom::order::payment_started{at + 2},
                                       dom::order::debited{at + 3}, dom::order::paid{at + 4}};
    w.entity(dom::entity_kind::order, s.order_id, s, evs, dom::order::apply, dom::order::encode,
             dom::order::encode_snapshot, orders);
  }

  // Users: enough money for all their orders.
  for (uint64_t u = 0; u < o.users; ++u) {
    dom::user::state s;
    s.user_id = uid(u);
    // The shape of a real Argon2id hash (crypto_pwhash_str); nobody logs in with it.
    std::string hash = "$argon2id$v=19$m=65536,t=2,p=1$bG9hZGVyc2FsdDAwMDAwMA$" +
                       std::string(43, static_cast<char>('A' + u % 26));
    std::vector<dom::user::event> evs{
        dom::user::registered{"user " + std::to_string(u), hash, base - 2 * day_ms},
        dom::user::deposited{"initial", 1000000000}};
    for (uint64_t i = u; i < o.orders; i += o.users) {
      evs.push_back(dom::user::order_linked{oid(i)});
      int64_t total = 0;
      for (uint64_t j = 0; j < o.items; ++j)
        total += quantity_of(i, j) * price_of((i * o.items + j) % o.products);
      evs.push_back(dom::user::debited{oid(i), total});
    }
    w.entity(dom::entity_kind::user, s.user_id, s, evs, dom::user::apply, dom::user::encode,
             dom::user::encode_snapshot, users);
  }

  // Inventories: stock for every order, then a reservation and its commit per order item.
  for (uint64_t p = 0; p < o.products; ++p) {
    dom::inventory::state s;
    s.product_id = pid(p);
    std::vector<dom::inventory::event> evs{dom::inventory::stock_added{"initial", 100000}};
    int64_t need = 0;
    for (auto& [i, q] : by_product[p]) {
      need += q;
      evs.push_back(dom::inventory::reserved{oid(i), q});
      evs.push_back(dom::inventory::committed{oid(i)});
    }
    std::get<dom::inventory::stock_added>(evs[0]).quantity = std::max<int64_t>(100000, need);
    by_product[p].clear();
    by_product[p].shrink_to_fit();
    w.entity(dom::entity_kind::inventory, s.product_id, s, evs, dom::inventory::apply,
             dom::inventory::encode, dom::inventory::encode_snapshot, inventories);
  }

  w.wait_all();
  auto stats = engine->stats();
  engine.reset();  // commits and closes
  if (w.failed()) {
    std::cerr << "ordermesh_loader: a write failed: " << w.failure() << "\n";
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "{\"seconds\":" << secs << ",\"entities\":"
            << users.entities + products.entities + inventories.entities + orders.entities
            << ",\"events\":" << stats.events << ",\"writes\":" << stats.writes
            << ",\"bytes\":" << stats.bytes << ",\"shards\":" << o.shards << ","
            << users.json("user") << "," << products.json("product") << ","
            << inventories.json("inventory") << "," << orders.json("order") << "}" << std::endl;
  return 0;
}
