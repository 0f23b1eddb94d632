#!/usr/bin/env python3
"""ordermesh_loader (bench/) writes a data dir that orderd serves with the right state: every
kind's view matches the loaded history (inventories and users with more than 100 events, so
recovery goes through a snapshot), writes continue the loaded journals, and all of it survives a
restart. The loader binary comes from the environment: ORDERMESH_LOADER=path/to/ordermesh_loader.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

USERS, PRODUCTS, ORDERS, ITEMS, SHARDS = 5, 5, 300, 2, 8
START_BALANCE, MIN_STOCK = 1000000000, 100000


# The loader's shop, recomputed: order i of user i % U, item j is product (i*K + j) % P.
def price(p):
    return 100 + p % 900


def qty(i, j):
    return 1 + (i + j) % 3


def items(i):
    return [((i * ITEMS + j) % PRODUCTS, qty(i, j)) for j in range(ITEMS)]


def total(i):
    return sum(q * price(p) for p, q in items(i))


def sold(p):
    return sum(q for i in range(ORDERS) for pp, q in items(i) if pp == p)


def check_loaded(adm):
    for p in range(PRODUCTS):
        eq(adm.ok("product.get", {"product_id": f"p{p}"}),
           {"product_id": f"p{p}", "name": f"product {p}", "price_cents": price(p)}, f"p{p}")
        s = sold(p)
        eq(adm.ok("inventory.get", {"product_id": f"p{p}"}),
           {"product_id": f"p{p}", "available": max(MIN_STOCK, s) - s, "reserved": 0, "sold": s},
           f"inventory p{p}")
    for u in range(USERS):
        mine = list(range(u, ORDERS, USERS))
        got = adm.ok("user.get", {"user_id": f"u{u}"})
        eq(got["balance_cents"], START_BALANCE - sum(total(i) for i in mine), f"u{u} balance")
        eq(got["name"], f"user {u}", f"u{u} name")
        listed = adm.ok("order.list", {"user_id": f"u{u}"})["orders"]
        eq(sorted(o["order_id"] for o in listed), sorted(f"o{i}" for i in mine), f"u{u} orders")
    for i in (0, 1, 137, ORDERS - 1):
        o = adm.ok("order.get", {"order_id": f"o{i}"})
        eq(o["status"], "PAID", f"o{i} status")
        eq(o["user_id"], f"u{i % USERS}", f"o{i} user")
        eq(o["total_cents"], total(i), f"o{i} total")
        eq([(it["product_id"], it["quantity"], it["unit_price_cents"]) for it in o["items"]],
           [(f"p{p}", q, price(p)) for p, q in items(i)], f"o{i} items")


def test_loaded_data_is_served():
    loader = os.environ.get("ORDERMESH_LOADER")
    check(loader and os.access(loader, os.X_OK), "set ORDERMESH_LOADER to the loader binary")
    with h.Session("loader") as s:
        node = s.node(extra_args=["--shards", str(SHARDS)])
        out = subprocess.run([loader, "--data-dir", str(node.data_dir), "--users", str(USERS),
                              "--products", str(PRODUCTS), "--orders", str(ORDERS), "--items",
                              str(ITEMS), "--shards", str(SHARDS)],
                             capture_output=True, text=True, timeout=60)
        eq(out.returncode, 0, f"loader exit code (stderr: {out.stderr[-500:]})")
        log(out.stdout.strip())
        node.start()
        with node.admin() as adm:
            check_loaded(adm)
            # New writes continue the loaded journals (inventories hold 241 events, users 122: a
            # snapshot and the events after it).
            u = 3
            adm.ok("user.deposit", {"user_id": f"u{u}", "amount_cents": 500, "request_id": "more"})
            o = h.settled(adm, adm.ok("order.place", {"order_id": "fresh", "user_id": f"u{u}",
                                                      "items": [{"product_id": "p2",
                                                                 "quantity": 4}]}))
            eq(o["status"], "RESERVED", "a new order on loaded entities")
            o = h.settled(adm, adm.ok("order.pay", {"order_id": "fresh"}))
            eq(o["status"], "PAID", "paid")
        node.kill()
        node.start()
        with node.admin() as adm:
            s2 = sold(2) + 4
            eq(adm.ok("inventory.get", {"product_id": "p2"})["sold"], s2, "p2 sold after restart")
            bal = START_BALANCE - sum(total(i) for i in range(u, ORDERS, USERS)) + 500 - 4 * price(2)
            eq(adm.ok("user.get", {"user_id": f"u{u}"})["balance_cents"], bal, "balance")


if __name__ == "__main__":
    h.main([test_loaded_data_is_served], __doc__)
