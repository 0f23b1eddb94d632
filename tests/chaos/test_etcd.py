"""The runner's etcd parts (nothing started): etcd's command line, orderd's flags, the nft rules
of etcd-cut-node, the settled/balanced check on the etcd status shape, the etcd scenarios being
ordinary members of `all`, and the runner refusing the old `--coordination` option."""

import contextlib
import io
import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from chaos import cluster_ctl, etcd_ctl, nemesis, run
from chaos.cluster_ctl import balanced_view

REPO = Path(__file__).resolve().parents[2]


def member(node_id, state="up"):
    return {"node_id": node_id, "state": state, "incarnation": 2, "shards_owned": 0}


def etcd_status(me, primaries, controller="n1", members=None, lease_valid=True, targets=None,
                unreachable=()):
    """A cluster.status answer of the etcd mode: `primaries` the primary of shard i."""
    targets = targets or {}
    shards = [{"shard": i, "primary": p, "owner": p, "epoch": 1, "replicas": [p], "isr": [p],
               "target": targets.get(i, "")} for i, p in enumerate(primaries)]
    return {"node_id": me, "coordination": "etcd", "controller": controller, "incarnation": 3,
            "lease_valid": lease_valid, "shard_count": len(primaries),
            "unreachable_from_here": list(unreachable),
            "members": [member(m) for m in (members or ["n1", "n2", "n3"])], "shards": shards}


SPREAD = ["n1", "n2", "n3", "n1", "n2", "n3"]


