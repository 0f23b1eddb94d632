"""The nemesis: faults injected while the driver runs, each recorded as a nemesis start/stop.

A scenario is a schedule of faults drawn from the seed (random.Random(f"{seed}-nemesis")): gap,
fault, hold, heal, repeated until the workload's deadline. The schedule runs in the runner's
main thread (node restarts must come from a long-lived thread, see cluster_ctl.py). Every loop
is bounded by the deadline; every window is closed (nemesis stop) by heal_all() at the latest.

Faults: kill -9 + restart; a simulated power cut + restart; SIGSTOP/SIGCONT around the lease TTL; partitions (one
node isolated, a one-way cut, two halves) and packet loss as nft rules between the per-node
namespaces (netns.py); admin.crash of entities the workload just touched; CPU starvation
(stress-ng); fsync failures (fiu-run's POSIX failpoints switched on in a running node with
fiu-ctrl); disk full (a ballast file filling a node's small tmpfs data dir); clock skew (a node
restarted under libfaketime, then back); and the planted fault (one node started with
--fault-ack-without-write, killed -9 and restarted). On the cluster's etcd (etcd_ctl.py): etcd
killed -9 and restarted (every member; down for less, then for more, than the lease TTL), etcd
paused (SIGSTOP past the lease TTL), one node cut off from etcd alone (nft), one etcd member of
three killed; and shard moves under load (a node leaves and rejoins). For replicated clusters
only (--replication-factor 3; `min_rf`, runs_at()): the node leading the most shards killed -9
again and again, paused past the lease and woken while clients still talk to it (zombie), killed
with its data dir wiped, cut off from its peers; and two of three nodes killed at once. A
scenario whose tool or privilege is missing is reported by run.py as skipped with the reason,
never as passed.

A failed fsync or a full disk makes orderd exit with code 3 (fail-stop, docs/ARCHITECTURE.md);
the window's stop restarts it, and the stop record says how the node ended (`exit_code`).
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from chaos import etcd_ctl
from chaos.cluster_ctl import StartError, request

# Every pause and partition lasts at least this plus a random part: pauses of 2-3.5 s straddle
# the nodes' 3 s lease (a paused node's lease may or may not lapse, and its self-gate at TTL
# minus the margin may or may not close), partitions 2.5-5 s.
MIN_FAULT_S = 1.0
# How long a wipe waits for the replicas to catch up before the schedule goes on.
WIPE_CATCHUP_S = 20.0


class Nemesis:
    def __init__(self, cluster, history, driver, rng):
        self.cluster = cluster
        self.h = history
        self.driver = driver
        self.rng = rng
        self.open = []      # (fault, nodes, undo) of windows not yet stopped
        self.events = []    # what happened, for the summary
        self.windows = 0    # etcd faults so far: they alternate within / beyond the lease TTL

    # -- windows ----------------------------------------------------------------------------

    def _start(self, fault, nodes, undo, **extra):
        self.h.nemesis("start", fault, nodes=nodes, **extra)
        self.open.append((fault, nodes, undo))
        self.events.append(fault)

    def _stop(self, fault):
        for i, (f, nodes, undo) in enumerate(self.open):
            if f == fault:
                del self.open[i]
                err = None
                try:
                    undo()
                except (StartError, etcd_ctl.EtcdError) as e:
                    err = str(e)[:300]
                extra = {"error": err} if err else {}
                self.h.nemesis("stop", f, nodes=nodes, **extra)
                return

    def heal_all(self):
        """Undoes every open fault (oldest first), then resumes / restarts anything down."""
        while self.open:
            self._stop(self.open[0][0])
        self.cluster.heal_processes()

    def _sleep_until(self, t, deadline):
        end = min(t, deadline)
        while time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _loop(self, deadline, one_fault, gap=(1.0, 2.5)):
        """gap, fault, ..., bounded by the deadline and a count."""
        for _ in range(1000):
            self._sleep_until(time.monotonic() + self.rng.uniform(*gap), deadline)
            if time.monotonic() >= deadline - 0.5:
                break
            one_fault(deadline)
        self.heal_all()

    # -- faults -----------------------------------------------------------------------------

    def kill_restart(self, deadline, node=None, down=(1.5, 3.5)):
        node = node or self.rng.choice([n for n in self.cluster.nodes if n.alive()] or [None])
        if node is None:
            return
        fault = f"kill {node.name}"

        def undo():
            self.cluster.restart(node)

        node.kill()
        self._start(fault, [node.name], undo)
        self._sleep_until(time.monotonic() + self.rng.uniform(*down), deadline)
        self._stop(fault)

    def power_cut_restart(self, deadline):
        """SIGUSR2 to a random running node: at its next write (within 0.5 s, else at once) its
        disk (persistence::power_cut_fs, every node of the scenario runs over it: prepare())
        loses everything not synced, and it ends there
        (exit POWER_CUT_EXIT); restarted on the same data dir 1-2.5 s later. An exit other than
        POWER_CUT_EXIT (the hook did not fire) is recorded in the window and the summary."""
        live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
        if not live:
            return
        node = self.rng.choice(live)
        fault = f"power cut {node.name}"
        node.signal(signal.SIGUSR2)
        try:
            code = node.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = None
            node.kill()  # the cut never came: end it anyway, and say so below
        self._start(fault, [node.name], lambda: self.cluster.restart(node), exit_code=code)
        if code != POWER_CUT_EXIT:
            self.events.append(f"  {fault}: exit code {code}, not {POWER_CUT_EXIT}: NO CUT")
        self._sleep_until(time.monotonic() + self.rng.uniform(1.0, 2.5), deadline)
        self._stop(fault)

    def pause_resume(self, deadline):
        live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
        if not live:
            return
        node = self.rng.choice(live)
        fault = f"pause {node.name}"
        node.pause()
        self._start(fault, [node.name], node.resume)
        # around the lease TTL (MIN_FAULT_S): sometimes the node outlives its lease, sometimes not
        self._sleep_until(time.monotonic() + MIN_FAULT_S + self.rng.uniform(1.0, 2.5),
                          deadline + 5)
        self._stop(fault)

    def crash_entities(self, deadline):
        """admin.crash of entities the workload touched last, for a burst of ~1-2 s."""
        touched = list(self.driver.touched)
        if not touched:
            return
        picks = sorted(set(self.rng.sample(touched, min(len(touched), self.rng.randint(2, 5)))))
        fault = "crash " + ",".join(f"{k}/{i}" for k, i in picks)
        self._start(fault, [], lambda: None, entities=[f"{k}/{i}" for k, i in picks])
        end = min(deadline, time.monotonic() + self.rng.uniform(1.0, 2.0))
        replies = []
        for _ in range(50):
            if time.monotonic() >= end:
                break
            live = self.cluster.live()
            if not live:
                break
            kind, ident = self.rng.choice(picks)
            node = self.rng.choice(live)
            r = request(node.host, node.port, "admin.crash", {"entity": f"{kind}/{ident}"},
                        token=self.cluster.admin_token, timeout=2.0)
            replies.append(bool(r and r.get("ok")))
            time.sleep(self.rng.uniform(0.1, 0.3))
        self._stop(fault)
        self.events.append(f"  admin.crash: {sum(replies)}/{len(replies)} acknowledged")

    def partition(self, deadline, shape):
        """Cuts node-to-node traffic (clients still reach every node), holds it for 2.5-5 s,
        heals. `shape`: isolate, oneway or halves."""
        fw = self.cluster.firewall
        nodes = list(self.cluster.nodes)
        if fw is None or len(nodes) < 2:
            return
        if shape == "isolate":
            x = self.rng.choice(nodes)
            rest = [n for n in nodes if n is not x]
            fw.cut([x.net], [n.net for n in rest])
            fw.cut([n.net for n in rest], [x.net])
            fault, named = f"isolate {x.name}", [x.name]
        elif shape == "oneway":
            a, b = self.rng.sample(nodes, 2)
            fw.cut([a.net], [b.net])
            fault, named = f"cut {a.name}->{b.name}", [a.name, b.name]
        else:
            shuffled = self.rng.sample(nodes, len(nodes))
            half = len(nodes) // 2
            left, right = shuffled[:half], shuffled[half:]
            fw.cut([n.net for n in left], [n.net for n in right])
            fw.cut([n.net for n in right], [n.net for n in left])
            fault = ("halves " + ",".join(n.name for n in left) + " | " +
                     ",".join(n.name for n in right))
            named = [n.name for n in nodes]
        self._start(fault, named, fw.heal)
        self._sleep_until(time.monotonic() + MIN_FAULT_S + self.rng.uniform(1.5, 4.0),
                          deadline + 5)
        self._stop(fault)

    def packet_loss(self, deadline):
        fw = self.cluster.firewall
        live = [n for n in self.cluster.nodes if n.alive()]
        if fw is None or not live:
            return
        node = self.rng.choice(live)
        percent = self.rng.choice([10, 20, 30, 50])
        fault = f"loss {percent}% {node.name}"
        fw.loss(node.net, percent)
        self._start(fault, [node.name], fw.heal, percent=percent)
        self._sleep_until(time.monotonic() + self.rng.uniform(2.5, 5.0), deadline + 5)
        self._stop(fault)

    def cpu_starvation(self, deadline):
        """stress-ng CPU hogs, twice as many as cores, at normal priority, for a few seconds."""
        hogs = 2 * (os.cpu_count() or 2)
        hold = self.rng.uniform(2.5, 5.0)
        proc = subprocess.Popen(self.cluster.launcher + [
            "stress-ng", "--cpu", str(hogs), "--timeout", f"{int(hold) + 5}s", "--quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True)
        self.cluster.remember_pid(proc.pid)

        def undo():
            proc.terminate()  # stress-ng ends its workers when its parent gets SIGTERM
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

        fault = f"stress-ng --cpu {hogs}"
        self._start(fault, [], undo)
        self._sleep_until(time.monotonic() + hold, deadline + 5)
        self._stop(fault)

    def _restart_after_fail_stop(self, node, before):
        """Undo for faults that may make the node fail-stop: runs `before`, then restarts the node
        if it exited. Returns the exit code it had (None: still running)."""
        code = None if node.alive() else node.last_exit
        before(node)
        if not node.alive():
            self.cluster.restart(node)
        return code

    def fsync_failures(self, deadline):
        """Makes fdatasync/fsync fail in one running node (fiu-ctrl), then switches it off."""
        live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
        if not live:
            return
        node = self.rng.choice(live)
        probability = self.rng.choice([0.2, 0.5, 1.0])
        cmds = []
        for fn in FSYNC_FAILPOINTS:
            cmds += ["-c", f"enable_random name={fn},probability={probability}"]
        ok = _fiu_ctrl(node, cmds)
        fault = f"fsync failures {node.name} p={probability}"
        ended = {}

        def undo():
            def off(n):
                if n.alive():
                    _fiu_ctrl(n, [a for fn in FSYNC_FAILPOINTS
                                  for a in ("-c", f"disable name={fn}")])
            ended["exit_code"] = self._restart_after_fail_stop(node, off)

        self._start(fault, [node.name], undo, probability=probability, armed=ok)
        self._sleep_until(time.monotonic() + self.rng.uniform(1.5, 3.5), deadline + 5)
        self._stop(fault)
        self.events.append(f"  {fault}: node exit code {ended.get('exit_code')}")

    def disk_full(self, deadline):
        """Fills the tmpfs under the node's data dir with a ballast file, then removes it. Half
        of the time the node is killed first and restarted on the full disk: RocksDB preallocates
        its log, so a running node may not feel a full disk before its next log file, while a
        start needs new files at once (it must fail cleanly or fail-stop at its first write)."""
        node = next((n for n in self.cluster.nodes if n.disk is not None), None)
        if node is None:
            return
        ballast = node.disk / "ballast"
        restart = self.rng.random() < 0.5
        if restart:
            node.kill()
        written = _fill(ballast)
        fault = f"disk full {node.name}" + (" (restarted on it)" if restart else "")
        ended = {}

        def undo():
            ended["exit_code"] = self._restart_after_fail_stop(
                node, lambda n: ballast.unlink(missing_ok=True))

        self._start(fault, [node.name], undo, ballast_bytes=written)
        if restart:
            try:
                self.cluster.restart(node, timeout=5.0)
                ended["start"] = "started"
            except StartError as e:
                ended["start"] = f"refused to start (exit {e.exit_code})"
        self._sleep_until(time.monotonic() + self.rng.uniform(2.0, 4.0), deadline + 5)
        self._stop(fault)
        self.events.append(f"  {fault}: {ended.get('start', 'kept running')}, then exit code "
                           f"{ended.get('exit_code')}")

    def clock_skew(self, deadline):
        """Restarts a node with its wall clock moved by +-SKEW_S (libfaketime; the monotonic
        clock is left alone), lets it serve, then restarts it with the true time."""
        live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
        if not live:
            return
        node = self.rng.choice(live)
        skew = self.rng.choice([-1, 1]) * self.rng.randint(5, SKEW_MAX_S)
        node.kill()
        node.env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"{skew:+d}s",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        fault = f"clock skew {node.name} {skew:+d}s"

        def undo():
            node.env = {}
            node.kill()
            self.cluster.restart(node)

        self._start(fault, [node.name], undo, skew_s=skew)
        try:
            self.cluster.restart(node)
        except StartError as e:
            self.events.append(f"  {fault}: start failed: {str(e)[:200]}")
        self._sleep_until(time.monotonic() + self.rng.uniform(3.0, 5.0), deadline + 5)
        self._stop(fault)

    # -- faults of replicated clusters (replication factor 3, min-insync 2) ------------------

    def _target(self):
        """The node that leads the most shards now (cluster.status through a live node), else
        a random running one; None if nothing runs."""
        node = self.cluster.top_primary()
        if node is None or not node.alive() or node.paused:
            live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
            node = self.rng.choice(live) if live else None
        return node

    def primary_kill(self, deadline):
        """kill -9 of the node leading the most shards, restarted after 3-4.5 s (beyond the
        3 s lease: its shards fail over to in-sync replicas, then it rejoins as a follower)."""
        node = self._target()
        if node is None:
            return
        fault = f"kill primary {node.name}"
        node.kill()
        self._start(fault, [node.name], lambda: self.cluster.restart(node))
        self._sleep_until(time.monotonic() + self.rng.uniform(3.0, 4.5), deadline + 5)
        self._stop(fault)

    def zombie(self, deadline):
        """SIGSTOP of the node leading the most shards for 5-6 s (beyond the 3 s lease: its
        shards fail over meanwhile), then SIGCONT: the requests the clients sent it while it
        slept (they still pick it) meet a deposed primary. It must acknowledge nothing the new
        primaries lack, and serve no state older than what the clients were shown."""
        node = self._target()
        if node is None:
            return
        fault = f"zombie {node.name}"
        node.pause()
        self._start(fault, [node.name], node.resume)
        self._sleep_until(time.monotonic() + self.rng.uniform(5.0, 6.0), deadline + 8)
        self._stop(fault)

    def wipe(self, deadline):
        """kill -9 of the node leading the most shards, its data dir deleted, restarted 1-2.5 s
        later on the empty dir: it must catch up by full copies; what it acknowledged is on the
        other two nodes. One lost disk at a time: before the next wipe the replicas must have
        caught up (every ISR complete, every follower at lag 0; waited for up to
        WIPE_CATCHUP_S), else a second wipe could take the last copy, which replication with
        min-insync 2 does not promise to survive."""
        node = self._target()
        if node is None:
            return
        fault = f"wipe {node.name}"
        node.kill()
        shutil.rmtree(node.data_dir, ignore_errors=True)
        self._start(fault, [node.name], lambda: self.cluster.restart(node))
        self._sleep_until(time.monotonic() + self.rng.uniform(1.0, 2.5), deadline + 5)
        self._stop(fault)
        t0 = time.monotonic()
        done = self.cluster.wait_balanced(timeout=WIPE_CATCHUP_S) is not None
        self.events.append(f"  {fault}: " + (f"caught up {time.monotonic() - t0:.1f} s after "
                                              "the restart" if done else
                                              f"not caught up within {WIPE_CATCHUP_S:.0f} s"))
        if not done:  # no second wipe on top of this one
            self._sleep_until(deadline, deadline)

    def two_down(self, deadline):
        """kill -9 of two of the nodes for 3-5 s, then both restarted: the survivor's shards
        cannot reach min-insync replicas (writes answer unavailable, none acknowledged on one
        disk), the dead ones' wait for them; everything is served again afterwards."""
        live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
        if len(live) < 2:
            return
        pair = sorted(self.rng.sample(live, 2), key=lambda n: n.name)
        fault = "two down " + ",".join(n.name for n in pair)

        def undo():
            for n in pair:
                self.cluster.restart(n)

        for n in pair:
            n.kill()
        self._start(fault, [n.name for n in pair], undo)
        self._sleep_until(time.monotonic() + self.rng.uniform(3.0, 5.0), deadline + 5)
        self._stop(fault)

    def partition_primary(self, deadline):
        """The node leading the most shards cut off from its peers, both ways, for 4-6 s
        (beyond --replica-lag-timeout); etcd and the clients still reach it, so it keeps its
        lease and its shards, whose writes cannot reach min-insync replicas."""
        fw = self.cluster.firewall
        node = self._target()
        if fw is None or node is None:
            return
        rest = [n for n in self.cluster.nodes if n is not node]
        fw.cut([node.net], [n.net for n in rest])
        fw.cut([n.net for n in rest], [node.net])
        fault = f"isolate primary {node.name}"
        self._start(fault, [node.name], fw.heal)
        self._sleep_until(time.monotonic() + self.rng.uniform(4.0, 6.0), deadline + 5)
        self._stop(fault)

    # -- etcd faults ---------------------------------------------------------------------------

    def _etcd_hold(self):
        """Alternately longer than the lease TTL (TTL + 1.5-3 s: a lease that could not be
        renewed expires) and shorter (1.5-2.5 s: leases survive). The long one comes first, so
        that a short run (--duration 10) sees it, and its recovery, inside the workload."""
        self.windows += 1
        if self.windows % 2:
            return "beyond", etcd_ctl.LEASE_TTL_S + self.rng.uniform(1.5, 3.0)
        return "within", self.rng.uniform(1.5, 2.5)

    def etcd_kill(self, deadline):
        """kill -9 of every etcd member, restarted (same data dirs) after the hold."""
        etcd = self.cluster.etcd
        kind, hold = self._etcd_hold()
        fault = f"etcd kill ({kind} the lease TTL)"
        for m in etcd.members:
            m.kill()
        self._start(fault, [], etcd.start, hold_s=round(hold, 2),
                    lease_ttl_s=etcd_ctl.LEASE_TTL_S)
        self._sleep_until(time.monotonic() + hold, deadline + 8)
        self._stop(fault)
        self.events.append(f"  {fault}: down {hold:.1f} s")

    def etcd_pause(self, deadline):
        """SIGSTOP of every etcd member for longer than the lease TTL, then SIGCONT."""
        etcd = self.cluster.etcd
        hold = etcd_ctl.LEASE_TTL_S + self.rng.uniform(1.0, 3.0)
        fault = "etcd pause"
        for m in etcd.members:
            m.pause()

        def undo():
            for m in etcd.members:
                m.resume()

        self._start(fault, [], undo, hold_s=round(hold, 2), lease_ttl_s=etcd_ctl.LEASE_TTL_S)
        self._sleep_until(time.monotonic() + hold, deadline + 8)
        self._stop(fault)
        self.events.append(f"  {fault}: stopped {hold:.1f} s")

    def etcd_cut_node(self, deadline):
        """One node cut off from etcd alone (nft in the chaos namespace, where etcd runs); its
        peers and the clients still reach it. Alternately within and beyond the lease TTL."""
        etcd, fw = self.cluster.etcd, self.cluster.firewall
        live = [n for n in self.cluster.nodes if n.alive() and n.net is not None]
        if fw is None or not live:
            return
        node = self.rng.choice(live)
        kind, hold = self._etcd_hold()
        fault = f"cut {node.name} from etcd ({kind} the lease TTL)"
        fw.cut_etcd(node.net, etcd.hosts())
        self._start(fault, [node.name], fw.heal, hold_s=round(hold, 2),
                    lease_ttl_s=etcd_ctl.LEASE_TTL_S)
        self._sleep_until(time.monotonic() + hold, deadline + 8)
        self._stop(fault)
        self.events.append(f"  {fault}: {hold:.1f} s")

    def etcd_kill_member(self, deadline):
        """kill -9 of one etcd member (of three: the others keep a quorum), restarted 2-4 s
        later."""
        etcd = self.cluster.etcd
        live = [m for m in etcd.members if m.alive()]
        if len(live) < 2:
            return
        member = self.rng.choice(live)
        hold = self.rng.uniform(2.0, 4.0)
        fault = f"etcd kill member {member.name}"
        member.kill()
        self._start(fault, [], lambda: etcd.restart(member), member=member.name,
                    hold_s=round(hold, 2))
        self._sleep_until(time.monotonic() + hold, deadline + 5)
        self._stop(fault)

    def leave_rejoin(self, deadline):
        """A live node leaves (cluster.leave: the controller moves every shard it leads to the
        others while the workload runs), exits once it leads nothing, then starts again on its
        data dir and gets its share back: shard moves in both directions under load. Every
        acknowledged write must survive both; requests to a moving shard wait or answer
        `unavailable` meanwhile."""
        live = [n for n in self.cluster.nodes if n.alive() and not n.paused]
        if len(live) < 2:
            return
        node = self.rng.choice(live)
        fault = f"{node.name} leaves and rejoins"
        reply = request(node.host, node.port, "cluster.leave", {"node_id": node.name},
                        token=self.cluster.admin_token, timeout=5.0)
        if not reply or "result" not in reply:
            self.events.append(f"  {fault}: refused ({reply})")
            return
        self._start(fault, [node.name], lambda: self.cluster.restart(node))
        t_end = min(time.monotonic() + 30.0, deadline + 20.0)
        while node.alive() and time.monotonic() < t_end:  # bounded: it exits once it left
            time.sleep(0.1)
        self.events.append(f"  {fault}: {'left' if not node.alive() else 'still running'}")
        self._stop(fault)

    # -- schedules (one per scenario) -------------------------------------------------------

    def run(self, scenario, deadline):
        kind = SCENARIOS[scenario]["kind"]
        if kind == "none":
            self._sleep_until(deadline, deadline)
        elif kind == "kill":
            self._loop(deadline, self.kill_restart)
        elif kind == "pause":
            self._loop(deadline, self.pause_resume)
        elif kind == "power-cut":
            self._loop(deadline, self.power_cut_restart)
        elif kind == "crash":
            self._loop(deadline, self.crash_entities, gap=(0.5, 1.5))
        elif kind == "partition":
            shape = SCENARIOS[scenario]["shape"]
            self._loop(deadline, lambda dl: self.partition(dl, shape))
        elif kind == "loss":
            self._loop(deadline, self.packet_loss)
        elif kind == "stress":
            self._loop(deadline, self.cpu_starvation)
        elif kind == "fiu":
            self._loop(deadline, self.fsync_failures, gap=(1.5, 3.0))
        elif kind == "diskfull":
            self._loop(deadline, self.disk_full, gap=(1.5, 3.0))
        elif kind == "skew":
            self._loop(deadline, self.clock_skew)
        elif kind == "etcd-kill":
            self._loop(deadline, self.etcd_kill)
        elif kind == "etcd-pause":
            self._loop(deadline, self.etcd_pause)
        elif kind == "etcd-cut":
            self._loop(deadline, self.etcd_cut_node)
        elif kind == "etcd-kill-member":
            self._loop(deadline, self.etcd_kill_member)
        elif kind == "rebalance":
            self._loop(deadline, self.leave_rejoin, gap=(0.5, 1.5))
        elif kind == "primary-kill":
            self._loop(deadline, self.primary_kill, gap=(0.5, 1.5))
        elif kind == "zombie":
            self._loop(deadline, self.zombie, gap=(0.5, 1.5))
        elif kind == "wipe":
            self._loop(deadline, self.wipe, gap=(0.5, 1.5))
        elif kind == "two-down":
            self._loop(deadline, self.two_down, gap=(0.5, 1.5))
        elif kind == "partition-primary":
            self._loop(deadline, self.partition_primary, gap=(0.5, 1.5))
        elif kind == "mixed":
            def one(dl):
                self.rng.choice([self.kill_restart, self.pause_resume, self.crash_entities])(dl)
            self._loop(deadline, one)
        elif kind == "planted":
            # let deposits be acknowledged by the faulty node, then lose its memory
            self._sleep_until(time.monotonic() + 0.6 * max(0.0, deadline - time.monotonic()),
                              deadline)
            self.kill_restart(deadline + 5, node=self.cluster.node(PLANTED_NODE), down=(1.0, 1.5))
            self._sleep_until(deadline, deadline)
        self.heal_all()


