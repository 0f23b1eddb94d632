#!/usr/bin/env python3
"""System tests of orderd's etcd coordination mode: real orderd processes and private etcds.

The tests share one etcd (etcd_harness.SharedEtcd: /usr/bin/etcd on 127.0.0.1, free ports,
--unsafe-no-fsync), each test under a --cluster name of its own; a test that kills, pauses or
restarts etcd, or reads every key in it, starts a private one (etcd_harness.Etcd). Every test
starts its own nodes (etcd_harness.EtcdCluster: --etcd URL --cluster NAME --lease-ttl 2s (3s
where leases must outlive etcd's death), --heartbeat-interval 200ms,
--pwhash fast) and ends only the pids it started. Which node leads an entity's shard is predicted with the pinned
stable hash (harness.shard_of) and the shard map from cluster.status, so the tests know which
requests must answer `unavailable` while a node is gone. Every test ends by stopping its nodes
and auditing their journals (ordermesh-journal dump + chaos/journal_audit.py: one owner
per shard at the highest epoch, no forked entity, contiguous seqs; and the owner's replay of
every entity equals what the cluster served last): no shard ever had two writers.

  * three nodes: each listed with an incarnation, one controller, 64 shards led 22/21/21; all
    keys under /ordermesh/t/; every node serves every entity
  * a fourth node joins and leads 16 shards; the data is served as before, also through it
  * a member leaves (cluster.leave): exits 0, leads nothing, data served; then the controller
    leaves too and the last node leads all 64
  * kill -9 of a non-controller: it leaves the members list, keeps its shards (they answer
    `unavailable`, the others serve); restarted, it has a higher incarnation and serves again
  * the controller killed: another member becomes controller; a joining node gets shards
  * the controller killed while a shard move is in flight (handoff slowed by fault injection):
    the new controller finishes or aborts it; the cluster balances again, nothing is lost
  * etcd killed: requests right after succeed (leases still valid); etcd restarted on its data
    dir: the cluster works again and a join still balances
  * etcd paused beyond the lease: every node stops serving its shards; resumed: all serve again
  * one node cut off from etcd (a TcpProxy): once its lease is surely gone it answers
    `unavailable` for its shards and the others drop it; healed, it rejoins (higher
    incarnation) and serves again
  * a node with another admin token is refused (exit 1, the log names the admin token, never
    it) before it becomes a member, and the cluster keeps serving; one with the cluster's
    token joins, and a session minted on another node works on it
  * --seeds is refused, alone and with --etcd (exit 2 within 10 s, stderr names --etcd); two
    clusters share one etcd without mixing
  * joins, kills, a controller kill and a leave under a steady stream of deposits: every
    deposit counted once, the journals show one writer per shard

Numbers are printed, never asserted on. Needs /usr/bin/etcd (Debian etcd-server): missing, the
tests fail (never skip).
"""

import json
import shutil
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

sys.path.insert(0, str(h.REPO))
from chaos import journal_audit  # noqa: E402

LEASE_TTL = "2s"         # orderd's minimum: lapsed members are noticed soonest
SURE_LEASE_TTL = "3s"    # where requests right after etcd dies must still find valid leases
GONE_TIMEOUT = 30.0      # a lapsed member must be gone from the members list by then
BACK_TIMEOUT = 45.0      # a restarted / reconnected node must be listed and serving by then
BALANCE_TIMEOUT = 120.0
CLIENT_TIMEOUT = 15.0    # socket timeout; orderd's own --request-timeout is 10 s
OPS = {"product": ("product.get", "product_id"), "inventory": ("inventory.get", "product_id"),
       "user": ("user.get", "user_id"), "order": ("order.get", "order_id")}
SLOW_HANDOFF = ["--enable-fault-injection", "--handoff-chunk-bytes", "256",
                "--handoff-chunk-delay", "150ms"]


# ---------------------------------------------------------------------------------------------
# helpers: cluster


SHARED = eh.SharedEtcd("etcd-shared")


def etcd_cluster(s, n=3, tag="t", extra_args=(), own_etcd=False, lease_ttl=LEASE_TTL):
    """A balanced cluster of n nodes: (etcd, cluster, status). On the file's shared etcd under
    a --cluster name of its own (<tag>-<k>), or, with own_etcd (a test that stops or pauses
    etcd, or reads every key in it), on a private etcd under --cluster <tag>."""
    if own_etcd:
        etcd, name = eh.Etcd(s).start(), tag
    else:
        etcd, name = SHARED.get(s), SHARED.cluster_name(tag)
    c = eh.EtcdCluster(s, etcd, name=name, lease_ttl=lease_ttl, extra_args=extra_args)
    t0 = time.monotonic()
    st = c.start(n, balance_timeout=BALANCE_TIMEOUT)
    log(f"{n} nodes balanced in {time.monotonic() - t0:.1f}s: {sorted(c.counts(st).items())}, "
        f"controller {st['controller']}, incarnations {incarnations(st)}")
    return etcd, c, st


def incarnations(st):
    return {k: m.get("incarnation") for k, m in sorted(eh.EtcdCluster.members(st).items())}


def disks(st):
    """Each member's disk identity (what an ISR entry names), from cluster.status."""
    return {k: m.get("disk") for k, m in sorted(eh.EtcdCluster.members(st).items())}


def incarnation(st, name):
    inc = eh.EtcdCluster.members(st).get(name, {}).get("incarnation")
    check(isinstance(inc, int) and not isinstance(inc, bool),
          f"incarnation of {name} is not an int: {inc!r}")
    return inc


def live(c):
    return [n for n in c.nodes if n.alive()]


def rejoined(c, observers, node, above, timeout=BACK_TIMEOUT):
    """Until every observer lists every observer + `node`, with node's incarnation > above;
    returns {observer name: status}."""
    want = sorted({n.name for n in observers} | {node.name})

    def seen():
        out = {}
        for o in observers:
            st = c.status(o)
            if st is None or sorted(c.members(st)) != want:
                return None
            inc = c.members(st)[node.name].get("incarnation")
            if not isinstance(inc, int) or inc <= above:
                return None
            out[o.name] = st
        return out
    return h.wait_until(seen, timeout, 0.2, f"{[o.name for o in observers]} to list {want}, "
                        f"{node.name} with an incarnation above {above}")


