"""The chaos runner's pure parts (no orderd started): skip reasons, the planted-flag probe, the
verdict per scenario, the user placement hash, the skip rule as root, a run whose scenarios
cannot run (with and without root), and the per-case report."""

import io
import json
import os
import random
import stat
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

from chaos import case_report, etcd_ctl, nemesis, run


def fake_orderd(directory, script):
    path = Path(directory) / "orderd"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def report_env(directory=None, suite=None):
    """os.environ without the report variables that this very test run may have been given
    (ctest sets them for chaos_checker), plus the ones a test wants."""
    env = {k: v for k, v in os.environ.items()
           if k not in (case_report.ENV, case_report.SUITE_ENV)}
    if directory is not None:
        env[case_report.ENV] = str(directory)
    if suite is not None:
        env[case_report.SUITE_ENV] = suite
    return env


def report(violated=(), complete=True):
    names = ["no_lost_acknowledged", "money", "stock"]
    return {"invariants": [{"name": n, "ok": n not in violated} for n in names],
            "completeness": {"complete": complete}}


class Runner(unittest.TestCase):
    def setUp(self):
        # every scenario needs etcd (etcd_ctl.missing): these cases are about the other
        # reasons, so they do not depend on this machine having etcd installed
        patcher = mock.patch.object(etcd_ctl, "missing", return_value=None)
        patcher.start()
        self.addCleanup(patcher.stop)

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
        # replicated: the replicas must have caught up after the heal (all invariants held)
        z = {"scenario": "two-down", "not_caught_up": ["shard 34: isr ['n2', 'n1'] of ..."]}
        run.judge(z, report())
        self.assertEqual(z["status"], "failed")
        self.assertIn("not caught up", z["reason"])

    def test_skip_verdict(self):
        # without root a scenario this machine cannot run is skipped, as root it fails
        self.assertEqual(run.skip_verdict("stress-ng not installed", root=False,
                                          allow_skips=False),
                         ("skipped", "stress-ng not installed"))
        self.assertEqual(run.skip_verdict("stress-ng not installed", root=True,
                                          allow_skips=False),
                         ("failed", "would be skipped as root: stress-ng not installed"))
        self.assertEqual(run.skip_verdict("stress-ng not installed", root=True, allow_skips=True),
                         ("skipped", "stress-ng not installed"))
        self.assertEqual(run.skip_verdict("x", root=False, allow_skips=True), ("skipped", "x"))

    def unrunnable(self, euid, *extra):
        """run.main over two scenarios that cannot run here (no --netns), as user `euid`, with
        ORDERMESH_REPORT_DIR set to a temp dir: (exit code, output lines, results.json,
        report)."""
        with tempfile.TemporaryDirectory() as d, \
                mock.patch.dict(os.environ, report_env(Path(d, "reports")), clear=True), \
                mock.patch.object(run.os, "geteuid", return_value=euid):
            out = io.StringIO()
            with redirect_stdout(out):
                rc = run.main(["--scenario", "packet-loss,partition-halves", "--seed", "7",
                               "--duration", "1", "--out", str(Path(d, "out"))] + list(extra))
            res = json.loads(Path(d, "out", "results.json").read_text())
            self.assertTrue(Path(d, "out", "summary.txt").exists())
            report = json.loads(Path(d, "reports", "py-chaos.json").read_text())
            self.assertEqual([p.name for p in Path(d, "reports").iterdir()], ["py-chaos.json"])
        return rc, out.getvalue().strip().splitlines(), res, report

    def test_all_skipped_run(self):
        rc, lines, res, report = self.unrunnable(1000)
        self.assertEqual(rc, 0)
        self.assertEqual(lines[-1], "chaos: 0 passed, 0 failed, 2 skipped")
        self.assertEqual([s["status"] for s in res["scenarios"]], ["skipped", "skipped"])
        self.assertEqual(res["seed"], 7)
        self.assertEqual(report["suite"], "chaos")
        self.assertEqual(report["defined"], ["packet-loss", "partition-halves"])
        self.assertEqual((report["passed"], report["failed"]), ([], []))
        self.assertEqual([s["name"] for s in report["skipped"]],
                         ["packet-loss", "partition-halves"])
        self.assertIn("namespace", report["skipped"][0]["reason"])

    def test_skips_fail_as_root(self):
        rc, lines, res, report = self.unrunnable(0)
        self.assertEqual(rc, 1)
        self.assertEqual(lines[-1], "chaos: 0 passed, 2 failed")
        self.assertEqual([s["status"] for s in res["scenarios"]], ["failed", "failed"])
        self.assertTrue(res["scenarios"][0]["reason"].startswith("would be skipped as root: "))
        self.assertEqual(report["failed"], ["packet-loss", "partition-halves"])
        self.assertEqual((report["passed"], report["skipped"]), ([], []))

    def test_allow_skips_as_root(self):
        rc, lines, res, report = self.unrunnable(0, "--allow-skips")
        self.assertEqual(rc, 0)
        self.assertEqual(lines[-1], "chaos: 0 passed, 0 failed, 2 skipped")
        self.assertEqual(len(report["skipped"]), 2)

    def test_no_report_without_the_variable(self):
        with tempfile.TemporaryDirectory() as d:
            with mock.patch.dict(os.environ, report_env(), clear=True):
                self.assertIsNone(case_report.write("x", ["a"], ["a"], []))
                with redirect_stdout(io.StringIO()):
                    run.main(["--scenario", "packet-loss", "--seed", "7", "--duration", "1",
                              "--out", d, "--allow-skips"])
            self.assertEqual(sorted(p.name for p in Path(d).iterdir()),
                             ["results.json", "summary.txt"])

    def test_case_report_file(self):
        with tempfile.TemporaryDirectory() as d:
            where = Path(d, "new", "dir")
            with mock.patch.dict(os.environ, report_env(where), clear=True):
                path = case_report.write("s", ["a", "b", "c", "d"], ["a"], ["b"],
                                         [("c", "why")])
            self.assertEqual(Path(path), where / "py-s.json")
            self.assertEqual(json.loads(Path(path).read_text()),
                             {"suite": "s", "defined": ["a", "b", "c", "d"], "passed": ["a"],
                              "failed": ["b"], "skipped": [{"name": "c", "reason": "why"}]})
            self.assertEqual(sorted(p.name for p in where.iterdir()), ["py-s.json"])
            # the ctest registrations name the report after the ctest entry
            with mock.patch.dict(os.environ, report_env(where, suite="entry"), clear=True):
                path = case_report.write("s", ["a"], ["a"], [])
            self.assertEqual(Path(path), where / "py-entry.json")
            self.assertEqual(json.loads(Path(path).read_text())["suite"], "entry")


