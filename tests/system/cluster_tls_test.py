"""Mutual TLS on the cluster plane (docs/SECURITY.md, "Cluster plane"): real orderd processes on
127.0.0.1, one private etcd shared by the file (each test its own --cluster name), certificates
made at test time by scripts/gen-certs.sh in the test's temp dir (etcd_harness.cluster_tls).

  * test_tls_cluster_serves_across_nodes: three nodes with certificates of one CA balance the
    shard map and serve an order flow across nodes (made through each, read through each); the
    cluster port speaks TLS and wants a client certificate of the cluster CA: a TLS client with
    one gets BASP's greeting, one without a certificate gets nothing;
  * test_another_ca_cannot_join: a node with a certificate of ANOTHER CA (and, worst case, the
    cluster's admin token) on the same etcd and cluster name never reaches a peer (its log says
    so), serves none of the cluster's data, and the real nodes' shard map (primaries) and
    entities are unchanged; its handshake is refused (shown with the same certificate from a
    Python TLS client), and the real nodes keep serving once it is gone;
  * test_plain_peer_learns_nothing: an orderd with --insecure-cluster pointed at the TLS
    cluster's etcd cannot connect to any member and changes nothing; a raw BASP header that
    announces a 4 GiB payload (issue 13) sent to a TLS node's cluster port is dropped at the TLS
    layer (the connection closes, no reply, the node's RSS does not grow);
  * test_refused_configurations: a certificate that names another node, a key of another
    certificate, missing or partial TLS flags with --etcd, the TLS flags with
    --insecure-cluster: each exit 2 with a message naming the file or the flags;
    --insecure-cluster starts with a warning naming the risk; a node alone does not listen on
    its cluster port.

While an intruder is listed in etcd, the members' connection to each other drops now and then
(a known issue, docs/SECURITY.md): the tests log how often, and compare the entities once the
intruder is gone rather than while it is up.

Needs /usr/bin/etcd and the openssl CLI: missing, the tests fail (never skip).
"""

import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

BALANCE_TIMEOUT = 120.0
CLIENT_TIMEOUT = 15.0
WATCH_S = 12.0  # how long an intruder is given to do harm before the cluster is compared

SHARED = eh.SharedEtcd("tls-etcd")


def tls_cluster(s, n, tag):
    """A balanced TLS cluster of n nodes (replication factor 1) on the shared etcd."""
    c = eh.EtcdCluster(s, SHARED.get(s), name=SHARED.cluster_name(tag), lease_ttl="2s")
    t0 = time.monotonic()
    st = c.start(n, balance_timeout=BALANCE_TIMEOUT)
    log(f"{n} TLS nodes balanced in {time.monotonic() - t0:.1f}s: {sorted(c.counts(st).items())}")
    return c, st


def shop(c, nodes, tag, products=6, users=4, orders=4):
    """Products, users with money, orders placed through one node and paid through the next;
    returns the entities as (kind, id)."""
    ps = [f"{tag}p{i}" for i in range(products)]
    us = [f"{tag}u{i}" for i in range(users)]
    os_ = []
    with c.admin(nodes[0]) as adm:
        for i, p in enumerate(ps):
            h.create_product(adm, p, 100 + i, 50, request_id=f"init-{p}")
    for i, u in enumerate(us):
        with nodes[i % len(nodes)].client() as cl:
            cl.ok("user.register", {"user_id": u, "password": f"pw-{u}-secret"})
        with c.admin(nodes[(i + 1) % len(nodes)]) as adm:
            adm.ok("user.deposit", {"user_id": u, "amount_cents": 10000,
                                    "request_id": f"init-{u}"})
    for i in range(orders):
        oid = f"{tag}o{i}"
        items = [{"product_id": ps[i % products], "quantity": 1 + i % 2}]
        with c.admin(nodes[i % len(nodes)]) as adm:
            o = h.settled(adm, adm.ok("order.place", {"order_id": oid, "user_id": us[i % users],
                                                      "items": items}))
        eq(o["status"], "RESERVED", f"order {oid} placed through {nodes[i % len(nodes)].name}")
        with c.admin(nodes[(i + 1) % len(nodes)]) as adm:
            eq(adm.ok("order.pay", {"order_id": oid})["status"], "PAID",
               f"order {oid} paid through {nodes[(i + 1) % len(nodes)].name}")
        os_.append(oid)
    return [("product", p) for p in ps] + [("inventory", p) for p in ps] + \
        [("user", u) for u in us] + [("order", o) for o in os_]