# ---------------------------------------------------------------------------------------------
# helpers: data


class Shop:
    """Products (stocked), users (with a deposit) and orders placed through the nodes in turn;
    ids carry `tag`."""

    def __init__(self, c, nodes, tag="", products=24, users=12, orders=9, stock=50,
                 money=10000):
        self.products = [f"{tag}p{i}" for i in range(products)]
        self.users = [f"{tag}u{i}" for i in range(users)]
        self.orders = []
        with c.admin(nodes[0]) as adm:
            for i, p in enumerate(self.products):
                h.create_product(adm, p, 100 + i, stock, request_id=f"init-{p}")
        for i, u in enumerate(self.users):
            with nodes[i % len(nodes)].client() as cl:
                cl.ok("user.register", {"user_id": u, "password": f"pw-{u}-secret"})
            with c.admin(nodes[(i + 1) % len(nodes)]) as adm:
                adm.ok("user.deposit", {"user_id": u, "amount_cents": money,
                                        "request_id": f"init-{u}"})
        for i in range(orders):
            oid = f"{tag}o{i}"
            picks = [self.products[(3 * i) % products], self.products[(3 * i + 1) % products]]
            items = [{"product_id": p, "quantity": 1 + k} for k, p in enumerate(picks)]
            with c.admin(nodes[i % len(nodes)]) as adm:
                o = h.settled(adm, adm.ok("order.place", {
                    "order_id": oid, "user_id": self.users[i % users], "items": items}))
            eq(o["status"], "RESERVED", f"order {oid}")
            if i % 3 != 2:
                with c.admin(nodes[(i + 1) % len(nodes)]) as adm:
                    eq(adm.ok("order.pay", {"order_id": oid})["status"], "PAID", f"pay {oid}")
            self.orders.append(oid)

    def entities(self):
        return [("product", p) for p in self.products] + \
            [("inventory", p) for p in self.products] + \
            [("user", u) for u in self.users] + [("order", o) for o in self.orders]


def read(cl, kind, ident):
    op, key = OPS[kind]
    return cl.request(op, {key: ident})


def snapshot(c, node, ents, timeout=20.0):
    """{(kind, id): result} of every entity, read through `node` (retrying retryable errors)."""
    out = {}
    with c.admin(node, timeout=CLIENT_TIMEOUT) as adm:
        for kind, ident in ents:
            op, key = OPS[kind]
            out[(kind, ident)] = adm.ok_retry(op, {key: ident}, timeout=timeout)
    return out


def compare(before, after, what):
    diff = [(k, before[k], after.get(k)) for k in before if before[k] != after.get(k)]
    eq(diff[:5], [], f"{what}: entities whose state changed ({len(diff)} of {len(before)})")


def code_of(reply):
    if reply is None:
        return "no-answer"
    return "ok" if reply.get("ok") else (reply.get("error") or {}).get("code")


def codes(c, node, ents):
    """{entity: answer code} of reading each entity through `node`; None if it cannot be
    asked (connection refused or dropped)."""
    try:
        with c.admin(node, timeout=CLIENT_TIMEOUT) as adm:
            return {e: code_of(read(adm, *e)) for e in ents}
    except (OSError, ConnectionError, ValueError, AssertionError):
        return None


