"""The invariants of ordermesh under faults, each a rule over the Facts of one history.

Each rule gets the Facts and a Finding to report into; a violation names the records that
witness it. The guiding principle is soundness: an operation whose outcome is unknown (`info`)
may or may not have happened, so every rule admits both worlds and reports only what no world
explains. Entities whose final state could not be read are skipped by the rules that need
them, or widen their ranges (the checker reports them as unverified instead of guessing).

The rules, in the order of the issue (the README states each precisely):
  no_lost_acknowledged      an acknowledged order or deposit is in the final state
  no_phantom_orders         every order in the final state was placed by some client
  stock                     never negative; conservation; reserved/sold match the orders
  money                     balances = deposits - paid orders (each charged at most once)
  order_id_unique           one order per order_id, whatever the retries
  terminal_after_settling   every order ends PAID, CANCELLED, REJECTED or RESERVED in time
  status_monotonic          a client never sees an order's status move backwards
  isolation                 no user read or changed another user's order or wallet
(one_writer_per_entity is journal_audit.py: it reads a journal dump, not the history.)
"""

import math
from collections import defaultdict

from chaos.amounts import PossibleTotals
from chaos.facts import (STATUS_SUCCESSORS, TERMINAL, identity_conflict, is_admin,
                                norm_items, order_identity, record_wall_ms)

LISTED = 1000  # entity lists in the report are cut here (their counts are kept)


class Finding:
    """The violations of one invariant, bounded so that a broken run still gives a small
    report: the first `max_violations` in full (each with at most `max_witnesses` records),
    the rest only counted."""

    def __init__(self, name, description, max_violations=100, max_witnesses=20):
        self.name = name
        self.description = description
        self.max_violations = max_violations
        self.max_witnesses = max_witnesses
        self.violations = []
        self.count = 0
        self.lost = 0            # acknowledged operations this rule shows lost
        self.skipped = None      # a reason, when the rule could not run at all
        self.unverified = []     # entities the rule could not judge

    def add(self, message, witnesses, rule=None):
        self.count += 1
        if len(self.violations) >= self.max_violations:
            return
        flat, seen = [], set()
        for w in witnesses:
            for r in (w.records if hasattr(w, "records") else [w]):
                if r is not None and id(r) not in seen:
                    seen.add(id(r))
                    flat.append(r)
        v = {"message": message, "witnesses": flat[:self.max_witnesses]}
        if rule:
            v["rule"] = rule
        if len(flat) > self.max_witnesses:
            v["witnesses_omitted"] = len(flat) - self.max_witnesses
        self.violations.append(v)

    def result(self):
        out = {"name": self.name, "description": self.description, "ok": self.count == 0,
               "violation_count": self.count, "violations": self.violations}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.unverified:
            out["unverified_count"] = len(self.unverified)
            out["unverified"] = sorted(self.unverified)[:LISTED]
        return out


# ---------------------------------------------------------------------------------------------
# Shared ledgers


def _deposits_by_user(facts):
    by_user = defaultdict(lambda: {"ok": [], "info": []})
    for req in facts.deposits.values():
        if req.outcome != "fail":
            by_user[req.entity][req.outcome].append(req)
    return by_user


def _wallet(facts, user, user_read):
    """(paid, in_flight, witnesses) of a user's orders: `paid` the totals of final PAID orders
    (debited, not refunded), `in_flight` the most the other orders may have cost at the
    wallet's final read: PENDING orders (maybe debited), PAID or CANCELLED orders that changed
    around or after that read (the debit or refund may have come later), and orders whose
    final state is unknown (infinite if even their total is unknown, which leaves only the
    upper bound checkable)."""
    read_wall = record_wall_ms(user_read, facts.meta) if user_read is not None else None
    paid = in_flight = 0
    witnesses = []
    for fr in facts.orders_of_user.get(user, ()):
        status, total = fr.state.get("status"), fr.state.get("total_cents") or 0
        updated = fr.state.get("updated_at")
        late = (read_wall is not None and isinstance(updated, int)
                and updated > read_wall - facts.grace_ms)
        if status == "PAID" and not late:
            paid += total
        elif (status in ("PAID", "CANCELLED") and late) or \
                (status not in TERMINAL and status != "RESERVED"):
            in_flight += total
        else:
            continue
        witnesses.append(fr.latest)
    for oid, ops in facts.unknown_orders_of_user.get(user, {}).items():
        most = facts.max_charge(oid)
        in_flight += math.inf if most is None else most
        witnesses.extend(ops)
    return paid, in_flight, witnesses