class EtcdCommandLine(unittest.TestCase):
    def test_member_command_names_every_url(self):
        cmd = etcd_ctl.member_command("/usr/bin/etcd", "e1", "/d/e1", "10.77.0.1", 2379, 2380,
                                      "e1=http://10.77.0.1:2380", "tok")
        self.assertEqual(cmd[0], "/usr/bin/etcd")
        args = dict(zip(cmd[1::2], cmd[2::2]))
        self.assertEqual(args["--name"], "e1")
        self.assertEqual(args["--data-dir"], "/d/e1")
        self.assertEqual(args["--listen-client-urls"], "http://10.77.0.1:2379")
        self.assertEqual(args["--advertise-client-urls"], "http://10.77.0.1:2379")
        self.assertEqual(args["--listen-peer-urls"], "http://10.77.0.1:2380")
        self.assertEqual(args["--initial-advertise-peer-urls"], "http://10.77.0.1:2380")
        self.assertEqual(args["--initial-cluster"], "e1=http://10.77.0.1:2380")
        self.assertEqual(args["--initial-cluster-token"], "tok")
        self.assertIn("--unsafe-no-fsync", cmd)
        # default timings: no --heartbeat-interval / --election-timeout (ENGINEERING.md 5)
        self.assertNotIn("--heartbeat-interval", cmd)
        self.assertNotIn("--election-timeout", cmd)

    def test_initial_cluster_of_three(self):
        self.assertEqual(
            etcd_ctl.initial_cluster([("e1", "10.77.0.1", 2380), ("e2", "10.77.0.2", 2380),
                                      ("e3", "10.77.0.3", 2380)]),
            "e1=http://10.77.0.1:2380,e2=http://10.77.0.2:2380,e3=http://10.77.0.3:2380")

    def test_addresses_in_the_namespace_and_on_loopback(self):
        self.assertEqual(etcd_ctl.addresses(3, True),
                         [("10.77.0.1", 2379, 2380), ("10.77.0.2", 2379, 2380),
                          ("10.77.0.3", 2379, 2380)])
        self.assertEqual(etcd_ctl.addresses(1, False), [("127.0.0.1", None, None)])

    def test_node_flags(self):
        self.assertEqual(etcd_ctl.node_flags(["http://10.77.0.1:2379", "http://10.77.0.2:2379"]),
                         ["--etcd", "http://10.77.0.1:2379,http://10.77.0.2:2379",
                          "--cluster", "chaos", "--lease-ttl", "3s"])

    def test_every_orderd_command_has_etcd_and_no_seeds(self):
        with tempfile.TemporaryDirectory() as d:
            c = cluster_ctl.Cluster(Path(d) / "nodes", "/bin/orderd", 3)
            self.assertEqual(len(c.etcd.members), 1)
            self.assertEqual(c.etcd.dir, Path(d) / "etcd")
            for node in c.nodes:
                cmd = node.command()
                self.assertNotIn("--seeds", cmd)
                i = cmd.index("--etcd")
                self.assertEqual(cmd[i + 1], c.etcd.urls()[0])
                self.assertTrue(cmd[i + 1].startswith("http://127.0.0.1:"))
                self.assertEqual(cmd[cmd.index("--cluster") + 1], "chaos")
                self.assertEqual(cmd[cmd.index("--lease-ttl") + 1], "3s")
                self.assertEqual(cmd[cmd.index("--node-id") + 1], node.name)
            three = cluster_ctl.Cluster(Path(d) / "t", "/bin/orderd", 2, etcd_members=3)
            urls = three.nodes[0].command()[three.nodes[0].command().index("--etcd") + 1]
            self.assertEqual(urls.split(","), three.etcd.urls())
            self.assertEqual(len(set(three.etcd.urls())), 3)

    def test_cluster_plane_flags(self):
        """With a tls_dir every node runs mutual TLS with a certificate of its own name (made
        there by scripts/gen-certs.sh, the CA once); without one, --insecure-cluster."""
        with tempfile.TemporaryDirectory() as d:
            plain = cluster_ctl.Cluster(Path(d) / "p", "/bin/orderd", 2)
            for node in plain.nodes:
                self.assertIn("--insecure-cluster", node.command())
                self.assertNotIn("--tls-cert", node.command())
            certs = Path(d) / "certs"
            tls = cluster_ctl.Cluster(Path(d) / "t", "/bin/orderd", 3, tls_dir=certs)
            ca = (certs / "ca.pem").read_bytes()
            for node in tls.nodes:
                cmd = node.command()
                self.assertNotIn("--insecure-cluster", cmd)
                self.assertEqual(cmd[cmd.index("--tls-cert") + 1], str(certs / f"{node.name}.pem"))
                self.assertEqual(cmd[cmd.index("--tls-key") + 1], str(certs / f"{node.name}.key"))
                self.assertEqual(cmd[cmd.index("--tls-ca") + 1], str(certs / "ca.pem"))
                self.assertTrue((certs / f"{node.name}.pem").is_file())
            # A later scenario of the same run reuses the CA (and the certificates).
            cluster_ctl.Cluster(Path(d) / "t2", "/bin/orderd", 3, tls_dir=certs)
            self.assertEqual((certs / "ca.pem").read_bytes(), ca)

    def test_loopback_members_get_distinct_ports(self):
        with tempfile.TemporaryDirectory() as d:
            e = etcd_ctl.Etcd(d, members=3, netns=False)
            ports = [p for m in e.members for p in (m.client_port, m.peer_port)]
            self.assertEqual(len(set(ports)), 6)
            self.assertEqual(len(e.urls()), 3)
            self.assertEqual(e.initial_cluster().count("=http://127.0.0.1:"), 3)


class CutRules(unittest.TestCase):
    def test_cut_node_rules_take_input_and_output_only(self):
        rules = etcd_ctl.cut_rules("10.77.2.2", ["10.77.0.1", "10.77.0.2"])
        self.assertEqual(rules, [
            ("input", "ip saddr 10.77.2.2 ip daddr 10.77.0.1 drop"),
            ("output", "ip saddr 10.77.0.1 ip daddr 10.77.2.2 drop"),
            ("input", "ip saddr 10.77.2.2 ip daddr 10.77.0.2 drop"),
            ("output", "ip saddr 10.77.0.2 ip daddr 10.77.2.2 drop")])
        # node-to-node traffic crosses `forward`: never touched by this fault
        self.assertFalse([r for r in rules if r[0] == "forward"])

    def test_etcd_addresses_are_outside_every_host_subnet(self):
        hosts = {f"10.77.{k}." for k in range(1, 10)}
        for host, _, _ in etcd_ctl.addresses(3, True):
            self.assertFalse(any(host.startswith(h) for h in hosts))


