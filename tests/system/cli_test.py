#!/usr/bin/env python3
"""orderd's command line and lifecycle: bad flags exit 2 with a message on stderr; durations in
every documented form are accepted; SIGTERM finishes what is in flight, exits 0, and keeps the
data (a restart on the same data dir reads it back). Secrets from files: orderd
--admin-token-file and orderctl --token-file work, refuse files others may read and each other's
command-line twin. orderctl prints no control character it got from the server."""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402


def run_orderd(session, argv, timeout=5.0):
    """Runs orderd expecting it to exit by itself; returns (code, stdout, stderr), code None when
    it was still running after `timeout` s (then it is killed, by pid)."""
    cmd = [h.ARGS.orderd] + argv
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=h.clean_env())
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        return None, out, err
    return p.returncode, out, err


def test_bad_flags_exit_2():
    with h.Session("cli") as s:
        # Valid defaults that keep a wrongly-started node off the real ports and data.
        base = {"--node-id": "n1", "--data-dir": str(s.dir / "data"),
                "--client-host": "127.0.0.1", "--client-port": str(h.free_port()),
                "--cluster-port": str(h.free_port()),
                "--admin-token": "cli-test-admin-token-0123456789", "--pwhash": "fast"}

        def argv(**override):
            d = dict(base)
            for k, v in override.items():
                k = "--" + k.replace("_", "-")
                if v is None:
                    d.pop(k, None)
                else:
                    d[k] = v
            out = []
            for k, v in d.items():
                out += [k, v]
            return out

        cases = [
            ("unknown flag", argv() + ["--no-such-flag"]),
            ("stray argument", argv() + ["stray"]),
            ("missing --node-id", argv(node_id=None)),
            ("missing --data-dir", argv(data_dir=None)),
            ("port not a number", argv(client_port="seventy")),
            ("port out of range", argv(client_port="70000")),
            ("bad duration", argv(reservation_ttl="soon")),
            ("negative duration", argv(reservation_ttl="-5s")),
            ("bad --pwhash", argv(pwhash="slow")),
            ("negative --login-rate-per-user", argv(login_rate_per_user="-1")),
            ("zero --login-burst-per-address", argv(login_burst_per_address="0")),
            ("per-address password queue above the total",
             argv(password_queue="4", password_queue_per_address="8")),
            ("bad --log-level", argv(log_level="loud")),
            ("bad --snapshot-every", argv(snapshot_every="many")),
            ("bad --shards", argv(shards="0")),
            ("flag without value", argv() + ["--client-port"]),
            ("admin token too short", argv(admin_token="short")),
            ("bad --client-idle-timeout", argv(client_idle_timeout="never")),
            ("zero --client-line-timeout", argv(client_line_timeout="0s")),
            ("per-address cap not below the total", argv(max_connections="8",
                                                         max_connections_per_address="8")),
            ("zero --max-connections-per-address", argv(max_connections_per_address="0")),
            ("tiny --max-unsent-bytes", argv(max_unsent_bytes="100")),
            ("negative --max-open-orders-per-user", argv(max_open_orders_per_user="-1")),
            ("--max-reserved-units-per-user not a number",
             argv(max_reserved_units_per_user="lots")),
            ("negative --max-unsent-bytes", argv(max_unsent_bytes="-1")),
        ]
        bad = []
        for what, args in cases:
            code, out, err = run_orderd(s, args)
            if code is None:
                bad.append(f"{what}: accepted (still running after 5 s)")
            elif code != 2 or not err.strip():
                bad.append(f"{what}: exit {code}, stderr {err.strip()[:200]!r}")
            else:
                log(f"  {what}: exit 2: {err.strip().splitlines()[0][:120]}")
        eq(bad, [], "bad flags that did not exit 2 with a message")
        code, out, err = run_orderd(s, ["--help"])
        check(code == 0 and "--data-dir" in (out + err), f"--help: exit {code}, {out + err!r}")


def test_durations_accepted():
    with h.Session("durations") as s:
        for i, ttl in enumerate(["500ms", "30s", "15m", "1h", "45"]):
            node = s.node(name=f"d{i}", ttl=ttl,
                          extra_args=["--passivate-after", "5m", "--snapshot-every", "10",
                                      "--shards", "16"]).start()
            with node.client() as c:
                check("ok" in c.request("cluster.status", {}), "answers")
            eq(node.terminate(), 0, f"exit code after SIGTERM (ttl {ttl})")


