// The entity layer with a real actor system and a real RocksDB in a temp dir (no sockets):
// sagas end to end, recovery equal to the live state, snapshots, passivation, supervision,
// saga resumption after a crash, request ids in the order's journal and its timeline, and every
// message type through CAF's serializer.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <rocksdb/db.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include "actors/entity_layer.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "cluster/cluster_messages.hpp"
#include "domain/order.hpp"
#include "domain/order_timeline.hpp"
#include "persistence/keys.hpp"
#include "persistence/storage_engine.hpp"

using namespace ordermesh;
using namespace ordermesh::actors;
using domain::entity_kind;
using domain::errc;
using namespace std::chrono_literals;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string pattern = "/tmp/ordermesh-actors-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const domain::principal admin{"", true};
domain::principal user(std::string id) {
  return domain::principal{std::move(id), false};
}

/// One node's entity layer: storage + actor system + supervisors. Destroying it stops
/// everything, like a process exit; a new one on the same dir recovers from disk.
class node {
 public:
  /// `before_start`: runs on the context before the entity layer starts (and wakes orders).
  explicit node(const std::string& dir, entity_settings settings = {},
                std::optional<uint64_t> fail_writes_after = {},
                std::function<void(node_context&, caf::actor_system&)> before_start = {}) {
    persistence::storage_options o;
    o.path = dir + "/db";
    o.fail_writes_after = fail_writes_after;
    persistence::status st;
    o.check_shard_epochs = true;
    storage_ = persistence::storage_engine::open(o, &st);
    REQUIRE(storage_);
    for (uint16_t shard = 0; shard < 8; ++shard)  // a single node owns every shard
      if (storage_->owned_epoch(shard) == 0)
        REQUIRE(storage_->own_shard(shard, 1).is_ok());
    add_message_types(cfg_);
    cfg_.set("scheduler.max-threads", 2);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    auto log =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    ctx_ = std::make_shared<node_context>("t1", storage_.get(), settings, 8, log);
    if (before_start)
      before_start(*ctx_, *sys_);
    layer_ = start_entity_layer(*sys_, ctx_);
  }
  ~node() {
    stop_entity_layer(layer_);
    sys_.reset();
    storage_.reset();
  }

  /// Sends (to, xs...) and waits for a View or an error (as a failure).
  template <class View, class... Ts>
  std::pair<View, domain::failure> ask(const entity_ref& to, Ts... xs) {
    caf::scoped_actor self{*sys_};
    std::pair<View, domain::failure> out;
    self->request(ctx_->route(to), 5s, to, xs...)
        .receive([&](const View& v) { out.first = v; },
                 [&](caf::error& e) { out.second = to_failure(e); });
    return out;
  }
  template <class View, class... Ts>
  View ok(const entity_ref& to, Ts... xs) {
    auto [v, f] = ask<View>(to, xs...);
    INFO(f.message);
    REQUIRE(f.code == errc::none);
    return v;
  }
  template <class... Ts>
  void tell(const entity_ref& to, Ts... xs) {
    caf::anon_send(ctx_->route(to), to, xs...);
  }

  node_context& ctx() { return *ctx_; }
  caf::actor_system& system() { return *sys_; }
  persistence::storage_engine& storage() { return *storage_; }
  /// Kills the shard supervisors, as node shutdown does (again in the destructor: a no-op).
  void stop_layer() { stop_entity_layer(layer_); }

 private:
  std::unique_ptr<persistence::storage_engine> storage_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  context_ptr ctx_;
  entity_layer layer_;
};

entity_ref u(const std::string& id) {
  return ref(entity_kind::user, id);
}
entity_ref p(const std::string& id) {
  return ref(entity_kind::product, id);
}
entity_ref inv(const std::string& id) {
  return ref(entity_kind::inventory, id);
}
entity_ref o(const std::string& id) {
  return ref(entity_kind::order, id);
}

std::vector<domain::order_item> items(std::string product, int64_t qty) {
  return {domain::order_item{std::move(product), qty, 0}};
}

/// A catalog: product `pen` at 150 cents with `stock` units; user `ann` with 10000 cents.
void seed(node& n, int64_t stock = 10) {
  n.ok<domain::product_view>(p("pen"), create_atom::value, admin, std::string("Pen"), int64_t{150});
  n.ok<domain::inventory_view>(inv("pen"), restock_atom::value, admin, std::string("r1"), stock);
  n.ok<domain::user_view>(u("ann"), register_atom::value, std::string("Ann"),
                          std::string("$argon2id$fake"));
  n.ok<domain::user_view>(u("ann"), deposit_atom::value, user("ann"), std::string("d1"),
                          int64_t{10000});
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

}  // namespace

