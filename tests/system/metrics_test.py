#!/usr/bin/env python3
"""GET /metrics on the admin port (issue 14): real orderd processes with --admin-port, scraped
over HTTP on 127.0.0.1 before, while and after orderbench runs against them.

  * one node alone: the text parses as the Prometheus text format 0.0.4 (HELP and TYPE before
    each family's samples, histogram buckets cumulative and ending in +Inf equal to _count, no
    sample twice); while orderbench runs the counters only grow; after it, the requests counted
    by op grew by at least what orderbench reports acknowledged (order.place, order.pay), each
    op's latency histogram count by as much, group commits and fsyncs grew, entities of every
    kind are active, the process has an RSS, open descriptors and a start time, and build info;
    the status page's activity (/status.json) counts orderbench's requests once their 5-second
    intervals are over
  * entities crashed through admin.crash: the restarts and the one quarantine are counted, and
    the quarantined entity's `unavailable` reply counted under its op and code
  * three nodes on a private etcd, replication factor 3: every node reports the ISR size of all
    64 shards (3 once the cluster settled), the shards led add up to 64 over the nodes; under
    orderbench spread over the three nodes, the requests the nodes count add up to at least what
    orderbench reports acknowledged, and every node's fsync count grows (followers write too);
    one node killed -9: the survivors count a failover for each shard it led and lead all 64
  * replication factor 1, a third node joining two: the handoffs of the shards moved to it
    counted in ordermesh_shard_moves_total{kind="handoff"}
  * a node driven over its limits (a connection beyond --max-connections-per-address, logins
    beyond --login-burst-per-user): ordermesh_client_overloaded_replies_total grows by exactly
    the refusals seen, per stage

Values are compared, never timed. Needs /usr/bin/etcd (Debian etcd-server) for the cluster tests.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

ORDERBENCH = None
PLACE_PAY = ("order.place", "order.pay")


# -- reading the text format ------------------------------------------------------------------

def parse_labels(text, line):
    """'a="x",b="y\\"z"' -> {"a": "x", "b": 'y"z'}; strict about quoting and escapes."""
    labels, i = {}, 0
    while i < len(text):
        eqpos = text.index("=", i)
        name = text[i:eqpos]
        check(name.replace("_", "a").isalnum() and not name[0].isdigit(), f"label name: {line}")
        check(text[eqpos + 1] == '"', f"label value must be quoted: {line}")
        j, value = eqpos + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                esc = text[j + 1]
                check(esc in 'n\\"', f"bad escape in {line}")
                value.append("\n" if esc == "n" else esc)
                j += 2
            else:
                value.append(text[j])
                j += 1
        check(name not in labels, f"label twice: {line}")
        labels[name] = "".join(value)
        i = j + 1
        if i < len(text):
            check(text[i] == ",", f"labels must be separated by commas: {line}")
            i += 1
    return labels


def parse_metrics(text):
    """The exposition as {"types": {family: type}, "samples": [(name, labels, value)]}; raises
    (through check) on anything that is not the text format 0.0.4."""
    check(text.endswith("\n"), "the text ends with a newline")
    types, helps, samples, seen = {}, set(), [], set()
    for line in text.splitlines():
        check(line != "", "no empty lines")
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            check(name not in helps, f"HELP twice for {name}")
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            check(kind in ("counter", "gauge", "histogram"), f"type of {name}: {kind}")
            check(name in helps, f"HELP before TYPE for {name}")
            check(name not in types, f"TYPE twice for {name}")
            types[name] = kind
            continue
        check(not line.startswith("#"), f"unexpected comment: {line}")
        head, _, value = line.rpartition(" ")
        if "{" in head:
            check(head.endswith("}"), f"labels end with a brace: {line}")
            name, _, rest = head.partition("{")
            labels = parse_labels(rest[:-1], line)
        else:
            name, labels = head, {}
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        check(family in types, f"sample before its TYPE line: {line}")
        number = float(value.replace("+Inf", "inf"))
        key = (name, tuple(sorted(labels.items())))
        check(key not in seen, f"sample twice: {line}")
        seen.add(key)
        samples.append((name, labels, number))
    check_histograms(types, samples)
    return {"types": types, "samples": samples}


def check_histograms(types, samples):
    """Every histogram series: buckets cumulative, ending in +Inf, +Inf equal to _count."""
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for name, labels, value in samples:
            if name == family + "_bucket":
                rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(rest, []).append((labels["le"], value))
        for rest, buckets in series.items():
            eq(buckets[-1][0], "+Inf", f"{family}{dict(rest)} ends with +Inf")
            bounds = [float(le.replace("+Inf", "inf")) for le, _ in buckets]
            check(bounds == sorted(bounds), f"{family} buckets in order of le")
            counts = [v for _, v in buckets]
            check(counts == sorted(counts), f"{family}{dict(rest)} buckets cumulative: {counts}")
            eq(buckets[-1][1], value_of({"samples": samples}, family + "_count", dict(rest)),
               f"{family}{dict(rest)} +Inf equals _count")


def values(m, name, match=None):
    return [v for n, labels, v in m["samples"]
            if n == name and all(labels.get(k) == x for k, x in (match or {}).items())]


def value_of(m, name, match=None):
    found = values(m, name, match)
    eq(len(found), 1, f"one sample {name}{match or ''}")
    return found[0]


def total(m, name, match=None):
    return sum(values(m, name, match))


# -- nodes with an admin port -----------------------------------------------------------------

def scrape(node):
    url = f"http://{h.HOST}:{node.admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        eq(r.status, 200, f"GET {url}")
        ctype = r.headers.get("Content-Type", "")
        check(ctype.startswith("text/plain"), f"content type {ctype}")
        return parse_metrics(r.read().decode())


def activity(node):
    """The status page's recent activity (/status.json), oldest first."""
    url = f"http://{h.HOST}:{node.admin_port}/status.json"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())["activity"]


