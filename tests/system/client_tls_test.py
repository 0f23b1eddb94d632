#!/usr/bin/env python3
"""TLS on the client plane (docs/SECURITY.md, "Client plane TLS") against a real orderd started
with --client-tls-cert/--client-tls-key (certificates from scripts/gen-certs.sh):
  * a whole order flow through orderctl --tls --cafile;
  * a plain client on the TLS port gets no reply, and the node keeps serving TLS clients;
  * orderctl trusting another CA refuses to talk: a clear error and exit 3;
  * a client that connects and never finishes the handshake is closed after
    --client-tls-handshake-timeout while other clients are served;
  * the per-address connection cap holds under TLS, with room left for another address;
  * orderd refuses to start (exit 2) with a key of another certificate or only one of the flags;
  * orderbench --tls --cafile runs a short load over TLS with every request answered.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402
from client_limits_test import closed_within  # noqa: E402

GEN_CERTS = Path(__file__).resolve().parents[2] / "scripts" / "gen-certs.sh"
CERTS = None  # the test CA and n1's certificate, made once in main
OTHER = None  # another CA with its own n1 certificate
ORDERBENCH = None  # --orderbench PATH (harness.take_orderbench_arg)


def gen_certs(directory, *names):
    subprocess.run(["bash", str(GEN_CERTS), str(directory), *names], check=True,
                   capture_output=True, timeout=60)
    return Path(directory)


def tls_context():
    ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class TlsClient(h.Client):
    """harness.Client over TLS, verifying the node's certificate against the test CA."""

    def __init__(self, port, source=h.HOST, timeout=15.0, token=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect((h.HOST, port))
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=h.HOST)
        self.buf = b""
        self.next_id = 1
        self.token = token


class TlsNode(h.Node):
    """An orderd serving clients over TLS; ready once a TLS client gets an answer."""

    def __init__(self, session, handshake_timeout="5s", extra_args=()):
        super().__init__(session, "n1", extra_args=[
            "--client-tls-cert", str(CERTS / "n1.pem"), "--client-tls-key", str(CERTS / "n1.key"),
            "--client-tls-handshake-timeout", handshake_timeout] + list(extra_args))

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with TlsClient(self.port, timeout=2.0) as c:
                    if "ok" in c.request("cluster.status", {}):
                        return True
            except (OSError, ConnectionError, AssertionError):
                pass
            time.sleep(0.05)
        return False

    def tls_client(self, source=h.HOST):
        return TlsClient(self.port, source, token=self.admin_token)


def orderctl_tls(node, *argv, cafile=None, token=None):
    return h.orderctl("--host", f"{h.HOST}:{node.port}", "--tls", "--cafile",
                      str(cafile or CERTS / "ca.pem"), *argv, token=token)


def ctl_ok(node, *argv, token=None):
    p = orderctl_tls(node, *argv, token=token)
    eq(p.returncode, 0, f"orderctl {' '.join(argv)}: {p.stderr.strip()}")
    return p.stdout.strip()


def test_order_flow_over_tls():
    with h.Session("ctls-flow") as s:
        n = TlsNode(s).start()
        adm = n.admin_token
        ctl_ok(n, "product.create", "--product-id", "kettle", "--name", "Kettle",
               "--price-cents", "2500", token=adm)
        ctl_ok(n, "inventory.add", "--product-id", "kettle", "--quantity", "5",
               "--request-id", "stock-1", token=adm)
        ctl_ok(n, "user.register", "--user-id", "alice", "--password", "pw-alice-secret",
               "--name", "Alice", token=adm)
        ctl_ok(n, "user.deposit", "--user-id", "alice", "--amount-cents", "10000",
               "--request-id", "dep-1", token=adm)
        tok = ctl_ok(n, "user.login", "--user-id", "alice", "--password", "pw-alice-secret",
                     "--get", "token")
        check(len(tok) > 10, f"a session token over TLS: {tok!r}")
        ctl_ok(n, "order.place", "--order-id", "o1", "--user-id", "alice", "--items",
               "kettle:2", token=tok)
        status = h.wait_until(
            lambda: (lambda st: st if st != "PENDING" else None)(
                ctl_ok(n, "order.get", "--order-id", "o1", "--get", "status", token=tok)),
            15, 0.1, "o1 to settle")
        eq(status, "RESERVED", "o1 after placing")
        ctl_ok(n, "order.pay", "--order-id", "o1", token=tok)
        eq(ctl_ok(n, "order.get", "--order-id", "o1", "--get", "status", token=tok), "PAID",
           "o1 after paying")
        eq(ctl_ok(n, "user.get", "--user-id", "alice", "--get", "balance_cents", token=tok),
           "5000", "alice's balance after paying 2 x 2500")
        # The same node's state seen by another TLS client (Python's ssl, not OpenSSL via orderctl).
        with n.tls_client() as c:
            eq(h.inv(c, "kettle"), (3, 0, 2), "kettle's stock after the sale")


