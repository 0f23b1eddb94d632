"""The checker on hand-made histories: for each invariant a valid history passes and one with
exactly that violation fails, with witnesses; plus the `info` (maybe happened) edge cases and
the availability / recovery / latency arithmetic around a nemesis window."""

import io
import json
import os
import tempfile
import unittest
from contextlib import redirect_stdout

from chaos import checker
from chaos.checker import check, check_runs
from chaos.report import render
from tests.chaos.builder import TTL, Builder, base, inventory, order, place_args, user

ALL = list(checker.ORDER)


def run(b, finals, journal=None):
    b.settle()
    b.finals(finals)
    return check(b.records, journal_audit=journal)


def entry(report, name):
    return next(e for e in report["invariants"] if e["name"] == name)


class Case(unittest.TestCase):
    def assertPasses(self, report):
        bad = {e["name"]: e["violations"][:2] for e in report["invariants"] if not e["ok"]}
        self.assertEqual(bad, {}, "expected every invariant to pass")
        self.assertTrue(report["completeness"]["complete"], report["completeness"])

    def assertFails(self, report, *names, rule=None):
        """Exactly `names` failed, each violation with witnesses; `rule` among their rules."""
        failed = {e["name"] for e in report["invariants"] if not e["ok"]}
        self.assertEqual(failed, set(names), [(e["name"], e["violations"][:2])
                                              for e in report["invariants"] if not e["ok"]])
        for name in names:
            e = entry(report, name)
            self.assertGreater(e["violation_count"], 0)
            for v in e["violations"]:
                self.assertTrue(v["message"])
                self.assertTrue(v["witnesses"], v)
            if rule is not None:
                self.assertIn(rule, {v.get("rule") for v in entry(report, names[0])["violations"]})
        self.assertFalse(report["ok"])


class ValidRun(Case):
    def test_base_passes_every_invariant(self):
        b, finals = base()
        r = run(b, finals)
        self.assertPasses(r)
        self.assertTrue(r["ok"])
        self.assertEqual(r["acknowledged_but_lost"], 0)
        self.assertEqual(entry(r, "one_writer_per_entity")["skipped"], "no journal_audit given")

    def test_retries_with_the_same_ids_are_one_order_and_one_deposit(self):
        b, finals = base()
        # o2 placed again after a timeout: same order id, same items; deposit retried too
        b.op(1, "order.place", place_args("o2", "alice", {"p1": 1}), outcome="info")
        b.op(1, "order.place", place_args("o2", "alice", {"p1": 1}),
             result=finals[("order", "o2")])
        b.op(2, "user.deposit", {"user_id": "bob", "amount_cents": 300, "request_id": "d2"},
             outcome="info", as_="bob")
        b.op(2, "user.deposit", {"user_id": "bob", "amount_cents": 300, "request_id": "d2"},
             result={"balance_cents": 300}, as_="bob")
        self.assertPasses(run(b, finals))


class NoLostAcknowledged(Case):
    def test_lost_order(self):
        b, finals = base()
        finals[("order", "o2")] = None                     # RESERVED o2 vanished with its stock
        finals[("inventory", "p1")] = inventory("p1", 8, 0, 2)
        r = run(b, finals)
        self.assertFails(r, "no_lost_acknowledged", rule="order lost")
        self.assertEqual(r["acknowledged_but_lost"], 1)
        v = entry(r, "no_lost_acknowledged")["violations"][0]
        self.assertIn("o2", v["message"])
        self.assertIn("order.place", {w.get("op") for w in v["witnesses"]})

    def test_lost_payment(self):
        b, finals = base()  # pay of o1 was acknowledged, but the world went on without it
        finals[("order", "o1")] = order("o1", "alice", {"p1": 2}, "RESERVED", created=100)
        finals[("inventory", "p1")] = inventory("p1", 7, 3, 0)
        finals[("user", "alice")] = user("alice", 1000)
        self.assertFails(run(b, finals), "no_lost_acknowledged", rule="acknowledged status lost")

    def test_lost_ok_deposit(self):
        b, finals = base()
        finals[("user", "bob")] = user("bob", 0)
        r = run(b, finals)
        # the balance alone cannot tell a lost deposit from an extra charge: money fails too
        self.assertFails(r, "no_lost_acknowledged", "money", rule="deposit lost")
        self.assertEqual(r["acknowledged_but_lost"], 1)

    def test_unknown_outcome_order_may_be_absent_or_present(self):
        for final in (None, order("o9", "alice", {"p1": 1}, "CANCELLED", created=900,
                                  reason="expired")):
            b, finals = base()
            b.op(1, "order.place", place_args("o9", "alice", {"p1": 1}), outcome="info")
            finals[("order", "o9")] = final
            self.assertPasses(run(b, finals))


