#!/usr/bin/env python3
"""kill -9 under load loses nothing acknowledged, and the invariants hold afterwards.

Concurrent clients (threads) place / pay / cancel / deposit / restock against products with
limited stock and users with limited money, recording every request and every ok reply. In the
middle of the load the node is killed with SIGKILL and restarted on the same data dir; the
clients reconnect and go on. Afterwards (twice: two kill/restart cycles) it checks:
  * every acknowledged order is there, with the acknowledged status or a later one
    (PENDING < RESERVED < PAID < CANCELLED; REJECTED stays REJECTED);
  * deposits and restocks that got no reply are sent again with the same request_id (they are
    idempotent), so every one of them is counted exactly once;
  * per product: available + reserved + sold == stock added, none negative,
    sold == quantities of PAID orders, reserved == quantities of RESERVED orders;
  * per user: balance == deposits - totals of PAID orders (a cancelled paid order is refunded).
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

THREADS = int(os.environ.get("ORDERMESH_CRASH_THREADS", "8"))
SECONDS = float(os.environ.get("ORDERMESH_CRASH_SECONDS", "8"))
MAX_OPS = int(os.environ.get("ORDERMESH_CRASH_MAX_OPS", "2000"))    # per thread and cycle
MIN_OP_SECONDS = 0.01  # pacing: at most ~100 requests/s per thread, so the load spans the kill
MAX_ORDERS = 200  # per thread and cycle; 2 threads per user x 2 cycles stays under order.list's 1000
USERS = ["u0", "u1", "u2", "u3"]
PRODUCTS = {"p0": 100, "p1": 250, "p2": 400, "p3": 999}  # price in cents
INITIAL_STOCK = 400
INITIAL_MONEY = 50000


class Ledger:
    """Everything the clients sent and what was acknowledged. Guarded by `lock`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # order_id -> most advanced acknowledged status
        self.placed = set()    # every order_id sent in an order.place
        self.deposits = {}     # request_id -> [user, amount, acked]
        self.restocks = {}     # request_id -> [product, qty, acked]
        self.stock_added = {p: INITIAL_STOCK for p in PRODUCTS}
        self.sent = 0
        self.ok = 0
        self.errors = {}       # code -> count
        self.lost = 0          # no reply (connection dropped, timeout)

    def ack_order(self, order):
        oid, st = order.get("order_id"), order.get("status")
        with self.lock:
            self.ok += 1
            prev = self.acked.get(oid)
            if prev is None or st == "REJECTED":
                self.acked[oid] = st
            elif prev != "REJECTED" and h.STATUS_RANK.get(st, -1) > h.STATUS_RANK.get(prev, -1):
                self.acked[oid] = st

    def error(self, code):
        with self.lock:
            self.errors[code] = self.errors.get(code, 0) + 1