if __name__ == "__main__":
    unittest.main()


class FakeNode:
    def __init__(self, name, data_dir):
        self.name, self.data_dir, self.net = name, data_dir, f"net-{name}"
        self.up, self.paused, self.log = True, False, []

    def alive(self):
        return self.up

    def kill(self):
        self.up, self.paused = False, False
        self.log.append("kill")

    def pause(self):
        self.paused = True
        self.log.append("pause")

    def resume(self):
        self.paused = False
        self.log.append("resume")


class FakeCluster:
    def __init__(self, directory, top="n2"):
        self.nodes = [FakeNode(f"n{i}", Path(directory) / f"n{i}" / "data") for i in (1, 2, 3)]
        for n in self.nodes:
            n.data_dir.mkdir(parents=True)
            (n.data_dir / "CURRENT").write_text("x")
        self.top, self.waits = top, 0
        self.firewall = mock.Mock()

    def top_primary(self):
        return next(n for n in self.nodes if n.name == self.top)

    def restart(self, node):
        node.up = True
        node.log.append("restart")

    def wait_balanced(self, timeout):
        self.waits += 1
        return {"ok": True}

    def heal_processes(self):
        pass


class FakeHistory:
    def __init__(self):
        self.records = []

    def nemesis(self, event, fault, nodes=None, **extra):
        self.records.append((event, fault, tuple(nodes or ())))


class ReplicatedFaults(unittest.TestCase):
    """The replicated scenarios' faults on a fake cluster: whom they hit, what they undo, and
    that every window is closed (the deadline already passed: holds end at once)."""

    def nemesis(self, d, **kw):
        self.cluster = FakeCluster(d, **kw)
        self.h = FakeHistory()
        return nemesis.Nemesis(self.cluster, self.h, driver=None, rng=random.Random(1))

    def test_primary_kill_hits_the_top_primary_and_restarts_it(self):
        with tempfile.TemporaryDirectory() as d:
            nem = self.nemesis(d, top="n3")
            nem.primary_kill(deadline=0.0)
            self.assertEqual(self.cluster.nodes[2].log, ["kill", "restart"])
            self.assertEqual(self.h.records, [("start", "kill primary n3", ("n3",)),
                                              ("stop", "kill primary n3", ("n3",))])

    def test_zombie_pauses_then_resumes_the_top_primary(self):
        with tempfile.TemporaryDirectory() as d:
            nem = self.nemesis(d)
            nem.zombie(deadline=0.0)
            self.assertEqual(self.cluster.nodes[1].log, ["pause", "resume"])
            self.assertEqual([r[0] for r in self.h.records], ["start", "stop"])

    def test_wipe_deletes_the_data_dir_and_waits_for_catch_up(self):
        with tempfile.TemporaryDirectory() as d:
            nem = self.nemesis(d)
            nem.wipe(deadline=0.0)
            n2 = self.cluster.nodes[1]
            self.assertEqual(n2.log, ["kill", "restart"])
            self.assertFalse(n2.data_dir.exists())
            self.assertTrue(self.cluster.nodes[0].data_dir.exists())
            self.assertEqual(self.cluster.waits, 1)
            self.assertTrue(any("caught up" in e for e in nem.events))

    def test_two_down_kills_two_and_restarts_both(self):
        with tempfile.TemporaryDirectory() as d:
            nem = self.nemesis(d)
            nem.two_down(deadline=0.0)
            hit = [n for n in self.cluster.nodes if n.log]
            self.assertEqual(len(hit), 2)
            for n in hit:
                self.assertEqual(n.log, ["kill", "restart"])
                self.assertTrue(n.alive())
            self.assertEqual(len(self.h.records[0][2]), 2)

    def test_partition_primary_cuts_it_from_its_peers_both_ways(self):
        with tempfile.TemporaryDirectory() as d:
            nem = self.nemesis(d, top="n1")
            nem.partition_primary(deadline=0.0)
            fw = self.cluster.firewall
            fw.cut.assert_any_call(["net-n1"], ["net-n2", "net-n3"])
            fw.cut.assert_any_call(["net-n2", "net-n3"], ["net-n1"])
            fw.heal.assert_called_once()
            self.assertEqual(self.h.records[0], ("start", "isolate primary n1", ("n1",)))
