"""The chaos workload: concurrent clients and an admin against a cluster, recorded in a history.

Each client thread is one `process` acting for its own user (register, login, then a seeded
random mix of deposit / order.place / order.pay / order.cancel / order.get / order.list /
user.get); process 0 is the admin, which restocks the few products with small stock, so that
clients really compete for the last units. Every request goes to a node chosen at random among
the running ones and is recorded (invoke, then ok / fail / info; no reply = info).

A client fails over the way a real one (an SDK, a load balancer) does: a connection that cannot
be opened, is reset or closed, or gives no reply within REQUEST_TIMEOUT makes it send the same
request (same args, so the same order_id / request_id) to another running node at once, and it
avoids that node for its next requests for NODE_HOLD_DOWN_S (it learns this from its own
failures only, never from the nemesis). A refusal marked `retry_elsewhere` (the node is cut off
from its peers, or shutting down: docs/PROTOCOL.md) is treated the same way. Any other reply
meaning "outcome unknown" (`unavailable`, ...) is retried with backoff, preferably on another
node. Every attempt is a new invoke; both kinds
of retry are bounded (MAX_FAILOVERS, MAX_ATTEMPTS). The run is bounded by a deadline and an op
count.
"""

import collections
import json
import random
import socket
import threading
import time

from chaos.history import ADMIN, outcome_of_reply

# How long a client waits for a connection or a reply before it gives the node up for this
# request (recorded `info`, sent again to another node). A healthy request answers in a few ms
# (chaos_suite on 2 cores: ok latencies' p99 8 ms without faults, at most 0.66 s in the worst
# scenario, cpu-starvation; 34 ms over all 19 scenarios),
# and the cluster itself gives a dead peer up after about 1 s (--suspect-after) and serves a
# killed primary's shards again about 1.6 s after the kill; a client waiting 3 s (the former
# value) on a dead or paused node mostly measured its own blocking, not the cluster.
REQUEST_TIMEOUT = 1.0
# A node that failed this client (connection refused, reset or closed, no reply in time) is
# avoided in the client's later choices for this long (a load balancer's outlier ejection),
# then tried again; unless every running node is avoided, then any is used.
NODE_HOLD_DOWN_S = 2.0
MAX_ATTEMPTS = 4    # attempts per logical request while the server answers "outcome unknown"
MAX_FAILOVERS = 3   # further attempts, at once on another node, after a node gave no reply
PASSWORD = "chaos-pw"


def choose_node(live, rng, avoid=(), down=None, now=0.0):
    """The node (a name of `live`, the running nodes) for the next attempt, or None if none
    runs: at random among those neither in `avoid` (the nodes that already failed this logical
    request) nor held down (`down`: name -> monotonic time until which it is avoided); failing
    that, among those not in `avoid`, the one whose hold-down ends first; failing that, the same
    among all of `live`.

    The earliest end first: healthy nodes get held down too (a request they forward to a primary
    that has just gone silent times out), and a node that keeps refusing (cut off from its
    peers) renews its hold-down with each refusal, so it is the last one to go back to, not a
    random one of three."""
    if not live:
        return None
    down = down or {}
    fresh = [n for n in live if n not in avoid and down.get(n, 0.0) <= now]
    if fresh:
        return rng.choice(fresh)
    pool = [n for n in live if n not in avoid] or list(live)
    first_end = min(down.get(n, 0.0) for n in pool)
    return rng.choice([n for n in pool if down.get(n, 0.0) == first_end])


def retry_kind(outcome, reply, reached, retry_codes=()):
    """What a logical request does after one attempt: "done" (ok, or a definite refusal not in
    `retry_codes`), "failover" (the node gave no reply, or said to retry elsewhere: try another
    at once) or "backoff" (the outcome is unknown, or a refusal in `retry_codes`: wait, then
    retry)."""
    code = ((reply or {}).get("error") or {}).get("code")
    if outcome == "ok" or (outcome == "fail" and code not in retry_codes):
        return "done"
    if reached is not None and (reply is None or retry_elsewhere(reply)):
        return "failover"
    return "backoff"