class BalancedEtcd(unittest.TestCase):
    def view(self, statuses, want=("n1", "n2", "n3")):
        return balanced_view(statuses, list(want))

    def test_settled(self):
        sts = [etcd_status(n, SPREAD) for n in ("n1", "n2", "n3")]
        self.assertIs(self.view(sts), sts[0])

    def test_a_pending_move_is_not_settled(self):
        sts = [etcd_status(n, SPREAD, targets={2: "n1"}) for n in ("n1", "n2", "n3")]
        self.assertIsNone(self.view(sts))

    def test_every_member_must_lead_shards(self):
        primaries = ["n1", "n2", "n1", "n2", "n1", "n2"]
        self.assertIsNone(self.view([etcd_status(n, primaries) for n in ("n1", "n2", "n3")]))

    def test_between_two_moves_is_not_settled(self):
        # no target anywhere and every member leads a shard, but the controller is still
        # moving shards to n3 (its next intent not yet written): counts differ by more than one
        primaries = ["n1", "n1", "n1", "n2", "n2", "n3"]
        self.assertIsNone(self.view([etcd_status(n, primaries) for n in ("n1", "n2", "n3")]))
        primaries = ["n1"] * 32 + ["n2"] * 30 + ["n3"] * 2
        self.assertIsNone(self.view([etcd_status(n, primaries) for n in ("n1", "n2", "n3")]))

    def test_counts_within_one_are_settled(self):
        primaries = ["n1"] * 22 + ["n2"] * 21 + ["n3"] * 21
        self.assertIsNotNone(self.view([etcd_status(n, primaries) for n in ("n1", "n2", "n3")]))

    def test_one_controller_all_agree_on(self):
        sts = [etcd_status("n1", SPREAD), etcd_status("n2", SPREAD, controller="n2"),
               etcd_status("n3", SPREAD)]
        self.assertIsNone(self.view(sts))
        self.assertIsNone(self.view([etcd_status(n, SPREAD, controller="")
                                     for n in ("n1", "n2", "n3")]))
        self.assertIsNone(self.view([etcd_status(n, SPREAD, controller="n9")
                                     for n in ("n1", "n2", "n3")]))

    def test_lease_must_be_valid(self):
        sts = [etcd_status(n, SPREAD, lease_valid=(n != "n2")) for n in ("n1", "n2", "n3")]
        self.assertIsNone(self.view(sts))

    def test_members_must_match_the_running_nodes(self):
        sts = [etcd_status(n, SPREAD, members=["n1", "n3"]) for n in ("n1", "n2", "n3")]
        self.assertIsNone(self.view(sts))
        sts = [etcd_status(n, SPREAD) for n in ("n1", "n2", "n3")]
        sts[1]["members"][0]["state"] = "leaving"
        self.assertIsNone(self.view(sts))

    def test_views_must_agree_and_see_every_peer(self):
        other = ["n2", "n1", "n3", "n1", "n2", "n3"]
        sts = [etcd_status("n1", SPREAD), etcd_status("n2", other), etcd_status("n3", SPREAD)]
        self.assertIsNone(self.view(sts))
        sts = [etcd_status(n, SPREAD, unreachable=["n2"] if n == "n1" else ())
               for n in ("n1", "n2", "n3")]
        self.assertIsNone(self.view(sts))

    def test_a_node_without_an_answer_is_not_settled(self):
        self.assertIsNone(self.view([etcd_status("n1", SPREAD), None, etcd_status("n3", SPREAD)]))
        self.assertIsNone(self.view([etcd_status("n1", SPREAD)]))

    def test_a_status_of_another_coordination_is_never_settled(self):
        # a node that came up without --etcd (a lone node, or an old --seeds build) must not
        # pass for part of the etcd cluster, however balanced its shards look
        for other in ("seeds", "local", None):
            sts = [etcd_status(n, SPREAD) for n in ("n1", "n2", "n3")]
            for st in sts:
                st["coordination"] = other
            self.assertIsNone(self.view(sts), other)
        sts = [etcd_status(n, SPREAD) for n in ("n1", "n2", "n3")]
        del sts[2]["coordination"]
        self.assertIsNone(self.view(sts))


