"""Process management of the orderd nodes of one chaos run (Python 3 stdlib only).

Every node this module starts is remembered by its Popen (pid); stop/kill/pause/resume act on
that pid only. Data dirs and logs live under the run's out dir. Ports are fixed per node for the
whole run (a restart reuses them):
  * netns mode (a private network namespace, see scripts/chaos.sh): node i (0-based) runs in a
    host namespace of its own (netns.py) at 10.77.(i+1).2, client port 7400 and cluster port
    7500, so partitions and packet loss are nft rules on its address and interface;
  * plain loopback: every node on 127.0.0.1 with distinct free ports.
Coordination is always etcd (etcd_ctl.py): one etcd per scenario, started first and kept
across node restarts; every node runs with --etcd, --cluster and --lease-ttl. The admin token
reaches orderd through the environment (ORDERMESH_ADMIN_TOKEN), never argv. The cluster plane
runs mutual TLS when the Cluster gets a `tls_dir` (run.py makes one cluster CA per run there,
scripts/gen-certs.sh): each node --tls-cert/--tls-key of its own name; without one, every node
runs with --insecure-cluster.

Processes are launched through `setpriv --pdeathsig KILL` when available so that they die with
the runner. PR_SET_PDEATHSIG fires when the *thread* that forked exits, so start nodes from a
long-lived thread (run.py does every start and restart from its main thread).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from chaos import etcd_ctl
from chaos.netns import Firewall, Host

# A short quarantine: the crash scenario trips the restart budget on purpose, and the run must
# settle (every order terminal) within its bounded settle time afterwards.
CLUSTER_FLAGS = ["--pwhash", "fast", "--heartbeat-interval", "200ms", "--enable-fault-injection",
                 "--reservation-ttl", "20s", "--quarantine-for", "3s"]
RESERVATION_TTL_MS = 20000


def _launcher():
    sp = shutil.which("setpriv")
    if sp:
        try:
            out = subprocess.run([sp, "--help"], capture_output=True, text=True, timeout=5).stdout
            if "--pdeathsig" in out:
                return [sp, "--pdeathsig", "KILL", "--"]
        except (OSError, subprocess.SubprocessError):
            pass
    return []


GEN_CERTS = Path(__file__).resolve().parents[1] / "scripts" / "gen-certs.sh"


def ensure_certs(tls_dir, names):
    """Certificates for `names` under tls_dir (the CA made once, by the first call; a name
    that has its certificate already is not made again)."""
    missing = [n for n in names if not (Path(tls_dir) / f"{n}.pem").exists()]
    if missing:
        p = subprocess.run(["bash", str(GEN_CERTS), str(tls_dir)] + missing, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise StartError(f"gen-certs.sh {tls_dir}: {p.stderr.strip()[-400:]}")


def tls_flags(tls_dir, name):
    """orderd's cluster-plane flags for node `name`: mutual TLS, or --insecure-cluster."""
    if tls_dir is None:
        return ["--insecure-cluster"]
    d = Path(tls_dir)
    return ["--tls-cert", str(d / f"{name}.pem"), "--tls-key", str(d / f"{name}.key"),
            "--tls-ca", str(d / "ca.pem")]


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def request(host, port, op, args=None, token=None, timeout=3.0):
    """One request on a fresh connection; the reply dict, or None (no reply / error)."""
    req = {"id": 1, "op": op, "args": args or {}}
    if token:
        req["token"] = token
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            deadline = time.monotonic() + timeout
            while b"\n" not in buf:
                if time.monotonic() > deadline:
                    return None
                chunk = s.recv(65536)
                if not chunk:
                    return None
                buf += chunk
            return json.loads(buf.split(b"\n", 1)[0])
    except (OSError, ValueError):
        return None


class StartError(RuntimeError):
    def __init__(self, msg, exit_code=None, stderr=""):
        super().__init__(msg)
        self.exit_code = exit_code
        self.stderr = stderr