def wait_codes(c, via, expected, timeout=GONE_TIMEOUT, what="the predicted answers"):
    """Until reading through each node of `via` answers expected[entity] for every entity."""
    last = {}

    def as_expected():
        for n in via:
            got = codes(c, n, list(expected))
            if got is None:
                return None
            wrong = {e: k for e, k in got.items() if k != expected[e]}
            last[n.name] = dict(list(wrong.items())[:4])
            if wrong:
                return None
        return True
    try:
        h.wait_until(as_expected, timeout, 0.3, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; differing answers (first few per node): {last}") from None


def split(c, st, ents, name):
    """(entities in shards `name` leads, the others) per the shard map in `st`."""
    mine = [e for e in ents if c.owner_of(st, *e) == name]
    return mine, [e for e in ents if e not in mine]


# ---------------------------------------------------------------------------------------------
# helpers: the journal audit


# The audit's replay rule compares with the reads of a chaos history; these tests compare the
# replays with their own final reads below, so the audit gets no history facts.
_NO_FACTS = types.SimpleNamespace(final={"order": {}, "inventory": {}, "user": {}},
                                  deposits={}, restocks={})


def journal_tool():
    path = os.environ.get("ORDERMESH_JOURNAL") or \
        str(Path(h.ARGS.orderd).parent / "ordermesh-journal")
    check(os.path.isfile(path) and os.access(path, os.X_OK),
          f"ordermesh-journal not found at {path} (build it, or set ORDERMESH_JOURNAL)")
    return path


def dump_journals(nodes, timeout=120.0):
    """ordermesh-journal dump of every (stopped) node, merged into journal_audit's format."""
    tool = journal_tool()
    merged = {"version": 1, "entries": [], "shard_epochs": {}, "owned": {}, "replayed": [],
              "errors": []}
    for n in nodes:
        p = subprocess.run([tool, "dump", "--data-dir", str(n.data_dir), "--node-id", n.name],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        check(p.returncode == 0, f"ordermesh-journal dump of {n.name} exited {p.returncode}: "
              f"{p.stderr.strip()[-500:]}")
        d = json.loads(p.stdout)
        merged["entries"] += d.get("entries") or []
        merged["replayed"] += d.get("replayed") or []
        merged["errors"] += [f"{n.name}: {e}" for e in d.get("errors") or []]
        for key in ("shard_epochs", "owned"):
            merged[key].update(d.get(key) or {})
    return merged


def stop_and_audit(c, ents=(), via=None):
    """Reads every entity of `ents` through `via` (default: the first live node), kills every
    node (by pid), dumps the journals and checks: the one-writer rules of journal_audit.py
    (one owner per shard at its highest epoch, no seq written twice with different events,
    contiguous seqs, consistent snapshots) and that the owner's replay of each entity gives
    what the cluster served last."""
    running = live(c)
    check(running, "no node left running to read the final state through")
    final = snapshot(c, via or running[0], ents) if ents else {}
    for n in running:
        n.kill()
    journal = dump_journals([n for n in c.nodes if n.starts > 0])
    finding = journal_audit.audit(journal, _NO_FACTS).result()
    eq(finding["violations"][:5], [], f"journal audit ({finding['violation_count']} "
       "violations)")
    replays = {}
    for r in journal["replayed"]:
        if r.get("owned"):
            replays.setdefault((r.get("kind"), r.get("id")), []).append(r)
    bad = []
    for key, served in final.items():
        reps = replays.get(key, [])
        if len(reps) != 1:
            bad.append(f"{key}: replayed as owned on {[r.get('node') for r in reps]}")
            continue
        state = reps[0].get("state") or {}
        diff = sorted(k for k in served if k in state and state[k] != served[k])
        if diff:
            bad.append(f"{key} on {reps[0].get('node')}: {diff} differ: replay "
                       f"{ {k: state[k] for k in diff} }, served { {k: served[k] for k in diff} }")
    eq(bad[:5], [], f"owners' replays vs final reads ({len(bad)} of {len(final)} differ)")
    owned = sum(1 for shards in journal["owned"].values() for r in shards.values()
                if r.get("owned"))
    log(f"journal audit: {len(journal['entries'])} records on {len(journal['owned'])} nodes, "
        f"{owned} owned shard records, {len(final)} entities replayed as served: one writer")


# ---------------------------------------------------------------------------------------------
# tests


def test_three_nodes_balanced():
    with h.Session("etcd-three") as s:
        etcd, c, st = etcd_cluster(s, own_etcd=True)
        names = sorted(n.name for n in c.nodes)
        for n in c.nodes:
            sn = c.status(n)
            check(sn is not None, f"{n.name} answers cluster.status")
            eq(sn.get("node_id"), n.name, "node_id")
            eq(sn.get("coordination"), "etcd", f"coordination on {n.name}")
            eq(sn.get("controller"), st["controller"], f"controller as {n.name} sees it")
            check(st["controller"] in names, f"controller {st['controller']!r} is a member")
            eq(sn.get("shard_count"), 64, "shard_count")
            ms = c.members(sn)
            eq(sorted(ms), names, f"members as {n.name} sees them")
            for name, m in ms.items():
                eq(m.get("state"), "up", f"{name}'s state")
                check(incarnation(sn, name) > 0, f"{name} has a positive incarnation")
                for f in ("cluster_address", "client_address"):
                    check(isinstance(m.get(f), str) and m[f], f"{name} has no {f}: {m}")
            eq(sorted(c.counts(sn).values()), [21, 21, 22], f"shards led per node ({n.name})")
            eq({k: m.get("shards_owned") for k, m in ms.items()}, c.counts(sn),
               f"{n.name}: members' shards_owned vs the shard map")
            eq(sorted(x["shard"] for x in sn["shards"]), list(range(64)), "shards listed")
            for x in sn["shards"]:
                eq(x.get("owner"), x.get("primary"), f"shard {x['shard']}: owner == primary")
                check(isinstance(x.get("epoch"), int) and x["epoch"] >= 1,
                      f"shard {x['shard']} epoch {x.get('epoch')!r}")
                for f in ("replicas", "isr"):
                    check(isinstance(x.get(f), list) and x["primary"] in x[f],
                          f"shard {x['shard']}: {f} {x.get(f)!r} lacks the primary")
                eq(x.get("target"), "", f"shard {x['shard']}: target when balanced")
        incs = incarnations(st)
        eq(len(set(incs.values())), 3, f"three distinct incarnations {incs}")

        # what orderd keeps in etcd: all under /ordermesh/t/, one lease per member
        keys = eh.all_keys(etcd.url)
        outside = [k for k in keys if not k.startswith("/ordermesh/t/")]
        eq(outside, [], "keys outside /ordermesh/t/")
        leases = {kv["lease"] for kv in keys.values() if kv["lease"]}
        log(f"{len(keys)} keys in etcd, {len(leases)} leases; lease-bound: "
            f"{sorted(k for k, kv in keys.items() if kv['lease'])}")
        eq(len(leases), 3, "distinct leases of the keys (one per member)")

        # create through n1, read through the others; deposits and orders across nodes
        n1, n2, n3 = c.nodes
        shop = Shop(c, [n1], tag="a")
        before = snapshot(c, n1, shop.entities())
        for n in (n2, n3):
            compare(before, snapshot(c, n, shop.entities()), f"read through {n.name}")
        by_owner = {}
        for e in shop.entities():
            by_owner[c.owner_of(st, *e)] = by_owner.get(c.owner_of(st, *e), 0) + 1
        log(f"{len(before)} entities by leading node: {dict(sorted(by_owner.items()))}")
        eq(sorted(by_owner), names, "every node leads some of the entities")
        more = Shop(c, [n2, n3, n1], tag="b", products=6, users=6, orders=6)
        for n in c.nodes:
            compare(snapshot(c, n2, more.entities()), snapshot(c, n, more.entities()),
                    f"entities made through every node, read through {n.name}")

        p = h.orderctl("--port", n3.port, "cluster-status")
        eq(p.returncode, 0, f"orderctl cluster-status (stderr {p.stderr!r})")
        log(p.stdout.rstrip())
        for name in names:
            check(name in p.stdout, f"orderctl cluster-status does not mention {name}")
        p = h.orderctl("--port", n3.port, "--json", "cluster-status")
        eq(p.returncode, 0, f"orderctl --json cluster-status (stderr {p.stderr!r})")
        raw = json.loads(p.stdout)  # the raw reply line
        eq(raw.get("result", raw).get("coordination"), "etcd", "cluster-status --json")
        stop_and_audit(c, shop.entities() + more.entities())


def test_fourth_node_joins():
    with h.Session("etcd-join") as s:
        _, c, st = etcd_cluster(s, tag="join")
        shop = Shop(c, c.nodes, tag="j")
        before = snapshot(c, c.nodes[0], shop.entities())
        epochs = {x["shard"]: x["epoch"] for x in st["shards"]}
        t0 = time.monotonic()
        n4 = c.add()
        sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        log(f"n4 joined, balanced after {time.monotonic() - t0:.1f}s: "
            f"{sorted(c.counts(sn).items())}, controller {sn['controller']}, "
            f"incarnations {incarnations(sn)}")
        eq(c.counts(sn).get("n4"), 16, "shards n4 leads")
        moved = [x for x in sn["shards"] if x["primary"] != c.owners(st)[x["shard"]]]
        check(len(moved) >= 16, f"only {len(moved)} shards changed primary")
        for x in sn["shards"]:
            old = epochs[x["shard"]]
            check(x["epoch"] > old if x in moved else x["epoch"] >= old,
                  f"shard {x['shard']} ({'moved' if x in moved else 'not moved'}): epoch "
                  f"{old} -> {x['epoch']}")
        log(f"{len(moved)} shards changed primary; epochs changed on "
            f"{sum(1 for x in sn['shards'] if x['epoch'] != epochs[x['shard']])}")
        for n in (n4, c.nodes[0]):
            compare(before, snapshot(c, n, shop.entities()), f"after the join, via {n.name}")
        with c.admin(n4) as adm:
            for u in shop.users:
                adm.ok("user.deposit", {"user_id": u, "amount_cents": 3, "request_id": "via-n4"})
                eq(adm.ok("user.get", {"user_id": u})["balance_cents"],
                   before[("user", u)]["balance_cents"] + 3, f"{u} after a deposit through n4")
        stop_and_audit(c, shop.entities())


def test_node_leaves():
    with h.Session("etcd-leave") as s:
        _, c, st = etcd_cluster(s, tag="leave")
        ctl = c.node(st["controller"])
        leaver = [n for n in c.nodes if n is not ctl][-1]
        other = next(n for n in c.nodes if n not in (ctl, leaver))
        shop = Shop(c, c.nodes, tag="l")
        before = snapshot(c, other, shop.entities())
        on_leaver, _ = split(c, st, shop.entities(), leaver.name)
        log(f"{len(on_leaver)} of {len(before)} entities are on {leaver.name}")

        def leave(node, via):
            t0 = time.monotonic()
            with c.admin(via) as adm:
                r = adm.ok("cluster.leave", {"node_id": node.name})
            eq(r.get("state", "leaving"), "leaving", f"cluster.leave reply {r}")
            try:
                code = node.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{node.name} did not exit within 60 s of cluster.leave")
            log(f"{node.name} exited with {code} {time.monotonic() - t0:.1f}s after "
                "cluster.leave")
            eq(code, 0, f"{node.name}'s exit status")

        leave(leaver, ctl)
        rest = [ctl, other]
        c.wait_members(rest, [n.name for n in rest])
        sn = c.wait_balanced([n.name for n in rest], timeout=BALANCE_TIMEOUT)
        log(f"after {leaver.name} left: {sorted(c.counts(sn).items())}, controller "
            f"{sn['controller']}")
        eq(c.counts(sn).get(leaver.name, 0), 0, f"shards {leaver.name} leads after leaving")
        for n in rest:
            compare(before, snapshot(c, n, shop.entities()), f"through {n.name}")
        with c.admin(other) as adm:  # writes to the users that lived on the leaver
            for kind, ident in on_leaver:
                if kind == "user":
                    adm.ok("user.deposit", {"user_id": ident, "amount_cents": 7,
                                            "request_id": "after-leave"})
        before = snapshot(c, other, shop.entities())

        # the controller leaves too: the last node leads everything and controls
        leave(ctl, other)
        c.wait_members([other], [other.name])
        sn = c.wait_balanced([other.name], timeout=BALANCE_TIMEOUT)
        eq((sn["controller"], c.counts(sn)), (other.name, {other.name: 64}),
           "controller and shards after the controller left")
        compare(before, snapshot(c, other, shop.entities()), f"through {other.name}")
        stop_and_audit(c, shop.entities())


def test_kill9_non_controller():
    with h.Session("etcd-kill") as s:
        _, c, st = etcd_cluster(s, tag="kill")
        victim = [n for n in c.nodes if n.name != st["controller"]][0]
        rest = [n for n in c.nodes if n is not victim]
        inc = incarnation(st, victim.name)
        shop = Shop(c, c.nodes, tag="k")
        ents = shop.entities()
        before = snapshot(c, rest[0], ents)
        on_victim, elsewhere = split(c, st, ents, victim.name)
        check(on_victim and elsewhere, "the victim leads some but not all entities")

        code = victim.kill()
        t0 = time.monotonic()
        log(f"killed {victim.name} (not the controller) with SIGKILL (exit {code})")
        seen = c.wait_members(rest, [n.name for n in rest], timeout=GONE_TIMEOUT)
        log(f"{victim.name} gone from the members {time.monotonic() - t0:.1f}s after the kill")
        for name, sn in seen.items():
            eq(c.owners(sn), c.owners(st), f"shard primaries as {name} sees them while "
               f"{victim.name} is down (nobody takes over)")
        expected = {e: "unavailable" for e in on_victim}
        expected.update({e: "ok" for e in elsewhere})
        wait_codes(c, rest, expected, what=f"exactly the entities of {victim.name} to answer "
                   "unavailable")
        log(f"{len(on_victim)} entities answer unavailable, {len(elsewhere)} are served")
        unknown = []
        with c.admin(rest[0]) as adm:
            for kind, ident in on_victim:
                if kind == "user":
                    r = adm.request("user.deposit", {"user_id": ident, "amount_cents": 11,
                                                     "request_id": "while-down"})
                    eq(code_of(r), "unavailable", f"deposit to {ident} on {victim.name}")
                    unknown.append(ident)

        victim.start()
        t0 = time.monotonic()
        seen = rejoined(c, c.nodes, victim, inc)
        log(f"{victim.name} back with incarnation {inc} -> "
            f"{incarnation(seen[victim.name], victim.name)} after "
            f"{time.monotonic() - t0:.1f}s")
        for n in c.nodes:
            compare(before, snapshot(c, n, ents), f"after the restart, via {n.name}")
        with c.admin(rest[1]) as adm:  # outcome was unknown: the same request again
            for u in unknown:
                eq(adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 11,
                                                 "request_id": "while-down"})["balance_cents"],
                   before[("user", u)]["balance_cents"] + 11, f"{u} after the retried deposit")
        c.wait_balanced(timeout=BALANCE_TIMEOUT)
        stop_and_audit(c, ents)


