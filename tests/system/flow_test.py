#!/usr/bin/env python3
"""The whole shop flow over raw TCP (JSON lines), idempotency, every client-reachable error code,
pipelining, and the same steps through the orderctl binary (exit codes 0 / 1 / 2 / 3)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402


def shop(session, **kw):
    """A running node with apple (150c, 10), pear (200c, 5) and plum (90c, 1)."""
    node = session.node(**kw).start()
    adm = node.admin()
    h.create_product(adm, "apple", 150, 10, name="Apple")
    h.create_product(adm, "pear", 200, 5, name="Pear")
    h.create_product(adm, "plum", 90, 1, name="Plum")
    return node, adm


def test_happy_flow():
    with h.Session("flow") as s:
        node, adm = shop(s)
        c = node.client()
        eq(c.ok("product.get", {"product_id": "apple"})["price_cents"], 150, "apple price")
        eq(h.inv(c, "apple"), (10, 0, 0), "apple stock")

        tok = h.register_login(c, "alice", "alice-pw", name="Alice")
        c.token = tok
        eq(c.ok("user.deposit", {"user_id": "alice", "amount_cents": 10000,
                                 "request_id": "dep-1"})["balance_cents"], 10000, "balance")
        u = c.ok("user.get", {"user_id": "alice"})
        eq((u["user_id"], u["name"], u["balance_cents"]), ("alice", "Alice", 10000), "user.get")

        # place -> RESERVED, priced, stock reserved
        o = h.settled(c, c.ok("order.place", {"order_id": "o-1", "user_id": "alice", "items": [
            {"product_id": "apple", "quantity": 2}, {"product_id": "pear", "quantity": 1}]}))
        eq(o["status"], "RESERVED", "o-1 status after place")
        eq(o["order_id"], "o-1", "order_id")
        eq(o["user_id"], "alice", "user_id")
        eq(o["total_cents"], 2 * 150 + 200, "o-1 total")
        prices = {i["product_id"]: (i["quantity"], i["unit_price_cents"]) for i in o["items"]}
        eq(prices, {"apple": (2, 150), "pear": (1, 200)}, "o-1 items")
        for f in ("created_at", "updated_at", "expires_at"):
            check(isinstance(o.get(f), int) and o[f] > 0, f"o-1 {f} missing: {o}")
        eq(h.inv(c, "apple"), (8, 2, 0), "apple after reserve")
        eq(h.inv(c, "pear"), (4, 1, 0), "pear after reserve")

        # pay -> PAID, debited, stock sold
        o = h.settled(c, c.ok("order.pay", {"order_id": "o-1"}))
        eq(o["status"], "PAID", "o-1 after pay")
        eq(c.ok("user.get", {"user_id": "alice"})["balance_cents"], 9500, "balance after pay")
        eq(h.inv(c, "apple"), (8, 0, 2), "apple after pay")
        eq(c.ok("order.get", {"order_id": "o-1"})["status"], "PAID", "order.get o-1")

        # place + cancel a reserved order -> stock back
        o = h.settled(c, c.ok("order.place", {"order_id": "o-2", "user_id": "alice",
                                              "items": [{"product_id": "apple", "quantity": 3}]}))
        eq(o["status"], "RESERVED", "o-2")
        eq(h.inv(c, "apple"), (5, 3, 2), "apple after o-2")
        o = h.settled(c, c.ok("order.cancel", {"order_id": "o-2"}))
        eq(o["status"], "CANCELLED", "o-2 after cancel")
        eq(h.inv(c, "apple"), (8, 0, 2), "apple after cancel o-2")
        eq(c.ok("user.get", {"user_id": "alice"})["balance_cents"], 9500, "unpaid cancel: no refund")

        # cancel a paid order -> refund and stock back
        o = h.settled(c, c.ok("order.cancel", {"order_id": "o-1"}))
        eq(o["status"], "CANCELLED", "o-1 after cancel")
        eq(c.ok("user.get", {"user_id": "alice"})["balance_cents"], 10000, "refund")
        eq(h.inv(c, "apple"), (10, 0, 0), "apple after refund")
        eq(h.inv(c, "pear"), (5, 0, 0), "pear after refund")
        # cancelling again is a no-op
        eq(h.settled(c, c.ok("order.cancel", {"order_id": "o-1"}))["status"], "CANCELLED",
           "second cancel")

        lst = c.ok("order.list", {"user_id": "alice"})["orders"]
        eq(sorted((x["order_id"], x["status"]) for x in lst),
           [("o-1", "CANCELLED"), ("o-2", "CANCELLED")], "order.list")
        # the admin sees the same
        eq(len(adm.ok("order.list", {"user_id": "alice"})["orders"]), 2, "admin order.list")
        eq(adm.ok("user.get", {"user_id": "alice"})["balance_cents"], 10000, "admin user.get")


def test_idempotency():
    with h.Session("idem") as s:
        node, adm = shop(s)
        c = node.client(token=None)
        c.token = h.register_login(c, "bob")
        c.ok("user.deposit", {"user_id": "bob", "amount_cents": 1000, "request_id": "d-1"})
        eq(c.ok("user.deposit", {"user_id": "bob", "amount_cents": 1000,
                                 "request_id": "d-1"})["balance_cents"], 1000,
           "same deposit twice counts once")
        eq(c.ok("user.get", {"user_id": "bob"})["balance_cents"], 1000, "balance")
        c.ok("user.deposit", {"user_id": "bob", "amount_cents": 1, "request_id": "d-2"})
        eq(c.ok("user.get", {"user_id": "bob"})["balance_cents"], 1001, "another deposit")

        args = {"order_id": "b-1", "user_id": "bob",
                "items": [{"product_id": "apple", "quantity": 1}]}
        first = h.settled(c, c.ok("order.place", args))
        again = h.settled(c, c.ok("order.place", args))
        for f in ("order_id", "status", "total_cents", "created_at", "items"):
            eq(again[f], first[f], f"place again: {f}")
        eq(h.inv(c, "apple"), (9, 1, 0), "placing twice reserves once")
        c.ok("order.pay", {"order_id": "b-1"})
        c.ok("order.pay", {"order_id": "b-1"})  # paying a paid order: no-op
        eq(c.ok("user.get", {"user_id": "bob"})["balance_cents"], 1001 - 150, "debited once")
        eq(h.settled(c, c.ok("order.place", args))["status"], "PAID",
           "place again after pay answers the order as it is")
        c.err("order.place", dict(args, items=[{"product_id": "apple", "quantity": 2}]),
              code="conflict")
        c.err("order.place", dict(args, items=[{"product_id": "pear", "quantity": 1}]),
              code="conflict")

        a1 = adm.ok("inventory.add", {"product_id": "plum", "quantity": 4, "request_id": "r-9"})
        a2 = adm.ok("inventory.add", {"product_id": "plum", "quantity": 4, "request_id": "r-9"})
        eq(a1["available"], 5, "inventory.add result")
        eq(a2["available"], 5, "same inventory.add twice counts once")
        eq(h.inv(c, "plum"), (5, 0, 0), "plum")


def test_error_codes():
    seen = set()

    def note(err):
        seen.add(err["code"])
        return err

    with h.Session("errors") as s:
        node, adm = shop(s)
        c = node.client()
        alice = h.register_login(c, "alice")
        bob = h.register_login(c, "bob")
        c.ok("user.deposit", {"user_id": "alice", "amount_cents": 100000, "request_id": "a"},
             alice)

        # bad_request: invalid JSON -> id null, connection still usable
        c.send_raw(b'{"id": 5, "op": "user.get", this is not json\n')
        r = c.read_reply()
        check(r.get("ok") is False and r.get("id", "missing") is None,
              f"invalid JSON: want ok false and id null, got {r}")
        eq(note(r["error"])["code"], "bad_request", "invalid JSON code")
        c.send_raw(b"[1, 2, 3]\n")
        r = c.read_reply()
        eq((r.get("ok"), r.get("error", {}).get("code")), (False, "bad_request"), "JSON array")
        eq(c.ok("product.get", {"product_id": "apple"})["product_id"], "apple",
           "connection usable after bad_request")
        note(c.err("no.such.op", {}, code="bad_request"))
        note(c.err("user.register", {"user_id": "x"}, code="bad_request"))  # no password
        note(c.err("user.register", {"user_id": "bad id!", "password": "p"}, code="bad_request"))
        note(c.err("order.place", {"order_id": "q", "user_id": "alice", "items": []}, alice,
                   code="bad_request"))
        note(c.err("user.deposit", {"user_id": "alice", "amount_cents": -5, "request_id": "n"},
                   alice, code="bad_request"))

        # too_large: a 70 KiB line
        with node.client() as big:
            line = json.dumps({"id": 77, "op": "user.register",
                               "args": {"user_id": "big", "password": "x" * (70 * 1024)}})
            check(len(line) > 64 * 1024, "line is over the limit")
            big.send_raw(line + "\n")
            r = big.read_reply()
            check(r.get("ok") is False and r.get("id") in (77, None), f"too_large reply: {r}")
            eq(note(r["error"])["code"], "too_large", "70 KiB line")
        c.err("user.get", {"user_id": "big"}, adm.token, code="not_found")  # nothing registered

        # unauthorized: no token, a bogus token
        note(c.err("user.get", {"user_id": "alice"}, "", code="unauthorized"))
        note(c.err("order.place", {"order_id": "u1", "user_id": "alice",
                                   "items": [{"product_id": "apple", "quantity": 1}]}, "",
                   code="unauthorized"))
        note(c.err("user.get", {"user_id": "alice"}, "not-a-token", code="unauthorized"))
        note(c.err("product.create", {"product_id": "z", "name": "z", "price_cents": 1}, "",
                   code=("unauthorized", "forbidden")))

        # forbidden: another user's deposit, a user creating products or adding stock
        note(c.err("user.deposit", {"user_id": "bob", "amount_cents": 5, "request_id": "f"},
                   alice, code="forbidden"))
        note(c.err("product.create", {"product_id": "z", "name": "z", "price_cents": 1}, alice,
                   code="forbidden"))
        note(c.err("inventory.add", {"product_id": "apple", "quantity": 1, "request_id": "f2"},
                   alice, code="forbidden"))
        # another user's id is forbidden whether it exists or not (ids cannot be probed)
        note(c.err("user.get", {"user_id": "bob"}, alice, code="forbidden"))
        c.err("user.get", {"user_id": "nobody"}, alice, code="forbidden")

        # not_found
        note(c.err("product.get", {"product_id": "nope"}, alice, code="not_found"))
        note(c.err("order.get", {"order_id": "nope"}, alice, code="not_found"))
        note(c.err("order.pay", {"order_id": "nope"}, alice, code="not_found"))
        note(c.err("order.place", {"order_id": "nf", "user_id": "alice",
                                   "items": [{"product_id": "ghost", "quantity": 1}]}, alice,
                   code="not_found"))

        # conflict: same order id, other content
        c.ok("order.place", {"order_id": "a-1", "user_id": "alice",
                             "items": [{"product_id": "apple", "quantity": 1}]}, alice)
        note(c.err("order.place", {"order_id": "a-1", "user_id": "alice",
                                   "items": [{"product_id": "apple", "quantity": 2}]}, alice,
                   code="conflict"))
        # an order is private: bob cannot read alice's
        note(c.err("order.get", {"order_id": "a-1"}, bob, code="not_found"))

        # out_of_stock: the order is REJECTED with a reason starting "out_of_stock"
        r = c.request("order.place", {"order_id": "a-2", "user_id": "alice",
                                      "items": [{"product_id": "plum", "quantity": 2}]}, alice)
        if r.get("ok"):
            o = h.settled(c, r["result"], alice)
        else:
            eq(note(r["error"])["code"], "out_of_stock", "place beyond stock")
            o = h.settle_order(c, "a-2", token=alice)
        eq(o["status"], "REJECTED", "a-2 status")
        check(str(o.get("reason", "")).startswith("out_of_stock"), f"a-2 reason: {o}")
        seen.add("out_of_stock")
        eq(h.inv(c, "plum"), (1, 0, 0), "a rejected order holds no stock")
        note(c.err("order.pay", {"order_id": "a-2"}, alice, code="invalid_state"))

        # insufficient_funds on pay: the order stays RESERVED
        o = h.settled(c, c.ok("order.place", {"order_id": "b-1", "user_id": "bob",
                                              "items": [{"product_id": "pear", "quantity": 2}]},
                              bob), bob)
        eq(o["status"], "RESERVED", "b-1")
        note(c.err("order.pay", {"order_id": "b-1"}, bob, code="insufficient_funds"))
        eq(h.settle_order(c, "b-1", token=bob)["status"], "RESERVED", "b-1 after refused pay")
        eq(c.ok("user.get", {"user_id": "bob"}, bob)["balance_cents"], 0, "bob not debited")
        eq(h.inv(c, "pear"), (3, 2, 0), "pear still reserved")

        # invalid_state: paying a cancelled order
        eq(h.settled(c, c.ok("order.cancel", {"order_id": "b-1"}, bob), bob)["status"],
           "CANCELLED", "b-1 cancel")
        note(c.err("order.pay", {"order_id": "b-1"}, bob, code="invalid_state"))
        eq(h.inv(c, "pear"), (5, 0, 0), "pear back")

        wanted = {"bad_request", "too_large", "unauthorized", "forbidden", "not_found",
                  "conflict", "out_of_stock", "insufficient_funds", "invalid_state"}
        eq(sorted(wanted - seen), [], "error codes not reached")
        log(f"error codes reached: {sorted(seen)}")


def test_pipelining():
    with h.Session("pipe") as s:
        node, adm = shop(s)
        c = node.client(token=adm.token)
        ops = [("product.get", {"product_id": "apple"}), ("inventory.get", {"product_id": "pear"}),
               ("product.get", {"product_id": "nope"}), ("cluster.status", {})]
        reqs = []
        for i in range(50):
            op, args = ops[i % len(ops)]
            reqs.append(c.make(op, args, rid=1000 + i))
        c.send_raw("".join(json.dumps(r) + "\n" for r in reqs))
        replies = {}
        for _ in range(50):
            r = c.read_reply()
            check(r.get("id") not in replies, f"duplicate reply id {r.get('id')}")
            replies[r.get("id")] = r
        eq(sorted(replies), list(range(1000, 1050)), "reply ids")
        for i in range(50):
            r = replies[1000 + i]
            want_ok = ops[i % len(ops)][1].get("product_id") != "nope"
            eq(r.get("ok"), want_ok, f"reply {1000 + i}")
        # string ids are echoed too
        c.send_raw(json.dumps({"id": "abc", "op": "product.get",
                               "args": {"product_id": "plum"}}) + "\n")
        eq(c.read_reply().get("id"), "abc", "string id echoed")


def test_orderctl():
    with h.Session("ctl") as s:
        node, adm = shop(s)
        port = str(node.port)
        tok = node.admin_token

        def run(*argv, code=0, token=None):
            p = h.orderctl("--port", port, *argv, token=token)
            if p.returncode != code:
                raise AssertionError(f"orderctl {' '.join(argv)}: exit {p.returncode}, want {code}"
                                     f"\nstdout: {p.stdout}\nstderr: {p.stderr}")
            return p

        run("cluster.status")
        run("--token", tok, "product.create", "--product-id", "cup", "--name", "Cup",
            "--price-cents", "300")
        run("--token", tok, "inventory.add", "--product_id", "cup", "--quantity", "5",
            "--request-id", "r1")
        run("user.register", "--user-id", "carol", "--password", "carol-pw")
        token = run("--get", "token", "user.login", "--user-id", "carol",
                    "--password", "carol-pw").stdout.strip()
        check(token and "\n" not in token, f"--get token printed {token!r}")
        p = run("user.deposit", "--user-id", "carol", "--amount-cents", "2000",
                "--request-id", "d1", token=token)
        check("2000" in p.stdout, f"deposit output shows the balance: {p.stdout!r}")
        run("order.place", "--order-id", "oc1", "--user-id", "carol", "--items", "cup:2",
            token=token)
        eq(run("--get", "status", "order.get", "--order-id", "oc1", token=token).stdout.strip(),
           "RESERVED", "orderctl --get status")
        run("--token", token, "call", "order.pay", '{"order_id": "oc1"}')
        out = json.loads(run("--json", "order.get", "--order-id", "oc1", token=token).stdout)
        out = out.get("result", out)
        eq(out["status"], "PAID", "orderctl --json order.get")
        eq(out["total_cents"], 600, "total")
        run("order.place", "--order-id", "oc2", "--user-id", "carol", "--items",
            '[{"product_id": "cup", "quantity": 1}]', token=token)
        eq(h.inv(node.client(), "cup"), (2, 1, 2), "cup after orderctl")

        # error reply -> exit 1 and "error <code>: ..." on stderr
        p = run("product.get", "--product-id", "nope", code=1, token=token)
        check("error not_found" in p.stderr, f"stderr: {p.stderr!r}")
        p = run("order.pay", "--order-id", "oc2", code=1)  # no token
        check("error unauthorized" in p.stderr, f"stderr: {p.stderr!r}")
        # usage -> exit 2
        run(code=2)  # no op
        run("cluster.status", "stray-argument", code=2)
        run("inventory.add", "--product-id", "cup", "--quantity", "many", "--request-id", "x",
            code=2, token=tok)
        run("--port", "not-a-port", "cluster.status", code=2)
        run("call", "order.get", "{not json", code=2, token=token)
        # typos are usage errors with a suggestion, not requests the node ignores or refuses
        p = run("ordr.get", "--order-id", "oc1", code=2, token=token)
        check("did you mean order.get?" in p.stderr, f"unknown op: {p.stderr!r}")
        p = run("order.get", "--ordr-id", "oc1", code=2, token=token)
        check("did you mean --order-id?" in p.stderr, f"unknown arg: {p.stderr!r}")
        p = run("cluster.status", "--tokn", "x", code=2)
        check("did you mean --token?" in p.stderr, f"mistyped global option: {p.stderr!r}")
        p = run("order.place", "--order-id", "oc9", "--items", "cup:1", code=2, token=token)
        check("needs --user-id" in p.stderr, f"missing arg: {p.stderr!r}")
        p = run("order.place", "--help")
        check("--items p1:2,p2:1" in p.stdout and "who may call it" in p.stdout,
              f"order.place --help: {p.stdout!r}")
        check("cluster.leave --node-id" in run("--help").stdout, "--help lists every op")
        check(run("--version").stdout.startswith("orderctl "), "--version")
        # an option orderctl does not know is an error wherever it stands, not an op arg
        p = run("--colour", "yes", "cluster.status", code=2)
        check("takes no --colour" in p.stderr, f"unknown global option: {p.stderr!r}")
        p = run("--colour", "yes", "call", "cluster.status", code=2)
        check("unknown option --colour" in p.stderr, f"unknown option with call: {p.stderr!r}")
        # ... also last, after the op, where it has no value: unknown, not "needs a value"
        p = run("call", "cluster.status", "{}", "--colour", code=2)
        check("unknown option --colour" in p.stderr and "needs a value" not in p.stderr,
              f"unknown option after call's op: {p.stderr!r}")
        p = run("call", "cluster.status", "{}", "--jsn", code=2)
        check("unknown option --jsn (did you mean --json?)" in p.stderr,
              f"mistyped option after call's op: {p.stderr!r}")
        p = run("cluster.status", "--tokn", code=2)
        check("unknown option --tokn (did you mean --token?)" in p.stderr,
              f"mistyped option last after an op: {p.stderr!r}")
        p = run("call", "order.get", "{}", "--order-id", "oc1", code=2, token=token)
        check("call takes its args as JSON, not as --order-id" in p.stderr,
              f"an op's arg with call: {p.stderr!r}")
        # an option that exists still needs its value
        p = run("order.get", "--order-id", code=2, token=token)
        check("--order-id needs a value" in p.stderr, f"arg without a value: {p.stderr!r}")
        p = run("cluster.status", "--timeout-ms", code=2)
        check("--timeout-ms needs a value" in p.stderr, f"option without a value: {p.stderr!r}")
        # one that took the op as its value is named, not only the missing op
        p = run("--colour", "cluster.status", code=2)
        check("unknown option --colour" in p.stderr and "'cluster.status'" in p.stderr,
              f"unknown option before the op: {p.stderr!r}")
        # cluster-status: the shard map grouped, not a line per shard
        p = run("cluster-status")
        check(f"{node.name}    64     0-63" in p.stdout and "shard groups" in p.stdout
              and len(p.stdout.splitlines()) < 20, f"cluster-status: {p.stdout}")
        # an order.place the node answers but whose order ends REJECTED exits 4
        p = run("order.place", "--order-id", "oc3", "--user-id", "carol", "--items", "cup:50",
                code=4, token=token)
        check("REJECTED" in p.stderr, f"rejected placement: {p.stderr!r}")
        # cannot connect -> exit 3
        p = h.orderctl("--port", str(h.free_port()), "--timeout-ms", "2000", "cluster.status")
        eq(p.returncode, 3, f"unreachable node exit code (stderr {p.stderr!r})")
        # several hosts: a dead one first, then the live one
        dead = h.free_port()
        p = h.orderctl("--host", f"127.0.0.1:{dead},127.0.0.1:{port}", "--timeout-ms", "5000",
                       "cluster.status")
        eq(p.returncode, 0, f"--host list with a dead first host (stderr {p.stderr!r})")


if __name__ == "__main__":
    h.main([test_happy_flow, test_idempotency, test_error_codes, test_pipelining,
            test_orderctl], __doc__)