class NoPhantomOrders(Case):
    def test_order_nobody_placed(self):
        b, finals = base()
        finals[("order", "x1")] = order("x1", "alice", {"p1": 1}, "CANCELLED", created=700)
        r = run(b, finals)
        self.assertFails(r, "no_phantom_orders", rule="never placed")
        self.assertEqual(entry(r, "no_phantom_orders")["violations"][0]["witnesses"][0]["id"],
                         "x1")

    def test_order_whose_every_placement_was_refused(self):
        b, finals = base()
        b.op(1, "order.place", place_args("x2", "alice", {"p1": 1}), outcome="fail",
             error={"code": "not_found", "message": "product p1 does not exist"})
        finals[("order", "x2")] = order("x2", "alice", {"p1": 1}, "CANCELLED", created=700)
        self.assertFails(run(b, finals), "no_phantom_orders", rule="placement refused")

    def test_order_with_content_nobody_asked_for(self):
        b, finals = base()
        b.op(1, "order.place", place_args("x3", "alice", {"p1": 1}), outcome="info")
        finals[("order", "x3")] = order("x3", "alice", {"p1": 3}, "CANCELLED", created=700)
        self.assertFails(run(b, finals), "no_phantom_orders", rule="other content")

    def test_unavailable_reply_counts_as_maybe(self):
        b, finals = base()  # recorded as fail, but `unavailable` means outcome unknown
        b.op(1, "order.place", place_args("x4", "alice", {"p1": 1}), outcome="fail",
             error={"code": "unavailable", "message": "owner unreachable"})
        finals[("order", "x4")] = order("x4", "alice", {"p1": 1}, "CANCELLED", created=700)
        self.assertPasses(run(b, finals))


class Stock(Case):
    def test_negative(self):
        b, finals = base()
        b.op(0, "inventory.get", {"product_id": "p1"}, result=inventory("p1", -1, 1, 2),
             as_="admin")
        self.assertFails(run(b, finals), "stock", rule="negative")

    def test_stock_from_nowhere(self):
        b, finals = base()
        finals[("inventory", "p1")] = inventory("p1", 8, 1, 2)
        self.assertFails(run(b, finals), "stock", rule="conservation")

    def test_reserved_does_not_match_orders(self):
        b, finals = base()
        finals[("inventory", "p1")] = inventory("p1", 6, 2, 2)
        self.assertFails(run(b, finals), "stock", rule="reserved vs orders")

    def test_sold_does_not_match_orders(self):
        b, finals = base()
        finals[("inventory", "p1")] = inventory("p1", 8, 1, 1)
        self.assertFails(run(b, finals), "stock", rule="sold vs orders")

    def test_info_restock_applied_or_not_both_pass(self):
        for available in (7, 12):
            b, finals = base()
            b.op(0, "inventory.add", {"product_id": "p1", "quantity": 5, "request_id": "r2"},
                 outcome="info", as_="admin")
            finals[("inventory", "p1")] = inventory("p1", available, 1, 2)
            self.assertPasses(run(b, finals))

    def test_info_restock_half_applied_fails(self):
        b, finals = base()
        b.op(0, "inventory.add", {"product_id": "p1", "quantity": 5, "request_id": "r2"},
             outcome="info", as_="admin")
        finals[("inventory", "p1")] = inventory("p1", 9, 1, 2)   # 12: neither 10 nor 15
        self.assertFails(run(b, finals), "stock", rule="conservation")

    def test_lost_ok_restock(self):
        b, finals = base()
        b.op(0, "inventory.add", {"product_id": "p1", "quantity": 5, "request_id": "r2"},
             result=inventory("p1", 12, 1, 2), as_="admin")
        self.assertFails(run(b, finals), "stock", rule="conservation")

    def test_reservation_expiring_around_the_inventory_read_is_either_way(self):
        # o2's reservation lapses right after the final reads (~60.2 s), within the expiry
        # grace of the inventory read: its unit may be reserved or available again
        o2 = order("o2", "alice", {"p1": 1}, "RESERVED", created=300, expires=60_500)
        for inv in (inventory("p1", 7, 1, 2), inventory("p1", 8, 0, 2)):
            b, finals = base()
            finals[("order", "o2")] = o2
            finals[("inventory", "p1")] = inv
            self.assertPasses(run(b, finals))