class Worker(threading.Thread):
    def __init__(self, node, ledger, tokens, index, cycle, deadline):
        super().__init__(name=f"worker-{index}", daemon=True)
        self.node, self.ledger, self.tokens = node, ledger, tokens
        self.index, self.cycle, self.deadline = index, cycle, deadline
        self.user = USERS[index % len(USERS)]
        self.rng = random.Random(1000 * cycle + index)
        self.client = None
        self.reserved, self.paid = [], []   # this worker's orders by what it last heard
        self.orders = 0
        self.failure = None

    def connect(self):
        if self.client is None:
            try:
                self.client = h.Client(self.node.port, timeout=10.0)
            except OSError:
                self.client = None
                time.sleep(0.1)
        return self.client

    def call(self, op, args, token):
        """The reply (dict), or None when none came (connection lost / timed out)."""
        with self.ledger.lock:
            self.ledger.sent += 1
        try:
            reply = self.client.request(op, args, token)
        except (OSError, ConnectionError, ValueError, AssertionError):
            self.client.close()
            self.client = None
            with self.ledger.lock:
                self.ledger.lost += 1
            return None
        if not reply.get("ok"):
            code = (reply.get("error") or {}).get("code")
            self.ledger.error(code)
            if code == "unauthorized":  # e.g. sessions did not survive the restart
                self.relogin()
        return reply

    def relogin(self):
        try:
            r = self.client.request("user.login", {"user_id": self.user,
                                                   "password": f"pw-{self.user}-secret"})
            if r.get("ok"):
                self.tokens[self.user] = r["result"]["token"]
        except (OSError, ConnectionError, ValueError, AssertionError):
            self.client.close()
            self.client = None

    def run(self):
        try:
            self.loop()
        except BaseException as e:  # noqa: B902 - reported by the main thread
            self.failure = e
        finally:
            if self.client:
                self.client.close()

    def loop(self):
        led = self.ledger
        n = 0
        while time.monotonic() < self.deadline and n < MAX_OPS:
            if not self.connect():
                continue  # node down (being restarted): connect() waited a little
            n += 1
            t0 = time.monotonic()
            tok = self.tokens[self.user]
            r = self.rng.random()
            if self.reserved and r < 0.30:
                oid = self.reserved.pop(self.rng.randrange(len(self.reserved)))
                reply = self.call("order.pay", {"order_id": oid}, tok)
                if reply is None:
                    pass  # outcome unknown: leave the order alone
                elif reply.get("ok"):
                    led.ack_order(reply["result"])
                    if reply["result"].get("status") == "PAID":
                        self.paid.append(oid)
                elif reply["error"].get("code") in ("insufficient_funds", "conflict",
                                                    "unauthorized") + h.RETRYABLE:
                    self.reserved.append(oid)
            elif (self.reserved or self.paid) and r < 0.36:
                pool = self.paid if self.paid and self.rng.random() < 0.5 else self.reserved
                if not pool:
                    pool = self.paid or self.reserved
                oid = pool.pop(self.rng.randrange(len(pool)))
                reply = self.call("order.cancel", {"order_id": oid}, tok)
                if isinstance(reply, dict) and reply.get("ok"):
                    led.ack_order(reply["result"])
                elif isinstance(reply, dict) and reply["error"].get("code") in (
                        "conflict", "unauthorized") + h.RETRYABLE:
                    pool.append(oid)
            elif r < 0.48:
                rid = f"dep-c{self.cycle}-t{self.index}-{n}"
                amount = self.rng.choice((500, 1000, 2500))
                with led.lock:
                    led.deposits[rid] = [self.user, amount, False]
                reply = self.call("user.deposit", {"user_id": self.user, "amount_cents": amount,
                                                   "request_id": rid}, tok)
                if isinstance(reply, dict) and reply.get("ok"):
                    with led.lock:
                        led.deposits[rid][2] = True
                        led.ok += 1
            elif r < 0.50:
                rid = f"stock-c{self.cycle}-t{self.index}-{n}"
                pid = self.rng.choice(sorted(PRODUCTS))
                qty = self.rng.randint(5, 20)
                with led.lock:
                    led.restocks[rid] = [pid, qty, False]
                reply = self.call("inventory.add", {"product_id": pid, "quantity": qty,
                                                    "request_id": rid}, self.node.admin_token)
                if isinstance(reply, dict) and reply.get("ok"):
                    with led.lock:
                        led.restocks[rid][2] = True
                        led.ok += 1
            elif self.orders >= MAX_ORDERS:
                n -= 1
            else:
                self.orders += 1
                oid = f"c{self.cycle}-t{self.index}-{self.orders}"
                with led.lock:
                    led.placed.add(oid)
                picks = self.rng.sample(sorted(PRODUCTS), self.rng.randint(1, 2))
                items = [{"product_id": p, "quantity": self.rng.randint(1, 3)} for p in picks]
                reply = self.call("order.place", {"order_id": oid, "user_id": self.user,
                                                  "items": items}, tok)
                if isinstance(reply, dict) and reply.get("ok"):
                    led.ack_order(reply["result"])
                    if reply["result"].get("status") == "RESERVED":
                        self.reserved.append(oid)
            spare = MIN_OP_SECONDS - (time.monotonic() - t0)
            if spare > 0:
                time.sleep(spare)