def test_sigterm_exits_0_and_keeps_data():
    with h.Session("sigterm") as s:
        node = s.node().start()
        with node.admin() as adm:
            h.create_product(adm, "mug", 800, 30)
        with node.client() as c:
            tok = h.register_login(c, "finn")
            c.ok("user.deposit", {"user_id": "finn", "amount_cents": 5000, "request_id": "d0"},
                 tok)
            o = h.settled(c, c.ok("order.place", {"order_id": "f-1", "user_id": "finn", "items": [
                {"product_id": "mug", "quantity": 2}]}, tok), tok)
            c.ok("order.pay", {"order_id": "f-1"}, tok)
            eq(o["total_cents"], 1600, "f-1 total")

        # In-flight work: 40 deposits written at once, SIGTERM right behind them. Every deposit
        # acknowledged before the connection closes must be kept.
        c = node.client(token=tok)
        reqs = [c.make("user.deposit", {"user_id": "finn", "amount_cents": 1,
                                        "request_id": f"burst-{i}"}, rid=100 + i)
                for i in range(40)]
        c.send_raw("".join(json.dumps(r) + "\n" for r in reqs))
        node.proc.send_signal(signal.SIGTERM)
        acked, refused = set(), {}
        c.settimeout(20)
        try:
            while True:
                line = c.read_line()
                if line is None:
                    break
                r = json.loads(line)
                if r.get("ok"):
                    acked.add(r["id"])
                else:
                    code = (r.get("error") or {}).get("code")
                    refused[code] = refused.get(code, 0) + 1
        except (OSError, ValueError):
            pass
        c.close()
        code = node.proc.wait(timeout=30)
        eq(code, 0, "orderd exit code after SIGTERM")
        log(f"in-flight deposits: {len(acked)} of 40 acknowledged before shutdown, "
            f"refused {refused}, {40 - len(acked) - sum(refused.values())} unanswered")
        check(set(refused) <= set(h.RETRYABLE), f"refusals while draining are retryable: {refused}")

        node.start()  # same data dir
        with node.client() as c:
            tok = c.ok("user.login", {"user_id": "finn", "password": "pw-finn-secret"})["token"]
            bal = c.ok("user.get", {"user_id": "finn"}, tok)["balance_cents"]
            base = 5000 - 1600
            check(base + len(acked) <= bal <= base + 40,
                  f"balance {bal}: want {base} + acknowledged {len(acked)} .. + 40")
            eq(c.ok("order.get", {"order_id": "f-1"}, tok)["status"], "PAID", "f-1 kept")
            eq(c.ok("product.get", {"product_id": "mug"})["price_cents"], 800, "product kept")
            eq(h.inv(c, "mug"), (28, 0, 2), "inventory kept")
            # the deposits are idempotent across the restart too
            for i in range(40):
                c.ok("user.deposit", {"user_id": "finn", "amount_cents": 1,
                                      "request_id": f"burst-{i}"}, tok)
            eq(c.ok("user.get", {"user_id": "finn"}, tok)["balance_cents"], base + 40,
               "every burst deposit counted once")
        eq(node.terminate(), 0, "second SIGTERM exit code")


def secret_file(session, name, content, mode):
    path = session.dir / name
    path.write_text(content)
    os.chmod(path, mode)
    return path


