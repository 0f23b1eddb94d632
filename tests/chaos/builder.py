"""Hand-made histories for the checker's tests.

Builder writes records the way a driver would (history.py's format) on a fake clock, so a test
says what happened in a few lines. base() is a small valid run that every invariant accepts;
each violation test changes one thing in it.
"""

import copy

WALL0 = 1_700_000_000_000          # wall ms at time 0
TTL = 900_000                       # reservation TTL (ms)
PRICES = {"p1": 250, "p2": 100}


class Builder:
    def __init__(self, scenario="test", users=("alice", "bob"), **meta):
        self.t = 0.0
        self.req = 0
        self.records = [dict({"type": "meta", "version": 1, "scenario": scenario, "seed": 1,
                              "commit": "test", "reservation_ttl_ms": TTL,
                              "start_wall_ms": WALL0, "time": 0.0,
                              "users": {u: {"admin": False} for u in users}}, **meta)]

    def wall(self, t=None):
        return int(WALL0 + (self.t if t is None else t) * 1000)

    def _rec(self, r):
        r.setdefault("time", round(self.t, 6))
        r.setdefault("wall_ms", self.wall(r["time"]))
        self.records.append(r)
        return r

    def invoke(self, process, op, args, as_="alice", node="n1", at=None):
        self.t = self.t + 0.01 if at is None else at
        self.req += 1
        self._rec({"type": "invoke", "process": process, "req": self.req, "op": op, "as": as_,
                   "args": args, "node": node})
        return self.req

    def complete(self, process, req, op, outcome="ok", result=None, error=None, node="n1",
                 at=None):
        self.t = self.t + 0.01 if at is None else at
        return self._rec({"type": outcome, "process": process, "req": req, "op": op,
                          "result": result, "error": error, "node": node})

    def op(self, process, op, args, outcome="ok", result=None, error=None, as_="alice",
           node="n1", at=None, done_at=None, complete=True):
        """invoke + completion at once; returns the completion record."""
        req = self.invoke(process, op, args, as_=as_, node=node, at=at)
        if not complete:
            return None
        if outcome == "fail" and error is None:
            error = {"code": "conflict", "message": "refused"}
        if outcome == "info" and error is None:
            error = {"code": "timeout", "message": "no answer in time"}
        return self.complete(process, req, op, outcome, result, error, node=node, at=done_at)

    def nemesis(self, event, fault, nodes=None, at=None):
        self.t = self.t + 0.01 if at is None else at
        r = {"type": "nemesis", "event": event, "fault": fault}
        if nodes:
            r["nodes"] = nodes
        return self._rec(r)

    def final(self, kind, eid, state=None, error=None, at=None):
        self.t = self.t + 0.01 if at is None else at
        if state is None and error is None:
            error = {"code": "not_found", "message": "no such entity"}
        return self._rec({"type": "final", "kind": kind, "id": eid, "state": state,
                          "error": error})

    def settle(self, seconds=60.0):
        """The driver waits for the cluster to settle before the final reads."""
        self.t += seconds
        return self

    def finals(self, finals):
        for (kind, eid), state in finals.items():
            self.final(kind, eid, state)
        return self


def order(oid, user, items, status, created=1000, updated=None, expires=None, reason=None):
    """An order as a node returns it; items: {product: quantity}. A RESERVED order expires a
    TTL after its last change unless `expires` says otherwise."""
    lines = [{"product_id": p, "quantity": q, "unit_price_cents": PRICES[p]}
             for p, q in items.items()]
    updated = created + 5 if updated is None else updated
    o = {"order_id": oid, "user_id": user, "status": status, "items": lines,
         "total_cents": sum(PRICES[p] * q for p, q in items.items()),
         "created_at": WALL0 + created, "updated_at": WALL0 + updated}
    if status == "RESERVED":
        o["expires_at"] = WALL0 + updated + TTL if expires is None else WALL0 + expires
    if reason:
        o["reason"] = reason
    return o


def place_args(oid, user, items):
    return {"order_id": oid, "user_id": user,
            "items": [{"product_id": p, "quantity": q} for p, q in items.items()]}


def inventory(pid, available, reserved, sold):
    return {"product_id": pid, "available": available, "reserved": reserved, "sold": sold}


def user(uid, balance):
    return {"user_id": uid, "name": uid, "balance_cents": balance}


def base():
    """A valid run: returns (builder with the operations, finals {(kind, id): state}).

    admin restocks p1 with 10; alice deposits 1000, places o1 (2 x p1 = 500) and pays it,
    places o2 (1 x p1, stays RESERVED), o3 (50 x p1) is REJECTED; bob deposits 300, places b1
    (1 x p1) and cancels it. Finally: p1 7 available, 1 reserved, 2 sold; alice 500, bob 300.
    """
    b = Builder()
    b.op(0, "product.create", {"product_id": "p1", "name": "Widget", "price_cents": 250},
         result={"product_id": "p1", "name": "Widget", "price_cents": 250}, as_="admin")
    b.op(0, "inventory.add", {"product_id": "p1", "quantity": 10, "request_id": "r1"},
         result=inventory("p1", 10, 0, 0), as_="admin")
    b.op(1, "user.deposit", {"user_id": "alice", "amount_cents": 1000, "request_id": "d1"},
         result={"balance_cents": 1000})
    o1 = order("o1", "alice", {"p1": 2}, "RESERVED", created=100)
    b.op(1, "order.place", place_args("o1", "alice", {"p1": 2}), result=o1)
    o1_paid = order("o1", "alice", {"p1": 2}, "PAID", created=100, updated=200)
    b.op(1, "order.pay", {"order_id": "o1"}, result=o1_paid)
    o2 = order("o2", "alice", {"p1": 1}, "RESERVED", created=300)
    b.op(1, "order.place", place_args("o2", "alice", {"p1": 1}), result=o2)
    o3 = order("o3", "alice", {"p1": 50}, "REJECTED", created=400,
               reason="out_of_stock: p1: 7 available, 50 requested")
    b.op(1, "order.place", place_args("o3", "alice", {"p1": 50}), result=o3)
    b.op(2, "user.deposit", {"user_id": "bob", "amount_cents": 300, "request_id": "d2"},
         result={"balance_cents": 300}, as_="bob")
    b1 = order("b1", "bob", {"p1": 1}, "RESERVED", created=500)
    b.op(2, "order.place", place_args("b1", "bob", {"p1": 1}), result=b1, as_="bob")
    b1_cancelled = order("b1", "bob", {"p1": 1}, "CANCELLED", created=500, updated=600,
                         reason="cancelled by client")
    b.op(2, "order.cancel", {"order_id": "b1"}, result=b1_cancelled, as_="bob")
    b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 500))
    b.op(1, "order.list", {"user_id": "alice"}, result={"orders": [o3, o2, o1_paid]})
    finals = {("order", "o1"): o1_paid, ("order", "o2"): o2, ("order", "o3"): o3,
              ("order", "b1"): b1_cancelled, ("inventory", "p1"): inventory("p1", 7, 1, 2),
              ("user", "alice"): user("alice", 500), ("user", "bob"): user("bob", 300)}
    return b, copy.deepcopy(finals)
