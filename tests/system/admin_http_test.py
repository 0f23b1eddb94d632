#!/usr/bin/env python3
"""System test of orderd's HTTP admin port (docs/OPERATIONS.md, "Health checks and the admin
port"): real orderd processes on 127.0.0.1, real HTTP.

  * single node: /livez, /readyz (200 with every check), /metrics (Prometheus text with the
    build info line), /status and /status.json (the same members and shard map as
    cluster.status), 404 and 405, HEAD, an oversized header (431) and a body (413) refused, the
    port bound to loopback by default, SIGTERM stops it.
  * flags: a bad --admin-port or --admin-bind exits 2 before anything starts.
  * a 3-node etcd cluster (replication factor 3): the first node alone answers /readyz 503 with
    "joined" failing (the cluster waits for three members), then 200 on every node once all
    joined; /metrics on each; a node killed shows up in the others' membership events.
  * SIGTERM with --drain: /readyz answers 503 "draining" while the node hands its shards off.
  * two of three nodes paused (SIGSTOP) on a long lease: the third, cut off from its peers
    but not from etcd, answers /readyz 503 with `peers` failing, and 200 once they are woken.

Run: python3 tests/system/admin_http_test.py --orderd build/nodes/orderd \
  --orderctl build/client/orderctl [-k NAME]
"""

import json
import signal
import subprocess
import time

import admin_http as ah
import etcd_harness as eh
import harness as h
from harness import check, eq, log


def admin_node(s, name="n1"):
    port = h.free_port()
    node = s.node(name=name, extra_args=["--admin-port", str(port)])
    node.admin_port = port
    return node


