"""Online backup (admin.backup) and restore (orderd --restore-from), with real orderd processes.

What it proves, on 127.0.0.1 with temp dirs:
  * round trip: users, products, stock and orders (placed, paid, reserved) made before the
    backup, and every deposit of a load acknowledged before `orderctl admin.backup` was called,
    are all in the restored node; nothing written after the backup's reply is; the shard table
    (every shard's primary and epoch) is the one the node had; idempotency records survived: a
    retry of a request acknowledged before the backup is answered as done (nothing applied
    twice), and the same key with another amount is a conflict; the restored dir has a new disk
    identity and starts again without --restore-from;
  * bad backup requests (relative, '..', an existing dir, outside --backup-dir, a symbolic link
    out of it, no --backup-dir at all, no token, a user's token) answer their code and create or
    change nothing;
  * bad restores (a non-empty data dir, another node's backup, a damaged backup, no backup at
    all) exit 2 and leave the data dir as it was.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq  # noqa: E402

LOAD_USER = "loader"
MAX_LOAD = 4000  # deposits the load sends at most (it stops earlier when told)


def tree(path):
    """Every path below `path` (relative), with file sizes: a snapshot to compare."""
    out = {}
    root = Path(path)
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.stat().st_size if p.is_file() else "dir"
    return out


def shard_table(node):
    with node.admin() as c:
        st = c.ok("cluster.status", {})
    return {a["shard"]: (a["primary"], a["epoch"]) for a in st["shards"]}, st


def orderctl_backup(node, directory, token):
    p = h.orderctl("--port", node.port, "--json", "admin.backup", "--dir", directory, token=token)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stdout + p.stderr


def node_with_backup_dir(s):
    """A started node n1 of session `s` whose --backup-dir is <session>/backups (made 0700)."""
    backups = s.dir / "backups"
    backups.mkdir(mode=0o700)
    return backups, s.node(name="n1", extra_args=["--backup-dir", str(backups)]).start()


class Load:
    """Deposits of 1 cent to LOAD_USER, each with its own request id, on one connection, until
    stopped (or MAX_LOAD). Records the phase (0 before the backup was asked for, 1 while it ran,
    2 after its reply) in which each deposit was sent and acknowledged."""

    def __init__(self, node):
        self.node = node
        self.phase = 0
        self.stop = threading.Event()
        self.sent = {}  # request id -> phase when sent
        self.acked = {}  # request id -> phase when acknowledged
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            with self.node.admin() as c:
                for i in range(MAX_LOAD):
                    if self.stop.is_set():
                        return
                    rid = f"load-{i}"
                    self.sent[rid] = self.phase
                    c.ok("user.deposit", {"user_id": LOAD_USER, "amount_cents": 1,
                                          "request_id": rid})
                    self.acked[rid] = self.phase
        except Exception as e:  # noqa: B902 - reported by the test thread
            self.error = e

    def wait_for(self, n, timeout=30.0):
        h.wait_until(lambda: len(self.acked) >= n or self.error, timeout, 0.01,
                     f"{n} load deposits")
        check(self.error is None, f"load failed: {self.error}")

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=30)
        check(not self.thread.is_alive(), "the load did not stop")
        check(self.error is None, f"load failed: {self.error}")


def test_backup_while_serving_restores_exactly_what_was_acknowledged():
    with h.Session("backup-roundtrip") as s:
        backups, n = node_with_backup_dir(s)
        with n.admin() as a:
            h.create_product(a, "kettle", 2500, stock=50, request_id="stock-kettle-1")
            h.create_product(a, "mug", 800, stock=20, request_id="stock-mug-1")
            with n.client() as c:
                alice = h.register_login(c, "alice")
            a.ok("user.deposit", {"user_id": "alice", "amount_cents": 100000,
                                  "request_id": "dep-alice-1"})
            a.ok("user.register", {"user_id": LOAD_USER, "password": "pw-loader-123"})
        with n.client(token=alice) as c:
            paid = h.settled(c, c.ok("order.place", {"order_id": "o-paid", "user_id": "alice",
                                                     "items": [{"product_id": "kettle",
                                                                "quantity": 2}]}))
            eq(paid["status"], "RESERVED", "o-paid after placing")
            eq(c.ok("order.pay", {"order_id": "o-paid"})["status"], "PAID", "o-paid paid")
            held = h.settled(c, c.ok("order.place", {"order_id": "o-held", "user_id": "alice",
                                                     "items": [{"product_id": "mug",
                                                                "quantity": 3}]}))
            eq(held["status"], "RESERVED", "o-held")
            alice_before = c.ok("user.get", {"user_id": "alice"})
        with n.admin() as a:
            stock_before = {p: h.inv(a, p) for p in ("kettle", "mug")}
        shards_before, status_before = shard_table(n)
        disk_before = [m["disk"] for m in status_before["members"] if m["node_id"] == "n1"]

        # The backup, through orderctl, while a load of deposits runs.
        load = Load(n)
        load.thread.start()
        load.wait_for(50)
        load.phase = 1
        target = backups / "b1"
        code, reply, err = orderctl_backup(n, str(target), n.admin_token)
        load.phase = 2
        eq(code, 0, f"orderctl admin.backup exit code ({err})")
        check(reply is not None and reply.get("ok") is True, f"admin.backup reply: {reply} {err}")
        manifest = reply["result"]
        eq(manifest["node_id"], "n1", "manifest node_id")
        eq(manifest["cluster_id"], status_before["cluster_id"], "manifest cluster_id")
        eq(manifest["shard_count"], 64, "manifest shard_count")
        eq(manifest["dir"], str(target), "manifest dir")
        check(manifest["sequence"] > 0, f"manifest sequence: {manifest}")
        eq({x["shard"]: x["epoch"] for x in manifest["shards"]},
           {k: v[1] for k, v in shards_before.items()}, "shards and epochs in the manifest")
        on_disk = json.loads((target / "backup.json").read_text())
        eq(on_disk["sequence"], manifest["sequence"], "backup.json sequence")
        eq(len(on_disk["files"]), manifest["file_count"], "backup.json files")
        check((target / "db" / "CURRENT").is_file(), "the checkpoint has no CURRENT file")
        eq(oct(target.stat().st_mode & 0o777), oct(0o700), "backup dir mode")
        load.wait_for(len(load.acked) + 50)  # deposits after the backup's reply
        load.finish()
        before = sorted(r for r, ph in load.acked.items() if ph == 0)
        after = sorted(r for r, ph in load.sent.items() if ph == 2 and r in load.acked)
        check(before and after, f"load too small: {len(before)} before, {len(after)} after")
        h.log(f"load: {len(before)} acknowledged before the backup, "
              f"{len(load.acked) - len(before) - len(after)} during, {len(after)} after")

        # Written after the backup: none of it may come back.
        with n.admin() as a:
            h.create_product(a, "teapot", 3000, stock=5, request_id="stock-teapot-1")
            a.ok("inventory.add", {"product_id": "kettle", "quantity": 7,
                                   "request_id": "stock-kettle-2"})
            a.ok("user.deposit", {"user_id": "alice", "amount_cents": 555,
                                  "request_id": "dep-alice-2"})
            with n.client() as c:
                h.register_login(c, "carol")
        with n.client(token=alice) as c:
            c.ok("order.pay", {"order_id": "o-held"})
            late = h.settled(c, c.ok("order.place", {"order_id": "o-late", "user_id": "alice",
                                                     "items": [{"product_id": "mug",
                                                                "quantity": 1}]}))
            eq(late["status"], "RESERVED", "o-late")

        eq(n.terminate(), 0, "exit code after SIGTERM")

        # Restore into a new data dir, under the same node id, and start.
        n.data_dir = s.dir / "restored-data"
        n.extra_args = ["--backup-dir", str(backups), "--restore-from", str(target)]
        n.start()
        log_text = Path(n.log_file).read_text(errors="replace")
        check("restored backup" in log_text, "the log does not say what was restored")

        shards_after, status_after = shard_table(n)
        eq(shards_after, shards_before, "shard primaries and epochs after the restore")
        eq(status_after["cluster_id"], status_before["cluster_id"], "cluster id after the restore")
        disk_after = [m["disk"] for m in status_after["members"] if m["node_id"] == "n1"]
        check(disk_after != disk_before, f"the restored dir kept the disk identity {disk_before}")

        with n.admin() as a:
            # Everything acknowledged before the backup is there, as it was.
            eq({p: h.inv(a, p) for p in ("kettle", "mug")}, stock_before, "stock")
            eq(a.ok("user.get", {"user_id": "alice"}), alice_before, "alice")
            eq(a.ok("order.get", {"order_id": "o-paid"})["status"], "PAID", "o-paid")
            eq(a.ok("order.get", {"order_id": "o-held"})["status"], "RESERVED", "o-held")
            # Nothing written after the backup's reply.
            a.err("product.get", {"product_id": "teapot"}, code="not_found")
            a.err("user.get", {"user_id": "carol"}, code="not_found")
            a.err("order.get", {"order_id": "o-late"}, code="not_found")
            # Idempotency records: retries of acknowledged requests apply nothing twice.
            eq(a.ok("user.deposit", {"user_id": "alice", "amount_cents": 100000,
                                     "request_id": "dep-alice-1"})["balance_cents"],
               alice_before["balance_cents"], "a retried deposit changed the balance")
            a.err("user.deposit", {"user_id": "alice", "amount_cents": 1,
                                   "request_id": "dep-alice-1"}, code="conflict")
            eq(a.ok("inventory.add", {"product_id": "kettle", "quantity": 50,
                                      "request_id": "stock-kettle-1"})["available"],
               stock_before["kettle"][0], "a retried inventory.add changed the stock")
            replay = a.ok("order.place", {"order_id": "o-paid", "user_id": "alice",
                                          "items": [{"product_id": "kettle", "quantity": 2}]})
            eq(replay["status"], "PAID", "a retried order.place")
            eq(h.inv(a, "kettle"), stock_before["kettle"], "stock after a retried order.place")
            # The load: each deposit acknowledged before the backup is in it (its key is taken:
            # another amount is a conflict); each sent after the reply is not (it applies now).
            balance = a.ok("user.get", {"user_id": LOAD_USER})["balance_cents"]
            check(len(before) <= balance <= len(load.acked) - len(after),
                  f"loader balance {balance} outside [{len(before)}, "
                  f"{len(load.acked) - len(after)}]")
            for rid in before:
                a.err("user.deposit", {"user_id": LOAD_USER, "amount_cents": 2,
                                       "request_id": rid}, code="conflict")
            for rid in after:
                a.ok("user.deposit", {"user_id": LOAD_USER, "amount_cents": 2,
                                      "request_id": rid})
            eq(a.ok("user.get", {"user_id": LOAD_USER})["balance_cents"],
               balance + 2 * len(after), "loader balance after re-sending the later deposits")

        # The restored dir is a data dir like any other: it starts again without the flag.
        eq(n.terminate(), 0, "exit code after SIGTERM")
        n.extra_args = ["--backup-dir", str(backups)]
        n.start()
        with n.admin() as a:
            eq(a.ok("order.get", {"order_id": "o-paid"})["status"], "PAID", "o-paid after restart")
        eq(shard_table(n)[0], shards_before, "shard table after a restart of the restored node")


def test_bad_backup_requests_answer_a_code_and_change_nothing():
    with h.Session("backup-refusals") as s:
        backups, n = node_with_backup_dir(s)
        outside = s.dir / "outside"
        outside.mkdir(mode=0o700)
        (backups / "taken").mkdir()
        (backups / "taken" / "keep.txt").write_text("precious")
        os.symlink(outside, backups / "escape")
        with n.client() as c:
            user = h.register_login(c, "dave")
        snapshot = (tree(backups), tree(outside))
        cases = [
            ("relative", "backups/b1", n.admin_token, "bad_request"),
            ("dot-dot", f"{backups}/../outside/b1", n.admin_token, "bad_request"),
            ("trailing slash", f"{backups}/b1/", n.admin_token, "bad_request"),
            ("existing", f"{backups}/taken", n.admin_token, "conflict"),
            ("outside", f"{outside}/b1", n.admin_token, "forbidden"),
            ("the backup dir itself", str(backups), n.admin_token, "forbidden"),
            ("symlink out", f"{backups}/escape/b1", n.admin_token, "forbidden"),
            ("missing parent", f"{backups}/no-such/b1", n.admin_token, "not_found"),
            ("user token", f"{backups}/b1", user, "forbidden"),
        ]
        with n.client() as c:
            for what, directory, token, code in cases:
                err = c.err("admin.backup", {"dir": directory}, token=token, code=code)
                check(err["message"], f"{what}: no message")
                eq((tree(backups), tree(outside)), snapshot, f"files after a refused '{what}'")
            c.err("admin.backup", {"dir": f"{backups}/b1"}, token="", code="unauthorized")
            c.err("admin.backup", {}, token=n.admin_token, code="bad_request")
            c.err("admin.backup", {"dir": 7}, token=n.admin_token, code="bad_request")
        eq((tree(backups), tree(outside)), snapshot, "files after the refusals")
        eq((backups / "taken" / "keep.txt").read_text(), "precious", "an existing dir's file")
        # orderctl shows the code and exits 1.
        code, reply, err = orderctl_backup(n, "relative/b1", n.admin_token)
        eq(code, 1, f"orderctl exit code for a relative dir ({err})")
        eq(reply["error"]["code"], "bad_request", "orderctl's reply")
        # A valid one still works afterwards, and a second into the same dir is a conflict.
        with n.admin() as a:
            a.ok("admin.backup", {"dir": f"{backups}/b1"})
            before = tree(backups / "b1")
            a.err("admin.backup", {"dir": f"{backups}/b1"}, code="conflict")
            eq(tree(backups / "b1"), before, "a backup after a refused overwrite")
        eq(n.terminate(), 0, "exit code after SIGTERM")

        # Without --backup-dir every backup is refused.
        n.extra_args = []
        n.start()
        with n.admin() as a:
            a.err("admin.backup", {"dir": f"{backups}/b2"}, code="forbidden")
        check(not (backups / "b2").exists(), "a backup was made without --backup-dir")


def restore_refused(node_id, data_dir, backup):
    """Runs orderd --restore-from expecting exit 2; returns its stderr."""
    cmd = [str(h.ARGS.orderd), "--node-id", node_id, "--data-dir", str(data_dir),
           "--client-host", h.HOST, "--client-port", str(h.free_port()),
           "--cluster-port", str(h.free_port()), "--admin-token", "adm-" + "x" * 24,
           "--pwhash", "fast", "--restore-from", str(backup)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=h.clean_env())
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()  # the pid this test started
        p.communicate(timeout=10)
        raise AssertionError("orderd kept running; the restore should have been refused")
    eq(p.returncode, 2, f"exit code of a refused restore ({out} {err})")
    return err


def test_bad_restores_exit_2_and_leave_the_data_dir_alone():
    with h.Session("restore-refusals") as s:
        backups, n = node_with_backup_dir(s)
        with n.admin() as a:
            h.create_product(a, "kettle", 2500, stock=3)
            a.ok("admin.backup", {"dir": f"{backups}/good"})
        eq(n.terminate(), 0, "exit code after SIGTERM")
        good = backups / "good"

        # A data dir in use: refused, untouched.
        busy = tree(n.data_dir)
        err = restore_refused("n1", n.data_dir, good)
        check("not empty" in err, f"the refusal does not say why: {err}")
        eq(tree(n.data_dir), busy, "the non-empty data dir after a refused restore")

        # Another node's backup.
        fresh = s.dir / "fresh"
        err = restore_refused("n2", fresh, good)
        check("not --node-id n2" in err, f"the refusal does not say why: {err}")
        eq(tree(fresh), {}, "the data dir after restoring another node's backup")

        # Not a backup at all.
        err = restore_refused("n1", fresh, s.dir)
        check("not a backup" in err, f"the refusal does not say why: {err}")
        eq(tree(fresh), {}, "the data dir after restoring from a non-backup")

        # A damaged backup: one file shorter than its manifest says.
        damaged = backups / "damaged"
        subprocess.run(["cp", "-a", str(good), str(damaged)], check=True, timeout=30)
        manifest = json.loads((damaged / "backup.json").read_text())
        victim = damaged / "db" / manifest["files"][-1]["name"]
        with open(victim, "ab") as f:
            f.write(b"x")
        err = restore_refused("n1", fresh, damaged)
        check("damaged" in err, f"the refusal does not say why: {err}")
        eq(tree(fresh), {}, "the data dir after restoring a damaged backup")

        # The good backup still restores, and the original data dir still serves.
        n.data_dir = fresh
        n.extra_args = ["--restore-from", str(good)]
        n.start()
        with n.admin() as a:
            eq(h.inv(a, "kettle"), (3, 0, 0), "stock in the restored node")
        eq(n.terminate(), 0, "exit code after SIGTERM")


if __name__ == "__main__":
    h.main([test_backup_while_serving_restores_exactly_what_was_acknowledged,
            test_bad_backup_requests_answer_a_code_and_change_nothing,
            test_bad_restores_exit_2_and_leave_the_data_dir_alone],
           "online backup (admin.backup) and restore (orderd --restore-from)")
