"""The chaos runner's pure parts (no orderd started): skip reasons, the planted-flag probe, the
verdict per scenario, the user placement hash, and a run whose scenarios are all skipped."""

import io
import json
import os
import stat
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

from client.chaos import nemesis, run


def fake_orderd(directory, script):
    path = Path(directory) / "orderd"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def report(violated=(), complete=True):
    names = ["no_lost_acknowledged", "money", "stock"]
    return {"invariants": [{"name": n, "ok": n not in violated} for n in names],
            "completeness": {"complete": complete}}


class Runner(unittest.TestCase):
    def test_shard_hash_matches_the_pinned_value(self):
        self.assertEqual(run.shard_of_user("alice", 64), 26)

    def test_namespace_scenarios_skip_without_a_namespace(self):
        ctx = {"netns": False, "root": False}
        for name in ("partition-isolate", "partition-oneway", "partition-halves", "packet-loss",
                     "disk-full"):
            self.assertIn("namespace", nemesis.skip_reason(name, ctx))
        for name in ("baseline", "kill", "pause", "crash", "mixed", "planted-loss"):
            self.assertIsNone(nemesis.skip_reason(name, ctx))

    def test_namespace_scenarios_skip_when_hosts_cannot_be_made(self):
        ctx = {"netns": True, "root": True, "hosts_unsupported": "nft not installed"}
        for name in ("partition-isolate", "partition-oneway", "partition-halves", "packet-loss"):
            self.assertEqual(nemesis.skip_reason(name, ctx), "nft not installed")

    def test_tool_scenarios_skip_without_their_tools(self):
        ctx = {"netns": True, "root": True}
        old = os.environ.get("PATH", "")
        os.environ["PATH"] = "/nonexistent"
        try:
            self.assertIn("stress-ng not installed",
                          nemesis.skip_reason("cpu-starvation", ctx))
            self.assertIn("fiu-run and fiu-ctrl not installed",
                          nemesis.skip_reason("fsync-fail", ctx))
            self.assertIn("nft not installed", nemesis.skip_reason("packet-loss", ctx))
        finally:
            os.environ["PATH"] = old

    def test_fill_stops_at_its_limit(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d, "ballast")
            self.assertEqual(nemesis._fill(path, limit=3 << 20), 3 << 20)
            self.assertEqual(path.stat().st_size, 3 << 20)

    def test_planted_flag_probe(self):
        with tempfile.TemporaryDirectory() as d:
            old = fake_orderd(d, "echo \"orderd: unrecognised option '--fault-ack-without-write'\""
                                 " >&2; exit 2")
            self.assertIn("does not accept", run.probe_planted(old))
        with tempfile.TemporaryDirectory() as d:
            new = fake_orderd(d, "echo usage; exit 0")
            self.assertIsNone(run.probe_planted(new))

    def test_verdicts(self):
        e = {"scenario": "kill"}
        run.judge(e, report())
        self.assertEqual(e["status"], "passed")
        run.judge(e, report(violated=("money",)))
        self.assertEqual(e["status"], "failed")
        run.judge(e, report(complete=False))
        self.assertEqual(e["status"], "failed")
        p = {"scenario": "planted-loss"}
        run.judge(p, report(violated=("money",)))
        self.assertEqual(p["status"], "passed")
        self.assertIn("checker caught the planted fault", p["reason"])
        run.judge(p, report())
        self.assertEqual(p["status"], "failed")

    def test_all_skipped_run(self):
        with tempfile.TemporaryDirectory() as d:
            out = io.StringIO()
            with redirect_stdout(out):
                rc = run.main(["--scenario", "packet-loss,partition-halves", "--seed", "7",
                               "--duration", "1", "--out", d])
            self.assertEqual(rc, 0)
            lines = out.getvalue().strip().splitlines()
            self.assertEqual(lines[-1], "chaos: 0 passed, 0 failed, 2 skipped")
            res = json.loads(Path(d, "results.json").read_text())
            self.assertEqual([s["status"] for s in res["scenarios"]], ["skipped", "skipped"])
            self.assertEqual(res["seed"], 7)
            self.assertTrue(os.path.exists(os.path.join(d, "summary.txt")))


if __name__ == "__main__":
    unittest.main()
