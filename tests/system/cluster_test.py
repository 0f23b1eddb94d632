#!/usr/bin/env python3
"""Multi-process cluster tests: several orderd on 127.0.0.1 coordinated through a private etcd.

The file shares one etcd (etcd_harness.SharedEtcd: /usr/bin/etcd on 127.0.0.1, free ports,
--unsafe-no-fsync); every test runs its own nodes under its own --cluster name
(etcd_harness.EtcdCluster: --lease-ttl 2s, --heartbeat-interval 200ms,
--pwhash fast, free ports, temp data dirs) and kills only the pids it started. Which node leads
an entity's shard is predicted with the pinned stable hash (harness.shard_of) and the shard map
from cluster.status, so the tests say which requests must fail while a node is gone. In etcd
mode shard ownership changes only through etcd: a dead or paused node's shards wait for it.
What etcd_cluster_test.py already proves (a fourth node joins, a node leaves, controller
kills, etcd itself failing, a node cut off from etcd, the journal audit) is not repeated here.

  * any node reaches the same entity (reads, writes, login tokens, request_id dedup across
    nodes); orderctl falls back to a second host and prints the cluster-status table
  * entities spread over the nodes: each node holds in memory exactly the entities of the
    shards it leads
  * orders placed, paid and cancelled through different nodes: stock and money add up through
    every node; one user's order is not visible to another
  * kill -9 of a node: exactly its entities answer `unavailable` (quickly), nobody takes its
    shards, writes to the others keep working; restarted, everything acknowledged is there
  * drain on SIGTERM (--drain): exit 0, its shards handed to the others at once (no lease
    expiry), nothing lost
  * a paused node and a paused controller (SIGSTOP until their lease is surely gone) while
    deposits go on: the others keep serving (a new controller is chosen), nobody takes the
    paused node's shards; resumed, it rejoins and every deposit counts exactly once
  * load while a node joins: acknowledged orders all there, invariants hold; prints the longest
    gap between successful requests and how long each shard handoff took (from the logs)
  * a handoff whose target dies mid-copy: the shard stays with its old leader, served again,
    nothing lost; the target back, the cluster balances as usual

Numbers are printed, never asserted on. Needs /usr/bin/etcd (Debian etcd-server): missing, the
tests fail (never skip).
"""

import datetime
import os
import random
import re
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

LEASE_TTL = "2s"         # orderd's minimum: dead and paused nodes are noticed soonest
LOAD_CLIENTS = int(os.environ.get("ORDERMESH_CLUSTER_LOAD_CLIENTS", "3"))
GONE_TIMEOUT = 30.0      # a lapsed member must be gone from the members list by then
BACK_TIMEOUT = 45.0      # a restarted / resumed node must be listed and serving by then
BALANCE_TIMEOUT = 90.0
CLIENT_TIMEOUT = 15.0    # socket timeout; orderd's own --request-timeout is 10 s
# "<time> info node=N handing shard S to T (epoch E)" / "... shard S now served by T": the
# source's side of a handoff (log lines are not an interface: only printed, or a refinement)
HANDING_RE = re.compile(r"^(\S+) \S+ node=(\S+) handing shard (\d+) to (\S+) \(epoch (\d+)\)")
SERVED_RE = re.compile(r"^(\S+) \S+ node=(\S+) shard (\d+) now served by (\S+)")
OPS = {"product": ("product.get", "product_id"), "inventory": ("inventory.get", "product_id"),
       "user": ("user.get", "user_id"), "order": ("order.get", "order_id")}
SLOW_HANDOFF = ["--enable-fault-injection", "--handoff-chunk-bytes", "256",
                "--handoff-chunk-delay", "150ms"]

SHARED = eh.SharedEtcd("cluster-etcd")


# ---------------------------------------------------------------------------------------------
# helpers


def cluster(s, tag, extra_args=()):
    """An EtcdCluster (no node yet) on the file's shared etcd, under a --cluster name of its own."""
    return eh.EtcdCluster(s, SHARED.get(s), name=SHARED.cluster_name(tag), lease_ttl=LEASE_TTL,
                          extra_args=extra_args)


def three_nodes(s, tag, extra_args=()):
    """A balanced 3-node cluster: (cluster, its status)."""
    c = cluster(s, tag, extra_args)
    t0 = time.monotonic()
    st = c.start(3, balance_timeout=BALANCE_TIMEOUT)
    log(f"3 nodes balanced in {time.monotonic() - t0:.1f}s: {sorted(c.counts(st).items())}, "
        f"controller {st['controller']}")
    return c, st


def incarnation(st, name):
    inc = eh.EtcdCluster.members(st).get(name, {}).get("incarnation")
    check(isinstance(inc, int) and not isinstance(inc, bool),
          f"incarnation of {name} is not an int: {inc!r}")
    return inc


def rejoined(c, node, above, timeout=BACK_TIMEOUT):
    """Until every node lists every node, `node` with an incarnation above `above` (it lost its
    lease and came back as a new member); returns {observer name: status}."""
    want = sorted(n.name for n in c.nodes)

    def seen():
        out = {}
        for o in c.nodes:
            st = c.status(o)
            if st is None or sorted(c.members(st)) != want:
                return None
            inc = c.members(st)[node.name].get("incarnation")
            if not isinstance(inc, int) or inc <= above:
                return None
            out[o.name] = st
        return out
    return h.wait_until(seen, timeout, 0.2, f"every node to list {want}, {node.name} with an "
                        f"incarnation above {above}")


def per_node(c, st, kind, prefix, k):
    """k ids (prefix + number) of `kind` led by each node in the shard map of `st`."""
    got = {n.name: [] for n in c.nodes}
    for i in range(10000):
        ident = f"{prefix}{i}"
        mine = got.get(c.owner_of(st, kind, ident))
        if mine is not None and len(mine) < k:
            mine.append(ident)
        if all(len(v) == k for v in got.values()):
            break
    return sorted((x for v in got.values() for x in v), key=lambda x: int(x[len(prefix):]))