def rf3_status(me, primaries, lag=0, isr=None):
    """An etcd-mode status of a replication-factor-3 cluster: every shard on n1..n3, the
    primary's answer shows its followers' lag."""
    st = etcd_status(me, primaries)
    for sh in st["shards"]:
        sh["replicas"] = ["n1", "n2", "n3"]
        sh["isr"] = list(isr or sh["replicas"])
        if sh["primary"] == me:
            sh["lag"] = {n: lag for n in sh["replicas"] if n != me}
    return st


class Replicated(unittest.TestCase):
    """Settling with replication: the catch-up rule on top of the count rule (the controller's
    rebalance moves primaries back after a failover; until it has, a primary move may be in
    flight)."""

    NODES = ("n1", "n2", "n3")

    def view(self, statuses):
        return balanced_view(statuses, list(self.NODES), replicated=True)

    def test_caught_up_and_spread_is_settled(self):
        sts = [rf3_status(n, SPREAD) for n in self.NODES]
        self.assertIs(self.view(sts), sts[0])
        self.assertEqual(cluster_ctl.caught_up(dict(zip(self.NODES, sts))), [])

    def test_caught_up_before_the_primaries_moved_back_is_not_settled(self):
        primaries = ["n1", "n2", "n1", "n2", "n1", "n2"]  # n3 lost its shards to a failover
        sts = [rf3_status(n, primaries) for n in self.NODES]
        self.assertEqual(cluster_ctl.caught_up(dict(zip(self.NODES, sts))), [])
        self.assertIsNone(self.view(sts))

    def test_a_lagging_follower_is_not_settled(self):
        sts = [rf3_status(n, SPREAD, lag=3 if n == "n2" else 0) for n in self.NODES]
        self.assertIsNone(self.view(sts))
        self.assertIn("lag", cluster_ctl.caught_up(dict(zip(self.NODES, sts)))[0])

    def test_missing_lag_or_an_incomplete_isr_is_not_settled(self):
        sts = [rf3_status(n, SPREAD) for n in self.NODES]
        del sts[0]["shards"][0]["lag"]
        self.assertIsNone(self.view(sts))
        sts = [rf3_status(n, SPREAD, isr=["n1", "n2"]) for n in self.NODES]
        self.assertIsNone(self.view(sts))
        self.assertIn("isr", cluster_ctl.caught_up(dict(zip(self.NODES, sts)))[0])

    def test_a_shard_without_a_running_primary_is_not_settled(self):
        primaries = ["n1", "n2", "n4", "n2", "n1", "n2"]
        self.assertIsNone(self.view([rf3_status(n, primaries) for n in self.NODES]))

    def test_top_primary(self):
        st = rf3_status("n1", ["n2", "n3", "n2", "n3", "n1"])
        self.assertEqual(cluster_ctl.top_primary_of(st, ["n1", "n2", "n3"]), "n2")  # tie: n2
        self.assertEqual(cluster_ctl.top_primary_of(st, ["n1", "n3"]), "n3")
        self.assertIsNone(cluster_ctl.top_primary_of(st, ["n4"]))

    def test_epoch_monitor_keeps_changes_only(self):
        mon = cluster_ctl.EpochMonitor(cluster=None)
        st = rf3_status("n1", ["n1", "n2"])
        mon.record("n1", st)
        mon.record("n1", st)
        st["shards"][0].update(epoch=2, primary="n3")
        mon.record("n1", st)
        self.assertEqual(mon.views["n1"], {"0": [[1, "n1"], [2, "n3"]], "1": [[1, "n2"]]})
        self.assertEqual(mon.samples, 3)


