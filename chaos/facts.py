"""What the invariants need, derived from a parsed History in one pass.

The rules in invariants.py all look at the same few things: the placements of each order id,
every order state a client was shown, the deposits and restocks grouped by request id, and the
final reads. Deriving them once keeps each rule short and the whole check linear in the history.
This module also holds the order lifecycle as the checker understands it (STATUS_SUCCESSORS).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from chaos.history import ADMIN

STATUSES = ("PENDING", "RESERVED", "PAID", "CANCELLED", "REJECTED")
TERMINAL = frozenset({"PAID", "CANCELLED", "REJECTED"})

# The statuses an order may show later, given one it showed (PROTOCOL.md, "The order's life").
# PENDING is the order working on a step; it shows up between RESERVED and PAID (debiting), and
# between PAID and CANCELLED (refunding), and a refused payment goes back to RESERVED. So
# PENDING is never "backwards" from RESERVED or PAID, and RESERVED after PENDING is fine;
# nothing follows CANCELLED or REJECTED.
STATUS_SUCCESSORS = {
    "PENDING": frozenset(STATUSES),
    "RESERVED": frozenset({"PENDING", "RESERVED", "PAID", "CANCELLED"}),
    "PAID": frozenset({"PENDING", "PAID", "CANCELLED"}),
    "CANCELLED": frozenset({"CANCELLED"}),
    "REJECTED": frozenset({"REJECTED"}),
}

ORDER_OPS = ("order.place", "order.get", "order.pay", "order.cancel")


def norm_items(items, with_price=False):
    """Items as a sorted tuple, comparable whatever order they were sent or returned in."""
    try:
        if with_price:
            return tuple(sorted((i["product_id"], i["quantity"], i.get("unit_price_cents"))
                                for i in items))
        return tuple(sorted((i["product_id"], i["quantity"]) for i in items))
    except (TypeError, KeyError, AttributeError):
        return None


def order_identity(state):
    """What makes an order THE order of its id: it never changes over the order's life."""
    return {"user_id": state.get("user_id"),
            "items": norm_items(state.get("items"), with_price=True),
            "total_cents": state.get("total_cents"),
            "created_at": state.get("created_at")}


def identity_conflict(a, b):
    """The fields on which two identities differ (fields missing in either are not compared)."""
    return [k for k in a if a[k] is not None and b.get(k) is not None and a[k] != b[k]]


def request_outcome(ops):
    """One logical request, retried: ok if any attempt was ok, else info if any may have
    happened, else fail (every attempt refused, so it did not happen)."""
    outcomes = {op.outcome for op in ops}
    if "ok" in outcomes:
        return "ok"
    return "info" if "info" in outcomes else "fail"


@dataclass
class Request:
    """All attempts of one idempotent request (a deposit or a restock)."""

    entity: str
    request_id: str
    amount: int
    ops: list = field(default_factory=list)

    @property
    def outcome(self):
        return request_outcome(self.ops)


@dataclass
class FinalRead:
    """Every final read of one entity; the latest definite one (a state, or not_found) wins."""

    kind: str
    id: str
    records: list = field(default_factory=list)

    @cached_property
    def latest(self):
        """(Computed once: every final record is added before the first use.)"""
        definite = [r for r in self.records if r.get("state") is not None
                    or (r.get("error") or {}).get("code") == "not_found"]
        if not definite:
            return None
        return max(enumerate(definite), key=lambda p: (p[1]["time"], p[0]))[1]

    @property
    def exists(self):
        """True / False (not_found) / None (every read failed: unknown)."""
        latest = self.latest
        return None if latest is None else latest.get("state") is not None

    @property
    def state(self):
        latest = self.latest
        return None if latest is None else latest.get("state")


def is_admin(as_user, meta):
    if as_user == ADMIN:
        return True
    users = meta.get("users") or {}
    return bool(isinstance(users.get(as_user), dict) and users[as_user].get("admin"))


def record_wall_ms(record, meta):
    """A record's wall-clock ms: its own wall_ms, else derived from the meta start; or None."""
    if isinstance(record.get("wall_ms"), (int, float)):
        return record["wall_ms"]
    start = meta.get("start_wall_ms")
    if isinstance(start, (int, float)):
        return start + record["time"] * 1000.0
    return None