def spread(c, st, kind, ids):
    """owner -> number of the ids (of `kind`) it owns."""
    out = {}
    for i in ids:
        o = c.owner_of(st, kind, i)
        out[o] = out.get(o, 0) + 1
    return dict(sorted(out.items()))


def make_catalog(adm, products, stock, price=lambda i: 100 + i):
    for i, p in enumerate(products):
        h.create_product(adm, p, price(i), stock, request_id=f"init-{p}")


def make_users(c, users, deposit):
    """Registers users through the nodes in turn and deposits `deposit` each (admin token)."""
    for i, u in enumerate(users):
        node = c.nodes[i % len(c.nodes)]
        with node.client() as cl:
            cl.ok("user.register", {"user_id": u, "password": f"pw-{u}-secret"})
        if deposit:
            with c.admin(c.nodes[(i + 1) % len(c.nodes)]) as adm:
                adm.ok("user.deposit", {"user_id": u, "amount_cents": deposit,
                                        "request_id": f"init-{u}"})


def snapshot(adm, products=(), users=(), orders=()):
    """What a client reads for every entity: {(kind, id): result}."""
    snap = {}
    for p in products:
        snap[("product", p)] = adm.ok_retry("product.get", {"product_id": p})
        snap[("inventory", p)] = adm.ok_retry("inventory.get", {"product_id": p})
    for u in users:
        snap[("user", u)] = adm.ok_retry("user.get", {"user_id": u})
    for o in orders:
        snap[("order", o)] = adm.ok_retry("order.get", {"order_id": o})
    return snap


def compare(before, after, what):
    diff = [(k, before[k], after.get(k)) for k in before if before[k] != after.get(k)]
    eq(diff[:5], [], f"{what}: entities whose state changed ({len(diff)} of {len(before)})")


def place_some_orders(c, users, products, n, prefix):
    """n orders through the nodes in turn: every third left RESERVED, one in five cancelled,
    the rest paid. Returns {order_id: order as acknowledged last}."""
    orders = {}
    for i in range(n):
        oid = f"{prefix}{i}"
        u = users[i % len(users)]
        picks = [products[(3 * i) % len(products)], products[(3 * i + 1) % len(products)]]
        items = [{"product_id": p, "quantity": 1 + (i + k) % 3} for k, p in enumerate(picks)]
        with c.admin(c.nodes[i % 3]) as a:
            o = h.settled(a, a.ok("order.place", {"order_id": oid, "user_id": u,
                                                  "items": items}))
        eq(o["status"], "RESERVED", f"order {oid}")
        if i % 3 != 2:
            with c.admin(c.nodes[(i + 1) % 3]) as a:
                o = a.ok("order.pay", {"order_id": oid})
            eq(o["status"], "PAID", f"pay {oid}")
        if i % 5 == 4:
            with c.admin(c.nodes[(i + 2) % 3]) as a:
                o = a.ok("order.cancel", {"order_id": oid})
            eq(o["status"], "CANCELLED", f"cancel {oid}")
        orders[oid] = o
    return orders


def check_books(adm, products, added, users, deposited, orders, what):
    """Stock: available+reserved+sold == added, sold/reserved match PAID/RESERVED orders.
    Money: balance == deposits - totals of PAID orders. `orders`: {id: current order}."""
    sold = {p: 0 for p in products}
    reserved = {p: 0 for p in products}
    spent = {u: 0 for u in users}
    for o in orders.values():
        for it in o["items"]:
            if o["status"] == "PAID":
                sold[it["product_id"]] += it["quantity"]
            elif o["status"] in ("RESERVED", "PENDING"):
                reserved[it["product_id"]] += it["quantity"]
        if o["status"] == "PAID":
            spent[o["user_id"]] += o["total_cents"]
    for p in products:
        a, r, s = h.inv(adm, p)
        check(min(a, r, s) >= 0, f"{what}: {p} negative stock {(a, r, s)}")
        eq(a + r + s, added[p], f"{what}: {p} available+reserved+sold")
        eq(s, sold[p], f"{what}: {p} sold vs PAID orders")
        eq(r, reserved[p], f"{what}: {p} reserved vs RESERVED orders")
    for u in users:
        bal = adm.ok_retry("user.get", {"user_id": u})["balance_cents"]
        eq(bal, deposited[u] - spent[u], f"{what}: {u} balance == deposits - PAID totals")


def _stamp(text):
    try:
        # orderd's stamps carry their UTC offset (2026-11-29T14:03:05.123+00:00)
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def handoffs_in_log(nodes, target=None):
    """[(source, shard, target, ms)] of every handoff a node of `nodes` logged as started
    ("handing shard S to T") and finished ("shard S now served by T"), from every log of each."""
    out = []
    for n in nodes:
        started = {}
        for f in n.all_logs():
            if not f.exists():
                continue
            for line in f.read_text(errors="replace").splitlines():
                m = HANDING_RE.match(line)
                if m and (target is None or m.group(4) == target):
                    started[(int(m.group(3)), m.group(4))] = _stamp(m.group(1))
                    continue
                m = SERVED_RE.match(line)
                if m:
                    t0 = started.pop((int(m.group(3)), m.group(4)), None)
                    t1 = _stamp(m.group(1))
                    if t0 is not None and t1 is not None:
                        out.append((n.name, int(m.group(3)), m.group(4),
                                    round((t1 - t0) * 1000)))
    return out


class Caller:
    """One connection per node for a worker thread; a request that gets no answer (timeout,
    dropped connection) returns None and the connection is replaced."""

    def __init__(self, token):
        self.token = token
        self.conns = {}
        self.lost = 0

    def call(self, node, op, args):
        try:
            cl = self.conns.get(node.name)
            if cl is None:
                cl = self.conns[node.name] = h.Client(node.port, timeout=CLIENT_TIMEOUT,
                                                      token=self.token)
            return cl.request(op, args)
        except (OSError, ConnectionError, AssertionError, ValueError):
            bad = self.conns.pop(node.name, None)
            if bad:
                bad.close()
            self.lost += 1
            return None

    def close(self):
        for cl in self.conns.values():
            cl.close()