def test_wiped_data_dir_serves_none_of_what_it_lost():
    """A node killed, its data dir wiped, restarted under the same id: the store still names it
    primary of its shards, but its disk never saw them. It must not own them empty (that would
    answer `not_found` or zero stock for entities that exist): they answer `unavailable`, the
    other nodes' entities are served, and the node says why in its log."""
    with h.Session("etcd-wiped") as s:
        _, c, st = etcd_cluster(s, tag="wiped")
        victim = [n for n in c.nodes if n.name != st["controller"]][0]
        rest = [n for n in c.nodes if n is not victim]
        inc = incarnation(st, victim.name)
        shop = Shop(c, c.nodes, tag="w")
        ents = shop.entities()
        on_victim, elsewhere = split(c, st, ents, victim.name)
        check(on_victim and elsewhere, "the victim leads some but not all entities")
        victim.kill()
        shutil.rmtree(victim.data_dir)
        log(f"killed {victim.name} and wiped {victim.data_dir}")
        victim.start()
        rejoined(c, c.nodes, victim, inc)
        expected = {e: "unavailable" for e in on_victim}
        expected.update({e: "ok" for e in elsewhere})
        wait_codes(c, c.nodes, expected, what=f"the entities {victim.name} lost to answer "
                   "unavailable through every node, the others to be served")
        text = "".join(Path(f).read_text(errors="replace") for f in victim.all_logs()
                       if Path(f).exists())
        check("never been part of the cluster" in text,
              f"{victim.name} does not say why it refuses its shards")
        after = c.status(victim)
        eq(c.owners(after), c.owners(st), "shard primaries after the wiped node came back")
        with c.admin(rest[0]) as adm:
            for kind, ident in on_victim:
                if kind == "user":
                    r = adm.request("user.deposit", {"user_id": ident, "amount_cents": 5,
                                                     "request_id": "after-wipe"})
                    eq(code_of(r), "unavailable", f"deposit to {ident} led by the wiped node")