OPS = {"product": ("product.get", "product_id"), "inventory": ("inventory.get", "product_id"),
       "user": ("user.get", "user_id"), "order": ("order.get", "order_id")}


def snapshot(c, node, ents):
    out = {}
    with c.admin(node, timeout=CLIENT_TIMEOUT) as adm:
        for kind, ident in ents:
            op, key = OPS[kind]
            out[(kind, ident)] = adm.ok_retry(op, {key: ident}, timeout=20.0)
    return out


def compare(before, after, what):
    diff = [(k, before[k], after.get(k)) for k in before if before[k] != after.get(k)]
    eq(diff[:5], [], f"{what}: entities whose state changed ({len(diff)} of {len(before)})")


def tls_probe(port, ca, cert=None, key=None, payload=b""):
    """Opens a TLS connection to 127.0.0.1:port trusting `ca`, with a client certificate when
    given; sends `payload`, then reads. Returns ("data", n bytes) when the server answered,
    ("refused", reason) when the handshake or the first read failed or the server closed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # CAF checks no names either: the CA is what counts
    ctx.load_verify_locations(str(ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection((h.HOST, port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as t:
                t.settimeout(5)
                if payload:
                    t.sendall(payload)
                data = t.recv(4096)
                return ("data", len(data)) if data else ("refused", "closed by the server")
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError) as e:
        return ("refused", f"{type(e).__name__}: {e}")


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def intruder_node(s, c, name, security):
    """An orderd on the TLS cluster's etcd and cluster name, with the cluster's admin token and
    timings, and `security` for its cluster-plane flags."""
    node = eh.ClusterNode(s, name, cluster_args=c.cluster_args + c.etcd_args() + security,
                          admin_token=c.admin_token)
    node.port, node.cluster_port = h.free_port(), h.free_port()
    node._launch()
    return node


def watch_intruder(c, real, intruder, ents, primaries):
    """For WATCH_S: the intruder serves none of `ents` (no `ok` reply through its client port),
    and the real nodes keep their primaries."""
    deadline = time.monotonic() + WATCH_S
    served, answers = [], {}
    while time.monotonic() < deadline:
        check(intruder.alive() or intruder.proc.returncode is not None, "intruder state")
        if intruder.alive():
            try:
                with c.admin(intruder, timeout=5.0) as adm:
                    for kind, ident in ents[:6]:
                        op, key = OPS[kind]
                        r = adm.request(op, {key: ident})
                        code = "ok" if r.get("ok") else (r.get("error") or {}).get("code")
                        answers[code] = answers.get(code, 0) + 1
                        if r.get("ok"):
                            served.append((kind, ident))
            except (OSError, ConnectionError, AssertionError, ValueError):
                answers["no answer"] = answers.get("no answer", 0) + 1
        for n in real:
            st = c.status(n)
            if st is not None:
                eq(c.owners(st), primaries, f"primaries as {n.name} sees them, intruder up")
        time.sleep(0.5)
    log(f"{intruder.name}'s client port answered {answers}")
    eq(served, [], f"entities {intruder.name} served")
    # Known issue, not asserted (docs/SECURITY.md, "Cluster plane", what it leaves open): while
    # a member that fails every TLS handshake is listed, the real members' connection to each
    # other drops now and then (CAF's middleman after failed openssl dials), and a request
    # forwarded at that moment times out. Counted here; the entities are compared once the
    # intruder is gone.
    lost = [x for n in real for x in n.log_text().splitlines() if "lost the connection" in x]
    log(f"connections between the members lost while {intruder.name} was up: {len(lost)}")


def connect_failures(node):
    """The lines of `node`'s log that say it could not reach a peer."""
    return [x for x in node.log_text().splitlines() if "cannot connect to" in x]


def connected_lines(node):
    return [x for x in node.log_text().splitlines() if " connected to " in x]


# ---------------------------------------------------------------------------------------------