def code_of(reply):
    if reply is None:
        return "no-answer"
    return "ok" if reply.get("ok") else (reply.get("error") or {}).get("code")


# ---------------------------------------------------------------------------------------------
# tests


def test_any_node_reaches_the_same_entity():
    """A product, its stock and a user made through one node read the same through every other;
    a login token from one node works on the others; a deposit repeated with its request_id
    through another node counts once. orderctl reaches the cluster through a fallback host and
    prints the etcd-mode cluster-status table (every node up, the controller, 64 shards)."""
    with h.Session("cl-any") as s:
        c, st = three_nodes(s, "any")
        n1, n2, n3 = c.nodes
        with c.admin(n1) as a1:
            a1.ok("product.create", {"product_id": "lamp", "name": "Lamp", "price_cents": 1999})
        for n in (n2, n3):
            with n.client() as cl:
                eq(cl.ok("product.get", {"product_id": "lamp"}),
                   {"product_id": "lamp", "name": "Lamp", "price_cents": 1999},
                   f"product.get through {n.name}")
        with c.admin(n2) as a2:
            a2.ok("inventory.add", {"product_id": "lamp", "quantity": 7, "request_id": "r1"})
        with n3.client() as cl:
            eq(h.inv(cl, "lamp"), (7, 0, 0), "inventory through n3 after adding through n2")

        # a user registered on n3, logged in on n1, deposits through every node
        with n3.client() as cl:
            cl.ok("user.register", {"user_id": "ann", "password": "pw-ann-secret"})
        with n1.client() as cl:
            tok = cl.ok("user.login", {"user_id": "ann", "password": "pw-ann-secret"})["token"]
        for i, (n, amount) in enumerate(((n1, 100), (n2, 250), (n3, 4000))):
            with n.client(token=tok) as cl:
                cl.ok("user.deposit", {"user_id": "ann", "amount_cents": amount,
                                       "request_id": f"dep-{i}"})
        # the same request_id again through another node is not counted twice
        with n1.client(token=tok) as cl:
            eq(cl.ok("user.deposit", {"user_id": "ann", "amount_cents": 250,
                                      "request_id": "dep-1"})["balance_cents"], 4350,
               "repeated deposit dep-1 through n1")
        for n in c.nodes:
            with n.client(token=tok) as cl:
                eq(cl.ok("user.get", {"user_id": "ann"})["balance_cents"], 4350,
                   f"balance through {n.name}")
        log("leaders: user/ann %s, product/lamp %s, inventory/lamp %s" % (
            c.owner_of(st, "user", "ann"), c.owner_of(st, "product", "lamp"),
            c.owner_of(st, "inventory", "lamp")))

        # orderctl: fallback hosts and the cluster-status table
        dead = h.free_port()
        p = h.orderctl("--host", f"{h.HOST}:{dead},{h.HOST}:{n2.port}", "--get", "balance_cents",
                       "user.get", "--user-id", "ann", token=tok)
        eq((p.returncode, p.stdout.strip()), (0, "4350"), f"orderctl with a dead first host "
           f"(stderr {p.stderr!r})")
        p = h.orderctl("--port", n3.port, "cluster-status")
        eq(p.returncode, 0, f"orderctl cluster-status (stderr {p.stderr!r})")
        log(p.stdout.rstrip())
        for n in c.nodes:
            row = [ln for ln in p.stdout.splitlines() if ln.split()[:2] == [n.name, "up"]]
            check(row, f"cluster-status has no 'up' row for {n.name}")
        check("through etcd" in p.stdout, "cluster-status says the cluster is coordinated "
              "through etcd")
        check(f"controller {st['controller']}" in p.stdout, "cluster-status names the controller")
        check("unreachable from n3: (none)" in p.stdout, "cluster-status shows the unreachable list")
        # the shard map grouped: per member what it leads, per replica set its in-sync set
        leads = p.stdout.split("shards each member leads", 1)[-1].split("\n\n", 1)[0]
        listed = sum(int(ln.split()[1]) for ln in leads.splitlines()[2:] if ln.strip())
        eq(listed, 64, "shards listed in the cluster-status leaders table")
        groups = p.stdout.split("shard groups", 1)[-1].split("\n\n", 1)[0]
        grouped = sum(int(ln.split()[2]) for ln in groups.splitlines()[2:] if ln.strip())
        eq(grouped, 64, "shards listed in the cluster-status shard groups")
        check(len(p.stdout.splitlines()) < 30, "cluster-status fits a screen")
        p = h.orderctl("--port", n3.port, "--json", "cluster-status")
        check(p.returncode == 0 and '"shards"' in p.stdout, "cluster-status --json prints raw")


def test_entities_spread_over_the_nodes():
    """30 products (and their inventories) land on more than one node, and each node holds in
    memory exactly the entities of the shards it leads, as the stable hash and the shard map
    predict: requests through other nodes are forwarded, not served from a copy."""
    with h.Session("cl-spread") as s:
        c, st = three_nodes(s, "spread")
        products = [f"p{i}" for i in range(30)]
        with c.admin(c.nodes[0]) as adm:
            make_catalog(adm, products, 5)
        for i, p in enumerate(products):
            with c.nodes[(i + 1) % 3].client() as cl:
                eq(cl.ok("product.get", {"product_id": p})["price_cents"], 100 + i,
                   f"product.get {p}")
        by_owner = spread(c, st, "product", products)
        inventories = spread(c, st, "inventory", products)
        log(f"products p0..p29 by leading node: {by_owner}; inventories: {inventories}")
        check(len(by_owner) >= 2, f"p0..p29 all on one node: {by_owner}")
        # the 30 products and their 30 inventories are the only entities; none passivates
        # this soon. A node reports active_entities in its own member record.
        for n in c.nodes:
            sn = c.status(n)
            check(sn is not None, f"{n.name} answers cluster.status")
            eq(c.owners(sn), c.owners(st), f"shard map as {n.name} sees it")
            m = c.members(sn)[n.name]
            want = by_owner.get(n.name, 0) + inventories.get(n.name, 0)
            log(f"{n.name}: {m.get('active_entities')} active entities (predicted {want}), "
                f"{m['shards_owned']} shards")
            eq(m.get("active_entities"), want, f"{n.name}: active entities")