def test_plain_client_gets_nothing_and_others_are_served():
    with h.Session("ctls-plain") as s:
        n = TlsNode(s).start()
        with socket.create_connection((h.HOST, n.port), timeout=10) as plain:
            plain.sendall(b'{"id":1,"op":"cluster.status"}\n')
            got = b""
            while True:
                try:
                    chunk = plain.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                got += chunk
            check(b'"ok"' not in got, f"a plain client got a JSON reply over TLS: {got[:200]!r}")
            log(f"  plain client got {len(got)} bytes (a TLS alert at most), then EOF")
        p = h.orderctl("--host", f"{h.HOST}:{n.port}", "call", "cluster.status", "{}")
        eq(p.returncode, 3, f"plain orderctl against a TLS port: {p.stderr.strip()}")
        with n.tls_client() as c:
            eq(c.ok("cluster.status", {})["node_id"], "n1", "a TLS client after the plain ones")


def test_orderctl_with_another_ca_refuses():
    with h.Session("ctls-wrong-ca") as s:
        n = TlsNode(s).start()
        p = orderctl_tls(n, "call", "cluster.status", "{}", cafile=OTHER / "ca.pem")
        eq(p.returncode, 3, "orderctl trusting another CA")
        check("certificate is not trusted" in p.stderr, f"a clear error: {p.stderr.strip()}")
        p = orderctl_tls(n, "call", "cluster.status", "{}", cafile=Path(s.dir) / "missing.pem")
        eq(p.returncode, 3, "orderctl with a CA file that does not exist")
        check("cannot load the CA" in p.stderr, f"a clear error: {p.stderr.strip()}")
        p = h.orderctl("--cafile", str(CERTS / "ca.pem"), "call", "cluster.status", "{}")
        eq(p.returncode, 2, "--cafile without --tls is a usage error")
        # The node is untouched by the refused clients.
        eq(ctl_ok(n, "call", "cluster.status", "{}", "--get", "node_id"), "n1",
           "orderctl with the right CA")


def test_handshake_never_finished_is_closed():
    with h.Session("ctls-handshake") as s:
        n = TlsNode(s, handshake_timeout="1s").start()
        silent = socket.create_connection((h.HOST, n.port), timeout=10)
        partial = socket.create_connection((h.HOST, n.port), timeout=10)
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, never the rest
        t0 = time.monotonic()
        # Others are served meanwhile, over TLS.
        with n.tls_client() as c:
            for _ in range(5):
                eq(c.ok("cluster.status", {})["node_id"], "n1", "served during the handshakes")
        check(closed_within(silent, 20.0), "a client that never handshakes was not closed")
        check(closed_within(partial, 20.0), "a half-sent handshake was not closed")
        check(time.monotonic() - t0 >= 0.9, "closed before the handshake deadline")
        log(f"  silent handshakes closed after {time.monotonic() - t0:.2f}s")
        silent.close()
        partial.close()
        with n.tls_client() as c:
            eq(c.ok("cluster.status", {})["node_id"], "n1", "served after the handshakes")


