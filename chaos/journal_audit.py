"""The one-writer-per-entity audit, over a dump of every node's journal (optional input).

The history alone cannot show two writers of one entity; the journals can. `ordermesh-journal
dump` (nodes/journal_dump.hpp) dumps one stopped node; the chaos runner merges the dumps of all
nodes into one object of this shape (JSON; all keys but `entries` optional):

    {"version": 1,
     "entries": [                                   # every journal record of every node
       {"node": "n1", "shard": 3, "epoch": 2, "kind": "order", "id": "o1", "seq": 1,
        "digest": "9f2c..."},                       # digest: any hash of the event bytes
       {"node": "n1", "shard": 3, "epoch": 2, "kind": "order", "id": "o1", "seq": 40,
        "snapshot": true}                           # a snapshot covering seqs 1..40
     ],
     "shard_epochs": {"n1": {"3": [1, 2, 4]}},      # per node and shard: the epochs it owned
                                                    # the shard under, in the order it did
     "owned": {"n1": {"3": {"epoch": 4, "owned": true}}},   # per node and shard: its ownership
                                                    # record now (owned, or released at epoch)
     "replayed": [                                  # the state replaying the journal gives
       {"node": "n1", "owned": true, "kind": "order", "id": "o1", "state": {"status": "PAID", ...},
        "snapshot_consistent": true}
     ],
     "errors": ["n2: user/u9 on shard 4: event at seq 3 does not decode"]}

ordermesh's journal stores no epoch per event (the storage engine checks the shard epoch when it
writes and does not record it), so its dumps have no `epoch` in entries and a one-element
`shard_epochs` list (the latest record); the epoch rules are then checked across nodes by
`ownership`.

Rules (rule names in the violations):
  contiguous     per node and entity, the event seqs have no gap and no duplicate, and start
                 at 1 (or right after a snapshot of that entity: pruned events are fine)
  epochs         per node and entity, epochs never decrease as seqs grow; per node and shard,
                 shard_epochs never decrease
  forked         one (kind, id, seq) on two nodes with different digests: two writers
                 (a copy made by a handoff has the same digest)
  ownership      per shard, across nodes: exactly one node holds an owned record, and its epoch
                 is the highest any node recorded for the shard (no other node owns or released
                 it at a later epoch). With deposed_ok (replicated clusters), a node that still
                 owns the shard at a lower epoch is a deposed primary that has not heard of its
                 successor (killed before it could step down): storage fences its writes by the
                 epoch, so only two owners at the top epoch are two writers
  replay         the state replaying the journal of the shard's owner gives differs from the
                 final read of that entity, beyond what can legitimately happen after the read
                 (see _replay_explained); or a snapshot differs from replaying all its events
  insync_copies  (replication_factor > 1 only) every entity that an acknowledged write touched
                 (an ok order.place / order.pay / order.cancel, user.deposit, user.register,
                 inventory.add, product.create) is held by at least `min_insync` (default 2)
                 nodes' journals: a node holds it if its journal has the highest seq any node
                 has for it, or replays to the final read of it (or legitimately ahead of it,
                 _replay_explained). The final read comes after every acknowledged write, so a
                 node that holds it holds every acknowledged write of the entity
  dump           the dump reported a record it could not decode, or a node it could not dump

`observed_epochs` (optional; the chaos runner's EpochMonitor samples every node's cluster.status
while the scenario runs): {node: {shard: [[epoch, primary], ...]}}, the (epoch, primary) pairs
each node's view of the shard map went through, in order. Rule `epochs` also checks them: per
node and shard the epoch never decreases, and across nodes one epoch of a shard names one primary
(a promotion or a move raises the epoch by a guarded txn, so two primaries at one epoch are two
writers the fence cannot tell apart).
"""

import json
from collections import defaultdict

from chaos.facts import STATUS_SUCCESSORS, norm_items
from chaos.invariants import Finding

NAME = "one_writer_per_entity"
DESCRIPTION = ("one writer per entity: journal seqs contiguous, shard epochs never going back, "
               "replay gives the served state")