class Money(Case):
    def test_money_from_nowhere(self):
        b, finals = base()
        finals[("user", "alice")] = user("alice", 700)
        self.assertFails(run(b, finals), "money", rule="conservation")

    def test_order_charged_twice(self):
        b, finals = base()
        finals[("user", "alice")] = user("alice", 0)   # o1 (500) debited twice
        r = run(b, finals)
        self.assertFails(r, "money", "no_lost_acknowledged", rule="conservation")
        self.assertIn("charged twice", entry(r, "money")["violations"][0]["message"])

    def test_refund_without_cancel(self):
        b, finals = base()  # b1 was never paid, yet cancelling it refunded 250
        finals[("user", "bob")] = user("bob", 550)
        self.assertFails(run(b, finals), "money")

    def test_info_deposit_happened_or_not_both_pass(self):
        for balance in (500, 700):
            b, finals = base()
            b.op(1, "user.deposit", {"user_id": "alice", "amount_cents": 200,
                                     "request_id": "d3"}, outcome="info")
            finals[("user", "alice")] = user("alice", balance)
            self.assertPasses(run(b, finals))

    def test_info_deposit_never_completed_counts_as_maybe(self):
        b, finals = base()
        b.op(1, "user.deposit", {"user_id": "alice", "amount_cents": 200, "request_id": "d3"},
             complete=False)
        finals[("user", "alice")] = user("alice", 700)
        r = run(b, finals)
        self.assertPasses(r)
        self.assertEqual(r["counts"]["info_never_completed"], 1)

    def test_info_deposits_only_whole_subsets(self):
        b, finals = base()
        for rid, amount in (("d3", 200), ("d4", 50)):
            b.op(1, "user.deposit", {"user_id": "alice", "amount_cents": amount,
                                     "request_id": rid}, outcome="info")
        finals[("user", "alice")] = user("alice", 600)    # +100: no subset of {200, 50}
        self.assertFails(run(b, finals), "money")
        b, finals = base()
        for rid, amount in (("d3", 200), ("d4", 50)):
            b.op(1, "user.deposit", {"user_id": "alice", "amount_cents": amount,
                                     "request_id": rid}, outcome="info")
        finals[("user", "alice")] = user("alice", 550)    # +50: d4 happened, d3 not
        self.assertPasses(run(b, finals))

    def test_refused_deposit_must_not_be_applied(self):
        b, finals = base()
        b.op(1, "user.deposit", {"user_id": "alice", "amount_cents": 200, "request_id": "d3"},
             outcome="fail", error={"code": "forbidden", "message": "no"})
        finals[("user", "alice")] = user("alice", 700)
        self.assertFails(run(b, finals), "money")

    def test_paid_then_cancelled_is_refunded(self):
        b, finals = base()
        cancelled = order("o1", "alice", {"p1": 2}, "CANCELLED", created=100, updated=800,
                          reason="cancelled by client")
        b.op(1, "order.cancel", {"order_id": "o1"}, result=cancelled)
        finals[("order", "o1")] = cancelled
        finals[("inventory", "p1")] = inventory("p1", 9, 1, 0)
        finals[("user", "alice")] = user("alice", 1000)
        self.assertPasses(run(b, finals))


    def test_saga_finishing_between_the_final_reads_is_either_way(self):
        # o2's payment saga resumes and completes (~60.2 s) just as the wallet is read: the
        # wallet may show it debited or not yet
        paid = order("o2", "alice", {"p1": 1}, "PAID", created=300, updated=60_250)
        for balance in (500, 250):
            b, finals = base()
            finals[("order", "o2")] = paid
            finals[("inventory", "p1")] = inventory("p1", 7, 0, 3)
            finals[("user", "alice")] = user("alice", balance)
            self.assertPasses(run(b, finals))
        b, finals = base()
        finals[("order", "o2")] = order("o2", "alice", {"p1": 1}, "PAID", created=300,
                                        updated=900)
        finals[("inventory", "p1")] = inventory("p1", 7, 0, 3)
        self.assertFails(run(b, finals), "money")   # paid long before the read: must show


class OrderIdUnique(Case):
    def test_retry_answered_with_another_order(self):
        b, finals = base()
        other = order("o2", "alice", {"p1": 1}, "RESERVED", created=350)
        b.op(3, "order.place", place_args("o2", "alice", {"p1": 1}), result=other)
        self.assertFails(run(b, finals), "order_id_unique", rule="two orders")

    def test_final_reads_disagree(self):
        b, finals = base()
        b.settle()
        b.final("order", "o3", order("o3", "alice", {"p1": 50}, "REJECTED", created=999))
        self.assertFails(run(b, finals), "order_id_unique", rule="final reads")

    def test_place_reply_for_other_content(self):
        b, finals = base()  # a second placement of o2 with other items must be `conflict`
        b.op(3, "order.place", place_args("o2", "alice", {"p1": 4}),
             result=finals[("order", "o2")])
        self.assertFails(run(b, finals), "order_id_unique", rule="place reply")


class TerminalAfterSettling(Case):
    def test_pending_after_settling(self):
        b, finals = base()
        o2 = finals[("order", "o2")]
        o2["status"] = "PENDING"
        del o2["expires_at"]
        self.assertFails(run(b, finals), "terminal_after_settling", rule="not terminal")

    def test_reservation_that_never_expired(self):
        b, finals = base()
        finals[("order", "o2")] = order("o2", "alice", {"p1": 1}, "RESERVED", created=300,
                                        expires=5_000)   # expired at 5 s, read at ~60 s
        self.assertFails(run(b, finals), "terminal_after_settling", rule="expiry missed")

    def test_reservation_longer_than_ttl(self):
        b, finals = base()
        finals[("order", "o2")] = order("o2", "alice", {"p1": 1}, "RESERVED", created=300,
                                        expires=300 + 3 * TTL)
        self.assertFails(run(b, finals), "terminal_after_settling",
                         rule="reservation too long")