def _ops_of(reqs):
    return [op for req in reqs for op in req.ops]


# ---------------------------------------------------------------------------------------------
# The rules


def no_lost_acknowledged(facts, out):
    """An order a client was shown in an ok reply exists finally, in a status reachable from
    every status it was shown; an ok deposit is still in its user's balance."""
    for oid, views in facts.views.items():
        fr = facts.final["order"].get(oid)
        if fr is None or fr.exists is None:
            out.unverified.append(f"order/{oid}")
            continue
        if not fr.exists:
            op = views[0][0]
            out.lost += 1
            out.add(f"order {oid}: acknowledged ({op.op} ok at {op.t_complete:.3f}s, status "
                    f"{views[0][1].get('status')}) but the final read says not_found",
                    [op, fr.latest], rule="order lost")
            continue
        final_status = fr.state.get("status")
        for op, view in views:
            shown = view.get("status")
            if final_status not in STATUS_SUCCESSORS.get(shown, (final_status,)):
                out.lost += 1
                out.add(f"order {oid}: {op.op} acknowledged status {shown} at "
                        f"{op.t_complete:.3f}s, but the final status is {final_status}",
                        [op, fr.latest], rule="acknowledged status lost")
                break
    deposits = _deposits_by_user(facts)
    for user, reqs in deposits.items():
        if not reqs["ok"]:
            continue
        fr = facts.final["user"].get(user)
        if fr is None or fr.exists is None:
            out.unverified.append(f"user/{user}")
            continue
        acked = sum(r.amount for r in reqs["ok"])
        balance = (fr.state or {}).get("balance_cents", 0) if fr.exists else 0
        paid, in_flight, order_witnesses = _wallet(facts, user, fr.latest)
        deficit = acked - (balance + paid + in_flight)
        if deficit > 0:
            # the fewest acknowledged deposits that could make up the gap: a lower bound
            lost, covered = 0, 0
            for amount in sorted((r.amount for r in reqs["ok"]), reverse=True):
                if covered >= deficit:
                    break
                covered += amount
                lost += 1
            out.lost += lost
            where = "the user does not exist" if not fr.exists else f"balance {balance}"
            out.add(f"user {user}: acknowledged deposits total {acked}, but {where} + paid "
                    f"orders {paid} + at most {in_flight} for pending or unread orders = "
                    f"{balance + paid + in_flight}: "
                    f"{deficit} missing (at least {lost} acknowledged deposit(s) lost, or an "
                    f"order charged twice)",
                    [fr.latest] + _ops_of(reqs["ok"]) + order_witnesses, rule="deposit lost")


def no_phantom_orders(facts, out):
    """Every order that exists (final reads) or that a client was shown was placed by some
    client: an order.place with the same order_id, user_id and items whose outcome was ok or
    info (maybe happened). An order whose every placement was refused is a phantom too."""
    ids = {oid for oid, fr in facts.final["order"].items() if fr.exists}
    ids.update(facts.views)
    for oid in sorted(ids):
        fr = facts.final["order"].get(oid)
        if fr is not None and fr.exists:
            state, seen_in = fr.state, fr.latest
        else:
            seen_in = facts.views[oid][0][0]
            state = facts.views[oid][0][1]
        places = facts.places.get(oid, [])
        if not places:
            out.add(f"order {oid} (user {state.get('user_id')}) exists but no client ever "
                    f"placed it", [seen_in], rule="never placed")
            continue
        maybe = [op for op in places if op.outcome != "fail"]
        if not maybe:
            out.add(f"order {oid} exists but every order.place for it was refused",
                    [seen_in] + places, rule="placement refused")
            continue
        want = (state.get("user_id"), norm_items(state.get("items") or ()))
        if not any((op.args.get("user_id"), norm_items(op.args.get("items") or ())) == want
                   for op in maybe):
            out.add(f"order {oid} exists as user {want[0]} items {want[1]}, which no "
                    f"placement of {oid} asked for", [seen_in] + maybe, rule="other content")


