#!/usr/bin/env python3
"""Measures how fast a cluster coordinated through etcd notices deaths (issue 11):
  * member death: kill -9 of a member that is not the controller, until the controller's
    cluster.status no longer lists it;
  * controller death: kill -9 of the controller, until another member's cluster.status names a
    new controller.
Starts a private etcd and N orderd on 127.0.0.1 (free ports, a temp dir), repeats each
measurement --repeats times (restarting the killed node in between), prints one line per
sample and a JSON summary (p50, p90, max in ms). Stops everything it started, by pid.

  python3 scripts/bench/coordination_times.py [--repeats 10] [--lease-ttl 3s] [--nodes 3]
"""

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "coordination-times-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else None


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="ordermesh-coord-"))
        self.procs = {}
        self.ports = {}
        self.etcd = None

    def start_etcd(self):
        cp, pp = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{cp}"
        log = open(self.dir / "etcd.log", "w")
        self.etcd = subprocess.Popen(
            ["etcd", "--name", "b", "--data-dir", str(self.dir / "etcd"),
             "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
             "--listen-peer-urls", f"http://127.0.0.1:{pp}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pp}",
             "--initial-cluster", f"b=http://127.0.0.1:{pp}", "--log-level", "error"],
            stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["etcdctl", "--endpoints", self.etcd_url, "endpoint", "health"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("etcd did not come up")

    def start_node(self, name):
        if name not in self.ports:
            self.ports[name] = (free_port(), free_port())
        cp, kp = self.ports[name]
        log = open(self.dir / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen(
            [self.args.orderd, "--node-id", name, "--data-dir", str(self.dir / name),
             "--client-port", str(cp), "--cluster-port", str(kp), "--etcd", self.etcd_url,
             "--lease-ttl", self.args.lease_ttl, "--admin-token", TOKEN, "--pwhash", "fast",
             ]
            # it times coordination, not the cluster plane: no certificates to make, unless a
            # caller gives the node its TLS flags
            + list(getattr(self.args, "cluster_flags", None) or ["--insecure-cluster"])
            + list(getattr(self.args, "extra_args", ["--replication-factor", "1"])),
            stdout=log, stderr=log)

    def status(self, name, timeout=2.0):
        cp = self.ports[name][0]
        try:
            out = subprocess.run([self.args.orderctl, "--port", str(cp), "--token", TOKEN,
                                  "--json", "--timeout-ms", str(int(timeout * 1000)),
                                  "cluster-status"],
                                 capture_output=True, text=True, timeout=timeout + 1).stdout
            return json.loads(out).get("result")
        except (subprocess.TimeoutExpired, ValueError):
            return None

    def wait(self, what, cond, timeout=60.0, every=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = cond()
            if r:
                return r
            time.sleep(every)
        raise RuntimeError(f"timed out waiting for {what}")

    def settled(self, asker, n):
        st = self.status(asker)
        if not st or len(st.get("members", [])) != n or not st.get("controller"):
            return None
        if any(s["target"] for s in st["shards"]):
            return None
        led = {s["primary"] for s in st["shards"]}
        return st if led == {m["node_id"] for m in st["members"]} else None

    def kill(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
        if self.etcd:
            self.etcd.send_signal(signal.SIGKILL)
            self.etcd.wait()
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--lease-ttl", default="3s")
    ap.add_argument("--orderd", default=str(REPO / "build/nodes/orderd"))
    ap.add_argument("--orderctl", default=str(REPO / "build/client/orderctl"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    if not (1 <= args.repeats <= 100 and 3 <= args.nodes <= 9):
        ap.error("--repeats 1..100, --nodes 3..9")
    b = Bench(args)
    member_ms, controller_ms = [], []
    try:
        b.start_etcd()
        names = [f"n{i}" for i in range(1, args.nodes + 1)]
        for n in names:
            b.start_node(n)
        b.wait("the first balanced shard map", lambda: b.settled("n1", args.nodes), timeout=120)
        for i in range(args.repeats):
            st = b.wait("a settled cluster", lambda: b.settled("n1", args.nodes)
                        or b.settled(names[-1], args.nodes), timeout=120)
            ctrl = st["controller"]
            victim = next(n for n in names if n != ctrl)
            t0 = time.monotonic()
            b.kill(victim)
            b.wait(f"{ctrl} to see {victim} gone", lambda: (lambda s: s and victim not in
                   [m["node_id"] for m in s["members"]])(b.status(ctrl)))
            member_ms.append((time.monotonic() - t0) * 1000)
            b.start_node(victim)
            b.wait("the victim back", lambda: b.settled(ctrl, args.nodes), timeout=120)
            asker = next(n for n in names if n != ctrl)
            t0 = time.monotonic()
            b.kill(ctrl)
            b.wait("a new controller", lambda: (lambda s: s and s.get("controller") not in
                   ("", ctrl))(b.status(asker)))
            controller_ms.append((time.monotonic() - t0) * 1000)
            b.start_node(ctrl)
            b.wait("the old controller back", lambda: b.settled(asker, args.nodes), timeout=120)
            print(f"sample {i + 1}: member death seen in {member_ms[-1]:.0f} ms, new controller "
                  f"in {controller_ms[-1]:.0f} ms", flush=True)
    finally:
        b.stop()
    summary = {"lease_ttl": args.lease_ttl, "nodes": args.nodes, "repeats": len(member_ms)}
    for name, xs in (("member_death_seen_ms", member_ms), ("new_controller_ms", controller_ms)):
        summary[name] = {"p50": round(percentile(xs, 50)), "p90": round(percentile(xs, 90)),
                         "max": round(max(xs)), "min": round(min(xs))} if xs else None
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
