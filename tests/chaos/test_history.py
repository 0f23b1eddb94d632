"""The history format: the writer (thread-safe, replies classified) and the reader
(validation, invoke -> completion pairing, nemesis windows)."""

import json
import os
import tempfile
import threading
import unittest

from chaos.history import HistoryError, HistoryWriter, load, outcome_of_reply, parse


def records_of(*lines):
    return [dict(r) for r in lines]


INV = {"type": "invoke", "process": 1, "req": 1, "op": "user.get", "as": "alice",
       "args": {"user_id": "alice"}, "node": "n1", "time": 1.0}
OK = {"type": "ok", "process": 1, "req": 1, "op": "user.get", "result": {}, "error": None,
      "node": "n1", "time": 1.5}


class Writer(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "history.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def test_threads_write_whole_lines_in_time_order(self):
        threads, per_thread = 8, 200
        with HistoryWriter(self.path) as w:
            w.meta(scenario="threads", seed=7, users={"alice": {"admin": False}})

            def client(process):
                for i in range(per_thread):
                    req = w.invoke(process, "user.get", {"user_id": "alice"}, node="n1",
                                   as_user="alice")
                    w.reply(process, req, "user.get",
                            {"id": i, "ok": True, "result": {"balance_cents": 0}}, node="n1")

            ts = [threading.Thread(target=client, args=(p,)) for p in range(threads)]
            w.nemesis("start", "kill n2", nodes=["n2"])
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            w.nemesis("stop", "kill n2", nodes=["n2"])
            w.final("user", "alice", {"user_id": "alice", "balance_cents": 0})
        records = load(self.path)
        times = [r["time"] for r in records]
        self.assertEqual(times, sorted(times))
        self.assertTrue(all(isinstance(r["wall_ms"], int) for r in records))
        h = parse(records)
        self.assertEqual(h.meta["scenario"], "threads")
        self.assertEqual(len(h.ops), threads * per_thread)
        self.assertTrue(all(op.outcome == "ok" and op.completion for op in h.ops))
        self.assertEqual(len({op.invoke["req"] for op in h.ops}), threads * per_thread)
        (window,) = h.windows
        self.assertEqual((window.fault, window.nodes), ("kill n2", ("n2",)))
        self.assertEqual(len(h.finals), 1)

    def test_reply_outcomes(self):
        self.assertEqual(outcome_of_reply(None), "info")
        self.assertEqual(outcome_of_reply({"ok": True, "result": {}}), "ok")
        for code in ("unavailable", "timeout", "overloaded", "internal"):
            self.assertEqual(outcome_of_reply({"ok": False, "error": {"code": code}}), "info")
        for code in ("conflict", "not_found", "forbidden", "out_of_stock", "bad_request"):
            self.assertEqual(outcome_of_reply({"ok": False, "error": {"code": code}}), "fail")
        with HistoryWriter(self.path) as w:
            req = w.invoke(1, "order.pay", {"order_id": "o1"})
            rec = w.reply(1, req, "order.pay", None, no_reply_reason="connection reset")
        self.assertEqual(rec["type"], "info")
        self.assertEqual(rec["error"], {"code": "no_reply", "message": "connection reset"})


class Reader(unittest.TestCase):
    def test_pairs_and_outcomes(self):
        h = parse(records_of(
            {"type": "meta", "scenario": "s"}, INV, OK,
            dict(INV, req=2, time=2.0), dict(OK, type="fail", req=2, time=2.1,
                                             error={"code": "unavailable", "message": "x"}),
            dict(INV, req=3, time=3.0), dict(OK, type="fail", req=3, time=3.1,
                                             error={"code": "forbidden", "message": "x"}),
            dict(INV, req=4, time=4.0)))
        self.assertEqual([op.outcome for op in h.ops], ["ok", "info", "fail", "info"])
        self.assertIsNone(h.ops[3].completion)
        self.assertEqual(h.end_time, 4.0)

    def test_windows_pair_by_fault_or_id(self):
        h = parse(records_of(
            {"type": "nemesis", "event": "start", "fault": "pause n1", "time": 1.0},
            {"type": "nemesis", "event": "start", "fault": "kill", "id": "a", "time": 2.0},
            {"type": "nemesis", "event": "start", "fault": "kill", "id": "b", "time": 3.0},
            {"type": "nemesis", "event": "stop", "fault": "kill", "id": "b", "time": 4.0},
            {"type": "nemesis", "event": "stop", "fault": "pause n1", "time": 5.0}))
        spans = [(w.fault, w.t_start, w.t_stop(h.end_time)) for w in h.windows]
        self.assertEqual(spans, [("pause n1", 1.0, 5.0), ("kill", 2.0, 5.0), ("kill", 3.0, 4.0)])
        self.assertIsNone(h.windows[1].stop)

    def test_malformed_histories_are_refused(self):
        bad = {
            "completion without invoke": [OK],
            "invoked twice": [INV, INV],
            "second meta": [{"type": "meta"}, {"type": "meta"}],
            "unknown type": [{"type": "hmm", "time": 1}],
            "no time": [dict(INV, time=None)],
            "completes before invoke": [INV, dict(OK, time=0.5)],
            "op mismatch": [INV, dict(OK, op="user.deposit")],
            "stop without start": [{"type": "nemesis", "event": "stop", "fault": "x",
                                    "time": 1}],
            "final without state or error": [{"type": "final", "kind": "user", "id": "a",
                                              "time": 1}],
            "final of unknown kind": [{"type": "final", "kind": "cart", "id": "a",
                                       "state": {}, "time": 1}],
        }
        for why, records in bad.items():
            with self.subTest(why):
                with self.assertRaises(HistoryError):
                    parse(records_of(*records))

    def test_torn_last_line_is_dropped_but_a_broken_middle_line_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            with open(path, "w") as f:
                f.write(json.dumps(INV) + "\n" + json.dumps(OK) + "\n" + '{"type":"inv')
            self.assertEqual(len(load(path)), 2)
            with open(path, "w") as f:
                f.write(json.dumps(INV) + "\n" + '{"type":"inv' + "\n" + json.dumps(OK) + "\n")
            with self.assertRaises(HistoryError):
                load(path)


if __name__ == "__main__":
    unittest.main()