def stock(facts, out):
    """Per product: no count negative (in the final read and in every ok reply); available +
    reserved + sold = ok restocks + a subset of info restocks; reserved and sold = the
    quantities of the final orders in RESERVED and in PAID."""
    for op in facts.history.ops:
        if op.outcome == "ok" and op.op in ("inventory.get", "inventory.add"):
            r = op.result if isinstance(op.result, dict) else {}
            neg = {k: r.get(k) for k in ("available", "reserved", "sold")
                   if isinstance(r.get(k), int) and r[k] < 0}
            if neg:
                out.add(f"product {r.get('product_id')}: negative stock {neg} in a reply",
                        [op], rule="negative")
    restocks = defaultdict(lambda: {"ok": [], "info": []})
    for req in facts.restocks.values():
        if req.outcome != "fail":
            restocks[req.entity][req.outcome].append(req)
    for pid in sorted(facts.products(), key=str):
        fr = facts.final["inventory"].get(pid)
        if fr is None or fr.exists is None:
            out.unverified.append(f"inventory/{pid}")
            continue
        inv = fr.state or {}
        counts = {k: inv.get(k, 0) if fr.exists else 0 for k in ("available", "reserved", "sold")}
        neg = {k: v for k, v in counts.items() if v < 0}
        if neg:
            out.add(f"product {pid}: negative stock {neg} in the final read", [fr.latest],
                    rule="negative")
        total = sum(counts.values())
        added = PossibleTotals([r.amount for r in restocks[pid]["ok"]],
                               [r.amount for r in restocks[pid]["info"]])
        if not added.admits(total):
            out.add(f"product {pid}: available+reserved+sold = {total} "
                    f"({counts['available']}+{counts['reserved']}+{counts['sold']}), but the "
                    f"stock added is {added.describe()}",
                    [fr.latest] + _ops_of(restocks[pid]["ok"] + restocks[pid]["info"]),
                    rule="conservation")
        _reserved_and_sold(facts, out, pid, fr, counts)


def _reserved_and_sold(facts, out, pid, fr, counts):
    """reserved/sold against the orders. An order's stock is certainly where its status says
    only if it last changed before the inventory read and (RESERVED) does not expire around
    it; otherwise, and for PENDING orders, its quantity may be in reserved, sold or neither."""
    inv_wall = record_wall_ms(fr.latest, facts.meta)
    grace = facts.grace_ms
    sure = {"RESERVED": 0, "PAID": 0}
    maybe = 0
    witnesses = []
    for ofr, qty in facts.orders_of_product.get(pid, ()):
        st = ofr.state
        status = st.get("status")
        certain = status in TERMINAL or status == "RESERVED"
        if certain and inv_wall is not None:
            updated, expires = st.get("updated_at"), st.get("expires_at")
            if isinstance(updated, int) and updated > inv_wall - grace:
                certain = False
            if status == "RESERVED" and isinstance(expires, int) and expires < inv_wall + grace:
                certain = False
        if not certain:
            maybe += qty
            witnesses.append(ofr.latest)
        elif status in sure:
            sure[status] += qty
            witnesses.append(ofr.latest)
    unknown = facts.unknown_orders_of_product.get(pid, {})
    maybe += sum(unknown.values())
    for oid in unknown:
        witnesses.extend(op for op in facts.places.get(oid, ()) if op.outcome != "fail")
    for field_name, status in (("reserved", "RESERVED"), ("sold", "PAID")):
        lo, hi = sure[status], sure[status] + maybe
        got = counts[field_name]
        if not lo <= got <= hi:
            span = f"{lo}" if lo == hi else f"{lo}..{hi}"
            out.add(f"product {pid}: {field_name} = {got}, but the final orders in {status} "
                    f"hold {span}", [fr.latest] + witnesses, rule=f"{field_name} vs orders")