class Scenarios(unittest.TestCase):
    ETCD = ("etcd-kill", "etcd-pause", "etcd-cut-node", "etcd-kill-member", "rebalance")

    def test_etcd_scenarios_are_ordinary_members_of_all(self):
        for name in self.ETCD:
            self.assertIn(name, run.ORDER)
        self.assertEqual(run.ORDER, list(nemesis.SCENARIOS))
        self.assertEqual(len(run.ORDER), 25)  # 20 + the 5 of replicated clusters only
        # nothing marks a scenario as belonging to one mode any more
        self.assertFalse([n for n, s in nemesis.SCENARIOS.items() if "etcd_only" in s])
        self.assertFalse(hasattr(nemesis, "ETCD_ONLY") or hasattr(nemesis, "applicable"))

    def test_skip_reasons(self):
        ctx = {"netns": True, "root": True}
        with mock.patch.object(etcd_ctl, "missing", return_value=None):
            for name in ("etcd-kill", "etcd-pause", "etcd-kill-member", "rebalance", "kill",
                         "baseline"):
                self.assertIsNone(nemesis.skip_reason(name, ctx))
            self.assertIn("namespace", nemesis.skip_reason(
                "etcd-cut-node", {"netns": False, "root": False}))
        with mock.patch.object(etcd_ctl, "missing", return_value="etcd not installed"):
            for name in nemesis.SCENARIOS:  # every scenario needs etcd
                self.assertEqual(nemesis.skip_reason(name, ctx), "etcd not installed")

    REPLICATED = ("primary-kill-repeat", "zombie", "wipe", "two-down", "partition-primary")

    def test_all_depends_on_the_replication_factor(self):
        at1, at3 = nemesis.scenarios_for(1), nemesis.scenarios_for(3)
        self.assertEqual(len(at1), 20)  # what chaos_suite runs (19, then power-cut)
        for name in self.REPLICATED:
            self.assertNotIn(name, at1)
            self.assertIn(name, at3)
            self.assertIn("--replication-factor 3", nemesis.runs_at(name, 1))
            self.assertIsNone(nemesis.runs_at(name, 3))
        self.assertIn("rebalance", at1)
        # at 3 a leave moves the node's replicas: it needs a node that holds none of them
        self.assertNotIn("rebalance", at3)
        self.assertIn("--nodes 4", nemesis.runs_at("rebalance", 3, 3))
        self.assertIsNone(nemesis.runs_at("rebalance", 3, 4))
        self.assertIn("rebalance", nemesis.scenarios_for(3, 4))
        self.assertEqual(len(nemesis.scenarios_for(3, 4)), len(at3) + 1)
        for name in ("kill", "pause", "etcd-cut-node", "baseline", "power-cut"):
            self.assertIn(name, at1)
            self.assertIn(name, at3)
        with mock.patch.object(etcd_ctl, "missing", return_value=None):
            self.assertIn("namespace", nemesis.skip_reason("partition-primary",
                                                           {"netns": False, "root": False}))

    def test_replicated_scenarios_at_rf1_are_a_usage_error(self):
        for scenario, rf in (("zombie", "1"), ("kill,wipe", "1"), ("rebalance", "3")):
            with tempfile.TemporaryDirectory() as d:
                err = io.StringIO()
                with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as cm:
                    run.main(["--scenario", scenario, "--replication-factor", rf, "--out", d,
                              "--seed", "1"])
                self.assertEqual(cm.exception.code, 2)
                self.assertIn("replication-factor", err.getvalue())
                self.assertEqual(list(Path(d).iterdir()), [])  # nothing ran

    def test_kill_member_always_runs_three_members(self):
        self.assertEqual(nemesis.SCENARIOS["etcd-kill-member"]["etcd_members"], 3)

    def test_runner_refuses_coordination(self):
        for value in ("seeds", "etcd"):
            with tempfile.TemporaryDirectory() as d:
                err = io.StringIO()
                with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as cm:
                    run.main(["--coordination", value, "--scenario", "kill", "--out", d,
                              "--seed", "1"])
                self.assertEqual(cm.exception.code, 2)
                self.assertIn("chaos always runs on etcd", err.getvalue())
                self.assertEqual(list(Path(d).iterdir()), [])  # nothing ran

    def test_chaos_sh_refuses_coordination(self):
        # refused while parsing its arguments: before the orderd check and any namespace
        for extra in (["--coordination", "seeds"], ["--coordination", "etcd"], ["--coordination"]):
            p = subprocess.run(["bash", str(REPO / "scripts/chaos.sh"), "--scenario", "kill"]
                               + extra, capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, ORDERD="/nonexistent/orderd"))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("chaos always runs on etcd", p.stderr)


if __name__ == "__main__":
    unittest.main()
