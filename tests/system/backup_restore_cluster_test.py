"""Restore of one node of a replicated cluster (replication factor 3 on a private etcd).

What it proves (docs/OPERATIONS.md, "Backup and restore", "In a cluster"): a node backed up
with admin.backup, written to after the backup, killed (its shards fail over) and restored from
the backup into a new data dir comes back with a new disk identity, never serves the stale
copy: every entity read through it is what the other nodes serve (the writes made after the
backup included), it re-enters every ISR only as its current disk, a retry of a deposit made
after the backup applies nothing twice, and the journal audit finds every served state on at
least two disks.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcd_cluster_test as ect  # noqa: E402
import harness as h  # noqa: E402
import replication_test as rt  # noqa: E402
from harness import check, eq, log  # noqa: E402


def test_a_restored_node_rejoins_as_a_follower_and_serves_nothing_stale():
    with h.Session("backup-cluster") as s:
        backups = s.dir / "backups"
        backups.mkdir(mode=0o700)
        _, c, st = rt.rf3_cluster(s, "bkp", extra=["--backup-dir", str(backups)])
        shop = ect.Shop(c, c.nodes, tag="b")
        ents = shop.entities()
        victim = [n for n in c.nodes if n.name != st["controller"]][0]
        rest = [n for n in c.nodes if n is not victim]
        old_disk = ect.disks(st)[victim.name]

        with c.admin(victim) as adm:
            m = adm.ok("admin.backup", {"dir": f"{backups}/{victim.name}"})
        eq((m["node_id"], m["cluster_id"]), (victim.name, st["cluster_id"]), "manifest ids")
        # Acknowledged after the backup, through the victim: the restore must not lose them.
        with c.admin(victim) as adm:
            for u in shop.users[:6]:
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 11,
                                              "request_id": f"after-backup-{u}"})
        st = c.status(rest[0])
        before = ect.snapshot(c, rest[0], ents)
        on_victim, _ = ect.split(c, st, ents, victim.name)
        check(on_victim, f"{victim.name} leads some entities")
        inc = ect.incarnation(st, victim.name)

        victim.kill()
        took = rt.wait_failover(c, rest, victim, on_victim, before)
        log(f"killed {victim.name}: its {len(on_victim)} entities served again after {took:.1f}s")

        # Its disk is lost: restore the backup into a new data dir and start it from there.
        victim.data_dir = s.dir / f"{victim.name}-restored"
        restore = ["--restore-from", str(backups / victim.name)]
        victim.cluster_args += restore
        victim.start()
        victim.cluster_args = victim.cluster_args[:-len(restore)]
        check("restored backup" in victim.log_text(), "the log does not say what was restored")
        seen = ect.rejoined(c, c.nodes, victim, inc)
        new_disk = ect.disks(seen[rest[0].name])[victim.name]
        check(new_disk != old_disk, f"the restored node kept its disk identity {old_disk}")
        h.wait_until(lambda: rt.isr_complete(c, c.nodes), rt.ISR_TIMEOUT, 0.5,
                     f"{victim.name} back in the ISR of every shard on its new disk")

        # Nothing stale anywhere: reads through the restored node are the cluster's state.
        ect.compare(before, ect.snapshot(c, victim, ents), f"reads through the restored "
                    f"{victim.name}")
        with c.admin(victim) as adm:
            for u in shop.users[:6]:
                got = adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 11,
                                                    "request_id": f"after-backup-{u}"})
                eq(got["balance_cents"], before[("user", u)]["balance_cents"],
                   f"{u}: a retried deposit made after the backup")
        rt.stop_and_audit(c, ents)


if __name__ == "__main__":
    h.main([test_a_restored_node_rejoins_as_a_follower_and_serves_nothing_stale],
           "restore of one node of a replicated cluster")
