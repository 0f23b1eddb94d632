"""The readable summary of a checker result (results.json holds everything; this is for a
person reading a CI log: the verdicts first, a few witnesses per violation, the numbers)."""

import json

SHOWN_VIOLATIONS = 5
SHOWN_WITNESSES = 6
WITNESS_CHARS = 300


def _frac(x):
    return "-" if x is None else f"{x:.3f}"


def _secs(x):
    return "never" if x is None else f"{x:.3f}s"


def _availability(a):
    i, o = a["inside_faults"], a["outside_faults"]
    line = (f"availability: inside faults {_frac(i['ok_fraction'])} ok, "
            f"{_frac(i['answered_fraction'])} answered of {i['attempted']}; outside "
            f"{_frac(o['ok_fraction'])} ok, {_frac(o['answered_fraction'])} answered of "
            f"{o['attempted']}")
    ri, ro = a.get("requests_inside_faults"), a.get("requests_outside_faults")
    if ri and ro:
        line += (f"\navailability per request (retries included): inside faults "
                 f"{_frac(ri['ok_fraction'])} ok, {_frac(ri.get('answered_fraction'))} answered "
                 f"of {ri['count']}; outside {_frac(ro['ok_fraction'])} ok, "
                 f"{_frac(ro.get('answered_fraction'))} answered of {ro['count']}")
    return line


def _latency(lat):
    a = lat["all"]
    if not a["count"]:
        return "latency of ok ops: none"
    return (f"latency of ok ops (ms): p50 {a['p50']} p90 {a['p90']} p99 {a['p99']} "
            f"max {a['max']} (n={a['count']})")


def _counts(c):
    return (f"operations: {c['attempted']} attempted, {c['ok']} ok, {c['fail']} fail, "
            f"{c['info']} info ({c['info_never_completed']} never completed); "
            f"acknowledged but lost: {c['acknowledged_but_lost']}")


def _window(w):
    i, fo = w["inside"], w["failover_s"]
    hurt = (f"failover of {fo['hurt']} hurt entities: p50 {_secs(fo['p50'])} max "
            f"{_secs(fo['max'])} from the start" + (f", {fo['never']} never served again"
                                                     if fo["never"] else "")
            if fo["hurt"] else "no entity hurt")
    req = w.get("requests")
    per_request = ""
    if req:
        lat = req.get("latency_s", {})
        per_request = (f" ({_frac(req['ok_fraction'])} of {req['count']} requests"
                       + (f", p99 {_secs(lat['p99'])}" if "p99" in lat else "") + ")")
    return (f"window: {w['fault']} ({w['start']:.3f}s-"
            f"{'end' if w['stop'] is None else format(w['stop'], '.3f') + 's'}): inside "
            f"{_frac(i['ok_fraction'])} ok of {i['attempted']}{per_request}; longest stretch "
            f"without an ok {w['longest_no_ok_s']:.3f}s; {hurt}")


def _invariant(e, lines):
    if e.get("skipped"):
        lines.append(f"  SKIP {e['name']}: {e['skipped']}")
        return
    if e["ok"]:
        extra = f" ({e['unverified_count']} unverified)" if e.get("unverified") else ""
        lines.append(f"  PASS {e['name']}{extra}")
        return
    lines.append(f"  FAIL {e['name']}: {e['violation_count']} violation(s) - {e['description']}")
    for v in e["violations"][:SHOWN_VIOLATIONS]:
        lines.append(f"    - {v['message']}")
        for w in v["witnesses"][:SHOWN_WITNESSES]:
            text = json.dumps(w, separators=(",", ":"))
            if len(text) > WITNESS_CHARS:
                text = text[:WITNESS_CHARS] + "..."
            lines.append(f"        {text}")
        hidden = len(v["witnesses"]) - SHOWN_WITNESSES + v.get("witnesses_omitted", 0)
        if hidden > 0:
            lines.append(f"        ... {hidden} more witness record(s)")
    if e["violation_count"] > SHOWN_VIOLATIONS:
        lines.append(f"    ... {e['violation_count'] - SHOWN_VIOLATIONS} more violation(s) "
                     f"in results.json")


def _scenario(r, lines):
    lines.append(f"== scenario {r.get('scenario')} (seed {r.get('seed')}, commit "
                 f"{r.get('commit')}){' ' + r['history'] if r.get('history') else ''} ==")
    lines.append(_counts(r["counts"]))
    lines.append(_availability(r["availability"]))
    for w in r["recovery"]:
        if w["stop"] is None:
            lines.append(f"recovery: {w['fault']} (from {w['start']:.3f}s) never stopped")
        else:
            lines.append(f"recovery: {w['fault']} stopped at {w['stop']:.3f}s: first ok "
                         f"{_secs(w['first_ok_s'])}, on hurt entities "
                         f"{_secs(w['first_ok_affected_s'])}, on its nodes "
                         f"{_secs(w['first_ok_on_nodes_s'])}")
    for w in r.get("windows", ()):
        lines.append(_window(w))
    lines.append(_latency(r["latency_ms"]))
    lines.append("invariants:")
    for e in r["invariants"]:
        _invariant(e, lines)
    comp = r["completeness"]
    if not comp["complete"]:
        lines.append(f"INCOMPLETE: {comp['missing_count']} final read(s) missing "
                     f"{comp['missing_final_read'][:10]}, {comp['unreadable_count']} failed "
                     f"{comp['unreadable_final_read'][:10]}: checks needing them were skipped "
                     f"or widened")


def render(results):
    lines = []
    for r in results["scenarios"]:
        _scenario(r, lines)
        lines.append("")
    t = results["total"]
    lines.append(f"== total: {t['scenarios']} scenario(s) ==")
    lines.append(_counts(t["counts"]))
    lines.append(_availability(t["availability"]))
    rec = t["recovery_s"]
    if rec["count"]:
        lines.append(f"recovery after heal/restart (s): p50 {rec['p50']} p90 {rec['p90']} "
                     f"max {rec['max']} (n={rec['count']})")
    lines.append(_latency(t["latency_ms"]))
    passed = failed = 0
    for e in t["invariants"]:
        if e["skipped"]:
            lines.append(f"  SKIP {e['name']}")
        elif e["ok"]:
            passed += 1
            lines.append(f"  PASS {e['name']}")
        else:
            failed += 1
            lines.append(f"  FAIL {e['name']}: {e['violation_count']} violation(s) in "
                         f"{e['failed_in']}")
    if not t["complete"]:
        lines.append("INCOMPLETE: some final reads are missing or failed (see above)")
    lines.append(f"chaos-check: {passed} invariants passed, {failed} failed")
    return "\n".join(lines)