def test_controller_killed():
    with h.Session("etcd-ctl") as s:
        _, c, st = etcd_cluster(s, tag="ctl")
        ctl = c.node(st["controller"])
        rest = [n for n in c.nodes if n is not ctl]
        inc = incarnation(st, ctl.name)
        shop = Shop(c, c.nodes, tag="c")
        before = snapshot(c, rest[0], shop.entities())
        ctl_shards = sorted(k for k, v in c.owners(st).items() if v == ctl.name)

        ctl.kill()
        t0 = time.monotonic()
        c.wait_members(rest, [n.name for n in rest], timeout=GONE_TIMEOUT)
        new = c.wait_controller(rest, [n.name for n in rest], timeout=GONE_TIMEOUT)
        log(f"controller {ctl.name} killed; {new} is controller "
            f"{time.monotonic() - t0:.1f}s later")

        n4 = c.add()
        everyone = rest + [n4]

        def n4_has_shards():
            sts = c.statuses(everyone)
            if sts is None:
                return None
            for sn in sts:
                if not c.counts(sn).get(n4.name):
                    return None
                stuck = [k for k in ctl_shards if c.owners(sn)[k] != ctl.name]
                check(not stuck, f"shards of the dead {ctl.name} moved: {stuck}")
            return sts[0]
        sn = h.wait_until(n4_has_shards, BALANCE_TIMEOUT, 0.2,
                          f"n4 to lead shards while {ctl.name} is down")
        log(f"n4 joined under controller {sn['controller']}: {sorted(c.counts(sn).items())}")

        ctl.start()
        rejoined(c, c.nodes, ctl, inc)
        sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        log(f"{ctl.name} back: {sorted(c.counts(sn).items())}, controller {sn['controller']}")
        compare(before, snapshot(c, n4, shop.entities()), "after all that, via n4")
        stop_and_audit(c, shop.entities())