PLANTED_NODE = "n1"
PLANTED_FLAG = "--fault-ack-without-write"

POWER_CUT_ENV = "ORDERMESH_TEST_POWER_CUT"  # nodes/power_cut_hook.hpp
POWER_CUT_EXIT = 137
FSYNC_FAILPOINTS = ("posix/io/sync/fdatasync", "posix/io/sync/fsync")
FIU_LIB_DIR = "/usr/lib/fiu"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SKEW_MAX_S = 30
DISK_NODE = "n2"
DISK_BYTES = 64 << 20


def _fiu_ctrl(node, cmds):
    """Sends libfiu remote-control commands to a node started under fiu-run; True on success."""
    try:
        p = subprocess.run(["fiu-ctrl", "-f", node.fiu_fifo] + cmds + [str(node.proc.pid)],
                           capture_output=True, text=True, timeout=10)
        return p.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _fill(path, limit=1 << 30):
    """Writes zeros to `path` until the file system is full (ENOSPC) or `limit` bytes; returns
    the bytes written."""
    written = 0
    chunk = bytes(1 << 20)
    try:
        with open(path, "wb", buffering=0) as f:
            while written < limit:
                n = f.write(chunk)
                written += n or 0
                if not n:
                    break
    except OSError:
        pass  # ENOSPC: full, as wanted
    return written


