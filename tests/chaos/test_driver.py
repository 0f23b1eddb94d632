"""The driver's client failover (no orderd started): the node choice after a failure, what a
logical request does after each attempt, and a request that meets a refused connection and a
node that never replies before one that answers (loopback servers in the test)."""

import json
import random
import socket
import tempfile
import threading
import time
import unittest
from pathlib import Path
from unittest import mock

from chaos import driver
from chaos.history import HistoryWriter, load, parse


class ChooseNode(unittest.TestCase):
    def test_none_running(self):
        self.assertIsNone(driver.choose_node([], random.Random(1)))

    def test_avoids_the_nodes_that_failed_this_request(self):
        rng = random.Random(1)
        for _ in range(50):
            self.assertEqual(driver.choose_node(["n1", "n2", "n3"], rng, avoid=["n1", "n3"]),
                             "n2")

    def test_avoids_nodes_held_down_until_their_time(self):
        rng = random.Random(2)
        down = {"n1": 10.0, "n2": 10.0}
        picks = {driver.choose_node(["n1", "n2", "n3"], rng, down=down, now=5.0)
                 for _ in range(50)}
        self.assertEqual(picks, {"n3"})
        picks = {driver.choose_node(["n1", "n2", "n3"], rng, down=down, now=10.0)
                 for _ in range(200)}
        self.assertEqual(picks, {"n1", "n2", "n3"})

    def test_held_down_beats_tried(self):
        # n2 is held down (it failed another request), n1 and n3 failed this one: an untried
        # node, even held down, comes before one that already failed this request
        rng = random.Random(3)
        self.assertEqual(driver.choose_node(["n1", "n2", "n3"], rng, avoid=["n1", "n3"],
                                            down={"n2": 9.0}, now=1.0), "n2")

    def test_falls_back_to_any_running_node(self):
        rng = random.Random(4)
        picks = {driver.choose_node(["n1", "n2"], rng, avoid=["n1", "n2"], now=1.0)
                 for _ in range(100)}
        self.assertEqual(picks, {"n1", "n2"})
        # of those, one not held down first
        picks = {driver.choose_node(["n1", "n2"], rng, avoid=["n1", "n2"], down={"n1": 9.0},
                                    now=1.0) for _ in range(100)}
        self.assertEqual(picks, {"n2"})

    def test_all_held_down_the_first_to_end(self):
        # n1 and n3 timed out on requests they forwarded to a silent primary; n2 has just
        # refused as cut off: back to the node whose hold-down ends first, not a random one
        rng = random.Random(5)
        down = {"n1": 2.9, "n2": 3.9, "n3": 3.2}
        picks = {driver.choose_node(["n1", "n2", "n3"], rng, down=down, now=2.0)
                 for _ in range(100)}
        self.assertEqual(picks, {"n1"})
        picks = {driver.choose_node(["n1", "n2", "n3"], rng, avoid=["n1"], down=down, now=2.0)
                 for _ in range(100)}
        self.assertEqual(picks, {"n3"})
        picks = {driver.choose_node(["n1", "n2", "n3"], rng, avoid=["n1", "n2", "n3"],
                                    down=down, now=2.0) for _ in range(100)}
        self.assertEqual(picks, {"n1"})


class RetryKind(unittest.TestCase):
    def test_ok_and_refusals_are_done(self):
        self.assertEqual(driver.retry_kind("ok", {"ok": True}, "n1"), "done")
        refused = {"ok": False, "error": {"code": "out_of_stock"}}
        self.assertEqual(driver.retry_kind("fail", refused, "n1"), "done")

    def test_refusal_in_retry_codes_backs_off(self):
        conflict = {"ok": False, "error": {"code": "conflict"}}
        self.assertEqual(driver.retry_kind("fail", conflict, "n1", ("conflict",)), "backoff")

    def test_no_reply_fails_over(self):
        self.assertEqual(driver.retry_kind("info", None, "n2"), "failover")

    def test_retry_elsewhere_fails_over(self):
        cut_off = {"ok": False, "error": {"code": "unavailable", "retry_elsewhere": True}}
        self.assertEqual(driver.retry_kind("info", cut_off, "n2"), "failover")
        self.assertTrue(driver.retry_elsewhere(cut_off))
        self.assertFalse(driver.retry_elsewhere({"ok": False, "error": {"code": "unavailable"}}))
        self.assertFalse(driver.retry_elsewhere(None))

    def test_answered_outcome_unknown_backs_off(self):
        unavailable = {"ok": False, "error": {"code": "unavailable"}}
        self.assertEqual(driver.retry_kind("info", unavailable, "n2"), "backoff")

    def test_no_node_running_backs_off(self):
        self.assertEqual(driver.retry_kind("info", None, None), "backoff")


