#!/usr/bin/env python3
"""System test of request ids and order.timeline (issue 14): three orderd on a private etcd,
started with --log-level debug (the request id lines are debug lines), replication factor 1 (one
node leads each shard; replication_test.py covers the replicated paths, which carry the same
entity messages).

  * one order followed across nodes: its user, its product's inventory and the order itself live
    on shards led by different nodes, and every request enters through a node that leads none
    of them. order.place and order.pay carry request ids the client chose; each reply carries
    its id back. The order's timeline (order.timeline, as its owner and as the admin; not for
    another user) shows place, reserve, pay and confirm with the order's leader as node, a
    time, and the request id of the request that caused each step; `orderctl order.timeline`
    prints them. Once the nodes stopped (their logs flushed), each id is in the log of every
    node its request touched: the entry node, the order's leader, the inventory's and the
    user's leaders; every such line names its own node
  * a request without an id gets one the entry node made (its node id first) in the reply;
    a malformed id is `bad_request` and changes nothing

Needs /usr/bin/etcd (Debian etcd-server).
"""

import json
import os
import re
import secrets
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

BALANCE_TIMEOUT = 120.0
CANDIDATES = 400  # ids tried to find entities on the wanted nodes (64 shards over 3 nodes)


def debug_command(base):
    """`base` (the node's usual command line) with --log-level debug instead of info."""
    cmd = list(base())
    at = cmd.index("--log-level")
    cmd[at + 1] = "debug"
    return cmd


def debug_cluster(s, tag):
    """Three nodes logging at debug level, balanced; returns (cluster, status)."""
    etcd = eh.Etcd(s).start()
    c = eh.EtcdCluster(s, etcd, name=tag, tls=False)
    nodes = [c.add(start=False) for _ in range(3)]
    for n in nodes:
        base = n.command
        n.command = lambda base=base: debug_command(base)
        n.start(45.0)
    return c, c.wait_balanced(timeout=BALANCE_TIMEOUT)


def pick(c, st, kind, prefix, leader, avoid=()):
    """An id `prefix<i>` of `kind` whose shard `leader` leads (or, with leader None, one that
    none of `avoid` leads)."""
    for i in range(CANDIDATES):
        ident = f"{prefix}{i}"
        owner = c.owner_of(st, kind, ident)
        if (leader is not None and owner == leader) or \
                (leader is None and owner not in avoid):
            return ident, owner
    raise AssertionError(f"no {kind} id among {CANDIDATES} on the wanted node")


def traced(cl, op, args, req_id=None):
    """Sends one request with a top-level request_id (when given); returns the whole reply."""
    req = cl.make(op, args)
    if req_id is not None:
        req["request_id"] = req_id
    cl.send_raw(json.dumps(req, separators=(",", ":")) + "\n")
    reply = cl.read_reply()
    eq(reply.get("id"), req["id"], f"{op}: reply id")
    return reply


def lines_with(node, needle):
    """The lines of `node`'s log files (every start) that contain `needle`."""
    out = []
    for f in node.all_logs():
        if f.exists():
            out += [ln for ln in f.read_text(errors="replace").splitlines() if needle in ln]
    return out