class StatusMonotonic(Case):
    def test_stale_read_after_paid(self):
        b, finals = base()
        b.op(1, "order.get", {"order_id": "o1"},
             result=order("o1", "alice", {"p1": 2}, "RESERVED", created=100))
        r = run(b, finals)
        self.assertFails(r, "status_monotonic", rule="backwards")
        statuses = [w["result"]["status"] for w in entry(r, "status_monotonic")["violations"][0]
                    ["witnesses"] if w["type"] == "ok"]
        self.assertEqual(statuses, ["PAID", "RESERVED"])

    def test_other_clients_and_overlapping_requests_are_not_ordered(self):
        b, finals = base()
        stale = order("o1", "alice", {"p1": 2}, "RESERVED", created=100)
        b.op(5, "order.get", {"order_id": "o1"}, result=stale)          # another client
        # one client, two pipelined requests: the get overlaps the pay
        get = b.invoke(6, "order.get", {"order_id": "o2"})
        pay = b.invoke(6, "order.pay", {"order_id": "o2"})
        paid = order("o2", "alice", {"p1": 1}, "PAID", created=300, updated=900)
        b.complete(6, pay, "order.pay", result=paid)
        b.complete(6, get, "order.get", result=finals[("order", "o2")])  # RESERVED, later
        finals[("order", "o2")] = paid
        finals[("inventory", "p1")] = inventory("p1", 7, 0, 3)
        finals[("user", "alice")] = user("alice", 250)
        self.assertPasses(run(b, finals))

    def test_pending_in_between_is_not_backwards(self):
        b, finals = base()
        pending = order("o2", "alice", {"p1": 1}, "PENDING", created=300, updated=700)
        b.op(1, "order.get", {"order_id": "o2"}, result=pending)   # debiting...
        b.op(1, "order.pay", {"order_id": "o2"}, outcome="fail",
             error={"code": "insufficient_funds", "message": "no"})
        b.op(1, "order.get", {"order_id": "o2"}, result=finals[("order", "o2")])  # RESERVED
        self.assertPasses(run(b, finals))

    def test_rejected_then_reserved(self):
        b, finals = base()
        b.op(1, "order.get", {"order_id": "o3"},
             result=order("o3", "alice", {"p1": 50}, "RESERVED", created=400))
        r = run(b, finals)
        # a client shown RESERVED after REJECTED; the final REJECTED also follows that
        # acknowledged RESERVED, which is a lost state
        self.assertFails(r, "status_monotonic", "no_lost_acknowledged")


class OneWriterPerEntity(Case):
    @staticmethod
    def journal(**change):
        e = [{"node": "n1", "shard": 3, "epoch": 1, "kind": "order", "id": "o1", "seq": 1,
              "digest": "a"},
             {"node": "n1", "shard": 3, "epoch": 1, "kind": "order", "id": "o1", "seq": 2,
              "digest": "b"},
             {"node": "n2", "shard": 3, "epoch": 1, "kind": "order", "id": "o1", "seq": 1,
              "digest": "a"},   # a handoff's copy
             {"node": "n2", "shard": 3, "epoch": 1, "kind": "order", "id": "o1", "seq": 2,
              "digest": "b"},
             {"node": "n2", "shard": 3, "epoch": 2, "kind": "order", "id": "o1", "seq": 3,
              "digest": "c"}]
        j = {"version": 1, "entries": e, "shard_epochs": {"n1": {"3": [1]}, "n2": {"3": [2]}},
             "replayed": [{"kind": "order", "id": "o1", "state": {"status": "PAID"}}]}
        j.update(change)
        return j

    def test_valid_journal_passes(self):
        b, finals = base()
        r = run(b, finals, self.journal())
        self.assertPasses(r)
        self.assertNotIn("skipped", entry(r, "one_writer_per_entity"))

    def fails(self, journal, rule):
        b, finals = base()
        self.assertFails(run(b, finals, journal), "one_writer_per_entity", rule=rule)

    def test_gap(self):
        j = self.journal()
        del j["entries"][3]
        self.fails(j, "contiguous")

    def test_events_pruned_without_snapshot(self):
        j = self.journal()
        j["entries"] = j["entries"][1:2]
        self.fails(j, "contiguous")
        j["entries"].append({"node": "n1", "shard": 3, "epoch": 1, "kind": "order", "id": "o1",
                             "seq": 1, "snapshot": True})
        b, finals = base()
        self.assertPasses(run(b, finals, j))

    def test_entity_epoch_going_back(self):
        j = self.journal()
        j["entries"][4]["epoch"] = 0
        self.fails(j, "epochs")

    def test_shard_epoch_going_back(self):
        self.fails(self.journal(shard_epochs={"n1": {"3": [1, 3, 2]}}), "epochs")

    def test_two_writers(self):
        j = self.journal()
        j["entries"][3]["digest"] = "x"
        self.fails(j, "forked")

    def test_replay_differs_from_served_state(self):
        self.fails(self.journal(replayed=[{"kind": "order", "id": "o1",
                                           "state": {"status": "RESERVED"}}]), "replay")