def test_tls_cluster_serves_across_nodes():
    with h.Session("tls-cluster") as s:
        c, st = tls_cluster(s, 3, "flow")
        n1, n2, n3 = c.nodes
        for n in c.nodes:
            cmd = n.command()
            check("--tls-cert" in cmd and "--insecure-cluster" not in cmd,
                  f"{n.name} runs with TLS: {cmd}")
            eq(len(connected_lines(n)) >= 2, True, f"{n.name} connected to both peers")
        ents = shop(c, [n1, n2, n3], "a")
        before = snapshot(c, n1, ents)
        for n in (n2, n3):
            compare(before, snapshot(c, n, ents), f"read through {n.name}")
        owners = {c.owner_of(st, *e) for e in ents}
        eq(sorted(owners), ["n1", "n2", "n3"], "the entities' leaders (every node leads some)")
        certs = s.dir / "certs"
        # The cluster port speaks TLS and wants a certificate of the cluster CA.
        with_cert = tls_probe(n1.cluster_port, certs / "ca.pem", certs / "n2.pem",
                              certs / "n2.key")
        without = tls_probe(n1.cluster_port, certs / "ca.pem")
        log(f"TLS client with n2's certificate: {with_cert}; without a certificate: {without}")
        eq(with_cert[0], "data", "a TLS client with a cluster certificate gets BASP's greeting")
        eq(without[0], "refused", "a TLS client without a certificate")
        for n in c.nodes:
            eq(n.terminate(), 0, f"{n.name}'s exit code after SIGTERM")


def guarded_cluster(s, tag):
    """Two TLS nodes with a few entities: (cluster, its nodes, the entities, their state,
    the primaries), what an intruder must leave as it is."""
    c, st = tls_cluster(s, 2, tag)
    real = list(c.nodes)
    ents = shop(c, real, tag, products=4, users=2, orders=2)
    return c, real, ents, snapshot(c, real[0], ents), c.owners(st)


def test_another_ca_cannot_join():
    with h.Session("tls-other-ca") as s:
        c, real, ents, before, primaries = guarded_cluster(s, "ca")
        flags = eh.cluster_tls(s, "rogue", ca="other-ca")
        rogue = intruder_node(s, c, "rogue", flags)
        t0 = time.monotonic()
        try:
            watch_intruder(c, real, rogue, ents, primaries)
            fails = connect_failures(rogue)
            log(f"rogue: {len(fails)} failed connections in {time.monotonic() - t0:.0f}s, "
                f"first: {fails[:1]}")
            check(fails and all("handshake" in x for x in fails),
                  f"the rogue's log does not show refused handshakes: {fails[:2]}")
            eq(connected_lines(rogue), [], "peers the rogue connected to")
            for n in real:
                eq([x for x in connected_lines(n) if "rogue" in x], [],
                   f"{n.name} connected to the rogue")
            # The handshake the rogue makes, seen from a TLS client with its certificate: the
            # member refuses it; and trusting the other CA, the member's certificate fails too.
            other = s.dir / "other-ca"
            refused = tls_probe(real[0].cluster_port, s.dir / "certs" / "ca.pem",
                                other / "rogue.pem", other / "rogue.key")
            log(f"a TLS client with the rogue's certificate: {refused}")
            eq(refused[0], "refused", "the rogue's certificate at a member's cluster port")
            wrong_ca = tls_probe(real[0].cluster_port, other / "ca.pem", other / "rogue.pem",
                                 other / "rogue.key")
            eq(wrong_ca[0], "refused", "a member's certificate checked against the other CA")
            check("certificate verify failed" in wrong_ca[1].lower() or "CERTIFICATE" in
                  wrong_ca[1], f"the member's certificate is not the other CA's: {wrong_ca}")
        finally:
            rogue.kill()
        # Gone (its lease lapses), the cluster is as it was.
        st = c.wait_balanced(names=[n.name for n in real], timeout=BALANCE_TIMEOUT)
        eq(c.owners(st), primaries, "primaries after the rogue left")
        for n in real:
            compare(before, snapshot(c, n, ents), f"after the rogue, via {n.name}")


def test_plain_peer_learns_nothing():
    with h.Session("tls-plain-peer") as s:
        c, real, ents, before, primaries = guarded_cluster(s, "plain")
        plain = intruder_node(s, c, "plain", ["--insecure-cluster"])
        try:
            watch_intruder(c, real, plain, ents, primaries)
            fails = connect_failures(plain)
            log(f"plain: {len(fails)} failed connections, first: {fails[:1]}")
            check(fails and all("handshake" in x for x in fails),
                  f"the plain node's log does not show failed handshakes: {fails[:2]}")
            eq(connected_lines(plain), [], "peers the plain node connected to")
        finally:
            plain.kill()
        # Issue 13's packet: a BASP header announcing a 0xFFFFFFFF payload, in plain TCP to a
        # TLS node's cluster port. It is not a TLS record: the connection closes, nothing is
        # buffered for it.
        victim = real[0]
        rss0 = rss_kib(victim.proc.pid)
        header = struct.pack(">B3xIQ", 0, 0xFFFFFFFF, 0) + b"\0" * 16
        answers = []
        for _ in range(5):
            with socket.create_connection((h.HOST, victim.cluster_port), timeout=5) as raw:
                raw.sendall(header)
                raw.settimeout(5)
                try:
                    answers.append(len(raw.recv(4096)))
                except ConnectionResetError:
                    answers.append("reset")
                except socket.timeout:
                    answers.append("timeout")
        time.sleep(1)
        rss1 = rss_kib(victim.proc.pid)
        log(f"5 raw BASP headers of 4 GiB: answers {answers}, RSS {rss0} -> {rss1} KiB")
        check(all(a in (0, "reset") for a in answers),
              f"the TLS port answered a plain BASP header: {answers}")
        check(rss1 - rss0 < 64 * 1024, f"RSS grew by {(rss1 - rss0) // 1024} MiB")
        st = c.wait_balanced(names=[n.name for n in real], timeout=BALANCE_TIMEOUT)
        eq(c.owners(st), primaries, "primaries after the plain node left")
        for n in real:
            compare(before, snapshot(c, n, ents), f"after the plain node, via {n.name}")


