"""A node alone (no --etcd): coordinated by a local store seeded from its own disk.

What it proves, with real orderd processes on 127.0.0.1:
  * a node alone is its own controller, leads every shard, and keeps its cluster id and its data
    across a restart (the local store lives in memory; the disk carries it over);
  * a data dir that belongs to an etcd cluster is refused when started alone (exit 2, naming
    --etcd), and still works in its cluster afterwards: nothing was changed;
  * a lone node's data dir is refused when started with --etcd, before etcd hears of it, and
    still serves alone afterwards with its data;
  * orderd keeps its files to its own user: a data dir it creates is 0700 and every file in it
    (RocksDB's, admin.token) 0600, as is its log file; an existing 0755 data dir becomes 0700.
"""

import os
import re
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq  # noqa: E402


def status(node):
    with node.admin() as c:
        return c.ok("cluster.status", {})


def register(node, user_id):
    with node.admin() as c:
        c.ok_retry("user.register", {"user_id": user_id, "name": user_id, "password": "pw-123456"})


def user_exists(node, user_id):
    with node.admin() as c:
        return c.ok_retry("user.get", {"user_id": user_id})["user_id"] == user_id


def start_refused(node, timeout=20.0):
    """Starts `node` expecting it to exit by itself; returns (exit code, stderr + log text)."""
    node._launch()
    try:
        code = node.proc.wait(timeout=timeout)
    except Exception:
        node.kill()
        raise AssertionError(f"{node.name} kept running; it should have refused its data dir")
    text = ""
    for f in (node.stderr_file, node.log_file):
        if f and os.path.exists(f):
            text += open(f, errors="replace").read()
    return code, text


def test_alone_leads_every_shard_and_keeps_its_cluster():
    with h.Session("local-alone") as s:
        n = s.node(name="n1").start()
        # It serves at once; it campaigns (and wins) on its first lease.
        st = h.wait_until(lambda: (lambda x: x if x["controller"] else None)(status(n)), 10, 0.05,
                          "n1 to be its own controller")
        eq(st["coordination"], "local", "coordination")
        eq(st["controller"], "n1", "controller")
        check(st["lease_valid"] is True, f"lease not valid: {st}")
        check(re.fullmatch(r"[0-9a-f]{16}", st["cluster_id"] or ""), f"cluster id: {st}")
        eq(len(st["shards"]), 64, "shards")
        for a in st["shards"]:
            check(a["primary"] == "n1" and a["owner"] == "n1" and a["epoch"] == 1
                  and a["replicas"] == ["n1"] and a["isr"] == ["n1"] and not a["target"],
                  f"shard not led by n1 at epoch 1: {a}")
        eq([m["node_id"] for m in st["members"]], ["n1"], "members")
        for i in range(20):
            register(n, f"u{i}")
        eq(n.terminate(), 0, "exit code after SIGTERM")
        n.start()
        st2 = status(n)
        eq(st2["cluster_id"], st["cluster_id"], "cluster id after a restart")
        check(all(a["epoch"] == 1 and a["primary"] == "n1" for a in st2["shards"]),
              "epochs or primaries changed over a restart")
        for i in range(20):
            check(user_exists(n, f"u{i}"), f"u{i} lost over a restart")
        # Nobody could take its shards: cluster.leave is refused and changes nothing.
        with n.admin() as c:
            c.err("cluster.leave", {"node_id": "n1"}, code="invalid_state")
        eq(status(n)["members"][0]["state"], "up", "n1's state after a refused leave")
        # kill -9 too: the seed comes from the disk, not from a clean shutdown
        n.kill()
        n.start()
        eq(status(n)["cluster_id"], st["cluster_id"], "cluster id after kill -9")


def test_an_etcd_members_disk_is_refused_alone():
    with h.Session("local-etcd-disk") as s:
        etcd = eh.Etcd(s).start()
        # One member: replication factor 1 (a cluster's default, 3, would wait for two more).
        args = ["--etcd", etcd.url, "--cluster", "lone", "--lease-ttl", "2s",
                "--replication-factor", "1"] + eh.cluster_tls(s, "n1")
        n = s.node(name="n1", extra_args=args).start()
        h.wait_until(lambda: status(n).get("lease_valid") and len(status(n)["shards"]) == 64,
                     30, 0.1, "the etcd cluster to hold a shard map")
        cluster_id = status(n)["cluster_id"]
        register(n, "alice")
        eq(n.terminate(), 0, "exit code after SIGTERM")
        n.extra_args = []
        code, text = start_refused(n)
        eq(code, 2, f"exit code of a lone start on an etcd member's disk ({text[-400:]})")
        check("--etcd" in text and cluster_id in text, f"the refusal does not say why: {text}")
        n.extra_args = args
        n.start()
        h.wait_until(lambda: status(n).get("lease_valid"), 30, 0.1, "the lease back")
        check(user_exists(n, "alice"), "alice lost after the refused start")


