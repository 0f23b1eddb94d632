#include "cluster/replication/follower_log.hpp"

#include <algorithm>

namespace ordermesh::cluster::replication {

std::string_view to_string(append_outcome o) {
  switch (o) {
    case append_outcome::apply:
      return "apply";
    case append_outcome::duplicate:
      return "duplicate";
    case append_outcome::stale_epoch:
      return "stale_epoch";
    case append_outcome::gap:
      return "gap";
    case append_outcome::unsynced:
      return "unsynced";
  }
  return "unknown";
}

std::string_view to_string(sync_outcome o) {
  switch (o) {
    case sync_outcome::truncate:
      return "truncate";
    case sync_outcome::stale_epoch:
      return "stale_epoch";
    case sync_outcome::full_copy:
      return "full_copy";
  }
  return "unknown";
}

bool follower_log::observe_epoch(epoch_number e) {
  if (e <= s_.seen_epoch)
    return false;
  s_.seen_epoch = e;
  return true;
}

sync_verdict follower_log::sync(const announcement& a) {
  sync_verdict v;
  if (a.epoch < s_.seen_epoch)
    return v;  // stale_epoch
  if (a.epoch == s_.synced_epoch) {
    // Synced already (a repeated announcement): nothing to cut, our log is a prefix of the
    // primary's. Acknowledge what we hold.
    v.outcome = sync_outcome::truncate;
    v.to = s_.end;
    return v;
  }
  auto common = common_prefix(s_.history, s_.end, a.history, a.log_end);
  if (!common) {
    observe_epoch(a.epoch);
    v.outcome = sync_outcome::full_copy;
    return v;
  }
  s_.seen_epoch = a.epoch;
  s_.synced_epoch = a.epoch;
  v.outcome = sync_outcome::truncate;
  v.to = *common;
  v.cut = *common < s_.end;
  s_.end = *common;
  s_.committed = std::min(s_.committed, s_.end);
  // From here on the positions we hold and those we will take are the primary's: its history
  // describes them (up to `common` both agree anyway).
  s_.history = a.history;
  return v;
}

append_verdict follower_log::accept(const append_request& r) {
  append_verdict v;
  if (r.epoch < s_.seen_epoch)
    return v;  // stale_epoch
  if (r.epoch != s_.synced_epoch) {
    v.outcome = append_outcome::unsynced;
    return v;
  }
  if (r.last >= r.first && r.first > s_.end + 1) {
    v.outcome = append_outcome::gap;
    v.from = s_.end + 1;
    return v;
  }
  if (r.last < r.first || r.last <= s_.end) {
    v.outcome = append_outcome::duplicate;
  } else {
    v.outcome = append_outcome::apply;
    v.from = std::max(r.first, s_.end + 1);
    v.to = r.last;
    s_.end = r.last;
  }
  v.ack = s_.end;
  s_.committed = std::max(s_.committed, std::min(r.commit, s_.end));
  return v;
}

bool follower_log::install_copy(const announcement& a) {
  if (a.epoch < s_.seen_epoch)
    return false;
  s_.seen_epoch = a.epoch;
  s_.synced_epoch = a.epoch;
  s_.end = a.log_end;
  s_.committed = std::min(s_.committed, s_.end);
  // The whole history, starts beyond log_end included: they describe what comes next.
  s_.history = a.history;
  return true;
}

promote_verdict follower_log::promote(epoch_number e) {
  promote_verdict v;
  if (e < s_.seen_epoch)
    return v;
  if (e != s_.synced_epoch) {
    // The history may name epochs beyond our end (a primary's, copied at sync, for positions
    // we had not received): they are not ours to continue.
    s_.history.truncate_after(s_.end);
    if (!s_.history.begin(e, s_.end + 1))
      return v;
    s_.seen_epoch = e;
    s_.synced_epoch = e;
  }
  v.outcome = promote_outcome::ok;
  v.first_word = {e, s_.end, s_.history};
  return v;
}

}  // namespace ordermesh::cluster::replication