class JournalOwnershipAndReplay(Case):
    """The rules fed by ordermesh-journal dumps: ownership records across nodes (no epoch per
    event on disk), dump errors, and the replayed states against the final reads, with what
    may legitimately happen between the final reads and the nodes' stop."""

    @staticmethod
    def journal(owned=None, replayed=None, **change):
        e = [{"node": "n1", "shard": 3, "kind": "order", "id": "o1", "seq": 1, "digest": "a"},
             {"node": "n2", "shard": 3, "kind": "order", "id": "o1", "seq": 1, "digest": "a"},
             {"node": "n2", "shard": 3, "kind": "order", "id": "o1", "seq": 2, "digest": "b"}]
        j = {"version": 1, "entries": e,
             "shard_epochs": {"n1": {"3": [1], "4": [1]}, "n2": {"3": [2]}},
             "owned": owned if owned is not None else {
                 "n1": {"3": {"epoch": 1, "owned": False}, "4": {"epoch": 1, "owned": True}},
                 "n2": {"3": {"epoch": 2, "owned": True}}},
             "replayed": replayed or [], "errors": []}
        j.update(change)
        return j

    @staticmethod
    def rep(kind, eid, state, node="n2", owned=True, **extra):
        return dict({"node": node, "owned": owned, "kind": kind, "id": eid, "state": state},
                    **extra)

    def judge(self, journal):
        b, finals = base()
        return run(b, finals, journal)

    def fails(self, journal, rule):
        self.assertFails(self.judge(journal), "one_writer_per_entity", rule=rule)

    def test_clean_ownership_passes(self):
        r = self.judge(self.journal())
        self.assertPasses(r)
        self.assertNotIn("skipped", entry(r, "one_writer_per_entity"))

    def test_two_owners_of_one_shard(self):
        j = self.journal()
        j["owned"]["n1"]["3"] = {"epoch": 2, "owned": True}
        self.fails(j, "ownership")

    def test_owner_below_an_epoch_another_node_recorded(self):
        j = self.journal()
        j["owned"]["n1"]["3"] = {"epoch": 3, "owned": False}  # n1 had it at 3, n2 owns at 2
        self.fails(j, "ownership")

    def test_shard_nobody_owns(self):
        j = self.journal()
        j["owned"]["n2"]["3"] = {"epoch": 2, "owned": False}
        self.fails(j, "ownership")

    def test_dump_errors_are_violations(self):
        self.fails(self.journal(errors=["n2: user/u9 on shard 4: event at seq 3 does not "
                                        "decode"]), "dump")

    def test_snapshot_that_full_replay_contradicts(self):
        _, finals = base()
        self.fails(self.journal(replayed=[self.rep("order", "o1", finals[("order", "o1")],
                                                   snapshot_consistent=False)]), "replay")

    def test_replays_equal_to_the_final_reads_pass(self):
        _, finals = base()
        reps = [self.rep(k, i, st) for (k, i), st in finals.items()]
        self.assertPasses(self.judge(self.journal(replayed=reps)))

    def test_a_stale_copy_on_a_former_owner_is_not_the_served_state(self):
        _, finals = base()
        stale = order("o1", "alice", {"p1": 2}, "RESERVED", created=100)
        reps = [self.rep("order", "o1", stale, node="n1", owned=False),
                self.rep("order", "o1", finals[("order", "o1")])]
        self.assertPasses(self.judge(self.journal(replayed=reps)))
        # but as the owner's replay, it is behind what the node served
        self.fails(self.journal(replayed=[dict(reps[0], owned=True)]), "replay")

    def test_a_reservation_that_expired_after_the_final_read(self):
        _, finals = base()
        expired = order("o2", "alice", {"p1": 1}, "CANCELLED", created=300, updated=300 + TTL,
                        reason="expired")
        reps = [self.rep("order", "o2", expired),
                self.rep("inventory", "p1", inventory("p1", 8, 0, 2))]
        self.assertPasses(self.judge(self.journal(replayed=reps)))
        # more stock back than the expired order held: not explained
        reps[1] = self.rep("inventory", "p1", inventory("p1", 9, 0, 1))
        self.fails(self.journal(replayed=reps), "replay")

    def test_a_wallet_behind_what_the_node_served(self):
        # the planted fault: a deposit acknowledged (and served) but never written
        self.fails(self.journal(replayed=[self.rep("user", "alice", user("alice", 400))]),
                   "replay")

    def test_an_order_whose_final_read_failed_is_not_compared(self):
        b, finals = base()
        del finals[("order", "o2")]
        b.settle()
        b.finals(finals)
        b.final("order", "o2", error={"code": "unavailable", "message": "down"})
        weird = order("o2", "alice", {"p1": 1}, "PAID", created=300, updated=900)
        r = check(b.records, journal_audit=self.journal(
            replayed=[self.rep("order", "o2", weird)]))
        self.assertEqual(entry(r, "one_writer_per_entity")["violation_count"], 0)


class Isolation(Case):
    def test_reading_another_users_order(self):
        b, finals = base()
        b.op(2, "order.get", {"order_id": "o1"}, result=finals[("order", "o1")], as_="bob")
        r = run(b, finals)
        self.assertFails(r, "isolation", rule="cross-user")
        self.assertIn("bob", entry(r, "isolation")["violations"][0]["message"])

    def test_reading_another_users_wallet(self):
        b, finals = base()
        b.op(2, "user.get", {"user_id": "alice"}, result=user("alice", 500), as_="bob")
        self.assertFails(run(b, finals), "isolation")

    def test_paying_another_users_order_with_a_reply_lacking_user(self):
        b, finals = base()  # the reply hides the owner; the final read shows it
        reply = dict(finals[("order", "o2")])
        del reply["user_id"]
        b.op(2, "order.pay", {"order_id": "o2"}, result=reply, as_="bob")
        self.assertFails(run(b, finals), "isolation")

    def test_refusals_and_admin_are_fine(self):
        b, finals = base()
        b.op(2, "order.get", {"order_id": "o1"}, outcome="fail", as_="bob",
             error={"code": "not_found", "message": "order o1 does not exist"})
        b.op(2, "user.get", {"user_id": "alice"}, outcome="fail", as_="bob",
             error={"code": "forbidden", "message": "not yours"})
        b.op(0, "order.get", {"order_id": "o1"}, result=finals[("order", "o1")], as_="admin")
        self.assertPasses(run(b, finals))