def test_secret_files():
    with h.Session("secret-files") as s:
        token = "file-admin-token-" + "7" * 20
        good = secret_file(s, "admin.token", token + "\n", 0o600)
        wide = secret_file(s, "wide.token", token + "\n", 0o644)
        short = secret_file(s, "short.token", "short\n", 0o600)
        base = ["--node-id", "n1", "--data-dir", str(s.dir / "refused-data"),
                "--client-host", "127.0.0.1", "--client-port", str(h.free_port()),
                "--cluster-port", str(h.free_port()), "--pwhash", "fast"]
        for what, extra, needle in [
                ("a file others may read", ["--admin-token-file", str(wide)], "chmod 600"),
                ("a missing file", ["--admin-token-file", str(s.dir / "nope")], "cannot open"),
                ("a token too short", ["--admin-token-file", str(short)], "16 characters"),
                ("both flags", ["--admin-token-file", str(good), "--admin-token", token],
                 "exclude each other")]:
            code, out, err = run_orderd(s, base + extra)
            check(code == 2 and needle in err, f"{what}: exit {code}, stderr {err.strip()!r}")
            check(token not in err, f"{what}: the refusal shows the token")
            log(f"  {what}: exit 2: {err.strip().splitlines()[0][:120]}")

        # The node takes the file's token (less its newline); orderctl reads it from the file.
        node = s.node(name="f1")
        node.command = lambda: [a for a in h.Node.command(node)
                                if a not in ("--admin-token", node.admin_token)] + [
                                    "--admin-token-file", str(good)]
        node.start()
        node.admin_token = token
        port = str(node.port)
        p = h.orderctl("--port", port, "--token-file", good, "product.create",
                       "--product-id", "kettle", "--name", "Kettle", "--price-cents", "2500")
        eq((p.returncode, p.stderr), (0, ""), "orderctl --token-file product.create")
        p = h.orderctl("--port", port, "--token", "wrong-token-0123456789", "product.create",
                       "--product-id", "kettle2", "--name", "K", "--price-cents", "1")
        eq(p.returncode, 1, f"a wrong token is refused: {p.stdout} {p.stderr}")
        for what, argv, needle in [
                ("a file others may read", ["--token-file", wide], "chmod 600"),
                ("both flags", ["--token-file", good, "--token", token], "exclude each other")]:
            p = h.orderctl("--port", port, *argv, "product.get", "--product-id", "kettle")
            check(p.returncode == 2 and needle in p.stderr,
                  f"orderctl {what}: exit {p.returncode}, stderr {p.stderr.strip()!r}")
            check(token not in p.stderr, f"orderctl {what}: the refusal shows the token")
        log_text = open(node.log_file, errors="replace").read()
        check(token not in log_text, "the node's log shows the admin token")
        eq(node.terminate(), 0, "exit code after SIGTERM")


def test_orderctl_escapes_control_characters():
    """A name with a newline, ESC sequences, DEL and a C1 CSI: orderctl's readable output, --get,
    --json and error messages show them escaped, never raw."""
    with h.Session("ctl-escapes") as s:
        node = s.node().start()
        evil = "Mug\n\x1b[2J\x1b[31mFAKE LINE\x1b[0m\x7f\u009b31m\x07"
        with node.admin() as adm:
            adm.ok("product.create", {"product_id": "evil2", "name": evil, "price_cents": 1})
        port = str(node.port)
        raw_controls = [chr(c) for c in range(0x20) if c != 0x0a] + ["\x7f", "\u009b"]

        def clean(text, what):
            found = sorted({hex(ord(c)) for c in text if c in raw_controls})
            eq(found, [], f"raw control characters in {what}")

        p = h.orderctl("--port", port, "product.get", "--product-id", "evil2")
        eq(p.returncode, 0, f"product.get: {p.stderr}")
        log("  readable: " + repr(p.stdout))
        clean(p.stdout, "the readable output")
        eq(len(p.stdout.splitlines()), 3, "lines of product.get (product_id, name, price_cents)")
        check("\\x0a" in p.stdout and "\\x1b[31mFAKE LINE" in p.stdout and "\\x7f" in p.stdout
              and "\\u009b" in p.stdout, f"the escapes in {p.stdout!r}")
        p = h.orderctl("--port", port, "product.get", "--product-id", "evil2", "--get", "name")
        clean(p.stdout, "--get name")
        eq(p.stdout.count("\n"), 1, "--get name prints one line")
        p = h.orderctl("--port", port, "--json", "product.get", "--product-id", "evil2")
        clean(p.stdout, "--json")
        eq(json.loads(p.stdout)["result"]["name"], evil, "--json still parses to the name")
        # An error message that echoes the request: the unknown op's name.
        p = h.orderctl("--port", port, "call", "no\x1b[2Jsuch\nop", "{}")
        eq(p.returncode, 1, f"unknown op: {p.stderr!r}")
        clean(p.stderr, "the error message")
        log("  error: " + repr(p.stderr))
        eq(node.terminate(), 0, "exit code after SIGTERM")


if __name__ == "__main__":
    h.main([test_bad_flags_exit_2, test_durations_accepted, test_sigterm_exits_0_and_keeps_data,
            test_secret_files, test_orderctl_escapes_control_characters],
           __doc__)
