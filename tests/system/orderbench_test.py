#!/usr/bin/env python3
"""orderbench smoke: two short runs (closed loop place+pay, open loop mix) against one real orderd.
Checks the --json output's shape and its counting (ok ops > 0, every request answered or counted
as unanswered, errors reported by code). Never asserts a time: benchmarks are for
scripts/bench.sh.

Run by hand: python3 tests/system/orderbench_test.py --orderbench build/client/orderbench
  --orderd build/nodes/orderd --orderctl build/client/orderctl"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

ORDERBENCH = None


def run_bench(node, *args):
    cmd = [ORDERBENCH, "--host", f"{h.HOST}:{node.port}", "--admin-token", node.admin_token,
           "--users", "20", "--products", "30", "--duration", "2", "--warmup", "0.5",
           "--json"] + list(args)
    log("$ " + " ".join(cmd).replace(node.admin_token, "<admin>"))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=h.clean_env())
    for line in p.stderr.splitlines()[-12:]:
        log("  " + line)
    eq(p.returncode, 0, "orderbench exit code")
    return json.loads(p.stdout)


def check_counts(r, sells_out=False):
    eq(r["errors"], sum(r["errors_by_code"].values()), "errors equal the sum of errors by code")
    if sells_out:
        # The stock may be gone before the measured window starts (timing): then nothing is
        # measured as ok, but some orders must have succeeded somewhere in the run.
        check(r["ok"] + r["ok_after_end"] + r["warmup"]["ok"] > 0, f"no successful op: {r}")
    else:
        check(r["ok"] > 0, f"no successful op: {r}")
        check(r["throughput_ops_s"] > 0, "throughput")
        lat = r["latency"]
        check(0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"], f"percentiles in order: {lat}")
    q = r["requests"]
    eq(q["sent"], q["replies"] + q["unanswered"], "every request answered or counted unanswered")
    by_op = sum(v["errors"] for v in q["by_op"].values())
    eq(q["errors"], by_op, "request errors equal the sum over ops")


def test_closed_loop_place_pay():
    with h.Session("orderbench") as s:
        node = s.node().start()
        r = run_bench(node, "--connections", "4", "--inflight", "2", "--workload", "place+pay")
        eq(r["mode"], "closed", "mode")
        check_counts(r)
        check("order.place" in r["requests"]["by_op"] and "order.pay" in r["requests"]["by_op"],
              "per-request stats for place and pay")
        # A second run on the same data reuses the users and products (conflicts are fine).
        r2 = run_bench(node, "--connections", "2", "--workload", "place+cancel", "--dist", "zipf")
        check_counts(r2)
        check("order.cancel" in r2["requests"]["by_op"], "cancel stats")


def test_open_loop_mix_counts_errors():
    with h.Session("orderbench") as s:
        node = s.node().start()
        r = run_bench(node, "--connections", "3", "--rate", "200", "--workload", "mix",
                      "--read-orders", "20")
        eq(r["mode"], "open", "mode")
        check_counts(r)
        kinds = set(r["by_kind"])
        check({"place+pay", "order.get", "inventory.get"} <= kinds, f"mix kinds: {kinds}")


def test_errors_are_counted_not_throughput():
    with h.Session("orderbench") as s:
        node = s.node().start()
        # --stock-rate 0: 100 units per product, soon sold out: the rest are rejected orders.
        r = run_bench(node, "--connections", "2", "--inflight", "4", "--products", "3",
                      "--stock-rate", "0", "--warmup", "0", "--read-orders", "0")
        check_counts(r, sells_out=True)
        rejected = r["errors_by_code"].get("rejected:out_of_stock", 0)
        check(rejected > 0, f"sold-out orders are reported as errors: {r['errors_by_code']}")
        check(r["ok"] + r["ok_after_end"] + r["warmup"]["ok"] <= 150,
              "at most 300 units / 2 per order were sold")
        eq(r["throughput_ops_s"], r["ok"] / r["duration_s"], "throughput counts ok ops only")


if __name__ == "__main__":
    ORDERBENCH = h.take_orderbench_arg()
    h.main([test_closed_loop_place_pay, test_open_loop_mix_counts_errors,
            test_errors_are_counted_not_throughput], __doc__)
