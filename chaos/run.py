"""The chaos suite runner: python3 -m chaos.run --scenario NAME|all --seed N
    --duration S --nodes N --out DIR [--netns] [--orderd PATH] [--clients N] [--allow-skips]
    [--etcd-members 1|3] [--replication-factor N]

Every scenario runs on an etcd-coordinated cluster (etcd_ctl.py: one etcd per scenario, 1 member
or 3 with --etcd-members 3, started before the nodes; nodes run with --etcd, --cluster chaos,
--lease-ttl 3s, and mutual TLS on the cluster plane: certificates of one CA per run, made in
OUT/certs; --insecure-cluster runs them without). There is no other cluster mode: `--coordination` is refused (exit 2).

Per scenario: start etcd and a balanced cluster, run the workload (driver.py) and the seeded nemesis
schedule (nemesis.py) while an EpochMonitor samples every node's view of the shard map, heal
everything and restart what is down (with --replication-factor > 1: wait until every replica
has caught up, else the scenario fails), let the cluster settle (until
no order the history touched is PENDING, at most SETTLE_S), read the final state of every
touched entity (`final` records), stop the nodes and dump every node's journal with
`ordermesh-journal` (next to --orderd, or env ORDERMESH_JOURNAL; merged into
OUT/<scenario>/journal.json for the one-writer audit, skipped without the tool), then check the
history (checker.py). Writes results.json and summary.txt under --out, prints the summary; the
last line is
`chaos: N passed, M failed[, K skipped]`. Exit 1 on any violation or failure.

Scenarios this machine cannot run are reported as skipped with the reason, never as passed.
As root (effective uid 0, as in CI) every scenario can run, so one that would be skipped (a
missing tool, no namespace) FAILS instead, "would be skipped as root: <reason>"; --allow-skips
keeps skips as skips even as root (a developer's machine). `planted-loss` passes when the
checker reports a violation (it caught the planted fault).

With ORDERMESH_REPORT_DIR set, also writes the per-case report py-chaos.json there
(case_report.py): defined = the requested scenarios, with passed / failed / skipped each.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from chaos import case_report, checker, journal_audit, nemesis, netns
from chaos.cluster_ctl import (RESERVATION_TTL_MS, Cluster, EpochMonitor, StartError,
                               caught_up, request)
from chaos.driver import Driver
from chaos.history import HistoryWriter, load
from chaos.report import render

REPO = Path(__file__).resolve().parents[1]
SETTLE_S = 30.0
ORDER = list(nemesis.SCENARIOS)
COORDINATION_GONE = ("--coordination is gone: chaos always runs on etcd (one etcd per "
                     "scenario; --etcd-members 1|3 picks its size)")


def commit():
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def log(msg):
    print(msg, flush=True)


def admin_read(cluster, rng, op, args, attempts=8):
    """An admin read through any running node, retried on no reply / unavailable (bounded).
    Returns (result, error): error None on success; {"code": ...} otherwise."""
    error = {"code": "no_reply", "message": "no node answered"}
    for i in range(attempts):
        live = [n for n in cluster.live() if not n.paused]
        if live:
            node = rng.choice(live)
            r = request(node.host, node.port, op, args, token=cluster.admin_token, timeout=3.0)
            if r is not None and r.get("ok"):
                return r.get("result"), None
            if r is not None:
                error = r.get("error") or {"code": "internal", "message": "no error object"}
                if error.get("code") not in ("unavailable", "timeout", "overloaded",
                                             "internal"):
                    return None, error
        time.sleep(min(2.0, 0.2 * (i + 1)))
    return None, error


def settle(cluster, order_ids, rng, limit=SETTLE_S):
    """Waits (bounded) until no touched order is PENDING or unreadable. Returns the seconds
    it took, or None when the limit passed first."""
    t0 = time.monotonic()
    pending = set(order_ids)
    while pending and time.monotonic() - t0 < limit:
        for oid in sorted(pending):
            res, err = admin_read(cluster, rng, "order.get", {"order_id": oid}, attempts=1)
            if (res is not None and res.get("status") != "PENDING") or \
                    (err and err.get("code") == "not_found"):
                pending.discard(oid)
            if time.monotonic() - t0 >= limit:
                break
        if pending:
            time.sleep(0.3)
    return None if pending else round(time.monotonic() - t0, 2)


FINAL_READS_S = 60.0  # after this long, each remaining final read gets one attempt


def final_reads(h, cluster, driver, rng, limit=FINAL_READS_S):
    """The final reads (module docstring). Each is retried on no reply / unavailable, until the
    reads as a whole have taken `limit` s; then every remaining one gets a single attempt, so a
    cluster that lost a shard for good ends the scenario (incomplete reads fail it) instead of
    hanging it for minutes."""
    t_end = time.monotonic() + limit

    def read(op, args):
        return admin_read(cluster, rng, op, args,
                          attempts=8 if time.monotonic() < t_end else 1)

    orders = set(driver.placed)
    for user in driver.users:
        res, err = read("order.list", {"user_id": user})
        if res is not None:
            for o in res.get("orders", []):
                h.final("order", o["order_id"], state=o)
                orders.discard(o["order_id"])  # read anyway below if placed: cheap, but skip
    for oid in sorted(orders):
        res, err = read("order.get", {"order_id": oid})
        h.final("order", oid, state=res, error=err)
    for pid in sorted(driver.products):
        res, err = read("inventory.get", {"product_id": pid})
        h.final("inventory", pid, state=res, error=err)
    for user in driver.users:
        res, err = read("user.get", {"user_id": user})
        h.final("user", user, state=res, error=err)


_M64 = (1 << 64) - 1


def shard_of_user(ident, shard_count):
    """cluster/sharding.cpp (as tests/system/harness.py): FNV-1a 64 over (kind byte 1 = user,
    id bytes), then a splitmix64 finalizer, modulo the shard count."""
    h = ((14695981039346656037 ^ 1) * 1099511628211) & _M64
    for c in ident.encode():
        h = ((h ^ c) * 1099511628211) & _M64
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _M64
    h ^= h >> 31
    return h % shard_count


def pick_users(n, spec, cluster):
    """u1..uN; for the planted fault, at least two of them live on the faulty node's shards
    (else nothing it acknowledges could be lost), found by trying u(N+1), u(N+2), ..."""
    users = [f"u{i + 1}" for i in range(n)]
    if spec["kind"] != "planted":
        return users
    st = cluster.node(nemesis.PLANTED_NODE).status() or {}
    owners = {s["shard"]: s.get("owner") for s in st.get("shards", [])}
    count = st.get("shard_count") or len(owners)
    if not owners:
        return users
    on = [u for u in users if owners.get(shard_of_user(u, count)) == nemesis.PLANTED_NODE]
    for k in range(n + 1, n + 200):
        if len(on) >= min(2, n):
            break
        u = f"u{k}"
        if owners.get(shard_of_user(u, count)) == nemesis.PLANTED_NODE:
            victim = next(x for x in reversed(users) if x not in on)
            users[users.index(victim)] = u
            on.append(u)
    return users


def probe_planted(orderd):
    """None if orderd accepts the planted-fault flag, else the reason to skip."""
    try:
        p = subprocess.run([orderd, "--help", nemesis.PLANTED_FLAG, "--enable-fault-injection"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot run orderd: {e}"
    text = (p.stdout + p.stderr).strip()
    if p.returncode == 2 and "unrecognised option" in text:
        return f"orderd does not accept {nemesis.PLANTED_FLAG} yet ({text.splitlines()[0]})"
    return None


def journal_tool(orderd):
    """The ordermesh-journal binary: env ORDERMESH_JOURNAL, else next to orderd; None if
    absent (the one-writer audit is then skipped)."""
    path = os.environ.get("ORDERMESH_JOURNAL") or str(Path(orderd).parent / "ordermesh-journal")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def caught_up_report(cluster, limit=10):
    """Why a replicated cluster is not caught up (cluster_ctl.caught_up), for results.json."""
    try:
        return caught_up(cluster.statuses(timeout=2.0))[:limit] or [
            "the cluster did not settle (members, leases, or the shard map's primaries)"]
    except Exception as e:  # only a report
        return [f"{type(e).__name__}: {e}"]


def dump_journals(tool, cluster, path, timeout=120.0, replication_factor=1,
                  observed_epochs=None):
    """Runs `ordermesh-journal dump` on every (stopped) node's data dir and merges the dumps
    into one journal (journal_audit.py's format), written to `path`. A node that cannot be
    dumped is listed in `errors` (the audit reports it). `observed_epochs`: the EpochMonitor's
    views of the shard map during the run (audited by the `epochs` rule). Returns the
    journal."""
    merged = {"version": 1, "nodes": [], "entries": [], "shard_epochs": {}, "owned": {},
              "replayed": [], "unowned_data": {}, "stats": {}, "errors": [],
              "replication_factor": replication_factor,
              "min_insync": 2 if replication_factor > 1 else 1,
              "observed_epochs": observed_epochs or {}}
    for n in cluster.nodes:
        cmd = [tool, "dump", "--data-dir", str(n.data_dir), "--node-id", n.name]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()[-500:]}")
            d = json.loads(p.stdout)
        except (OSError, subprocess.SubprocessError, RuntimeError, ValueError) as e:
            merged["errors"].append(f"{n.name}: cannot dump {n.data_dir}: {e}"[:800])
            continue
        merged["nodes"].append(n.name)
        merged["entries"] += d.get("entries") or []
        merged["replayed"] += d.get("replayed") or []
        merged["errors"] += [f"{n.name}: {e}" for e in d.get("errors") or []]
        for key in ("shard_epochs", "owned", "unowned_data"):
            merged[key].update(d.get(key) or {})
        merged["stats"][n.name] = d.get("stats")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(merged, f)
        f.write("\n")
    return merged


def skip_verdict(reason, root, allow_skips):
    """What a scenario this machine cannot run (`reason`) counts as: (status, reason). CI runs
    as root, where every scenario can run, so there a skip means a broken setup and fails the
    run rather than passing quietly; without root (or with --allow-skips) it stays a skip."""
    if root and not allow_skips:
        return "failed", f"would be skipped as root: {reason}"
    return "skipped", reason


def run_scenario(name, args, ctx, sha):
    spec = nemesis.SCENARIOS[name]
    entry = {"scenario": name, "seed": args.seed, "commit": sha, "status": None,
             "reason": None, "doc": spec["doc"]}
    reason = nemesis.skip_reason(name, ctx)
    node_args = {}
    if spec["kind"] == "planted":
        reason = reason or probe_planted(args.orderd)
        node_args = {nemesis.PLANTED_NODE: [nemesis.PLANTED_FLAG]}
    # Always explicit: a cluster's default is 3.
    rf = ["--replication-factor", str(args.replication_factor)]
    if args.replication_factor > 1:
        rf += ["--min-insync", "2"]
    node_args = {f"n{i + 1}": list(node_args.get(f"n{i + 1}", ())) + rf
                 for i in range(args.nodes)}
    if reason:
        status, reason = skip_verdict(reason, ctx["root"], ctx["allow_skips"])
        entry.update(status=status, reason=reason)
        log(f"[{name}] {status}: {reason}")
        return entry, None
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    # A scenario starts from nothing: an earlier run's data dirs and etcd in the same --out
    # would otherwise carry its entities (and its cluster) into this one.
    for child in ("nodes", "etcd"):
        shutil.rmtree(out / child, ignore_errors=True)
    for child in ("history.jsonl", "journal.json"):
        (out / child).unlink(missing_ok=True)
    hist_path = out / "history.jsonl"
    t0 = time.monotonic()
    seed = f"{args.seed}-{name}"
    cluster = None
    monitor = None
    try:
        cluster = Cluster(out / "nodes", args.orderd, args.nodes, netns=ctx["netns"],
                          node_args=node_args, pid_file=Path(args.out) / "pids",
                          etcd_members=spec.get("etcd_members") or args.etcd_members,
                          etcd_dir=out / "etcd", replication_factor=args.replication_factor,
                          tls_dir=None if args.insecure_cluster else Path(args.out) / "certs")
        nemesis.prepare(name, cluster, out / "nodes")
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        entry.update(status="failed", reason=f"cluster setup: {e}"[:500])
        log(f"[{name}] failed: {entry['reason']}")
        if cluster is not None:
            cluster.stop_all()
        return entry, None
    where = "a namespace each, 10.77.N.2" if ctx["netns"] else "loopback 127.0.0.1"
    where += f"; etcd {','.join(cluster.etcd.urls())}"
    log(f"[{name}] seed {args.seed}; starting {args.nodes} nodes ({where})")
    try:
        try:
            if cluster.start(balance_timeout=60.0) is None:
                raise StartError("the cluster did not balance within 60 s")
        except StartError as e:
            if spec["kind"] == "planted" and e.exit_code == 2 and "unrecognised option" in e.stderr:
                status, reason = skip_verdict(f"orderd rejects {nemesis.PLANTED_FLAG}",
                                              ctx["root"], ctx["allow_skips"])
                entry.update(status=status, reason=reason)
            else:
                entry.update(status="failed", reason=f"cluster start: {e}"[:500])
            log(f"[{name}] {entry['status']}: {entry['reason']}")
            return entry, None
        log(f"[{name}] cluster balanced in {time.monotonic() - t0:.1f} s")
        users = pick_users(args.clients, spec, cluster)
        # a node whose clock is behind reports expires_at that early: allow for the skew
        grace_ms = 1000 + (nemesis.SKEW_MAX_S * 1000 if spec["kind"] == "skew" else 0)
        with HistoryWriter(str(hist_path)) as h:
            h.meta(scenario=name, seed=args.seed, commit=sha,
                   reservation_ttl_ms=RESERVATION_TTL_MS, expiry_grace_ms=grace_ms,
                   nodes=cluster.names(),
                   users={u: {"admin": False} for u in users})  # "admin" is known to the checker
            driver = Driver(h, cluster, seed, users=users, duration=args.duration,
                            max_ops=args.max_ops)
            if not driver.setup():
                entry.update(status="failed", reason="setup: products could not be created")
                return entry, None
            nem = nemesis.Nemesis(cluster, h, driver, random.Random(f"{seed}-nemesis"))
            monitor = EpochMonitor(cluster).start()
            driver.start()
            deadline = time.monotonic() + args.duration
            try:
                nem.run(name, deadline)
            finally:
                nem.heal_all()
                driver.stop()
                driver.join(timeout=30.0)
            t_heal = time.monotonic()
            # with replication this also waits until every replica has caught up (complete
            # ISRs, every follower at lag 0: cluster_ctl.caught_up), so that the journals the
            # audit reads hold what the cluster acknowledged
            balanced = cluster.wait_balanced(timeout=30.0) is not None
            balance_s = round(time.monotonic() - t_heal, 2) if balanced else None
            if not balanced and args.replication_factor > 1:
                entry["not_caught_up"] = caught_up_report(cluster)
            rng = random.Random(f"{seed}-final")
            settled = settle(cluster, driver.placed, rng)
            final_reads(h, cluster, driver, rng)
        entry.update(ops=driver.ops, driver_errors=driver.errors, balanced_after_heal=balanced,
                     balance_s=balance_s,
                     settle_s=settled, heal_to_final_s=round(time.monotonic() - t_heal, 2),
                     nemesis=nem.events, history=str(hist_path),
                     node_starts={n.name: n.starts for n in cluster.nodes})
    finally:
        if monitor is not None:
            monitor.stop()
            entry["status_samples"] = monitor.samples

        def dump():  # nodes dead, data dirs still mounted (disk-full: a tmpfs)
            tool = journal_tool(args.orderd)
            if tool is None or "history" not in entry:
                return
            try:
                j = dump_journals(tool, cluster, out / "journal.json",
                                  replication_factor=args.replication_factor,
                                  observed_epochs=monitor.views if monitor else None)
                entry["journal"] = str(out / "journal.json")
                log(f"[{name}] journal: {len(j['entries'])} records of {len(j['nodes'])} "
                    f"nodes dumped" + (f", {len(j['errors'])} errors" if j["errors"] else ""))
            except Exception as e:  # the audit is then skipped, the run goes on
                log(f"[{name}] journal dump failed: {type(e).__name__}: {e}")

        cluster.stop_all(before_unmount=dump)
        entry["duration_s"] = round(time.monotonic() - t0, 1)
    return entry, hist_path


def judge(entry, report):
    spec = nemesis.SCENARIOS[entry["scenario"]]
    violated = [i["name"] for i in report["invariants"] if not i["ok"]]
    entry["violated"] = violated
    entry["complete"] = report["completeness"]["complete"]
    if spec.get("expect_violation"):
        if violated:
            entry.update(status="passed",
                         reason="checker caught the planted fault (" + ", ".join(violated) + ")")
        else:
            entry.update(status="failed",
                         reason="the checker did NOT catch the planted fault")
    elif violated:
        entry.update(status="failed", reason="violated: " + ", ".join(violated))
    elif not entry["complete"]:
        entry.update(status="failed", reason="incomplete: final reads missing or failed")
    elif entry.get("driver_errors"):
        entry.update(status="failed", reason="driver error: " + entry["driver_errors"][0])
    elif entry.get("not_caught_up"):
        # replicated: 30 s after the heal some shard still lacks a replica in its ISR or has a
        # follower behind, so its writes may stay paused: not everything is served again
        entry.update(status="failed", reason="replicas not caught up 30 s after the heal: "
                     + "; ".join(entry["not_caught_up"][:3]))
    else:
        entry.update(status="passed", reason=None)


def write_case_report(names, entries):
    """py-chaos.json for scripts/test.sh when ORDERMESH_REPORT_DIR is set (case_report.py)."""
    by = {}
    for e in entries:
        by.setdefault(e["status"], []).append(e)
    case_report.write("chaos", names, [e["scenario"] for e in by.get("passed", [])],
                      [e["scenario"] for e in by.get("failed", [])],
                      [(e["scenario"], e["reason"]) for e in by.get("skipped", [])])


def _terminated(signum, frame):
    raise SystemExit(143)


def main(argv=None):
    """Runs the requested scenarios; returns the exit code. However the run ends (also by
    SIGTERM or an exception), the per-case report is written (write_case_report): a requested
    scenario without a final status is then in `defined` only, i.e. it did not run."""
    names, entries = [], []  # filled by _main
    try:
        return _main(argv, names, entries)
    finally:
        if names:
            write_case_report(names, entries)


def _main(argv, names, entries):
    p = argparse.ArgumentParser(prog="python3 -m chaos.run")
    p.add_argument("--scenario", default="all",
                   help="a scenario name, a comma list, or all: " + ", ".join(ORDER))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--duration", type=float, default=20.0, help="workload seconds per scenario")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--replication-factor", type=int, default=1,
                   help="start the cluster with this replication factor (--min-insync 2 above 1)")
    p.add_argument("--max-ops", type=int, default=20000)
    p.add_argument("--out", default=None)
    p.add_argument("--netns", action="store_true",
                   help="we run inside a private network namespace (set by scripts/chaos.sh)")
    p.add_argument("--orderd", default=str(REPO / "build/nodes/orderd"))
    p.add_argument("--coordination", default=None, help=argparse.SUPPRESS)  # refused below
    p.add_argument("--etcd-members", type=int, choices=(1, 3), default=1,
                   help="members of the etcd the runner starts per scenario (etcd-kill-member "
                        "always runs 3)")
    p.add_argument("--insecure-cluster", action="store_true",
                   help="nodes without TLS on the cluster plane (default: mutual TLS, one "
                        "cluster CA per run under OUT/certs, scripts/gen-certs.sh)")
    p.add_argument("--allow-skips", action="store_true",
                   help="as root, report scenarios this machine cannot run as skipped, not "
                        "failed (a developer's machine; CI must not use it)")
    args = p.parse_args(argv)
    if args.coordination is not None:
        p.error(COORDINATION_GONE)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2 ** 31)
    if args.out is None:
        args.out = str(REPO / "var/chaos" / time.strftime("%Y%m%d-%H%M%S"))
    if not 1 <= args.replication_factor <= args.nodes:
        p.error("--replication-factor must be 1..--nodes")
    asked = (nemesis.scenarios_for(args.replication_factor, args.nodes) if args.scenario == "all"
             else args.scenario.split(","))
    unknown = [n for n in asked if n not in nemesis.SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; known: {', '.join(ORDER)}")
    wrong_rf = [nemesis.runs_at(n, args.replication_factor, args.nodes) for n in asked]
    if any(wrong_rf):
        p.error("; ".join(w for w in wrong_rf if w))
    names += asked
    if not 1 <= args.nodes <= 9 or args.duration <= 0:
        p.error("--nodes must be 1..9 and --duration > 0")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminated)  # run the finally blocks: nodes are killed
    ctx = {"netns": args.netns, "root": os.geteuid() == 0, "allow_skips": args.allow_skips}
    if args.netns:
        ctx["hosts_unsupported"] = netns.supported()
    sha = commit()
    mode = f" --etcd-members {args.etcd_members}" if args.etcd_members != 1 else ""
    if args.replication_factor != 1:
        mode += f" --replication-factor {args.replication_factor}"
    log(f"chaos: seed {args.seed} (replay: scripts/chaos.sh --scenario {args.scenario} "
        f"--seed {args.seed} --duration {args.duration:g} --nodes {args.nodes}{mode}); "
        f"out {args.out}")
    if journal_tool(args.orderd) is None:
        log("chaos: no ordermesh-journal next to orderd (nor env ORDERMESH_JOURNAL): the "
            "one-writer journal audit is skipped")
    t0 = time.monotonic()
    runs = []  # entries: main()'s list, so its report sees how far the run got
    for name in names:
        entry, hist = run_scenario(name, args, ctx, sha)
        entries.append(entry)
        if hist is not None:
            runs.append((entry, hist))
    results = {"seed": args.seed, "commit": sha, "netns": args.netns,
               "etcd_members": args.etcd_members,
               "scenarios": entries}
    text = ""
    if runs:
        try:
            checked = checker.check_runs(
                [(load(str(hp)), journal_audit.load(e["journal"]) if e.get("journal") else None)
                 for e, hp in runs])
            for (entry, hp), report in zip(runs, checked["scenarios"]):
                report["history"] = str(hp)
                entry["report"] = report
                judge(entry, report)
            results["checker_total"] = checked["total"]
            text = render(checked)
        except Exception as e:  # a malformed history: every checked scenario failed
            for entry, _ in runs:
                entry.update(status="failed", reason=f"checker: {type(e).__name__}: {e}"[:500])
    passed = sum(e["status"] == "passed" for e in entries)
    failed = sum(e["status"] == "failed" for e in entries)
    skipped = sum(e["status"] == "skipped" for e in entries)
    results["total"] = {"passed": passed, "failed": failed, "skipped": skipped,
                        "seconds": round(time.monotonic() - t0, 1)}
    lines = [text, "", f"chaos scenarios (seed {args.seed}, commit {sha or '?'}, "
                       f"{'private netns' if args.netns else 'plain loopback'}, "
                       f"etcd members {args.etcd_members}):"]
    for e in entries:
        extra = ""
        if e["status"] != "skipped" and "ops" in e:
            extra = (f" [{e['ops']} ops, {e['duration_s']} s, settle "
                     f"{e['settle_s'] if e['settle_s'] is not None else 'TIMEOUT'} s]")
        lines.append(f"  {e['scenario']:<18} {e['status'].upper():<8}"
                     f"{(' ' + e['reason']) if e['reason'] else ''}{extra}")
    tail = f"chaos: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
    lines += [f"  total time {results['total']['seconds']} s", tail]
    summary = "\n".join(lines).lstrip("\n") + "\n"
    with open(Path(args.out) / "results.json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(Path(args.out) / "summary.txt", "w") as f:
        f.write(summary)
    sys.stdout.write(summary)
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