def test_connection_caps_hold_under_tls():
    with h.Session("ctls-caps") as s:
        n = TlsNode(s, handshake_timeout="60s",
                    extra_args=["--max-connections", "16",
                                "--max-connections-per-address", "4"]).start()
        time.sleep(0.3)  # the readiness probes are closed, and the node noticed
        held, refused = [], 0
        try:
            # Handshaken TLS clients and silent TCP connections count alike.
            for _ in range(2):
                c = n.tls_client()
                c.ok("cluster.status", {})
                held.append(c)
            for _ in range(20):
                c = socket.create_connection((h.HOST, n.port), timeout=0.3)
                try:
                    got = c.recv(4096)
                except socket.timeout:
                    held.append(c)  # accepted: the node waits for the handshake
                    continue
                except ConnectionResetError:
                    got = b""
                eq(got, b"", "an excess connection under TLS is closed without a line")
                refused += 1
                c.close()
            eq(len(held), 4, "connections one address may hold under TLS")
            eq(refused, 18, "connections refused")
            with n.tls_client("127.0.0.2") as other:
                eq(other.ok("cluster.status", {})["node_id"], "n1", "served from 127.0.0.2")
        finally:
            for c in held:
                c.close()

        def served_again():
            try:
                with n.tls_client() as c:
                    return c.ok("cluster.status", {})["node_id"] == "n1"
            except (OSError, ConnectionError):
                return False
        h.wait_until(served_again, 10, 0.1, "127.0.0.1 served again")


def test_bad_tls_flags_stop_the_start():
    with h.Session("ctls-flags") as s:
        base = [str(h.ARGS.orderd), "--node-id", "n1", "--data-dir", str(Path(s.dir) / "d"),
                "--client-port", str(h.free_port()), "--cluster-port", str(h.free_port()),
                "--admin-token", "adm-" + "0" * 24]
        cases = [
            (["--client-tls-cert", str(CERTS / "n1.pem")], "go together"),
            (["--client-tls-cert", str(CERTS / "n1.pem"), "--client-tls-key",
              str(OTHER / "n1.key")], "does not belong"),
            (["--client-tls-cert", str(Path(s.dir) / "none.pem"), "--client-tls-key",
              str(CERTS / "n1.key")], "--client-tls-cert"),
        ]
        for extra, words in cases:
            p = subprocess.run(base + extra, capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL, env=h.clean_env())
            eq(p.returncode, 2, f"orderd {extra}: {p.stderr.strip()}")
            check(words in p.stderr, f"the reason ({words}) in: {p.stderr.strip()}")


def test_orderbench_over_tls():
    with h.Session("ctls-bench") as s:
        n = TlsNode(s).start()
        p = subprocess.run([ORDERBENCH, "--host", f"{h.HOST}:{n.port}", "--tls", "--cafile",
                            str(CERTS / "ca.pem"), "--admin-token", n.admin_token,
                            "--users", "10", "--products", "20", "--duration", "1",
                            "--warmup", "0.2", "--inflight", "2", "--json", "--quiet"],
                           capture_output=True, text=True, timeout=120)
        eq(p.returncode, 0, f"orderbench over TLS: {p.stderr.strip()[-500:]}")
        res = json.loads(p.stdout)
        check(res["ok"] > 0, f"ok ops over TLS: {res['ok']}")
        eq(res["errors"], 0, "errors over TLS")
        p = subprocess.run([ORDERBENCH, "--host", f"{h.HOST}:{n.port}", "--tls", "--cafile",
                            str(OTHER / "ca.pem"), "--admin-token", n.admin_token,
                            "--duration", "1"], capture_output=True, text=True, timeout=60)
        check(p.returncode != 0, "orderbench trusting another CA ran")
        check("certificate is not trusted" in p.stderr, f"a clear error: {p.stderr.strip()}")


if __name__ == "__main__":
    ORDERBENCH = h.take_orderbench_arg()
    with tempfile.TemporaryDirectory(prefix="ordermesh-ctls-") as tmp:
        CERTS = gen_certs(Path(tmp) / "certs", "n1")
        OTHER = gen_certs(Path(tmp) / "other", "n1")
        h.main([test_order_flow_over_tls,
                test_plain_client_gets_nothing_and_others_are_served,
                test_orderctl_with_another_ca_refuses,
                test_handshake_never_finished_is_closed,
                test_connection_caps_hold_under_tls,
                test_bad_tls_flags_stop_the_start,
                test_orderbench_over_tls],
               "TLS on the client plane: orderctl --tls, plain clients, wrong CA, handshake "
               "deadline, connection caps, bad flags")