def test_controller_killed_during_a_move():
    with h.Session("etcd-ctl-move") as s:
        _, c, st = etcd_cluster(s, tag="ctl-move", extra_args=SLOW_HANDOFF)
        ctl = c.node(st["controller"])
        shop = Shop(c, c.nodes, tag="m", products=60, users=30, orders=15)
        before = snapshot(c, c.nodes[0], shop.entities())
        n4 = c.add()

        # Kill the controller while it drives a move whose source is another node (the move
        # can then be finished); only if none is seen, while any move is in flight.
        seen = []

        def a_move():
            sn = c.status(ctl)
            if not sn or not c.moving(sn):
                return None
            seen.append((sn, c.moving(sn)))
            other = {k: v for k, v in c.moving(sn).items() if c.owners(sn)[k] != ctl.name}
            return (sn, other) if other else None
        try:
            sn, in_flight = h.wait_until(a_move, 30.0, 0.02, "a move from another node")
        except AssertionError:
            check(seen, "no shard move seen in flight within 30 s of the join (with the "
                  "handoff slowed down), so no controller to kill in one")
            sn, in_flight = seen[-1]
            log("no move from a node other than the controller seen in flight: killing the "
                "controller during its own moves")
        ctl.kill()
        log(f"controller {ctl.name} killed with moves in flight {in_flight} (primaries "
            f"{ {k: c.owners(sn)[k] for k in in_flight} })")
        rest = [n for n in c.nodes if n is not ctl]
        new = c.wait_controller(rest, [n.name for n in rest], timeout=GONE_TIMEOUT)
        log(f"new controller {new}")

        def settled():
            sts = c.statuses(rest)
            if sts is None or any(set(c.moving(x)) & set(in_flight) for x in sts):
                return None
            return sts[0]
        sn = h.wait_until(settled, 60.0, 0.2, f"the moves {in_flight} to be finished or "
                          "aborted")
        log("moves in flight at the kill: " + ", ".join(
            f"shard {k} -> {t}: " + ("finished" if c.owners(sn)[k] == t else
                                     f"aborted (primary {c.owners(sn)[k]})")
            for k, t in sorted(in_flight.items())))
        ctl.start()
        sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        log(f"balanced again: {sorted(c.counts(sn).items())}, controller {sn['controller']}")
        for n in (n4, ctl):
            compare(before, snapshot(c, n, shop.entities()), f"after the moves, via {n.name}")
        stop_and_audit(c, shop.entities())


def test_etcd_restarted():
    with h.Session("etcd-restart") as s:
        etcd, c, st = etcd_cluster(s, own_etcd=True, lease_ttl=SURE_LEASE_TTL)
        shop = Shop(c, c.nodes, tag="r")
        ents = shop.entities()
        before = snapshot(c, c.nodes[0], ents)
        # one user and one product led by each node, read through every node
        picks = []
        for n in c.nodes:
            picks += [next(e for e in ents if e[0] == k and c.owner_of(st, *e) == n.name)
                      for k in ("user", "product")]
        conns = [c.admin(n, timeout=CLIENT_TIMEOUT) for n in c.nodes]
        try:
            etcd.kill()
            t0 = time.monotonic()
            failed = []
            for cl, n in zip(conns, c.nodes):
                for e in picks:
                    r = read(cl, *e)
                    if not r.get("ok"):
                        failed.append((n.name, e, r))
                for kind, u in picks:
                    if kind == "user" and c.owner_of(st, kind, u) == n.name:
                        r = cl.request("user.deposit", {"user_id": u, "amount_cents": 5,
                                                        "request_id": "etcd-down"})
                        if not r.get("ok"):
                            failed.append((n.name, ("deposit", u), r))
                        else:
                            before[("user", u)]["balance_cents"] += 5
            took = time.monotonic() - t0
        finally:
            for cl in conns:
                cl.close()
        log(f"{len(picks) * 3 + 3} requests in {took * 1000:.0f} ms right after etcd was killed")
        eq(failed, [], "requests right after etcd died (the leases are still valid)")
        etcd.restart()
        log(f"etcd back {time.monotonic() - t0:.1f}s after the kill")
        c.wait_members(c.nodes, [n.name for n in c.nodes], timeout=BACK_TIMEOUT)
        c.wait_controller(c.nodes, [n.name for n in c.nodes])
        for n in c.nodes:
            compare(before, snapshot(c, n, ents, timeout=BACK_TIMEOUT),
                    f"after etcd's restart, via {n.name}")
        sn = c.status(c.nodes[0])
        log(f"incarnations before {incarnations(st)}, after {incarnations(sn)}")
        c.add()
        sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        log(f"n4 joined after etcd's restart: {sorted(c.counts(sn).items())}")
        stop_and_audit(c, ents)


def test_etcd_paused_beyond_the_lease():
    with h.Session("etcd-pause") as s:
        etcd, c, st = etcd_cluster(s, own_etcd=True)
        shop = Shop(c, c.nodes, tag="z")
        ents = shop.entities()
        before = snapshot(c, c.nodes[0], ents)
        etcd.pause()
        t0 = time.monotonic()
        for n in c.nodes:
            mine, _ = split(c, st, ents, n.name)
            wait_codes(c, [n], {e: "unavailable" for e in mine},
                       what=f"{n.name} to answer unavailable for its own shards")
        log(f"every node answers unavailable for its shards {time.monotonic() - t0:.1f}s "
            "after etcd was paused")
        etcd.resume()
        t0 = time.monotonic()
        c.wait_members(c.nodes, [n.name for n in c.nodes], timeout=BACK_TIMEOUT)
        c.wait_controller(c.nodes, [n.name for n in c.nodes])
        for n in c.nodes:
            compare(before, snapshot(c, n, ents, timeout=BACK_TIMEOUT),
                    f"after etcd resumed, via {n.name}")
        sn = c.status(c.nodes[0])
        log(f"serving again {time.monotonic() - t0:.1f}s after etcd resumed; incarnations "
            f"before {incarnations(st)}, after {incarnations(sn)}")
        c.wait_balanced(timeout=BALANCE_TIMEOUT)
        stop_and_audit(c, ents)