def test_cross_node_orders_add_up():
    """24 orders placed, paid and cancelled through different nodes than their users,
    inventories and orders live on: every node reads every order with the status last
    acknowledged, and stock (available+reserved+sold, sold/reserved vs the orders) and money
    (deposits - PAID totals) add up through every node; another user cannot read an order."""
    with h.Session("cl-orders") as s:
        c, st = three_nodes(s, "orders")
        products = [f"item{i}" for i in range(6)]
        users = [f"buyer{i}" for i in range(5)]
        stock, money = 40, 20000
        with c.admin(c.nodes[1]) as adm:
            make_catalog(adm, products, stock, price=lambda i: 150 * (i + 1))
        make_users(c, users, money)
        orders = place_some_orders(c, users, products, 24, "xo")
        log(f"leaders: users {spread(c, st, 'user', users)}, inventories "
            f"{spread(c, st, 'inventory', products)}, orders {spread(c, st, 'order', orders)}")
        check(len(spread(c, st, "order", orders)) >= 2, "orders all on one node")
        # an order placed by one user is not visible to another one, through any node
        with c.nodes[2].client() as cl:
            tok = cl.ok("user.login", {"user_id": users[1], "password": f"pw-{users[1]}-secret"})
        with c.nodes[0].client(token=tok["token"]) as cl:
            cl.err("order.get", {"order_id": "xo0"}, code="not_found")
        by_status = {}
        for n in c.nodes:
            with c.admin(n) as adm:
                now = {oid: adm.ok("order.get", {"order_id": oid}) for oid in orders}
                for oid, o in orders.items():
                    eq(now[oid]["status"], o["status"], f"{oid} through {n.name}")
                check_books(adm, products, {p: stock for p in products}, users,
                            {u: money for u in users}, now, f"through {n.name}")
        for o in orders.values():
            by_status[o["status"]] = by_status.get(o["status"], 0) + 1
        log(f"{len(orders)} orders by status {dict(sorted(by_status.items()))}; books add up "
            "through every node")


def test_kill9_one_node():
    """kill -9 of a node that is not the controller: through the others exactly its products
    answer `unavailable` (printed: how fast), deposits to its users answer `unavailable` and
    to the others' users succeed; once its lease is gone it leaves the members list but keeps
    its shards (nobody takes over). Restarted, it rejoins with a higher incarnation, serves its
    entities again, and through every node everything acknowledged is there and the books
    (stock, money, orders) add up."""
    with h.Session("cl-kill") as s:
        c, st = three_nodes(s, "kill")
        victim = [n for n in c.nodes if n.name != st["controller"]][-1]
        rest = [n for n in c.nodes if n is not victim]
        inc = incarnation(st, victim.name)
        products = [f"p{i}" for i in range(30)]
        users = [f"u{i}" for i in range(6)]
        stock, money = 50, 10000
        with c.admin(rest[0]) as adm:
            make_catalog(adm, products, stock)
        make_users(c, users, money)
        orders = place_some_orders(c, users, products, 12, "ko")
        deposited = {u: money for u in users}
        on_victim = {p for p in products if c.owner_of(st, "product", p) == victim.name}
        users_on_victim = {u for u in users if c.owner_of(st, "user", u) == victim.name}
        log(f"product.get of {len(on_victim)} of 30 products is served by {victim.name}: "
            f"{sorted(on_victim, key=lambda p: int(p[1:]))}; its users {sorted(users_on_victim)}")
        check(0 < len(on_victim) < 30, "the victim leads some but not all products")
        with c.admin(rest[0]) as adm:
            before = snapshot(adm, products, users, orders)

        code = victim.kill()
        t_kill = time.monotonic()
        log(f"killed {victim.name} with SIGKILL (exit {code})")

        worst = [0.0]
        seen = {}

        def partition(node):
            """product -> code of product.get through node; tracks the slowest answer."""
            out = {}
            with node.client(timeout=CLIENT_TIMEOUT) as cl:
                for p in products:
                    t0 = time.monotonic()
                    r = cl.request("product.get", {"product_id": p})  # a hang raises
                    worst[0] = max(worst[0], time.monotonic() - t0)
                    out[p] = code_of(r)
                    seen[out[p]] = seen.get(out[p], 0) + 1
            return out

        def as_predicted():
            for node in rest:
                got = partition(node)
                if {p for p, k in got.items() if k != "ok"} != on_victim:
                    return None
                if any(got[p] != "unavailable" for p in on_victim):
                    return None
            return True
        h.wait_until(as_predicted, 20.0, 0.2,
                     f"exactly the products of {victim.name} to answer unavailable through "
                     f"{[n.name for n in rest]}")
        log(f"partition as predicted {time.monotonic() - t_kill:.1f}s after the kill; answers "
            f"while waiting {dict(sorted(seen.items()))}; slowest product.get "
            f"{worst[0] * 1000:.0f} ms")

        # writes: users of live nodes keep working, users of the victim answer unavailable
        unknown = []
        with c.admin(rest[1]) as adm:
            for u in users:
                rid = f"after-kill-{u}"
                r = adm.request("user.deposit", {"user_id": u, "amount_cents": 500,
                                                 "request_id": rid})
                if u in users_on_victim:
                    eq(code_of(r), "unavailable", f"deposit to {u} (on {victim.name})")
                    unknown.append((u, rid))
                else:
                    eq(code_of(r), "ok", f"deposit to {u} (not on {victim.name})")
                deposited[u] += 500
        gone = c.wait_members(rest, [n.name for n in rest], timeout=GONE_TIMEOUT)
        log(f"{victim.name} gone from the members {time.monotonic() - t_kill:.1f}s after the kill")
        for name, sn in gone.items():
            eq(c.owners(sn), c.owners(st), f"shard leaders as {name} sees them while "
               f"{victim.name} is gone (nobody takes over)")
        with c.admin(rest[0]) as adm:  # still unavailable, still served elsewhere
            for p in sorted(on_victim)[:3]:
                adm.err("product.get", {"product_id": p}, code="unavailable")
            for p in sorted(set(products) - on_victim)[:3]:
                adm.ok("product.get", {"product_id": p})

        victim.start()
        t_back = time.monotonic()
        seen_back = rejoined(c, victim, inc)
        log(f"{victim.name} rejoined with incarnation {inc} -> "
            f"{incarnation(seen_back[victim.name], victim.name)} after "
            f"{time.monotonic() - t_back:.1f}s")

        def served_again():
            with rest[0].client(timeout=CLIENT_TIMEOUT) as cl:
                return all(code_of(cl.request("product.get", {"product_id": p})) == "ok"
                           for p in sorted(on_victim))
        h.wait_until(served_again, BACK_TIMEOUT, 0.2, "the victim's products to be served again")
        log(f"{victim.name} restarted; its products served again after "
            f"{time.monotonic() - t_back:.1f}s")
        with c.admin(rest[0]) as adm:
            for u, rid in unknown:  # outcome unknown: send again with the same request_id
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 500,
                                              "request_id": rid})
        for u in users:
            before[("user", u)]["balance_cents"] = \
                money + 500 - sum(o["total_cents"] for o in orders.values()
                                  if o["user_id"] == u and o["status"] == "PAID")
        for n in c.nodes:
            with c.admin(n) as adm:
                after = snapshot(adm, products, users, orders)
                compare(before, after, f"after the restart, through {n.name}")
                check_books(adm, products, {p: stock for p in products}, users, deposited,
                            {k[1]: v for k, v in after.items() if k[0] == "order"},
                            f"after the restart, through {n.name}")
        c.wait_balanced(timeout=BALANCE_TIMEOUT)