def money(facts, out):
    """Per user: balance never negative; balance + totals of PAID orders (+ up to the totals
    of PENDING ones) = ok deposits + a subset of info deposits. Cancelled orders count zero
    (a paid order cancelled was refunded). A balance below means an order charged twice or a
    deposit lost; above, money from nowhere (a refund without a debit, a deposit twice)."""
    for op in facts.history.ops:
        if op.outcome == "ok" and op.op in ("user.get", "user.deposit"):
            b = (op.result or {}).get("balance_cents") if isinstance(op.result, dict) else None
            if isinstance(b, int) and b < 0:
                out.add(f"user {op.args.get('user_id')}: negative balance {b} in a reply", [op],
                        rule="negative")
    deposits = _deposits_by_user(facts)
    for user in sorted(facts.users(), key=str):
        fr = facts.final["user"].get(user)
        if fr is None or fr.exists is None:
            out.unverified.append(f"user/{user}")
            continue
        balance = (fr.state or {}).get("balance_cents", 0) if fr.exists else 0
        if balance < 0:
            out.add(f"user {user}: negative balance {balance}", [fr.latest], rule="negative")
        paid, in_flight, order_witnesses = _wallet(facts, user, fr.latest)
        reqs = deposits.get(user, {"ok": [], "info": []})
        possible = PossibleTotals([r.amount for r in reqs["ok"]],
                                  [r.amount for r in reqs["info"]])
        if not possible.admits(balance + paid, balance + paid + in_flight):
            flight = (f" (+ up to {in_flight} for pending or unread orders)"
                      if in_flight else "")
            side = ("too low: an order charged twice, a refund missing or a deposit lost"
                    if balance + paid + in_flight < possible.lo else
                    "too high: money from nowhere (a refund without a debit, a deposit twice)"
                    if balance + paid > possible.hi else
                    "matches no subset of the info deposits")
            out.add(f"user {user}: balance {balance} + paid orders {paid}{flight} must equal "
                    f"the deposits {possible.describe()}; {side}",
                    [fr.latest] + _ops_of(reqs["ok"] + reqs["info"]) + order_witnesses,
                    rule="conservation")


def order_id_unique(facts, out):
    """One order per order_id: the final reads of an id agree on its identity (user, items
    with prices, total, created_at); every ok reply about the id shows that same identity;
    an ok order.place reply carries the user and items that placement asked for."""
    for oid, fr in facts.final["order"].items():
        states = [r for r in fr.records if r.get("state") is not None]
        ref = order_identity(states[0]["state"]) if states else None
        for r in states[1:]:
            diff = identity_conflict(ref, order_identity(r["state"]))
            if diff:
                out.add(f"order {oid}: final reads disagree on {diff}", [states[0], r],
                        rule="final reads")
                break
    for oid, views in facts.views.items():
        fr = facts.final["order"].get(oid)
        if fr is not None and fr.exists:
            ref, ref_w = order_identity(fr.state), fr.latest
        else:
            ref, ref_w = order_identity(views[0][1]), views[0][0]
        for op, view in views:
            diff = identity_conflict(ref, order_identity(view))
            if diff:
                out.add(f"order {oid}: two different orders under one id (differ in {diff})",
                        [ref_w, op], rule="two orders")
                break
        for op, view in views:
            if op.op != "order.place":
                continue
            asked = (op.args.get("user_id"), norm_items(op.args.get("items") or ()))
            got = (view.get("user_id"), norm_items(view.get("items") or ()))
            if asked != got:
                out.add(f"order {oid}: order.place asked for {asked} but the ok reply is the "
                        f"order {got}", [op], rule="place reply")
                break


def terminal_after_settling(facts, out):
    """After healing and settling every order is PAID, CANCELLED or REJECTED, or RESERVED
    with a reservation still running: expires_at not passed (by more than expiry_grace_ms)
    at the final read, and not more than reservation_ttl_ms after its last change."""
    grace, ttl = facts.grace_ms, facts.ttl_ms
    for oid, fr in sorted(facts.final["order"].items()):
        if not fr.exists:
            continue
        st = fr.state
        status = st.get("status")
        if status in TERMINAL:
            continue
        if status != "RESERVED":
            out.add(f"order {oid} is {status} after settling", [fr.latest], rule="not terminal")
            continue
        expires = st.get("expires_at")
        if not isinstance(expires, int):
            out.add(f"order {oid} is RESERVED without expires_at", [fr.latest],
                    rule="no expiry")
            continue
        read_wall = record_wall_ms(fr.latest, facts.meta)
        if read_wall is not None and expires + grace < read_wall:
            out.add(f"order {oid} is still RESERVED {read_wall - expires:.0f} ms after its "
                    f"reservation expired", [fr.latest], rule="expiry missed")
        elif isinstance(ttl, int) and isinstance(st.get("updated_at"), int) \
                and expires - st["updated_at"] > ttl + grace:
            out.add(f"order {oid} is RESERVED until {expires - st['updated_at']} ms after its "
                    f"last change, longer than the reservation TTL {ttl} ms", [fr.latest],
                    rule="reservation too long")