class Completeness(Case):
    def test_missing_final_read_is_reported_not_guessed(self):
        b, finals = base()
        del finals[("order", "o2")]
        del finals[("user", "bob")]
        r = run(b, finals)
        self.assertTrue(r["ok"])    # nothing proven wrong ...
        comp = r["completeness"]
        self.assertFalse(comp["complete"])   # ... but not a clean pass either
        self.assertEqual(comp["missing_final_read"], ["order/o2", "user/bob"])

    def test_failed_final_read(self):
        b, finals = base()
        b.settle()
        b.final("user", "carol", error={"code": "unavailable", "message": "down"})
        r = run(b, finals)
        self.assertEqual(r["completeness"]["unreadable_final_read"], ["user/carol"])


    def test_unread_order_widens_ranges_but_keeps_the_sure_bounds(self):
        def history(alice, inv):
            b, finals = base()  # o9 (1 x p1 = 250) placed with no answer, never read back
            b.op(1, "order.place", place_args("o9", "alice", {"p1": 1}), outcome="info")
            finals[("user", "alice")] = alice
            finals[("inventory", "p1")] = inv
            return run(b, finals)
        for alice, inv in ((user("alice", 500), inventory("p1", 7, 1, 2)),      # not placed
                           (user("alice", 250), inventory("p1", 6, 1, 3))):     # placed, paid
            r = history(alice, inv)
            self.assertTrue(r["ok"], [e for e in r["invariants"] if not e["ok"]])
            self.assertEqual(r["completeness"]["missing_final_read"], ["order/o9"])
        r = history(user("alice", 600), inventory("p1", 7, 1, 2))   # money from nowhere
        self.assertFails(r, "money")
        r = history(user("alice", 500), inventory("p1", 8, 0, 2))   # o2's reservation gone
        self.assertFails(r, "stock", rule="reserved vs orders")