TEST_CASE("a saga places, pays and cancels across entities") {
  temp_dir dir;
  node n(dir.path);
  seed(n);
  auto placed = n.ok<domain::order_view>(o("o1"), place_atom::value, user("ann"),
                                         std::string("ann"), items("pen", 4));
  CHECK(placed.status == uint8_t(domain::order_status::reserved));
  CHECK(placed.total_cents == 600);
  CHECK(placed.expires_at > placed.created_at);
  auto stock = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  CHECK(stock.available == 6);
  CHECK(stock.reserved == 4);

  auto paid = n.ok<domain::order_view>(o("o1"), pay_atom::value, user("ann"));
  CHECK(paid.status == uint8_t(domain::order_status::paid));
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 9400);
  stock = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  CHECK(stock.reserved == 0);
  CHECK(stock.sold == 4);

  // Paying again returns the order unchanged and charges nothing.
  CHECK(n.ok<domain::order_view>(o("o1"), pay_atom::value, user("ann")).updated_at ==
        paid.updated_at);
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 9400);

  auto cancelled = n.ok<domain::order_view>(o("o1"), cancel_atom::value, user("ann"));
  CHECK(cancelled.status == uint8_t(domain::order_status::cancelled));
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 10000);
  stock = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  CHECK(stock.available == 10);
  CHECK(stock.sold == 0);
}

TEST_CASE("a saga whose participants are all local runs to its end before anything is durable") {
  // Participants answer a local order once their write is queued, and the order asks them once
  // its own record is queued: the group commit makes the queue durable in order, so the whole
  // place (record, link, reservation, RESERVED) can wait for one fsync. The client's answer
  // still waits until everything it shows is durable.
  temp_dir dir;
  node n(dir.path);
  seed(n);
  std::promise<void> writer_blocked;
  std::promise<void> release_writer;
  auto released = release_writer.get_future().share();
  persistence::write_request barrier;  // nothing to write: it only holds the writer thread
  REQUIRE(n.storage().submit(barrier, [&writer_blocked, released](const persistence::status&) {
    writer_blocked.set_value();
    released.wait();
  }));
  writer_blocked.get_future().wait();
  auto before = n.storage().stats().writes;

  auto reply = std::async(std::launch::async, [&n] {
    return n.ask<domain::order_view>(o("o1"), place_atom::value, user("ann"), std::string("ann"),
                                     items("pen", 4));
  });
  // placed, the user's link, the reservation and RESERVED: all queued behind the blocked writer
  bool all_queued = eventually([&n] { return n.storage().stats().queued >= 4; });
  CHECK(all_queued);
  CHECK(reply.wait_for(100ms) == std::future_status::timeout);  // nothing durable: no answer
  CHECK(n.storage().stats().writes == before);
  release_writer.set_value();

  auto [placed, failure] = reply.get();
  REQUIRE(failure.code == errc::none);
  CHECK(placed.status == uint8_t(domain::order_status::reserved));
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).reserved == 4);
}

TEST_CASE("an order that cannot be reserved is rejected and releases what it held") {
  temp_dir dir;
  node n(dir.path);
  seed(n, 3);
  n.ok<domain::product_view>(p("cap"), create_atom::value, admin, std::string("Cap"), int64_t{500});
  n.ok<domain::inventory_view>(inv("cap"), restock_atom::value, admin, std::string("r1"),
                               int64_t{100});
  std::vector<domain::order_item> both{{"cap", 2, 0}, {"pen", 5, 0}};
  auto rejected =
      n.ok<domain::order_view>(o("o2"), place_atom::value, user("ann"), std::string("ann"), both);
  CHECK(rejected.status == uint8_t(domain::order_status::rejected));
  CHECK(rejected.reason.rfind("out_of_stock", 0) == 0);
  CHECK(n.ok<domain::inventory_view>(inv("cap"), read_atom::value, admin).available == 100);
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).available == 3);
  // Placing it again with the same content answers the order as it is.
  auto again =
      n.ok<domain::order_view>(o("o2"), place_atom::value, user("ann"), std::string("ann"), both);
  CHECK(again.updated_at == rejected.updated_at);
  // Other content under the same id is a conflict.
  auto [v, f] = n.ask<domain::order_view>(o("o2"), place_atom::value, user("ann"),
                                          std::string("ann"), items("cap", 1));
  CHECK(f.code == errc::conflict);
}

TEST_CASE("payment without funds is refused and the order stays reserved") {
  temp_dir dir;
  node n(dir.path);
  seed(n, 1000);
  n.ok<domain::order_view>(o("big"), place_atom::value, user("ann"), std::string("ann"),
                           items("pen", 100));  // 15000 cents > 10000
  auto [v, f] = n.ask<domain::order_view>(o("big"), pay_atom::value, user("ann"));
  CHECK(f.code == errc::insufficient_funds);
  auto now = n.ok<domain::order_view>(o("big"), read_atom::value, user("ann"));
  CHECK(now.status == uint8_t(domain::order_status::reserved));
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 10000);
}

