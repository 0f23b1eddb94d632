#!/usr/bin/env python3
"""Measures how long a restarted node takes to be connected to its peers again (issue 12): 3
nodes on a private etcd, mutual TLS on the cluster plane (as the chaos suite runs them; or
--insecure-cluster). Each sample kills -9 one node, waits --down seconds (its peers keep
dialing it meanwhile), starts it again, and measures from its start to the log lines
"connected to <peer> (id proven)" for both peers. Victims cycle n1, n2, n3, so the restarted
node is the pair's lower id, the higher id, or both.
Prints one line per sample and a JSON summary (p50, p99, max over every (sample, peer)). Stops
everything it started, by pid.

  python3 scripts/bench/reconnect_times.py [--repeats 12] [--down 3] [--insecure]
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import coordination_times as ct  # noqa: E402
from chaos import cluster_ctl  # noqa: E402

NAMES = ["n1", "n2", "n3"]


def connected_lines(log_path, since_offset):
    """Peers named in 'connected to X (id proven)' lines of the log after since_offset."""
    with open(log_path, "rb") as f:
        f.seek(since_offset)
        text = f.read().decode(errors="replace")
    return set(re.findall(r"connected to (\S+) \(id proven\)", text))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=12)
    ap.add_argument("--down", type=float, default=3.0, help="seconds between kill and restart")
    ap.add_argument("--lease-ttl", default="3s")
    ap.add_argument("--insecure", action="store_true", help="plain TCP cluster plane")
    ap.add_argument("--orderd", default=str(ct.REPO / "build/nodes/orderd"))
    ap.add_argument("--orderctl", default=str(ct.REPO / "build/client/orderctl"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    if not 1 <= args.repeats <= 100 or not 0 <= args.down <= 60:
        ap.error("--repeats 1..100, --down 0..60")
    b = ct.Bench(args)
    tls_dir = None if args.insecure else b.dir / "certs"
    if tls_dir:
        cluster_ctl.ensure_certs(tls_dir, NAMES)

    args.extra_args = ["--replication-factor", "3", "--min-insync", "2"]

    times = []
    try:
        b.start_etcd()
        for n in NAMES:
            args.cluster_flags = cluster_ctl.tls_flags(tls_dir, n)
            b.start_node(n)
        b.wait("3 members", lambda: (b.status("n1") or {}).get("controller"), timeout=60)
        for i in range(args.repeats):
            victim = NAMES[i % 3]
            peers = [n for n in NAMES if n != victim]
            b.kill(victim)
            time.sleep(args.down)
            log = b.dir / f"{victim}.log"
            offset = log.stat().st_size
            args.cluster_flags = cluster_ctl.tls_flags(tls_dir, victim)
            t0 = time.monotonic()
            b.start_node(victim)
            seen = {}
            while len(seen) < 2 and time.monotonic() - t0 < 60:
                for p in connected_lines(log, offset):
                    seen.setdefault(p, time.monotonic() - t0)
                time.sleep(0.02)
            line = ", ".join(f"{p} {seen[p]:.2f} s" if p in seen else f"{p} not within 60 s"
                             for p in peers)
            print(f"sample {i + 1}: restarted {victim}: connected to {line}", flush=True)
            times += [seen.get(p, 60.0) for p in peers]
            time.sleep(1.0)
    finally:
        b.stop()
    times.sort()
    print(json.dumps({"tls": tls_dir is not None, "down_s": args.down, "samples": args.repeats,
                      "start_to_connected_per_peer": {
                          "p50_ms": round(ct.percentile(times, 50) * 1000),
                          "p99_ms": round(ct.percentile(times, 99) * 1000),
                          "max_ms": round(max(times) * 1000), "n": len(times)}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