class Node:
    def __init__(self, cluster, index, host, client_port, cluster_port, extra_args=(),
                 net=None):
        self.cluster = cluster
        self.index = index
        self.name = f"n{index + 1}"
        self.net = net  # its netns.Host in netns mode, else None
        self.host = net.address if net else host
        self.port = client_port
        self.cluster_port = cluster_port
        self.extra_args = list(extra_args)
        self.data_dir = cluster.dir / self.name / "data"
        self.proc = None
        self.paused = False
        self.starts = 0
        self.stderr_file = None
        # Set by a nemesis for the next starts: a command prefix (fiu-run) and environment
        # (libfaketime); both exec the node, so its pid stays the one we started.
        self.prefix = []
        self.env = {}
        self.last_exit = None
        self.fiu_fifo = None  # libfiu's control fifo prefix when started under fiu-run
        self.disk = None      # the tmpfs its data dir is on (disk-full scenario)

    def command(self):
        cmd = [str(self.cluster.orderd), "--node-id", self.name, "--data-dir", str(self.data_dir),
               "--client-host", self.host, "--client-port", str(self.port),
               "--cluster-host", self.host, "--cluster-port", str(self.cluster_port),
               "--log-level", "info",
               "--log-file", str(self.cluster.dir / self.name / f"orderd.{self.starts}.log")]
        cmd += CLUSTER_FLAGS + self.extra_args
        cmd += etcd_ctl.node_flags(self.cluster.etcd.urls())
        cmd += tls_flags(self.cluster.tls_dir, self.name)
        return cmd

    def alive(self):
        if self.proc is None:
            return False
        code = self.proc.poll()
        if code is not None:
            self.last_exit = code
        return code is None

    def start(self, timeout=30.0):
        if self.alive():
            return
        self.launch()
        self.await_ready(timeout)

    def launch(self):
        """Starts the process (not waiting for it to answer)."""
        if self.alive():
            return
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.cluster.dir / self.name).mkdir(parents=True, exist_ok=True)  # logs
        self.stderr_file = self.cluster.dir / self.name / f"stderr.{self.starts}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERMESH_")}
        env["ORDERMESH_ADMIN_TOKEN"] = self.cluster.admin_token
        env.update(self.env)
        cmd = self.prefix + self.command()
        if self.net:
            cmd = self.net.wrap(cmd)
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(self.cluster.launcher + cmd,
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, close_fds=True)
        self.paused = False
        self.cluster.remember_pid(self.proc.pid)

    def await_ready(self, timeout=30.0):
        """Waits until the launched node answers cluster.status; StartError otherwise."""
        if not self.wait_ready(timeout):
            code = self.proc.poll()
            text = self.stderr_file.read_text(errors="replace")[-2000:]
            if code is None:
                self.kill()
            raise StartError(f"{self.name} did not come up (exit {code}): {text.strip()}",
                             code, text)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            r = request(self.host, self.port, "cluster.status", timeout=1.0)
            if isinstance(r, dict) and "ok" in r:
                return True
            time.sleep(0.1)
        return False

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self, timeout=15.0):
        """SIGKILL (kill -9) of the pid we started; waits for it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.paused:
                pass  # SIGKILL works on a stopped process too
            self.proc.send_signal(signal.SIGKILL)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.paused = False
        return code

    def terminate(self, timeout=20.0):
        if self.alive():
            if self.paused:
                self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.kill()
        return None

    def pause(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def status(self, timeout=3.0):
        r = request(self.host, self.port, "cluster.status", timeout=timeout)
        return r.get("result") if isinstance(r, dict) and r.get("ok") else None


class Cluster:
    """The nodes of one scenario and their etcd. `netns`: True when running in a private
    namespace. The etcd has `etcd_members` members, its files in `etcd_dir` (default next to
    the nodes' dir). `tls_dir`: where the run's cluster CA is (certificates for these nodes are
    made there if missing); None: the nodes run with --insecure-cluster."""

    def __init__(self, out_dir, orderd, n, netns=False, admin_token=None, node_args=None,
                 pid_file=None, etcd_members=1, etcd_dir=None, replication_factor=1,
                 tls_dir=None):
        self.dir = Path(out_dir)
        self.tls_dir = tls_dir
        if tls_dir is not None:
            ensure_certs(tls_dir, [f"n{i + 1}" for i in range(n)])
        self.replication_factor = replication_factor
        self.pid_file = pid_file
        self.dir.mkdir(parents=True, exist_ok=True)
        self.orderd = orderd
        self.netns = netns
        self.admin_token = admin_token or "adm-" + secrets.token_hex(12)
        self.launcher = _launcher()
        self.pids = set()
        self.nodes = []
        self.firewall = None
        self.mounts = []  # tmpfs mounts (disk-full), unmounted by stop_all
        self.etcd = etcd_ctl.Etcd(etcd_dir or self.dir.parent / "etcd", etcd_members, netns,
                                  self.launcher, self.remember_pid)
        node_args = node_args or {}
        used = set()
        if netns:
            self.firewall = Firewall()
        for i in range(n):
            net = None
            if netns:
                net = Host(i + 1, self.launcher, self.remember_pid)
                host, cp, kp = None, 7400, 7500
            else:
                host = "127.0.0.1"
                cp = kp = None
                while cp is None or cp in used:
                    cp = free_port()
                while kp is None or kp in used or kp == cp:
                    kp = free_port()
                used.update((cp, kp))
            self.nodes.append(Node(self, i, host, cp, kp, node_args.get(f"n{i + 1}", ()), net))

    def remember_pid(self, pid):
        self.pids.add(pid)
        if self.pid_file:  # scripts/chaos.sh's trap ends these pids, whatever happens
            with open(self.pid_file, "a") as f:
                f.write(f"{pid}\n")

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def names(self):
        return [n.name for n in self.nodes]

    def start(self, balance_timeout=90.0):
        """etcd first, then every node at once (the first controller maps the shards over the
        members present, then moves shards to the later ones). Waits until balanced."""
        try:
            self.etcd.start()
        except etcd_ctl.EtcdError as e:
            raise StartError(str(e)) from e
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.await_ready()
        return self.wait_balanced(balance_timeout)

    def restart(self, node, timeout=30.0):
        """Starts a node that is down again (same ports, same data dir, the same etcd)."""
        if node.alive():
            node.resume()
            return
        node.start(timeout=timeout)

    def heal_processes(self):
        """Resumes every paused node (and etcd member) and restarts every one that is down."""
        self.etcd.heal()
        for n in self.nodes:
            if n.paused:
                n.resume()
        for n in self.nodes:
            if not n.alive():
                try:
                    self.restart(n)
                except StartError:
                    pass

    def balanced(self):
        live = [n for n in self.nodes if n.alive() and not n.paused]
        statuses = []
        for n in live:
            st = n.status()
            if st is None:
                return None
            statuses.append(st)
        return balanced_view(statuses, [n.name for n in live],
                             replicated=self.replication_factor > 1)

    def statuses(self, timeout=1.0):
        """{node name: cluster.status result or None} of every running, unpaused node."""
        return {n.name: n.status(timeout=timeout) for n in self.nodes
                if n.alive() and not n.paused}

    def top_primary(self):
        """The running node that leads the most shards, as the first running node that answers
        cluster.status sees the shard map (ties: the lowest name); None if nobody answers."""
        for n in self.nodes:
            if n.alive() and not n.paused:
                st = n.status(timeout=2.0)
                if st:
                    name = top_primary_of(st, [x.name for x in self.nodes if x.alive()])
                    if name:
                        return self.node(name)
        return None

    def wait_balanced(self, timeout=90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.balanced()
            if st:
                return st
            time.sleep(0.25)
        return None

    def live(self):
        """Nodes whose process runs (paused ones included: the driver meets them as timeouts)."""
        return [n for n in self.nodes if n.alive()]

    def stop_all(self, before_unmount=None):
        """Kills every node, then releases what the run made (firewall, tmpfs mounts,
        namespaces). `before_unmount()`, if given, runs once the nodes are dead and before
        their data dirs' tmpfs mounts go away (the journal dump reads them there)."""
        for n in self.nodes:
            if n.alive():
                if n.paused:
                    n.resume()
                n.kill()
        if before_unmount is not None:
            before_unmount()
        self.etcd.stop()
        if self.firewall:
            self.firewall.close()
        for m in self.mounts:
            subprocess.run(["umount", "-l", str(m)], capture_output=True, timeout=10)
        self.mounts.clear()
        for n in self.nodes:
            if n.net:
                n.net.close()


def top_primary_of(status, among):
    """The name in `among` that leads the most shards in one cluster.status (ties: the lowest
    name), or None."""
    counts = {}
    for sh in status.get("shards", []):
        p = sh.get("primary") or sh.get("owner")
        if p in among:
            counts[p] = counts.get(p, 0) + 1
    if not counts:
        return None
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def caught_up(statuses):
    """With replication: every shard has its whole replica set in its ISR and the primary's
    `lag` shows every follower at 0, in the cluster.status answers of the running nodes
    (`statuses`: {name: status}). (An ISR entry may still name a restarted member's old life:
    the leader rewrites it only with the next commit that member acknowledges, and it matters
    for failover, not for what the journals hold.) Returns the shards that are not caught up,
    as short strings ([] = caught up)."""
    behind = []
    for name, st in sorted(statuses.items()):
        if not isinstance(st, dict):
            return [f"{name}: no status"]
        for sh in st.get("shards", []):
            reps = sorted(sh.get("replicas") or [])
            if sorted(sh.get("isr") or []) != reps:
                why = f"shard {sh.get('shard')}: isr {sh.get('isr')} of {reps}"
                if why not in behind:  # every node's view shows it
                    behind.append(why)
            if sh.get("primary") != name:
                continue
            lag = sh.get("lag")
            want = sorted(r for r in reps if r != name)
            if lag is None or sorted(lag) != want or any(v != 0 for v in lag.values()):
                behind.append(f"shard {sh.get('shard')}: lag {lag} on {name}")
    return behind


def balanced_view(statuses, want, replicated=False):
    """The first status if the cluster.status answers of every running node (`statuses`, one per
    name in `want`) show a settled, balanced cluster, else None: every wanted node is an `up`
    member and no other is, no node misses a peer (`unreachable_from_here`), every shard has a
    primary among them, and all answers show the same primaries; on the etcd status (it has
    `coordination` "etcd", `controller`, `lease_valid`, shards with `primary` and `target`): no
    move pending (no shard has a `target`), every member leads at least one shard and the counts
    differ by at most one (the fixed point of the controller's plan_moves: without it, the
    instant between one move's flip and the next move's intent looks settled), every node's
    lease is valid, and all agree on one controller, a member. A status of any other
    coordination is never settled. `replicated` (replication factor > 1): also caught_up(): every
    ISR complete (every replica in it), every follower at lag 0. The count rule holds there too:
    the controller's rebalance moves primaries back until the counts differ by at most one (a
    primary move in flight releases the shard at one epoch before its successor owns it at the
    next, so a cluster stopped then would show a shard nobody owns)."""
    want_order = list(want)
    want = sorted(want)
    if not want or len(statuses) != len(want):
        return None
    first = None
    for st in statuses:
        if not isinstance(st, dict):
            return None
        up = sorted(m["node_id"] for m in st.get("members", []) if m.get("state") == "up")
        if up != want or st.get("unreachable_from_here"):
            return None
        if st.get("coordination") != "etcd" or not st.get("lease_valid"):
            return None
        shards = st.get("shards", [])
        owners = {s["shard"]: s.get("owner") or s.get("primary") for s in shards}
        counts = {}
        for o in owners.values():
            counts[o] = counts.get(o, 0) + 1
        if not owners or len(owners) != st.get("shard_count") or not set(counts) <= set(want):
            return None
        if set(counts) != set(want):
            return None
        if any(s.get("target") for s in shards):
            return None
        if max(counts.values()) - min(counts.values()) > 1:
            return None
        if st.get("controller") not in want:
            return None
        if first is None:
            first = st
        elif st.get("controller") != first.get("controller") or \
                {s["shard"]: s.get("owner") or s.get("primary")
                 for s in first.get("shards", [])} != owners:
            return None
    if replicated and caught_up(dict(zip(want_order, statuses))):
        return None
    return first


class EpochMonitor:
    """Samples every running node's cluster.status while a scenario runs (a thread of its own,
    every `interval` s, 1 s per request) and keeps, per node and shard, the (epoch, primary)
    pairs its view of the shard map went through, in order (a repeat of the last pair is not
    kept). The journal audit checks them (journal_audit.py, rule `epochs`): a node's view of a
    shard's epoch never goes back, and one epoch of a shard names one primary on every node.
    Reads only; it starts no process."""

    def __init__(self, cluster, interval=0.5):
        self.cluster = cluster
        self.interval = interval
        self.views = {}    # node -> {shard (str): [[epoch, primary], ...]}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="epoch-monitor", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10.0)

    def sample(self):
        for name, st in self.cluster.statuses(timeout=1.0).items():
            if st:
                self.record(name, st)

    def record(self, name, st):
        self.samples += 1
        mine = self.views.setdefault(name, {})
        for sh in st.get("shards", []):
            if not isinstance(sh.get("epoch"), int):
                continue
            pair = [sh["epoch"], sh.get("primary") or sh.get("owner")]
            seen = mine.setdefault(str(sh.get("shard")), [])
            if not seen or seen[-1] != pair:
                seen.append(pair)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # a node going away mid-sample: the next sample goes on
                pass
            self._stop.wait(self.interval)
