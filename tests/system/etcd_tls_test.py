#!/usr/bin/env python3
"""System tests of orderd's etcd client over TLS: real orderd processes and a private etcd
serving https on 127.0.0.1 with --client-cert-auth (only certificates from the test's CA get
in). Certificates come from tests/etcd/make_test_certs.sh (scripts/gen-certs.sh's layout:
ca.pem, NAME.pem, NAME.key with CN=NAME and SAN DNS:NAME,DNS:localhost,IP:127.0.0.1).

  * two nodes with --etcd https://... --tls-cert/--tls-key/--tls-ca form a balanced cluster and
    serve an order flow across both (products, users, deposits, orders placed and paid through
    either node); their keys are in etcd, read back over TLS
  * https --etcd without the three --tls-* files: exit 2 within 10 s, stderr names them; a key
    that does not match its certificate: exit 2 naming the files
  * a node whose certificate is from another CA never becomes a member (it cannot reach etcd:
    exit 1 after its --join-timeout) while the cluster keeps serving

Every process is ended by pid; everything stays on 127.0.0.1. Needs /usr/bin/etcd and openssl.
"""

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import HOST, check, eq, log  # noqa: E402

MAKE_CERTS = h.REPO / "tests" / "etcd" / "make_test_certs.sh"
BALANCE_TIMEOUT = 120.0


def make_certs(directory, *names, san=None):
    """CA (made once per directory) and a certificate per name, via make_test_certs.sh."""
    cmd = [str(MAKE_CERTS)] + (["--san", san] if san else []) + [str(directory)] + list(names)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    eq(p.returncode, 0, f"make_test_certs.sh {names} (stderr {p.stderr!r})")
    return directory


def tls_args(certs, name):
    return ["--tls-cert", str(certs / f"{name}.pem"), "--tls-key", str(certs / f"{name}.key"),
            "--tls-ca", str(certs / "ca.pem")]


