#!/usr/bin/env python3
"""The status page (GET /status) in a real browser: Debian's chromium, headless, loads the page
from a real orderd, and what the page shows (members, the grouped shard map's primaries, the
activity graph or "no samples yet") is checked against cluster.status. A screenshot of each run is kept under
the build dir (test-artifacts/status_page*.png) to look at.

A third case serves the page's file with a made-up /status.json: the activity graph drawn from
samples, and values that look like HTML shown as text.

Without chromium (scripts/setup.sh installs it) every case is reported skipped, never passed,
and the script exits 77 (ctest's SKIP_RETURN_CODE for this test).

Run: python3 tests/system/status_page_test.py --orderd build/nodes/orderd \
  --orderctl build/client/orderctl [-k NAME]
"""

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import admin_http as ah
import etcd_harness as eh
import harness as h
from harness import check, eq, log

CHROMIUM = shutil.which("chromium")
CHROMIUM_TIMEOUT = 120  # seconds one headless run may take before its process group is killed


class StatusPageDom(HTMLParser):
    """What the rendered page shows: member rows, shard-group rows, body flags, all text."""

    def __init__(self):
        super().__init__()
        self.members = {}  # node id -> state
        self.shard_primary = {}  # shard -> primary, expanded from the grouped rows
        self.groups = 0
        self.body = {}
        self.ids = set()
        self.text = []  # the text people see (not the script's source)
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._in_script = tag == "script"
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "body":
            self.body = a
        if tag == "tr" and a.get("class") == "member":
            self.members[a["data-node-id"]] = a.get("data-state")
        if tag == "tr" and a.get("class") == "shard-group":
            self.groups += 1
            for shard in a.get("data-shards", "").split(","):
                if shard:
                    self.shard_primary[int(shard)] = a.get("data-primary")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.text.append(data)


def artifact_dir():
    d = Path(h.ARGS.orderd).resolve().parents[1] / "test-artifacts"
    d.mkdir(parents=True, exist_ok=True)
    return d