class Facts:
    """The shared derived view of one history (see the module docstring)."""

    def __init__(self, history):
        self.history = history
        self.meta = history.meta
        self.grace_ms = self.meta.get("expiry_grace_ms", 1000)
        self.ttl_ms = self.meta.get("reservation_ttl_ms")
        self.places = defaultdict(list)        # order_id -> [Op order.place]
        self.views = defaultdict(list)         # order_id -> [(Op, order dict)] from ok replies
        self.deposits = {}                     # (user, request_id, amount) -> Request
        self.restocks = {}                     # (product, request_id, amount) -> Request
        self.final = {k: {} for k in ("order", "inventory", "user")}  # kind -> id -> FinalRead
        self.prices = {}                       # product -> price_cents seen in ok replies
        self._maybe_existing = None
        for op in history.ops:
            self._take_op(op)
        for r in history.finals:
            fr = self.final[r["kind"]].setdefault(r["id"], FinalRead(r["kind"], r["id"]))
            fr.records.append(r)
        self._index_orders()

    def _take_op(self, op):
        args = op.args
        if op.op == "order.place" and isinstance(args.get("order_id"), str):
            self.places[args["order_id"]].append(op)
        elif op.op == "user.deposit":
            self._request(self.deposits, op, args.get("user_id"), args.get("amount_cents"))
        elif op.op == "inventory.add":
            self._request(self.restocks, op, args.get("product_id"), args.get("quantity"))
        if op.outcome != "ok" or not isinstance(op.result, dict):
            return
        if op.op in ("product.create", "product.get") and \
                isinstance(op.result.get("price_cents"), int):
            self.prices[op.result.get("product_id")] = op.result["price_cents"]
        if op.op in ORDER_OPS and isinstance(op.result.get("order_id"), str):
            self.views[op.result["order_id"]].append((op, op.result))
        elif op.op == "order.list":
            for order in op.result.get("orders") or ():
                if isinstance(order, dict) and isinstance(order.get("order_id"), str):
                    self.views[order["order_id"]].append((op, order))

    @staticmethod
    def _request(table, op, entity, amount):
        if not isinstance(entity, str) or not isinstance(amount, int):
            return  # malformed on purpose: the node refuses it, nothing to account
        rid = op.args.get("request_id")
        key = (entity, rid, amount)
        table.setdefault(key, Request(entity, rid, amount)).ops.append(op)

    def _index_orders(self):
        """Per user and per product: the orders whose final state is known, and the orders
        that may exist but whose final state is unknown (no final read, or it failed). The
        unknown ones widen the ledgers' ranges instead of stopping the checks: their stock is
        anywhere between 0 and their quantity, their charge between 0 and their total."""
        self.orders_of_user = defaultdict(list)      # user -> [FinalRead]
        self.orders_of_product = defaultdict(list)   # product -> [(FinalRead, quantity)]
        self.unknown_orders_of_user = defaultdict(dict)     # user -> {order_id: [Op]}
        self.unknown_orders_of_product = defaultdict(dict)  # product -> {order_id: max qty}
        for oid, fr in self.final["order"].items():
            if fr.exists:
                st = fr.state
                self.orders_of_user[st.get("user_id")].append(fr)
                for item in st.get("items") or ():
                    self.orders_of_product[item.get("product_id")].append(
                        (fr, item.get("quantity", 0)))
        for oid in self.maybe_existing_orders():
            fr = self.final["order"].get(oid)
            if fr is not None and fr.exists is not None:
                continue
            for op in self.places.get(oid, ()):
                if op.outcome == "fail":
                    continue
                self.unknown_orders_of_user[op.args.get("user_id")].setdefault(oid, []).append(op)
                for item in op.args.get("items") or ():
                    if isinstance(item, dict) and isinstance(item.get("quantity"), int):
                        held = self.unknown_orders_of_product[item.get("product_id")]
                        held[oid] = max(held.get(oid, 0), item["quantity"])
            for _, view in self.views.get(oid, ()):
                self.unknown_orders_of_user[view.get("user_id")].setdefault(oid, [])
                for item in view.get("items") or ():
                    if isinstance(item, dict) and isinstance(item.get("quantity"), int):
                        held = self.unknown_orders_of_product[item.get("product_id")]
                        held[oid] = max(held.get(oid, 0), item["quantity"])

    def max_charge(self, oid):
        """The most an order of unknown final state can have cost its user: its total as a
        client was shown it, else its items at the prices clients saw; None if unknown."""
        totals = [v.get("total_cents") for _, v in self.views.get(oid, ())
                  if isinstance(v.get("total_cents"), int)]
        if totals:
            return max(totals)
        best = None
        for op in self.places.get(oid, ()):
            try:
                total = sum(self.prices[i["product_id"]] * i["quantity"]
                            for i in op.args.get("items") or ())
            except (KeyError, TypeError):
                return None
            best = total if best is None else max(best, total)
        return best

    def maybe_existing_orders(self):
        """Order ids that may exist: some placement was ok or info, or a client was shown it."""
        if self._maybe_existing is None:
            ids = {oid for oid, ops in self.places.items()
                   if any(op.outcome != "fail" for op in ops)}
            ids.update(self.views)
            self._maybe_existing = ids
        return self._maybe_existing

    def users(self):
        ids = set((self.meta.get("users") or {}).keys())
        ids.update(k[0] for k in self.deposits)
        ids.update(self.final["user"])
        for oid in self.maybe_existing_orders():
            ids.update(op.args.get("user_id") for op in self.places.get(oid, ())
                       if isinstance(op.args.get("user_id"), str))
        return ids

    def products(self):
        ids = {k[0] for k in self.restocks}
        ids.update(self.final["inventory"])
        for oid in self.maybe_existing_orders():
            for op in self.places.get(oid, ()):
                for item in op.args.get("items") or ():
                    if isinstance(item, dict) and isinstance(item.get("product_id"), str):
                        ids.add(item["product_id"])
        return ids

    def completeness(self):
        """Entities the rules need a final state of, but whose final read is missing (the
        driver did not read them) or failed. Their checks were skipped, so a run with any is
        not a clean pass."""
        missing, unreadable = [], []
        wanted = (("order", self.maybe_existing_orders()), ("user", self.users()),
                  ("inventory", self.products()))
        for kind, ids in wanted:
            for eid in sorted(ids, key=str):
                fr = self.final[kind].get(eid)
                if fr is None:
                    missing.append(f"{kind}/{eid}")
                elif fr.exists is None:
                    unreadable.append(f"{kind}/{eid}")
        return {"complete": not missing and not unreadable,
                "missing_count": len(missing), "unreadable_count": len(unreadable),
                "missing_final_read": missing[:1000], "unreadable_final_read": unreadable[:1000]}
