#!/usr/bin/env python3
"""scripts/bench.sh's runner (Python 3 stdlib only): ordermesh (1 and 3 nodes), PostgreSQL 15
(pgbench with scripts/bench/place_pay.sql) and RocksDB's db_bench on this machine, durability on
everywhere; runs alternate between systems and repeat; medians, ratios, CPU / synced writes /
bytes per order; a plain-text table on stdout and docs/BENCHMARKS.md.

Everything it starts runs on 127.0.0.1 with free ports and data under one temp directory; it
stops exactly the processes it started (by pid) on exit, error or signal. The 3-node cluster is
coordinated through a private etcd it starts for it (Debian's /usr/bin/etcd, env
ORDERMESH_ETCD_BIN; fsync on, as everything measured here); one node runs alone (no etcd).

Replicated pair (issue 12), selected with --systems: postgresql-sync (PostgreSQL with one
synchronous streaming standby on this machine: a commit is acknowledged once it is flushed in two
data dirs, as it would be on two disks) and ordermesh-3-rf3 (the 3-node cluster with
--replication-factor 3 --min-insync 2). They are compared with each other, also at half of
postgresql-sync's saturation throughput."""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOST = "127.0.0.1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ETCD_BIN = os.environ.get("ORDERMESH_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
LEASE_TTL = "3s"  # orderd --lease-ttl (its default)
CLK_TCK = os.sysconf("SC_CLK_TCK")

PROCS = []  # every Popen we started, stopped in reverse order by cleanup()

# --systems / --skip take these names or their short aliases; runs alternate in this order.
SYSTEMS = ("postgresql", "ordermesh-1", "ordermesh-3", "postgresql-sync", "ordermesh-3-rf3",
           "ordermesh-3-insecure", "db_bench")
ALIASES = {"pg": "postgresql", "om1": "ordermesh-1", "om3": "ordermesh-3",
           "pgsync": "postgresql-sync", "om3rf3": "ordermesh-3-rf3",
           "om3plain": "ordermesh-3-insecure"}
DEFAULT_SYSTEMS = "pg,om1,om3,db_bench"  # the replicated pair (issue 12) is opt-in
# orderd flags of ordermesh-3-rf3: every write on all three nodes' disks when they are in sync,
# acknowledged once it is on at least two.
RF3_FLAGS = ["--replication-factor", "3", "--min-insync", "2"]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(1)


def tail(path, lines=20):
    """The last lines of a log file (for error messages: the run's directory is removed at exit)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stop(proc, sig=signal.SIGTERM, timeout=20):
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        except OSError:
            pass


def cleanup():
    while PROCS:
        p, sig = PROCS.pop()
        stop(p, sig)


def on_signal(signum, frame):
    log(f"signal {signum}: stopping what was started")
    cleanup()
    sys.exit(128 + signum)


def free_ports(count):
    """`count` distinct free ports on HOST."""
    ports = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def start(cmd, logfile, stop_signal=signal.SIGTERM, env=None):
    with open(logfile, "ab") as out:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                             close_fds=True)
    PROCS.append((p, stop_signal))
    return p


# ---- /proc counters -------------------------------------------------------------------------


def cpu_seconds(pid, children=False):
    """utime+stime of a process (and of its waited-for children with children=True)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLK_TCK


def child_pids(pid):
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def write_bytes(pid):
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def block_device(path):
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    try:
        return Path(f"/sys/dev/block/{dev}").resolve().name
    except OSError:
        return None


def device_written(dev):
    """Bytes written to block device `dev` since boot (/proc/diskstats, 512-byte sectors)."""
    if not dev:
        return 0
    for line in Path("/proc/diskstats").read_text().splitlines():
        f = line.split()
        if len(f) > 9 and f[2] == dev:
            return int(f[9]) * 512
    return 0


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---- ordermesh ------------------------------------------------------------------------------


def om_request(port, op, args=None, token=None, timeout=5.0):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        req = {"id": 1, "op": op, "args": args or {}}
        if token:
            req["token"] = token
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])


def status_between_runs(port, attempts=3, timeout=30.0):
    """cluster.status of a node between two runs. A slow answer is reported, not fatal: a full
    run once died on a 5 s timeout here (not reproduced since), so wait longer, retry, and say
    how long it took, so that a stall shows up in the log instead of ending the run."""
    for i in range(attempts):
        t0 = time.monotonic()
        try:
            reply = om_request(port, "cluster.status", timeout=timeout)
        except (OSError, ConnectionError, ValueError) as e:
            log(f"warning: cluster.status on port {port}: {type(e).__name__} after "
                f"{time.monotonic() - t0:.1f} s (attempt {i + 1}/{attempts})")
            continue
        took = time.monotonic() - t0
        if took > 1.0:
            log(f"warning: cluster.status on port {port} took {took:.1f} s")
        return reply["result"]
    die(f"port {port}: no cluster.status answer in {attempts} attempts of {timeout:g} s")


