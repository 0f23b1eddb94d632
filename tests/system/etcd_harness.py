"""Helpers for the system tests of orderd's etcd coordination mode (Python 3 stdlib only).

Builds on harness.py (Session, Node, wait_until, shard_of, ...):
  * Etcd: a private etcd (/usr/bin/etcd, Debian's etcd-server; env ORDERMESH_ETCD_BIN overrides)
    on 127.0.0.1 with free client and peer ports, its data dir under the session's temp dir,
    --unsafe-no-fsync and the default timings. start / kill (SIGKILL) / pause (SIGSTOP) /
    resume (SIGCONT) / restart (same data dir and ports) / stop (SIGTERM). Registered with the
    Session (session.extras), which ends it by pid whatever happens. A missing etcd binary is an
    error, never a skip.
  * SharedEtcd: one Etcd for every test of a test file that does not stop, pause or cut it;
    each test runs its cluster under its own --cluster name, so clusters never mix. Started on
    first use, ended (by pid) when the file's run ends.
  * TcpProxy: forwards a local port on 127.0.0.1 to etcd's client port (threads, stdlib
    sockets); cut() closes every connection and refuses new ones (or, with blackhole=True,
    accepts and holds them without forwarding a byte); heal() forwards again. Start one node
    with --etcd pointing at the proxy to cut that node alone off from etcd.
  * ClusterNode / EtcdCluster: nodes started with --cluster-host 127.0.0.1 --etcd URL
    --cluster NAME --lease-ttl TTL (and a fast --heartbeat-interval), one
    admin token; balanced() / members() / counts() read the etcd mode's cluster.status
    (primary, controller, incarnation, target).
  * cluster_tls(session, name, ca=...): the --tls-* flags of node `name`, its certificate made by
    scripts/gen-certs.sh into the session's temp dir (one cluster CA per session and `ca` dir);
    EtcdCluster starts every node with them (tls=False: --insecure-cluster instead).
  * gateway(), etcd_range(), ordermesh_keys(): etcd's v3 JSON gateway (base64 keys and values),
    to look at what orderd stored under /ordermesh/<cluster>/.

Everything reaches only 127.0.0.1; every loop and wait is bounded.
"""

import base64
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import harness as h
from harness import HOST, check, log

ETCD_BIN = os.environ.get("ORDERMESH_ETCD_BIN", "/usr/bin/etcd")
ETCD_READY_TIMEOUT = 20.0

# urllib honours http_proxy & co. from the environment: never for our loopback etcd.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def require_etcd():
    """The etcd binary's path; an AssertionError naming the package when it is missing."""
    if not (os.path.isfile(ETCD_BIN) and os.access(ETCD_BIN, os.X_OK)):
        raise AssertionError(f"etcd not found at {ETCD_BIN}: install Debian's etcd-server "
                             "(scripts/setup.sh does), or set ORDERMESH_ETCD_BIN")
    return ETCD_BIN


# ---------------------------------------------------------------------------------------------
# The v3 JSON gateway


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s or "").decode(errors="replace")


def prefix_end(prefix):
    """The range_end that selects every key starting with `prefix` (bytes)."""
    p = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    for i in range(len(p) - 1, -1, -1):
        if p[i] < 0xFF:
            p[i] += 1
            return bytes(p[:i + 1])
    return b"\0"


