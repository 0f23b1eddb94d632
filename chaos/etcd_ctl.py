"""The etcd of a chaos run (Python 3 stdlib only): every chaos cluster coordinates through it.

One etcd (1 member, or 3 with --etcd-members 3) per scenario, started before the nodes and kept
across node restarts; every node runs with `--etcd <every member's client URL>`. Where it lives:
  * netns mode: in the chaos namespace itself (the runner's), each member on an address of its
    own added to the namespace's `lo`, 10.77.0.M (M = 1, 2, 3), client port 2379, peer port
    2380. A node's host namespace reaches it through its default route (via 10.77.k.1, the
    chaos namespace), so node-to-etcd packets end in the chaos namespace's `input` hook (and the
    answers leave through `output`), never crossing `forward`, where the partitions cut
    node-to-node traffic: a partition leaves every node's etcd traffic alone. Packet loss
    (rules on the node's veth in every hook) hits its etcd traffic too, like everything else of
    that node. `etcd-cut-node` cuts one node's etcd traffic alone (cut_rules()).
  * plain loopback: every member on 127.0.0.1 with free client and peer ports.
Members start with `--unsafe-no-fsync` (kill -9 keeps the page cache; durability of etcd itself
is not under test) and etcd's default timings (100 ms heartbeat, 1 s election). Every member is
remembered by its pid (the Popen), through the cluster's pid file, so scripts/chaos.sh's trap
kills it whatever happens; kill / pause / resume act on that pid only.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ETCD_BIN = os.environ.get("ORDERMESH_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
NETNS_PREFIX = "10.77.0"    # 10.77.0.M on the chaos namespace's lo; hosts are 10.77.k.0/24
CLIENT_PORT = 2379
PEER_PORT = 2380
CLUSTER_NAME = "chaos"      # orderd --cluster: keys under /ordermesh/chaos/
LEASE_TTL_S = 3             # orderd --lease-ttl (its default)
READY_TIMEOUT_S = 20.0

# urllib honours http_proxy & co. from the environment: never for our etcd.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PROBE_KEY = base64.b64encode(b"/ordermesh-chaos-probe").decode()


class EtcdError(RuntimeError):
    pass


def missing():
    """None when the etcd binary is there, else why not."""
    if os.path.isfile(ETCD_BIN) and os.access(ETCD_BIN, os.X_OK):
        return None
    return f"etcd not installed ({ETCD_BIN}; package etcd-server)"


def addresses(count, netns):
    """(host, client_port, peer_port) per member: fixed addresses in netns mode, None ports
    (pick free ones) on plain loopback."""
    if netns:
        return [(f"{NETNS_PREFIX}.{m + 1}", CLIENT_PORT, PEER_PORT) for m in range(count)]
    return [("127.0.0.1", None, None) for _ in range(count)]


def member_command(binary, name, data_dir, host, client_port, peer_port, initial_cluster, token):
    """etcd's command line for one member (ENGINEERING.md section 5)."""
    client = f"http://{host}:{client_port}"
    peer = f"http://{host}:{peer_port}"
    return [binary, "--name", name, "--data-dir", str(data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial_cluster, "--initial-cluster-token", token,
            "--initial-cluster-state", "new", "--unsafe-no-fsync",
            "--logger", "zap", "--log-outputs", "stderr"]


def initial_cluster(members):
    """`--initial-cluster` of (name, host, peer_port) triples."""
    return ",".join(f"{name}=http://{host}:{port}" for name, host, port in members)


def node_flags(urls, lease_ttl_s=LEASE_TTL_S, cluster=CLUSTER_NAME):
    """orderd's coordination flags: every member's client URL, the cluster name, the TTL."""
    return ["--etcd", ",".join(urls), "--cluster", cluster, "--lease-ttl", f"{lease_ttl_s}s"]


def cut_rules(node_address, etcd_addresses):
    """The nft rules (chain, rule) that cut one node off from etcd alone, both ways, in the
    chaos namespace where etcd runs: its packets to etcd arrive in `input`, etcd's answers
    leave through `output`. Node-to-node traffic (`forward`) and clients are untouched."""
    rules = []
    for e in etcd_addresses:
        rules.append(("input", f"ip saddr {node_address} ip daddr {e} drop"))
        rules.append(("output", f"ip saddr {e} ip daddr {node_address} drop"))
    return rules


def gateway(url, path, body, timeout=2.0):
    req = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with _OPENER.open(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def _free_port(used):
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in used:
            used.add(port)
            return port
    raise EtcdError("no free port")


class Member:
    def __init__(self, etcd, index, host, client_port, peer_port):
        self.etcd = etcd
        self.name = f"e{index + 1}"
        self.host = host
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = etcd.dir / f"{self.name}.data"
        self.proc = None
        self.paused = False
        self.starts = 0
        self.last_exit = None

    @property
    def url(self):
        return f"http://{self.host}:{self.client_port}"

    def command(self):
        return member_command(ETCD_BIN, self.name, self.data_dir, self.host, self.client_port,
                              self.peer_port, self.etcd.initial_cluster(), self.etcd.token)

    def alive(self):
        if self.proc is None:
            return False
        code = self.proc.poll()
        if code is not None:
            self.last_exit = code
        return code is None

    def launch(self):
        if self.alive():
            return
        self.starts += 1
        log = self.etcd.dir / f"{self.name}.{self.starts}.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ETCD", "ORDERMESH_"))}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(self.etcd.launcher + self.command(),
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=env, close_fds=True)
        self.paused = False
        self.etcd.remember_pid(self.proc.pid)

    def ready(self, timeout=1.0):
        """True when this member answers a (linearizable, so quorum-backed) range."""
        try:
            return "header" in gateway(self.url, "/v3/kv/range",
                                       {"key": _PROBE_KEY}, timeout)
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if self.ready():
                return True
            time.sleep(0.1)
        return False

    def kill(self, timeout=10.0):
        """SIGKILL of the pid we started (a stopped process dies too); waits for it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.paused = False
        return code

    def pause(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False


class Etcd:
    """The members of one scenario's etcd. `out_dir`: data dirs and logs (eM.data, eM.N.log)."""

    def __init__(self, out_dir, members=1, netns=False, launcher=(), remember_pid=None):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.launcher = list(launcher)
        self.remember_pid = remember_pid or (lambda pid: None)
        self.token = "ordermesh-chaos-" + secrets.token_hex(6)
        used = set()
        self.members = []
        for i, (host, cp, pp) in enumerate(addresses(members, netns)):
            if netns:
                # our own namespace's lo; `replace` is idempotent (the next scenario's etcd)
                p = subprocess.run(["ip", "addr", "replace", f"{host}/32", "dev", "lo"],
                                   capture_output=True, text=True, timeout=10)
                if p.returncode != 0:
                    raise EtcdError(f"cannot add {host} to lo: {p.stderr.strip()[:200]}")
            else:
                cp, pp = _free_port(used), _free_port(used)
            self.members.append(Member(self, i, host, cp, pp))

    def initial_cluster(self):
        return initial_cluster([(m.name, m.host, m.peer_port) for m in self.members])

    def urls(self):
        return [m.url for m in self.members]

    def hosts(self):
        return sorted({m.host for m in self.members})

    def start(self, timeout=READY_TIMEOUT_S):
        """Starts every member that is down (all at once: a member needs a quorum to answer)
        and waits until each answers; raises EtcdError otherwise."""
        for m in self.members:
            m.launch()
        for m in self.members:
            if not m.wait_ready(timeout):
                code = None if m.alive() else m.last_exit
                raise EtcdError(f"etcd member {m.name} did not answer at {m.url} within "
                                f"{timeout:.0f} s (exit {code}); log in {self.dir}")

    def restart(self, member, timeout=READY_TIMEOUT_S):
        """Starts one member again (same data dir and address) and waits until it answers."""
        member.launch()
        if not member.wait_ready(timeout):
            raise EtcdError(f"etcd member {member.name} did not come back within "
                            f"{timeout:.0f} s")

    def heal(self):
        """Resumes every paused member and starts every member that is down."""
        for m in self.members:
            if m.paused:
                m.resume()
        if any(not m.alive() for m in self.members):
            try:
                self.start()
            except EtcdError:
                pass

    def pids(self):
        return [m.proc.pid for m in self.members if m.alive()]

    def stop(self):
        """Kills every member by pid (SIGCONT first for a paused one is not needed: SIGKILL
        ends a stopped process)."""
        for m in self.members:
            m.kill()
