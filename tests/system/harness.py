"""Shared helpers for ordermesh's process-level system tests (Python 3 stdlib only).

A test file builds on three pieces:
  * Session: a temp directory plus every orderd it started; on exit it kills those (by pid,
    SIGKILL), closes its `extras` (an etcd, a proxy: etcd_harness.py) and removes the
    directory, whatever happened.
  * Node: one orderd on 127.0.0.1 with free ports, a data dir under the session, --pwhash fast,
    a random admin token; start / wait_ready / kill(SIGKILL) / terminate(SIGTERM) / restart.
  * Client: a raw JSON-lines connection, like `nc 127.0.0.1 PORT` would give.
and a tiny runner, `main(tests)`, that runs test functions, prints PASS/FAIL and the closing line
"N passed, N failed", and exits 1 on any failure (or when nothing passed). With
ORDERMESH_REPORT_DIR set it also writes the per-case report py-<script stem>.json there
(chaos/case_report.py) for scripts/test.sh.

Everything reaches only 127.0.0.1; every loop and wait is bounded.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# Error codes a caller may retry with the same ids.
RETRYABLE = ("unavailable", "timeout", "overloaded")

# Order status progress used by the recovery checks (REJECTED is a dead end of its own).
STATUS_RANK = {"PENDING": 0, "RESERVED": 1, "PAID": 2, "CANCELLED": 3}

ARGS = None  # set by main(): .orderd, .orderctl, .keep


class TestTimeout(Exception):
    pass


class ReplyError(AssertionError):
    """An `ok: false` reply where success was expected."""

    def __init__(self, op, reply):
        self.op = op
        self.reply = reply
        err = reply.get("error") or {}
        self.code = err.get("code")
        super().__init__(f"{op}: error {self.code}: {err.get('message')} (reply {reply})")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def log(msg):
    print(msg, flush=True)


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Calls fn() until it returns a truthy value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def clean_env(extra=None):
    """The environment for child processes: no ordermesh tokens leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERMESH_")}
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------
# Client


