"""What a run measured, beside right or wrong: counts, availability, recovery, latency.

These are numbers, not verdicts: a run with low availability during a fault can be perfectly
correct. Definitions (all from the history's monotonic `time`):
  * counts: every invoke is one attempted operation; its outcome is ok, fail, or info (no
    reply, or an outcome-unknown error; an invoke never completed is info).
  * availability: operations are inside a fault if invoked while any nemesis window was open
    (start..stop), else outside. ok_fraction = ok / attempted; answered_fraction =
    (ok + fail) / attempted (an explicit refusal such as out_of_stock is still an answer).
  * recovery, per nemesis stop (heal, restart): seconds from the stop to the completion of the
    first ok operation after it: of any operation; of one on an entity that got an `info`
    during the window (the entities the fault hurt); of one sent to a node the fault named.
    None when there was no such operation.
  * latency: of ok operations (completion - invoke), in ms, nearest-rank percentiles.
  * windows (per nemesis window, `windows()`): `inside`, the availability of the operations
    invoked while that window was open; `longest_no_ok_s`, the longest stretch from the window's
    start to the first ok completion after its stop during which no operation at all completed
    ok (the cluster as a whole answered nothing); `failover_s`: for every entity the fault hurt
    (an `info` inside the window), the seconds from the window's start to the first ok
    completion on that entity after its first `info` in the window (when it was served again:
    after a failover, or after the node came back), summarised as p50 / max over those
    entities with the count never served again before the run ended (`never`).
  * requests (per logical request, `logical_requests()`): what a client sees. The driver sends
    a request again, same args, while its outcome is unknown (no reply, `unavailable`, ...), up
    to MAX_ATTEMPTS / MAX_FAILOVERS; a logical request is one process's consecutive attempts
    with the same op and args, each after one that was not ok. It is inside a fault if its first
    attempt was invoked while a window was open; `ok_fraction` is the share that ended ok,
    `answered_fraction` the share that ended ok or with a definite refusal, and
    `latency_s` (per window) the time from its first invoke to its ok completion. The
    attempt-level figures above count each retry again: a node that answers `unavailable` at
    once (so that the client retries elsewhere) lowers them, one that keeps the client waiting
    for its timeout does not, while the client is served sooner by the first.
"""

import bisect
import math
from collections import Counter, defaultdict


def counts(history):
    by_op = defaultdict(Counter)
    fail_codes, info_codes = Counter(), Counter()
    no_reply = 0
    for op in history.ops:
        by_op[op.op]["attempted"] += 1
        by_op[op.op][op.outcome] += 1
        if op.outcome == "fail":
            fail_codes[op.error_code or "?"] += 1
        elif op.outcome == "info":
            info_codes[op.error_code or "no_completion"] += 1
            no_reply += op.completion is None
    total = Counter()
    for c in by_op.values():
        total.update(c)
    return {"attempted": total["attempted"], "ok": total["ok"], "fail": total["fail"],
            "info": total["info"], "info_never_completed": no_reply,
            "by_op": {k: {o: v[o] for o in ("attempted", "ok", "fail", "info")}
                      for k, v in sorted(by_op.items())},
            "fail_codes": dict(sorted(fail_codes.items())),
            "info_codes": dict(sorted(info_codes.items()))}


def _merged_windows(history):
    spans = sorted((w.t_start, w.t_stop(history.end_time)) for w in history.windows)
    merged = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged


def availability_of(c):
    n = c["attempted"]
    return {"attempted": n, "ok": c["ok"], "fail": c["fail"], "info": c["info"],
            "ok_fraction": round(c["ok"] / n, 6) if n else None,
            "answered_fraction": round((c["ok"] + c["fail"]) / n, 6) if n else None}


def logical_requests(history):
    """The attempts grouped into logical requests (module docstring), each a list of ops in
    invoke order; the list is in order of first invoke."""
    by_process = defaultdict(list)
    for op in sorted(history.ops, key=lambda o: o.t_invoke):
        by_process[op.process].append(op)
    groups = []
    for ops in by_process.values():
        cur = None
        for op in ops:
            prev = cur[-1] if cur else None
            if prev is not None and prev.outcome != "ok" and prev.op == op.op and \
                    prev.args == op.args:
                cur.append(op)
            else:
                cur = [op]
                groups.append(cur)
    groups.sort(key=lambda g: g[0].t_invoke)
    return groups


def first_ok(group):
    """The first ok attempt of a logical request, or None."""
    return next((op for op in group if op.outcome == "ok"), None)


def requests_of(groups):
    """count, ok (some attempt ok) and answered (ok, or its last attempt a definite refusal such
    as out_of_stock: the request got an answer) of logical requests."""
    n = len(groups)
    ok = sum(1 for g in groups if first_ok(g) is not None)
    answered = sum(1 for g in groups if first_ok(g) is not None or g[-1].outcome == "fail")
    return {"count": n, "ok": ok, "ok_fraction": round(ok / n, 6) if n else None,
            "answered_fraction": round(answered / n, 6) if n else None}


def _inside(merged, starts, t):
    i = bisect.bisect_right(starts, t) - 1
    return i >= 0 and t <= merged[i][1]


def availability(history):
    merged = _merged_windows(history)
    starts = [a for a, _ in merged]
    inside, outside = Counter(), Counter()
    for op in history.ops:
        side = inside if _inside(merged, starts, op.t_invoke) else outside
        side["attempted"] += 1
        side[op.outcome] += 1
    req_in, req_out = [], []
    for g in logical_requests(history):
        (req_in if _inside(merged, starts, g[0].t_invoke) else req_out).append(g)
    fault_time = sum(b - a for a, b in merged)
    return {"inside_faults": availability_of(inside), "outside_faults": availability_of(outside),
            "requests_inside_faults": requests_of(req_in),
            "requests_outside_faults": requests_of(req_out),
            "fault_seconds": round(fault_time, 6),
            "run_seconds": round(history.end_time, 6)}