def load(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def audit(journal, facts, deposed_ok=False, **limits):
    """The Finding of the audit; skipped (ok, with a reason) when no journal is given."""
    out = Finding(NAME, DESCRIPTION, **limits)
    if journal is None:
        out.skipped = "no journal_audit given"
        return out
    # A replicated cluster's dump says so: a killed primary's stale ownership is then expected.
    deposed_ok = deposed_ok or (journal.get("replication_factor") or 1) > 1
    for err in journal.get("errors") or ():
        out.add(f"journal dump: {err}", [{"error": err}], rule="dump")
    entries = []
    for e in journal.get("entries") or ():
        if isinstance(e, dict) and isinstance(e.get("seq"), int) and not isinstance(e["seq"], bool):
            entries.append(e)
        else:
            out.add("malformed journal entry (needs an integer seq)", [e], rule="malformed")
    _per_entity(entries, out)
    _forks(entries, out)
    for node, shards in sorted((journal.get("shard_epochs") or {}).items()):
        for shard, epochs in sorted(shards.items()):
            for a, b in zip(epochs, epochs[1:]):
                if b < a:
                    out.add(f"node {node} shard {shard}: epoch went back from {a} to {b}",
                            [{"node": node, "shard": shard, "epochs": epochs}], rule="epochs")
                    break
    _observed_epochs(journal.get("observed_epochs"), out)
    _ownership(journal.get("owned"), out, deposed_ok)
    _replay(journal.get("replayed") or (), facts, out)
    if (journal.get("replication_factor") or 1) > 1:
        _insync_copies(journal, entries, facts, out)
    return out


def _observed_epochs(observed, out):
    """Per node and shard, the epochs its view went through never decrease; per shard and
    epoch, every node's view names the same primary."""
    primary_at = {}  # (shard, epoch) -> (primary, node that saw it)
    for node, shards in sorted((observed or {}).items()):
        for shard, pairs in sorted((shards or {}).items()):
            last = None
            for pair in pairs or ():
                epoch, primary = pair[0], pair[1] if len(pair) > 1 else None
                if last is not None and epoch < last:
                    out.add(f"node {node} shard {shard}: its view of the shard's epoch went back "
                            f"from {last} to {epoch}",
                            [{"node": node, "shard": shard, "observed": pairs}], rule="epochs")
                    break
                last = epoch
                if primary is None:
                    continue
                seen = primary_at.setdefault((str(shard), epoch), (primary, node))
                if seen[0] != primary:
                    out.add(f"shard {shard} epoch {epoch}: {seen[1]} saw primary {seen[0]}, "
                            f"{node} saw {primary}: two primaries at one epoch",
                            [{"node": seen[1], "shard": shard, "epoch": epoch,
                              "primary": seen[0]},
                             {"node": node, "shard": shard, "epoch": epoch, "primary": primary}],
                            rule="epochs")
                    primary_at[(str(shard), epoch)] = (primary, node)  # report once per pair


# the entity an acknowledged write of each operation touched (its first, synchronous step)
_WRITES = {"order.place": ("order", "order_id"), "order.pay": ("order", "order_id"),
           "order.cancel": ("order", "order_id"), "user.deposit": ("user", "user_id"),
           "user.register": ("user", "user_id"), "inventory.add": ("inventory", "product_id"),
           "product.create": ("product", "product_id")}


def _insync_copies(journal, entries, facts, out):
    """Every entity an acknowledged write touched is held by >= min_insync nodes (above)."""
    need = journal.get("min_insync") or 2
    acked = {}
    for op in facts.history.ops:
        w = _WRITES.get(op.op)
        if op.outcome == "ok" and w and op.args.get(w[1]) is not None:
            acked.setdefault((w[0], op.args[w[1]]), op)
    if not acked:
        return
    seqs = defaultdict(dict)    # (kind, id) -> {node: highest seq}
    for e in entries:
        key = (e.get("kind"), e.get("id"))
        if key in acked:
            held = seqs[key]
            held[e.get("node")] = max(held.get(e.get("node"), 0), e["seq"])
    states = defaultdict(dict)  # (kind, id) -> {node: replayed state}
    by_entity = defaultdict(list)
    for rep in journal.get("replayed") or ():
        if isinstance(rep, dict) and isinstance(rep.get("state"), dict):
            key = (rep.get("kind"), rep.get("id"))
            by_entity[key].append(rep)
            if key in acked:
                states[key][rep.get("node")] = rep["state"]
                if isinstance(rep.get("seq"), int):
                    held = seqs[key]
                    held[rep.get("node")] = max(held.get(rep.get("node"), 0), rep["seq"])
    chosen = {k: [r for r in reps if r.get("owned", True)] or reps
              for k, reps in by_entity.items()}
    moved = _moved_orders(chosen, facts)
    for (kind, eid), op in sorted(acked.items(), key=lambda kv: str(kv[0])):
        held = seqs.get((kind, eid), {})
        top = max(held.values(), default=0)
        holders = {n for n, q in held.items() if top and q == top}
        fr = facts.final.get(kind, {}).get(eid)
        if fr is not None and fr.exists and isinstance(fr.state, dict):
            holders |= {n for n, st in states.get((kind, eid), {}).items()
                        if _replay_explained(kind, eid, st, fr.state, facts, moved) is None}
        if len(holders) < need:
            out.add(f"{kind}/{eid}: acknowledged ({op.op} ok at {op.t_complete:.3f}s), but only "
                    f"{len(holders)} node(s) hold it ({', '.join(sorted(holders)) or 'none'}; "
                    f"highest seq per node {dict(sorted(held.items()))}), fewer than "
                    f"min_insync {need}", op.records + ([fr.latest] if fr and fr.latest else []),
                    rule="insync_copies")


def _ownership(owned, out, deposed_ok=False):
    """Across nodes, per shard: one owner, at the highest epoch recorded anywhere."""
    by_shard = defaultdict(list)
    for node, shards in sorted((owned or {}).items()):
        for shard, rec in (shards or {}).items():
            if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int):
                out.add(f"node {node} shard {shard}: malformed ownership record {rec!r}",
                        [{"node": node, "shard": shard, "record": rec}], rule="malformed")
                continue
            by_shard[str(shard)].append({"node": node, "shard": shard, "epoch": rec["epoch"],
                                         "owned": bool(rec.get("owned"))})
    for shard, recs in sorted(by_shard.items(), key=lambda kv: (len(kv[0]), kv[0])):
        owners = [r for r in recs if r["owned"]]
        top = max(r["epoch"] for r in recs)
        if deposed_ok and any(r["epoch"] == top for r in owners):
            owners = [r for r in owners if r["epoch"] == top]
        if len(owners) > 1:
            out.add(f"shard {shard}: owned by {len(owners)} nodes at once ("
                    + ", ".join(f"{r['node']} at epoch {r['epoch']}" for r in owners)
                    + "): two writers", owners, rule="ownership")
        elif not owners:
            out.add(f"shard {shard}: no node owns it (latest epoch {top} released)", recs,
                    rule="ownership")
        elif owners[0]["epoch"] < top:
            above = [r for r in recs if r["epoch"] > owners[0]["epoch"]]
            out.add(f"shard {shard}: owner {owners[0]['node']} holds epoch "
                    f"{owners[0]['epoch']}, but " + ", ".join(
                        f"{r['node']} recorded epoch {r['epoch']}" for r in above)
                    + ": ownership went back", owners + above, rule="ownership")