def test_a_lone_nodes_disk_is_refused_by_etcd():
    with h.Session("local-disk-etcd") as s:
        n = s.node(name="n1").start()
        register(n, "bob")
        lone_id = status(n)["cluster_id"]
        eq(n.terminate(), 0, "exit code after SIGTERM")
        etcd = eh.Etcd(s).start()
        n.extra_args = ["--etcd", etcd.url, "--cluster", "other", "--lease-ttl", "2s",
                        "--insecure-cluster"]
        t0 = time.monotonic()
        code, text = start_refused(n, timeout=40.0)
        eq(code, 2, f"exit code of a lone node's disk started with --etcd ({text[-400:]})")
        check("without --etcd" in text and lone_id in text, f"the refusal does not say why: {text}")
        h.log(f"refused after {time.monotonic() - t0:.1f}s")
        # Refused before joining: etcd never heard of the node (no member key, no shard map
        # bootstrapped around a node that is gone).
        eq(eh.ordermesh_keys(etcd.url, cluster="other"), {}, "keys the refused node left in etcd")
        n.extra_args = []
        n.start()
        eq(status(n)["cluster_id"], lone_id, "cluster id after the refused start")
        check(user_exists(n, "bob"), "bob lost after the refused start")


class FreshDirNode(h.Node):
    """A Node whose data dir orderd itself creates (the harness creates it before a start);
    with_token=False: started without --admin-token, so orderd generates admin.token."""

    def __init__(self, session, name, with_token=True):
        super().__init__(session, name=name)
        self.with_token = with_token

    def command(self):
        cmd = super().command()
        if not self.with_token:
            i = cmd.index("--admin-token")
            del cmd[i:i + 2]
        return cmd

    def _launch(self):
        self.starts += 1
        self.log_file = self.session.dir / f"{self.name}.{self.starts}.log"
        self.stderr_file = self.session.dir / f"{self.name}.{self.starts}.stderr"
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(h._launcher() + self.command(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=h.clean_env(),
                                         close_fds=True)


def modes_under(root):
    """{relative path: permission bits} of root and everything below it."""
    out = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def not_owner_only(root):
    """Entries under root that are not 0700 (dirs) / 0600 (files), as "path 0oNNN"."""
    wrong = []
    for rel, mode in sorted(modes_under(root).items()):
        is_dir = os.path.isdir(os.path.join(root, rel))
        if mode != (0o700 if is_dir else 0o600):
            wrong.append(f"{rel} {mode:#o}")
    return wrong


def test_files_are_owner_only():
    with h.Session("local-modes") as s:
        # A fresh data dir, made by orderd; no --admin-token, so it writes admin.token too.
        n = FreshDirNode(s, "n1", with_token=False)
        check(not n.data_dir.exists(), "the data dir exists before the start")
        n.start()
        token = (n.data_dir / "admin.token").read_text().strip()
        n.admin_token = token
        register(n, "carol")  # the journal gets written
        eq(n.terminate(), 0, "exit code after SIGTERM")
        entries = modes_under(n.data_dir)
        h.log(f"{len(entries)} entries under the data dir")
        check(len(entries) > 5, f"too few files to mean anything: {entries}")
        check("admin.token" in entries, f"no admin.token: {sorted(entries)}")
        eq(not_owner_only(n.data_dir), [], "entries wider than 0700 (dirs) / 0600 (files)")
        eq(stat.S_IMODE(os.stat(n.log_file).st_mode), 0o600, "log file mode")

        # An existing data dir made 0755 (as orderd made them before) becomes 0700, said in
        # the log; so does an existing log file that others may read.
        m = FreshDirNode(s, "n2")
        os.mkdir(m.data_dir, 0o755)
        os.chmod(m.data_dir, 0o755)
        log_file = s.dir / "n2.1.log"
        log_file.write_text("an older log\n")
        os.chmod(log_file, 0o644)
        m.start()
        register(m, "dave")
        eq(stat.S_IMODE(os.stat(m.data_dir).st_mode), 0o700, "mode of the existing data dir")
        eq(stat.S_IMODE(os.stat(log_file).st_mode), 0o600, "mode of the existing log file")
        text = log_file.read_text(errors="replace")
        check("was mode 0755: made it 0700" in text, f"no log line about the data dir: {text}")
        check("was mode 0644: made it 0600" in text, f"no log line about the log file: {text}")
        eq(m.terminate(), 0, "exit code after SIGTERM")
        eq(not_owner_only(m.data_dir), [], "entries wider than 0700 / 0600 after the restart")


if __name__ == "__main__":
    h.main([test_alone_leads_every_shard_and_keeps_its_cluster,
            test_an_etcd_members_disk_is_refused_alone,
            test_a_lone_nodes_disk_is_refused_by_etcd,
            test_files_are_owner_only],
           "a node alone: the local coordinator and the disks it refuses")