def run_refused(args, timeout=15.0):
    """(exit code, stderr) of an orderd that must exit by itself."""
    proc = subprocess.Popen(h._launcher() + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=h.clean_env())
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        return None, err
    return proc.returncode, out + err


def test_refused_configurations():
    with h.Session("tls-refused") as s:
        etcd = SHARED.get(s)
        certs = s.dir / "certs"
        n1 = eh.cluster_tls(s, "n1")
        eh.cluster_tls(s, "n2")

        def base(node_id="n2"):
            return [str(h.ARGS.orderd), "--node-id", node_id, "--data-dir",
                    str(s.dir / f"{node_id}-data"), "--client-host", h.HOST,
                    "--client-port", str(h.free_port()), "--cluster-host", h.HOST,
                    "--cluster-port", str(h.free_port()), "--admin-token", "adm-" + "7" * 24,
                    "--pwhash", "fast", "--etcd", etcd.url, "--cluster",
                    SHARED.cluster_name("refused"), "--replication-factor", "1"]
        wrong_key = ["--tls-cert", str(certs / "n2.pem"), "--tls-key", str(certs / "n1.key"),
                     "--tls-ca", str(certs / "ca.pem")]
        cases = [
            ("n1's certificate as node n2", base() + n1, ["n1.pem", "'n1'", "'n2'"]),
            ("a key of another certificate", base() + wrong_key, ["n1.key", "not the key"]),
            ("--etcd without TLS flags", base(), ["--tls-cert", "--insecure-cluster"]),
            ("--tls-cert alone", base() + n1[:2], ["--tls-key", "--tls-ca"]),
            ("TLS flags and --insecure-cluster", base("n1") + n1 + ["--insecure-cluster"],
             ["exclude"]),
            ("a missing CA file", base("n1") + n1[:4] + ["--tls-ca", str(certs / "nope.pem")],
             ["nope.pem", "No such file"]),
        ]
        wrong = []
        for what, cmd, words in cases:
            code, text = run_refused(cmd)
            log(f"{what}: exit {code}: {text.strip()[:200]}")
            if code != 2:
                wrong.append(f"{what}: exit {code}, expected 2")
            missing = [w for w in words if w not in text]
            if missing:
                wrong.append(f"{what}: the message lacks {missing}: {text.strip()[:300]!r}")
        eq(wrong, [], "refused configurations")

        # --insecure-cluster starts, with a warning that names the risk.
        c = eh.EtcdCluster(s, etcd, name=SHARED.cluster_name("insecure"), lease_ttl="2s",
                           tls=False)
        node = c.add()
        warning = [x for x in node.log_text().splitlines() if "--insecure-cluster" in x]
        log(f"warning: {warning[:1]}")
        check(warning and "warn" in warning[0] and "anyone" in warning[0],
              f"no warning naming the risk of --insecure-cluster: {warning}")
        eq(node.terminate(), 0, "exit code of the insecure node after SIGTERM")

        # A node alone has no peers: it does not listen on its cluster port.
        alone = s.node(name="alone").start()
        try:
            with socket.create_connection((h.HOST, alone.cluster_port), timeout=2):
                listening = True
        except OSError:
            listening = False
        eq(listening, False, "a node alone listens on its cluster port")
        eq(alone.terminate(), 0, "exit code of the node alone after SIGTERM")


if __name__ == "__main__":
    with SHARED:  # ends the shared etcd (by pid) however the run ends
        h.main([test_tls_cluster_serves_across_nodes, test_another_ca_cannot_join,
                test_plain_peer_learns_nothing, test_refused_configurations], __doc__)