class Etcd:
    """One private etcd member on 127.0.0.1 (free client and peer ports), data in `directory`,
    started like any other process here (PROCS: stopped by pid, SIGTERM, at the end). Default
    fsync: no --unsafe-no-fsync, the benchmark claims durability everywhere. Etcd's own defaults
    otherwise (100 ms heartbeat, 1 s election)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.proc = None
        self.url = None

    def start(self, limit=30):
        if not os.access(ETCD_BIN, os.X_OK):
            die(f"etcd not installed ({ETCD_BIN}; package etcd-server, or env ORDERMESH_ETCD_BIN)")
        self.dir.mkdir(parents=True)
        cport, pport = free_ports(2)
        self.url, peer = f"http://{HOST}:{cport}", f"http://{HOST}:{pport}"
        cmd = [ETCD_BIN, "--name", "e1", "--data-dir", str(self.dir / "data"),
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"e1={peer}",
               "--initial-cluster-token", "ordermesh-bench-" + secrets.token_hex(6),
               "--initial-cluster-state", "new", "--logger", "zap", "--log-outputs", "stderr"]
        # etcd reads ETCD_* from the environment: none of the caller's
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        self.proc = start(cmd, self.dir / "etcd.log", env=env)
        # /health answers {"health":"true"} once the member has a leader; urllib must not use
        # an http_proxy of the environment for 127.0.0.1
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if self.proc.poll() is not None:
                die(f"etcd exited while starting (exit {self.proc.returncode}, see "
                    f"{self.dir}/etcd.log)")
            try:
                with opener.open(self.url + "/health", timeout=2) as r:
                    if json.loads(r.read().decode()).get("health") == "true":
                        log(f"etcd: up, pid {self.proc.pid}, {self.url}")
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        die(f"etcd did not answer at {self.url} within {limit}s (see {self.dir}/etcd.log)")


class Ordermesh:
    """n orderd on loopback, one data dir each. One node runs alone (local coordination, no
    etcd); more nodes form a cluster through a private etcd (Etcd, under the cluster's dir):
    `--etcd URL --cluster bench-<random> --lease-ttl 3s`, all started at once.

    A cluster's nodes run mutual TLS on the cluster plane (certificates of a CA made for the run
    by scripts/gen-certs.sh, under the cluster's dir); tls=False (ordermesh-3-insecure, to
    measure what TLS costs) runs them with --insecure-cluster.

    `extra` are more orderd flags for every node (`env` more environment); with replication_factor > 1 (ordermesh-3-rf3:
    RF3_FLAGS) the run also waits until every shard has that many replicas, all in its ISR.
    `peers` is which comparison the system belongs to ("single" or "replicated"): the open-loop
    rates derived from a PostgreSQL system's saturation are run by the systems of its group."""

    def __init__(self, args, root, n, name=None, extra=(), replication_factor=1,
                 peers="single", tls=True, env=None):
        self.args, self.n = args, n
        self.env = dict(env or {})  # more environment for every orderd (scripts/bench/ab.py)
        self.tls = tls
        self.name = name or f"ordermesh-{n}"
        self.extra = list(extra)
        self.replication_factor = replication_factor
        self.peers = peers
        self.dir = root / self.name
        self.token = "bench-" + secrets.token_hex(16)
        self.cluster = "bench-" + secrets.token_hex(4)
        self.etcd = Etcd(self.dir / "etcd") if n > 1 else None
        self.nodes = []  # (proc, client port)
        self.stderr = {}  # pid -> its stderr file

    def start(self):
        self.dir.mkdir(parents=True)
        if self.etcd is not None:
            self.etcd.start()
        ports = free_ports(2 * self.n)  # all at once: distinct, whoever binds first
        for i in range(1, self.n + 1):
            cport, kport = ports[2 * i - 2], ports[2 * i - 1]
            d = self.dir / f"n{i}"
            d.mkdir()
            cmd = [self.args.orderd, "--node-id", f"n{i}", "--data-dir", str(d / "data"),
                   "--client-host", HOST, "--client-port", str(cport), "--cluster-host", HOST,
                   "--cluster-port", str(kport), "--pwhash", "fast", "--log-file",
                   str(d / "orderd.log")]
            # orderbench's setup logs in every user (1000 by default) from this one address:
            # lift the per-address password limits (docs/SECURITY.md). An orderd from before
            # them (scripts/bench/ab.py against an old build) has neither flag nor limit.
            if self.has_password_limits():
                cmd += ["--login-rate-per-address", "0", "--password-queue-per-address", "256"]
            if self.etcd is not None:
                cmd += ["--etcd", self.etcd.url, "--cluster", self.cluster,
                        "--lease-ttl", LEASE_TTL]
                if self.replication_factor == 1:  # a cluster's default is 3
                    cmd += ["--replication-factor", "1"]
                cmd += self.tls_flags(f"n{i}")
            cmd += self.extra
            env = dict(os.environ, **self.env, ORDERMESH_ADMIN_TOKEN=self.token)
            p = start(cmd, d / "orderd.stderr", env=env)
            self.nodes.append((p, cport))
            self.stderr[p.pid] = d / "orderd.stderr"
        for p, cport in self.nodes:
            self.wait_answers(p, cport)
        self.wait_balanced()
        log(f"{self.name}: up, pids {' '.join(str(p.pid) for p, _ in self.nodes)}, client ports "
            f"{' '.join(str(c) for _, c in self.nodes)}"
            + (f", cluster {self.cluster} on etcd {self.etcd.url}" if self.etcd else "")
            + (f", orderd flags {' '.join(self.extra)}" if self.extra else ""))

    def tls_flags(self, name):
        """The cluster-plane flags of node `name`: its certificate (made here), or none."""
        if not self.tls:
            return ["--insecure-cluster"]
        certs = self.dir / "certs"
        r = subprocess.run(["bash", str(REPO / "scripts" / "gen-certs.sh"), str(certs), name],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            die(f"{self.name}: gen-certs.sh failed: {r.stderr.strip()[-400:]}")
        return ["--tls-cert", str(certs / f"{name}.pem"), "--tls-key", str(certs / f"{name}.key"),
                "--tls-ca", str(certs / "ca.pem")]

    def wait_answers(self, p, port, limit=60):
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if p.poll() is not None:
                # its stderr says why (an unknown flag: exit 2); the run's dir goes at exit
                die(f"{self.name}: orderd (client port {port}) exited with {p.returncode} while "
                    f"starting; its stderr:\n{tail(self.stderr[p.pid])}")
            try:
                if "ok" in om_request(port, "cluster.status", timeout=2):
                    return
            except (OSError, ValueError, ConnectionError):
                pass
            time.sleep(0.2)
        die(f"{self.name}: orderd on port {port} did not answer within {limit}s")

    def settled(self, st):
        """Whether one node's cluster.status shows the cluster settled: every node an `up`
        member, every shard led by one of them. Through etcd also: the node's lease valid, a
        controller among them, no shard move pending, every node leading shards and the counts
        within one of each other (the controller's fixed point). Alone: the node owns all.
        With replication_factor > 1 also: every shard has that many `replicas`, all of them in
        its `isr` (cluster.status, docs/PROTOCOL.md), so no run starts while replicas catch up."""
        want = {f"n{i}" for i in range(1, self.n + 1)}
        up = {m["node_id"] for m in st["members"] if m.get("state") == "up"}
        counts = {}
        for s in st["shards"]:
            o = s.get("owner") or s.get("primary")
            counts[o] = counts.get(o, 0) + 1
        if up != want or set(counts) != want or sum(counts.values()) != st["shard_count"]:
            return False
        if self.etcd is None:
            return True
        return (st.get("coordination") == "etcd" and bool(st.get("lease_valid")) and
                st.get("controller") in want and not any(s.get("target") for s in st["shards"])
                and max(counts.values()) - min(counts.values()) <= 1 and self.replicated(st))

    def replicated(self, st):
        if self.replication_factor <= 1:
            return True
        rf = self.replication_factor
        return all(len(set(s.get("replicas") or ())) >= rf and
                   set(s.get("replicas") or ()) <= set(s.get("isr") or ()) for s in st["shards"])

    def wait_balanced(self, limit=180):
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            ok = True
            for _, port in self.nodes:
                try:
                    st = om_request(port, "cluster.status", timeout=3)["result"]
                    ok = self.settled(st)
                except (OSError, ValueError, KeyError, TypeError, ConnectionError):
                    ok = False
                if not ok:
                    break
            if ok:
                return
            time.sleep(0.5)
        die(f"{self.name}: shards not balanced over {self.n} nodes within {limit}s"
            + (f" (or not every shard with {self.replication_factor} replicas, all in its ISR)"
               if self.replication_factor > 1 else ""))

    def has_password_limits(self):
        h = subprocess.run([self.args.orderd, "--help"], capture_output=True, text=True,
                           timeout=30)
        return "--login-rate-per-address" in h.stdout + h.stderr

    def hosts(self):
        return ",".join(f"{HOST}:{port}" for _, port in self.nodes)

    def counters(self):
        c = {"cpu_s": 0.0, "proc_write_bytes": 0, "synced_batches": 0, "writes": 0,
             "storage_bytes": 0}
        if self.etcd is not None:  # the cluster's coordination is part of its cost
            c["cpu_s"] += cpu_seconds(self.etcd.proc.pid)
            c["proc_write_bytes"] += write_bytes(self.etcd.proc.pid)
        for p, port in self.nodes:
            c["cpu_s"] += cpu_seconds(p.pid)
            c["proc_write_bytes"] += write_bytes(p.pid)
            st = status_between_runs(port)["storage"]
            c["synced_batches"] += st["synced_batches"]
            c["writes"] += st["writes"]
            c["storage_bytes"] += st["bytes"]
        return c

    def run(self, duration, warmup, rate=None, connections=None, inflight=1, tag=""):
        cmd = [self.args.orderbench, "--host", self.hosts(), "--admin-token", self.token,
               "--users", str(self.args.users), "--products", str(self.args.products),
               "--connections", str(connections or self.args.connections), "--inflight",
               str(inflight), "--duration", str(duration), "--warmup", str(warmup), "--seed",
               str(self.args.seed), "--threads", str(self.args.client_threads), "--json",
               "--quiet", "--workload", "place+pay", "--stock-rate", str(self.args.stock_rate)]
        if rate:
            cmd += ["--rate", str(rate), "--poisson"]  # Poisson arrivals, as pgbench -R
        before, cpu0 = self.counters(), children_cpu()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + 600)
        client_cpu = children_cpu() - cpu0
        if p.returncode != 0:
            die(f"orderbench failed ({p.returncode}): {p.stderr[-2000:]}")
        r = json.loads(p.stdout)
        after = self.counters()
        orders = r["ok"] + r["ok_after_end"] + r["warmup"]["ok"]
        lat = r["latency"]
        return {
            "system": self.name, "tag": tag, "rate": rate, "tput": r["throughput_ops_s"],
            "p50": lat["p50_ms"], "p99": lat["p99_ms"], "p999": lat["p999_ms"],
            "max": lat["max_ms"], "errors": r["errors"], "errors_by_code": r["errors_by_code"],
            "orders": orders,
            "cpu_per_order_ms": 1000 * (after["cpu_s"] - before["cpu_s"]) / max(orders, 1),
            "client_cpu_per_order_ms": 1000 * client_cpu / max(orders, 1),
            "synced_per_order": (after["synced_batches"] - before["synced_batches"]) /
            max(orders, 1),
            "writes_per_order": (after["writes"] - before["writes"]) / max(orders, 1),
            "bytes_per_order": (after["proc_write_bytes"] - before["proc_write_bytes"]) /
            max(orders, 1),
            "logical_bytes_per_order": (after["storage_bytes"] - before["storage_bytes"]) /
            max(orders, 1),
            "command": " ".join(cmd).replace(self.token, "<admin-token>"),
        }


