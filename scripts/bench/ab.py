#!/usr/bin/env python3
"""Two orderd builds against each other, a node alone each (no etcd), place+pay at saturation
(orderbench closed loop, as run.py's saturation runs). On a shared 2-core VM one run differs
from the next by up to 20 %, more than the changes one wants to see, so:
- runs alternate A B, B A, A B, ...: a drift of the machine (other tenants, a disk warming up)
  falls on both alike;
- the node not being measured is paused (SIGSTOP): an idle node's timers wake its scheduler's
  workers, and work-stealing workers then poll, taking CPU from the node being measured.

  scripts/bench/ab.py --a OLD_BUILD_DIR --b NEW_BUILD_DIR [--rounds 8] [--duration 15]

A build dir is one with nodes/orderd (orderbench comes from --b's, so both see one client).
--a-flags / --b-flags add orderd flags to one side ("--scheduler stealing"), --a-env / --b-env
KEY=VALUE its environment (LD_PRELOAD of another allocator, say). Prints each run, then per side
the medians (throughput, p99, orderd CPU, journal writes, synced batches and bytes written per
order), the ratio of the medians B/A, and the per-round ratios' median and range. Everything
runs on 127.0.0.1 with free ports under one temp dir (ORDERMESH_BENCH_DIR, default /var/tmp);
it stops exactly what it started (by pid) on exit, error or signal. docs/BENCHMARKS.md, "A node
alone before and after replication", has runs of it."""
import argparse
import copy
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (scripts/bench/run.py: the node, the client, the counters)


def side_env(pairs):
    env = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            run.die(f"expected KEY=VALUE, got {p!r}")
        env[k] = v
    return env


def side(args, root, name, orderd, flags, env):
    """One node alone from one build, with its own flags and environment."""
    a = copy.copy(args)
    a.orderd = orderd
    return run.Ordermesh(a, root, 1, name=name, extra=flags, env=env)


def pause(system, sig):
    for p, _ in system.nodes:
        if p.poll() is None:
            os.kill(p.pid, sig)


def order_of_rounds(rounds):
    """A B, B A, A B, ...: each side goes first in half the rounds."""
    return [("a", "b") if r % 2 == 0 else ("b", "a") for r in range(rounds)]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="build dir of the baseline")
    ap.add_argument("--b", required=True, help="build dir of the candidate")
    ap.add_argument("--a-flags", default="", help="more orderd flags for A (one string)")
    ap.add_argument("--b-flags", default="", help="more orderd flags for B (one string)")
    ap.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--client-threads", type=int, default=2)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not 1 <= args.rounds <= 100 or not 1 <= args.duration <= 600:
        run.die("--rounds 1-100, --duration 1-600 s")
    args.orderbench = str(Path(args.b) / "client" / "orderbench")
    binaries = {"a": str(Path(args.a) / "nodes" / "orderd"),
                "b": str(Path(args.b) / "nodes" / "orderd")}
    for b in (args.orderbench, *binaries.values()):
        if not os.access(b, os.X_OK):
            run.die(f"{b} missing: build orderd and orderbench first (scripts/bench.sh does)")
    args.stock_rate = 20000  # every run adds stock for its own length at this rate (run.py)

    signal.signal(signal.SIGINT, run.on_signal)
    signal.signal(signal.SIGTERM, run.on_signal)
    base = os.environ.get("ORDERMESH_BENCH_DIR", "/var/tmp")
    root = Path(tempfile.mkdtemp(prefix="ordermesh-ab-", dir=base))
    sides = {}
    try:
        sides = {k: side(args, root, k, binaries[k], getattr(args, f"{k}_flags").split(),
                         side_env(getattr(args, f"{k}_env"))) for k in "ab"}
        for s in sides.values():
            s.start()
        results = {"a": [], "b": []}
        for r, order in enumerate(order_of_rounds(args.rounds)):
            for k in order:
                # The side not measured is paused (SIGSTOP): an idle node still runs timers,
                # and with work stealing its workers poll after each one, which would take
                # CPU from the side measured.
                pause(sides["b" if k == "a" else "a"], signal.SIGSTOP)
                pause(sides[k], signal.SIGCONT)
                x = sides[k].run(args.duration, args.warmup)
                results[k].append(x)
                run.log(f"round {r + 1}/{args.rounds} {k}: {x['tput']:8.1f} ops/s, orderd CPU "
                        f"{x['cpu_per_order_ms']:.3f} ms/order, p99 {x['p99']:.1f} ms, "
                        f"errors {x['errors']}")
        report(args, binaries, results)
    finally:
        for s in sides.values():
            pause(s, signal.SIGCONT)  # a stopped process would not act on run.cleanup's SIGTERM
        run.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def report(args, binaries, results):
    med = {k: statistics.median(x["tput"] for x in v) for k, v in results.items()}
    cpu = {k: statistics.median(x["cpu_per_order_ms"] for x in v) for k, v in results.items()}

    def per_order(k, key):
        return statistics.median(x[key] for x in results[k])
    ratios = [b["tput"] / a["tput"] for a, b in zip(results["a"], results["b"]) if a["tput"] > 0]
    for k in "ab":
        print(f"{k.upper()} {' '.join(getattr(args, f'{k}_env'))} {binaries[k]} "
              f"{getattr(args, f'{k}_flags')}".strip())
    print(f"{args.rounds} rounds of {args.duration:g} s (+{args.warmup:g} s warm-up), "
          f"{args.connections} connections, place+pay, a node alone")
    for k in "ab":
        runs = ", ".join(f"{x['tput']:.0f}" for x in results[k])
        print(f"{k.upper()}: median {med[k]:,.0f} ops/s, orderd CPU {cpu[k]:.3f} ms/order, "
              f"p99 {per_order(k, 'p99'):.1f} ms, journal writes "
              f"{per_order(k, 'writes_per_order'):.2f}, synced batches "
              f"{per_order(k, 'synced_per_order'):.3f}, bytes written "
              f"{per_order(k, 'bytes_per_order'):,.0f} per order (runs {runs})")
    if ratios:
        print(f"B/A: ratio of medians {med['b'] / med['a']:.3f}; per round median "
              f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}; "
              f"CPU per order {cpu['b'] / cpu['a']:.3f}")
    errors = sum(x["errors"] for v in results.values() for x in v)
    if errors:
        print(f"errors: {errors} (see the runs above)")


if __name__ == "__main__":
    main()