def with_admin_port(node):
    node.admin_port = h.free_port()
    node.extra_args += ["--admin-port", str(node.admin_port)]
    return node


def run_bench(hosts, token, *args):
    cmd = [ORDERBENCH, "--host", ",".join(f"{h.HOST}:{n.port}" for n in hosts),
           "--admin-token", token, "--users", "20", "--products", "30", "--duration", "3",
           "--warmup", "0", "--json", "--workload", "place+pay"] + list(args)
    log("$ " + " ".join(cmd).replace(token, "<admin>"))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=h.clean_env())
    for line in p.stderr.splitlines()[-8:]:
        log("  " + line)
    eq(p.returncode, 0, "orderbench exit code")
    return json.loads(p.stdout)


def bench_while_scraping(nodes, token, *args):
    """Runs orderbench and scrapes every node over and over until it ends (at most 200 times);
    returns orderbench's result and the scrapes, in order, per node."""
    scrapes = {n.name: [] for n in nodes}
    done = threading.Event()
    errors = []

    def scraper():
        try:
            for _ in range(200):
                if done.is_set():
                    return
                for n in nodes:
                    scrapes[n.name].append(scrape(n))
                done.wait(0.3)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=scraper, daemon=True)
    t.start()
    try:
        result = run_bench(nodes, token, *args)
    finally:
        done.set()
        t.join(60)
    check(not errors, f"scraping while orderbench ran: {errors}")
    return result, scrapes


def requests_ok(m, op):
    return total(m, "ordermesh_client_requests_total", {"op": op, "code": "ok"})


def check_grows(series, name, match=None):
    """Each scrape's counter is >= the one before."""
    seq = [total(m, name, match) for m in series]
    check(seq == sorted(seq), f"{name}{match or ''} only grows: {seq}")


# -- tests ------------------------------------------------------------------------------------

