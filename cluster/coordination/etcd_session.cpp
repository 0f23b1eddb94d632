#include "cluster/coordination/etcd_session.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

#include "cluster/coordination/coordination_codec.hpp"
#include "cluster/etcd/etcd_client.hpp"
#include "cluster/etcd/etcd_watch.hpp"

namespace ordermesh::cluster::coordination {

namespace {

using etcd::compare;
using etcd::compare_result;
using std::chrono::milliseconds;

/// etcd's default --max-txn-ops is 128; a bootstrap writes at most this many shards per txn.
constexpr std::size_t shards_per_txn = 100;
/// How often join tries to create its member key when others keep racing it.
constexpr int join_attempts = 3;
/// Bounds the lines a wait_change reads (each returns, skips a stale batch or a notice).
constexpr int max_watch_lines = 100'000;

error fail(errc code, std::string message) {
  return error{code, std::move(message)};
}

/// An etcd client error as a coordination error: what the caller can do about it.
error from_etcd(const etcd::error& e, std::string_view op) {
  errc code = errc::unavailable;
  switch (e.code) {
    case etcd::errc::not_found:  // the only not_found etcd sends is for a lease
      code = errc::lease_lost;
      break;
    case etcd::errc::invalid_argument:
      code = errc::invalid;
      break;
    case etcd::errc::http_error:
      // A 4xx is a request etcd will never take (too many ops, a value too large); 408 and 429
      // (too many requests) and 5xx pass.
      code = e.http_status >= 400 && e.http_status < 500 && e.http_status != 408 &&
                     e.http_status != 429
                 ? errc::invalid
                 : errc::unavailable;
      break;
    default:  // unavailable, timeout, compacted, bad_response, too_large, closed, internal
      code = errc::unavailable;
      break;
  }
  return fail(code, std::string(op) + ": " + etcd::to_string(e));
}

const etcd::range_response* range_at(const etcd::txn_response& t, std::size_t i) {
  if (i >= t.responses.size())
    return nullptr;
  return std::get_if<etcd::range_response>(&t.responses[i]);
}

const etcd::key_value* first_kv(const etcd::range_response* r) {
  return r && !r->kvs.empty() ? &r->kvs.front() : nullptr;
}

etcd::range_request range_key(std::string key) {
  etcd::range_request r;
  r.key = std::move(key);
  return r;
}

etcd::range_request range_prefix(const std::string& prefix) {
  etcd::range_request r;
  r.key = prefix;
  r.range_end = etcd::prefix_end(prefix);
  return r;
}

etcd::put_request put(std::string key, std::string value, int64_t lease = 0) {
  etcd::put_request p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

class etcd_session final : public session {
 public:
  explicit etcd_session(etcd_session_config cfg)
      : cfg_(std::move(cfg)), keys_(cfg_.cluster), client_(cfg_.endpoints, cfg_.client) {
    if (!codec::key_layout::valid_cluster_name(cfg_.cluster)) {
      config_error_ = fail(errc::invalid, "bad cluster name \"" + cfg_.cluster +
                                              "\" (letters, digits, '-', '_', '.')");
    } else if (cfg_.call_timeout <= milliseconds::zero()) {
      config_error_ = fail(errc::invalid, "the per-call timeout must be > 0");
    }
  }

  std::string_view kind() const override { return "etcd"; }

  result<member_record> join(const member_info& me, milliseconds ttl) override {
    return guarded("join", [&] { return do_join(me, ttl); });
  }

  result<member_record> update(const member_info& me) override {
    return guarded("update", [&] { return do_update(me); });
  }

  result<milliseconds> keepalive() override {
    return guarded("keepalive", [&] { return do_keepalive(); });
  }

  result<bool> leave() override {
    return guarded("leave", [&] { return do_leave(); });
  }

  result<bool> depose_controller(const member_record& controller) override {
    return guarded("depose controller", [&] { return do_depose(controller); });
  }

  result<member_record> campaign() override {
    return guarded("campaign", [&] { return do_campaign(); });
  }

  result<cluster_state> read() override {
    return guarded("read", [&] { return do_read(); });
  }

  result<bool> bootstrap(const cluster_config& config,
                         const std::vector<shard_assignment>& shards) override {
    return guarded("bootstrap", [&] { return do_bootstrap(config, shards); });
  }

  result<bool> write_shard(const shard_assignment& next, int64_t expected_revision) override {
    return guarded("write_shard", [&] { return do_write_shard(next, expected_revision); });
  }

  result<bool> write_departure(departure_kind kind, const departure_record& r) override {
    return guarded("write_departure", [&] { return do_write_departure(kind, r); });
  }

  result<bool> forget_departure(departure_kind kind, const std::string& node_id,
                                int64_t expected_revision) override {
    return guarded("forget_departure",
                   [&] { return do_forget_departure(kind, node_id, expected_revision); });
  }

  result<int64_t> wait_change(int64_t after, milliseconds timeout) override {
    return guarded("wait_change", [&] { return do_wait_change(after, timeout); });
  }

  result<std::string> claim_secret_fingerprint(const std::string& fingerprint) override {
    return guarded("claim_secret_fingerprint",
                   [&] { return do_claim_secret_fingerprint(fingerprint); });
  }

 private:
  /// Runs `f`; whatever it throws (only bad_alloc is expected) becomes an error.
  template <class F>
  static auto guarded(const char* op, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      return fail(errc::unavailable, std::string(op) + ": " + e.what());
    } catch (...) {
      return fail(errc::unavailable, std::string(op) + ": unknown exception");
    }
  }

  result<member_record> do_join(const member_info& me, milliseconds ttl) {
    if (config_error_)
      return *config_error_;
    if (me.node_id.empty())
      return fail(errc::invalid, "empty node id");
    if (ttl <= milliseconds::zero())
      return fail(errc::invalid, "ttl must be > 0");
    const int64_t ttl_s = std::max<int64_t>(1, (ttl.count() + 999) / 1000);  // etcd raises it
    auto grant = client_.lease_grant(ttl_s, 0, by());
    if (!grant)
      return from_etcd(grant.err(), "join: lease grant");
    const int64_t lease = grant->id;
    // Whatever goes wrong from here, the new lease must not linger.
    auto abandon = [&](error e) {
      (void)client_.lease_revoke(lease, by());
      return e;
    };

    member_record rec{me.node_id, me.cluster_address, me.client_address, me.leaving, 0, me.disk};
    rec.draining = me.draining;
    const std::string key = keys_.member(me.node_id);
    for (int attempt = 0; attempt < join_attempts; ++attempt) {
      // Create the member key only if absent: its create revision is the new incarnation.
      // And only while no removal of this id is under way (docs/REPLICATION.md, "A member that
      // dies for good"): a node back on a disk the cluster is replacing must not serve it.
      const std::string removal = keys_.departure(departure_kind::removed, me.node_id);
      etcd::txn_request create;
      create.compares.push_back(compare::absent(key));
      create.compares.push_back(compare::absent(removal));
      create.success.push_back(put(key, codec::encode_member(rec), lease));
      create.failure.push_back(range_key(key));
      create.failure.push_back(range_key(removal));
      auto t = client_.txn(create, by());
      if (!t)  // if it was applied after all, revoking the lease deletes the key again
        return abandon(from_etcd(t.err(), "join: create member key"));
      if (!t->succeeded && first_kv(range_at(*t, 1)))
        return abandon(fail(errc::invalid,
                            "join: " + me.node_id +
                                " was removed from the cluster (cluster.remove-member or "
                                "--dead-member-timeout) and its replicas are being replaced; it "
                                "can join again, as a new member, once that has finished"));
      if (t->succeeded) {
        node_id_ = me.node_id;
        incarnation_ = t->revision;
        lease_id_ = lease;
        rec.incarnation = t->revision;
        me_ = rec;
        return rec;
      }
      // An earlier life's key is there. Revoke its lease: that deletes the key and any
      // controller key held under it, as the memory store does. Then delete the key itself if it
      // is still there (bound to no lease, or the revoke lost a race), guarded by its mod revision
      // so that only that very key goes.
      const etcd::key_value* old = first_kv(range_at(*t, 0));
      if (!old)
        continue;  // gone meanwhile: try again
      if (old->lease != 0 && old->lease != lease) {
        auto revoked = client_.lease_revoke(old->lease, by());
        if (!revoked && revoked.err().code != etcd::errc::not_found)
          return abandon(from_etcd(revoked.err(), "join: revoke the earlier life's lease"));
      }
      etcd::txn_request remove;
      remove.compares.push_back(compare::mod(key, compare_result::equal, old->mod_revision));
      etcd::delete_request del;
      del.key = key;
      remove.success.push_back(del);
      auto r = client_.txn(remove, by());
      if (!r)
        return abandon(from_etcd(r.err(), "join: delete the earlier life's key"));
    }
    return abandon(fail(errc::unavailable, "join: the member key of " + me.node_id +
                                               " kept being recreated by someone else"));
  }

  result<member_record> do_update(const member_info& me) {
    if (auto e = check_joined())
      return *e;
    if (me.node_id != node_id_)
      return fail(errc::invalid, "cannot update another member");
    member_record rec{me.node_id, me.cluster_address, me.client_address,
                      me.leaving, incarnation_,       me.disk};
    rec.draining = me.draining;
    etcd::txn_request t;
    t.compares.push_back(current());
    t.success.push_back(put(keys_.member(node_id_), codec::encode_member(rec), lease_id_));
    auto r = client_.txn(t, by());
    if (!r)
      return from_etcd(r.err(), "update");
    if (!r->succeeded)
      return fenced();
    me_ = rec;
    return rec;
  }

  result<milliseconds> do_keepalive() {
    if (auto e = check_joined())
      return *e;
    auto k = client_.lease_keepalive(lease_id_, by());
    if (!k)
      return from_etcd(k.err(), "keepalive");
    if (*k <= 0)
      return fail(errc::lease_lost, "lease " + std::to_string(lease_id_) + " expired or revoked");
    // The lease lives; is the member key still this life's? (A rejoin elsewhere replaces it.)
    auto r = client_.range(range_key(keys_.member(node_id_)), by());
    if (!r)
      return from_etcd(r.err(), "keepalive: read member key");
    if (r->kvs.empty() || r->kvs.front().create_revision != incarnation_)
      return fenced();
    return milliseconds(*k * 1000);
  }

  result<bool> do_leave() {
    if (auto e = check_joined())
      return *e;
    auto r = client_.lease_revoke(lease_id_, by());
    if (!r && r.err().code != etcd::errc::not_found)
      return from_etcd(r.err(), "leave");
    incarnation_ = 0;
    lease_id_ = 0;
    return true;
  }

  result<member_record> do_campaign() {
    if (auto e = check_joined())
      return *e;
    // Create the controller key only if absent, and only while this life is current. If not,
    // the same txn reads who holds it and every member (to tell fenced from lost).
    etcd::txn_request t;
    t.compares.push_back(compare::absent(keys_.controller()));
    t.compares.push_back(current());
    t.success.push_back(
        put(keys_.controller(), codec::encode_controller({node_id_, incarnation_}), lease_id_));
    t.failure.push_back(range_key(keys_.controller()));
    t.failure.push_back(range_prefix(keys_.members_prefix()));
    auto r = client_.txn(t, by());
    if (!r)
      return from_etcd(r.err(), "campaign");
    if (r->succeeded)
      return me_;
    const etcd::key_value* ctl = first_kv(range_at(*r, 0));
    const etcd::range_response* members = range_at(*r, 1);
    if (!members)
      return fail(errc::unavailable, "campaign: etcd answered without the failure reads");
    std::vector<member_record> records;
    bool ours = false;
    for (const auto& kv : members->kvs) {
      auto p = keys_.parse(kv.key);
      if (p.what != codec::key_layout::kind::member)
        continue;
      if (p.node_id == node_id_ && kv.create_revision == incarnation_)
        ours = true;
      auto m = codec::decode_member(kv.value);
      if (!m)
        continue;  // only the controller's record matters here; read() reports bad values
      m.value().incarnation = kv.create_revision;
      records.push_back(std::move(m.value()));
    }
    if (!ours)
      return fenced();
    if (!ctl)  // cannot happen: the txn failed, so with our key current the controller existed
      return fail(errc::unavailable, "campaign: the controller key vanished; try again");
    auto c = codec::decode_controller(ctl->value);
    if (!c)
      return fail(errc::invalid, "key " + ctl->key + ": " + c.err().message);
    return codec::resolve_controller(c.value(), records);
  }

  result<bool> do_depose(const member_record& controller) {
    if (auto e = check_joined())
      return *e;
    // Only that very controller's key goes (its value names the node and its incarnation), and
    // only while this life is current; if refused, read our member key to tell fenced apart.
    etcd::txn_request t;
    t.compares.push_back(
        compare::value_is(keys_.controller(), compare_result::equal,
                          codec::encode_controller({controller.node_id, controller.incarnation})));
    t.compares.push_back(current());
    etcd::delete_request del;
    del.key = keys_.controller();
    t.success.push_back(del);
    t.failure.push_back(range_key(keys_.member(node_id_)));
    auto r = client_.txn(t, by());
    if (!r)
      return from_etcd(r.err(), "depose controller");
    if (r->succeeded)
      return true;
    const etcd::key_value* mine = first_kv(range_at(*r, 0));
    if (!mine || mine->create_revision != incarnation_)
      return fenced();
    return false;
  }

  result<cluster_state> do_read() {
    if (config_error_)
      return *config_error_;
    auto r = client_.range(range_prefix(keys_.prefix()), by());
    if (!r)
      return from_etcd(r.err(), "read");
    auto st = codec::decode_state(keys_, r->revision, r->kvs);
    if (st) {
      cached_config_ = st.value().config;
      cached_shards_ = st.value().shards;
    }
    return st;
  }

  result<bool> do_bootstrap(const cluster_config& config,
                            const std::vector<shard_assignment>& shards) {
    if (auto e = check_joined())
      return *e;
    if (config.cluster_id.empty())
      return fail(errc::invalid, "empty cluster id");
    if (config.shard_count == 0 || shards.size() != config.shard_count)
      return fail(errc::invalid, "need one assignment per shard");
    if (config.replication_factor == 0 || config.min_insync == 0)
      return fail(errc::invalid, "replication factor and min in-sync must be >= 1");
    for (size_t i = 0; i < shards.size(); ++i) {
      if (shards[i].shard != i || shards[i].epoch == 0 || shards[i].primary.empty())
        return fail(errc::invalid, "assignment " + std::to_string(i) + " is malformed");
    }
    // The shards first, in txns etcd takes (at most 128 ops), then the config that makes them
    // count. Every txn only while no config exists and this life is current.
    std::vector<shard_assignment> written = shards;
    for (size_t from = 0; from < shards.size(); from += shards_per_txn) {
      const size_t to = std::min(shards.size(), from + shards_per_txn);
      etcd::txn_request t = guarded_bootstrap_txn();
      for (size_t i = from; i < to; ++i) {
        t.success.push_back(
            put(keys_.shard(static_cast<uint16_t>(i)), codec::encode_shard(shards[i])));
      }
      auto r = client_.txn(t, by());
      if (!r)
        return from_etcd(r.err(), "bootstrap: write shards");
      if (!r->succeeded)
        return bootstrap_refused(*r);
      for (size_t i = from; i < to; ++i)
        written[i].mod_revision = r->revision;
    }
    etcd::txn_request t = guarded_bootstrap_txn();
    t.success.push_back(put(keys_.config(), codec::encode_config(config)));
    auto r = client_.txn(t, by());
    if (!r)
      return from_etcd(r.err(), "bootstrap: write config");
    if (!r->succeeded)
      return bootstrap_refused(*r);
    cached_config_ = config;
    cached_shards_ = std::move(written);
    return true;
  }

  result<bool> do_write_shard(const shard_assignment& next, int64_t expected_revision) {
    if (auto e = check_joined())
      return *e;
    if (next.primary.empty())
      return fail(errc::invalid, "no primary");
    // The shard as it was at expected_revision: from the last read if that is the one, else
    // from etcd (together with the config, for the shard count).
    std::optional<shard_assignment> cur;
    if (cached_config_ && next.shard >= cached_config_->shard_count)
      return no_such_shard(next.shard);
    if (next.shard < cached_shards_.size() &&
        cached_shards_[next.shard].mod_revision == expected_revision) {
      cur = cached_shards_[next.shard];
    } else {
      etcd::txn_request look;
      look.success.push_back(range_key(keys_.config()));
      look.success.push_back(range_key(keys_.shard(next.shard)));
      auto r = client_.txn(look, by());
      if (!r)
        return from_etcd(r.err(), "write_shard: read shard");
      const etcd::key_value* cfg = first_kv(range_at(*r, 0));
      if (!cfg)
        return no_such_shard(next.shard);
      auto c = codec::decode_config(cfg->value);
      if (!c)
        return fail(errc::invalid, "key " + cfg->key + ": " + c.err().message);
      if (next.shard >= c.value().shard_count)
        return no_such_shard(next.shard);
      const etcd::key_value* kv = first_kv(range_at(*r, 1));
      if (!kv)
        return fail(errc::invalid, "key " + keys_.shard(next.shard) + " is missing");
      if (kv->mod_revision != expected_revision)
        return false;
      auto s = codec::decode_shard(kv->value);
      if (!s)
        return fail(errc::invalid, "key " + kv->key + ": " + s.err().message);
      cur = std::move(s.value());
    }
    if (next.epoch < cur->epoch || (next.primary != cur->primary && next.epoch <= cur->epoch)) {
      return fail(errc::invalid, "epoch " + std::to_string(next.epoch) + " after " +
                                     std::to_string(cur->epoch) + " (a new primary needs more)");
    }
    shard_assignment stored = next;
    etcd::txn_request t;
    const std::string key = keys_.shard(next.shard);
    t.compares.push_back(compare::mod(key, compare_result::equal, expected_revision));
    t.compares.push_back(current());
    t.success.push_back(put(key, codec::encode_shard(stored)));
    t.failure.push_back(range_key(keys_.member(node_id_)));
    auto r = client_.txn(t, by());
    if (!r)
      return from_etcd(r.err(), "write_shard");
    if (!r->succeeded) {
      const etcd::key_value* mine = first_kv(range_at(*r, 0));
      if (!mine || mine->create_revision != incarnation_)
        return fenced();
      return false;
    }
    if (next.shard < cached_shards_.size()) {
      stored.mod_revision = r->revision;
      cached_shards_[next.shard] = std::move(stored);
    }
    return true;
  }

  result<bool> do_write_departure(departure_kind kind, const departure_record& r) {
    if (auto e = check_joined())
      return *e;
    if (r.node_id.empty() || r.since_ms < 0)
      return fail(errc::invalid, "write_departure: no node id, or a negative time");
    etcd::txn_request t;
    const std::string key = keys_.departure(kind, r.node_id);
    t.compares.push_back(compare::absent(keys_.member(r.node_id)));  // never of a live member
    t.compares.push_back(compare::absent(key));
    t.compares.push_back(current());
    t.success.push_back(put(key, codec::encode_departure(r)));
    if (kind == departure_kind::removed) {
      etcd::delete_request clock;  // the absence clock has done its job
      clock.key = keys_.departure(departure_kind::absent, r.node_id);
      t.success.push_back(clock);
    }
    t.failure.push_back(range_key(keys_.member(node_id_)));
    t.failure.push_back(range_key(keys_.member(r.node_id)));
    t.failure.push_back(range_key(key));
    auto res = client_.txn(t, by());
    if (!res)
      return from_etcd(res.err(), "write_departure");
    auto outcome = guarded_outcome(*res);
    if (!outcome || outcome.value())
      return outcome;
    // Refused: a member again (false), or the record is there already (asked twice: true).
    return !first_kv(range_at(*res, 1)) && first_kv(range_at(*res, 2)) != nullptr;
  }

  result<bool> do_forget_departure(departure_kind kind, const std::string& node_id,
                                   int64_t expected_revision) {
    if (auto e = check_joined())
      return *e;
    etcd::txn_request t;
    const std::string key = keys_.departure(kind, node_id);
    t.compares.push_back(compare::mod(key, compare_result::equal, expected_revision));
    t.compares.push_back(current());
    etcd::delete_request del;
    del.key = key;
    t.success.push_back(del);
    t.failure.push_back(range_key(keys_.member(node_id_)));
    auto res = client_.txn(t, by());
    if (!res)
      return from_etcd(res.err(), "forget_departure");
    return guarded_outcome(*res);
  }

  /// A txn guarded by current() that reads this member's key on failure: fenced when that key
  /// is not this life's, false when another compare failed.
  result<bool> guarded_outcome(const etcd::txn_response& r) const {
    if (r.succeeded)
      return true;
    const etcd::key_value* mine = first_kv(range_at(r, 0));
    if (!mine || mine->create_revision != incarnation_)
      return fenced();
    return false;
  }

  result<int64_t> do_wait_change(int64_t after, milliseconds timeout) {
    if (config_error_)
      return *config_error_;
    const auto start = etcd::clock::now();
    const auto wait_end = start + std::max(timeout, milliseconds::zero());
    const auto hard_end = wait_end + cfg_.call_timeout;
    if (watch_ && watch_seen_ > after)
      return watch_seen_;  // events past `after` came in already
    if (watch_ && after + 1 < watch_start_)
      close_watch();  // it started later than the caller asks: events in between are not in it
    if (!watch_) {
      etcd::watch_request w;
      w.key = keys_.prefix();
      w.range_end = etcd::prefix_end(keys_.prefix());
      w.start_revision = after + 1;
      auto opened = client_.watch(w, by());
      if (!opened) {
        if (opened.err().code == etcd::errc::compacted)
          return current_revision(after, hard_end);
        return from_etcd(opened.err(), "wait_change: open watch");
      }
      watch_ = std::move(opened.value());
      watch_start_ = after + 1;
      watch_seen_ = 0;
    }
    for (int line = 0; line < max_watch_lines; ++line) {
      auto n = watch_->next(wait_end);
      if (!n) {
        if (n.err().code == etcd::errc::timeout)
          return after;
        // Broken, canceled (compacted) or closed: events may be lost. Start afresh next time
        // and send the caller to read.
        close_watch();
        return current_revision(after, hard_end);
      }
      switch (n->type) {
        case etcd::watch_response::kind::created:
        case etcd::watch_response::kind::progress:
          continue;
        case etcd::watch_response::kind::canceled:
          close_watch();
          return current_revision(after, hard_end);
        case etcd::watch_response::kind::events: {
          // The batch's own revision: that of its newest event (the header may be newer, from
          // changes elsewhere in etcd).
          int64_t rev = n->events.empty() ? n->revision : 0;
          for (const auto& e : n->events)
            rev = std::max(rev, e.kv.mod_revision);
          watch_seen_ = std::max(watch_seen_, rev);
          if (rev > after)
            return rev;
          continue;  // a batch the caller has seen already
        }
      }
    }
    return after;
  }

  result<std::string> do_claim_secret_fingerprint(const std::string& fingerprint) {
    if (config_error_)
      return *config_error_;
    if (fingerprint.empty())
      return fail(errc::invalid, "empty secret fingerprint");
    // Create it only if absent, else read it: one txn, so two first nodes cannot both win.
    const std::string key = keys_.secret_fingerprint();
    etcd::txn_request t;
    t.compares.push_back(compare::absent(key));
    t.success.push_back(put(key, fingerprint));
    t.failure.push_back(range_key(key));
    auto r = client_.txn(t, by());
    if (!r)
      return from_etcd(r.err(), "claim_secret_fingerprint");
    if (r->succeeded)
      return fingerprint;
    const etcd::key_value* kv = first_kv(range_at(*r, 0));
    if (!kv)  // deleted between the compare and the read: only by hand
      return fail(errc::unavailable, "claim_secret_fingerprint: the key vanished; try again");
    return kv->value;
  }

  etcd::deadline by() const { return etcd::deadline_after(cfg_.call_timeout); }

  std::optional<error> check_joined() const {
    if (config_error_)
      return config_error_;
    if (incarnation_ == 0)
      return fail(errc::not_joined, "join first");
    return std::nullopt;
  }

  /// This life's member key still exists with its incarnation as create revision.
  compare current() const {
    return compare::create(keys_.member(node_id_), compare_result::equal, incarnation_);
  }

  error fenced() const {
    return fail(errc::fenced, "incarnation " + std::to_string(incarnation_) + " of " + node_id_ +
                                  " is not current");
  }

  static error no_such_shard(uint16_t shard) {
    return fail(errc::invalid, "no shard " + std::to_string(shard));
  }

  /// A txn guarded by "no config yet" and "this life is current", reading both if refused.
  etcd::txn_request guarded_bootstrap_txn() const {
    etcd::txn_request t;
    t.compares.push_back(compare::absent(keys_.config()));
    t.compares.push_back(current());
    t.failure.push_back(range_key(keys_.member(node_id_)));
    t.failure.push_back(range_key(keys_.config()));
    return t;
  }

  /// Why a guarded bootstrap txn was refused: fenced, or a config exists (false).
  result<bool> bootstrap_refused(const etcd::txn_response& r) const {
    const etcd::key_value* mine = first_kv(range_at(r, 0));
    if (!mine || mine->create_revision != incarnation_)
      return fenced();
    if (first_kv(range_at(r, 1)))
      return false;
    return fail(errc::unavailable, "bootstrap: refused for no reason etcd showed; try again");
  }

  /// The store's current revision (at least `after`), by `hard_end` at the latest.
  result<int64_t> current_revision(int64_t after, etcd::deadline hard_end) {
    auto req = range_key(keys_.config());
    req.count_only = true;
    auto r = client_.range(req, std::min(by(), hard_end));
    if (!r)
      return from_etcd(r.err(), "wait_change: the watch broke, and reading the revision failed");
    return std::max(after, r->revision);
  }

  void close_watch() {
    if (watch_)
      watch_->close();
    watch_.reset();
    watch_start_ = 0;
    watch_seen_ = 0;
  }

  etcd_session_config cfg_;
  codec::key_layout keys_;
  std::optional<error> config_error_;
  etcd::client client_;

  std::string node_id_;
  member_record me_;  // this life's record as last written
  int64_t incarnation_ = 0;
  int64_t lease_id_ = 0;

  // From the last read() (and this session's own writes since): write_shard checks its epoch
  // rules against them when the caller's expected revision is theirs.
  std::optional<cluster_config> cached_config_;
  std::vector<shard_assignment> cached_shards_;

  // One watch on the prefix, kept across wait_change calls.
  std::unique_ptr<etcd::watch_stream> watch_;
  int64_t watch_start_ = 0;  // the revision it started from
  int64_t watch_seen_ = 0;   // the newest revision it delivered
};

}  // namespace

std::unique_ptr<session> make_etcd_session(etcd_session_config cfg) {
  return std::make_unique<etcd_session>(std::move(cfg));
}

}  // namespace ordermesh::cluster::coordination