class TlsEtcd(eh.Etcd):
    """A private etcd serving its clients over https with --client-cert-auth; peer URLs stay
    plain on loopback (one member). Probed and read with the `client` certificate."""

    def __init__(self, session, certs, server="etcd", client="probe", name="etcd-tls"):
        super().__init__(session, name)
        self.certs = certs
        self.server = server
        self.context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        self.context.load_cert_chain(str(certs / f"{client}.pem"), str(certs / f"{client}.key"))
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context))

    @property
    def url(self):
        return f"https://{HOST}:{self.client_port}"

    def command(self):
        c = self.certs
        return super().command() + [
            "--cert-file", str(c / f"{self.server}.pem"), "--key-file",
            str(c / f"{self.server}.key"), "--trusted-ca-file", str(c / "ca.pem"),
            "--client-cert-auth"]

    def gateway(self, path, body, timeout=5.0):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
        with self.opener.open(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def ready(self, timeout=2.0):
        try:
            return "header" in self.gateway("/v3/kv/range", {"key": eh.b64("/probe")}, timeout)
        except (OSError, ValueError):
            return False

    def keys(self, prefix):
        ans = self.gateway("/v3/kv/range", {"key": eh.b64(prefix),
                                            "range_end": eh.b64(eh.prefix_end(prefix))})
        return sorted(eh.unb64(kv["key"]) for kv in ans.get("kvs") or ())


def start_nodes(c, certs, names):
    """Nodes `names`, each with its own certificate, started together; the balanced status."""
    nodes = [c.add(start=False, name=n, extra_args=tls_args(certs, n)) for n in names]
    for n in nodes:
        n.start(45.0)
    return c.wait_balanced(timeout=BALANCE_TIMEOUT)


def run_orderd(s, name, args, timeout=20.0):
    """orderd in the foreground, expected to exit by itself: (exit code, stderr + log, secs)."""
    node = h.Node(s, name=name)
    node.port, node.cluster_port = h.free_port(), h.free_port()
    node.log_file = s.dir / f"{name}.log"
    node.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    t0 = time.monotonic()
    p = subprocess.run(h._launcher() + node.command() + ["--cluster-host", HOST] + args,
                       capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=h.clean_env())
    text = p.stderr + (node.log_file.read_text(errors="replace") if node.log_file.exists()
                       else "")
    return p.returncode, text, time.monotonic() - t0


def test_two_nodes_serve_orders_over_tls_etcd():
    with h.Session("etcd-tls-flow") as s:
        certs = make_certs(s.dir / "certs", "etcd", "probe", "n1", "n2")
        etcd = TlsEtcd(s, certs).start()
        c = eh.EtcdCluster(s, etcd, name="tls", lease_ttl="2s", tls="given")
        t0 = time.monotonic()
        st = start_nodes(c, certs, ["n1", "n2"])
        log(f"2 nodes balanced over TLS etcd in {time.monotonic() - t0:.1f}s: "
            f"{sorted(c.counts(st).items())}, controller {st['controller']}")
        eq(sorted(c.members(st)), ["n1", "n2"], "members")
        n1, n2 = c.nodes

        # An order flow across both nodes: what one node wrote the other serves.
        products, users = [f"p{i}" for i in range(8)], [f"u{i}" for i in range(4)]
        with c.admin(n1) as adm:
            for i, p in enumerate(products):
                h.create_product(adm, p, 100 + i, 20, request_id=f"init-{p}")
        for i, u in enumerate(users):
            with (n1, n2)[i % 2].client() as cl:
                cl.ok("user.register", {"user_id": u, "password": f"pw-{u}-secret"})
            with c.admin((n2, n1)[i % 2]) as adm:
                adm.ok("user.deposit", {"user_id": u, "amount_cents": 10000,
                                        "request_id": f"init-{u}"})
        t0 = time.monotonic()
        paid = 0
        for i in range(8):
            oid = f"o{i}"
            items = [{"product_id": products[i], "quantity": 2}]
            with c.admin((n1, n2)[i % 2]) as adm:
                o = h.settled(adm, adm.ok("order.place", {
                    "order_id": oid, "user_id": users[i % 4], "items": items}))
            eq(o["status"], "RESERVED", f"order {oid}")
            with c.admin((n2, n1)[i % 2]) as adm:
                eq(adm.ok("order.pay", {"order_id": oid})["status"], "PAID", f"pay {oid}")
                paid += 1
        log(f"{paid} orders placed and paid in {time.monotonic() - t0:.1f}s")
        # Each order: 2 of one product at 100 + i cents; user j paid for orders j and j + 4.
        want = {("inventory", p): (18, 0, 2) for p in products}
        want.update({("user", u): 10000 - 2 * (100 + j + 100 + j + 4) for j, u in enumerate(users)})
        for n in (n1, n2):
            with c.admin(n) as adm:
                def books():
                    got = {("inventory", p): h.inv(adm, p) for p in products}
                    got.update({("user", u): adm.ok_retry("user.get", {"user_id": u})
                                ["balance_cents"] for u in users})
                    return got if got == want else None
                h.wait_until(books, 20.0, 0.2, f"stock and balances as paid, through {n.name}")

        keys = etcd.keys("/ordermesh/tls/")
        log(f"{len(keys)} keys under /ordermesh/tls/ (read over TLS)")
        check(any(k.endswith("/members/n1") for k in keys), f"n1's member key in {keys[:10]}")
        check(any(k.endswith("/members/n2") for k in keys), f"n2's member key in {keys[:10]}")
        # etcd refuses a plain http client on its https port, and one without a certificate.
        try:
            eh.gateway(etcd.url.replace("https://", "http://"), "/v3/kv/range",
                       {"key": eh.b64("/")}, 3.0)
            refused_plain = False
        except (OSError, ValueError):
            refused_plain = True
        check(refused_plain, "etcd answered plain http on its TLS port")
        anon = urllib.request.build_opener(urllib.request.HTTPSHandler(
            context=ssl.create_default_context(cafile=str(certs / "ca.pem"))))
        try:
            anon.open(urllib.request.Request(etcd.url + "/v3/kv/range", method="POST",
                                             data=b'{"key":"Lw=="}'), timeout=3.0).read()
            refused_anon = False
        except (OSError, ssl.SSLError):
            refused_anon = True
        check(refused_anon, "etcd answered a client without a certificate")
        for n in c.nodes:
            n.kill()


def test_https_etcd_needs_the_tls_files():
    with h.Session("etcd-tls-flags") as s:
        certs = make_certs(s.dir / "certs", "n1", "n2")
        url = f"https://{HOST}:{h.free_port()}"  # nothing listens: orderd must not get that far
        code, text, secs = run_orderd(s, "bare", ["--etcd", url])
        log(f"https --etcd without --tls-*: exit {code} in {secs:.1f}s")
        eq(code, 2, f"exit code (output {text[-500:]!r})")
        check(secs < 10, f"took {secs:.1f}s")
        for flag in ("--tls-cert", "--tls-key", "--tls-ca"):
            check(flag in text, f"the message names {flag}: {text[-500:]!r}")

        mismatched = ["--tls-cert", str(certs / "n1.pem"), "--tls-key", str(certs / "n2.key"),
                      "--tls-ca", str(certs / "ca.pem")]
        code, text, secs = run_orderd(s, "mismatch", ["--etcd", url] + mismatched)
        log(f"a key of another certificate: exit {code} in {secs:.1f}s")
        eq(code, 2, f"exit code (output {text[-500:]!r})")
        check("does not match" in text or "is not the key of" in text,
              f"the message says the key does not match: {text[-500:]!r}")

        missing = tls_args(certs, "n1")
        missing[-1] = str(certs / "no-such-ca.pem")
        code, text, secs = run_orderd(s, "missing", ["--etcd", url] + missing)
        eq(code, 2, f"exit code with a missing CA file (output {text[-500:]!r})")
        check("no-such-ca.pem" in text, f"the message names the missing file: {text[-500:]!r}")


def test_node_from_another_ca_is_refused():
    with h.Session("etcd-tls-other-ca") as s:
        certs = make_certs(s.dir / "certs", "etcd", "probe", "n1")
        other = make_certs(s.dir / "other-ca", "n2")
        etcd = TlsEtcd(s, certs).start()
        c = eh.EtcdCluster(s, etcd, name="tls", lease_ttl="2s", tls="given")
        start_nodes(c, certs, ["n1"])
        n1 = c.nodes[0]
        code, text, secs = run_orderd(
            s, "n2", c.cluster_args + c.etcd_args() + tls_args(other, "n2")
            + ["--join-timeout", "3s"], timeout=60.0)
        log(f"a node with another CA's certificate: exit {code} in {secs:.1f}s")
        check(code not in (0, None), f"it exited non-zero (exit {code})")
        check("certificate verify failed" in text or "tls" in text,
              f"the log says TLS failed: {text[-800:]!r}")
        eq(sorted(c.members(c.status(n1))), ["n1"], "members after the refused node")
        keys = etcd.keys("/ordermesh/tls/")
        check(not any("n2" in k for k in keys), f"no key of n2 in etcd: {keys}")
        with c.admin(n1) as adm:
            h.create_product(adm, "after", 100, 1, request_id="after")
            eq(h.inv(adm, "after"), (1, 0, 0), "n1 still serves")
        n1.kill()


if __name__ == "__main__":
    h.main([test_two_nodes_serve_orders_over_tls_etcd, test_https_etcd_needs_the_tls_files,
            test_node_from_another_ca_is_refused], __doc__)