TEST_CASE("state recovered from the journal and snapshots equals the live state") {
  temp_dir dir;
  entity_settings s;
  s.snapshot_every = 3;  // many snapshots, and events after the last one
  domain::inventory_view live_stock;
  domain::user_view live_user;
  std::vector<domain::order_view> live_orders;
  {
    node n(dir.path, s);
    seed(n, 50);
    for (int i = 0; i < 7; ++i) {
      auto id = "o" + std::to_string(i);
      n.ok<domain::order_view>(o(id), place_atom::value, user("ann"), std::string("ann"),
                               items("pen", 1 + i));
      if (i % 3 == 1)
        n.ok<domain::order_view>(o(id), pay_atom::value, user("ann"));
      if (i % 3 == 2)
        n.ok<domain::order_view>(o(id), cancel_atom::value, user("ann"));
    }
    live_stock = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
    live_user = n.ok<domain::user_view>(u("ann"), read_atom::value, admin);
    for (int i = 0; i < 7; ++i)
      live_orders.push_back(
          n.ok<domain::order_view>(o("o" + std::to_string(i)), read_atom::value, admin));
  }
  node n(dir.path, s);
  persistence::recovered_entity rec;
  persistence::entity_key key{n.ctx().shard_of(inv("pen")), uint8_t(entity_kind::inventory), "pen"};
  REQUIRE(n.storage().load(key, rec).is_ok());
  CHECK(rec.snapshot_seq > 0);  // recovery really went through a snapshot
  auto stock = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  CHECK(stock.available == live_stock.available);
  CHECK(stock.reserved == live_stock.reserved);
  CHECK(stock.sold == live_stock.sold);
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents ==
        live_user.balance_cents);
  for (int i = 0; i < 7; ++i) {
    auto got = n.ok<domain::order_view>(o("o" + std::to_string(i)), read_atom::value, admin);
    CHECK(got.status == live_orders[i].status);
    CHECK(got.updated_at == live_orders[i].updated_at);
  }
}

TEST_CASE("a large state is snapshotted in proportion to what changed, and still recovers") {
  temp_dir dir;
  entity_settings s;
  s.snapshot_every = 1;  // the event count alone would snapshot after every event
  domain::inventory_view live;
  {
    node n(dir.path, s);
    seed(n, 100);
    for (int i = 0; i < 40; ++i)
      n.ok<domain::order_view>(o("o" + std::to_string(i)), place_atom::value, user("ann"),
                               std::string("ann"), items("pen", 1));
    live = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  }
  node n(dir.path, s);
  persistence::recovered_entity rec;
  persistence::entity_key key{n.ctx().shard_of(inv("pen")), uint8_t(entity_kind::inventory), "pen"};
  REQUIRE(n.storage().load(key, rec).is_ok());
  // The inventory holds one record per order: its snapshot outgrows each event, so snapshots
  // lag behind, and what recovery replays stays below one snapshot's worth of bytes.
  REQUIRE(rec.snapshot_seq > 0);
  CHECK(!rec.events.empty());
  size_t replayed = 0;
  for (auto& e : rec.events)
    replayed += e.bytes.size();
  CHECK(replayed < rec.snapshot.size() + 64);
  auto now = n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  CHECK(now.available == live.available);
  CHECK(now.reserved == live.reserved);
  CHECK(now.reserved == 40);
}

TEST_CASE("idle entities are passivated and come back with their state") {
  temp_dir dir;
  entity_settings s;
  s.passivate_after = 100ms;
  node n(dir.path, s);
  seed(n);
  n.ok<domain::order_view>(o("o1"), place_atom::value, user("ann"), std::string("ann"),
                           items("pen", 2));
  n.ok<domain::order_view>(o("o1"), pay_atom::value, user("ann"));
  // Everything is idle and the order is terminal: all entities leave memory.
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 0; }));
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).sold == 2);
  CHECK(n.ok<domain::order_view>(o("o1"), read_atom::value, user("ann")).status ==
        uint8_t(domain::order_status::paid));
}

TEST_CASE("a settled order leaves memory sooner than the entities it used") {
  temp_dir dir;
  entity_settings s;
  s.passivate_after = 1h;
  s.passivate_settled_after = 50ms;
  node n(dir.path, s);
  seed(n);  // product, inventory and user: 3 entities
  n.ok<domain::order_view>(o("o1"), place_atom::value, user("ann"), std::string("ann"),
                           items("pen", 1));
  n.ok<domain::order_view>(o("o1"), pay_atom::value, user("ann"));
  n.ok<domain::order_view>(o("o2"), place_atom::value, user("ann"), std::string("ann"),
                           items("pen", 1));  // stays RESERVED
  // o1 (PAID) leaves; o2 (live) and the rest stay.
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 4; }));
  std::this_thread::sleep_for(300ms);
  CHECK(n.ctx().active_entities.load() == 4);
  CHECK(n.ok<domain::order_view>(o("o1"), read_atom::value, user("ann")).status ==
        uint8_t(domain::order_status::paid));
}