def test_one_order_followed_across_nodes():
    with h.Session("trace") as s:
        c, st = debug_cluster(s, "trace")
        n1, n2, n3 = c.nodes
        # The order on n2, its inventory on n3, its user off n2 (n1 or n3): the entry node n1
        # leads none of the order, the inventory; the request crosses nodes at every step.
        order_id, order_node = pick(c, st, "order", "tro", n2.name)
        product, stock_node = pick(c, st, "inventory", "trp", n3.name)
        user, user_node = pick(c, st, "user", "tru", None, avoid=(n2.name,))
        log(f"order {order_id} on {order_node}, inventory {product} on {stock_node}, "
            f"user {user} on {user_node}; requests enter through {n1.name}")
        with c.admin(n1) as adm:
            h.create_product(adm, product, 700, 10, request_id=f"init-{product}")
            adm.ok_retry("user.register", {"user_id": user, "password": "pw-trace-secret"})
            adm.ok_retry("user.deposit", {"user_id": user, "amount_cents": 5000,
                                          "request_id": f"init-{user}"})
        tag = secrets.token_hex(4)
        place_id, pay_id = f"trace-place-{tag}", f"trace-pay:{tag}"
        with n1.client() as cl:
            token = cl.ok("user.login", {"user_id": user, "password": "pw-trace-secret"})["token"]
            cl.token = token
            r = traced(cl, "order.place", {"order_id": order_id, "user_id": user,
                                           "items": [{"product_id": product, "quantity": 2}]},
                       place_id)
            check(r.get("ok") is True, f"order.place: {r}")
            eq(r.get("request_id"), place_id, "order.place reply's request_id")
            eq(h.settled(cl, r["result"])["status"], "RESERVED", "the order after place")
            r = traced(cl, "order.pay", {"order_id": order_id}, pay_id)
            check(r.get("ok") is True, f"order.pay: {r}")
            eq(r.get("request_id"), pay_id, "order.pay reply's request_id")
            eq(r["result"]["status"], "PAID", "the order after pay")

            timeline = cl.ok("order.timeline", {"order_id": order_id})
        eq(timeline["order_id"], order_id, "timeline order_id")
        eq(timeline["truncated"], False, "timeline truncated")
        steps = timeline["steps"]
        log("timeline: " + "; ".join(f"{x['step']} {x['outcome']} on {x['node']} "
                                     f"req={x['request_id']}" for x in steps))
        want = [("place", "ok", place_id), ("reserve", "ok", place_id),
                ("pay", "started", pay_id), ("pay", "ok", pay_id),
                ("confirm", "ok", pay_id)]
        eq([(x["step"], x["outcome"], x["request_id"]) for x in steps], want, "timeline steps")
        for x in steps:
            eq(x["node"], order_node, f"node of step {x['step']}")
            check(isinstance(x["at"], int) and x["at"] > 0, f"time of step {x}")
        eq([x["at"] for x in steps], sorted(x["at"] for x in steps), "step times in order")

        # Who may read it: the owner (above) and the admin; another user learns nothing.
        with c.admin(n3) as adm:
            eq(adm.ok("order.timeline", {"order_id": order_id}), timeline, "admin's timeline")
        with n1.client() as other:
            other.token = h.register_login(other, f"{user}x")
            other.err("order.timeline", {"order_id": order_id}, code="not_found")
        with n1.client() as anon:
            anon.err("order.timeline", {"order_id": order_id}, code="unauthorized")

        out = h.orderctl("--port", n1.port, "order.timeline", "--order-id", order_id,
                         token=token)
        eq(out.returncode, 0, f"orderctl order.timeline exit code (stderr {out.stderr!r})")
        for word in ("STEP", "reserve", "confirm", order_node, place_id, pay_id):
            check(word in out.stdout, f"orderctl order.timeline output names {word!r}:\n"
                                      f"{out.stdout}")

        # The logs: SIGTERM flushes them.
        for n in c.nodes:
            eq(n.terminate(), 0, f"{n.name} exit code after SIGTERM")
        touched = {n1.name, order_node, stock_node, user_node}
        for req_id in (place_id, pay_id):
            for n in c.nodes:
                found = lines_with(n, f"req={req_id}")
                if n.name in touched:
                    check(found, f"{req_id} not in the log of {n.name}")
                    log(f"{req_id}: {len(found)} lines on {n.name}")
                for line in found:
                    check(re.search(rf"node={re.escape(n.name)}\b", line),
                          f"a line of {n.name} about {req_id} names another node: {line}")
        # The order's leader logged each saga step of the payment with its id.
        for step in ("pay", "confirm"):
            check(any(f"step {step}" in ln for ln in lines_with(c.node(order_node),
                                                                 f"req={pay_id}")),
                  f"{order_node} logged no step {step} for {pay_id}")


def test_request_ids_made_and_refused():
    with h.Session("trace-ids") as s:
        c, st = debug_cluster(s, "traceids")
        n1 = c.nodes[0]
        with c.admin(n1) as adm:
            r = traced(adm, "cluster.status", {})
            check(r.get("ok") is True, f"cluster.status: {r}")
            made = r.get("request_id")
            check(isinstance(made, str) and made.startswith(f"{n1.name}-"),
                  f"a request without an id gets one the entry node made: {r.get('request_id')}")
            again = traced(adm, "cluster.status", {}).get("request_id")
            check(again != made, f"two requests got the same made id {made}")
            # A failing request carries its id too.
            r = traced(adm, "order.get", {"order_id": "never-placed"}, "trace-missing")
            eq((r.get("ok"), r.get("request_id")), (False, "trace-missing"), "error reply")
            eq(r["error"]["code"], "not_found", "error code")

            h.create_product(adm, "tp1", 100, 5, request_id="init-tp1")
            for bad in ("has space", "x" * 65, "", 7, "quote\"d", "new\nline"):
                r = traced(adm, "inventory.add", {"product_id": "tp1", "quantity": 3,
                                                  "request_id": "add-bad"}, bad)
                eq((r.get("ok"), (r.get("error") or {}).get("code")), (False, "bad_request"),
                   f"request_id {bad!r}")
                check("request_id" in r["error"]["message"], f"the message names it: {r}")
            eq(h.inv(adm, "tp1"), (5, 0, 0), "stock after the refused adds")
        for n in c.nodes:
            n.kill(signal.SIGTERM)


if __name__ == "__main__":
    h.main([test_one_order_followed_across_nodes, test_request_ids_made_and_refused],
           __doc__)
