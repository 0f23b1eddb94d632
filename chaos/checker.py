"""The chaos checker: judges a history (history.py) against ordermesh's invariants.

    python3 -m chaos.checker HISTORY.jsonl [HISTORY.jsonl ...] [--out results.json]
        [--summary summary.txt] [--journal-audit JOURNAL.json ...]
        [--max-violations N] [--max-witnesses N]

Each history is one scenario; the report has one entry per scenario and a total. It prints a
readable summary whose last line is `chaos-check: N invariants passed, M failed` (an invariant
fails if it failed in any scenario; one skipped everywhere counts as neither). Exit status: 0
all passed; 1 some invariant violated; 2 no violation, but a history is malformed or
incomplete (final reads missing or failed, so some checks could not run).

The checker is its own code: it shares nothing with the cluster and reads only the history
(and, optionally, a journal dump per history, in the order the histories are given).
"""

import argparse
import contextlib
import gc
import json
import sys
from collections import Counter

from chaos import journal_audit as journal
from chaos import metrics
from chaos.facts import Facts
from chaos.history import History, HistoryError, load, parse
from chaos.invariants import RULES, Finding
from chaos.report import render

@contextlib.contextmanager
def _without_gc():
    """A history of a few hundred thousand records is that many small dicts, none in a cycle;
    the cyclic collector would rescan them over and over (3x the run time), so it pauses."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# The order: the journal audit comes before isolation.
ORDER = [name for name, _, _ in RULES[:-1]] + [journal.NAME, RULES[-1][0]]


def _judge(history, journal_dump, limits):
    facts = Facts(history)
    findings = {}
    for name, description, rule in RULES:
        findings[name] = Finding(name, description, **limits)
        rule(facts, findings[name])
    findings[journal.NAME] = journal.audit(journal_dump, facts, **limits)
    findings = [findings[name] for name in ORDER]
    lost = sum(f.lost for f in findings)
    counts = metrics.counts(history)
    counts["acknowledged_but_lost"] = lost
    latencies = metrics.latencies_ms(history)
    meta = history.meta
    report = {
        "scenario": meta.get("scenario"), "seed": meta.get("seed"), "commit": meta.get("commit"),
        "ok": all(f.count == 0 for f in findings),
        "invariants": [f.result() for f in findings],
        "counts": counts,
        "acknowledged_but_lost": lost,
        "availability": metrics.availability(history),
        "recovery": metrics.recovery(history),
        "windows": metrics.windows(history),
        "latency_ms": metrics.latency_summary(latencies),
        "completeness": facts.completeness(),
    }
    return report, latencies


def check(history_records, journal_audit=None, max_violations=100, max_witnesses=20):
    """The report of one history (a list of records, or a parsed History): one entry per
    invariant {name, ok, violations: [{message, witnesses}]}, plus counts, availability,
    recovery, latency and completeness. Raises HistoryError on a malformed history."""
    limits = {"max_violations": max_violations, "max_witnesses": max_witnesses}
    with _without_gc():
        history = (history_records if isinstance(history_records, History)
                   else parse(history_records))
        return _judge(history, journal_audit, limits)[0]


def check_runs(runs, max_violations=100, max_witnesses=20):
    """runs: [(history records or History, journal dump or None)]. Returns
    {"scenarios": [report, ...], "total": {...}}."""
    limits = {"max_violations": max_violations, "max_witnesses": max_witnesses}
    reports, all_latencies = [], {}
    with _without_gc():
        return _check_runs(runs, limits, reports, all_latencies)


def _check_runs(runs, limits, reports, all_latencies):
    for records, dump in runs:
        history = records if isinstance(records, History) else parse(records)
        report, latencies = _judge(history, dump, limits)
        reports.append(report)
        for op, xs in latencies.items():
            all_latencies.setdefault(op, []).extend(xs)
    return {"scenarios": reports, "total": _total(reports, all_latencies)}


def _requests_total(c):
    n = c["count"]
    return {"count": n, "ok": c["ok"], "ok_fraction": round(c["ok"] / n, 6) if n else None,
            "answered_fraction": round(c["answered"] / n, 6) if n else None}


def _total(reports, latencies):
    counts = Counter()
    by_op = {}
    inside, outside = Counter(), Counter()
    req_in, req_out = Counter(), Counter()
    for r in reports:
        c = r["counts"]
        counts.update({k: c[k] for k in ("attempted", "ok", "fail", "info",
                                         "info_never_completed", "acknowledged_but_lost")})
        for op, oc in c["by_op"].items():
            by_op.setdefault(op, Counter()).update(oc)
        inside.update({k: r["availability"]["inside_faults"][k]
                       for k in ("attempted", "ok", "fail", "info")})
        outside.update({k: r["availability"]["outside_faults"][k]
                        for k in ("attempted", "ok", "fail", "info")})
        for total, key in ((req_in, "requests_inside_faults"),
                           (req_out, "requests_outside_faults")):
            req = r["availability"].get(key, {})
            total.update({k: req.get(k, 0) for k in ("count", "ok")})
            total["answered"] += round((req.get("answered_fraction") or 0) * req.get("count", 0))
    invariants = []
    for name in ORDER:
        entries = [e for r in reports for e in r["invariants"] if e["name"] == name]
        judged = [e for e in entries if not e.get("skipped")]
        invariants.append({"name": name, "ok": all(e["ok"] for e in entries),
                           "skipped": not judged and bool(entries),
                           "violation_count": sum(e["violation_count"] for e in entries),
                           "failed_in": [r["scenario"] for r in reports for e in r["invariants"]
                                         if e["name"] == name and not e["ok"]]})
    recoveries = [w["first_ok_affected_s"] if w.get("first_ok_affected_s") is not None
                  else w["first_ok_s"] for r in reports for w in r["recovery"]]
    recoveries = [x for x in recoveries if x is not None]
    total = dict(counts)
    total["by_op"] = {op: dict(c) for op, c in sorted(by_op.items())}
    return {
        "scenarios": len(reports),
        "ok": all(r["ok"] for r in reports),
        "complete": all(r["completeness"]["complete"] for r in reports),
        "counts": total,
        "invariants": invariants,
        "availability": {"inside_faults": metrics.availability_of(inside),
                         "outside_faults": metrics.availability_of(outside),
                         "requests_inside_faults": _requests_total(req_in),
                         "requests_outside_faults": _requests_total(req_out)},
        "recovery_s": metrics.percentiles(recoveries),
        "latency_ms": metrics.latency_summary(latencies),
    }


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m chaos.checker",
                                description="Check chaos histories against the invariants.")
    p.add_argument("histories", nargs="+", metavar="HISTORY.jsonl")
    p.add_argument("--out", help="write the full report (JSON) here, e.g. results.json")
    p.add_argument("--summary", help="also write the readable summary to this file")
    p.add_argument("--journal-audit", action="append", default=[], metavar="JOURNAL.json",
                   help="journal dump (journal_audit.py); once per history, in their order")
    p.add_argument("--max-violations", type=int, default=100)
    p.add_argument("--max-witnesses", type=int, default=20)
    args = p.parse_args(argv)
    if args.journal_audit and len(args.journal_audit) != len(args.histories):
        p.error("give --journal-audit once per history, or not at all")
    try:
        with _without_gc():
            dumps = [journal.load(j) for j in args.journal_audit] or [None] * len(args.histories)
            runs = [(load(h), d) for h, d in zip(args.histories, dumps)]
            results = check_runs(runs, args.max_violations, args.max_witnesses)
    except (HistoryError, OSError, ValueError) as e:
        print(f"chaos-check: cannot check: {e}")
        return 2
    for r, path in zip(results["scenarios"], args.histories):
        r["history"] = path
    text = render(results)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, sort_keys=False)
            f.write("\n")
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if not results["total"]["ok"]:
        return 1
    return 0 if results["total"]["complete"] else 2


if __name__ == "__main__":
    sys.exit(main())
