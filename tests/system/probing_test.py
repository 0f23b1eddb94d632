#!/usr/bin/env python3
"""Issue 13: a user cannot tell another user's ids (users, orders) from ids never used. Probed as
an attacker would: each op on an id that exists but is someone else's and on an id never used,
replies (to requests with the same id and request id) compared byte for byte after the probed id
itself is blanked."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402


def raw(c, op, args):
    """The reply line as sent, bytes, for a request with a fixed id and request id (else the
    reply would carry one the node made, different every time)."""
    req = c.make(op, args, rid=7)
    req["request_id"] = "probe"
    c.send_raw(json.dumps(req, separators=(",", ":")) + "\n")
    line = c.read_line()
    check(line is not None, f"{op}: no reply")
    return line


def same_reply(c, op, args_of, existing, never, what):
    """`op` on an existing foreign id and on a never-used id: identical but for the id."""
    a = raw(c, op, args_of(existing)).replace(existing.encode(), b"<ID>")
    b = raw(c, op, args_of(never)).replace(never.encode(), b"<ID>")
    eq(a, b, f"{what}: {op} on someone else's id vs an id never used")
    check(json.loads(a)["ok"] is False, f"{what}: {op} succeeded: {a}")
    return json.loads(a)["error"]


def test_foreign_orders_look_like_missing_ones():
    with h.Session("probe-orders") as s:
        node = s.node().start()
        adm = node.admin()
        h.create_product(adm, "apple", 100, 100, name="Apple")
        victim = node.client()
        victim.token = h.register_login(victim, "alice")
        victim.ok("user.deposit", {"user_id": "alice", "amount_cents": 1000, "request_id": "d"})
        # The victim's orders in every status an attacker might run into.
        for oid in ("vic-reserved", "vic-paid", "vic-cancelled"):
            h.settled(victim, victim.ok("order.place", {
                "order_id": oid, "user_id": "alice",
                "items": [{"product_id": "apple", "quantity": 1}]}))
        h.settled(victim, victim.ok("order.pay", {"order_id": "vic-paid"}))
        h.settled(victim, victim.ok("order.cancel", {"order_id": "vic-cancelled"}))

        attacker = node.client()
        attacker.token = h.register_login(attacker, "mallory")
        for existing in ("vic-reserved", "vic-paid", "vic-cancelled"):
            for op in ("order.get", "order.pay", "order.cancel", "order.timeline"):
                e = same_reply(attacker, op, lambda i: {"order_id": i}, existing,
                               "never-used-" + existing, existing)
                eq(e["code"], "not_found", f"{op} on {existing}")
        # Nothing the attacker did changed the victim's orders.
        eq([victim.ok("order.get", {"order_id": o})["status"]
            for o in ("vic-reserved", "vic-paid", "vic-cancelled")],
           ["RESERVED", "PAID", "CANCELLED"], "victim's orders untouched")

        # order.place with a taken order_id: the id is the idempotency key of one namespace, so
        # a place reveals that it is taken, and nothing more: the answer to another user's id is
        # the answer to one's own id placed with other items.
        attacker.ok("order.place", {"order_id": "mal-1", "user_id": "mallory",
                                    "items": [{"product_id": "apple", "quantity": 1}]})
        items = [{"product_id": "apple", "quantity": 2}]
        foreign = raw(attacker, "order.place", {"order_id": "vic-paid", "user_id": "mallory",
                                                "items": items}).replace(b"vic-paid", b"<ID>")
        own = raw(attacker, "order.place", {"order_id": "mal-1", "user_id": "mallory",
                                            "items": items}).replace(b"mal-1", b"<ID>")
        eq(foreign, own, "order.place: someone else's order_id vs one's own with other items")
        eq(json.loads(foreign)["error"]["code"], "conflict", "order.place on a taken id")
        # ... and the same items as the victim's order change nothing either.
        same_items = raw(attacker, "order.place", {
            "order_id": "vic-paid", "user_id": "mallory",
            "items": [{"product_id": "apple", "quantity": 1}]}).replace(b"vic-paid", b"<ID>")
        eq(same_items, own, "order.place with the victim's very items")

        # The admin still tells them apart: it may see everything.
        adm.ok("order.get", {"order_id": "vic-paid"})
        adm.err("order.get", {"order_id": "never-used"}, code="not_found")


def test_foreign_user_ids_look_like_missing_ones():
    with h.Session("probe-users") as s:
        node = s.node().start()
        c = node.client()
        h.register_login(c, "alice")
        attacker = node.client()
        attacker.token = h.register_login(attacker, "mallory")
        probes = [
            ("user.get", lambda i: {"user_id": i}),
            ("user.deposit", lambda i: {"user_id": i, "amount_cents": 1, "request_id": "r"}),
            ("order.list", lambda i: {"user_id": i}),
            ("order.place", lambda i: {"order_id": "p-" + i, "user_id": i,
                                       "items": [{"product_id": "apple", "quantity": 1}]}),
        ]
        for op, args_of in probes:
            e = same_reply(attacker, op, args_of, "alice", "nobody-at-all", "user")
            eq(e["code"], "forbidden", f"{op} for another user")
        # user.login was made uniform before (wrong password = unknown user).
        a = raw(attacker, "user.login", {"user_id": "alice", "password": "guess"})
        b = raw(attacker, "user.login", {"user_id": "nobody-at-all", "password": "guess"})
        eq(a, b, "user.login: wrong password vs unknown user")
        log("user.register still answers conflict for a taken id: registration is one namespace")


if __name__ == "__main__":
    h.main([test_foreign_orders_look_like_missing_ones, test_foreign_user_ids_look_like_missing_ones],
           description=__doc__)