# ---- PostgreSQL -----------------------------------------------------------------------------


class Postgres:
    """`postgresql`: one PostgreSQL 15 server on loopback, fsync on, synchronous_commit on, the
    shop's schema (schema.sql); place+pay through pgbench (place_pay.sql)."""
    name = "postgresql"
    peers = "single"  # see Ordermesh

    def __init__(self, args, root):
        self.args = args
        self.dir = root / self.name
        self.port = free_port()
        self.proc = None

    def as_pg(self, cmd):
        # postgres refuses to run as root: drop to nobody (exec, so the pid is postgres itself).
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + cmd

    def start_server(self, data, port, logfile, what):
        """Start `postgres -D data` (as nobody, stopped by pid with SIGINT: fast shutdown) and
        wait until it accepts connections on `port`."""
        proc = start(self.as_pg([str(PG_BIN / "postgres"), "-D", str(data)]), logfile,
                     stop_signal=signal.SIGINT)
        t0 = time.monotonic()
        while subprocess.run([str(PG_BIN / "pg_isready"), "-h", HOST, "-p", str(port)],
                             capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                die(f"{self.name}: {what} did not start; the end of its log:\n{tail(logfile)}")
            time.sleep(0.2)
        return proc

    def start_primary(self):
        self.dir.mkdir(parents=True)
        os.chmod(self.dir, 0o777)
        data = self.dir / "data"
        subprocess.run(self.as_pg([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                   "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, cwd="/")
        conf = {
            "listen_addresses": f"'{HOST}'", "port": self.port,
            "unix_socket_directories": f"'{self.dir}'", "fsync": "on",
            "synchronous_commit": "on", "full_page_writes": "on", "wal_sync_method": "fdatasync",
            "shared_buffers": "'512MB'", "max_connections": 200, "max_wal_size": "'8GB'",
            "checkpoint_timeout": "'30min'", "track_wal_io_timing": "on", "logging_collector": "off",
        }
        with open(data / "postgresql.conf", "a") as f:
            f.write("\n# scripts/bench.sh\n")
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        self.proc = self.start_server(data, self.port, self.dir / "postgres.log", "postgres")
        self.psql(["-v", f"users={self.args.users}", "-v", f"products={self.args.products}",
                   "-f", str(HERE / "schema.sql")])

    def start(self):
        self.start_primary()
        log(f"{self.name}: up, pid {self.proc.pid}, port {self.port}, "
            f"{self.psql(['-Atc', 'show server_version'])}")

    def psql(self, extra, port=None):
        p = subprocess.run([str(PG_BIN / "psql"), "-h", HOST, "-p", str(port or self.port), "-U",
                            "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"] + extra,
                           capture_output=True, text=True)
        if p.returncode != 0:
            die(f"psql failed: {p.stderr[-2000:]}")
        return p.stdout.strip()

    def counters(self):
        wal = self.psql(["-Atc", "select wal_sync, wal_write, wal_bytes, wal_records "
                         "from pg_stat_wal"]).split("|")
        cpu = cpu_seconds(self.proc.pid, children=True)
        for c in child_pids(self.proc.pid):
            cpu += cpu_seconds(c)
        return {"cpu_s": cpu, "wal_sync": int(wal[0]), "wal_write": int(wal[1]),
                "wal_bytes": int(wal[2])}

    def check(self):
        """Before and after every run: dies if the system is not what it claims to be; returns
        fields for the run's result. Nothing to check for one server."""
        return {}

    def extra_result(self, before, after, orders):
        return {}

    def run(self, duration, warmup, rate=None, connections=None, tag=""):
        logdir = Path(tempfile.mkdtemp(dir=self.dir, prefix="pgbench-"))
        clients = connections or self.args.connections
        cmd = [str(PG_BIN / "pgbench"), "-n", "-h", HOST, "-p", str(self.port), "-U", "postgres",
               "-f", str(HERE / "place_pay.sql"), "-D", f"users={self.args.users}", "-D",
               f"products={self.args.products}", "-c", str(clients), "-j",
               str(self.args.client_threads), "-T", str(int(round(duration + warmup))), "-l",
               "--log-prefix", str(logdir / "log"), "postgres"]
        if rate:
            cmd[-1:-1] = ["-R", str(rate)]
        checked = self.check()
        before, cpu0 = self.counters(), children_cpu()
        t0 = time.time()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=duration + warmup + 600)
        except subprocess.TimeoutExpired:
            die(f"{self.name}: pgbench did not end within {duration + warmup + 600:g} s "
                "(commits blocked?)")
        client_cpu = children_cpu() - cpu0
        if p.returncode != 0:
            die(f"pgbench failed ({p.returncode}): {p.stderr[-2000:]} {p.stdout[-2000:]}")
        time.sleep(0.5)  # the backends exit and the postmaster reaps them (cutime, cstime)
        after = self.counters()
        checked.update(self.check())  # still so at the end of the run
        # Per-transaction log: client tx_no latency_us script epoch_s epoch_us [lag]; with -R the
        # latency counts from the scheduled start. Keep those that ended in the window.
        start_w, end_w = t0 + warmup, t0 + warmup + duration
        lats, errors, total = [], 0, 0
        for f in logdir.iterdir():
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) < 6:
                    continue
                total += 1
                end = int(parts[4]) + int(parts[5]) / 1e6
                if parts[2] in ("failed", "serialization", "deadlock", "other"):
                    if start_w <= end <= end_w:
                        errors += 1
                    continue
                if start_w <= end <= end_w:
                    lats.append(int(parts[2]) / 1000.0)
        shutil.rmtree(logdir, ignore_errors=True)
        lats.sort()

        def pct(q):
            return lats[min(len(lats) - 1, max(0, int(-(-q * len(lats) // 100)) - 1))] \
                if lats else 0.0
        orders = total
        r = {
            "system": self.name, "tag": tag, "rate": rate, "tput": len(lats) / duration,
            "p50": pct(50), "p99": pct(99), "p999": pct(99.9), "max": lats[-1] if lats else 0,
            "errors": errors, "errors_by_code": {"failed": errors} if errors else {},
            "orders": orders,
            "cpu_per_order_ms": 1000 * (after["cpu_s"] - before["cpu_s"]) / max(orders, 1),
            "client_cpu_per_order_ms": 1000 * client_cpu / max(orders, 1),
            "synced_per_order": (after["wal_sync"] - before["wal_sync"]) / max(orders, 1),
            "writes_per_order": (after["wal_write"] - before["wal_write"]) / max(orders, 1),
            "bytes_per_order": (after["wal_bytes"] - before["wal_bytes"]) / max(orders, 1),
            "logical_bytes_per_order": None,
            "command": " ".join(cmd),
        }
        r.update(checked)
        r.update(self.extra_result(before, after, orders))
        return r


class PostgresSync(Postgres):
    """`postgresql-sync`, the like-for-like peer of a replicated ordermesh: the primary exactly
    as `postgresql` (same settings, schema and pgbench workload) plus ONE synchronous streaming
    standby on this machine. The standby is a pg_basebackup of the primary taken after the schema
    is loaded (-R: standby.signal and primary_conninfo, here with application_name=STANDBY; -X
    stream), with its own port and data dir under this system's dir, the primary's settings
    otherwise (fsync on). Once it streams, the primary gets synchronous_standby_names = STANDBY
    and reloads: with synchronous_commit = on, a commit returns only when its WAL is fsync'd on
    the primary and flushed by the standby: on two disks (here two data dirs on one disk, as for
    ordermesh-3-rf3's nodes). check() proves it before and after every run (pg_stat_replication
    on the primary: STANDBY streaming, sync_state `sync`) and dies otherwise. Both run as nobody
    and are stopped by pid, standby first.

    What the per-order columns count here:
    - CPU (primary + standby): utime+stime of both postmasters and their live children (the
      primary's backends and walsender; the standby's startup process, which replays the WAL,
      and its walreceiver), exited children through each postmaster's cutime/cstime.
    - bytes/order (primary + standby): the primary's pg_stat_wal.wal_bytes (WAL records
      generated) plus the WAL the standby received and flushed (difference of its
      pg_last_wal_receive_lsn(), so page headers included). WAL only on both, as `postgresql`.
    - synced/order: the PRIMARY's pg_stat_wal.wal_sync only. The standby's fsyncs are not
      counted: PostgreSQL 15's walreceiver keeps its WAL statistics to itself while it runs (the
      standby's pg_stat_wal stayed at 0 through a whole run), and nothing else counts them.
    The standby's share alone is in each result (raw JSON): standby_cpu_per_order_ms,
    standby_bytes_per_order."""
    name = "postgresql-sync"
    peers = "replicated"
    STANDBY = "bench_standby"

    def __init__(self, args, root):
        super().__init__(args, root)
        self.port, self.standby_port = free_ports(2)
        self.standby = None
        self.standby_log = self.dir / "standby.log"

    def start(self):
        # The primary with the schema, not yet synchronous (nothing to wait for while loading).
        self.start_primary()
        sdata = self.dir / "standby"
        conninfo = (f"host={HOST} port={self.port} user=postgres "
                    f"application_name={self.STANDBY}")
        p = subprocess.run(self.as_pg([str(PG_BIN / "pg_basebackup"), "-d", conninfo, "-D",
                                       str(sdata), "-R", "-X", "stream", "-c", "fast"]),
                           capture_output=True, text=True, cwd="/")
        if p.returncode != 0:
            die(f"{self.name}: pg_basebackup failed ({p.returncode}): {p.stderr[-2000:]}")
        auto = (sdata / "postgresql.auto.conf").read_text()
        if not (sdata / "standby.signal").exists() or \
                f"application_name={self.STANDBY}" not in auto:
            die(f"{self.name}: pg_basebackup -R wrote no standby.signal or no primary_conninfo "
                f"with application_name={self.STANDBY}:\n{auto}")
        # The copy carries the primary's postgresql.conf: a later line wins, so its own port.
        with open(sdata / "postgresql.conf", "a") as f:
            f.write(f"\n# scripts/bench.sh: {self.name}'s standby\nport = {self.standby_port}\n"
                    "hot_standby = on\n")
        self.standby = self.start_server(sdata, self.standby_port, self.standby_log, "standby")
        with open(self.dir / "data" / "postgresql.conf", "a") as f:
            f.write(f"# {self.name}: commits wait for the standby's flush\n"
                    f"synchronous_standby_names = '{self.STANDBY}'\n")
        self.psql(["-Atc", "select pg_reload_conf()"])
        self.check(limit=60)
        log(f"{self.name}: up, primary pid {self.proc.pid} port {self.port}, standby pid "
            f"{self.standby.pid} port {self.standby_port} ({self.STANDBY}: streaming, sync_state "
            f"sync), {self.psql(['-Atc', 'show server_version'])}")

    def check(self, limit=30):
        """Dies unless the primary runs synchronous_commit=on with synchronous_standby_names =
        STANDBY and pg_stat_replication shows STANDBY streaming with sync_state `sync` (waits up
        to `limit` s for the latter: a standby that just started or reconnected)."""
        settings = self.psql(["-Atc", "select current_setting('synchronous_commit') || '|' || "
                              "current_setting('synchronous_standby_names')"])
        if settings != f"on|{self.STANDBY}":
            die(f"{self.name}: the primary is not configured for synchronous replication "
                f"(synchronous_commit|synchronous_standby_names = {settings!r}, want "
                f"'on|{self.STANDBY}')")
        t0 = time.monotonic()
        while True:
            if self.standby.poll() is not None:
                die(f"{self.name}: the standby exited ({self.standby.returncode}); the end of its "
                    f"log:\n{tail(self.standby_log)}")
            rows = [r.split("|") for r in self.psql(
                ["-Atc", "select application_name, state, sync_state from pg_stat_replication"]
            ).splitlines()]
            if [self.STANDBY, "streaming", "sync"] in rows:
                return {"sync_state": "sync", "standby": self.STANDBY}
            if time.monotonic() - t0 > limit:
                seen = "; ".join(f"application_name={a} state={s} sync_state={y}"
                                 for a, s, y in rows) or "no standby connected"
                die(f"{self.name}: replication is not synchronous, refusing to measure: "
                    f"pg_stat_replication on the primary shows {seen} (want "
                    f"application_name={self.STANDBY} state=streaming sync_state=sync); the end "
                    f"of the standby's log:\n{tail(self.standby_log)}")
            time.sleep(0.5)

    def counters(self):
        c = super().counters()  # the primary's
        cpu = cpu_seconds(self.standby.pid, children=True)
        for ch in child_pids(self.standby.pid):
            cpu += cpu_seconds(ch)
        # WAL received and flushed by the standby (bytes since 0/0; never null on a streaming
        # standby). Its pg_stat_wal (wal_sync, wal_write) stays 0 while the walreceiver runs.
        flushed = self.psql(["-Atc", "select pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')"],
                            port=self.standby_port)
        s = {"standby_cpu_s": cpu, "standby_wal_bytes": int(float(flushed or 0))}
        c["cpu_s"] += s["standby_cpu_s"]
        c["wal_bytes"] += s["standby_wal_bytes"]
        c.update(s)
        return c

    def extra_result(self, before, after, orders):
        def per(key, scale=1):
            return scale * (after[key] - before[key]) / max(orders, 1)
        return {"standby_cpu_per_order_ms": per("standby_cpu_s", 1000),
                "standby_bytes_per_order": per("standby_wal_bytes")}


# ---- db_bench -------------------------------------------------------------------------------


def db_bench(args, root, threads, seconds):
    d = Path(tempfile.mkdtemp(dir=root, prefix=f"db_bench-{threads}-"))
    cmd = ["db_bench", "--benchmarks=fillrandom", "--sync=1", f"--threads={threads}",
           f"--duration={seconds}", "--num=100000000", "--value_size=100", f"--db={d}",
           "--disable_wal=0", "--compression_type=none"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300)
    shutil.rmtree(d, ignore_errors=True)
    m = re.search(r"fillrandom\s*:\s*([\d.]+) micros/op\s+(\d+) ops/sec", p.stdout)
    if p.returncode != 0 or not m:
        die(f"db_bench failed: {p.stdout[-1000:]} {p.stderr[-1000:]}")
    return {"system": f"db_bench-{threads}t", "tag": "fillrandom sync", "tput": float(m.group(2)),
            "micros_per_op": float(m.group(1)), "command": " ".join(cmd[:-3] + cmd[-2:])}


# ---- report ---------------------------------------------------------------------------------


def median(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(results):
    groups = {}
    for r in results:
        groups.setdefault((r["system"], r["tag"]), []).append(r)
    out = {}
    for k, rows in groups.items():
        s = {"n": len(rows), "runs": [round(r["tput"], 1) for r in rows]}
        for key in ("tput", "p50", "p99", "p999", "max", "errors", "cpu_per_order_ms",
                    "client_cpu_per_order_ms", "synced_per_order", "writes_per_order",
                    "bytes_per_order", "logical_bytes_per_order", "micros_per_op", "rate"):
            s[key] = median(rows, key)
        s["command"] = rows[0]["command"]
        out[k] = s
    return out


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def table(summary):
    head = ("system", "run", "n", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors",
            "CPU ms/order", "client CPU ms/order", "synced/order", "bytes/order")
    rows = [head]
    for (system, tag), s in summary.items():
        if system.startswith("db_bench"):
            continue
        rows.append((system, tag, str(s["n"]), fmt(s["tput"]), fmt(s["p50"], 2),
                     fmt(s["p99"], 2), fmt(s["p999"], 2), fmt(s["max"], 1), fmt(s["errors"], 0),
                     fmt(s["cpu_per_order_ms"], 3), fmt(s["client_cpu_per_order_ms"], 3),
                     fmt(s["synced_per_order"], 3), fmt(s["bytes_per_order"], 0)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(summary, half_rate, half_sync_rate=None):
    def get(system, tag, key):
        s = summary.get((system, tag))
        return s[key] if s else None
    out = []
    pg = get("postgresql", "saturation", "tput")
    for n in ("ordermesh-1", "ordermesh-3"):
        om = get(n, "saturation", "tput")
        if pg and om:
            out.append((f"{n} / postgresql throughput at saturation", om / pg,
                        "target >= 5" if n.endswith("1") else "target >= 3"))
        pg99, om99 = get("postgresql", "half-pg-rate", "p99"), get(n, "half-pg-rate", "p99")
        if pg99 and om99:
            out.append((f"{n} / postgresql p99 at {fmt(half_rate, 0)} ops/s (half of PG max)",
                        om99 / pg99, "target <= 1"))
    # The replicated pair (issue 12): every acknowledged write on at least two disks on both
    # sides. No target is set for it yet.
    pgs, om = get("postgresql-sync", "saturation", "tput"), get("ordermesh-3-rf3", "saturation",
                                                                 "tput")
    if pgs and om:
        out.append(("ordermesh-3-rf3 / postgresql-sync throughput at saturation", om / pgs, ""))
    pg99 = get("postgresql-sync", "half-pgsync-rate", "p99")
    om99 = get("ordermesh-3-rf3", "half-pgsync-rate", "p99")
    if pg99 and om99:
        out.append((f"ordermesh-3-rf3 / postgresql-sync p99 at {fmt(half_sync_rate, 0)} ops/s "
                    "(half of PG-sync max)", om99 / pg99, ""))
    db1 = get("db_bench-1t", "fillrandom sync", "tput")
    for n in ("ordermesh-1", "ordermesh-3", "postgresql", "ordermesh-3-rf3", "postgresql-sync"):
        om = get(n, "saturation", "tput")
        if db1 and om:
            out.append((f"{n} orders/s / db_bench 1-thread synced writes/s", om / db1, ""))
    return out


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -n1") or platform.processor()
    return {
        "nproc": sh("nproc"), "cpu": cpu, "mem": sh("free -h | awk '/^Mem:/ {print $2}'"),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "commit": sh(f"git -C {REPO} rev-parse --short HEAD") +
        (" (with uncommitted changes)" if sh(f"git -C {REPO} status --porcelain -uno") else ""),
        "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def disk_info(path):
    dev = block_device(path)
    base = re.sub(r"p?\d+$", "", dev or "") or dev
    model = ""
    try:
        model = Path(f"/sys/block/{base}/device/model").read_text().strip()
    except OSError:
        pass
    rot = "?"
    try:
        rot = "rotational" if Path(f"/sys/block/{base}/queue/rotational").read_text().strip() \
            == "1" else "non-rotational"
    except OSError:
        pass
    fs = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True).stdout \
        .splitlines()[-1].split()
    return f"/dev/{dev} {model} ({rot}, {fs[1]} mounted on {fs[-1]})".replace("  ", " ")


def write_doc(path, args, mach, disk, summary, ratio_rows, half_rate, argv, elapsed,
              load_end, half_sync_rate=None):
    s = []
    s.append("# Benchmarks\n")
    s.append("`place+pay` (order two or three items, then pay) on ordermesh and on PostgreSQL 15, "
             "and RocksDB's `db_bench` for the disk's limit on synced writes. One run on one "
             "machine, durability on everywhere: ordermesh syncs its RocksDB write batch "
             "(group commit) before replying; PostgreSQL runs `fsync=on`, "
             "`synchronous_commit=on`; db_bench `--sync=1`. Written by `scripts/bench.sh` "
             "(this file is regenerated by every run).\n")
    s.append("## Machine and run\n")
    s.append(f"- date: {mach['date']}; commit: {mach['commit']}")
    s.append(f"- {mach['nproc']} CPUs: {mach['cpu']}; memory {mach['mem']}")
    s.append(f"- disk: {disk}")
    s.append(f"- kernel {mach['kernel']}; {mach['os']}")
    s.append(f"- load average (1, 5, 15 min) at the start: {mach['load']}; at the end: "
             f"{load_end}. Anything else running on the machine shares its cores and disk "
             "with the systems measured.")
    s.append(f"- command: `{argv}` ({'quick' if args.quick else 'full'} mode, "
             f"{elapsed / 60:.1f} min)")
    s.append(f"- {args.users} users, {args.products} products (uniform), "
             f"{args.connections} client connections for every system ({args.client_threads} "
             f"client threads), {args.repeats} repeats of {args.duration} s measured after "
             f"{args.warmup} s warmup; runs alternate between systems; medians below.\n")
    s.append("## Results (medians)\n")
    s.append("```\n" + table(summary) + "\n```\n")
    if half_rate:
        s.append("- `saturation`: closed loop, each connection one op at a time. `half-pg-rate`: "
                 f"open loop at {fmt(half_rate, 0)} ops/s, half of PostgreSQL's median "
                 "saturation throughput; latency counts from each op's intended start "
                 "(orderbench `--rate`, pgbench `-R`), so queueing is not hidden. Other rates: "
                 "open loop at that rate.")
    else:  # postgresql not in this run
        s.append("- `saturation`: closed loop, each connection one op at a time. Open-loop "
                 "rates: latency counts from each op's intended start (orderbench `--rate`, "
                 "pgbench `-R`), so queueing is not hidden.")
    if half_sync_rate:
        s.append(f"- `half-pgsync-rate`: open loop at {fmt(half_sync_rate, 0)} ops/s, half of "
                 "postgresql-sync's median saturation throughput, run by the replicated pair "
                 "(postgresql-sync, ordermesh-3-rf3) only; `pgsync-max-rate` and "
                 "`half-om3rf3-rate` likewise. The other rates are not run by the pair.")
    s.append("- One op = one place+pay pair (two requests for ordermesh, two transactions "
             "for PostgreSQL). ops/s counts successful pairs only.")
    s.append("- CPU ms/order: server processes' utime+stime (/proc/<pid>/stat: every orderd, "
             "and the 3-node cluster's etcd; postgres and its children, exited backends through "
             "the postmaster's cutime) over the whole run including warmup, divided by the "
             "pairs completed. Client CPU: orderbench or pgbench.")
    s.append("- synced/order: ordermesh `storage.synced_batches` of cluster.status (RocksDB "
             "synced write batches, all nodes); PostgreSQL `pg_stat_wal.wal_sync`.")
    s.append("- bytes/order: ordermesh: /proc/<pid>/io `write_bytes` of the orderd processes "
             "(WAL, memtable flushes, compaction) and of the 3-node cluster's etcd; PostgreSQL: "
             "`pg_stat_wal.wal_bytes` (WAL only; data pages are written at checkpoints, "
             "outside the run).")
    if any(k[0] == "postgresql-sync" for k in summary):
        s.append("- postgresql-sync: CPU and bytes per order count the primary and its standby "
                 "together (bytes: the primary's `wal_bytes` plus the WAL the standby received "
                 "and flushed); synced/order is the primary's `wal_sync` only (the standby's "
                 "fsyncs are not visible in PostgreSQL 15); see \"What the two sides do\".")
    pending = [n for n in ("postgresql-sync", "ordermesh-3-rf3")
               if not any(k[0] == n for k in summary)]
    if pending:
        s.append(f"- **Placeholder (issue 12): no numbers for {' and '.join(pending)} in this "
                 "run.** They come from the next bench run that selects them "
                 "(`scripts/bench.sh --systems all`, see \"How to run\").")
    s.append("")
    db = [(k, v) for k, v in summary.items() if k[0].startswith("db_bench")]
    if db:
        s.append("### db_bench (the disk's limit for synced writes)\n")
        s.append("| threads | synced writes/s (median) | runs | µs/op |")
        s.append("| --- | --- | --- | --- |")
        for (system, _), v in db:
            s.append(f"| {system.split('-')[1].rstrip('t')} | {fmt(v['tput'], 0)} | "
                     f"{', '.join(fmt(x, 0) for x in v['runs'])} | {fmt(v['micros_per_op'])} |")
        s.append("")
    s.append("### Ratios (same run)\n")
    s.append("| ratio | value | target |")
    s.append("| --- | --- | --- |")
    for what, v, target in ratio_rows:
        s.append(f"| {what} | {v:.2f} | {target} |")
    s.append("")
    s.append("### Throughput of every run (ops/s)\n")
    for (system, tag), v in summary.items():
        s.append(f"- {system} {tag}: {', '.join(fmt(x) for x in v['runs'])}")
    s.append("\n## Commands\n")
    s.append("```sh")
    seen = set()
    for (system, tag), v in summary.items():
        if (system, tag) not in seen:
            seen.add((system, tag))
            s.append(f"# {system} {tag}\n{v['command']}")
    s.append("```\n")
    s.append(NOTES)
    analysis = HERE / "analysis.md"  # hand-written findings (profiles), kept across runs
    if analysis.exists():
        s.append(analysis.read_text())
    Path(path).write_text("\n".join(s) + "\n")


NOTES = """## How to run

```sh
scripts/bench.sh --quick   # 3 short repeats, under 5 minutes
scripts/bench.sh           # the full run: longer runs, 5 repeats, more rates
scripts/bench.sh --systems all                 # also the replicated pair (issue 12)
scripts/bench.sh --quick --systems pgsync,om3rf3   # the replicated pair alone
```

The full run repeats each measurement 5 times unless `--repeats N` says otherwise; a run writes
its own command at the top of this file (`command:`) and the repeats behind each median in the
`n` column, so the numbers above may come from fewer repeats than the default.

Systems (`--systems`, comma list; `--skip` takes some out): `postgresql` (`pg`), `ordermesh-1`
(`om1`), `ordermesh-3` (`om3`), `db_bench`: the default; `postgresql-sync` (`pgsync`) and
`ordermesh-3-rf3` (`om3rf3`), the replicated pair of issue 12: opt-in, or `all`. The pair is
compared with each other: ratios of ordermesh-3-rf3 to postgresql-sync, and its open-loop runs
at half of postgresql-sync's saturation (`half-pgsync-rate`; full mode also `pgsync-max-rate`,
`half-om3rf3-rate`). `ordermesh-3-rf3` needs an `orderd` with replication (issue 12:
`--replication-factor` and `--min-insync` since 2026-11-29, commit b84e9b2): an older one exits
2 ("unknown option") and the run stops with its stderr.

It installs `postgresql-15` and `rocksdb-tools` with apt-get when missing, builds `orderd`,
`orderctl` and `orderbench` in Release into `build-bench/` (its own build directory, made on
its first run, `ORDERMESH_BENCH_BUILD_DIR` to move it; `scripts/setup.sh` builds into `build/`
instead, RelWithDebInfo), starts everything on 127.0.0.1 with
free ports and data in a temp directory (`ORDERMESH_BENCH_DIR`, default /var/tmp), and stops what
it started on exit, by pid. PostgreSQL runs as `nobody` (it refuses root). Nothing here is part
of the tests: the numbers depend on the machine.

How the ordermesh clusters are started (`scripts/bench/run.py`, class `Ordermesh`):

- `ordermesh-1`: one `orderd`, alone (no `--etcd`: a single node with local coordination).
- `ordermesh-3`: first a private etcd (Debian's `/usr/bin/etcd`, or env `ORDERMESH_ETCD_BIN`;
  one member on 127.0.0.1 with free client and peer ports, its data dir under the run's temp
  directory, **default fsync**: no `--unsafe-no-fsync`, since the benchmark claims durability
  everywhere), then the three nodes at once with `--etcd http://127.0.0.1:PORT --cluster
  bench-<random> --lease-ttl 3s --replication-factor 1` (explicit since a cluster's default
  became 3 on 2026-11-29: this system is the unreplicated cluster); the run starts once every
  node reports the cluster settled
  (valid lease, one controller, no shard move pending, shards spread within one). etcd is
  stopped by its pid after the nodes. Its CPU and written bytes count in the cluster's
  per-order figures (in steady state it only renews the nodes' leases).
- `ordermesh-3-rf3`: `ordermesh-3` (same private etcd, same start) with `--replication-factor 3
  --min-insync 2` on every `orderd`: each shard on all three nodes, a write acknowledged once
  it is on at least two disks. The run also waits until every shard lists three `replicas`, all
  in its `isr` (cluster.status). Same per-order figures as `ordermesh-3` (every orderd and etcd).

Two builds of `orderd` against each other, a node alone each (`scripts/bench/ab.py`: runs
alternate A B, B A, ...; the node not measured is paused; prints medians, the ratio B/A and
orderd's CPU, journal writes, synced batches and bytes per order; `--a-flags`/`--b-flags` and
`--a-env`/`--b-env` per side):

```sh
scripts/bench/ab.py --a /path/to/old/build-bench --b build-bench --rounds 8 --duration 15
```

`orderbench` alone (see README.md, "orderbench"; `build-bench/` exists after a `scripts/bench.sh`
run, `build/client/orderbench` after `scripts/setup.sh` does the same):

```sh
build-bench/client/orderbench --host 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 \\
  --admin-token-file var/cluster/admin.token --connections 32 --duration 30 --json
```

## What the two sides do

- ordermesh: `order.place` (2 or 3 distinct products, quantity 1, a random user's session
  token), then `order.pay` of that order; the order saga reserves each item on its inventory
  actor, then debits the user's wallet and commits the stock, every state change journaled and
  synced before the reply.
- PostgreSQL (`scripts/bench/place_pay.sql`): transaction 1 reserves the items' stock
  (`UPDATE inventory ... WHERE available >= 1` over the IN list, so rows lock in index order) and
  inserts the order and its items; transaction 2 debits the wallet, moves reserved to sold and
  marks the order PAID. Schema: `scripts/bench/schema.sql` (primary and foreign keys). Stock is
  large enough never to run out; PostgreSQL's script does not check for a failed reservation.
- `postgresql-sync` (class `PostgresSync`), the peer of `ordermesh-3-rf3`: the same server,
  schema and pgbench workload, plus one synchronous standby on the same machine and disk. After
  the schema is loaded, `pg_basebackup -R -X stream` (connection string with
  `application_name=bench_standby`) copies the primary into a second data dir under the run's
  temp directory; the standby starts on its own free port (as `nobody`, fsync on), then the
  primary gets `synchronous_standby_names = 'bench_standby'` (with `synchronous_commit = on`):
  a commit is acknowledged only once its WAL is fsync'd on the primary and flushed by the
  standby (two data dirs; here both on the machine's one disk). Before and after every run the
  script checks `pg_stat_replication` on the primary (`bench_standby` streaming, `sync_state` =
  `sync`) and stops with an error otherwise. CPU per order counts both servers (both
  postmasters and their children: the standby's WAL replay and walreceiver included); bytes per
  order the primary's `wal_bytes` plus the WAL the standby received and flushed
  (`pg_last_wal_receive_lsn()`); synced per order only the primary's `wal_sync`: PostgreSQL
  15's walreceiver does not report its fsyncs while it runs (the standby's `pg_stat_wal` stays
  at 0), so the standby's flushes are not counted (ordermesh's figure sums
  `storage.synced_batches` over every node). The standby's share of CPU and bytes is in the raw
  JSON. It is stopped by its pid before the primary.
- Both sides run the same number of connections, each one op at a time, also in the open-loop
  runs (orderbench `--inflight 1 --rate R --poisson`, pgbench `-c N -R R`: Poisson arrivals on
  both). An op whose start is due while every connection is busy waits, and its latency counts
  from when it was due. orderbench reports the ops still waiting at the end as errors
  (`not_sent`); pgbench leaves them out silently.
"""


# ---- main -----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build-dir", default=str(REPO / "build-bench"))
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"))
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/BENCHMARKS.md")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--client-threads", type=int, default=2)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--systems", default=DEFAULT_SYSTEMS,
                    help="comma list of the systems to run: " + ", ".join(SYSTEMS) +
                    " (aliases " + ", ".join(f"{k}={v}" for k, v in ALIASES.items()) +
                    "), or all; default %(default)s")
    ap.add_argument("--skip", default="", help="comma list taken out of --systems (same names)")
    ap.add_argument("--argv", default="scripts/bench/run.py", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.repeats = args.repeats or 3 if args.quick else args.repeats or 5
    args.duration = args.duration or (6 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    args.orderd = str(Path(args.build_dir) / "nodes" / "orderd")
    args.orderbench = str(Path(args.build_dir) / "client" / "orderbench")

    def names(text):
        out = set()
        for n in filter(None, (x.strip() for x in text.split(","))):
            if n == "all":
                out.update(SYSTEMS)
            elif ALIASES.get(n, n) in SYSTEMS:
                out.add(ALIASES.get(n, n))
            else:
                die(f"unknown system {n!r} (known: {', '.join(SYSTEMS)}; aliases "
                    f"{', '.join(ALIASES)}; all)")
        return out
    selected = [n for n in SYSTEMS if n in names(args.systems) - names(args.skip)]
    if not selected:
        die("no system selected (--systems, --skip)")
    if any(n.startswith("ordermesh") for n in selected):
        for b in (args.orderd, args.orderbench):
            if not os.access(b, os.X_OK):
                die(f"{b} is not built")
    if os.geteuid() != 0 and any(n.startswith("postgresql") for n in selected):
        die("run as root (postgres is started as nobody through setpriv)")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(cleanup)
    base = Path(os.environ.get("ORDERMESH_BENCH_DIR", "/var/tmp"))
    root = Path(tempfile.mkdtemp(dir=base, prefix="ordermesh-bench-"))
    os.chmod(root, 0o755)
    atexit.register(lambda: shutil.rmtree(root, ignore_errors=True))
    t_start = time.monotonic()
    mach, disk = machine(), disk_info(root)
    log(f"{mach['nproc']} CPUs ({mach['cpu']}), disk {disk}; data under {root}; systems "
        f"{', '.join(selected)}")

    make = {
        "postgresql": lambda: Postgres(args, root),
        "ordermesh-1": lambda: Ordermesh(args, root, 1),
        "ordermesh-3": lambda: Ordermesh(args, root, 3),
        "ordermesh-3-insecure": lambda: Ordermesh(args, root, 3, name="ordermesh-3-insecure",
                                                  tls=False),
        "postgresql-sync": lambda: PostgresSync(args, root),
        "ordermesh-3-rf3": lambda: Ordermesh(args, root, 3, name="ordermesh-3-rf3",
                                             extra=RF3_FLAGS, replication_factor=3,
                                             peers="replicated"),
    }
    systems = [make[n]() for n in selected if n in make]
    for s in systems:
        s.start()
    # Sized for the whole session: every run adds stock for its own length at this rate.
    args.stock_rate = 20000

    results = []

    def record(r):
        results.append(r)
        log(f"  {r['system']:<15} {r['tag']:<16} {r['tput']:9.1f} ops/s"
            + (f"  p50 {r['p50']:.2f}  p99 {r['p99']:.2f} ms  errors {r['errors']}"
               if 'p99' in r else f"  ({r.get('micros_per_op')} µs/op)"))

    # Phase 1: saturation, systems alternating, db_bench in between.
    for rep in range(args.repeats):
        log(f"saturation, repeat {rep + 1}/{args.repeats}")
        for s in systems:
            record(s.run(args.duration, args.warmup, tag="saturation"))
        if "db_bench" in selected:
            for threads in (1, 16):
                record(db_bench(args, root, threads, 3 if args.quick else 10))

    summary = summarize(results)

    def sat(system):
        return summary.get((system, "saturation"), {}).get("tput")
    # Open-loop rates from each PostgreSQL's saturation, run by the systems of its group (peers):
    # postgresql with ordermesh-1 and -3, postgresql-sync with ordermesh-3-rf3.
    rates = []  # (tag, rate, peers)
    half = half_sync = None
    for peers, pg_name, pg_short, om_name, om_short in (
            ("single", "postgresql", "pg", "ordermesh-1", "om1"),
            ("replicated", "postgresql-sync", "pgsync", "ordermesh-3-rf3", "om3rf3")):
        pg_max = sat(pg_name)
        if not pg_max:
            continue
        if peers == "single":
            half = round(pg_max / 2)
        else:
            half_sync = round(pg_max / 2)
        rates.append((f"half-{pg_short}-rate", round(pg_max / 2), peers))
        if not args.quick:
            rates.append((f"{pg_short}-max-rate", round(pg_max), peers))
            if sat(om_name):
                rates.append((f"half-{om_short}-rate", round(sat(om_name) / 2), peers))
    # Phase 2: fixed rates, the same rate for every system of the group, alternating.
    for tag, rate, peers in rates:
        for rep in range(args.repeats):
            log(f"open loop at {rate} ops/s ({tag}), repeat {rep + 1}/{args.repeats}")
            for s in systems:
                if s.peers != peers:
                    continue
                if tag.startswith("half-om") and isinstance(s, Postgres):
                    continue  # beyond PostgreSQL's maximum
                record(s.run(args.duration, args.warmup, rate=rate, tag=tag))

    cleanup()
    summary = summarize(results)
    elapsed = time.monotonic() - t_start
    ratio_rows = ratios(summary, half, half_sync)
    print()
    print(table(summary))
    print()
    for (system, _), v in summary.items():
        if system.startswith("db_bench"):
            print(f"{system}: {fmt(v['tput'], 0)} synced writes/s (median; runs "
                  f"{', '.join(fmt(x, 0) for x in v['runs'])})")
    print()
    for what, v, target in ratio_rows:
        print(f"{what}: {v:.2f} {('(' + target + ')') if target else ''}")
    print(f"\n({elapsed / 60:.1f} min)")
    raw = root.parent / f"ordermesh-bench-{os.getpid()}.json"
    with open(raw, "w") as f:
        json.dump({"results": results, "machine": mach}, f)
    log(f"every run's numbers: {raw}")
    if not args.no_doc:
        load_end = Path("/proc/loadavg").read_text().split()[:3]
        write_doc(args.out, args, mach, disk, summary, ratio_rows, half, args.argv, elapsed,
                  " ".join(load_end), half_sync)
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