class NemesisMetrics(Case):
    def test_availability_recovery_and_latency(self):
        b = Builder()
        place = place_args("o1", "alice", {"p1": 1})
        o1 = order("o1", "alice", {"p1": 1}, "RESERVED")
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=1.0,
             done_at=1.010)
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=2.0,
             done_at=2.020)
        b.nemesis("start", "kill n2", nodes=["n2"], at=10.0)
        b.op(2, "order.place", place, outcome="info", node="n2", at=11.0, done_at=16.0)
        b.op(3, "order.pay", {"order_id": "zz"}, outcome="fail", at=12.0, done_at=12.005,
             error={"code": "not_found", "message": "no"})
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=13.0,
             done_at=13.030)
        b.nemesis("stop", "kill n2", nodes=["n2"], at=20.0)
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=20.5,
             done_at=20.540)
        b.op(2, "order.place", place, result=o1, node="n2", at=21.0, done_at=21.5)
        b.op(4, "user.get", {"user_id": "alice"}, complete=False, at=22.0)
        r = check(b.records)

        av = r["availability"]
        self.assertEqual(av["inside_faults"]["attempted"], 3)
        self.assertAlmostEqual(av["inside_faults"]["ok_fraction"], 1 / 3, places=5)
        self.assertAlmostEqual(av["inside_faults"]["answered_fraction"], 2 / 3, places=5)
        self.assertEqual(av["outside_faults"]["attempted"], 5)   # 2 before, 3 after
        self.assertEqual(av["outside_faults"]["ok"], 4)
        self.assertAlmostEqual(av["fault_seconds"], 10.0)

        (rec,) = r["recovery"]
        self.assertEqual((rec["start"], rec["stop"]), (10.0, 20.0))
        self.assertAlmostEqual(rec["first_ok_s"], 0.54)          # any op
        self.assertAlmostEqual(rec["first_ok_affected_s"], 1.5)  # order o1 got info inside
        self.assertAlmostEqual(rec["first_ok_on_nodes_s"], 1.5)  # sent to n2

        (w,) = r["windows"]
        self.assertEqual((w["fault"], w["start"], w["stop"]), ("kill n2", 10.0, 20.0))
        self.assertEqual(w["inside"]["attempted"], 3)
        self.assertAlmostEqual(w["inside"]["ok_fraction"], 1 / 3, places=5)
        # oks complete at 13.03 inside and 20.54 after the stop: the longest stretch from the
        # start without one is 13.03 -> 20.54
        self.assertAlmostEqual(w["longest_no_ok_s"], 7.51)
        # o1 got info at 11.0 and was served again at 21.5: 11.5 s after the window's start
        self.assertEqual(w["failover_s"]["hurt"], 1)
        self.assertAlmostEqual(w["failover_s"]["max"], 11.5)
        self.assertEqual(w["failover_s"]["never"], 0)
        self.assertIn("failover of 1 hurt entities", render(check_runs([(b.records, None)])))

        c = r["counts"]
        self.assertEqual((c["attempted"], c["ok"], c["fail"], c["info"]), (8, 5, 1, 2))
        self.assertEqual(c["info_never_completed"], 1)
        lat = r["latency_ms"]["all"]
        # ok latencies: 10, 20, 30, 40, 500 ms
        self.assertEqual((lat["count"], lat["p50"], lat["p90"], lat["p99"], lat["max"]),
                         (5, 30.0, 500.0, 500.0, 500.0))
        self.assertEqual(r["latency_ms"]["by_op"]["order.place"]["max"], 500.0)

    def test_requests_group_the_retries_of_one_client(self):
        """Per logical request: one process's consecutive attempts with the same op and args
        after an attempt that was not ok are one request; an ok ends it."""
        b = Builder()
        place = place_args("o1", "alice", {"p1": 1})
        o1 = order("o1", "alice", {"p1": 1}, "RESERVED")
        b.nemesis("start", "pause n2", nodes=["n2"], at=10.0)
        # one request, three attempts: no reply, `unavailable`, ok (1.8 s after the first)
        b.op(2, "order.place", place, outcome="info", node="n2", at=11.0, done_at=12.0)
        b.op(2, "order.place", place, outcome="info", node="n3", at=12.1, done_at=12.2,
             error={"code": "unavailable", "message": "retry"})
        b.op(2, "order.place", place, result=o1, node="n3", at=12.5, done_at=12.8)
        # one request never served: two attempts, both without an answer
        b.op(3, "user.get", {"user_id": "alice"}, outcome="info", at=13.0, done_at=14.0)
        b.op(3, "user.get", {"user_id": "alice"}, outcome="info", at=14.1, done_at=15.0)
        # two requests: the same args again after an ok is a new request
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=15.0,
             done_at=15.010)
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=16.0,
             done_at=16.010)
        # a definite refusal: answered, not ok
        b.op(5, "order.pay", {"order_id": "zz"}, outcome="fail", at=17.0, done_at=17.005,
             error={"code": "not_found", "message": "no"})
        b.nemesis("stop", "pause n2", nodes=["n2"], at=20.0)
        b.op(1, "user.get", {"user_id": "alice"}, result=user("alice", 0), at=21.0,
             done_at=21.010)
        r = check(b.records)
        av = r["availability"]
        self.assertEqual(av["inside_faults"]["attempted"], 8)
        self.assertAlmostEqual(av["inside_faults"]["ok_fraction"], 3 / 8, places=5)
        self.assertEqual(av["requests_inside_faults"],
                         {"count": 5, "ok": 3, "ok_fraction": 0.6, "answered_fraction": 0.8})
        self.assertEqual(av["requests_outside_faults"],
                         {"count": 1, "ok": 1, "ok_fraction": 1.0, "answered_fraction": 1.0})
        (w,) = r["windows"]
        self.assertEqual((w["requests"]["count"], w["requests"]["ok"]), (5, 3))
        self.assertAlmostEqual(w["requests"]["latency_s"]["max"], 1.8)
        self.assertAlmostEqual(w["requests"]["latency_s"]["p50"], 0.01)
        text = render(check_runs([(b.records, None)]))
        self.assertIn("availability per request (retries included): inside faults 0.600 ok, "
                      "0.800 answered of 5", text)
        self.assertIn("(0.600 of 5 requests, p99 1.800s)", text)

    def test_window_never_stopped_lasts_to_the_end(self):
        b = Builder()
        b.nemesis("start", "partition n1|n2,n3", at=1.0)
        b.op(1, "user.get", {"user_id": "alice"}, outcome="info", at=5.0, done_at=6.0)
        r = check(b.records)
        self.assertEqual(r["availability"]["inside_faults"]["attempted"], 1)
        self.assertIsNone(r["recovery"][0]["stop"])
        w = r["windows"][0]
        self.assertIsNone(w["stop"])
        self.assertEqual(w["failover_s"], {"hurt": 1, "p50": None, "max": None, "never": 1})
        self.assertAlmostEqual(w["longest_no_ok_s"], 5.0)  # to the end of the history: 6.0


class CommandLine(Case):
    def main(self, finals_change=None, extra=()):
        b, finals = base()
        if finals_change:
            finals_change(finals)
        b.settle()
        b.finals(finals)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "history.jsonl")
            with open(path, "w") as f:
                for rec in b.records:
                    f.write(json.dumps(rec) + "\n")
                f.write('{"type":"invoke","pro')           # a torn last line: ignored
            out = os.path.join(d, "results.json")
            buf = io.StringIO()
            with redirect_stdout(buf):
                code = checker.main([path, "--out", out, *extra])
            with open(out) as f:
                results = json.load(f)
        return code, buf.getvalue().rstrip("\n").split("\n"), results

    def test_pass(self):
        code, lines, results = self.main()
        self.assertEqual(code, 0)
        self.assertEqual(lines[-1], "chaos-check: 8 invariants passed, 0 failed")
        self.assertEqual(results["total"]["counts"]["attempted"], 12)
        self.assertEqual(results["scenarios"][0]["scenario"], "test")

    def test_violation(self):
        def lose(finals):
            finals[("user", "alice")] = user("alice", 700)
        code, lines, results = self.main(lose)
        self.assertEqual(code, 1)
        self.assertEqual(lines[-1], "chaos-check: 7 invariants passed, 1 failed")
        self.assertTrue(any(line.startswith("  FAIL money") for line in lines))
        self.assertEqual(results["total"]["invariants"][3]["failed_in"], ["test"])

    def test_incomplete_exits_2(self):
        def forget(finals):
            del finals[("user", "bob")]
        code, lines, _ = self.main(forget)
        self.assertEqual(code, 2)
        self.assertTrue(any(line.startswith("INCOMPLETE") for line in lines))