def test_drain_on_sigterm():
    """A node started with --drain hands every shard it leads to the others on SIGTERM and
    exits 0; then the other two lead all 64 shards (a node that merely died would keep its
    shards until it came back), it is no longer a member, every user reads as before through
    both and the users it led take writes."""
    with h.Session("cl-drain") as s:
        c = cluster(s, "drain")
        c.add()
        c.add()
        n3 = c.add(extra_args=["--drain"])
        st = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        users = [f"du{i}" for i in range(12)]
        make_users(c, users, 300)
        with c.admin(c.nodes[0]) as adm:
            before = snapshot(adm, users=users)
        on_n3 = [u for u in users if c.owner_of(st, "user", u) == "n3"]
        log(f"n3 leads {c.counts(st).get('n3')} shards, {len(on_n3)} of the users")
        t0 = time.monotonic()
        code = n3.terminate(timeout=60)
        log(f"n3 (--drain) exited with {code} {time.monotonic() - t0:.1f}s after SIGTERM")
        eq(code, 0, "exit status after SIGTERM with --drain")
        sn = c.wait_balanced(["n1", "n2"], timeout=BALANCE_TIMEOUT)
        log(f"after the drain ({time.monotonic() - t0:.1f}s after SIGTERM): "
            f"{sorted(c.counts(sn).items())}, members {sorted(c.members(sn))}")
        check(not c.counts(sn).get("n3"), f"n3 still leads {c.counts(sn).get('n3')} shards")
        for n in c.nodes[:2]:
            with c.admin(n) as adm:
                compare(before, snapshot(adm, users=users), f"through {n.name}")
        with c.admin(c.nodes[1]) as adm:  # the drained users take writes again
            for u in on_n3:
                eq(adm.ok("user.deposit", {"user_id": u, "amount_cents": 5,
                                           "request_id": "after-drain"})["balance_cents"],
                   before[("user", u)]["balance_cents"] + 5, f"{u} after a deposit")