def _replay(replayed, facts, out):
    """Compares the owner's replay of every entity with its final read."""
    by_entity = defaultdict(list)
    for rep in replayed:
        if isinstance(rep, dict):
            by_entity[(rep.get("kind"), rep.get("id"))].append(rep)
            if rep.get("snapshot_consistent") is False:
                out.add(f"{rep.get('kind')}/{rep.get('id')} on {rep.get('node')}: its latest "
                        f"snapshot plus later events differ from replaying every event",
                        [rep], rule="replay")
    chosen = {}
    for key, reps in by_entity.items():
        reps = [r for r in reps if isinstance(r.get("state"), dict)]
        # the shard's owner serves the entity; copies left on other nodes may be stale
        owners = [r for r in reps if r.get("owned", True)]
        chosen[key] = owners or reps
    moved = _moved_orders(chosen, facts)
    for (kind, eid), reps in sorted(chosen.items(), key=lambda kv: str(kv[0])):
        fr = facts.final.get(kind, {}).get(eid)
        if fr is None or not fr.exists or not reps:
            continue  # no final read (or it failed): nothing served to compare with
        served = fr.state
        why = [_replay_explained(kind, eid, r["state"], served, facts, moved) for r in reps]
        if all(w is not None for w in why):
            out.add(f"{kind}/{eid}: replaying the journal gives {why[0]}", reps + [fr.latest],
                    rule="replay")


def _differs(a, b):
    """The fields both have with different values."""
    return sorted(k for k, v in a.items() if k in b and b[k] != v)


def _moved_orders(chosen, facts):
    """Orders whose journal may have moved on after their final read: the replay differs from
    the read, or the read failed or is missing. {order_id: replayed state}. (An order without a
    journal anywhere wrote nothing, so it cannot have moved anything.)"""
    moved = {}
    for (kind, oid), reps in chosen.items():
        if kind != "order" or not reps:
            continue
        fr = facts.final["order"].get(oid)
        if fr is None or fr.state is None or any(_differs(r["state"], fr.state) for r in reps):
            moved[oid] = reps[0]["state"]
    return moved


# Above this many reachable deltas an entity is not judged (too many unknowns to be useful).
_MAX_DELTAS = 50000


def _reachable(options):
    """Every sum of one choice per item (each item: a list of tuples, the zero tuple among
    them); None when there are too many."""
    sums = {None}
    for opts in options:
        nxt = set()
        for s in sums:
            for o in opts:
                nxt.add(o if s is None else tuple(x + y for x, y in zip(s, o)))
                if len(nxt) > _MAX_DELTAS:
                    return None
        sums = nxt
    return sums