class _Server:
    """A loopback JSON-lines server: answers ok to every request, or (`silent`) reads and
    never answers."""

    def __init__(self, silent=False):
        self.silent = silent
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        while True:
            try:
                chunk = c.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if self.silent:
                    continue
                req = json.loads(line)
                c.sendall((json.dumps({"id": req["id"], "ok": True, "result": {"n": 1}})
                           + "\n").encode())

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Node:
    def __init__(self, name, port):
        self.name, self.host, self.port = name, "127.0.0.1", port


class _Cluster:
    def __init__(self, nodes):
        self.nodes = nodes
        self.admin_token = "adm"

    def live(self):
        return list(self.nodes)


class _Driver:
    def __init__(self, history, cluster):
        self.history, self.cluster, self.seed, self.admin_token = history, cluster, 1, "adm"
        self.ops = 0

    def count_op(self):
        self.ops += 1

    def stopping(self):
        return False


class Failover(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "h.jsonl"
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.close()
        self.tmp.cleanup()

    def _actor(self, nodes, route):
        h = HistoryWriter(self.path)
        h.meta(scenario="t", users={"u1": {"admin": False}})
        d = _Driver(h, _Cluster(nodes))
        a = driver.Actor(d, 1, "u1", random.Random(1))
        a.route_rng = route
        return h, a

    def test_refused_then_silent_then_answering_node_same_request(self):
        silent, good = _Server(silent=True), _Server()
        self.servers += [silent, good]
        nodes = [_Node("n1", _closed_port()), _Node("n2", silent.port), _Node("n3", good.port)]
        # the route rng picks n1 first, then n2 (n1 failed), then n3
        route = mock.Mock()
        route.choice.side_effect = lambda xs: xs[0]
        h, a = self._actor(nodes, route)
        args = {"user_id": "u1", "amount_cents": 100, "request_id": "d-1-1"}
        t0 = time.monotonic()
        with mock.patch.object(driver, "REQUEST_TIMEOUT", 0.3):
            out, reply = a.call("user.deposit", args, "u1")
        took = time.monotonic() - t0
        a.close()
        h.close()
        self.assertEqual(out, "ok")
        self.assertLess(took, 2.0)  # no backoff sleeps: two failovers at once
        parsed = parse(load(self.path))   # a well-formed history: every invoke completed
        self.assertEqual([op.outcome for op in parsed.ops], ["info", "info", "ok"])
        lines = [json.loads(x) for x in self.path.read_text().splitlines()][1:]
        invokes = [r for r in lines if r["type"] == "invoke"]
        self.assertEqual([r["node"] for r in invokes], ["n1", "n2", "n3"])
        self.assertTrue(all(r["args"] == args for r in invokes))
        self.assertEqual(len({r["req"] for r in invokes}), 3)
        done = [r["type"] for r in lines if r["type"] != "invoke"]
        self.assertEqual(done, ["info", "info", "ok"])
        # both failed nodes are held down for this client's next requests
        self.assertEqual(set(a.down), {"n1", "n2"})

    def test_failovers_are_bounded(self):
        nodes = [_Node("n1", _closed_port()), _Node("n2", _closed_port())]
        h, a = self._actor(nodes, random.Random(5))
        out, reply = a.call("user.get", {"user_id": "u1"}, "u1")
        h.close()
        self.assertEqual((out, reply), ("info", None))
        lines = [json.loads(x) for x in self.path.read_text().splitlines()][1:]
        self.assertEqual(sum(r["type"] == "invoke" for r in lines), 1 + driver.MAX_FAILOVERS)
        self.assertTrue(all(r["error"]["code"] == "no_reply"
                            for r in lines if r["type"] == "info"))


if __name__ == "__main__":
    unittest.main()
