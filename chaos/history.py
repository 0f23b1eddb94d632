"""The chaos history: what a workload run records, how it is written and how it is read back.

A history is a text file of JSON objects, one per line (JSON lines, UTF-8). The checker reads
nothing else (plus an optional journal dump, see journal_audit.py), so everything it needs to
judge the cluster must be in these records. Every record has `type`, `time` (monotonic seconds
since the run's start, float) and, written by HistoryWriter, `wall_ms` (Unix epoch ms, integer:
only needed where the checker compares with server timestamps such as an order's `expires_at`).

Record types
------------
meta      (first line) what run this is:
          {"type":"meta","version":1,"scenario":"kill-one","seed":42,"commit":"47308b6",
           "reservation_ttl_ms":900000,"expiry_grace_ms":1000,"start_wall_ms":1700000000000,
           "nodes":["n1","n2","n3"],"users":{"alice":{"admin":false}},"time":0.0}
          Only `type` is required; unknown keys are kept (the report echoes scenario, seed and
          commit). `users` names the users the workload acts for; the checker expects a final
          read of each. `expiry_grace_ms` (default 1000) is how late an expiry may fire.

invoke    a client (a `process`: one logical client, one token) starts an operation:
          {"type":"invoke","process":3,"req":17,"op":"order.place","as":"alice",
           "args":{"order_id":"o-3-5","user_id":"alice","items":[{"product_id":"p1","quantity":2}]},
           "node":"n2","time":12.345,"wall_ms":...}
          `req` is unique per process (HistoryWriter makes it unique per history); `args` are the
          protocol args exactly as sent; `as` is whose token was sent: a user id, "admin" for the
          admin token, or null for none (the isolation check relies on it); `node` is the node
          the request went to. A retry is a new invoke (new `req`) with the SAME args, so the
          same `order_id` / `request_id`.

ok|fail|info   the same operation completes:
          {"type":"ok","process":3,"req":17,"op":"order.place","result":{...},"error":null,
           "node":"n2","time":12.401,"wall_ms":...}
          ok:   the node answered `ok: true`; `result` is the reply's result.
          fail: the node refused explicitly (`error` = the reply's error {code, message}); the
                operation certainly did not take effect.
          info: the outcome is unknown (maybe happened): no reply (timeout, dropped connection;
                `error` may say which, e.g. {"code":"no_reply","message":"connection reset"}),
                or an error whose code means "outcome unknown" (OUTCOME_UNKNOWN_CODES:
                unavailable, timeout, overloaded, internal). The reader also reads a `fail` with
                such a code as `info`, whatever the writer said.
          An invoke without a completion (the run ended first) counts as info.

nemesis   a fault starts or stops (same history, same clock):
          {"type":"nemesis","event":"start","fault":"kill n2","nodes":["n2"],"time":...}
          {"type":"nemesis","event":"stop","fault":"kill n2","nodes":["n2"],"time":...}
          A stop closes the oldest open start with the same key: `id` if the records carry
          one (then both must), else the `fault` string. A start never stopped lasts to the
          end of the history. `nodes` is optional: which nodes the fault hits (for the
          recovery time on those nodes).

final     after healing and settling, the state the cluster serves, read with the admin token:
          {"type":"final","kind":"order","id":"o-3-5","state":{...order...},"time":..,"wall_ms":..}
          {"type":"final","kind":"inventory","id":"p1",
           "state":{"available":..,"reserved":..,"sold":..}}
          {"type":"final","kind":"user","id":"alice","state":{"balance_cents":..}}
          {"type":"final","kind":"order","id":"o-9","state":null,"error":{"code":"not_found"}}
          `state` null with error `not_found` means "does not exist"; any other error means the
          read failed (the entity is then unverified, reported as incomplete). The driver reads
          every order id it ever tried to place AND every order in each user's order.list, every
          product's inventory and every user's wallet. Several final records for one entity are
          allowed (e.g. from order.get and order.list); the latest one is its final state.

Reading: `load(path)` -> list of records (a torn last line, from a writer that died mid-write,
is ignored); `parse(records)` -> History with the ops paired invoke -> completion, nemesis
windows, final reads and the meta record. Anything else malformed raises HistoryError naming the
line, because a checker that guesses at a broken history can only give wrong verdicts.
"""

import json
import threading
import time
from dataclasses import dataclass, field

FORMAT_VERSION = 1