class Client:
    """One JSON-lines connection. request() sends one request and reads its reply."""

    def __init__(self, port, host=HOST, timeout=15.0, token=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.next_id = 1
        self.token = token  # default token for request()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self):
        """The next line (bytes, without '\\n'); None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read_reply(self):
        line = self.read_line()
        if line is None:
            raise ConnectionError("connection closed by orderd")
        try:
            return json.loads(line)
        except ValueError as e:
            raise AssertionError(f"reply is not JSON: {line[:200]!r}") from e

    def make(self, op, args=None, token=None, rid=None):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        req = {"id": rid, "op": op, "args": args if args is not None else {}}
        tok = token if token is not None else self.token
        if tok:
            req["token"] = tok
        return req

    def request(self, op, args=None, token=None):
        """Sends one request, returns the whole reply (dict). Checks that the id matches."""
        req = self.make(op, args, token)
        self.send_raw(json.dumps(req, separators=(",", ":")) + "\n")
        reply = self.read_reply()
        if reply.get("id") != req["id"]:
            raise AssertionError(f"{op}: reply id {reply.get('id')!r} != request id {req['id']!r}")
        return reply

    def ok(self, op, args=None, token=None):
        """The result of a request that must succeed."""
        reply = self.request(op, args, token)
        if reply.get("ok") is not True:
            raise ReplyError(op, reply)
        check("result" in reply, f"{op}: ok reply without result: {reply}")
        return reply["result"]

    def err(self, op, args=None, token=None, code=None):
        """The error object of a request that must fail (with `code`, a str or a tuple)."""
        reply = self.request(op, args, token)
        check(reply.get("ok") is False, f"{op} {args}: expected an error, got {reply}")
        error = reply.get("error") or {}
        check(isinstance(error.get("code"), str), f"{op}: error without code: {reply}")
        check(isinstance(error.get("message"), str), f"{op}: error without message: {reply}")
        if code is not None:
            codes = (code,) if isinstance(code, str) else tuple(code)
            check(error["code"] in codes, f"{op} {args}: expected error {codes}, got {reply}")
        return error

    def ok_retry(self, op, args=None, token=None, timeout=20.0):
        """Like ok(), but retries retryable errors (same request, same ids) for `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.request(op, args, token)
            if reply.get("ok") is True:
                return reply["result"]
            code = (reply.get("error") or {}).get("code")
            if code not in RETRYABLE or time.monotonic() >= deadline:
                raise ReplyError(op, reply)
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Node


def _launcher():
    """setpriv --pdeathsig KILL: orderd dies with the test process even if the test is killed."""
    sp = shutil.which("setpriv")
    if sp:
        try:
            out = subprocess.run([sp, "--help"], capture_output=True, text=True, timeout=5).stdout
            if "--pdeathsig" in out:
                return [sp, "--pdeathsig", "KILL", "--"]
        except (OSError, subprocess.SubprocessError):
            pass
    return []


class Node:
    """One orderd process (restartable on the same data dir)."""

    def __init__(self, session, name="n1", extra_args=(), admin_token=None, pwhash="fast",
                 data_dir=None, ttl=None, fault_injection=False, env=None):
        self.session = session
        self.name = name
        self.admin_token = admin_token or "adm-" + secrets.token_hex(12)
        self.data_dir = Path(data_dir) if data_dir else session.dir / f"{name}-data"
        self.extra_args = list(extra_args)
        if ttl is not None:
            self.extra_args += ["--reservation-ttl", ttl]
        if fault_injection:
            self.extra_args.append("--enable-fault-injection")
        self.pwhash = pwhash
        self.env = dict(env or {})  # variables for orderd on top of clean_env()
        self.port = None
        self.cluster_port = None
        self.proc = None
        self.starts = 0
        self.log_file = None
        self.stderr_file = None
        session.nodes.append(self)

    # -- process control ------------------------------------------------------------------

    def command(self):
        return [str(ARGS.orderd), "--node-id", self.name, "--data-dir", str(self.data_dir),
                "--client-host", HOST, "--client-port", str(self.port),
                "--cluster-port", str(self.cluster_port), "--admin-token", self.admin_token,
                "--pwhash", self.pwhash, "--log-level", "info",
                "--log-file", str(self.log_file)] + self.extra_args

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _launch(self):
        self.starts += 1
        self.log_file = self.session.dir / f"{self.name}.{self.starts}.log"
        self.stderr_file = self.session.dir / f"{self.name}.{self.starts}.stderr"
        # 0700, as orderd makes it (it tightens a wider one, with a warning in the log).
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(_launcher() + self.command(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=clean_env(self.env),
                                         close_fds=True)

    def start(self, timeout=30.0):
        """Starts orderd and waits until it answers. Keeps its ports across restarts when it can;
        if orderd exits while starting (e.g. the port was taken meanwhile), tries fresh ports."""
        check(not self.alive(), f"{self.name} is already running")
        for attempt in range(3):
            if self.port is None or attempt > 0:
                self.port, self.cluster_port = free_port(), free_port()
                while self.cluster_port == self.port:
                    self.cluster_port = free_port()
            self._launch()
            if self.wait_ready(timeout):
                return self
            if self.alive():
                break  # running but not answering: do not retry, report
        self.dump_logs()
        raise AssertionError(f"orderd {self.name} did not come up (exit code "
                             f"{self.proc.poll() if self.proc else None}); see logs above")

    def wait_ready(self, timeout=30.0):
        """True once orderd answers cluster.status (any well-formed reply); False if it exited or
        the time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with Client(self.port, timeout=2.0) as c:
                    reply = c.request("cluster.status", {})
                    if isinstance(reply, dict) and "ok" in reply:
                        return True
            except (OSError, ConnectionError, AssertionError):
                pass
            time.sleep(0.05)
        return False

    def kill(self, sig=signal.SIGKILL, timeout=15.0):
        """Sends `sig` to the pid this Node started and waits for it to exit. Returns its exit
        code (negative: killed by a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"orderd {self.name} did not exit within {timeout}s of {sig!r}")

    def terminate(self, timeout=20.0):
        return self.kill(signal.SIGTERM, timeout)

    def restart(self, timeout=30.0):
        if self.alive():
            self.kill()
        return self.start(timeout)

    def dump_logs(self, lines=40):
        for f in (self.stderr_file, self.log_file):
            if f and Path(f).exists():
                text = Path(f).read_text(errors="replace").splitlines()
                log(f"---- last {min(lines, len(text))} lines of {f.name} ----")
                for line in text[-lines:]:
                    log("  " + line)

    # -- clients --------------------------------------------------------------------------

    def client(self, token=None, timeout=15.0):
        return Client(self.port, timeout=timeout, token=token)

    def admin(self, timeout=15.0):
        return Client(self.port, timeout=timeout, token=self.admin_token)


# ---------------------------------------------------------------------------------------------
# Session


class Session:
    """Temp dir + started nodes; always cleaned up."""

    def __init__(self, name):
        self.dir = Path(tempfile.mkdtemp(prefix=f"ordermesh-{name}-"))
        self.nodes = []
        # other things to stop with the session (an etcd, a proxy: etcd_harness.py), each with
        # close() and optionally dump_logs(); closed after the nodes, before the dir goes
        self.extras = []
        self.failed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.failed = True
            # The reason first: CI keeps only part of a long output, and the node logs below
            # would push the traceback (printed after them by main) out of it.
            where = [f for f in traceback.extract_tb(tb) if f.filename.endswith("_test.py")]
            at = f" at {Path(where[-1].filename).name}:{where[-1].lineno}" if where else ""
            log(f"FAILED{at}: {exc_type.__name__}: {str(exc)[:2000]}")
            for n in self.nodes:
                n.dump_logs()
            for x in self.extras:
                if hasattr(x, "dump_logs"):
                    x.dump_logs()
        self.close()
        return False

    def node(self, **kw):
        return Node(self, **kw)

    def close(self):
        for n in self.nodes:
            if n.alive():
                try:
                    n.proc.kill()  # only the pid we started
                    n.proc.wait(timeout=10)
                except (OSError, subprocess.SubprocessError):
                    pass
        for x in reversed(self.extras):
            try:
                x.close()  # kills only the pids it started
            except Exception as ex:  # noqa: B902 - clean up the rest whatever this one did
                log(f"(cleanup of {x!r} failed: {ex})")
        if ARGS is not None and ARGS.keep:
            log(f"(kept {self.dir})")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Sharding: which shard holds an entity (the clusters themselves: etcd_harness.py)


KINDS = {"user": 1, "product": 2, "inventory": 3, "order": 4}  # domain/types.hpp entity_kind
_M64 = (1 << 64) - 1


def stable_hash(kind, ident):
    """cluster/sharding.cpp: FNV-1a 64 over (kind byte, id bytes), then a splitmix64 finalizer.
    Pinned by tests/cluster/sharding_test.cpp, so tests may predict which shard holds what."""
    h = 14695981039346656037
    h = ((h ^ kind) * 1099511628211) & _M64
    for c in ident.encode():
        h = ((h ^ c) * 1099511628211) & _M64
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _M64
    h ^= h >> 31
    return h


def shard_of(kind, ident, shard_count=64):
    """The shard of entity kind ("user", "product", "inventory", "order") / id."""
    return stable_hash(KINDS[kind], ident) % shard_count


assert stable_hash(1, "alice") == 0x3E267EEB0256291A and shard_of("user", "alice") == 26


# ---------------------------------------------------------------------------------------------
# Shop helpers (over a Client)


def create_product(admin, product_id, price_cents, stock=0, name=None, request_id=None):
    admin.ok("product.create", {"product_id": product_id, "name": name or product_id,
                                "price_cents": price_cents})
    if stock:
        return admin.ok("inventory.add", {"product_id": product_id, "quantity": stock,
                                          "request_id": request_id or f"stock-{product_id}"})
    return None


def register_login(client, user_id, password=None, name=None):
    """Registers and logs in; returns the token."""
    password = password or f"pw-{user_id}-secret"
    client.ok("user.register", {"user_id": user_id, "password": password,
                                "name": name or user_id.capitalize()})
    res = client.ok("user.login", {"user_id": user_id, "password": password})
    check(isinstance(res.get("token"), str) and res["token"], f"login without token: {res}")
    return res["token"]


def settle_order(client, order_id, timeout=15.0, token=None):
    """order.get until the order is not PENDING; returns it."""
    def get():
        o = client.ok_retry("order.get", {"order_id": order_id}, token)
        return o if o.get("status") != "PENDING" else None
    return wait_until(get, timeout, 0.05, f"order {order_id} to leave PENDING")


def settled(client, order, token=None):
    """An order reply, or its settled state when the reply said PENDING."""
    if order.get("status") == "PENDING":
        return settle_order(client, order["order_id"], token=token)
    return order


def inv(client, product_id):
    r = client.ok_retry("inventory.get", {"product_id": product_id})
    return r["available"], r["reserved"], r["sold"]


# ---------------------------------------------------------------------------------------------
# orderctl


def orderctl(*argv, token=None, timeout=30.0, env=None):
    """Runs the orderctl binary; returns CompletedProcess (text)."""
    extra = dict(env or {})
    if token is not None:
        extra["ORDERMESH_TOKEN"] = token
    return subprocess.run([str(ARGS.orderctl)] + [str(a) for a in argv], capture_output=True,
                          text=True, timeout=timeout, env=clean_env(extra),
                          stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# Runner


def _alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def take_orderbench_arg():
    """The orderbench binary: `--orderbench PATH` (taken out of sys.argv, so that parse_args
    does not see it), else build/client/orderbench."""
    if "--orderbench" in sys.argv:
        i = sys.argv.index("--orderbench")
        path = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        return path
    return str(REPO / "build" / "client" / "orderbench")


def parse_args(description):
    default_build = Path(os.environ.get("ORDERMESH_BUILD_DIR", REPO / "build"))
    if not default_build.is_absolute():
        default_build = REPO / default_build
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--orderd", default=str(default_build / "nodes" / "orderd"))
    p.add_argument("--orderctl", default=str(default_build / "client" / "orderctl"))
    p.add_argument("--keep", action="store_true", help="keep temp dirs (data, logs)")
    p.add_argument("--test-timeout", type=int, default=150,
                   help="seconds one test function may take (default 150)")
    p.add_argument("-k", dest="only", default=None, help="run only tests whose name has this")
    return p.parse_args()


def _write_report(defined, passed, failed):
    """The per-case report for scripts/test.sh when ORDERMESH_REPORT_DIR is set
    (chaos/case_report.py): suite = the test script's file stem, e.g. flow_test."""
    if not os.environ.get("ORDERMESH_REPORT_DIR"):
        return
    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or sys.argv[0]
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))  # the writer lives in chaos/ (stdlib only)
    from chaos import case_report
    case_report.write(Path(main_file).stem, defined, passed, failed)


def main(tests, description=""):
    """Runs test functions (each takes no arguments); exit 0 iff all passed."""
    global ARGS
    defined = [fn.__name__ for fn in tests]  # every case, whatever -k selects
    passed, failed = [], []
    try:
        ARGS = parse_args(description)
        for what in ("orderd", "orderctl"):
            path = Path(getattr(ARGS, what))
            if not (path.is_file() and os.access(path, os.X_OK)):
                log(f"error: {what} binary not found at {path} (build first, or pass --{what})")
                sys.exit(1)
        signal.signal(signal.SIGALRM, _alarm)
        # ctest ends a timed-out test with SIGTERM/SIGKILL; on SIGTERM clean up like on failure.
        signal.signal(signal.SIGTERM, _sigterm)
        for fn in tests:
            name = fn.__name__
            if ARGS.only and ARGS.only not in name:
                continue
            log(f"=== {name}")
            t0 = time.monotonic()
            signal.alarm(ARGS.test_timeout)
            try:
                fn()
                signal.alarm(0)
                passed.append(name)
                log(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
            except KeyboardInterrupt:
                signal.alarm(0)
                log(f"FAIL {name}: interrupted")
                failed.append(name)
                break
            except BaseException:  # noqa: B902 - report everything, keep going
                signal.alarm(0)
                failed.append(name)
                traceback.print_exc(file=sys.stdout)
                log(f"FAIL {name} ({time.monotonic() - t0:.1f}s)")
        log(f"{len(passed)} passed, {len(failed)} failed")
        sys.stdout.flush()
        sys.exit(0 if not failed and passed else 1)
    finally:
        # also when the run ends early (bad arguments, a missing binary, SIGTERM between tests):
        # the cases that did not run are then in `defined` only
        _write_report(defined, passed, failed)