def test_node_cut_off_from_etcd():
    with h.Session("etcd-cut") as s:
        etcd = SHARED.get(s)
        proxy = eh.TcpProxy(s, etcd.client_port)
        c = eh.EtcdCluster(s, etcd, name=SHARED.cluster_name("cut"), lease_ttl=LEASE_TTL)
        n1, n2 = c.add(), c.add()
        n3 = c.add(etcd_url=proxy.url)
        st = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        log(f"balanced: {sorted(c.counts(st).items())}, controller {st['controller']}; n3 "
            f"reaches etcd through the proxy ({proxy.connections()} connections)")
        inc = incarnation(st, "n3")
        shop = Shop(c, c.nodes, tag="x")
        ents = shop.entities()
        before = snapshot(c, n1, ents)
        on_n3, elsewhere = split(c, st, ents, "n3")
        check(on_n3 and elsewhere, "n3 leads some but not all entities")

        proxy.cut()
        t0 = time.monotonic()
        seen = c.wait_members([n1, n2], ["n1", "n2"], timeout=GONE_TIMEOUT)
        log(f"n1 and n2 dropped n3 {time.monotonic() - t0:.1f}s after the cut")
        for name, sn in seen.items():
            eq(c.owners(sn), c.owners(st), f"shard primaries as {name} sees them (nobody "
               "takes over)")
        wait_codes(c, [n3], {e: "unavailable" for e in on_n3},
                   what="n3 to answer unavailable for its own shards")
        log(f"n3 answers unavailable for its {len(on_n3)} entities "
            f"{time.monotonic() - t0:.1f}s after the cut")
        expected = {e: "unavailable" for e in on_n3}
        expected.update({e: "ok" for e in elsewhere})
        wait_codes(c, [n1, n2], expected, what="n1 and n2 to serve all but n3's entities")

        proxy.heal()
        t0 = time.monotonic()
        seen = rejoined(c, c.nodes, n3, inc)
        log(f"n3 rejoined with incarnation {inc} -> {incarnation(seen['n3'], 'n3')} after "
            f"{time.monotonic() - t0:.1f}s")
        for n in c.nodes:
            compare(before, snapshot(c, n, ents, timeout=BACK_TIMEOUT),
                    f"after the heal, via {n.name}")
        c.wait_balanced(timeout=BALANCE_TIMEOUT)
        stop_and_audit(c, ents)


def test_another_admin_token_is_refused():
    with h.Session("etcd-admin-token") as s:
        etcd, c, st = etcd_cluster(s, n=2, tag="adm")
        shop = Shop(c, c.nodes, tag="a", products=4, users=2, orders=2)
        before = snapshot(c, c.nodes[0], shop.entities())
        other_token = "adm-other-" + "5" * 20
        intruder = eh.ClusterNode(s, "intruder", cluster_args=c.node_args("intruder"),
                                  admin_token=other_token)
        intruder.port, intruder.cluster_port = h.free_port(), h.free_port()
        t0 = time.monotonic()
        intruder._launch()
        try:
            code = intruder.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            intruder.kill()
            raise AssertionError("a node with another admin token kept running")
        text = "".join(Path(f).read_text(errors="replace")
                       for f in (intruder.stderr_file, intruder.log_file) if Path(f).exists())
        log(f"refused after {time.monotonic() - t0:.1f}s, exit {code}: "
            f"{[x for x in text.splitlines() if 'admin token' in x][:1]}")
        eq(code, 1, f"exit code of a node with another admin token ({text[-400:]})")
        check("admin token" in text and "refused to join" in text,
              f"the refusal does not name the cause: {text[-600:]}")
        check(other_token not in text and c.admin_token not in text,
              "the refusal shows an admin token")
        # Never a member, and the cluster serves as before.
        sn = c.status(c.nodes[0])
        eq(sorted(c.members(sn)), ["n1", "n2"], "members after the refused node")
        keys = eh.ordermesh_keys(etcd.url, cluster=c.name)
        check(not any("intruder" in k for k in keys), f"the refused node left keys: {keys}")
        for n in c.nodes:
            compare(before, snapshot(c, n, shop.entities()), f"after the refusal, via {n.name}")
        # The cluster's own token joins; a session minted on n1 is good on the newcomer.
        n3 = c.add()
        c.wait_balanced(timeout=BALANCE_TIMEOUT)
        compare(before, snapshot(c, n3, shop.entities()), "through the node that joined")
        u = shop.users[0]
        with c.nodes[0].client() as cl:
            token = cl.ok("user.login", {"user_id": u, "password": f"pw-{u}-secret"})["token"]
        with n3.client(token=token) as cl:
            eq(cl.ok("user.get", {"user_id": u})["user_id"], u, "a session from n1 on n3")
        stop_and_audit(c, shop.entities())


def test_seeds_is_refused():
    """--seeds (the removed cluster mode) is refused, alone and next to --etcd: orderd exits 2
    within 10 s and its stderr names --etcd, the way to run a cluster now."""
    eh.require_etcd_mode()
    with h.Session("etcd-seeds") as s:
        wrong = []
        for with_etcd in (False, True):
            what = "--seeds with --etcd" if with_etcd else "--seeds alone"
            cmd = [str(h.ARGS.orderd), "--node-id", "n1", "--data-dir", str(s.dir / "n1-data"),
                   "--client-host", h.HOST, "--client-port", str(h.free_port()),
                   "--cluster-host", h.HOST, "--cluster-port", str(h.free_port()),
                   "--admin-token", "adm-" + "0" * 24, "--pwhash", "fast",
                   "--seeds", f"{h.HOST}:{h.free_port()}"]
            if with_etcd:
                cmd += ["--etcd", f"http://{h.HOST}:{h.free_port()}", "--cluster", "t"]
            # Popen, not run(timeout=): an orderd that accepts --seeds runs on; end it by pid
            proc = subprocess.Popen(h._launcher() + cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=h.clean_env())
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate(timeout=10)
                wrong.append(f"{what}: still running 10 s after the start (killed)")
                continue
            finally:
                if proc.poll() is None:  # interrupted (the test's time limit): end it by pid
                    proc.kill()
                    proc.wait(timeout=10)
            log(f"orderd {what}: exit {proc.returncode}: {(out + err).strip()[:300]}")
            if proc.returncode != 2:
                wrong.append(f"{what}: exit code {proc.returncode}, expected 2")
            if "--etcd" not in err:
                wrong.append(f"{what}: stderr does not name --etcd: {err.strip()[:200]!r}")
        eq(wrong, [], "orderd refusing --seeds")


