#!/usr/bin/env python3
"""Multi-process cluster tests: several orderd on 127.0.0.1 joined through --seeds.

Every test starts its own cluster (harness.Cluster: --pwhash fast --heartbeat-interval 200ms
--failure-timeout 1s, free ports, temp data dirs) and kills only the pids it started. Which node
owns an entity is predicted with the pinned stable hash (harness.shard_of) and the shard map
from cluster.status, so the tests can say which requests must fail while a node is down.

  * any node reaches the same entity; requests are forwarded to the owner
  * after balancing, every node owns 21-22 of 64 shards and the entities spread over the nodes
  * orders placed, paid and cancelled through different nodes: stock and money add up
  * kill -9 of a node: its entities answer `unavailable` (quickly), the others keep working;
    after a restart everything acknowledged is there
  * a fourth node joins and takes shards; every entity reads the same before and after
  * a node leaves (cluster.leave) or drains on SIGTERM: exit 0, owns nothing, nothing is lost
  * a paused node (SIGSTOP for 3x the failure timeout) while deposits go on: balances exact
  * load while a node joins: acknowledged orders all there, invariants hold; prints the longest
    gap between successful requests and how long each shard move took (from the coordinator's log)

Numbers are printed, never asserted on.
"""

import os
import random
import re
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

FAILURE_TIMEOUT_S = 1.0  # harness.Cluster default --failure-timeout
LOAD_CLIENTS = int(os.environ.get("ORDERMESH_CLUSTER_LOAD_CLIENTS", "3"))
PAUSE_S = float(os.environ.get("ORDERMESH_CLUSTER_PAUSE_S", 3 * FAILURE_TIMEOUT_S))
CLIENT_TIMEOUT = 15.0    # socket timeout; orderd's own --request-timeout is 10 s
MOVE_RE = re.compile(r"^(\S+) \S+ node=(\S+) moved shard (\d+) to (\S+) \(epoch (\d+), (\d+) ms\)")


# ---------------------------------------------------------------------------------------------
# helpers


def three_nodes(s, **kw):
    """A balanced 3-node cluster: (cluster, its status)."""
    c = h.Cluster(s, **kw)
    t0 = time.monotonic()
    st = c.start(3)
    log(f"3 nodes balanced in {time.monotonic() - t0:.1f}s: {sorted(c.counts(st).items())}, "
        f"coordinator {st['coordinator']}")
    return c, st


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


