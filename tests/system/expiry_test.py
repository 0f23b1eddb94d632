#!/usr/bin/env python3
"""A RESERVED order not paid within --reservation-ttl is cancelled with reason "expired" and its
stock goes back; also when the TTL passed while the node was down (no client touches the order:
the test only polls inventory.get)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

TTL_SECONDS = 2


def setup(node):
    with node.admin() as adm:
        h.create_product(adm, "lamp", 1200, 10)
    with node.client() as c:
        tok = h.register_login(c, "dana")
        c.ok("user.deposit", {"user_id": "dana", "amount_cents": 100000, "request_id": "d"}, tok)
    return tok


def place(node, tok, order_id, qty):
    with node.client(token=tok) as c:
        o = h.settled(c, c.ok("order.place", {"order_id": order_id, "user_id": "dana",
                                              "items": [{"product_id": "lamp", "quantity": qty}]}))
    eq(o["status"], "RESERVED", f"{order_id} after place")
    check(o.get("expires_at", 0) > 0, f"a RESERVED order carries expires_at: {o}")
    check(o["expires_at"] - o["updated_at"] <= (TTL_SECONDS + 1) * 1000,
          f"expires_at is about TTL after the reservation: {o}")
    return o


def check_expired(node, tok, order_id):
    with node.client(token=tok) as c:
        o = c.ok("order.get", {"order_id": order_id})
        eq(o["status"], "CANCELLED", f"{order_id} status")
        check("expired" in str(o.get("reason", "")), f"{order_id} reason: {o}")
        # an expired order can no longer be paid
        c.err("order.pay", {"order_id": order_id}, code="invalid_state")


def test_expires_while_running():
    with h.Session("expiry") as s:
        node = s.node(ttl=f"{TTL_SECONDS}s").start()
        tok = setup(node)
        t0 = time.monotonic()
        place(node, tok, "e-1", 3)
        c = node.client()
        eq(h.inv(c, "lamp"), (7, 3, 0), "lamp reserved")
        # paid orders never expire
        h.settled(c, c.ok("order.place", {"order_id": "e-paid", "user_id": "dana",
                                          "items": [{"product_id": "lamp", "quantity": 1}]},
                          tok), tok)
        c.ok("order.pay", {"order_id": "e-paid"}, tok)
        eq(h.inv(c, "lamp"), (6, 3, 1), "one sold")

        h.wait_until(lambda: h.inv(c, "lamp") == (9, 0, 1), TTL_SECONDS + 20, 0.2,
                     "the reservation of e-1 to lapse")
        log(f"e-1 expired after {time.monotonic() - t0:.1f}s (ttl {TTL_SECONDS}s)")
        check_expired(node, tok, "e-1")
        eq(c.ok("order.get", {"order_id": "e-paid"}, tok)["status"], "PAID", "paid order stays")
        c.close()


def test_expires_while_down():
    with h.Session("expiry-down") as s:
        node = s.node(ttl=f"{TTL_SECONDS}s").start()
        tok = setup(node)
        place(node, tok, "e-2", 4)
        with node.client() as c:
            eq(h.inv(c, "lamp"), (6, 4, 0), "lamp reserved")
        node.kill()  # SIGKILL
        time.sleep(TTL_SECONDS + 1.5)  # the TTL passes while the node is down
        node.start()
        t0 = time.monotonic()
        with node.client() as c:
            h.wait_until(lambda: h.inv(c, "lamp") == (10, 0, 0), 20, 0.2,
                         "the lapsed reservation of e-2 to be released after the restart")
        log(f"e-2 released {time.monotonic() - t0:.1f}s after the restart")
        check_expired(node, tok if _token_ok(node, tok) else _login(node), "e-2")


def _token_ok(node, tok):
    with node.client() as c:
        return c.request("user.get", {"user_id": "dana"}, tok).get("ok") is True


def _login(node):
    with node.client() as c:
        return c.ok("user.login", {"user_id": "dana", "password": "pw-dana-secret"})["token"]


if __name__ == "__main__":
    h.main([test_expires_while_running, test_expires_while_down], __doc__)