def status_monotonic(facts, out):
    """Per client (process) and order: an ok reply invoked after another ok reply completed
    shows a status reachable from the earlier one (STATUS_SUCCESSORS). Overlapping requests
    of one client are not ordered, so they are not compared."""
    per_client = defaultdict(list)
    for oid, views in facts.views.items():
        for op, view in views:
            if view.get("status") in STATUS_SUCCESSORS:
                per_client[(op.process, oid)].append((op, view["status"]))
    for (process, oid), obs in sorted(per_client.items(), key=lambda kv: str(kv[0])):
        by_invoke = sorted(obs, key=lambda o: o[0].t_invoke)
        by_complete = sorted(obs, key=lambda o: o[0].t_complete)
        earliest = {}  # status -> the first op that showed it, among those completed so far
        j = 0
        for op, status in by_invoke:
            while j < len(by_complete) and by_complete[j][0].t_complete < op.t_invoke:
                earliest.setdefault(by_complete[j][1], by_complete[j][0])
                j += 1
            back = [(s, w) for s, w in earliest.items() if status not in STATUS_SUCCESSORS[s]]
            if back:
                s, w = back[0]
                out.add(f"process {process}, order {oid}: saw {s} (at {w.t_complete:.3f}s) "
                        f"then {status} (at {op.t_complete:.3f}s)", [w, op], rule="backwards")
                break


def isolation(facts, out):
    """No ok reply to a user's token concerns another user: not the user named in the args
    (user.get, user.deposit, order.list, order.place), not a user_id in the result (the
    order, the user, each listed order), not the owner of the order named in the args (by
    its final read). Refusals (forbidden, not_found) are the system doing its job."""
    named_user_ops = ("user.get", "user.deposit", "order.list", "order.place")
    for op in facts.history.ops:
        who = op.as_user
        if op.outcome != "ok" or who is None or is_admin(who, facts.meta):
            continue
        others = set()
        if op.op in named_user_ops and op.args.get("user_id") not in (None, who):
            others.add(op.args["user_id"])
        result = op.result if isinstance(op.result, dict) else {}
        if op.op in named_user_ops + ("order.get", "order.pay", "order.cancel"):
            if result.get("user_id") not in (None, who):
                others.add(result["user_id"])
            listed = (result.get("orders") or ()) if op.op == "order.list" else ()
            for order in listed:
                if isinstance(order, dict) and order.get("user_id") not in (None, who):
                    others.add(order["user_id"])
        witnesses = [op]
        if op.op in ("order.get", "order.pay", "order.cancel"):
            fr = facts.final["order"].get(op.args.get("order_id"))
            if fr is not None and fr.exists and fr.state.get("user_id") not in (None, who):
                others.add(fr.state["user_id"])
                witnesses.append(fr.latest)
        if others:
            out.add(f"process {op.process} acting as {who}: {op.op} ok on "
                    f"{op.args.get('order_id') or op.args.get('user_id')} of user(s) "
                    f"{sorted(others)}", witnesses, rule="cross-user")


# name, description (for the report), rule
RULES = [
    ("no_lost_acknowledged", "no acknowledged order or deposit lost", no_lost_acknowledged),
    ("no_phantom_orders", "no order that no client placed", no_phantom_orders),
    ("stock", "stock never negative; available+reserved+sold = stock added; reserved/sold = "
              "orders in RESERVED/PAID", stock),
    ("money", "each order charged at most once; deposits = balances + paid - refunds", money),
    ("order_id_unique", "one order per order_id, whatever the retries", order_id_unique),
    ("terminal_after_settling", "every order terminal after settling (or RESERVED in time)",
     terminal_after_settling),
    ("status_monotonic", "a client never sees an order's status move backwards",
     status_monotonic),
    ("isolation", "no user read or changed another user's order or wallet", isolation),
]