TEST_CASE("entities end with their supervisor (they are monitored, not linked)") {
  temp_dir dir;
  node n(dir.path);
  seed(n);
  // A RESERVED order's expiry timer keeps a reference to it in CAF's clock, so it would outlive
  // an unreferenced supervisor by the reservation TTL unless the supervisor ends it.
  n.ok<domain::order_view>(o("o1"), place_atom::value, user("ann"), std::string("ann"),
                           items("pen", 1));
  REQUIRE(n.ctx().active_entities.load() == 4);
  n.stop_layer();
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 0; }));
}

TEST_CASE("a reserved order stays in memory to keep its expiry timer") {
  temp_dir dir;
  entity_settings s;
  s.passivate_after = 50ms;
  node n(dir.path, s);
  seed(n);
  n.ok<domain::order_view>(o("o1"), place_atom::value, user("ann"), std::string("ann"),
                           items("pen", 2));
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 1; }));
  std::this_thread::sleep_for(200ms);
  CHECK(n.ctx().active_entities.load() == 1);
}

TEST_CASE("a crashed entity restarts alone and repeated crashes quarantine it") {
  temp_dir dir;
  entity_settings s;
  s.fault_injection = true;
  s.restart_limit = 3;
  s.restart_window = 10s;
  s.quarantine_for = 300ms;
  node n(dir.path, s);
  seed(n);
  n.tell(inv("pen"), crash_atom::value);
  // The next request waits for the new incarnation, which recovered from disk.
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).available == 10);
  CHECK(eventually([&] { return n.ctx().entity_restarts.load() == 1; }));
  for (int i = 0; i < 2; ++i) {  // crashes 2 and 3: still within the budget
    n.tell(inv("pen"), crash_atom::value);
    n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  }
  n.tell(inv("pen"), crash_atom::value);  // the 4th within the window: quarantined
  CHECK(eventually([&] { return n.ctx().entity_restarts.load() == 4; }));
  auto [v, f] = n.ask<domain::inventory_view>(inv("pen"), read_atom::value, admin);
  CHECK(f.code == errc::unavailable);
  CHECK(f.message.find("quarantined") != std::string::npos);
  // Other entities, even on the same shard, are untouched.
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 10000);
  // After the quarantine it serves again, state intact.
  CHECK(eventually([&] {
    auto [v2, f2] = n.ask<domain::inventory_view>(inv("pen"), read_atom::value, admin);
    return f2.code == errc::none && v2.available == 10;
  }));
}

TEST_CASE("an entity whose stored data is damaged answers corrupted and the rest serves") {
  temp_dir dir;
  entity_settings s;
  s.restart_limit = 1;  // a restart loop would quarantine it as `unavailable` at once
  persistence::entity_key damaged;
  {
    node n(dir.path, s);
    seed(n);
    damaged = {n.ctx().shard_of(p("pen")), uint8_t(entity_kind::product), "pen"};
  }
  {
    // A bit flip on disk, written through RocksDB so that only the value's checksum can tell.
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir.path + "/db", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const std::string key = persistence::keys::event(damaged, 1);
    std::string value;
    REQUIRE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
    value[1] = static_cast<char>(value[1] ^ 0x04);
    REQUIRE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  }
  node n(dir.path, s);
  for (int i = 0; i < 4; ++i) {  // from the entity itself first, then from its supervisor
    auto [v, f] = n.ask<domain::product_view>(p("pen"), read_atom::value, admin);
    INFO(f.message);
    CHECK(f.code == errc::corrupted);
    CHECK(f.message.find("product/pen") != std::string::npos);
    CHECK(f.message.find("checksum mismatch") != std::string::npos);
  }
  CHECK(n.ctx().entity_restarts.load() == 0);  // quarantined, not restarted
  // Its inventory is another entity, and the user is untouched.
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).available == 10);
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 10000);
  n.ok<domain::product_view>(p("ink"), create_atom::value, admin, std::string("Ink"), int64_t{90});
  CHECK(n.ok<domain::product_view>(p("ink"), read_atom::value, admin).price_cents == 90);
}

/// Writes what a node that died right after persisting an order's `placed` event leaves on
/// disk: that event (ann orders 3 pens) and its wakeup entry, nothing reserved yet.
void write_placed_order(const std::string& dir, const std::string& id) {
  persistence::storage_options opts;
  opts.path = dir + "/db";
  opts.check_shard_epochs = true;
  persistence::status st;
  auto storage = persistence::storage_engine::open(opts, &st);
  REQUIRE(storage);
  domain::order::state empty;
  empty.order_id = id;
  auto d = domain::order::place(empty, "ann", {domain::order_item{"pen", 3, 150}}, 1000);
  REQUIRE(d.ok());
  persistence::write_request w;
  // The shard must be the one the node computes: a throwaway context says which.
  node_context probe("p", storage.get(), {}, 8, spdlog::default_logger());
  w.key = {probe.shard_of(o(id)), uint8_t(entity_kind::order), id};
  w.first_seq = 1;
  w.shard_epoch = 1;
  w.events.push_back(domain::order::encode(d.events.front()));
  w.wakeup_due_ms = 1;
  std::promise<bool> done;
  REQUIRE(storage->submit(std::move(w),
                          [&](const persistence::status& s2) { done.set_value(s2.is_ok()); }));
  REQUIRE(done.get_future().get());
}