def prepare(scenario, cluster, out_dir):
    """What a scenario needs before its nodes start: the power-cut hook in every node
    (power-cut), fiu-run under every node (fsync-fail), or a small tmpfs under one node's data
    dir (disk-full, in our private mount namespace)."""
    kind = SCENARIOS[scenario]["kind"]
    if kind == "power-cut":
        for n in cluster.nodes:
            n.env[POWER_CUT_ENV] = "1"
    elif kind == "fiu":
        for n in cluster.nodes:
            n.fiu_fifo = str(Path(out_dir) / f"fiu-{n.name}")
            n.prefix = ["fiu-run", "-x", "-f", n.fiu_fifo]
    elif kind == "diskfull":
        n = cluster.node(DISK_NODE) if DISK_NODE in cluster.names() else cluster.nodes[-1]
        disk = Path(out_dir) / f"{n.name}-disk"
        disk.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "ordermesh-chaos",
                        str(disk)], check=True, capture_output=True, timeout=10)
        cluster.mounts.append(disk)
        n.disk = disk
        n.data_dir = disk / "data"


def _need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def _ns_skip(ctx):
    if not ctx["netns"]:
        return "needs a private network namespace (run as root)"
    return ctx.get("hosts_unsupported")


def _fiu_skip(ctx):
    return _need_tools("fiu-run", "fiu-ctrl") or (
        None if os.path.exists(f"{FIU_LIB_DIR}/fiu_posix_preload.so")
        else f"{FIU_LIB_DIR}/fiu_posix_preload.so missing")