def paused_node(tag, controller):
    """SIGSTOP of the controller (controller=True) or of another node while one writer per user
    deposits through the two running nodes; the pause lasts until the others have dropped the
    paused node from the members (its lease is gone) and agree on a controller among themselves.
    Meanwhile deposits to the running nodes' users are acknowledged, and nobody takes the
    paused node's shards. After SIGCONT it rejoins with a higher incarnation and serves again;
    every deposit (the unanswered ones sent again with their request_id) counts exactly once,
    through every node."""
    with h.Session(f"cl-{tag}") as s:
        c, st = three_nodes(s, tag)
        victim = c.node(st["controller"]) if controller else \
            [n for n in c.nodes if n.name != st["controller"]][0]
        others = [n for n in c.nodes if n is not victim]
        inc = incarnation(st, victim.name)
        users = per_node(c, st, "user", "pu", 3)
        make_users(c, users, 0)
        on_victim = {u for u in users if c.owner_of(st, "user", u) == victim.name}
        check(0 < len(on_victim) < len(users), f"{victim.name} leads some but not all users: "
              f"{spread(c, st, 'user', users)}")
        log(f"users by leader: {spread(c, st, 'user', users)}; pausing {victim.name}"
            f"{' (the controller)' if controller else ''}")
        deposits = {}  # request_id -> [user, amount, acked]
        codes = {}
        slow = []      # (latency s, user, its leader, via node, answer, seconds after the pause)
        stop = threading.Event()
        oks = []
        failure = []
        t_stop = [None]
        lock = threading.Lock()

        def writer(w, u):
            """Deposits to user u, through the nodes that are not paused in turn."""
            caller = Caller(c.admin_token)
            try:
                i = 0
                t_end = time.monotonic() + 120
                while not stop.is_set() and i < 2000 and time.monotonic() < t_end:
                    rid = f"w{w}-{i}"
                    amount = 100 + i % 7
                    via = others[(i + w) % 2]
                    with lock:
                        deposits[rid] = [u, amount, False]
                    t0 = time.monotonic()
                    r = caller.call(via, "user.deposit",
                                    {"user_id": u, "amount_cents": amount, "request_id": rid})
                    t1 = time.monotonic()
                    k = code_of(r)
                    with lock:
                        codes[k] = codes.get(k, 0) + 1
                        if k == "ok":
                            deposits[rid][2] = True
                            oks.append((t1, u))
                        if t1 - t0 > 0.5:
                            slow.append((t1 - t0, u, c.owner_of(st, "user", u), via.name, k,
                                         t0 - t_stop[0] if t_stop[0] else float("nan")))
                    i += 1
                    time.sleep(0.02)
            except BaseException as e:  # noqa: B902 - reported by the main thread
                failure.append(e)
            finally:
                caller.close()

        def acked_since(t, who):
            with lock:
                return sum(1 for t1, u in oks if t1 > t and u in who)

        # one writer per user: a request stuck on the paused node holds up only its own user
        threads = [threading.Thread(target=writer, args=(w, u), daemon=True)
                   for w, u in enumerate(users)]
        for t in threads:
            t.start()
        t_start = time.monotonic()
        h.wait_until(lambda: acked_since(t_start, on_victim) >= 3 or failure, 20.0, 0.05,
                     "deposits to the victim's users before the pause")
        victim.proc.send_signal(signal.SIGSTOP)  # the pid this test started
        t_stop[0] = time.monotonic()
        try:
            gone = c.wait_members(others, [n.name for n in others], timeout=GONE_TIMEOUT)
            t_gone = time.monotonic()
            new_ctl = c.wait_controller(others, [n.name for n in others], timeout=GONE_TIMEOUT)
            for name, sn in gone.items():
                eq(c.owners(sn), c.owners(st), f"shard leaders as {name} sees them while "
                   f"{victim.name} is paused (nobody takes over)")
            h.wait_until(lambda: acked_since(t_gone, set(users) - on_victim) >= 3 or failure,
                         20.0, 0.05, "deposits to the running nodes' users during the pause")
        finally:
            victim.proc.send_signal(signal.SIGCONT)
        t_cont = time.monotonic()
        log(f"{victim.name} was stopped for {t_cont - t_stop[0]:.1f}s; the others dropped it "
            f"after {t_gone - t_stop[0]:.1f}s, controller {new_ctl}")
        back = rejoined(c, victim, inc)
        log(f"{victim.name} rejoined with incarnation {inc} -> "
            f"{incarnation(back[victim.name], victim.name)} "
            f"{time.monotonic() - t_cont:.1f}s after SIGCONT")
        t_back = time.monotonic()
        h.wait_until(lambda: acked_since(t_back, on_victim) >= 3 or failure, BACK_TIMEOUT,
                     0.05, f"deposits to {victim.name}'s users after it rejoined")
        stop.set()
        for t in threads:
            t.join(timeout=CLIENT_TIMEOUT * 2 + 5)
            check(not t.is_alive(), "a writer did not stop")
        if failure:
            raise failure[0]
        during = {}
        for t1, u in oks:
            if t_stop[0] + 0.1 < t1 < t_cont:
                o = c.owner_of(st, "user", u)
                during[o] = during.get(o, 0) + 1
        times = sorted(t1 for t1, _ in oks)
        gaps = [b - a for a, b in zip(times, times[1:])]
        log(f"writers: {len(deposits)} deposits sent, answers {dict(sorted(codes.items()))}; "
            f"acknowledged during the pause, by the user's leader: {dict(sorted(during.items()))}; "
            f"longest gap between any two acknowledgements {max(gaps) * 1000:.0f} ms")
        for row in sorted(slow, key=lambda r: r[-1])[:20]:
            log("  slow: %.2fs deposit to %s (on %s) via %s -> %s, sent %+.2fs after SIGSTOP"
                % row)
        check(sum(during.get(n.name, 0) for n in others) > 0,
              "no deposit to a user of a running node was acknowledged during the pause")

        sn = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        log(f"balanced again: controller {sn['controller']}")
        unacked = [rid for rid, d in deposits.items() if not d[2]]
        with c.admin(others[0]) as adm:
            for rid in unacked:  # outcome unknown: same request_id again, counted at most once
                u, amount, _ = deposits[rid]
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": amount,
                                              "request_id": rid}, timeout=30.0)
        log(f"{len(unacked)} unacknowledged deposits sent again with their request_id")
        for n in c.nodes:  # the paused node serves again, and everyone agrees
            with c.admin(n) as adm:
                for u in users:
                    want = sum(a for (usr, a, _) in deposits.values() if usr == u)
                    got = adm.ok_retry("user.get", {"user_id": u})["balance_cents"]
                    eq(got, want, f"{u} balance through {n.name} == every deposit once")


def test_paused_node():
    """A node that is not the controller is SIGSTOPped under a stream of deposits until its
    lease is gone: the others keep serving their users, nobody takes its shards; resumed, it
    rejoins with a higher incarnation and every deposit counts once (see paused_node)."""
    paused_node("pause", controller=False)


def test_paused_controller():
    """The controller is SIGSTOPped under a stream of deposits until its lease is gone: the
    other two choose a new controller among themselves and keep serving, nobody takes its
    shards; resumed, it rejoins and every deposit counts once (see paused_node)."""
    paused_node("pause-ctl", controller=True)