TEST_CASE("a saga interrupted by a crash resumes when the node starts") {
  temp_dir dir;
  {
    node n(dir.path);
    seed(n);
  }
  // Write what a node that died right after persisting `placed` leaves on disk: the event
  // and the wakeup entry, nothing reserved yet.
  write_placed_order(dir.path, "o9");
  node n(dir.path);
  // Nobody asks for o9: the wakeup scheduler activates it and the saga finishes.
  CHECK(eventually([&] {
    return n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).reserved == 3;
  }));
  auto order = n.ok<domain::order_view>(o("o9"), read_atom::value, admin);
  CHECK(order.status == uint8_t(domain::order_status::reserved));
  // The resumed steps carry a request id of their own (not an empty one): "<node>-resume-<ms>".
  auto tl = n.ok<domain::order_timeline_view>(o("o9"), timeline_atom::value, admin);
  REQUIRE(tl.steps.size() == 2);
  CHECK(tl.steps[1].step == "reserve");
  CHECK(tl.steps[1].request_id.rfind("t1-resume-", 0) == 0);
}

TEST_CASE("a saga resumes only once the read barrier confirms its state is committed") {
  temp_dir dir;
  // An order whose shard is not the inventory's: only the order's shard is replicated here.
  std::string id;
  uint16_t shard = 0;
  {
    node n(dir.path);
    seed(n);
    for (int i = 0; i < 100 && id.empty(); ++i)
      if (n.ctx().shard_of(o("o" + std::to_string(i))) != n.ctx().shard_of(inv("pen")))
        id = "o" + std::to_string(i);
    REQUIRE(!id.empty());
    shard = n.ctx().shard_of(o(id));
  }
  // What an entity restarted after a write that was never acknowledged starts from: its
  // `placed` event on this node's disk, which a replaced primary's replicas never commit.
  write_placed_order(dir.path, id);
  // The replica leader of the order's shard: it cannot confirm (this node was replaced) until
  // the test says so.
  auto confirm = std::make_shared<std::atomic<bool>>(false);
  auto asked = std::make_shared<std::atomic<int>>(0);
  caf::actor leader;
  node n(dir.path, {}, {}, [&](node_context& ctx, caf::actor_system& sys) {
    // The state goes in as spawn arguments, not captures: CAF 0.17 dereferences a null
    // argument tuple for a function actor spawned without any (UBSan: null reference).
    using flag = std::shared_ptr<std::atomic<bool>>;
    using count = std::shared_ptr<std::atomic<int>>;
    leader = sys.spawn(
        [](caf::event_based_actor*, flag confirmed, count asks) -> caf::behavior {
          return {[confirmed, asks](cluster::read_barrier_atom, uint16_t) -> caf::result<bool> {
            ++*asks;
            if (*confirmed)
              return true;
            return caf::make_error(caf::sec::request_timeout);
          }};
        },
        confirm, asked);
    ctx.set_read_barrier(
        [leader, shard](uint16_t s) { return s == shard ? leader : caf::actor{}; });
  });
  // Woken at start, the order asks and asks again, but sends no step: nothing is reserved.
  CHECK(eventually([&] { return asked->load() >= 2; }));
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).reserved == 0);
  std::this_thread::sleep_for(300ms);
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).reserved == 0);
  // Confirmed (the write committed after all, on a node still leading the shard): it resumes.
  *confirm = true;
  CHECK(eventually([&] {
    return n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).reserved == 3;
  }));
  caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);  // the system waits for it
}

TEST_CASE("a failed write is never acknowledged, and nothing after it is") {
  temp_dir dir;
  {
    node n(dir.path, {}, 12);  // 8 ownership records + seed()'s 4 batches; the next fails
    seed(n);
    auto [v, f] = n.ask<domain::user_view>(u("ann"), deposit_atom::value, user("ann"),
                                           std::string("d2"), int64_t{5});
    CHECK(f.code == errc::unavailable);
    CHECK_FALSE(n.storage().health().is_ok());
    // The entity restarted from disk: the refused deposit is not in its state. (A read sent
    // while the failed incarnation is still going down bounces with `unavailable`: retry.)
    CHECK(eventually([&] {
      auto [v1, f1] = n.ask<domain::user_view>(u("ann"), read_atom::value, admin);
      return f1.code == errc::none && v1.balance_cents == 10000;
    }));
    // ...and the engine refuses every later write.
    auto [v2, f2] = n.ask<domain::user_view>(u("ann"), deposit_atom::value, user("ann"),
                                             std::string("d3"), int64_t{7});
    CHECK(f2.code != errc::none);
  }
  node n(dir.path);
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 10000);
}