def setup(node):
    adm = node.admin()
    for pid, price in PRODUCTS.items():
        h.create_product(adm, pid, price, INITIAL_STOCK, request_id=f"init-{pid}")
    tokens = {}
    with node.client() as c:
        for u in USERS:
            tokens[u] = h.register_login(c, u, f"pw-{u}-secret")
            c.ok("user.deposit", {"user_id": u, "amount_cents": INITIAL_MONEY,
                                  "request_id": f"init-{u}"}, tokens[u])
    adm.close()
    return tokens


def login_all(node, tokens):
    """Fresh tokens (sessions need not survive a restart)."""
    with node.client() as c:
        for u in USERS:
            tokens[u] = c.ok_retry("user.login", {"user_id": u,
                                                  "password": f"pw-{u}-secret"})["token"]


def resend_unacknowledged(node, led, tokens):
    """Deposits and restocks with no reply: send again with the same request_id until ok."""
    login_all(node, tokens)
    with node.admin() as adm:
        for rid, (user, amount, acked) in sorted(led.deposits.items()):
            if not acked:
                adm.ok_retry("user.deposit", {"user_id": user, "amount_cents": amount,
                                              "request_id": rid}, tokens[user])
                led.deposits[rid][2] = True
        for rid, (pid, qty, acked) in sorted(led.restocks.items()):
            if not acked:
                adm.ok_retry("inventory.add", {"product_id": pid, "quantity": qty,
                                               "request_id": rid})
                led.restocks[rid][2] = True


def all_orders(adm):
    orders = {}
    for u in USERS:
        for o in adm.ok_retry("order.list", {"user_id": u})["orders"]:
            check(o["user_id"] == u, f"order.list {u} returned {o}")
            orders[o["order_id"]] = o
    return orders