def test_load_while_a_node_joins():
    """Clients place and pay orders through the first three nodes while a fourth joins through
    etcd and takes its shards: every acknowledged order is there afterwards with at least its
    acknowledged status, stock and money add up. Prints the longest gap between successful
    requests and how long each handoff to the new node took (from the sources' logs)."""
    with h.Session("cl-load") as s:
        c, st = three_nodes(s, "load")
        products = [f"ld{i}" for i in range(8)]
        users = [f"lu{i}" for i in range(4)]
        stock, money = 100000, 10 ** 9
        with c.admin(c.nodes[0]) as adm:
            make_catalog(adm, products, stock, price=lambda i: 100 * (i + 1))
        make_users(c, users, money)
        nodes3 = list(c.nodes)
        acked = {}     # order_id -> most advanced acknowledged status
        placed = []
        slow = []      # (latency, op, order_id, via, answer, wall clock sent)
        oks = [[] for _ in range(LOAD_CLIENTS)]  # per client: times of successful requests
        codes = {}
        stop = threading.Event()
        failure = []
        lock = threading.Lock()

        def call_retry(caller, j, node_i, op, args, deadline_s=30.0):
            """Same request (same ids) until it is answered ok or not retryable; rotates nodes."""
            t_end = time.monotonic() + deadline_s
            i = node_i
            while True:
                t0, w0 = time.monotonic(), time.time()
                r = caller.call(nodes3[i % 3], op, args)
                k = code_of(r)
                with lock:
                    codes[(op, k)] = codes.get((op, k), 0) + 1
                    if time.monotonic() - t0 > 0.5 or k != "ok":
                        slow.append((time.monotonic() - t0, op, args.get("order_id"),
                                     nodes3[i % 3].name, k,
                                     time.strftime("%H:%M:%S", time.gmtime(w0)) +
                                     f".{int(w0 * 1000) % 1000:03d}"))
                if k == "ok":
                    oks[j].append(time.monotonic())
                    return r["result"]
                if k not in h.RETRYABLE + ("no-answer",) and not (op == "order.pay" and
                                                                   k == "conflict"):
                    return r
                if time.monotonic() >= t_end:
                    return None
                time.sleep(0.05)
                i += 1

        def ack(o):
            with lock:
                prev = acked.get(o["order_id"])
                if prev is None or h.STATUS_RANK.get(o["status"], -1) > \
                        h.STATUS_RANK.get(prev, -1):
                    acked[o["order_id"]] = o["status"]

        def client(j):
            """Places and pays orders one after the other, through the first 3 nodes in turn."""
            caller = Caller(c.admin_token)
            rng = random.Random(7 + j)
            try:
                k = 0
                t_end = time.monotonic() + 90
                while not stop.is_set() and k < 1000 and time.monotonic() < t_end:
                    oid = f"lo{j}-{k}"
                    picks = rng.sample(products, rng.randint(1, 2))
                    items = [{"product_id": p, "quantity": rng.randint(1, 3)} for p in picks]
                    with lock:
                        placed.append(oid)
                    o = call_retry(caller, j, k + j, "order.place",
                                   {"order_id": oid, "user_id": users[(k + j) % len(users)],
                                    "items": items})
                    if isinstance(o, dict) and "status" in o:
                        ack(o)
                        if o["status"] == "RESERVED":
                            p = call_retry(caller, j, k + j + 1, "order.pay", {"order_id": oid})
                            if isinstance(p, dict) and "status" in p:
                                ack(p)
                    k += 1
            except BaseException as e:  # noqa: B902
                failure.append(e)
            finally:
                caller.close()

        threads = [threading.Thread(target=client, args=(j,), daemon=True)
                   for j in range(LOAD_CLIENTS)]
        for t in threads:
            t.start()
        h.wait_until(lambda: len(acked) >= 30 or not all(t.is_alive() for t in threads), 30.0,
                     0.05, "30 orders before the join")
        t_join = time.monotonic()
        n_before = len(acked)
        c.add()
        st4 = c.wait_balanced(timeout=BALANCE_TIMEOUT)
        t_balanced = time.monotonic()
        n_balanced = len(acked)
        h.wait_until(lambda: len(acked) >= n_balanced + 10 or
                     not all(t.is_alive() for t in threads), 30.0, 0.05,
                     "10 more orders after the join")
        stop.set()
        for t in threads:
            t.join(timeout=90)
            check(not t.is_alive(), "a load client did not stop")
        if failure:
            raise failure[0]
        counts = c.counts(st4)
        log(f"n4 joined and the shard map balanced {t_balanced - t_join:.1f}s after starting it: "
            f"{sorted(counts.items())}; {len(acked) - n_before} orders acknowledged meanwhile")
        check(counts.get("n4", 0) >= 10, f"n4 leads {counts.get('n4', 0)} shards")
        check(len(acked) > n_before, "no order acknowledged during or after the join")

        with c.admin(c.nodes[0]) as adm:
            def no_pending():
                now = {}
                for oid in placed:
                    r = adm.request("order.get", {"order_id": oid})
                    if r.get("ok"):
                        now[oid] = r["result"]
                    elif (r.get("error") or {}).get("code") in h.RETRYABLE:
                        return None
                    else:
                        eq(r["error"]["code"], "not_found", f"order.get {oid}")
                return now if all(o["status"] != "PENDING" for o in now.values()) else None
            now = h.wait_until(no_pending, 60.0, 0.2, "no order PENDING")
            missing = [oid for oid in acked if oid not in now]
            behind = []
            for oid, was in acked.items():
                st_now = now[oid]["status"] if oid in now else None
                if st_now is None:
                    continue
                if (was == "REJECTED") != (st_now == "REJECTED") or \
                        h.STATUS_RANK.get(st_now, -1) < h.STATUS_RANK.get(was, -1):
                    behind.append((oid, was, st_now))
            eq(missing, [], "acknowledged orders missing")
            eq(behind, [], "orders behind their acknowledged status (id, acked, now)")
            check_books(adm, products, {p: stock for p in products}, users,
                        {u: money for u in users}, now, "after the join")
        by_status = {}
        for o in now.values():
            by_status[o["status"]] = by_status.get(o["status"], 0) + 1
        log(f"load: {LOAD_CLIENTS} clients, {len(placed)} orders sent, {len(acked)} acknowledged, "
            f"now {dict(sorted(by_status.items()))}; answers {dict(sorted(codes.items()))}")
        for j, times in enumerate(oks):
            gaps = [b - a for a, b in zip(times, times[1:])] or [0.0]
            log(f"client {j}: longest gap between two successful requests "
                f"{max(gaps) * 1000:.0f} ms (median {statistics.median(gaps) * 1000:.1f} ms, "
                f"{len(times)} successes)")
        for row in slow[:30]:
            order = row[2]
            where = ", ".join(f"{k}/{i}:{c.owner_of(st, k, i)}->{c.owner_of(st4, k, i)}"
                              for k, i in [("order", order)] +
                              [("inventory", it["product_id"]) for it in
                               (now.get(order) or {}).get("items", [])] +
                              [("user", (now.get(order) or {}).get("user_id", "?"))])
            log("  slow or failed: %.2fs %s %s via %s -> %s, sent at %s" % row +
                f" (leaders before->after: {where})")
        moves = handoffs_in_log(c.nodes[:3], target="n4")
        # Printed, not asserted: log lines are not an interface.
        if moves:
            ms = [m[3] for m in moves]
            log(f"handoffs to n4: median {statistics.median(ms):g} ms, max {max(ms)} ms over "
                f"{len(ms)} handoffs (from 'handing shard' to 'now served by' in the sources' "
                "logs)")
        else:
            log("handoffs to n4: unknown, no 'handing shard N to n4' / 'shard N now served by "
                "n4' lines in the logs of n1..n3")
        stuck = [r for r in slow if r[0] > 1.0]
        if stuck:
            log(f"NOTE: {len(stuck)} request(s) took over 1 s although every handoff took at "
                f"most {max(m[3] for m in moves) if moves else '?'} ms (answers: "
                f"{sorted(set(r[4] for r in stuck))}): a request in flight at an entity whose "
                "shard moves is not answered until orderd's --request-timeout")