def chromium(url, extra, workdir):
    """One headless chromium run with a fresh profile; returns its stdout. Its whole process
    group (the browser and the helpers it started) is killed if it overruns."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=workdir)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=8000"] + \
        extra + [url]
    env = h.clean_env({"HOME": profile})
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test created, by its leader's pid
        proc.communicate(timeout=10)
        raise AssertionError(f"chromium did not finish {url} within {CHROMIUM_TIMEOUT}s")
    check(proc.returncode == 0, f"chromium exited {proc.returncode}: {err.decode()[-500:]}")
    return out.decode("utf-8", "replace")


def check_page(session, admin_port, status, shot_name):
    """Loads the page headless and checks it against `status` (a cluster.status result)."""
    url = f"http://127.0.0.1:{admin_port}/status"
    dom = StatusPageDom()
    raw = chromium(url, ["--dump-dom"], session.dir)
    dom.feed(raw)
    eq(dom.body.get("data-loaded"), "true", "the page rendered /status.json")
    eq(dom.members, {m["node_id"]: m["state"] for m in status["members"]}, "members shown")
    eq(dom.shard_primary, {x["shard"]: x["primary"] for x in status["shards"]},
       "shard primaries shown")
    check(dom.groups < len(status["shards"]) or len(status["shards"]) <= 1,
          f"{dom.groups} shard rows for {len(status['shards'])} shards: not grouped")
    text = " ".join(dom.text)
    # orderd samples its activity from the first request on (the test's own included): the
    # graph says "no samples yet" until one 5-second interval has passed, then draws them.
    if "no-samples" in dom.ids:
        check("no samples yet" in text, "the empty activity graph does not say 'no samples yet'")
    else:
        check("<polyline" in raw, "activity samples shown without a graph")
    check(status["node_id"] in text, "the page does not name the node")
    shot = artifact_dir() / shot_name
    if shot.exists():
        shot.unlink()
    chromium(url, [f"--screenshot={shot}", "--window-size=1280,1600"], session.dir)
    check(shot.is_file() and shot.stat().st_size > 10000, f"no screenshot at {shot}")
    log(f"screenshot: {shot}")


def test_status_page_single_node():
    with h.Session("status-page") as s:
        port = h.free_port()
        node = s.node(name="n1", extra_args=["--admin-port", str(port)]).start()
        ah.wait_ready(port, timeout=30)
        with node.client() as c:
            status = c.ok("cluster.status")
        check_page(s, port, status, "status_page_single.png")


def test_status_page_cluster():
    with h.Session("status-page-cluster") as s:
        etcd = eh.Etcd(s).start()
        cluster = eh.EtcdCluster(s, etcd, name="page", replication_factor=3)
        ports = [h.free_port() for _ in range(3)]
        nodes = [cluster.add(start=False, extra_args=["--admin-port", str(p)]) for p in ports]
        for node in nodes:
            node.port, node.cluster_port = h.free_port(), h.free_port()
            node._launch()
        for node in nodes:
            check(node.wait_ready(60), f"{node.name} never answered cluster.status")
        cluster.wait_balanced(timeout=90)
        for p in ports:
            ah.wait_ready(p, timeout=60)
        status = cluster.status(nodes[0])
        check(status is not None, "no cluster.status from n1")
        ah.wait_view(ports[0], status)  # the page shows the view n1 samples each second
        check_page(s, ports[0], status, "status_page.png")


class FakeStatus(http.server.BaseHTTPRequestHandler):
    """Serves the page's file from the repository and a /status.json made up by the test: the
    activity graph with many samples (a test's orderd has only a few seconds of them) and values that look like HTML, which the page must show as text."""

    status = {}

    def do_GET(self):
        if self.path == "/status":
            body, kind = PAGE.read_bytes(), "text/html"
        elif self.path == "/status.json":
            body, kind = json.dumps(self.status).encode(), "application/json"
        else:
            body, kind = b"not found", "text/plain"
        self.send_response(200 if kind != "text/plain" else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


PAGE = h.REPO / "nodes" / "admin" / "status_page.html"


def test_status_page_draws_activity_and_escapes():
    now = int(time.time() * 1000)
    FakeStatus.status = {
        "node_id": "n1", "version": "t", "uptime_s": 5, "controller": "n1",
        "ready": {"ready": False, "failing": ["lease"]},
        "members": [{"node_id": "n1", "client_address": "<b id=injected>x</b>",
                     "cluster_address": "-", "state": "up", "incarnation": 1,
                     "shards_owned": 2}],
        "shards": [{"shard": 0, "primary": "n1", "epoch": 1, "replicas": ["n1"], "isr": ["n1"],
                    "target": ""},
                   {"shard": 1, "primary": "n1", "epoch": 2, "replicas": ["n1"], "isr": ["n1"],
                    "target": ""}],
        "activity": [{"unix_ms": now - 120000 + i * 5000, "requests_per_s": 400 + 300 * (i % 5),
                      "p99_ms": 2.0 + (i % 7) * 0.8} for i in range(24)],
        "membership_events": [{"unix_ms": now, "kind": "joined", "node": "n1",
                               "text": "<script>alert(1)</script>"}],
    }
    server = http.server.ThreadingHTTPServer((h.HOST, 0), FakeStatus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with h.Session("status-page-fake") as s:
            url = f"http://127.0.0.1:{server.server_address[1]}/status"
            dom = chromium(url, ["--dump-dom"], s.dir)
            shot = artifact_dir() / "status_page_activity.png"
            chromium(url, [f"--screenshot={shot}", "--window-size=1280,1000"], s.dir)
            check(shot.is_file(), f"no screenshot at {shot}")
    finally:
        server.shutdown()
        server.server_close()
    check("<polyline" in dom, "no activity graph drawn from 24 samples")
    check('id="no-samples"' not in dom, "'no samples yet' shown with samples")
    check('id="injected"' not in dom and "&lt;b id=injected&gt;" in dom,
          "a member's address was parsed as HTML")
    check("&lt;script&gt;alert(1)&lt;/script&gt;" in dom, "an event's text was parsed as HTML")
    check("not ready: lease" in dom, "the readiness badge does not name the failing check")
    check('data-shards="0,1"' in dom and "0-1" in dom, "two shards alike are not one row")


TESTS = [test_status_page_single_node, test_status_page_cluster,
         test_status_page_draws_activity_and_escapes]

if __name__ == "__main__":
    if CHROMIUM is None:
        reason = "chromium is not installed (scripts/setup.sh installs Debian's chromium)"
        print(f"SKIP every case: {reason}")
        sys.path.append(str(h.REPO))
        from chaos import case_report
        names = [t.__name__ for t in TESTS]
        case_report.write(Path(__file__).stem, names, [], [], [(n, reason) for n in names])
        sys.exit(77)
    h.main(TESTS, "the status page in headless chromium")