def _replay_explained(kind, eid, rep, served, facts, moved):
    """None when the replayed state `rep` may legitimately differ from the final read `served`;
    else what differs. The nodes were stopped after the final reads, and in between the cluster
    kept working: reservations expire (their orders are cancelled and release stock), and a
    request a client gave up on (`info`) may still run. So the journal may be *ahead* of a read,
    by what those can do, never behind it or elsewhere:
      order      same identity (user, items, total, created_at); a status reachable from the
                 read one; with the same status, updated_at later (expires_at, updated_at and
                 reason move only with later steps)
      user       balance - served balance = a sum of: -total or +total per order of the user
                 that moved on after its read (debited, refunded), + the amount of some of the
                 user's deposits of unknown outcome; name equal
      inventory  (available, reserved, sold) - served = a sum of one step (or reserve+commit)
                 of each order with the product that moved on, + some restocks of unknown
                 outcome
      others     every field both have equal"""
    diff = _differs(rep, served)
    if not diff:
        return None
    what = f"other {diff} than the node serves"
    if kind == "order":
        if any(k in diff for k in ("order_id", "user_id", "total_cents", "created_at")) or (
                "items" in diff and norm_items(rep.get("items"), True)
                != norm_items(served.get("items"), True)):
            return what + " (another identity)"
        was, now = served.get("status"), rep.get("status")
        if now not in STATUS_SUCCESSORS.get(was, ()):
            return what + f" (status {now} cannot follow the served {was})"
        if was == now and not rep.get("updated_at", 0) > served.get("updated_at", 0):
            return what + " (same status, no later step)"
        return None
    if kind == "user":
        if diff != ["balance_cents"]:
            return what
        options = [[(0,), (-st.get("total_cents", 0),), (st.get("total_cents", 0),)]
                   for st in moved.values() if st.get("user_id") == eid]
        options += [[(0,), (r.amount,)] for r in facts.deposits.values()
                    if r.entity == eid and r.outcome == "info"]
        delta = (rep["balance_cents"] - served["balance_cents"],)
    elif kind == "inventory":
        if set(diff) - {"available", "reserved", "sold"}:
            return what
        options = []
        for st in moved.values():
            for q in (i.get("quantity", 0) for i in st.get("items") or ()
                      if i.get("product_id") == eid):
                options.append([(0, 0, 0), (-q, q, 0), (q, -q, 0), (0, -q, q), (q, 0, -q),
                                (-q, 0, q)])
        options += [[(0, 0, 0), (r.amount, 0, 0)] for r in facts.restocks.values()
                    if r.entity == eid and r.outcome == "info"]
        delta = tuple(rep.get(k, 0) - served.get(k, 0) for k in ("available", "reserved", "sold"))
    else:
        return what
    sums = _reachable(options)
    if sums is None or delta in sums:
        return None
    return what + " (not explained by the orders that moved on after their read, nor by " \
        "requests of unknown outcome)"


def _per_entity(entries, out):
    by_entity = defaultdict(list)
    for e in entries:
        by_entity[(e.get("node"), e.get("kind"), e.get("id"))].append(e)
    for (node, kind, eid), es in sorted(by_entity.items(), key=lambda kv: str(kv[0])):
        name = f"node {node} {kind}/{eid}"
        events = sorted((e for e in es if not e.get("snapshot")), key=lambda e: e["seq"])
        snaps = [e["seq"] for e in es if e.get("snapshot")]
        if events:
            first = events[0]["seq"]
            if first != 1 and not any(s >= first - 1 for s in snaps):
                out.add(f"{name}: events start at seq {first}, no snapshot covers 1..{first - 1}",
                        [events[0]], rule="contiguous")
        for a, b in zip(events, events[1:]):
            if b["seq"] != a["seq"] + 1:
                what = "duplicate" if b["seq"] == a["seq"] else "gap"
                out.add(f"{name}: {what} between seq {a['seq']} and {b['seq']}", [a, b],
                        rule="contiguous")
                break
        for a, b in zip(events, events[1:]):
            if b.get("epoch", 0) < a.get("epoch", 0):
                out.add(f"{name}: epoch went back from {a.get('epoch')} at seq {a['seq']} to "
                        f"{b.get('epoch')} at seq {b['seq']}", [a, b], rule="epochs")
                break


def _forks(entries, out):
    first = {}
    reported = set()
    for e in entries:
        if e.get("snapshot") or e.get("digest") is None:
            continue
        key = (e.get("kind"), e.get("id"), e.get("seq"))
        other = first.setdefault(key, e)
        if other.get("digest") != e["digest"] and key[:2] not in reported:
            reported.add(key[:2])
            out.add(f"{key[0]}/{key[1]} seq {key[2]}: different events on {other.get('node')} "
                    f"(epoch {other.get('epoch')}) and {e.get('node')} (epoch {e.get('epoch')}): "
                    f"two writers", [other, e], rule="forked")