def test_failed_handoff_keeps_the_shard():
    """The target of a handoff dies mid-copy (handoffs slowed down by fault injection): the
    move is aborted, the shard stays with its old leader, which serves it again with every
    entity as before; the shards the target had already received wait for it (`unavailable`,
    nobody takes them back). After the target comes back the cluster balances as usual and
    every entity reads as before through both nodes."""
    with h.Session("cl-failed-handoff") as s:
        # Small chunks with a pause between them make each move of a shard with data last
        # long enough to kill the target in the middle (fault-injection knobs of orderd).
        c = cluster(s, "handoff", extra_args=SLOW_HANDOFF)
        n1 = c.add()
        c.wait_balanced(timeout=BALANCE_TIMEOUT)
        products = [f"fh{i}" for i in range(40)]
        users = [f"fhu{i}" for i in range(10)]
        with c.admin(n1) as adm:
            make_catalog(adm, products, 25)
        make_users(c, users, 3000)
        with c.admin(n1) as adm:  # many events per user: their shards take several chunks
            for u in users:
                for k in range(12):
                    adm.ok("user.deposit", {"user_id": u, "amount_cents": 1,
                                            "request_id": f"small-{u}-{k}"})
        with c.admin(n1) as adm:
            before = snapshot(adm, products, users)
        n2 = c.add()
        user_shards = {h.shard_of("user", u) for u in users}

        def moving():
            # a shard with a user in it that the controller (n1) is moving to n2
            sn = c.status(n1)
            mv = c.moving(sn) if sn else {}
            return sorted(k for k, t in mv.items() if t == "n2" and k in user_shards) or None

        def handing(shards):
            # refinement from n1's log: the copy of one of them has started and not finished
            done = {m[1] for m in handoffs_in_log([n1], target="n2")}
            for line in n1.log_text().splitlines():
                m = HANDING_RE.match(line)
                if m and m.group(4) == "n2" and int(m.group(3)) in set(shards) - done:
                    return int(m.group(3))
            return None
        shards = h.wait_until(moving, 60.0, 0.01, "n1 to start moving a user's shard to n2")
        try:
            shard = h.wait_until(lambda: handing(shards), 3.0, 0.01, "the copy to start")
        except AssertionError:
            shard = shards[0]
            log(f"no 'handing shard' line for {shards} in n1's log: killing n2 anyway")
        n2.kill()
        t_kill = time.monotonic()
        log(f"killed n2 while shard {shard} was being moved to it")
        in_shard = [e for e in before if h.shard_of(*e) == shard]
        log(f"{len(in_shard)} recorded entities live in shard {shard}")

        # n2's lease lapses: the move is over, whatever the controller tried meanwhile
        c.wait_members([n1], ["n1"], timeout=GONE_TIMEOUT)

        def served_again():
            sn = c.status(n1)
            if sn is None or c.moving(sn) or c.owners(sn)[shard] != "n1":
                return None
            with c.admin(n1) as adm:
                for kind, ident in in_shard:
                    op, key = OPS[kind]
                    r = adm.request(op, {key: ident})
                    if not r.get("ok") or r["result"] != before[(kind, ident)]:
                        return None
            return sn
        sn = h.wait_until(served_again, GONE_TIMEOUT, 0.2,
                          f"no move in flight and shard {shard} served by n1 again")
        on_n2 = [e for e in before if c.owner_of(sn, *e) == "n2"]
        log(f"shard {shard} served by n1 again, no move in flight, "
            f"{time.monotonic() - t_kill:.1f}s after the kill; leaders "
            f"{sorted(c.counts(sn).items())} ({len(on_n2)} recorded entities on the dead n2)")
        eq(c.owners(sn)[shard], "n1", f"leader of shard {shard} after the failed handoff")
        text = "\n".join(f.read_text(errors="replace") for f in n1.all_logs() if f.exists())
        check("failed" in text or "abort" in text, "n1 logged the failed (or aborted) handoff")
        with c.admin(n1) as adm:
            # what n1 leads reads as before; what n2 had received waits for it (unavailable)
            for e in before:
                op, key = OPS[e[0]]
                if e in on_n2:
                    adm.err(op, {key: e[1]}, code="unavailable")
                else:
                    eq(adm.ok(op, {key: e[1]}), before[e], f"{e} after the failed handoff")
        # The target comes back: everything balances and every entity reads as before.
        n2.start()
        c.wait_balanced(timeout=BALANCE_TIMEOUT)
        for n in c.nodes:
            with c.admin(n) as adm:
                compare(before, snapshot(adm, products, users),
                        f"after the rebalance, through {n.name}")


TESTS = [test_any_node_reaches_the_same_entity, test_entities_spread_over_the_nodes,
         test_cross_node_orders_add_up, test_kill9_one_node, test_drain_on_sigterm,
         test_paused_node, test_paused_controller, test_load_while_a_node_joins,
         test_failed_handoff_keeps_the_shard]

if __name__ == "__main__":
    with SHARED:  # ends the shared etcd (by pid) however the run ends
        h.main(TESTS, __doc__)
