#!/usr/bin/env python3
"""Issue 13: a user's unpaid reservations are capped, in count (--max-open-orders-per-user) and in
units (--max-reserved-units-per-user). Beyond a cap order.place answers limit_exceeded and changes
nothing; paying, cancelling, expiry and rejection free a slot; a retried place counts once; a
restart keeps the counts (they are the user entity's journal)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq  # noqa: E402


def capped_node(session, orders=0, units=0, **kw):
    extra = ["--max-open-orders-per-user", str(orders), "--max-reserved-units-per-user", str(units)]
    node = session.node(extra_args=extra, **kw).start()
    adm = node.admin()
    h.create_product(adm, "apple", 100, 1000, name="Apple")
    h.create_product(adm, "plum", 100, 2, name="Plum")
    return node, adm


def place(c, order_id, quantity=1, product="apple", user="alice"):
    return c.request("order.place", {"order_id": order_id, "user_id": user,
                                     "items": [{"product_id": product, "quantity": quantity}]})


def placed(c, order_id, quantity=1, product="apple", user="alice"):
    r = place(c, order_id, quantity, product, user)
    check(r.get("ok") is True, f"place {order_id}: {r}")
    return h.settled(c, r["result"])


def refused(c, order_id, quantity=1, what=""):
    """order.place over a cap: limit_exceeded, and the order_id stays free."""
    before = h.inv(c, "apple")
    r = place(c, order_id, quantity)
    check(r.get("ok") is False, f"{what}: place {order_id} over the cap was accepted: {r}")
    eq(r["error"]["code"], "limit_exceeded", f"{what}: code")
    check("pay or cancel" in r["error"]["message"] or "limit" in r["error"]["message"],
          f"{what}: message says why: {r}")
    eq(h.inv(c, "apple"), before, f"{what}: a refused place holds no stock")
    c.err("order.get", {"order_id": order_id}, code="not_found")
    return r["error"]


def test_count_cap_pay_cancel_and_restart():
    with h.Session("capcount") as s:
        node, adm = capped_node(s, orders=3)
        c = node.client()
        c.token = h.register_login(c, "alice")
        c.ok("user.deposit", {"user_id": "alice", "amount_cents": 10000, "request_id": "d1"})
        for i in (1, 2, 3):
            eq(placed(c, f"a-{i}")["status"], "RESERVED", f"a-{i}")
        refused(c, "a-4", what="4th open order")
        # A retried place of an order already counted answers it and counts nothing more.
        eq(placed(c, "a-2")["status"], "RESERVED", "a-2 placed again")
        refused(c, "a-4", what="after a retried place")
        # Another user has caps of its own.
        with node.client() as b:
            b.token = h.register_login(b, "bob")
            eq(placed(b, "b-1", user="bob")["status"], "RESERVED", "bob is not capped by alice")
        # Paying frees a slot.
        eq(h.settled(c, c.ok("order.pay", {"order_id": "a-1"}))["status"], "PAID", "pay a-1")
        eq(placed(c, "a-4")["status"], "RESERVED", "a-4 after paying a-1")
        refused(c, "a-5", what="full again")
        # Cancelling frees a slot.
        eq(h.settled(c, c.ok("order.cancel", {"order_id": "a-2"}))["status"], "CANCELLED", "a-2")
        eq(placed(c, "a-5")["status"], "RESERVED", "a-5 after cancelling a-2")
        refused(c, "a-6", what="full before the restart")

        # The counts are in the user's journal: a restart (kill -9) keeps them.
        node.restart()
        c = node.client(token=c.token)
        refused(c, "a-6", what="full after the restart")
        eq(h.settled(c, c.ok("order.cancel", {"order_id": "a-3"}))["status"], "CANCELLED", "a-3")
        eq(placed(c, "a-6")["status"], "RESERVED", "a-6 after cancelling a-3, restarted")
        refused(c, "a-7", what="full after the restart, again")
        # The admin places for alice under alice's caps too.
        with node.admin() as a2:
            eq(place(a2, "a-8")["error"]["code"], "limit_exceeded", "admin for alice")


def test_units_cap():
    with h.Session("capunits") as s:
        node, adm = capped_node(s, units=10)
        c = node.client()
        c.token = h.register_login(c, "alice")
        placed(c, "u-1", 6)
        refused(c, "u-2", 5, what="6 + 5 units")
        placed(c, "u-2", 4)
        refused(c, "u-3", 1, what="10 units held")
        refused(c, "big", 11, what="one order above the cap")
        node.restart()
        c = node.client(token=c.token)
        refused(c, "u-3", 1, what="10 units held, restarted")
        c.ok("order.cancel", {"order_id": "u-1"})
        h.settle_order(c, "u-1")
        placed(c, "u-3", 6)


def test_expiry_and_rejection_free_slots():
    with h.Session("capexpiry") as s:
        node, adm = capped_node(s, orders=1, ttl="2s")
        c = node.client()
        c.token = h.register_login(c, "alice")
        # A rejected order (out of stock) frees the slot it claimed.
        eq(placed(c, "r-1", 5, product="plum")["status"], "REJECTED", "r-1")
        eq(placed(c, "e-1")["status"], "RESERVED", "e-1 after a rejection")
        refused(c, "e-2", what="one open")
        # The reservation lapses: its slot is free again.
        h.wait_until(lambda: c.ok("order.get", {"order_id": "e-1"})["status"] == "CANCELLED",
                     15, 0.2, "e-1 to expire")
        eq(c.ok("order.get", {"order_id": "e-1"}).get("reason"), "expired", "e-1 reason")
        deadline = time.monotonic() + 10
        while True:  # the expiry's saga frees the slot as its last step
            r = place(c, "e-2")
            if r.get("ok") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(r.get("ok") is True, f"e-2 after e-1 expired: {r}")


def test_default_caps():
    with h.Session("capdefault") as s:
        node = s.node().start()
        adm = node.admin()
        h.create_product(adm, "apple", 100, 5000, name="Apple")
        c = node.client()
        c.token = h.register_login(c, "alice")
        for i in range(20):
            placed(c, f"d-{i}")
        refused(c, "d-20", what="the 21st open order with the default flags")
        c.ok("order.cancel", {"order_id": "d-0"})
        h.settle_order(c, "d-0")
        with node.client() as b:
            b.token = h.register_login(b, "bob")
            r = place(b, "big", 1001, user="bob")
            eq(r["error"]["code"], "limit_exceeded", "1001 units with the default flags")
            placed(b, "ok", 1000, user="bob")


if __name__ == "__main__":
    h.main([test_count_cap_pay_cancel_and_restart, test_units_cap,
            test_expiry_and_rejection_free_slots, test_default_caps],
           description=__doc__)