TEST_CASE("every message type survives CAF's serializer (they must cross nodes)") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  domain::order_view ov;
  ov.order_id = "o1";
  ov.items = {{"pen", 2, 150}};
  ov.status = uint8_t(domain::order_status::paid);
  domain::order_timeline_view tv;
  tv.order_id = "o1";
  tv.steps = {{"confirm", "ok", 17, "n2", "req-9"}};
  auto msg = caf::make_message(
      entity_ref{4, "o1", "req-9"}, place_atom::value, admin, std::string("ann"),
      std::vector<domain::order_item>{{"pen", 2, 0}}, ov, domain::user_view{"ann", "Ann", 5},
      credentials{"h"}, order_ids{{"a", "b"}}, domain::order_list_view{{ov}},
      domain::product_view{"pen", "Pen", 1}, domain::inventory_view{"pen", 1, 2, 3}, tv);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(msg));
  caf::message copy;
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(copy));
  REQUIRE(
      copy.match_elements<entity_ref, place_atom, domain::principal, std::string,
                          std::vector<domain::order_item>, domain::order_view, domain::user_view,
                          credentials, order_ids, domain::order_list_view, domain::product_view,
                          domain::inventory_view, domain::order_timeline_view>());
  CHECK(copy.get_as<entity_ref>(0).id == "o1");
  CHECK(copy.get_as<entity_ref>(0).req == "req-9");
  CHECK(copy.get_as<domain::order_timeline_view>(12).steps.at(0).request_id == "req-9");
  CHECK(copy.get_as<domain::order_timeline_view>(12).steps.at(0).node == "n2");
  CHECK(copy.get_as<domain::order_view>(5).items.at(0).unit_price_cents == 150);
  CHECK(copy.get_as<order_ids>(8).ids.size() == 2);
  CHECK(copy.get_as<domain::order_list_view>(9).orders.at(0).order_id == "o1");
}

// ---- issue 14: request ids and order.timeline ----

TEST_CASE("the saga records each step's request id and node and the timeline reads them back") {
  temp_dir dir;
  using steps_t = std::vector<std::tuple<std::string, std::string, std::string, std::string>>;
  auto steps_of = [](const domain::order_timeline_view& v) {
    steps_t out;
    for (auto& st : v.steps)
      out.emplace_back(st.step, st.outcome, st.node, st.request_id);
    return out;
  };
  const steps_t want = {{"place", "ok", "t1", "req-place"},
                        {"reserve", "ok", "t1", "req-place"},
                        {"pay", "started", "t1", "req-pay"},
                        {"pay", "ok", "t1", "req-pay"},
                        {"confirm", "ok", "t1", "req-pay"}};
  {
    node n(dir.path);
    seed(n);
    n.ok<domain::order_view>(ref(entity_kind::order, "o1", "req-place"), place_atom::value,
                             user("ann"), std::string("ann"), items("pen", 2));
    auto paid = n.ok<domain::order_view>(ref(entity_kind::order, "o1", "req-pay"), pay_atom::value,
                                         user("ann"));
    REQUIRE(paid.status == uint8_t(domain::order_status::paid));
    auto tl = n.ok<domain::order_timeline_view>(o("o1"), timeline_atom::value, user("ann"));
    CHECK(tl.order_id == "o1");
    CHECK_FALSE(tl.truncated);
    CHECK(steps_of(tl) == want);
    for (size_t i = 0; i < tl.steps.size(); ++i) {
      CHECK(tl.steps[i].at_ms >= paid.created_at);
      CHECK(tl.steps[i].at_ms <= paid.updated_at);
      if (i > 0)
        CHECK(tl.steps[i].at_ms >= tl.steps[i - 1].at_ms);
    }
    // Only the order's user and the admin may read it; to anyone else it does not exist.
    CHECK(steps_of(n.ok<domain::order_timeline_view>(o("o1"), timeline_atom::value, admin)) ==
          want);
    CHECK(n.ask<domain::order_timeline_view>(o("o1"), timeline_atom::value, user("bob"))
              .second.code == errc::not_found);
    CHECK(n.ask<domain::order_timeline_view>(o("never"), timeline_atom::value, admin).second.code ==
          errc::not_found);
  }
  // From disk alone, after a restart: the same steps.
  node again(dir.path);
  CHECK(steps_of(again.ok<domain::order_timeline_view>(o("o1"), timeline_atom::value, admin)) ==
        want);
}

TEST_CASE("a lapsed reservation is expired under a request id of its own") {
  temp_dir dir;
  entity_settings settings;
  settings.reservation_ttl_ms = 50;
  node n(dir.path, settings);
  seed(n);
  n.ok<domain::order_view>(ref(entity_kind::order, "o1", "req-place"), place_atom::value,
                           user("ann"), std::string("ann"), items("pen", 1));
  REQUIRE(eventually([&] {
    return n.ok<domain::order_view>(o("o1"), read_atom::value, admin).status ==
           uint8_t(domain::order_status::cancelled);
  }));
  auto tl = n.ok<domain::order_timeline_view>(o("o1"), timeline_atom::value, admin);
  REQUIRE(tl.steps.size() == 4);
  CHECK(tl.steps[1].request_id == "req-place");
  CHECK(tl.steps[2].step == "expire");
  CHECK(tl.steps[2].outcome == "started: expired");
  CHECK(tl.steps[2].request_id.rfind("t1-expiry-", 0) == 0);
  CHECK(tl.steps[3].step == "cancel");
  CHECK(tl.steps[3].request_id == tl.steps[2].request_id);
}