def verify(node, led, cycle, tokens):
    resend = sum(1 for d in led.deposits.values() if not d[2]) + \
        sum(1 for r in led.restocks.values() if not r[2])
    resend_unacknowledged(node, led, tokens)
    with node.admin() as adm:
        # PENDING orders (saga steps cut by the kill) settle by themselves. Orders are found
        # through order.list, and every order id ever sent is also looked up directly, so an
        # order missing from its user's list is still seen (and reported).
        unlisted = set()

        def no_pending():
            orders = all_orders(adm)
            unlisted.clear()
            for oid in sorted(led.placed - orders.keys()):
                r = adm.request("order.get", {"order_id": oid})
                if r.get("ok"):
                    orders[oid] = r["result"]
                    unlisted.add(oid)
                elif r["error"]["code"] in h.RETRYABLE:
                    return None
                else:
                    eq(r["error"]["code"], "not_found", f"order.get {oid}")
            return orders if not any(o["status"] == "PENDING" for o in orders.values()) else None
        orders = h.wait_until(no_pending, 60.0, 0.2, "every PENDING order to settle")
        eq(sorted(unlisted), [], f"cycle {cycle}: orders that exist but order.list does not show")

        by_status = {}
        for o in orders.values():
            by_status[o["status"]] = by_status.get(o["status"], 0) + 1

        # every acknowledged order is there, at least as far along as acknowledged
        missing, behind = [], []
        for oid, st in led.acked.items():
            o = orders.get(oid)
            if o is None:
                missing.append(oid)
                continue
            if st == "REJECTED" or o["status"] == "REJECTED":
                if o["status"] != st:
                    behind.append((oid, st, o["status"]))
            elif h.STATUS_RANK.get(o["status"], -1) < h.STATUS_RANK.get(st, 99):
                behind.append((oid, st, o["status"]))
        eq(missing, [], f"cycle {cycle}: acknowledged orders missing after restart")
        eq(behind, [], f"cycle {cycle}: orders behind their acknowledged status "
                       "(id, acknowledged, now)")

        # inventory invariants
        added = dict(led.stock_added)
        for pid, qty, _ in led.restocks.values():
            added[pid] += qty
        sold = {p: 0 for p in PRODUCTS}
        reserved = {p: 0 for p in PRODUCTS}
        for o in orders.values():
            for it in o["items"]:
                if o["status"] == "PAID":
                    sold[it["product_id"]] += it["quantity"]
                elif o["status"] == "RESERVED":
                    reserved[it["product_id"]] += it["quantity"]
        for pid in PRODUCTS:
            r = adm.ok_retry("inventory.get", {"product_id": pid})
            a, rs, sd = r["available"], r["reserved"], r["sold"]
            check(min(a, rs, sd) >= 0, f"{pid}: negative stock {r}")
            eq(a + rs + sd, added[pid], f"cycle {cycle}: {pid} available+reserved+sold")
            eq(sd, sold[pid], f"cycle {cycle}: {pid} sold vs PAID orders")
            eq(rs, reserved[pid], f"cycle {cycle}: {pid} reserved vs RESERVED orders")

        # money invariants
        for u in USERS:
            deposited = INITIAL_MONEY + sum(a for (usr, a, _) in led.deposits.values() if usr == u)
            spent = sum(o["total_cents"] for o in orders.values()
                        if o["user_id"] == u and o["status"] == "PAID")
            bal = adm.ok_retry("user.get", {"user_id": u})["balance_cents"]
            check(bal >= 0, f"{u}: negative balance {bal}")
            eq(bal, deposited - spent, f"cycle {cycle}: {u} balance == deposits - PAID totals")

    log(f"cycle {cycle}: sent {led.sent}, acknowledged {led.ok}, no reply {led.lost}, "
        f"errors {dict(sorted(led.errors.items()))}")
    log(f"cycle {cycle}: {len(orders)} orders by status {dict(sorted(by_status.items()))}; "
        f"{len(led.acked)} acknowledged; {len(led.deposits)} deposits, "
        f"{len(led.restocks)} restocks ({resend} sent again after the restart)")


def cycles_under_load(name, stop, env=None):
    """Two cycles: load, `stop(node, cycle)` in the middle (it must end the orderd process and
    return its exit code), restart on the same data dir, load on, verify. power_cut_test.py
    runs the same cycles with a simulated power cut as `stop`."""
    with h.Session(name) as s:
        # Without the reservation cap (issue 13): this test is about crashes, and its few users
        # place far more unpaid orders than the default cap lets through.
        node = s.node(extra_args=["--max-open-orders-per-user", "0",
                                  "--max-reserved-units-per-user", "0"], env=env).start()
        tokens = setup(node)
        led = Ledger()
        for cycle in (1, 2):
            deadline = time.monotonic() + SECONDS
            workers = [Worker(node, led, tokens, i, cycle, deadline) for i in range(THREADS)]
            for w in workers:
                w.start()
            time.sleep(SECONDS * 0.4)
            check(any(w.is_alive() for w in workers), "the load ended before the kill")
            before = led.ok
            code = stop(node, cycle)
            log(f"cycle {cycle}: stopped orderd (exit {code}) after {before} acknowledged ops")
            time.sleep(0.3)
            node.start()
            log(f"cycle {cycle}: restarted on port {node.port}")
            for w in workers:
                w.join(timeout=SECONDS + 60)
                check(not w.is_alive(), f"{w.name} did not stop")
                if w.failure:
                    raise w.failure
            check(led.ok > before, f"cycle {cycle}: no operation acknowledged after the restart")
            verify(node, led, cycle, tokens)


def test_kill9_under_load():
    cycles_under_load("crash", lambda node, cycle: node.kill())  # SIGKILL, only our pid


if __name__ == "__main__":
    h.main([test_kill9_under_load], __doc__)