def _skew_skip(ctx):
    return None if os.path.exists(FAKETIME_LIB) else f"{FAKETIME_LIB} missing (package faketime)"


def _etcd_skip(ctx):
    """Every scenario needs the etcd binary (every cluster is coordinated through etcd)."""
    return etcd_ctl.missing()


def _disk_skip(ctx):
    if not ctx["netns"]:
        return "needs root and a private mount namespace for its tmpfs (run as root)"
    return None


# kind: the schedule; needs: None or a callable(ctx) -> skip reason or None (ctx: netns, root).
SCENARIOS = {
    "baseline": {"kind": "none", "doc": "no faults: the workload alone"},
    "kill": {"kind": "kill", "doc": "kill -9 of a random node, restarted 1.5-3.5 s later"},
    "pause": {"kind": "pause",
              "doc": "SIGSTOP of a random node for 2-3.5 s (around the 3 s lease), SIGCONT"},
    "crash": {"kind": "crash",
              "doc": "admin.crash of 2-5 entities the workload just touched, in bursts"},
    "mixed": {"kind": "mixed", "doc": "kill, pause and crash drawn at random"},
    "power-cut": {"kind": "power-cut",
                  "doc": "a simulated power cut of a random node at its next write (SIGUSR2: "
                         f"every node runs with {POWER_CUT_ENV}=1; its files lose everything "
                         "not synced), "
                         "restarted on the same data dir 1-2.5 s later, repeated"},
    "partition-isolate": {"kind": "partition", "shape": "isolate",
                          "doc": "one node cut off from the other nodes (both ways) for "
                                 "2.5-5 s; clients still reach it",
                          "needs": lambda ctx: _ns_skip(ctx) or _need_tools("nft")},
    "partition-oneway": {"kind": "partition", "shape": "oneway",
                         "doc": "packets from one node to another dropped, not the reverse",
                         "needs": lambda ctx: _ns_skip(ctx) or _need_tools("nft")},
    "partition-halves": {"kind": "partition", "shape": "halves",
                         "doc": "the nodes cut into two random halves",
                         "needs": lambda ctx: _ns_skip(ctx) or _need_tools("nft")},
    "packet-loss": {"kind": "loss",
                    "doc": "10-50 % of one node's packets dropped (nft numgen), peers and "
                           "clients alike, for 2.5-5 s",
                    "needs": lambda ctx: _ns_skip(ctx) or _need_tools("nft")},
    "cpu-starvation": {"kind": "stress",
                       "doc": "stress-ng CPU hogs (2 per core) for 2.5-5 s under the workload",
                       "needs": lambda ctx: _need_tools("stress-ng")},
    "fsync-fail": {"kind": "fiu",
                   "doc": "fdatasync/fsync fail (p 0.2-1) in one node for 1.5-3.5 s (every "
                          "node runs under fiu-run -x); it must fail-stop, never acknowledge",
                   "needs": _fiu_skip},
    "disk-full": {"kind": "diskfull",
                  "doc": f"{DISK_NODE}'s data dir on a {DISK_BYTES >> 20} MiB tmpfs, filled by "
                         "a ballast file for 2-4 s (half of the time with the node restarted "
                         "on the full disk), then emptied",
                  "needs": _disk_skip},
    "clock-skew": {"kind": "skew",
                   "doc": f"a node restarted with its wall clock off by 5-{SKEW_MAX_S} s "
                          "(libfaketime) for 3-5 s, then restarted on time",
                   "needs": _skew_skip},
    "planted-loss": {"kind": "planted", "expect_violation": True,
                     "doc": f"{PLANTED_NODE} runs with {PLANTED_FLAG} (acks deposits without "
                            "writing them), then kill -9 + restart: the checker must catch it"},
    # faults of the etcd itself, and shard moves through it
    "etcd-kill": {"kind": "etcd-kill",
                  "doc": "kill -9 of etcd (every member), restarted on its data after TTL + "
                         f"1.5-3 s (beyond the {etcd_ctl.LEASE_TTL_S} s lease TTL), then "
                         "after 1.5-2.5 s (within it), alternately"},
    "etcd-pause": {"kind": "etcd-pause",
                   "doc": "SIGSTOP of etcd (every member) for TTL + 1-3 s, then SIGCONT"},
    "etcd-cut-node": {"kind": "etcd-cut",
                      "doc": "one node cut off from etcd alone (nft on the node<->etcd "
                             "addresses), alternately beyond and within the lease TTL; its "
                             "peers and the clients still reach it",
                      "needs": lambda ctx: _ns_skip(ctx) or _need_tools("nft")},
    "rebalance": {"kind": "rebalance", "spare_node": True,
                  "doc": "a node leaves (its shards move away under load), then rejoins and "
                         "gets its share back: moves both ways while the workload runs (at "
                         "replication factor 3 its replicas move, so it needs a fourth node: "
                         "a replicated cluster refuses a leave that would leave too few)"},
    "etcd-kill-member": {"kind": "etcd-kill-member", "etcd_members": 3,
                         "doc": "a 3-member etcd; kill -9 of one member, restarted 2-4 s later "
                                "(the other two keep a quorum)"},
    # replicated clusters only (--replication-factor 3: min_rf); `all` leaves them out below it
    "primary-kill-repeat": {"kind": "primary-kill", "min_rf": 3,
                            "doc": "kill -9 of the node leading the most shards, restarted "
                                   "3-4.5 s later (beyond the lease: failover), repeated"},
    "zombie": {"kind": "zombie", "min_rf": 3,
               "doc": "SIGSTOP of the node leading the most shards for 5-6 s (its shards fail "
                      "over), then SIGCONT while clients still send it requests"},
    "wipe": {"kind": "wipe", "min_rf": 3,
             "doc": "kill -9 of the node leading the most shards, its data dir deleted, "
                    "restarted 1-2.5 s later: it catches up by full copies"},
    "two-down": {"kind": "two-down", "min_rf": 3,
                 "doc": "kill -9 of two of three nodes for 3-5 s, both restarted: writes stall "
                        "(unavailable), nothing acknowledged is lost"},
    "partition-primary": {"kind": "partition-primary", "min_rf": 3,
                          "doc": "the node leading the most shards cut off from its peers "
                                 "(both ways, etcd and clients still reach it) for 4-6 s",
                          "needs": lambda ctx: _ns_skip(ctx) or _need_tools("nft")},
}


def runs_at(name, replication_factor, nodes=3):
    """None if scenario `name` is meaningful at this replication factor and number of nodes,
    else why not (a usage error when asked for by name; `all` leaves it out)."""
    spec = SCENARIOS[name]
    if replication_factor < spec.get("min_rf", 1):
        return (f"{name} needs a replicated cluster (--replication-factor "
                f"{spec['min_rf']}): it kills or cuts primaries and checks the failover")
    if spec.get("spare_node") and replication_factor > 1 and nodes <= replication_factor:
        return (f"{name} at --replication-factor {replication_factor} needs --nodes "
                f"{replication_factor + 1} or more: the leaving node's replicas move to a node "
                f"that holds none of them yet")
    return None


def scenarios_for(replication_factor, nodes=3):
    """`all` at this replication factor and number of nodes: every scenario that runs there,
    in order."""
    return [n for n in SCENARIOS if runs_at(n, replication_factor, nodes) is None]

def skip_reason(name, ctx):
    spec = SCENARIOS[name]
    reason = _etcd_skip(ctx)
    if not reason and spec.get("needs"):
        reason = spec["needs"](ctx)
    return reason