// ---- issue 13: entities that were never created ----

namespace {

/// Slots of every shard supervisor (one per entity it keeps: running, stopping or waiting).
uint64_t supervisor_slots(node& n) {
  caf::scoped_actor self{n.system()};
  uint64_t total = 0;
  for (auto& sup : n.ctx().supervisors())
    self->request(sup, 5s, stats_atom::value)
        .receive([&](uint64_t k) { total += k; }, [&](caf::error&) { total += 1000000; });
  return total;
}

/// True when the journal holds nothing (no event, no snapshot) for `e`.
bool nothing_on_disk(node& n, const entity_ref& e) {
  persistence::entity_key key{n.ctx().shard_of(e), e.kind, e.id};
  persistence::recovered_entity rec;
  REQUIRE(n.storage().load(key, rec).is_ok());
  return rec.last_seq == 0 && rec.events.empty() && rec.snapshot_seq == 0;
}

}  // namespace

TEST_CASE("reads of entities never created answer not_found and keep nothing") {
  temp_dir dir;
  entity_settings s;
  s.passivate_after = 1h;  // only the new rule may remove them
  node n(dir.path, s);
  seed(n);  // product, inventory, user: 3 entities stay
  REQUIRE(n.ctx().active_entities.load() == 3);
  for (int i = 0; i < 200; ++i) {
    auto id = "ghost-" + std::to_string(i);
    CHECK(n.ask<domain::user_view>(u(id), read_atom::value, admin).second.code == errc::not_found);
    CHECK(n.ask<domain::product_view>(p(id), read_atom::value, admin).second.code ==
          errc::not_found);
    CHECK(n.ask<domain::inventory_view>(inv(id), read_atom::value, admin).second.code ==
          errc::not_found);
    CHECK(n.ask<domain::order_view>(o(id), read_atom::value, admin).second.code == errc::not_found);
  }
  // The other ops that read or refuse an unknown id: order.list, login, deposit, pay, cancel.
  CHECK(n.ask<order_ids>(u("nobody"), orders_atom::value, admin).second.code == errc::not_found);
  CHECK(n.ask<credentials>(u("nobody"), creds_atom::value).second.code == errc::not_found);
  CHECK(n.ask<domain::user_view>(u("nobody"), deposit_atom::value, admin, std::string("d"),
                                 int64_t{5})
            .second.code == errc::not_found);
  CHECK(n.ask<domain::order_view>(o("nobody"), pay_atom::value, admin).second.code ==
        errc::not_found);
  CHECK(n.ask<domain::order_view>(o("nobody"), cancel_atom::value, admin).second.code ==
        errc::not_found);
  // Nothing stays: no actor, no supervisor slot, no restart counted, nothing written.
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 3; }));
  CHECK(eventually([&] { return supervisor_slots(n) == 3; }));
  CHECK(n.ctx().entity_restarts.load() == 0);
  for (auto& e :
       {u("ghost-7"), p("ghost-7"), inv("ghost-7"), o("ghost-7"), u("nobody"), o("nobody")})
    CHECK(nothing_on_disk(n, e));
  // Known entities still read as before.
  CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).available == 10);
  CHECK(n.ok<domain::product_view>(p("pen"), read_atom::value, admin).price_cents == 150);
  CHECK(n.ok<domain::user_view>(u("ann"), read_atom::value, admin).balance_cents == 10000);
}

TEST_CASE("restocking a product never created is not_found and changes nothing") {
  temp_dir dir;
  node n(dir.path);
  auto [v, f] = n.ask<domain::inventory_view>(inv("lamp"), restock_atom::value, admin,
                                              std::string("r1"), int64_t{5});
  CHECK(f.code == errc::not_found);
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 0; }));
  CHECK(nothing_on_disk(n, inv("lamp")));
  CHECK(nothing_on_disk(n, p("lamp")));
  // Who may restock is still answered first: a user gets forbidden, not a hint of existence.
  CHECK(n.ask<domain::inventory_view>(inv("lamp"), restock_atom::value, user("ann"),
                                      std::string("r1"), int64_t{5})
            .second.code == errc::forbidden);
  // Once the product exists its inventory reads as zeros and takes stock, as before.
  n.ok<domain::product_view>(p("lamp"), create_atom::value, admin, std::string("Lamp"),
                             int64_t{900});
  auto empty = n.ok<domain::inventory_view>(inv("lamp"), read_atom::value, admin);
  CHECK(empty.available == 0);
  CHECK(empty.product_id == "lamp");
  CHECK(n.ok<domain::inventory_view>(inv("lamp"), restock_atom::value, admin, std::string("r1"),
                                     int64_t{5})
            .available == 5);
  CHECK_FALSE(nothing_on_disk(n, inv("lamp")));
}