def gateway(url, path, body, timeout=5.0):
    """POSTs `body` (JSON) to etcd's gateway at url + path (e.g. /v3/kv/range); returns the
    decoded answer. Raises OSError (urllib.error.URLError is one) when etcd does not answer."""
    req = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with _OPENER.open(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def etcd_range(url, prefix, timeout=5.0, range_end=None):
    """Every key under `prefix` (or in [prefix, range_end)), decoded: [{key, value, lease,
    create_revision, mod_revision, version}] (ints as ints, 0 where the gateway left a field
    out)."""
    end = prefix_end(prefix) if range_end is None else range_end
    ans = gateway(url, "/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)}, timeout)
    out = []
    for kv in ans.get("kvs") or ():
        out.append({"key": unb64(kv.get("key")), "value": unb64(kv.get("value")),
                    "lease": int(kv.get("lease", 0)),
                    "create_revision": int(kv.get("create_revision", 0)),
                    "mod_revision": int(kv.get("mod_revision", 0)),
                    "version": int(kv.get("version", 0))})
    return out


def ordermesh_keys(url, cluster="default", timeout=5.0):
    """{key: record} of every key orderd keeps for `cluster` (under /ordermesh/<cluster>/)."""
    return {kv["key"]: kv for kv in etcd_range(url, f"/ordermesh/{cluster}/", timeout)}


def all_keys(url, timeout=5.0):
    """{key: record} of every key in the etcd."""
    return {kv["key"]: kv for kv in etcd_range(url, b"\0", timeout, range_end=b"\0")}


# ---------------------------------------------------------------------------------------------
# Etcd


class Etcd:
    """One private single-member etcd; restartable on the same data dir and ports."""

    def __init__(self, session, name="etcd"):
        require_etcd()
        self.session = session
        self.name = name
        self.data_dir = session.dir / f"{name}-data"
        self.client_port = None
        self.peer_port = None
        self.token = "ordermesh-test-" + secrets.token_hex(6)
        self.proc = None
        self.starts = 0
        self.log_file = None
        self.paused = False
        session.extras.append(self)

    def __repr__(self):
        return f"Etcd({self.name}, {self.url}, pid {self.proc.pid if self.proc else None})"

    @property
    def url(self):
        return f"http://{HOST}:{self.client_port}"

    def command(self):
        peer = f"http://{HOST}:{self.peer_port}"
        return [ETCD_BIN, "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{self.name}={peer}",
                "--initial-cluster-token", self.token, "--unsafe-no-fsync",
                "--logger", "zap", "--log-outputs", "stderr"]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _launch(self):
        self.starts += 1
        self.log_file = self.session.dir / f"{self.name}.{self.starts}.log"
        with open(self.log_file, "wb") as out:
            self.proc = subprocess.Popen(h._launcher() + self.command(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out, env=h.clean_env(),
                                         close_fds=True)
        self.paused = False

    def start(self, timeout=ETCD_READY_TIMEOUT):
        """Starts etcd and waits until it answers a range request. The first start picks free
        ports (fresh ones if etcd exits while starting, e.g. a port was taken meanwhile); later
        starts keep them, so every --etcd URL handed out stays right."""
        check(not self.alive(), f"{self.name} is already running")
        first = self.client_port is None
        for attempt in range(3 if first else 1):
            if first:
                self.client_port = h.free_port()
                self.peer_port = h.free_port()
                while self.peer_port == self.client_port:
                    self.peer_port = h.free_port()
            self._launch()
            if self.wait_ready(timeout):
                log(f"{self.name} up at {self.url} (pid {self.proc.pid}, start {self.starts})")
                return self
            if self.alive():
                break  # running but not answering: report, do not retry
            if first:
                shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-made member dir
        self.dump_logs()
        code = self.proc.poll() if self.proc else None
        self.close()
        raise AssertionError(f"{self.name} did not answer within {timeout:.0f}s at {self.url} "
                             f"(exit code {code}); see its log above")

    def ready(self, timeout=2.0):
        try:
            ans = gateway(self.url, "/v3/kv/range", {"key": b64("/ordermesh-probe")}, timeout)
            return "header" in ans
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout=ETCD_READY_TIMEOUT):
        """True once etcd answers a range request; False if it exited or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.1)
        return False

    def _signal(self, sig):
        check(self.alive(), f"{self.name} is not running")
        self.proc.send_signal(sig)  # only the pid we started

    def kill(self, timeout=10.0):
        """SIGKILL (by pid); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(timeout=timeout)
        self.paused = False
        log(f"{self.name} killed (exit {code})")
        return code

    def pause(self):
        self._signal(signal.SIGSTOP)
        self.paused = True
        log(f"{self.name} paused (SIGSTOP)")

    def resume(self):
        self._signal(signal.SIGCONT)
        self.paused = False
        log(f"{self.name} resumed (SIGCONT)")

    def restart(self, timeout=ETCD_READY_TIMEOUT):
        """Kills it if running, then starts it again on the same data dir and ports."""
        if self.alive():
            self.kill()
        return self.start(timeout)

    def stop(self, timeout=10.0):
        """SIGTERM (SIGCONT first if paused), SIGKILL if it has not exited within `timeout`."""
        if not self.alive():
            return self.proc.poll() if self.proc else None
        if self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def close(self):
        """Session cleanup: SIGKILL by pid (works on a stopped process too)."""
        if self.alive():
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.SubprocessError):
                pass

    def dump_logs(self, lines=30):
        if self.log_file and Path(self.log_file).exists():
            text = Path(self.log_file).read_text(errors="replace").splitlines()
            log(f"---- last {min(lines, len(text))} lines of {Path(self.log_file).name} ----")
            for line in text[-lines:]:
                log("  " + line[:300])


class SharedEtcd:
    """One private etcd for the tests of one file (those that leave etcd itself alone): saves
    starting an etcd per test. Use as a context manager around harness.main(); get() starts it
    on first use (again if it died) and cluster_name() hands out a fresh --cluster name per
    test, so each test sees only its own keys under /ordermesh/<name>/. The etcd runs in a
    Session of its own, which ends it by pid (SIGKILL) on close()."""

    def __init__(self, name="shared-etcd"):
        self.name = name
        self.session = None
        self.etcd = None
        self.used = 0

    def get(self, session=None):
        """The running shared etcd. With `session` (a test's), its log is dumped with the
        test's logs if that test fails; the test's end does not stop it."""
        if self.etcd is None or not self.etcd.alive() or self.etcd.paused:
            if self.session is None:
                self.session = h.Session(self.name)
            if self.etcd is None:
                self.etcd = Etcd(self.session)
                self.etcd.start()
            else:
                self.etcd.restart()
        if session is not None:
            session.extras.append(_Borrowed(self.etcd))
        return self.etcd

    def cluster_name(self, tag):
        """A --cluster name used by no earlier test of this file: <tag>-<k>."""
        self.used += 1
        return f"{tag}-{self.used}"

    def close(self):
        if self.session is not None:
            self.session.close()
            self.session = None
            self.etcd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Borrowed:
    """A shared etcd in a test's Session.extras: logs dumped on failure, never closed there."""

    def __init__(self, etcd):
        self.etcd = etcd

    def __repr__(self):
        return f"shared {self.etcd!r}"

    def dump_logs(self, lines=30):
        self.etcd.dump_logs(lines)

    def close(self):
        pass


# ---------------------------------------------------------------------------------------------
# TcpProxy


class TcpProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port>, one thread per connection, at most
    `max_conns` connections at once (more are closed at once). cut(): every connection is reset
    and the listening socket closed, so new connections are refused; cut(blackhole=True): the
    port keeps accepting, but nothing is forwarded either way (connections hang, as across a
    partition). heal(): forwarding again (the port is the same). Every thread ends when the
    proxy is closed (the Session does) or after `max_life` seconds."""

    POLL = 0.1

    def __init__(self, session, target_port, target_host=HOST, max_conns=64, max_life=3600.0,
                 name="proxy"):
        self.session = session
        self.name = name
        self.target = (target_host, target_port)
        self.max_conns = max_conns
        self.deadline = time.monotonic() + max_life
        self.lock = threading.Lock()
        self.conns = set()        # client sockets being served
        self.upstreams = set()    # their connections to the target
        self.mode = None          # None (forwarding), "refuse" or "blackhole"
        self.closed = False
        self.accepted = 0
        self.dropped = 0
        self.port = None
        self.listener = None
        self._open_listener()
        self.thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept",
                                       daemon=True)
        self.thread.start()
        session.extras.append(self)

    def __repr__(self):
        return f"TcpProxy({self.name}, :{self.port} -> :{self.target[1]}, mode {self.mode})"

    @property
    def url(self):
        return f"http://{HOST}:{self.port}"

    def _open_listener(self):
        for _ in range(50):  # bounded: the port may be briefly busy when re-opened
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, self.port or 0))
            except OSError:
                s.close()
                time.sleep(0.1)
                continue
            s.listen(32)
            s.settimeout(self.POLL)
            self.port = s.getsockname()[1]
            self.listener = s
            return
        raise AssertionError(f"{self.name}: cannot listen on {HOST}:{self.port}")

    def _close_listener(self):
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # refuse at once, wake accept()
            except OSError:
                pass
            self.listener.close()
            self.listener = None

    def _live(self):
        return not self.closed and time.monotonic() < self.deadline

    def _accept_loop(self):
        while self._live():
            lst = self.listener
            if lst is None:
                time.sleep(self.POLL)
                continue
            try:
                cs, _ = lst.accept()
            except socket.timeout:
                continue
            except OSError:
                time.sleep(self.POLL)  # closed by cut(): wait for heal()
                continue
            with self.lock:
                full = len(self.conns) >= self.max_conns
                if full or self.mode == "refuse" or not self._live():
                    self.dropped += 1
                    _reset(cs)
                    continue
                self.accepted += 1
                self.conns.add(cs)
            threading.Thread(target=self._serve, args=(cs,), name=f"{self.name}-conn",
                             daemon=True).start()

    def _serve(self, cs):
        up = None
        try:
            # a connection accepted while blackholed waits (bounded) before reaching the target
            while self.mode == "blackhole" and self._live() and cs in self.conns:
                time.sleep(self.POLL)
            if not self._live() or cs not in self.conns or self.mode == "refuse":
                return
            try:
                up = socket.create_connection(self.target, timeout=2.0)
            except OSError:
                return
            with self.lock:
                if cs not in self.conns:
                    _reset(up)
                    return
                self.upstreams.add(up)
            self._pump(cs, up)
        finally:
            with self.lock:
                self.conns.discard(cs)
                if up is not None:
                    self.upstreams.discard(up)
            for s in (cs, up):
                if s is not None:
                    _reset(s)

    def _pump(self, cs, up):
        peer = {cs: up, up: cs}
        while self._live() and cs in self.conns:
            if self.mode == "blackhole":
                time.sleep(self.POLL)  # hold both ends, forward nothing
                continue
            try:
                ready, _, _ = select.select([cs, up], [], [], self.POLL)
            except (OSError, ValueError):
                return
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    peer[s].sendall(data)
                except OSError:
                    return

    def cut(self, blackhole=False):
        """Cuts the path: resets every connection and refuses new ones; or, with blackhole,
        holds every connection (old and new) without forwarding a byte."""
        with self.lock:
            self.mode = "blackhole" if blackhole else "refuse"
            if not blackhole:
                self._close_listener()
                for s in list(self.conns) + list(self.upstreams):
                    _reset(s)
                self.conns.clear()
                self.upstreams.clear()
        log(f"{self.name}: cut ({self.mode}) :{self.port} -> :{self.target[1]}")

    def heal(self):
        """Forwards again: held connections resume, new ones are accepted (same port)."""
        with self.lock:
            if self.listener is None and not self.closed:
                self._open_listener()
            self.mode = None
        log(f"{self.name}: healed :{self.port} -> :{self.target[1]}")

    def connections(self):
        with self.lock:
            return len(self.conns)

    def close(self):
        with self.lock:
            self.closed = True
            self._close_listener()
            for s in list(self.conns) + list(self.upstreams):
                _reset(s)
            self.conns.clear()
            self.upstreams.clear()
        self.thread.join(timeout=2.0)


def _reset(s):
    """Closes `s` with an RST (SO_LINGER 0), as a cut connection would end."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Mutual TLS on the cluster plane

GEN_CERTS = Path(__file__).resolve().parents[2] / "scripts" / "gen-certs.sh"


def cluster_tls(session, name, ca="certs"):
    """The --tls-cert/--tls-key/--tls-ca flags of node `name`: a certificate (CN=name) of the
    CA in session.dir/<ca>, made on first use by scripts/gen-certs.sh (the CA too)."""
    d = session.dir / ca
    if not (d / f"{name}.pem").exists():
        p = subprocess.run(["bash", str(GEN_CERTS), str(d), name], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        check(p.returncode == 0, f"gen-certs.sh {d} {name} failed: {p.stderr.strip()[-400:]}")
    return ["--tls-cert", str(d / f"{name}.pem"), "--tls-key", str(d / f"{name}.key"),
            "--tls-ca", str(d / "ca.pem")]


# ---------------------------------------------------------------------------------------------
# A cluster coordinated through etcd

_ETCD_MODE = {}


def require_etcd_mode(orderd=None):
    """Fails clearly when `orderd` (default: the one under test) has no --etcd flag."""
    orderd = str(orderd or h.ARGS.orderd)
    if orderd not in _ETCD_MODE:
        try:
            p = subprocess.run([orderd, "--help"], capture_output=True, text=True, timeout=20,
                               stdin=subprocess.DEVNULL, env=h.clean_env())
            _ETCD_MODE[orderd] = "--etcd" in p.stdout + p.stderr
        except (OSError, subprocess.SubprocessError):
            _ETCD_MODE[orderd] = False
    check(_ETCD_MODE[orderd], f"{orderd} has no --etcd flag: built without the etcd "
          "coordination mode")



class ClusterNode(h.Node):
    """An orderd of a cluster coordinated through etcd: --cluster-host 127.0.0.1 plus the
    cluster's flags (--etcd URL --cluster NAME --lease-ttl TTL, the timing flags and any
    extra ones)."""

    def __init__(self, session, name, cluster_args=(), **kw):
        super().__init__(session, name=name, **kw)
        self.cluster_args = list(cluster_args)

    def command(self):
        return super().command() + ["--cluster-host", HOST] + self.cluster_args

    def log_text(self):
        """This node's log file of its current (latest) start."""
        return Path(self.log_file).read_text(errors="replace") if self.log_file else ""

    def all_logs(self):
        """The log files of every start of this node, oldest first."""
        return [self.session.dir / f"{self.name}.{i}.log" for i in range(1, self.starts + 1)]


class EtcdCluster:
    """ClusterNodes started with --etcd URL --cluster NAME --lease-ttl TTL and one admin token;
    default --heartbeat-interval 200ms (a dead peer's connection is dropped fast in tests). A
    node may get its own --etcd URL (a TcpProxy's) through add(etcd_url=...). Every node has a
    certificate of the session's cluster CA (cluster_tls), or with tls=False
    --insecure-cluster."""

    def __init__(self, session, etcd, name="t", lease_ttl="3s", extra_args=(),
                 heartbeat="200ms", replication_factor=1, tls=True):
        require_etcd_mode()
        self.session = session
        self.tls = tls
        self.etcd = etcd
        self.name = name
        self.lease_ttl = lease_ttl
        self.admin_token = "adm-" + secrets.token_hex(12)
        # A cluster's default replication factor is 3; these tests ask for theirs explicitly
        # (1: the shard moves of etcd_cluster_test), unless extra_args say it or
        # replication_factor is None (orderd's default).
        rf = [] if "--replication-factor" in extra_args or replication_factor is None else \
            ["--replication-factor", str(replication_factor)]
        self.cluster_args = ["--heartbeat-interval", heartbeat] + list(extra_args) + rf
        self.nodes = []

    def etcd_args(self, url=None):
        return ["--etcd", url or self.etcd.url, "--cluster", self.name,
                "--lease-ttl", self.lease_ttl]

    def security_args(self, name):
        """The cluster-plane flags of node `name`: its TLS flags, or --insecure-cluster; none
        with tls="given" (the test passes its own --tls-* flags, e.g. for an https etcd)."""
        if self.tls == "given":
            return []
        return cluster_tls(self.session, name) if self.tls else ["--insecure-cluster"]

    def node_args(self, name, url=None):
        """Every cluster flag of node `name`: timings, etcd, cluster-plane security."""
        return self.cluster_args + self.etcd_args(url) + self.security_args(name)

    def add(self, start=True, timeout=45.0, etcd_url=None, extra_args=(), name=None):
        """A new node (n<k+1> unless named) joining by itself through etcd."""
        name = name or f"n{len(self.nodes) + 1}"
        node = ClusterNode(self.session, name,
                           cluster_args=self.node_args(name, etcd_url) + list(extra_args),
                           admin_token=self.admin_token)
        self.nodes.append(node)
        if start:
            node.start(timeout)
        return node

    def start(self, n, balance_timeout=90.0, timeout=45.0, prepare=None):
        """n new nodes launched together, each then waited for (one that exited while
        starting, e.g. because a port was taken meanwhile, is started again on fresh ports);
        returns the status once the cluster is balanced. `prepare(node)`, if given, runs on
        each new node before its launch (e.g. to add flags)."""
        new = [self.add(start=False) for _ in range(n)]
        for node in new:
            if prepare:
                prepare(node)
        taken = set()
        for node in new:
            while node.port is None or {node.port, node.cluster_port} & taken or \
                    node.port == node.cluster_port:
                node.port, node.cluster_port = h.free_port(), h.free_port()
            taken |= {node.port, node.cluster_port}
            node._launch()
        for node in new:
            if node.wait_ready(timeout):
                continue
            if node.alive():
                node.dump_logs()
                raise AssertionError(f"orderd {node.name} did not answer within {timeout:.0f}s")
            node.start(timeout)
        return self.wait_balanced(timeout=balance_timeout)

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def admin(self, node, timeout=15.0):
        return h.Client(node.port, timeout=timeout, token=self.admin_token)

    def status(self, node, timeout=5.0):
        """cluster.status of `node` (its result), or None if it does not answer in time."""
        try:
            with h.Client(node.port, timeout=timeout) as c:
                r = c.request("cluster.status", {})
                return r.get("result") if r.get("ok") else None
        except (OSError, ConnectionError, AssertionError, ValueError):
            return None

    # -- reading cluster.status in etcd mode ----------------------------------------------

    @staticmethod
    def owners(status):
        """shard -> primary (the etcd mode's name; `owner` is its alias)."""
        return {s["shard"]: s.get("primary", s.get("owner")) for s in status.get("shards", [])}

    @staticmethod
    def counts(status):
        c = {}
        for p in EtcdCluster.owners(status).values():
            c[p] = c.get(p, 0) + 1
        return c

    @staticmethod
    def members(status):
        """node_id -> member record."""
        return {m["node_id"]: m for m in status.get("members", [])}

    @staticmethod
    def moving(status):
        """shard -> target of every shard with a move in flight."""
        return {s["shard"]: s["target"] for s in status.get("shards", []) if s.get("target")}

    def owner_of(self, status, kind, ident):
        return self.owners(status).get(h.shard_of(kind, ident, status["shard_count"]))

    def statuses(self, nodes):
        """[status of each node], or None if one of them does not answer."""
        out = []
        for n in nodes:
            st = self.status(n)
            if st is None:
                return None
            out.append(st)
        return out

    def balanced(self, names=None):
        """The status of the first node when every node in `names` (default: every running
        node) answers in etcd mode, lists exactly those as members (all up), is connected to
        every other member (`unreachable_from_here` empty: until then it answers `unavailable`
        for what it would forward), names the same controller among them, has no move in
        flight, and all agree on a shard map in which every one of them leads between floor
        and ceil(shards / len(names)) shards; else None."""
        live = [n for n in self.nodes if n.alive()] if names is None else \
            [self.node(x) for x in names]
        want = sorted(n.name for n in live)
        first = None
        for n in live:
            st = self.status(n)
            if st is None or st.get("coordination") != "etcd":
                return None
            ms = self.members(st)
            if sorted(ms) != want or any(m.get("state") != "up" for m in ms.values()):
                return None
            if st.get("controller") not in want or self.moving(st):
                return None
            if st.get("unreachable_from_here"):
                return None
            counts = self.counts(st)
            total = st["shard_count"]
            lo, hi = total // len(want), -(-total // len(want))
            if len(self.owners(st)) != total or set(counts) - set(want) or \
                    any(not lo <= counts.get(x, 0) <= hi for x in want):
                return None
            if first is None:
                first = st
            elif self.owners(first) != self.owners(st) or \
                    first.get("controller") != st.get("controller"):
                return None
        return first

    def wait_balanced(self, names=None, timeout=90.0):
        return h.wait_until(lambda: self.balanced(names), timeout, 0.2,
                            f"the cluster {names or ''} to be balanced")

    def wait_members(self, observers, want, timeout=30.0, what=None):
        """Until every observer (nodes) lists exactly the members `want` (names); returns
        {observer name: status}."""
        want = sorted(want)

        def seen():
            out = {}
            for n in observers:
                st = self.status(n)
                if st is None or sorted(self.members(st)) != want:
                    return None
                out[n.name] = st
            return out
        return h.wait_until(seen, timeout, 0.2, what or
                            f"{[n.name for n in observers]} to list exactly members {want}")

    def wait_controller(self, observers, among, timeout=30.0, what=None):
        """Until every observer names the same controller, one of `among` (names); returns it."""
        def agreed():
            sts = self.statuses(observers)
            if sts is None:
                return None
            cs = {st.get("controller") for st in sts}
            return cs.pop() if len(cs) == 1 and cs <= set(among) else None
        return h.wait_until(agreed, timeout, 0.2,
                            what or f"{[n.name for n in observers]} to agree on a controller "
                            f"among {sorted(among)}")

    def keys(self):
        """{key: record} of this cluster's keys in etcd (under /ordermesh/<name>/)."""
        return ordermesh_keys(self.etcd.url, self.name)