def test_single_node_endpoints():
    with h.Session("admin-http") as s:
        node = admin_node(s).start()
        port = node.admin_port
        status, headers, body = ah.get(port, "/livez")
        eq((status, body), (200, "ok\n"), "/livez")
        ready = ah.wait_ready(port, timeout=30)
        eq(ready["failing"], [], "/readyz failing checks")
        eq(sorted(c["name"] for c in ready["checks"]),
           ["joined", "lease", "peers", "shards", "storage"],
           "/readyz checks")

        status, headers, body = ah.get(port, "/metrics")
        eq(status, 200, "/metrics status")
        eq(headers.get("content-type"), "text/plain; version=0.0.4", "/metrics content type")
        check(any(line.startswith("ordermesh_build_info{") for line in body.splitlines()),
              f"/metrics has no build info line: {body[:300]!r}")

        status, headers, body = ah.get(port, "/status")
        eq(status, 200, "/status")
        check(headers.get("content-type", "").startswith("text/html"), f"/status: {headers}")
        check("<html" in body and "/status.json" in body, "/status is not the status page")

        # /status.json shows what cluster.status shows (the same rendering).
        with node.client() as c:
            cs = c.ok("cluster.status")
        status, headers, body = ah.get(port, "/status.json")
        eq(status, 200, "/status.json")
        sj = json.loads(body)
        eq(sj["node_id"], "n1", "/status.json node_id")
        eq([m["node_id"] for m in sj["members"]], [m["node_id"] for m in cs["members"]],
           "/status.json members")
        eq({x["shard"]: x["primary"] for x in sj["shards"]},
           {x["shard"]: x["primary"] for x in cs["shards"]}, "/status.json shard primaries")
        check(sj["version"] and sj["uptime_s"] >= 0, f"version/uptime missing: {sj}")
        # The sampler's points (none yet, or a few if this node has run a while: a loaded
        # machine reaches here later; CI saw one), each well formed.
        check(isinstance(sj["activity"], list), f"activity is not a list: {sj['activity']!r}")
        for point in sj["activity"]:
            check(set(point) >= {"unix_ms", "requests_per_s", "p99_ms"}
                  and point["unix_ms"] > 0 and point["requests_per_s"] >= 0
                  and point["p99_ms"] >= 0, f"activity point: {point!r}")

        # Only reads, only these paths.
        eq(ah.get(port, "/nope")[0], 404, "unknown path")
        eq(ah.get(port, "/")[0], 404, "root")
        for method in ("POST", "PUT", "DELETE"):
            status, headers, _ = ah.get(port, "/metrics", method=method)
            eq(status, 405, f"{method} /metrics")
            eq(headers.get("allow"), "GET, HEAD", f"{method} Allow header")
        status, headers, body = ah.get(port, "/metrics", method="HEAD")
        eq((status, body), (200, ""), "HEAD /metrics")

        # Hostile input: a header beyond the limit and a body are refused with an answer.
        big = ah.raw(port, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 16384 +
                     b"\r\n\r\n")
        check(big.startswith("HTTP/1.1 431"), f"oversized header: {big[:80]!r}")
        with_body = ah.raw(port, b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd")
        check(with_body.startswith("HTTP/1.1 413"), f"request body: {with_body[:80]!r}")
        eq(ah.get(port, "/livez")[0], 200, "/livez after the refusals")

        # Loopback by default, and said so in the log.
        eq(ah.listen_address(port), "127.0.0.1", "admin port listen address")
        check(f"admin port on 127.0.0.1:{port}" in node.log_file.read_text(),
              "the log does not name the admin port")

        eq(node.terminate(), 0, "exit code after SIGTERM")
        status, _ = ah.readyz(port)
        eq(status, None, "the admin port after SIGTERM")


def test_admin_port_off_by_default():
    with h.Session("admin-off") as s:
        node = s.node(name="n1").start()
        check("admin port on" not in node.log_file.read_text(), "admin port on without the flag")


def test_bad_admin_flags_exit_2():
    with h.Session("admin-flags") as s:
        for bad in (["--admin-port", "70000"], ["--admin-bind", "not-an-ip"],
                    ["--admin-port", "-1"]):
            p = subprocess.run([h.ARGS.orderd, "--node-id", "n1", "--data-dir",
                                str(s.dir / "d")] + bad, capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL, env=h.clean_env())
            eq(p.returncode, 2, f"orderd {' '.join(bad)}")
            check("admin" in p.stderr, f"{bad}: message does not name the flag: {p.stderr!r}")


def test_cluster_readiness_and_events():
    with h.Session("admin-cluster") as s:
        etcd = eh.Etcd(s).start()
        cluster = eh.EtcdCluster(s, etcd, name="adm", replication_factor=3)
        ports = {}

        def launch():
            """A new node launched, not waited for (alone it cannot answer clients yet)."""
            admin_port = h.free_port()
            node = cluster.add(start=False, extra_args=["--admin-port", str(admin_port)])
            ports[node.name] = admin_port
            node.port, node.cluster_port = h.free_port(), h.free_port()
            node._launch()
            return node

        # The first node alone: a replicated cluster is created only once three members joined,
        # so it is up (its admin port answers) but not ready, and says why.
        first = launch()
        seen = h.wait_until(lambda: ah.readyz(ports["n1"])[1], 30, 0.1, "n1's /readyz to answer")
        status, body = ah.readyz(ports["n1"])
        eq(status, 503, "/readyz of a node waiting for its cluster")
        check("joined" in body["failing"], f"/readyz does not say joined fails: {body}")
        eq(ah.get(ports["n1"], "/livez")[0], 200, "/livez while not ready")
        log(f"n1 before the cluster exists: {seen['failing']}")

        others = [launch(), launch()]
        for node in [first] + others:
            check(node.wait_ready(60), f"{node.name} never answered cluster.status")
        cluster.wait_balanced(timeout=90)
        for name, port in ports.items():
            ready = ah.wait_ready(port, timeout=60)
            eq(ready["failing"], [], f"{name} /readyz")
            status, headers, body = ah.get(port, "/metrics")
            check(status == 200 and "ordermesh_build_info{" in body, f"{name} /metrics")
            eq(ah.listen_address(port), "127.0.0.1", f"{name} admin listen address")

        # /status.json of a member shows what its cluster.status shows.
        cs = cluster.status(first)
        check(cs is not None, "no cluster.status from n1")
        sj = ah.wait_view(ports["n1"], cs)
        eq(len(sj["members"]), 3, "members in /status.json")

        # A member killed: the others see it go (unreachable, left, or its shards failed over).
        victim = cluster.node("n3")
        victim.kill()

        def saw_n3_go():
            try:
                events = json.loads(ah.get(ports["n1"], "/status.json")[2])["membership_events"]
            except (OSError, ValueError):
                return None
            hits = [e for e in events if e["kind"] in ("suspected", "left", "primary") and
                    ("n3" in e["text"])]
            return hits or None

        hits = h.wait_until(saw_n3_go, 60, 0.2, "n1's membership events to show n3 going")
        log(f"n1 saw: {[e['text'] for e in hits]}")


def test_not_ready_while_draining():
    """SIGTERM with --drain (replication factor 1: the node hands every shard it owns to the
    other member first, which takes seconds): /readyz answers 503 "draining" from the signal
    on, while /livez still answers."""
    with h.Session("admin-drain") as s:
        etcd = eh.Etcd(s).start()
        cluster = eh.EtcdCluster(s, etcd, name="drn", replication_factor=1)
        cluster.add()
        port = h.free_port()
        leaving = cluster.add(extra_args=["--admin-port", str(port), "--drain"])
        cluster.wait_balanced(timeout=90)
        ah.wait_ready(port, timeout=60)
        leaving.proc.send_signal(signal.SIGTERM)  # the pid this test started

        def draining():
            status, body = ah.readyz(port)
            if status == 503 and "joined" in body["failing"]:
                return body
            check(leaving.alive(), "n2 exited before /readyz was seen failing")
            return None

        body = h.wait_until(draining, 30, 0.02, "/readyz to fail after SIGTERM")
        detail = next(c["detail"] for c in body["checks"] if c["name"] == "joined")
        check("draining" in detail, f"/readyz does not say draining: {body}")
        eq(leaving.proc.wait(timeout=120), 0, "exit code after the drain")


def test_not_ready_while_cut_off():
    """Two of three nodes paused (SIGSTOP) on a 10 s lease: the third still renews its lease
    (etcd answers it) but reaches no majority of its peers, so it is cut off: /readyz answers 503
    with `peers` failing while the lease check holds, and 200 again once they are woken."""
    with h.Session("admin-cut-off") as s:
        etcd = eh.Etcd(s).start()
        cluster = eh.EtcdCluster(s, etcd, name="cut", lease_ttl="10s", replication_factor=3,
                                 extra_args=["--min-insync", "2"])

        def with_admin_port(node):
            node.admin_port = h.free_port()
            node.extra_args += ["--admin-port", str(node.admin_port)]

        st = cluster.start(3, balance_timeout=90, prepare=with_admin_port)
        for node in cluster.nodes:
            ah.wait_ready(node.admin_port, timeout=60)
        alive = cluster.node(st["controller"])
        paused = [n for n in cluster.nodes if n is not alive]
        port = alive.admin_port

        def cut_off():
            status, body = ah.readyz(port)
            return body if status == 503 and "peers" in body["failing"] else None

        # A user whose shard a paused node leads: the cut-off node cannot serve it.
        led = {sh["shard"]: sh["primary"] for sh in st["shards"]}
        user = next(f"cut-{i}" for i in range(10000)
                    if led[h.shard_of("user", f"cut-{i}", st["shard_count"])] != alive.name)
        for n in paused:
            n.proc.send_signal(signal.SIGSTOP)  # pids this test started
        t0 = time.monotonic()
        try:
            # --suspect-after (1 s) plus a sampling interval (1 s), well inside the 10 s lease.
            body = h.wait_until(cut_off, 7, 0.1, f"{alive.name}'s /readyz to say it is cut off")
            took = time.monotonic() - t0
            # Its clients are told to go elsewhere (docs/PROTOCOL.md, "retry_elsewhere").
            with alive.client() as cl:
                refused = cl.request("user.register", {"user_id": user, "password": "pw-cut-1"})
            during = cluster.status(alive, timeout=3.0)
        finally:
            for n in paused:
                n.proc.send_signal(signal.SIGCONT)
        t1 = time.monotonic()
        detail = next(c["detail"] for c in body["checks"] if c["name"] == "peers")
        check("cut off from its peers" in detail, f"/readyz detail: {body}")
        check("lease" not in body["failing"], f"the lease failed too, so this did not check the "
              f"cut-off alone: {body}")
        err = refused.get("error") or {}
        check(err.get("code") == "unavailable" and err.get("retry_elsewhere") is True,
              f"a request to the cut-off node is refused with retry_elsewhere: {refused}")
        def own_entry(st):
            return next((m for m in (st or {}).get("members", [])
                         if m["node_id"] == alive.name), {})
        check(own_entry(during).get("cut_off") is True,
              f"cluster.status says cut_off while it is: {own_entry(during)}")
        ah.wait_ready(port, timeout=20)
        check(own_entry(cluster.status(alive)).get("cut_off") is False,
              f"cluster.status says not cut off once ready: {own_entry(cluster.status(alive))}")
        with alive.client() as cl:
            cl.ok_retry("user.register", {"user_id": user, "password": "pw-cut-1"})
            again = cl.request("user.register", {"user_id": user, "password": "pw-cut-1"})
        check("retry_elsewhere" not in (again.get("error") or {}),
              f"no retry_elsewhere once it reaches its peers again: {again}")
        log(f"{alive.name} not ready {took:.1f}s after its peers were paused (failing: "
            f"{body['failing']}), ready {time.monotonic() - t1:.1f}s after they were woken")


if __name__ == "__main__":
    h.main([test_single_node_endpoints, test_admin_port_off_by_default,
            test_bad_admin_flags_exit_2, test_cluster_readiness_and_events,
            test_not_ready_while_draining, test_not_ready_while_cut_off],
           "orderd's HTTP admin port")