if __name__ == "__main__":
    unittest.main()


class ReplicatedJournal(Case):
    """Replication factor 3 (min_insync 2): every entity an acknowledged write touched must be
    held by two nodes' journals (rule insync_copies), and the shard-map views the runner sampled
    must never go back nor name two primaries at one epoch (rule epochs)."""

    NODES = ("n1", "n2", "n3")

    @classmethod
    def journal(cls, nodes=NODES, **change):
        """Every entity of base() on every node of `nodes` at seq 1 (same digest), each replaying
        to its final read; n1 owns shard 3."""
        _, finals = base()
        ents = dict(finals)
        ents[("product", "p1")] = {"product_id": "p1", "name": "Widget", "price_cents": 250}
        entries, replayed = [], []
        for n in nodes:
            for (kind, eid), st in sorted(ents.items()):
                entries.append({"node": n, "shard": 3, "kind": kind, "id": eid, "seq": 1,
                                "digest": f"d-{kind}-{eid}"})
                replayed.append({"node": n, "owned": n == "n1", "kind": kind, "id": eid,
                                 "seq": 1, "state": st})
        j = {"version": 1, "entries": entries, "replayed": replayed, "errors": [],
             "owned": {n: {"3": {"epoch": 1, "owned": n == "n1"}} for n in nodes},
             "shard_epochs": {n: {"3": [1]} for n in nodes},
             "replication_factor": 3, "min_insync": 2,
             "observed_epochs": {n: {"3": [[1, "n2"], [2, "n1"]]} for n in nodes}}
        j.update(change)
        return j

    def judge(self, journal):
        b, finals = base()
        return run(b, finals, journal)

    def fails(self, journal, rule):
        self.assertFails(self.judge(journal), "one_writer_per_entity", rule=rule)

    @staticmethod
    def drop(j, kind, eid, nodes):
        j["entries"] = [e for e in j["entries"]
                        if not (e["kind"] == kind and e["id"] == eid and e["node"] in nodes)]
        j["replayed"] = [r for r in j["replayed"]
                         if not (r["kind"] == kind and r["id"] == eid and r["node"] in nodes)]
        return j

    def test_three_and_two_copies_pass(self):
        self.assertPasses(self.judge(self.journal()))
        self.assertPasses(self.judge(self.journal(nodes=("n1", "n2"))))

    def test_an_acknowledged_deposit_on_one_disk_fails(self):
        j = self.drop(self.journal(), "user", "alice", ("n2", "n3"))
        r = self.judge(j)
        self.assertFails(r, "one_writer_per_entity", rule="insync_copies")
        msgs = [v["message"] for v in entry(r, "one_writer_per_entity")["violations"]]
        self.assertTrue(any("user/alice" in m and "only 1 node" in m for m in msgs), msgs)

    def test_an_acknowledged_order_on_no_disk_fails(self):
        j = self.drop(self.journal(), "order", "b1", self.NODES)
        self.fails(j, "insync_copies")

    def test_copies_behind_the_acknowledged_state_do_not_count(self):
        # n2 and n3 hold alice only up to her deposit (1000), not the payment's debit (500):
        # one node holds what the cluster acknowledged
        j = self.journal()
        for e in j["entries"]:
            if e["id"] == "alice" and e["node"] == "n1":
                j["entries"].append(dict(e, seq=2, digest="d-user-alice-2"))
                break
        for r in j["replayed"]:
            if r["id"] == "alice":
                r["seq"] = 2 if r["node"] == "n1" else 1
                if r["node"] != "n1":
                    r["state"] = user("alice", 1000)
        self.fails(j, "insync_copies")
        # the same copies at the highest seq any node holds count (the final read aside)
        for e in j["entries"]:
            if e["id"] == "alice" and e["node"] == "n2":
                j["entries"].append(dict(e, seq=2, digest="d-user-alice-2"))
                break
        for r in j["replayed"]:
            if r["id"] == "alice" and r["node"] == "n2":
                r["seq"] = 2
        self.assertPasses(self.judge(j))

    def test_not_checked_without_replication(self):
        j = self.drop(self.journal(), "user", "alice", ("n2", "n3"))
        j["replication_factor"] = 1
        self.assertPasses(self.judge(j))

    def test_an_epoch_view_going_back_fails(self):
        j = self.journal()
        j["observed_epochs"]["n2"]["3"] = [[1, "n2"], [2, "n1"], [1, "n2"]]
        self.fails(j, "epochs")

    def test_two_primaries_at_one_epoch_fail(self):
        j = self.journal()
        j["observed_epochs"]["n3"]["3"] = [[1, "n2"], [2, "n3"]]
        r = self.judge(j)
        self.assertFails(r, "one_writer_per_entity", rule="epochs")
        msgs = [v["message"] for v in entry(r, "one_writer_per_entity")["violations"]]
        self.assertTrue(any("two primaries at one epoch" in m for m in msgs), msgs)