def entity_of(op):
    """The entity an operation is about (retries of it name the same one)."""
    a = op.args
    if op.op in ("order.place", "order.get", "order.pay", "order.cancel"):
        return ("order", a.get("order_id"))
    if op.op in ("user.get", "user.deposit", "order.list"):
        return ("user", a.get("user_id"))
    if op.op in ("inventory.add", "inventory.get"):
        return ("inventory", a.get("product_id"))
    if op.op in ("product.get", "product.create"):
        return ("product", a.get("product_id"))
    return None


def recovery(history):
    oks = sorted((op for op in history.ops if op.outcome == "ok"), key=lambda o: o.t_complete)
    done = [op.t_complete for op in oks]
    infos = sorted((op for op in history.ops if op.outcome == "info"), key=lambda o: o.t_invoke)
    info_starts = [op.t_invoke for op in infos]
    out = []
    for w in history.windows:
        entry = {"fault": w.fault, "start": w.t_start,
                 "stop": None if w.stop is None else w.stop["time"],
                 "first_ok_s": None, "first_ok_affected_s": None, "first_ok_on_nodes_s": None}
        out.append(entry)
        if w.stop is None:
            continue
        stop = w.stop["time"]
        lo = bisect.bisect_left(info_starts, w.t_start)
        hi = bisect.bisect_right(info_starts, stop)
        hurt = {entity_of(op) for op in infos[lo:hi]}
        hurt.discard(None)
        entry["affected_entities"] = len(hurt)
        for op in oks[bisect.bisect_left(done, stop):]:
            since = round(op.t_complete - stop, 6)
            if entry["first_ok_s"] is None:
                entry["first_ok_s"] = since
            if entry["first_ok_affected_s"] is None and entity_of(op) in hurt:
                entry["first_ok_affected_s"] = since
            if entry["first_ok_on_nodes_s"] is None and op.node in w.nodes:
                entry["first_ok_on_nodes_s"] = since
            if (entry["first_ok_affected_s"] is not None or not hurt) and \
                    (entry["first_ok_on_nodes_s"] is not None or not w.nodes):
                break
    return out


def windows(history):
    """Per nemesis window: availability inside it, the longest stretch without any ok, and
    the failover time of the entities it hurt (module docstring)."""
    oks = sorted((op for op in history.ops if op.outcome == "ok"), key=lambda o: o.t_complete)
    done = [op.t_complete for op in oks]
    by_invoke = sorted(history.ops, key=lambda o: o.t_invoke)
    starts = [op.t_invoke for op in by_invoke]
    ok_by_entity = defaultdict(list)   # entity -> sorted ok completion times
    groups = logical_requests(history)
    group_starts = [g[0].t_invoke for g in groups]
    for op in oks:
        ent = entity_of(op)
        if ent is not None:
            ok_by_entity[ent].append(op.t_complete)
    out = []
    for w in history.windows:
        a, b = w.t_start, w.t_stop(history.end_time)
        inside = Counter()
        first_info = {}
        for op in by_invoke[bisect.bisect_left(starts, a):bisect.bisect_right(starts, b)]:
            inside["attempted"] += 1
            inside[op.outcome] += 1
            ent = entity_of(op)
            if op.outcome == "info" and ent is not None and ent not in first_info:
                first_info[ent] = op.t_invoke
        # the longest stretch in [a, first ok after b] without an ok completion
        i = bisect.bisect_left(done, a)
        j = bisect.bisect_left(done, b)
        end = done[j] if j < len(done) else history.end_time
        marks = [a] + done[i:j] + [end]
        gap = max(y - x for x, y in zip(marks, marks[1:])) if len(marks) > 1 else 0.0
        times, never = [], 0
        for ent, t_info in first_info.items():
            ts = ok_by_entity.get(ent, [])
            k = bisect.bisect_right(ts, t_info)
            if k < len(ts):
                times.append(round(ts[k] - a, 6))
            else:
                never += 1
        fo = percentiles(times)
        fo = {"hurt": len(first_info), "p50": fo.get("p50"), "max": fo.get("max"),
              "never": never}
        mine = groups[bisect.bisect_left(group_starts, a):bisect.bisect_right(group_starts, b)]
        requests = requests_of(mine)
        took = [first_ok(g).t_complete - g[0].t_invoke for g in mine if first_ok(g)]
        lat = percentiles(took)
        requests["latency_s"] = {k: round(lat[k], 6) for k in ("p50", "p99", "max") if k in lat}
        out.append({"fault": w.fault, "start": a, "stop": None if w.stop is None else b,
                    "inside": availability_of(inside), "requests": requests,
                    "longest_no_ok_s": round(gap, 6), "failover_s": fo})
    return out


def percentiles(values):
    """p50/p90/p99/max (nearest rank) of a list of numbers; counts only when empty."""
    if not values:
        return {"count": 0}
    v = sorted(values)

    def rank(p):
        return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)]

    return {"count": len(v), "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": v[-1]}


def latencies_ms(history):
    """{op: [ms, ...]} of the ok operations."""
    out = defaultdict(list)
    for op in history.ops:
        if op.outcome == "ok":
            out[op.op].append(round((op.t_complete - op.t_invoke) * 1000.0, 3))
    return out


def latency_summary(by_op):
    every = [x for xs in by_op.values() for x in xs]
    return {"all": percentiles(every),
            "by_op": {op: percentiles(xs) for op, xs in sorted(by_op.items())}}