def moves_in_log(node, target=None):
    """(shard, target, epoch, ms) of the `moved shard` lines in every log of `node`."""
    out = []
    for f in node.all_logs():
        if not f.exists():
            continue
        for line in f.read_text(errors="replace").splitlines():
            m = MOVE_RE.match(line)
            if m and (target is None or m.group(4) == target):
                out.append((int(m.group(3)), m.group(4), int(m.group(5)), int(m.group(6))))
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
    with h.Session("cl-any") as s:
        c, st = three_nodes(s)
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
        log("owners: user/ann %s, product/lamp %s, inventory/lamp %s" % (
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
        check(f"coordinator {st['coordinator']}" in p.stdout, "cluster-status names the coordinator")
        check("unreachable from n3: (none)" in p.stdout, "cluster-status shows the unreachable list")
        owners_lines = p.stdout.split("shard owners", 1)[-1].splitlines()[2:]
        listed = sum(int(ln.split()[1]) for ln in owners_lines if ln.strip())
        eq(listed, 64, "shards listed in the cluster-status owner map")
        p = h.orderctl("--port", n3.port, "--json", "cluster-status")
        check(p.returncode == 0 and '"shards"' in p.stdout, "cluster-status --json prints raw")


def test_entities_spread_over_the_nodes():
    with h.Session("cl-spread") as s:
        c, st = three_nodes(s)
        for n in c.nodes:
            sn = c.status(n)
            check(sn is not None, f"{n.name} answers cluster.status")
            counts = c.counts(sn)
            owned = {m["node_id"]: m["shards_owned"] for m in sn["members"]}
            eq(owned, counts, f"{n.name}: members' shards_owned vs the shard map")
            for name, k in counts.items():
                check(21 <= k <= 22, f"{n.name} says {name} owns {k} shards (want 21-22)")
            eq(sn["shard_count"], 64, "shard_count")
            eq(sn["coordinator"], st["coordinator"], f"coordinator as {n.name} sees it")
        products = [f"p{i}" for i in range(30)]
        with c.admin(c.nodes[0]) as adm:
            make_catalog(adm, products, 5)
        for i, p in enumerate(products):
            with c.nodes[(i + 1) % 3].client() as cl:
                eq(cl.ok("product.get", {"product_id": p})["price_cents"], 100 + i,
                   f"product.get {p}")
        by_owner = spread(c, st, "product", products)
        log(f"products p0..p29 by owning node: {by_owner}; inventories: "
            f"{spread(c, st, 'inventory', products)}")
        check(len(by_owner) >= 2, f"p0..p29 all on one node: {by_owner}")
        # each node holds the entities of its own shards, as the stable hash predicts (the 30
        # products and their 30 inventories are the only entities; none passivates this soon)
        inventories = spread(c, st, "inventory", products)
        for n in c.nodes:
            m = next(m for m in c.status(n)["members"] if m["node_id"] == n.name)
            want = by_owner.get(n.name, 0) + inventories.get(n.name, 0)
            log(f"{n.name}: {m.get('active_entities')} active entities (predicted {want}), "
                f"{m['shards_owned']} shards")
            eq(m.get("active_entities"), want, f"{n.name}: active entities")


def test_cross_node_orders_add_up():
    with h.Session("cl-orders") as s:
        c, st = three_nodes(s)
        products = [f"item{i}" for i in range(6)]
        users = [f"buyer{i}" for i in range(5)]
        stock, money = 40, 20000
        with c.admin(c.nodes[1]) as adm:
            make_catalog(adm, products, stock, price=lambda i: 150 * (i + 1))
        make_users(c, users, money)
        orders = place_some_orders(c, users, products, 24, "xo")
        log(f"owners: users {spread(c, st, 'user', users)}, inventories "
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
    with h.Session("cl-kill") as s:
        c, st = three_nodes(s)
        victim = c.node("n2")
        n1, n3 = c.node("n1"), c.node("n3")
        products = [f"p{i}" for i in range(30)]
        users = [f"u{i}" for i in range(6)]
        stock, money = 50, 10000
        with c.admin(n1) as adm:
            make_catalog(adm, products, stock)
        make_users(c, users, money)
        orders = place_some_orders(c, users, products, 12, "ko")
        deposited = {u: money for u in users}
        on_victim = {p for p in products if c.owner_of(st, "product", p) == victim.name}
        log(f"product.get of {len(on_victim)} of 30 products is served by {victim.name}: "
            f"{sorted(on_victim, key=lambda p: int(p[1:]))}")
        check(0 < len(on_victim) < 30, "the victim owns some but not all products")
        with c.admin(n1) as adm:
            before = snapshot(adm, products, users, orders)
        shards_before = c.counts(c.status(n1))

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
            for node in (n1, n3):
                got = partition(node)
                if {p for p, k in got.items() if k != "ok"} != on_victim:
                    return None
                if any(got[p] != "unavailable" for p in on_victim):
                    return None
            return True
        h.wait_until(as_predicted, 20.0, 0.2,
                     f"exactly the products of {victim.name} to answer unavailable through "
                     "n1 and n3")
        log(f"partition as predicted {time.monotonic() - t_kill:.1f}s after the kill; answers "
            f"while waiting {dict(sorted(seen.items()))}; slowest product.get {worst[0] * 1000:.0f} ms")

        # writes: users on live nodes keep working, users of the victim answer unavailable
        unknown = []
        with c.admin(n3) as adm:
            for i, u in enumerate(users):
                rid = f"after-kill-{u}"
                r = adm.request("user.deposit", {"user_id": u, "amount_cents": 500,
                                                 "request_id": rid})
                if c.owner_of(st, "user", u) == victim.name:
                    eq(code_of(r), "unavailable", f"deposit to {u} (on {victim.name})")
                    unknown.append((u, rid))
                else:
                    eq(code_of(r), "ok", f"deposit to {u} (not on {victim.name})")
                deposited[u] += 500
        sn = h.wait_until(lambda: (lambda x: x if x and victim.name in x.get(
            "unreachable_from_here", []) else None)(c.status(n1)), 10.0, 0.2,
            f"n1 to report {victim.name} unreachable")
        state = {m["node_id"]: m["state"] for m in sn["members"]}
        log(f"n1 sees members {state}, unreachable {sn['unreachable_from_here']}")
        eq(state[victim.name], "unreachable", f"state of {victim.name}")
        eq(c.counts(sn), shards_before, "shard owners while a node is down (nobody takes over)")

        victim.start()
        t_back = time.monotonic()
        def served_again():
            with n1.client(timeout=CLIENT_TIMEOUT) as cl:
                return all(code_of(cl.request("product.get", {"product_id": p})) == "ok"
                           for p in sorted(on_victim))
        h.wait_until(served_again, 30.0, 0.2, "the victim's products to be served again")
        log(f"{victim.name} restarted; its products served again after "
            f"{time.monotonic() - t_back:.1f}s")
        with c.admin(n1) as adm:
            for u, rid in unknown:  # outcome unknown: send again with the same request_id
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 500,
                                              "request_id": rid})
        for n in c.nodes:
            with c.admin(n) as adm:
                after = snapshot(adm, products, users, orders)
                for u in users:
                    before[("user", u)]["balance_cents"] = \
                        money + 500 - sum(o["total_cents"] for o in orders.values()
                                          if o["user_id"] == u and o["status"] == "PAID")
                compare(before, after, f"after the restart, through {n.name}")
                check_books(adm, products, {p: stock for p in products}, users, deposited,
                            {k[1]: v for k, v in after.items() if k[0] == "order"},
                            f"after the restart, through {n.name}")
        h.wait_until(lambda: c.balanced(), 30.0, 0.2, "every node to see every node up again")


def test_fourth_node_joins():
    with h.Session("cl-join") as s:
        c, st = three_nodes(s)
        products = [f"j{i}" for i in range(8)]
        users = [f"ju{i}" for i in range(6)]
        with c.admin(c.nodes[0]) as adm:
            make_catalog(adm, products, 30)
        make_users(c, users, 5000)
        orders = place_some_orders(c, users, products, 8, "jo")
        with c.admin(c.nodes[1]) as adm:
            before = snapshot(adm, products, users, orders)
        log(f"{len(before)} entity reads recorded before the join")
        t0 = time.monotonic()
        n4 = c.add()
        st4 = c.wait_balanced(timeout=90.0)
        counts = c.counts(st4)
        log(f"n4 joined; balanced after {time.monotonic() - t0:.1f}s: {sorted(counts.items())}")
        check(counts.get("n4", 0) >= 10, f"n4 owns {counts.get('n4', 0)} shards (want >= 10)")
        moved = sorted(e for e in before if c.owner_of(st4, e[0], e[1]) != c.owner_of(st, *e))
        log(f"{len(moved)} of {len(before)} entities changed owner; "
            f"{sum(1 for e in before if c.owner_of(st4, *e) == 'n4')} now on n4")
        for n in c.nodes:
            with c.admin(n) as adm:
                compare(before, snapshot(adm, products, users, orders), f"through {n.name}")
        # the new owner takes writes
        with c.admin(n4) as adm:
            for u in users:
                adm.ok("user.deposit", {"user_id": u, "amount_cents": 1, "request_id": "post-join"})
                eq(adm.ok("user.get", {"user_id": u})["balance_cents"],
                   before[("user", u)]["balance_cents"] + 1, f"{u} after a deposit through n4")


def test_node_leaves():
    with h.Session("cl-leave") as s:
        c, st = three_nodes(s)
        n1, n2, n3 = c.nodes
        products = [f"l{i}" for i in range(8)]
        users = [f"lu{i}" for i in range(6)]
        with c.admin(n1) as adm:
            make_catalog(adm, products, 30)
        make_users(c, users, 5000)
        orders = place_some_orders(c, users, products, 8, "lo")
        with c.admin(n2) as adm:
            before = snapshot(adm, products, users, orders)
        on_n3 = [e for e in before if c.owner_of(st, *e) == "n3"]
        log(f"{len(on_n3)} of {len(before)} recorded entities are on n3")
        t0 = time.monotonic()
        with c.admin(n1) as adm:
            r = adm.ok("cluster.leave", {"node_id": "n3"})
        eq(r.get("state"), "leaving", f"cluster.leave reply {r}")
        try:
            code = n3.proc.wait(timeout=60)
        except Exception:
            raise AssertionError("n3 did not exit within 60 s of cluster.leave")
        log(f"n3 exited with {code} {time.monotonic() - t0:.1f}s after cluster.leave")
        eq(code, 0, "n3's exit status")

        def settled():
            for n in (n1, n2):
                sn = c.status(n)
                if sn is None:
                    return None
                m = {x["node_id"]: x for x in sn["members"]}
                if m.get("n3", {}).get("state") != "down" or c.counts(sn).get("n3"):
                    return None
            return sn
        sn = h.wait_until(settled, 30.0, 0.2, "n1 and n2 to see n3 down with no shards")
        m3 = next(x for x in sn["members"] if x["node_id"] == "n3")
        eq((m3["state"], m3["shards_owned"]), ("down", 0), "n3 as a member")
        log(f"after the leave: {sorted(c.counts(sn).items())}, unreachable "
            f"{sn['unreachable_from_here']}")
        eq(sum(c.counts(sn).values()), 64, "every shard has an owner")
        eq(sn["unreachable_from_here"], [], "a node that left is not 'unreachable'")
        for n in (n1, n2):
            with c.admin(n) as adm:
                compare(before, snapshot(adm, products, users, orders), f"through {n.name}")
        with c.admin(n2) as adm:  # writes to entities that lived on n3
            for kind, ident in on_n3:
                if kind == "user":
                    adm.ok("user.deposit", {"user_id": ident, "amount_cents": 7,
                                            "request_id": "after-leave"})


def test_drain_on_sigterm():
    with h.Session("cl-drain") as s:
        c = h.Cluster(s)
        c.add()
        c.add()
        c.cluster_args = c.cluster_args + ["--drain"]
        n3 = c.add()
        c.wait_balanced(timeout=90.0)
        users = [f"du{i}" for i in range(12)]
        make_users(c, users, 300)
        with c.admin(c.nodes[0]) as adm:
            before = snapshot(adm, users=users)
        t0 = time.monotonic()
        code = n3.terminate(timeout=60)
        log(f"n3 (--drain) exited with {code} {time.monotonic() - t0:.1f}s after SIGTERM")
        eq(code, 0, "exit status after SIGTERM with --drain")
        sn = h.wait_until(lambda: c.status(c.nodes[0]), 10.0, 0.1, "n1 to answer")
        counts = c.counts(sn)
        state = {m["node_id"]: (m["state"], m["shards_owned"]) for m in sn["members"]}
        log(f"after the drain: {sorted(counts.items())}, members {state}")
        check(not counts.get("n3"), f"n3 still owns {counts.get('n3')} shards")
        for n in c.nodes[:2]:
            with c.admin(n) as adm:
                compare(before, snapshot(adm, users=users), f"through {n.name}")


def paused_node(victim_name):
    with h.Session("cl-pause") as s:
        c, st = three_nodes(s)
        victim = c.node(victim_name)
        others = [n for n in c.nodes if n is not victim]
        users = [f"pu{i}" for i in range(9)]
        make_users(c, users, 0)
        log(f"users by owner: {spread(c, st, 'user', users)}; pausing {victim.name}"
            f"{' (the coordinator)' if st['coordinator'] == victim.name else ''}")
        deposits = {}  # request_id -> [user, amount, acked]
        codes = {}
        slow = []      # (latency s, user, its owner, via node, answer, seconds after the pause)
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
                while not stop.is_set() and i < 1000:
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

        # one writer per user: a request stuck on the paused node holds up only its own user
        threads = [threading.Thread(target=writer, args=(w, u), daemon=True)
                   for w, u in enumerate(users)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        pause = PAUSE_S
        victim.proc.send_signal(signal.SIGSTOP)
        t_stop[0] = time.monotonic()
        try:
            time.sleep(pause)
        finally:
            victim.proc.send_signal(signal.SIGCONT)
        t_cont = time.monotonic()
        log(f"{victim.name} was stopped for {t_cont - t_stop[0]:.1f}s")
        time.sleep(2.0)
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
            f"acknowledged during the pause, by the user's owner: {dict(sorted(during.items()))}; "
            f"longest gap between any two acknowledgements {max(gaps) * 1000:.0f} ms")
        for row in sorted(slow, key=lambda r: r[-1]):
            log("  slow: %.2fs deposit to %s (on %s) via %s -> %s, sent %+.2fs after SIGSTOP"
                % row)
        live_owners = [n.name for n in others]
        check(sum(during.get(o, 0) for o in live_owners) > 0,
              "no deposit to a user of a running node was acknowledged during the pause")

        t0 = time.monotonic()
        c.wait_balanced(timeout=60.0)
        log(f"cluster settled {time.monotonic() - t0:.1f}s after the writer stopped")
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
    paused_node("n3")


def test_paused_coordinator():
    paused_node("n1")


def test_load_while_a_node_joins():
    with h.Session("cl-load") as s:
        c, st = three_nodes(s)
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
        st4 = c.wait_balanced(timeout=90.0)
        t_balanced = time.monotonic()
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(timeout=90)
            check(not t.is_alive(), "a load client did not stop")
        if failure:
            raise failure[0]
        counts = c.counts(st4)
        log(f"n4 joined and the map balanced {t_balanced - t_join:.1f}s after starting it: "
            f"{sorted(counts.items())}; {len(acked) - n_before} orders acknowledged meanwhile")
        check(counts.get("n4", 0) >= 10, f"n4 owns {counts.get('n4', 0)} shards")
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
        for row in slow:
            order = row[2]
            where = ", ".join(f"{k}/{i}:{c.owner_of(st, k, i)}->{c.owner_of(st4, k, i)}"
                              for k, i in [("order", order)] +
                              [("inventory", it["product_id"]) for it in
                               (now.get(order) or {}).get("items", [])] +
                              [("user", (now.get(order) or {}).get("user_id", "?"))])
            log("  slow or failed: %.2fs %s %s via %s -> %s, sent at %s" % row +
                f" (owners before->after: {where})")
        coordinator = c.node(st4["coordinator"])
        moves = moves_in_log(coordinator, target="n4")
        # Printed, not asserted: log lines are not an interface.
        if moves:
            ms = [m[3] for m in moves]
            log(f"shard move unavailability: median {statistics.median(ms):g} ms, "
                f"max {max(ms)} ms over {len(ms)} moves (from {coordinator.name}'s log)")
        else:
            log(f"shard move unavailability: unknown, no 'moved shard N to n4 (epoch E, T ms)' "
                f"lines in {coordinator.name}'s log")
        stuck = [r for r in slow if r[0] > 1.0]
        if stuck:
            log(f"NOTE: {len(stuck)} request(s) took over 1 s although every move took at most "
                f"{max(m[3] for m in moves) if moves else '?'} ms (answers: "
                f"{sorted(set(r[4] for r in stuck))}): a request in flight at an entity whose "
                "shard moves is not answered until orderd's --request-timeout")

HANDING_RE = re.compile(r".* node=(\S+) handing shard (\d+) to (\S+) \(epoch (\d+)\)")


def test_failed_handoff_keeps_the_shard():
    """The target of a handoff dies mid-copy: the shard stays with its old owner, serving again,
    and nothing is lost; after the target comes back the cluster balances as usual."""
    with h.Session("cl-failed-handoff") as s:
        # Small chunks with a pause between them make each move of a shard with data last
        # long enough to kill the target in the middle (fault-injection knobs of orderd).
        c = h.Cluster(s, extra_args=["--enable-fault-injection", "--handoff-chunk-bytes", "256",
                                     "--handoff-chunk-delay", "250ms", "--max-moves", "1"])
        c.start(1)
        n1 = c.nodes[0]
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
        orders = []
        with c.admin(n1) as adm:
            before = snapshot(adm, products, users, orders)
        n2 = c.add()

        user_shards = {h.shard_of("user", u) for u in users}

        def handing():
            # A shard with a user in it whose move has started and not finished.
            text = n1.log_text()
            done = {m[0] for m in moves_in_log(n1)}
            for line in text.splitlines():
                m = HANDING_RE.match(line)
                if m and m.group(3) == "n2" and int(m.group(2)) in user_shards - done:
                    return int(m.group(2))
            return None
        shard = h.wait_until(handing, 60.0, 0.01, "n1 to start handing a user's shard to n2")
        n2.kill()
        log(f"killed n2 while it was receiving shard {shard}")
        in_shard = [e for e in before if h.shard_of(*e) == shard]
        log(f"{len(in_shard)} recorded entities live in shard {shard}")

        def served_again():
            with c.admin(n1) as adm:
                for kind, ident in in_shard:
                    op = {"product": "product.get", "inventory": "inventory.get",
                          "user": "user.get", "order": "order.get"}[kind]
                    key = {"product": "product_id", "inventory": "product_id",
                           "user": "user_id", "order": "order_id"}[kind]
                    r = adm.request(op, {key: ident})
                    if not r.get("ok") or r["result"] != before[(kind, ident)]:
                        return None
            return True
        h.wait_until(served_again, 30.0, 0.2, f"shard {shard} to be served by n1 again")
        st = c.status(n1)
        eq(c.owners(st)[shard], "n1", f"owner of shard {shard} after the failed handoff")
        check("failed" in n1.log_text() or "waits until" in n1.log_text(),
              "n1 logged the failed (or unresolved) handoff")
        # The target comes back: everything balances and every entity reads as before.
        n2.restart()
        c.wait_balanced(timeout=120.0)
        with c.admin(n1) as adm:
            after = snapshot(adm, products, users, orders)
        compare(before, after, "after the failed handoff and the rebalance")



if __name__ == "__main__":
    h.main([test_any_node_reaches_the_same_entity, test_entities_spread_over_the_nodes,
            test_cross_node_orders_add_up, test_kill9_one_node, test_fourth_node_joins,
            test_node_leaves, test_drain_on_sigterm, test_paused_node, test_paused_coordinator,
            test_load_while_a_node_joins, test_failed_handoff_keeps_the_shard], __doc__)