def retry_elsewhere(reply):
    """The node refused with "retry_elsewhere": it serves nothing now (cut off, shutting down)."""
    return ((reply or {}).get("error") or {}).get("retry_elsewhere") is True


class Conn:
    """One JSON-lines connection to a node; any error closes it (the caller records info)."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=REQUEST_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.next_id = 1

    def call(self, op, args, token):
        rid = self.next_id
        self.next_id += 1
        req = {"id": rid, "op": op, "args": args}
        if token:
            req["token"] = token
        self.sock.settimeout(REQUEST_TIMEOUT)
        self.sock.sendall((json.dumps(req, separators=(",", ":")) + "\n").encode())
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("no reply in time")
                self.sock.settimeout(left)
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("connection closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            reply = json.loads(line)
            if reply.get("id") == rid:
                return reply
            # a stale reply (of an earlier request that timed out): skip it

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Actor:
    """One process of the history: its rng, token, connections (one per node)."""

    def __init__(self, driver, process, user, rng):
        self.d = driver
        self.process = process
        self.user = user
        self.rng = rng
        # node choices draw from their own stream, so failures do not shift the workload's
        self.route_rng = random.Random(f"{driver.seed}-route-{process}")
        self.token = driver.admin_token if user == ADMIN else None
        self.conns = {}
        self.down = {}   # node name -> monotonic time until which this client avoids it

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    def _pick_node(self, avoid=()):
        live = {n.name: n for n in self.d.cluster.live()}
        name = choose_node(sorted(live), self.route_rng, avoid, self.down, time.monotonic())
        return live.get(name)

    def attempt(self, op, args, as_user, avoid=()):
        """One recorded attempt; returns (outcome, reply or None, the node's name or None).
        A reply of None from a named node means the node gave none (connection failed, reset,
        closed, or no reply in REQUEST_TIMEOUT): this client then holds it down a while, as
        after a refusal marked retry_elsewhere."""
        node = self._pick_node(avoid)
        h = self.d.history
        if node is None:
            req = h.invoke(self.process, op, args, node=None, as_user=as_user)
            h.complete(self.process, req, op, "info", None,
                       {"code": "no_reply", "message": "no node running"}, None)
            time.sleep(0.2)
            return "info", None, None
        token = self.token if as_user is not None else None
        req = h.invoke(self.process, op, args, node=node.name, as_user=as_user)
        reply, reason = None, "no reply"
        try:
            conn = self.conns.get(node.name)
            if conn is None:
                conn = self.conns[node.name] = Conn(node.host, node.port)
            reply = conn.call(op, args, token)
        except (OSError, ValueError, ConnectionError) as e:
            reason = f"{type(e).__name__}: {e}"[:200]
            c = self.conns.pop(node.name, None)
            if c:
                c.close()
            self.down[node.name] = time.monotonic() + NODE_HOLD_DOWN_S
        if retry_elsewhere(reply):
            self.down[node.name] = time.monotonic() + NODE_HOLD_DOWN_S
        h.reply(self.process, req, op, reply, node=node.name, no_reply_reason=reason)
        self.d.count_op()
        return outcome_of_reply(reply), reply, node.name

    def call(self, op, args, as_user, retry_codes=()):
        """A logical request: sent again (same args) while the outcome is unknown, bounded: at
        once to another node when a node gave no reply (MAX_FAILOVERS times), with backoff when
        the server answered "outcome unknown" (MAX_ATTEMPTS attempts)."""
        outcome, reply = "info", None
        tried = []          # nodes whose attempt at this request failed, least preferred next
        answered = failovers = 0
        while True:
            outcome, reply, node = self.attempt(op, args, as_user, avoid=tried)
            kind = retry_kind(outcome, reply, node, retry_codes)
            if kind == "done":
                return outcome, reply
            if node is not None and node not in tried:
                tried.append(node)
            if kind == "failover":
                failovers += 1
                if failovers > MAX_FAILOVERS:
                    break
                continue
            answered += 1
            if answered >= MAX_ATTEMPTS or (self.d.stopping() and answered >= 2):
                break
            i = answered - 1
            time.sleep(min(1.0, 0.1 * (2 ** i)) * (0.5 + self.rng.random()))
        return outcome, reply


class Driver:
    def __init__(self, history, cluster, seed, n_clients=4, products=None, duration=20.0,
                 max_ops=20000, users=None):
        self.history = history
        self.cluster = cluster
        self.admin_token = cluster.admin_token
        self.seed = seed
        self.duration = duration
        self.max_ops = max_ops
        self.users = users or [f"u{i + 1}" for i in range(n_clients)]
        self.products = products or {"p1": 100, "p2": 250, "p3": 400, "p4": 150}
        self.initial_stock = 4
        self.placed = set()          # every order id a client tried to place
        self.touched = collections.deque(maxlen=64)   # recent (kind, id), for admin.crash
        self._lock = threading.Lock()
        self._ops = 0
        self._stop = threading.Event()
        self._deadline = None
        self.threads = []
        self.errors = []

    # -- bookkeeping ------------------------------------------------------------------------

    def count_op(self):
        with self._lock:
            self._ops += 1

    @property
    def ops(self):
        return self._ops

    def stopping(self):
        return (self._stop.is_set() or time.monotonic() >= self._deadline
                or self._ops >= self.max_ops)

    def touch(self, kind, ident):
        self.touched.append((kind, ident))

    # -- setup (before the faults) ----------------------------------------------------------

    def setup(self):
        """Creates the products and their initial stock (admin, recorded). Returns False if a
        product could not be created (the run cannot go on)."""
        self._deadline = time.monotonic() + 120
        admin = Actor(self, 0, ADMIN, random.Random(f"{self.seed}-setup"))
        try:
            for pid, price in self.products.items():
                out, _ = admin.call("product.create",
                                    {"product_id": pid, "name": f"product {pid}",
                                     "price_cents": price}, ADMIN)
                if out != "ok":
                    return False
                out, _ = admin.call("inventory.add",
                                    {"product_id": pid, "quantity": self.initial_stock,
                                     "request_id": f"init-{pid}"}, ADMIN)
        finally:
            admin.close()
        return True

    # -- the run ----------------------------------------------------------------------------

    def start(self):
        self._deadline = time.monotonic() + self.duration
        self.threads = [threading.Thread(target=self._guard, args=(self._admin_loop,),
                                         name="chaos-admin", daemon=True)]
        for i, user in enumerate(self.users):
            self.threads.append(threading.Thread(target=self._guard,
                                                 args=(self._client_loop, i + 1, user),
                                                 name=f"chaos-client-{i + 1}", daemon=True))
        for t in self.threads:
            t.start()

    def stop(self):
        self._stop.set()

    def join(self, timeout=60.0):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # a driver bug must not hang the run; it is reported
            self.errors.append(f"{threading.current_thread().name}: {type(e).__name__}: {e}")

    def _admin_loop(self):
        rng = random.Random(f"{self.seed}-admin")
        admin = Actor(self, 0, ADMIN, rng)
        k = 0
        try:
            while not self.stopping():
                time.sleep(0.5 + rng.random())
                if self.stopping():
                    break
                pid = rng.choice(sorted(self.products))
                if rng.random() < 0.7:
                    k += 1
                    admin.call("inventory.add", {"product_id": pid,
                                                 "quantity": rng.randint(1, 3),
                                                 "request_id": f"r-{k}"}, ADMIN)
                    self.touch("inventory", pid)
                else:
                    admin.call("inventory.get", {"product_id": pid}, ADMIN)
        finally:
            admin.close()

    def _login(self, a):
        for _ in range(MAX_ATTEMPTS):
            out, reply = a.call("user.login", {"user_id": a.user, "password": PASSWORD}, None)
            if out == "ok":
                a.token = reply["result"]["token"]
                return True
            if self.stopping():
                return False
            time.sleep(0.3)
        return False

    def _client_loop(self, process, user):
        rng = random.Random(f"{self.seed}-client-{process}")
        a = Actor(self, process, user, rng)
        try:
            self._client(a, rng)
        finally:
            a.close()

    def _client(self, a, rng):
        user = a.user
        registered = False
        for _ in range(MAX_ATTEMPTS):
            out, reply = a.call("user.register",
                                {"user_id": user, "password": PASSWORD, "name": user}, None)
            code = ((reply or {}).get("error") or {}).get("code")
            if out == "ok" or code == "conflict":  # conflict after a retry: it worked
                registered = True
                break
            if self.stopping():
                break
        if not registered or not self._login(a):
            return
        # order_id -> last status seen. MISSING: its placement's outcome was unknown and a node
        # then answered not_found, so it was never applied; the client stops asking about it.
        # STALE: a pay or cancel was refused invalid_state (the order moved on, e.g. REJECTED,
        # while the client had not seen it): no more pays or cancels until an order.get shows
        # its status. Asking again and again measured the workload, not the cluster.
        orders = {}
        n_orders = n_deps = 0
        products = sorted(self.products)
        while not self.stopping():
            r = rng.random()
            known = sorted(o for o, s in orders.items() if s != "MISSING")
            live_orders = [o for o in known
                           if orders[o] not in ("CANCELLED", "REJECTED", "STALE")]
            target = None     # the order a pay, cancel or get names
            if r < 0.20:
                n_deps += 1
                args = {"user_id": user, "amount_cents": rng.randint(1, 15) * 100,
                        "request_id": f"d-{a.process}-{n_deps}"}
                out, reply = a.call("user.deposit", args, user)
                self.touch("user", user)
            elif r < 0.50 or not live_orders:
                n_orders += 1
                oid = f"o-{a.process}-{n_orders}"
                items = [{"product_id": p, "quantity": rng.randint(1, 2)}
                         for p in rng.sample(products, rng.randint(2, 3))]
                self.placed.add(oid)
                out, reply = a.call("order.place", {"order_id": oid, "user_id": user,
                                                    "items": items}, user)
                orders[oid] = "UNKNOWN"
                self.touch("order", oid)
                for it in items:
                    self.touch("inventory", it["product_id"])
            elif r < 0.70:
                oid = target = rng.choice(live_orders)
                out, reply = a.call("order.pay", {"order_id": oid}, user,
                                    retry_codes=("conflict",))
                self.touch("order", oid)
                self.touch("user", user)
            elif r < 0.80:
                oid = target = rng.choice(live_orders)
                out, reply = a.call("order.cancel", {"order_id": oid}, user,
                                    retry_codes=("conflict",))
                self.touch("order", oid)
            elif r < 0.90:
                oid = target = rng.choice(known)
                out, reply = a.call("order.get", {"order_id": oid}, user)
            elif r < 0.95:
                out, reply = a.call("user.get", {"user_id": user}, user)
            else:
                out, reply = a.call("order.list", {"user_id": user}, user)
            if out == "ok":
                res = reply.get("result") or {}
                if isinstance(res, dict) and res.get("order_id") in orders:
                    orders[res["order_id"]] = res.get("status")
            else:
                code = ((reply or {}).get("error") or {}).get("code")
                if code == "unauthorized":
                    self._login(a)
                elif code == "not_found" and orders.get(target) == "UNKNOWN":
                    orders[target] = "MISSING"
                elif code == "invalid_state" and target in orders:
                    orders[target] = "STALE"
            time.sleep(rng.random() * 0.05)