def test_one_node_counters_move_with_load():
    with h.Session("metrics") as s:
        node = with_admin_port(s.node()).start()
        before = scrape(node)
        eq(before["types"].get("ordermesh_client_requests_total"), "counter", "requests type")
        eq(before["types"].get("ordermesh_client_request_duration_seconds"), "histogram",
           "latency type")
        check(value_of(before, "process_resident_memory_bytes") > 0, "RSS > 0")
        check(value_of(before, "process_open_fds") > 0, "open fds > 0")
        check(value_of(before, "process_start_time_seconds") > 1.6e9, "start time")
        eq(len(values(before, "ordermesh_build_info")), 1, "build info")
        r, scrapes = bench_while_scraping([node], node.admin_token, "--connections", "4",
                                          "--inflight", "2")
        after = scrape(node)
        series = [before] + scrapes[node.name] + [after]
        log(f"{len(series)} scrapes; orderbench: "
            + ", ".join(f"{op} ok {r['requests']['by_op'].get(op, {}).get('ok')}"
                        for op in PLACE_PAY))
        check(len(scrapes[node.name]) >= 2, "scraped while orderbench ran")
        for op in PLACE_PAY:
            acked = r["requests"]["by_op"][op]["ok"]
            check(acked > 0, f"orderbench acknowledged some {op}")
            grew = requests_ok(after, op) - requests_ok(before, op)
            check(grew >= acked, f"{op}: counted {grew} ok, orderbench acknowledged {acked}")
            lat = "ordermesh_client_request_duration_seconds_count"
            grew_lat = total(after, lat, {"op": op}) - total(before, lat, {"op": op})
            check(grew_lat >= acked, f"{op}: latency count grew {grew_lat} >= {acked}")
            check_grows(series, "ordermesh_client_requests_total", {"op": op, "code": "ok"})
        replies = sum(total(after, "ordermesh_client_requests_total", {"op": op})
                      - total(before, "ordermesh_client_requests_total", {"op": op})
                      for op in r["requests"]["by_op"])
        check(replies >= r["requests"]["replies"],
              f"replies counted {replies} >= orderbench's {r['requests']['replies']}")
        for name in ("ordermesh_storage_fsync_seconds_count", "ordermesh_storage_batches_total",
                     "ordermesh_storage_batch_writes_count", "ordermesh_storage_writes_total"):
            check_grows(series, name)
            check(total(after, name) > total(before, name), f"{name} grew")
        for kind in ("user", "product", "inventory", "order"):
            check(total(after, "ordermesh_active_entities", {"kind": kind}) > 0,
                  f"active {kind} entities")
        check(value_of(after, "process_cpu_seconds_total") >=
              value_of(before, "process_cpu_seconds_total"), "CPU seconds grow")
        check(value_of(after, "ordermesh_client_connections_accepted_total") >= 4,
              "orderbench's connections counted")
        # The status page's activity comes from the same histograms: once the 5-second
        # intervals orderbench ran in are over, they show its requests (at most 60 samples).
        replies = r["requests"]["replies"]

        def counted_by_activity():
            samples = activity(node)
            seen = sum(a["requests_per_s"] * 5 for a in samples)
            return (samples, seen) if seen >= replies else None

        samples, seen = h.wait_until(counted_by_activity, 20.0, 0.5,
                                     f"/status.json activity counting {replies} requests")
        busy = [a for a in samples if a["requests_per_s"] > 0]
        log(f"activity: {len(busy)} busy intervals, {seen:.0f} requests, "
            f"p99 {max(a['p99_ms'] for a in busy):.1f} ms at most")
        check(len(samples) <= 60, "the activity window is bounded")
        check(all(a["p99_ms"] > 0 for a in busy), "a busy interval has a p99")


