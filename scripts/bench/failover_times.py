#!/usr/bin/env python3
"""Measures failover in a replicated cluster (issue 12): 3 nodes on a private etcd with
--replication-factor 3 --min-insync 2. Each sample kills -9 one node that is not the
controller (so the time is the failover's alone; `--victim controller` kills the controller
instead: the time then includes deposing it and electing the next one) and measures, for every
shard it led, the time from the kill to the first acknowledged write on that shard (a wallet
deposit to a user of that shard, retried every 20 ms through a surviving node until ok). Then the
node is restarted and the next sample waits until every shard's ISR is complete again.
`--fault pause` stops the node (SIGSTOP) instead of killing it: it keeps its connections and its
lease, so only its silence shows (--suspect-after); it is woken (SIGCONT) once every shard it led
was written through another primary. Each request then waits at most 0.2 s for its answer (a
forwarded request to the paused node is never answered: the time measured is the cluster's, not
a client's timeout).
Prints one line per sample and a JSON summary: p50, p99 and max over every (sample, shard) and
the per-sample maximum. Stops everything it started, by pid.

  python3 scripts/bench/failover_times.py [--repeats 20] [--lease-ttl 3s] [--victim controller]
                                          [--fault kill|pause]
"""

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "system"))

import coordination_times as ct  # noqa: E402
import harness as h  # noqa: E402

RF = ["--replication-factor", "3", "--min-insync", "2"]


class FailoverBench(ct.Bench):
    def isr_complete(self, asker, n):
        # Leadership is checked apart (main's settled()): a replicated cluster gives a restarted
        # node its primaries back only once it has been settled for 5 s.
        st = self.status(asker)
        if not st or len(st.get("members", [])) != n or not st.get("controller"):
            return None
        incs = {m["node_id"]: m.get("disk") for m in st["members"]}
        for s in st["shards"]:
            if len(s["replicas"]) != 3 or sorted(s["isr"]) != sorted(s["replicas"]):
                return None
            if [incs.get(m) for m in s["isr"]] != s.get("isr_disks"):
                return None  # a restarted member still named under its old life
        return st

    def client(self, name):
        timeout = 0.2 if self.args.fault == "pause" else 5.0
        return h.Client(self.ports[name][0], timeout=timeout, token=ct.TOKEN)


def users_per_shard(shards=64):
    out, i = {}, 0
    while len(out) < shards:
        u = f"fo{i}"
        out.setdefault(h.shard_of("user", u, shards), u)
        i += 1
    return out


def first_ack(b, via, user, t_kill, out, key, limit=60.0):
    k = 0
    while time.monotonic() - t_kill < limit:
        # A new connection after a failed attempt: on the old one, a timed-out request's late
        # reply would be read as the next one's.
        with b.client(via) as cl:
            while time.monotonic() - t_kill < limit:
                k += 1
                try:
                    r = cl.request("user.deposit", {"user_id": user, "amount_cents": 1,
                                                    "request_id": f"{key}-{k}"})
                except (OSError, ValueError, AssertionError):
                    break  # timed out or out of step: a new connection
                if r.get("ok"):
                    out[key] = time.monotonic() - t_kill
                    return
                time.sleep(0.02)
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--lease-ttl", default="3s")
    ap.add_argument("--orderd", default=str(ct.REPO / "build/nodes/orderd"))
    ap.add_argument("--orderctl", default=str(ct.REPO / "build/client/orderctl"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    ap.add_argument("--victim", choices=["other", "controller"], default="other",
                    help="kill a node that is not the controller (default) or the controller")
    ap.add_argument("--fault", choices=["kill", "pause"], default="kill",
                    help="kill -9 the victim (default), or stop it (SIGSTOP) and wake it after")
    args = ap.parse_args()
    if not 1 <= args.repeats <= 100:
        ap.error("--repeats 1..100")
    args.nodes = 3
    args.extra_args = RF
    b = FailoverBench(args)
    per_shard, per_sample = [], []
    try:
        b.start_etcd()
        names = ["n1", "n2", "n3"]
        for n in names:
            b.start_node(n)
        b.wait("a replicated shard map, every ISR complete", lambda: b.isr_complete("n1", 3),
               timeout=120)
        users = users_per_shard()
        with b.client("n1") as cl:
            for u in users.values():
                cl.ok_retry("user.register", {"user_id": u, "password": f"pw-{u}-secret"})
        def settled(node):
            # Every ISR complete and every node leading some shards: a restarted node gets its
            # share of primaries back only after the cluster has been settled for 5 s
            # (leadership_rebalance.hpp), and a victim that leads nothing measures nothing.
            st = b.isr_complete(node, 3)
            if not st:
                return None
            leading = {s["primary"] for s in st["shards"]}
            return st if all(n in leading for n in names) else None

        for i in range(args.repeats):
            st = b.wait("every ISR complete and every node leading shards",
                        lambda: settled("n1") or settled("n3"), timeout=180)
            ctrl = st["controller"]
            victims = [n for n in names if n != ctrl]
            victim = ctrl if args.victim == "controller" else victims[i % len(victims)]
            via = next(n for n in names if n not in (victim,))
            led = [s["shard"] for s in st["shards"] if s["primary"] == victim]
            got = {}
            t0 = time.monotonic()
            if args.fault == "pause":
                b.procs[victim].send_signal(signal.SIGSTOP)
            else:
                b.kill(victim)
            threads = [threading.Thread(target=first_ack, args=(b, via, users[s], t0, got,
                                                                f"s{i}-{s}"))
                       for s in led]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            missing = len(led) - len(got)
            times = sorted(got.values())
            per_shard += times
            per_sample.append(times[-1] if times else float("nan"))
            verb = "paused" if args.fault == "pause" else "killed"
            span = f"{times[0]:.2f}..{times[-1]:.2f} s" if times else "none within 60 s"
            print(f"sample {i + 1}: {verb} {victim} (led {len(led)} shards): first acknowledged "
                  f"write after {span}"
                  + (f", {missing} shard(s) not within 60 s" if missing else ""), flush=True)
            if args.fault == "pause":
                b.procs[victim].send_signal(signal.SIGCONT)
                # The woken node demotes, follows and catches up; its ISR entries come back
                # within a second or two, and the next sample must not pause a node in the
                # middle of that (the complete ISR below may be read before it settles).
                time.sleep(3.0)
            else:
                b.start_node(victim)
    finally:
        b.stop()

    def summary(xs):
        return {"p50_ms": round(ct.percentile(xs, 50) * 1000),
                "p99_ms": round(ct.percentile(xs, 99) * 1000),
                "max_ms": round(max(xs) * 1000), "n": len(xs)} if xs else None
    print(json.dumps({"lease_ttl": args.lease_ttl, "replication_factor": 3, "min_insync": 2,
                      "victim": args.victim, "fault": args.fault,
                      "samples": len(per_sample),
                      "kill_to_first_ack_per_shard": summary(per_shard),
                      "kill_to_last_shard_per_sample": summary(per_sample)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