TEST_CASE("an order of a product never created is not_found and keeps nothing") {
  temp_dir dir;
  entity_settings s;
  s.passivate_after = 1h;
  node n(dir.path, s);
  seed(n);
  auto [v, f] = n.ask<domain::order_view>(o("o9"), place_atom::value, user("ann"),
                                          std::string("ann"), items("ghost", 1));
  CHECK(f.code == errc::not_found);
  CHECK(f.message.find("ghost") != std::string::npos);
  CHECK(eventually([&] { return n.ctx().active_entities.load() == 3; }));
  CHECK(nothing_on_disk(n, o("o9")));
  CHECK(nothing_on_disk(n, inv("ghost")));
  // The order id stayed free.
  CHECK(n.ok<domain::order_view>(o("o9"), place_atom::value, user("ann"), std::string("ann"),
                                 items("pen", 1))
            .status == uint8_t(domain::order_status::reserved));
}

TEST_CASE("a creation racing reads of the same unknown id is never lost") {
  temp_dir dir;
  node n(dir.path);
  auto& sys = n.system();
  for (int round = 0; round < 20; ++round) {
    auto to = p("race-" + std::to_string(round));
    // Reads before and after the create, all in flight at once: the first incarnation answers
    // not_found and asks to leave while the create is on its way; the create must land either
    // in it or in the next one, and the reads after it must see it.
    struct tally {
      int found = 0, not_found = 0, other = 0, left = 21;
    };
    std::promise<tally> done;
    auto route = n.ctx().route(to);
    // The unused int: CAF 0.17 spawns a function that takes only `self` through a null
    // shared_ptr<std::tuple<>> (UBSan: reference binding to null pointer); one argument avoids it.
    sys.spawn(
        [&done, route, to](caf::event_based_actor* a, int) {
          auto t = std::make_shared<tally>();
          auto ask = [&done, a, route, to, t](auto... xs) {
            a->request(route, 5s, to, xs...)
                .then(
                    [&done, t](const domain::product_view& pv) {
                      ++(pv.name == "X" ? t->found : t->other);
                      if (--t->left == 0)
                        done.set_value(*t);
                    },
                    [&done, t](caf::error& e) {
                      ++(to_failure(e).code == errc::not_found ? t->not_found : t->other);
                      if (--t->left == 0)
                        done.set_value(*t);
                    });
          };
          for (int i = 0; i < 10; ++i)
            ask(read_atom::value, admin);
          ask(create_atom::value, admin, std::string("X"), int64_t{1});
          for (int i = 0; i < 10; ++i)
            ask(read_atom::value, admin);
        },
        0);
    auto fut = done.get_future();
    REQUIRE(fut.wait_for(10s) == std::future_status::ready);
    auto t = fut.get();
    CHECK(t.other == 0);
    CHECK(t.found == 11);
    CHECK(t.not_found == 10);
    CHECK(n.ok<domain::product_view>(to, read_atom::value, admin).name == "X");
  }
  CHECK(n.ctx().entity_restarts.load() == 0);
}

TEST_CASE("the caps on unpaid reservations hold across a restart and free on pay and cancel") {
  temp_dir dir;
  entity_settings capped;
  capped.max_open_orders_per_user = 2;
  auto place = [](node& n, const std::string& id) {
    return n.ask<domain::order_view>(o(id), place_atom::value, user("ann"), std::string("ann"),
                                     items("pen", 1));
  };
  {
    node n(dir.path, capped);
    seed(n);
    REQUIRE(place(n, "o1").second.code == errc::none);
    REQUIRE(place(n, "o2").second.code == errc::none);
    REQUIRE(place(n, "o2").second.code == errc::none);  // a retry counts once
    CHECK(place(n, "o3").second.code == errc::limit_exceeded);
    // Refused before anything was written: no order, no stock held for it.
    CHECK(n.ask<domain::order_view>(o("o3"), read_atom::value, admin).second.code ==
          errc::not_found);
    CHECK(n.ok<domain::inventory_view>(inv("pen"), read_atom::value, admin).reserved == 2);
  }
  node n(dir.path, capped);  // the count comes back from the user's journal
  CHECK(place(n, "o3").second.code == errc::limit_exceeded);
  CHECK(n.ok<domain::order_view>(o("o1"), pay_atom::value, user("ann")).status ==
        static_cast<uint8_t>(domain::order_status::paid));
  REQUIRE(place(n, "o3").second.code == errc::none);
  CHECK(place(n, "o4").second.code == errc::limit_exceeded);
  CHECK(n.ok<domain::order_view>(o("o2"), cancel_atom::value, user("ann")).status ==
        static_cast<uint8_t>(domain::order_status::cancelled));
  CHECK(place(n, "o4").second.code == errc::none);
}