def test_entity_crashes_show_as_restarts_and_a_quarantine():
    with h.Session("metrics-crash") as s:
        node = with_admin_port(s.node(fault_injection=True)).start()
        with node.admin() as adm:
            h.create_product(adm, "gear", 500, 20)
            before = scrape(node)
            crashes = 12  # more than the default restart budget (5 within 10 s)
            for _ in range(crashes):
                adm.request("admin.crash", {"entity": "inventory/gear"})

            def quarantined():
                r = adm.request("inventory.get", {"product_id": "gear"})
                return r.get("ok") is False and r["error"]["code"] == "unavailable"

            h.wait_until(quarantined, 10, 0.1, "inventory/gear quarantined")
        after = scrape(node)
        restarts = (value_of(after, "ordermesh_entity_restarts_total")
                    - value_of(before, "ordermesh_entity_restarts_total"))
        log(f"{crashes} crashes: {restarts:.0f} restarts counted")
        check(restarts >= 6, f"restarts counted: {restarts}")
        eq(total(after, "ordermesh_entity_quarantines_total")
           - total(before, "ordermesh_entity_quarantines_total"), 1, "one quarantine counted")
        check(total(after, "ordermesh_client_requests_total",
                    {"op": "inventory.get", "code": "unavailable"}) >= 1,
              "the quarantined entity's refusal counted by code")


def test_cluster_reports_shards_and_load():
    with h.Session("metrics-cluster") as s:
        etcd = eh.Etcd(s).start()
        c = eh.EtcdCluster(s, etcd, name="metrics", replication_factor=3,
                           extra_args=["--min-insync", "2"])
        c.start(3, balance_timeout=120.0, prepare=with_admin_port)
        nodes = c.nodes

        def isr_settled():
            ms = [scrape(n) for n in nodes]
            full = all(len(values(m, "ordermesh_shard_isr_size")) == 64 and
                       min(values(m, "ordermesh_shard_isr_size")) == 3 for m in ms)
            return ms if full else None

        ms = h.wait_until(isr_settled, 120.0, 1.0, "every node reports 64 shards with ISR 3")
        eq(sum(value_of(m, "ordermesh_shards_led") for m in ms), 64, "shards led over the nodes")
        for m in ms:
            eq(value_of(m, "ordermesh_min_insync"), 2, "min-insync reported")
        r, _ = bench_while_scraping(nodes, c.admin_token, "--connections", "6", "--inflight", "2")
        after = [scrape(n) for n in nodes]
        for op in PLACE_PAY:
            acked = r["requests"]["by_op"][op]["ok"]
            check(acked > 0, f"orderbench acknowledged some {op}")
            grew = sum(requests_ok(a, op) - requests_ok(b, op) for a, b in zip(after, ms))
            check(grew >= acked, f"{op}: the nodes counted {grew} ok, orderbench {acked}")
        for n, a, b in zip(nodes, after, ms):
            name = "ordermesh_storage_fsync_seconds_count"
            check(total(a, name) > total(b, name), f"{n.name}: fsyncs grew")
        lag = [v for m in after for v in values(m, "ordermesh_replication_lag_batches")]
        log(f"replication lag series: {len(lag)}, max {max(lag) if lag else None}")
        check(lag, "the primaries report their followers' lag")

        # kill -9 of one node: the survivors count a failover for each shard it led, and lead
        # every shard between them.
        victim, survivors = nodes[2], nodes[:2]
        led = value_of(after[2], "ordermesh_shards_led")
        failovers = 'ordermesh_shard_failovers_total'
        before_kill = sum(total(m, failovers, {"cause": "primary_lost"}) for m in after[:2])
        victim.kill()

        def failed_over():
            ms2 = [scrape(n) for n in survivors]
            done = sum(total(m, failovers, {"cause": "primary_lost"}) for m in ms2)
            leading = sum(value_of(m, "ordermesh_shards_led") for m in ms2)
            return (ms2, done - before_kill) if leading == 64 else None

        ms2, counted = h.wait_until(failed_over, 60.0, 0.5, "the survivors lead all 64 shards")
        log(f"{victim.name} led {led:.0f} shards; {counted:.0f} failovers counted")
        check(led > 0 and counted >= led, f"failovers counted {counted} for {led} shards lost")