OUTCOMES = ("ok", "fail", "info")
RECORD_TYPES = ("meta", "invoke", "nemesis", "final") + OUTCOMES
FINAL_KINDS = ("order", "inventory", "user")

# Error codes after which the operation may or may not have happened (PROTOCOL.md: "outcome
# unknown", retried with the same ids). `internal` is a bug whose effect is unknown, too.
OUTCOME_UNKNOWN_CODES = frozenset({"unavailable", "timeout", "overloaded", "internal"})

ADMIN = "admin"


class HistoryError(ValueError):
    """The history is malformed: the checker refuses to judge it."""


def outcome_of_reply(reply):
    """How a protocol reply line (a dict, or None for no reply) is recorded: ok, fail or info."""
    if reply is None:
        return "info"
    if reply.get("ok") is True:
        return "ok"
    code = (reply.get("error") or {}).get("code")
    return "info" if code in OUTCOME_UNKNOWN_CODES else "fail"


# ---------------------------------------------------------------------------------------------
# Writing


class HistoryWriter:
    """Appends records to a history file; safe to share between the driver's threads.

    The clock is read inside the lock, so the file's lines are in time order, and each line is
    flushed at once, so a driver killed mid-run still leaves a readable history.
    """

    def __init__(self, path, clock=time.monotonic, wall_clock=time.time):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._clock = clock
        self._wall = wall_clock
        self._t0 = clock()
        self._next_req = 0

    def close(self):
        with self._lock:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, record):
        with self._lock:
            record["time"] = round(self._clock() - self._t0, 6)
            record["wall_ms"] = int(self._wall() * 1000)
            self._file.write(json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n")
            self._file.flush()
            return record

    def meta(self, **fields):
        record = {"type": "meta", "version": FORMAT_VERSION,
                  "start_wall_ms": int(self._wall() * 1000)}
        record.update(fields)
        return self._write(record)

    def invoke(self, process, op, args, node=None, as_user=None):
        """Records the start of `op`; returns its req, to pass to complete()."""
        with self._lock:
            self._next_req += 1
            req = self._next_req
        self._write({"type": "invoke", "process": process, "req": req, "op": op,
                     "as": as_user, "args": args, "node": node})
        return req

    def complete(self, process, req, op, outcome, result=None, error=None, node=None):
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        return self._write({"type": outcome, "process": process, "req": req, "op": op,
                            "result": result, "error": error, "node": node})

    def reply(self, process, req, op, reply, node=None, no_reply_reason="no reply"):
        """Records the completion from a protocol reply dict (None: no reply came)."""
        outcome = outcome_of_reply(reply)
        if reply is None:
            error = {"code": "no_reply", "message": no_reply_reason}
            return self.complete(process, req, op, outcome, None, error, node)
        return self.complete(process, req, op, outcome, reply.get("result"),
                             reply.get("error"), node)

    def nemesis(self, event, fault, nodes=None, **extra):
        if event not in ("start", "stop"):
            raise ValueError("nemesis event must be start or stop")
        record = {"type": "nemesis", "event": event, "fault": fault}
        if nodes is not None:
            record["nodes"] = list(nodes)
        record.update(extra)
        return self._write(record)

    def final(self, kind, entity_id, state=None, error=None):
        if kind not in FINAL_KINDS:
            raise ValueError(f"final kind must be one of {FINAL_KINDS}")
        return self._write({"type": "final", "kind": kind, "id": entity_id, "state": state,
                            "error": error})


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class Op:
    """One operation: its invoke record and its completion record (None: never completed)."""

    invoke: dict
    completion: dict = None
    outcome: str = "info"  # effective: ok / fail / info (fail with an unknown-outcome code: info)

    @property
    def process(self):
        return self.invoke["process"]

    @property
    def op(self):
        return self.invoke["op"]

    @property
    def args(self):
        return self.invoke["args"]

    @property
    def as_user(self):
        return self.invoke.get("as")

    @property
    def node(self):
        return self.invoke.get("node")

    @property
    def t_invoke(self):
        return self.invoke["time"]

    @property
    def t_complete(self):
        return None if self.completion is None else self.completion["time"]

    @property
    def result(self):
        return None if self.completion is None else self.completion.get("result")

    @property
    def error_code(self):
        if self.completion is None:
            return None
        return (self.completion.get("error") or {}).get("code")

    @property
    def records(self):
        return [self.invoke] if self.completion is None else [self.invoke, self.completion]


@dataclass
class Window:
    """A nemesis fault from its start to its stop (stop None: it lasted to the end)."""

    fault: str
    start: dict
    stop: dict = None
    nodes: tuple = ()

    @property
    def t_start(self):
        return self.start["time"]

    def t_stop(self, end_time):
        return end_time if self.stop is None else self.stop["time"]


@dataclass
class History:
    meta: dict
    ops: list            # Op, in invoke order
    windows: list        # Window, in start order
    finals: list         # final records, in file order
    nemesis: list        # nemesis records, in file order
    end_time: float = 0.0
    records: list = field(default_factory=list)


def load(path):
    """The records of a history file. A torn last line (no newline, not JSON) is dropped."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            if n == len(lines):  # the last line had no newline: the writer died mid-line
                break
            raise HistoryError(f"{path}:{n}: not JSON: {e}") from None
        records.append(record)
    return records


def _fail(n, record, why):
    raise HistoryError(f"record {n} ({json.dumps(record)[:200]}): {why}")


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _ident(x):
    return isinstance(x, (int, str)) and not isinstance(x, bool)


def parse(records):
    """Validates records and pairs them: returns a History. Raises HistoryError."""
    meta = {}
    ops, windows, finals, nemesis = [], [], [], []
    open_ops = {}        # (process, req) -> Op
    seen = set()
    open_windows = {}    # fault key -> [Window] oldest first
    end_time = 0.0
    for n, r in enumerate(records, 1):
        if not isinstance(r, dict):
            _fail(n, r, "not a JSON object")
        kind = r.get("type")
        if kind not in RECORD_TYPES:
            _fail(n, r, f"unknown type {kind!r}")
        if kind == "meta":
            if meta:
                _fail(n, r, "a second meta record")
            meta = r
            continue
        if not _number(r.get("time")):
            _fail(n, r, "time must be a number")
        end_time = max(end_time, r["time"])
        if kind == "invoke":
            if not (_ident(r.get("process")) and _ident(r.get("req"))):
                _fail(n, r, "process and req must be integers or strings")
            if not isinstance(r.get("op"), str) or not isinstance(r.get("args", {}), dict):
                _fail(n, r, "op must be a string and args an object")
            r.setdefault("args", {})
            key = (r["process"], r["req"])
            if key in seen:
                _fail(n, r, f"process {key[0]} req {key[1]} invoked twice")
            seen.add(key)
            op = Op(invoke=r)
            open_ops[key] = op
            ops.append(op)
        elif kind in OUTCOMES:
            key = (r.get("process"), r.get("req"))
            op = open_ops.pop(key, None)
            if op is None:
                _fail(n, r, "completion without an open invoke of the same process and req")
            if r.get("op", op.op) != op.op:
                _fail(n, r, f"completion op {r.get('op')!r} != invoke op {op.op!r}")
            if r["time"] < op.t_invoke:
                _fail(n, r, "completes before its invoke")
            error = r.get("error")
            if error is not None and not isinstance(error, dict):
                _fail(n, r, "error must be an object or null")
            op.completion = r
            code = (error or {}).get("code")
            op.outcome = "info" if kind == "fail" and code in OUTCOME_UNKNOWN_CODES else kind
        elif kind == "nemesis":
            if r.get("event") not in ("start", "stop") or not isinstance(r.get("fault"), str):
                _fail(n, r, "nemesis needs event start|stop and a fault string")
            nemesis.append(r)
            fkey = r.get("id", r["fault"])
            if r["event"] == "start":
                w = Window(fault=r["fault"], start=r, nodes=tuple(r.get("nodes") or ()))
                windows.append(w)
                open_windows.setdefault(fkey, []).append(w)
            else:
                pending = open_windows.get(fkey)
                if not pending:
                    _fail(n, r, "nemesis stop without a start of the same fault")
                w = pending.pop(0)
                w.stop = r
                if not w.nodes and r.get("nodes"):
                    w.nodes = tuple(r["nodes"])
        elif kind == "final":
            if r.get("kind") not in FINAL_KINDS or not _ident(r.get("id")):
                _fail(n, r, f"final needs kind in {FINAL_KINDS} and an id")
            state, error = r.get("state"), r.get("error")
            if state is not None and not isinstance(state, dict):
                _fail(n, r, "final state must be an object or null")
            if state is None and not isinstance(error, dict):
                _fail(n, r, "final without state needs an error object (not_found, ...)")
            finals.append(r)
    return History(meta=meta, ops=ops, windows=windows, finals=finals, nemesis=nemesis,
                   end_time=end_time, records=list(records))