def test_two_clusters_share_one_etcd():
    with h.Session("etcd-two") as s:
        etcd = eh.Etcd(s).start()
        a = eh.EtcdCluster(s, etcd, name="a", lease_ttl=LEASE_TTL)
        b = eh.EtcdCluster(s, etcd, name="b", lease_ttl=LEASE_TTL)
        a.add(name="a1")
        a.add(name="a2")
        b.add(name="b1")
        sa = a.wait_balanced(timeout=BALANCE_TIMEOUT)
        sb = b.wait_balanced(timeout=BALANCE_TIMEOUT)
        eq(sorted(a.counts(sa).items()), [("a1", 32), ("a2", 32)], "cluster a's shards")
        eq((sb["controller"], b.counts(sb)), ("b1", {"b1": 64}), "cluster b")
        check(sa["controller"] in ("a1", "a2"), f"cluster a's controller {sa['controller']}")
        with b.admin(b.nodes[0]) as adm:
            h.create_product(adm, "only-in-b", 123, 4)
        with a.admin(a.nodes[0]) as adm:
            adm.err("product.get", {"product_id": "only-in-b"}, code="not_found")
        keys = eh.all_keys(etcd.url)
        prefixes = sorted({k.split("/")[2] for k in keys if k.startswith("/ordermesh/")})
        eq(prefixes, ["a", "b"], "clusters with keys under /ordermesh/")
        eq([k for k in keys if not k.startswith(("/ordermesh/a/", "/ordermesh/b/"))], [],
           "keys outside the two clusters")
        stop_and_audit(a)
        stop_and_audit(b, [("product", "only-in-b"), ("inventory", "only-in-b")])


class Depositor:
    """A thread that deposits 1..9 cents into the users in turn through the live nodes, each
    deposit retried with its request_id until acknowledged, so every one counts exactly once;
    bounded in count and time."""

    def __init__(self, c, users, max_ops=4000, max_s=600.0):
        self.c, self.users = c, users
        self.max_ops, self.deadline = max_ops, time.monotonic() + max_s
        self.stop = threading.Event()
        self.acked = {u: 0 for u in users}
        self.pending = []          # (user, request_id, amount) without an answer yet
        self.codes = {}
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, k, user, rid, amount):
        nodes = live(self.c)
        if not nodes:
            return False
        node = nodes[k % len(nodes)]
        try:
            with self.c.admin(node, timeout=CLIENT_TIMEOUT) as adm:
                r = adm.request("user.deposit", {"user_id": user, "amount_cents": amount,
                                                 "request_id": rid})
        except (OSError, ConnectionError, ValueError, AssertionError):
            r = None
        code = code_of(r)
        self.codes[code] = self.codes.get(code, 0) + 1
        if code == "ok":
            self.acked[user] += amount
            return True
        if code not in h.RETRYABLE + ("no-answer",):
            self.error = f"deposit {rid} to {user}: {r}"
        return False

    def _run(self):
        k = 0
        while time.monotonic() < self.deadline and self.error is None:
            done = self.stop.is_set() or k >= self.max_ops
            if done and not self.pending:
                return
            if self.pending:
                user, rid, amount = self.pending[0]
            else:
                user = self.users[k % len(self.users)]
                rid, amount = f"dep-{k}", 1 + k % 9
                self.pending.append((user, rid, amount))
            if self._send(k, user, rid, amount):
                self.pending.pop(0)
            else:
                time.sleep(0.1)
            k += 1
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=60)
        check(not self.thread.is_alive(), "the depositor did not finish")
        check(self.error is None, f"depositor: {self.error}")
        eq(self.pending, [], "deposits left without an answer")
        return self.acked


def test_no_shard_had_two_writers():
    with h.Session("etcd-writers") as s:
        _, c, st = etcd_cluster(s, tag="writers")
        shop = Shop(c, c.nodes, tag="w", products=12, users=16, orders=6)
        ents = shop.entities()
        before = snapshot(c, c.nodes[0], ents)
        with Depositor(c, shop.users) as dep:
            c.add()
            sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
            log(f"joined: {sorted(c.counts(sn).items())}; deposits so far {dep.codes}")
            victim = next(n for n in c.nodes if n.name != sn["controller"])
            inc = incarnation(sn, victim.name)
            victim.kill()
            victim.start()
            rejoined(c, c.nodes, victim, inc)
            sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
            log(f"{victim.name} killed and back; deposits so far {dep.codes}")
            ctl = c.node(sn["controller"])
            inc = incarnation(sn, ctl.name)
            ctl.kill()
            rest = [n for n in c.nodes if n is not ctl]
            c.wait_controller(rest, [n.name for n in rest], timeout=GONE_TIMEOUT)
            ctl.start()
            rejoined(c, c.nodes, ctl, inc)
            sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
            log(f"controller {ctl.name} killed and back, now {sn['controller']}; deposits so "
                f"far {dep.codes}")
            leaver = next(n for n in c.nodes if n.name != sn["controller"])
            with c.admin(c.node(sn["controller"])) as adm:
                adm.ok("cluster.leave", {"node_id": leaver.name})
            try:
                eq(leaver.proc.wait(timeout=60), 0, f"{leaver.name}'s exit status")
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{leaver.name} did not exit within 60 s of cluster.leave")
            sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
            log(f"{leaver.name} left: {sorted(c.counts(sn).items())}")
            acked = dep.finish()
        log(f"deposits: {sum(acked.values())} cents acknowledged, answers {dep.codes}")
        after = snapshot(c, live(c)[0], ents)
        for u in shop.users:
            eq(after[("user", u)]["balance_cents"],
               before[("user", u)]["balance_cents"] + acked[u], f"{u}'s balance")
        stop_and_audit(c, ents)


if __name__ == "__main__":
    with SHARED:  # ends the shared etcd (by pid) however the run ends
        h.main([test_three_nodes_balanced, test_fourth_node_joins, test_node_leaves,
                test_kill9_non_controller, test_wiped_data_dir_serves_none_of_what_it_lost,
                test_controller_killed,
                test_controller_killed_during_a_move, test_etcd_restarted,
                test_etcd_paused_beyond_the_lease, test_node_cut_off_from_etcd,
                test_another_admin_token_is_refused,
                test_seeds_is_refused, test_two_clusters_share_one_etcd,
                test_no_shard_had_two_writers], __doc__)