def test_shard_moves_counted_when_a_node_joins():
    """Replication factor 1: a third node joining two moves shards to it, each a handoff the
    controller writes to the shard map and counts in ordermesh_shard_moves_total."""
    with h.Session("metrics-moves") as s:
        etcd = eh.Etcd(s).start()
        c = eh.EtcdCluster(s, etcd, name="moves", replication_factor=1)
        c.start(2, balance_timeout=60.0, prepare=with_admin_port)
        moves = "ordermesh_shard_moves_total"
        before = sum(total(scrape(n), moves, {"kind": "handoff"}) for n in c.nodes)
        joining = c.add(start=False)
        with_admin_port(joining).start()
        c.wait_balanced(timeout=60.0)
        after = [scrape(n) for n in c.nodes]
        # The family appears on the node that wrote a move (the controller) once it has.
        check(any(m["types"].get(moves) == "counter" for m in after), f"{moves} of type counter")
        led = value_of(after[2], "ordermesh_shards_led")
        counted = sum(total(m, moves, {"kind": "handoff"}) for m in after) - before
        log(f"{joining.name} joined and leads {led:.0f} shards; {counted:.0f} handoffs counted "
            f"(before the join: {before:.0f})")
        check(led > 0, f"{joining.name} leads no shard after the join")
        check(counted >= led, f"handoffs counted {counted} for the {led} shards moved to "
              f"{joining.name}")


def test_overloaded_replies_counted():
    """Both stages of ordermesh_client_overloaded_replies_total driven over their limits: a
    connection beyond --max-connections-per-address (stage="connection"), and logins beyond
    --login-burst-per-user (stage="request", also counted by op and code)."""
    overloaded = "ordermesh_client_overloaded_replies_total"
    with h.Session("metrics-overloaded") as s:
        node = with_admin_port(s.node(extra_args=[
            "--max-connections", "8", "--max-connections-per-address", "2",
            "--login-rate-per-user", "0.01", "--login-burst-per-user", "1"])).start()
        with node.admin() as adm:
            adm.ok("user.register", {"user_id": "olga", "password": "pw-123456"})
        time.sleep(0.3)  # the harness's and the admin client's connections are closed
        before = scrape(node)
        held, refused = [], 0
        try:
            for _ in range(6):
                c = socket.create_connection((h.HOST, node.port), timeout=5.0)
                c.settimeout(0.5)
                try:
                    line = c.recv(4096)
                except socket.timeout:
                    held.append(c)  # accepted: the node waits for a request
                    continue
                if line:
                    eq(json.loads(line.split(b"\n")[0])["error"]["code"], "overloaded",
                       "a refused connection's line")
                refused += 1
                c.close()
        finally:
            for c in held:
                c.close()
        eq((len(held), refused), (2, 4), "connections held and refused from one address")
        time.sleep(0.3)  # the held connections are closed, and the node noticed
        rate_limited = 0
        with h.Client(node.port) as c:
            for _ in range(3):  # the registration took the one attempt of the burst
                r = c.request("user.login", {"user_id": "olga", "password": "pw-123456"})
                if not r.get("ok") and r["error"]["code"] == "overloaded":
                    rate_limited += 1
        eq(rate_limited, 3, "logins refused as overloaded beyond the burst")
        after = scrape(node)
        for stage, want in (("connection", refused), ("request", rate_limited)):
            grew = total(after, overloaded, {"stage": stage}) - total(before, overloaded,
                                                                       {"stage": stage})
            log(f'{overloaded}{{stage="{stage}"}} grew by {grew:.0f} ({want} refused)')
            eq(grew, want, f'{overloaded}{{stage="{stage}"}} growth')
        grew = (total(after, "ordermesh_client_requests_total",
                      {"op": "user.login", "code": "overloaded"})
                - total(before, "ordermesh_client_requests_total",
                        {"op": "user.login", "code": "overloaded"}))
        eq(grew, rate_limited, "user.login answered overloaded, by op and code")


if __name__ == "__main__":
    ORDERBENCH = h.take_orderbench_arg()
    h.main([test_one_node_counters_move_with_load,
            test_entity_crashes_show_as_restarts_and_a_quarantine,
            test_cluster_reports_shards_and_load, test_shard_moves_counted_when_a_node_joins,
            test_overloaded_replies_counted],
           __doc__)
