#!/usr/bin/env python3
"""ordermesh micro-benchmarks (issue 5): memory per idle active entity, activation time,
restart time, snapshot sizes, group-commit batch sizes. Python 3 standard library only.

Run through scripts/bench_micro.sh. Steps:
  1. ordermesh_loader writes U users, P products (+ inventories), O paid orders into a data dir
     (the domain's codecs, snapshots every 100 events: what orderd itself writes);
  2. one orderd on 127.0.0.1 serves it (--passivate-after long enough that nothing leaves);
  3. activation: sequential order.get of entities not in memory, then of the same ones again;
  4. memory: activate entities by reads in steps (orders, users, products, inventories) and read
     orderd's VmRSS and cluster.status members[].active_entities after each step;
  5. group commit: user.deposit at rising concurrency, storage counters before and after;
  6. restart: SIGTERM (and once SIGKILL), start again; time to the first successful read and to
     every shard owned and the member up.
Prints a plain-text table and writes every number as JSON to --out.
"""

import argparse
import json
import os
import platform
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HOST = "127.0.0.1"
TOKEN = "micro-bench-admin-token-0123456789"


def log(msg):
    print(f"[micro {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wal_bytes(data_dir):
    """Bytes of RocksDB write-ahead log in the data dir: what the next open must replay (at most;
    logs whose memtables were flushed are deleted)."""
    db = os.path.join(data_dir, "db")
    return sum(os.path.getsize(os.path.join(db, f)) for f in os.listdir(db) if f.endswith(".log"))


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


class Conn:
    """A blocking JSON-lines connection."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0

    def close(self):
        self.sock.close()

    def call(self, op, args=None, token=TOKEN):
        self.n += 1
        req = {"id": self.n, "op": op, "args": args or {}}
        if token:
            req["token"] = token
        self.sock.sendall((json.dumps(req, separators=(",", ":")) + "\n").encode())
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed by orderd")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def pipelined(port, requests, conns=8, depth=64, deadline=None):
    """Sends every (op, args) of the iterator `requests` over `conns` connections with up to
    `depth` in flight each. Returns (ok, errors by code, seconds). Stops at `deadline` if given."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        s = socket.create_connection((HOST, port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        st = {"sock": s, "buf": b"", "inflight": 0, "out": b""}
        sel.register(s, selectors.EVENT_READ, st)
        socks.append(st)
    ok, errors, rid = 0, {}, 0
    exhausted = False
    t0 = time.monotonic()
    it = iter(requests)
    try:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                exhausted = True
            for st in socks:
                parts = []
                while not exhausted and st["inflight"] < depth:
                    try:
                        op, args = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    rid += 1
                    parts.append(json.dumps({"id": rid, "op": op, "token": TOKEN, "args": args},
                                            separators=(",", ":")))
                    st["inflight"] += 1
                if parts:
                    st["out"] += ("\n".join(parts) + "\n").encode()
                if st["out"]:
                    try:
                        n = st["sock"].send(st["out"])
                        st["out"] = st["out"][n:]
                    except BlockingIOError:
                        pass
            if exhausted and all(st["inflight"] == 0 for st in socks):
                break
            for key, _ in sel.select(timeout=1.0):
                st = key.data
                chunk = st["sock"].recv(1 << 20)
                if not chunk:
                    raise ConnectionError("closed by orderd")
                st["buf"] += chunk
                *lines, st["buf"] = st["buf"].split(b"\n")
                for line in lines:
                    if not line:
                        continue
                    st["inflight"] -= 1
                    r = json.loads(line)
                    if r.get("ok"):
                        ok += 1
                    else:
                        code = (r.get("error") or {}).get("code", "?")
                        errors[code] = errors.get(code, 0) + 1
    finally:
        for st in socks:
            sel.unregister(st["sock"])
            st["sock"].close()
    return ok, errors, time.monotonic() - t0


class Node:
    def __init__(self, orderd, data_dir, shards, extra):
        self.orderd, self.data_dir, self.shards, self.extra = orderd, data_dir, shards, extra
        self.port = free_port()
        self.cport = free_port()
        self.proc = None

    def start(self):
        cmd = [self.orderd, "--node-id", "n1", "--data-dir", self.data_dir,
               "--client-port", str(self.port), "--cluster-host", HOST,
               "--cluster-port", str(self.cport), "--shards", str(self.shards),
               "--admin-token", TOKEN, "--pwhash", "fast",
               "--log-file", os.path.join(self.data_dir, "orderd.log")] + self.extra
        self.cmd = cmd
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return t0

    def stop(self, sig=signal.SIGTERM, timeout=120):
        if self.proc is None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        return time.monotonic() - t0

    def status(self):
        c = Conn(self.port)
        try:
            r = c.call("cluster.status", token=None)
        finally:
            c.close()
        if not r.get("ok"):
            raise RuntimeError(f"cluster.status: {r}")
        return r["result"]

    def active(self):
        st = self.status()
        for m in st["members"]:
            if m.get("node_id") == "n1":
                return m.get("active_entities", 0)
        return 0


def wait_first_answer(node, t0, op, args, timeout=120):
    """Seconds from t0 to the first successful `op`; retries connecting and retryable errors."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise RuntimeError(f"orderd exited with {node.proc.returncode}")
        try:
            c = Conn(node.port, timeout=5)
        except OSError:
            time.sleep(0.002)
            continue
        try:
            while time.monotonic() < deadline:
                r = c.call(op, args)
                if r.get("ok"):
                    return time.monotonic() - t0
                time.sleep(0.002)
        except (OSError, ConnectionError):
            time.sleep(0.002)
        finally:
            c.close()
    raise RuntimeError("no answer within the timeout")


def wait_all_shards(node, t0, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = node.status()
            owned = sum(1 for s in st["shards"] if s.get("owner") == "n1")
            me = [m for m in st["members"] if m.get("node_id") == "n1"]
            if (owned == st["shard_count"] and me and me[0].get("state") == "up"
                    and st["storage"].get("healthy")):
                return time.monotonic() - t0
        except (OSError, ConnectionError, RuntimeError, KeyError):
            pass
        time.sleep(0.005)
    raise RuntimeError("shards not ready within the timeout")


def reads(kind, ids):
    op, key = {"order": ("order.get", "order_id"), "user": ("user.get", "user_id"),
               "product": ("product.get", "product_id"),
               "inventory": ("inventory.get", "product_id")}[kind]
    for i in ids:
        yield op, {key: f"{kind[0] if kind != 'inventory' else 'p'}{i}"}


def latencies(node, kind, ids):
    c = Conn(node.port)
    out = []
    try:
        for op, args in reads(kind, ids):
            t = time.perf_counter()
            r = c.call(op, args)
            out.append((time.perf_counter() - t) * 1e6)
            if not r.get("ok"):
                raise RuntimeError(f"{op} {args}: {r}")
    finally:
        c.close()
    return out


def summary_us(xs):
    return {"n": len(xs), "p50_us": round(pct(xs, 50), 1), "p90_us": round(pct(xs, 90), 1),
            "p99_us": round(pct(xs, 99), 1), "mean_us": round(statistics.mean(xs), 1)}


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                             "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    with open("/proc/meminfo") as f:
        mem = f.readline().split()[1]
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "mem_kib": int(mem), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "commit": commit}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="build dir with nodes/orderd, bench/ordermesh_loader")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workdir", default="/tmp/ordermesh-micro")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    ap.add_argument("--restarts", type=int, default=3)
    a = ap.parse_args()

    # Shop shape: 89% orders, 9% users, 1% products (+1% inventories); ~10 events per entity.
    entities = 10**5 if a.quick else 10**6
    users, products = entities * 9 // 100, entities // 100
    orders = entities - users - 2 * products
    shards = 64
    orderd = os.path.join(a.build, "nodes", "orderd")
    loader = os.path.join(a.build, "bench", "ordermesh_loader")
    res = {"mode": "quick" if a.quick else "full", "machine": machine(),
           "shape": {"users": users, "products": products, "inventories": products,
                     "orders": orders, "items_per_order": 2, "shards": shards,
                     "snapshot_every": 100}}
    shutil.rmtree(a.workdir, ignore_errors=True)
    data = os.path.join(a.workdir, "n1")
    os.makedirs(data)

    # 1. Load.
    log(f"loading {entities} entities into {data}")
    cmd = [loader, "--data-dir", data, "--users", str(users), "--products", str(products),
           "--orders", str(orders), "--items", "2", "--shards", str(shards)]
    res["load_command"] = " ".join(cmd)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res["load"] = json.loads(out.strip().splitlines()[-1])
    du = subprocess.run(["du", "-sb", os.path.join(data, "db")], capture_output=True, text=True)
    res["load"]["db_bytes"] = int(du.stdout.split()[0])
    log(f"loaded: {res['load']['entities']} entities, {res['load']['events']} events in "
        f"{res['load']['seconds']:.1f}s, db {res['load']['db_bytes'] / 2**20:.0f} MiB")

    node = Node(orderd, data, shards, ["--passivate-after", "12h", "--passivate-settled-after", "12h",
                                        "--request-timeout", "60s"])
    try:
        # 2. First start (founds the cluster on the loaded data). The loader leaves its last
        # memtables in the WAL, as a node killed after heavy writes would: this open replays them.
        res["first_start_wal_bytes"] = wal_bytes(data)
        t0 = node.start()
        first = wait_first_answer(node, t0, "inventory.get", {"product_id": "p0"})
        res["first_start_first_answer_s"] = round(first, 3)
        log(f"first start: {res['first_start_wal_bytes'] / 2**20:.0f} MiB of WAL, first answer "
            f"after {first * 1000:.0f} ms")
        time.sleep(1.0)
        base_rss = rss_kib(node.proc.pid)
        base_active = node.active()
        res["baseline"] = {"rss_kib": base_rss, "active": base_active}
        log(f"started; baseline RSS {base_rss} KiB, {base_active} active")

        # 3. Activation: cold reads (from disk), then warm reads of the same entities.
        n_lat = 2000 if a.quick else 5000
        cold_ids = range(orders - n_lat, orders)  # not touched by anything else yet
        cold = latencies(node, "order", cold_ids)
        warm = latencies(node, "order", cold_ids)
        res["activation"] = {"cold_order_get": summary_us(cold),
                             "warm_order_get": summary_us(warm),
                             "activation_cost_p50_us": round(pct(cold, 50) - pct(warm, 50), 1)}
        ucold = latencies(node, "user", range(users - 500, users))
        uwarm = latencies(node, "user", range(users - 500, users))
        res["activation"]["cold_user_get"] = summary_us(ucold)
        res["activation"]["warm_user_get"] = summary_us(uwarm)
        log(f"activation: order.get cold p50 {pct(cold, 50):.0f} us, warm {pct(warm, 50):.0f} us")

        # 4. Memory: activate in steps, RSS and active_entities after each.
        steps = []

        def checkpoint(label, secs=None, n=None, errs=None):
            time.sleep(0.5)
            p = {"step": label, "active": node.active(), "rss_kib": rss_kib(node.proc.pid)}
            if secs:
                p["seconds"] = round(secs, 2)
                p["activations_per_s"] = round(n / secs)
            if errs:
                p["errors"] = errs
            steps.append(p)
            log(f"  {label}: {p['active']} active, RSS {p['rss_kib'] / 1024:.0f} MiB"
                + (f", {p['activations_per_s']}/s" if secs else "") + (f", errors {errs}" if errs else ""))
            return p

        checkpoint("after activation test")
        tenth = entities // 10 - (n_lat + 500)
        ok, errs, secs = pipelined(node.port, reads("order", range(0, tenth)))
        p1 = checkpoint(f"orders 0..{tenth}", secs, tenth, errs)
        rest = orders - n_lat
        ok, errs, secs = pipelined(node.port, reads("order", range(tenth, rest)))
        p2 = checkpoint("all orders", secs, rest - tenth, errs)
        ok, errs, secs = pipelined(node.port, reads("user", range(0, users - 500)))
        p3 = checkpoint("all users", secs, users - 500, errs)
        ok, errs, secs = pipelined(node.port, reads("product", range(products)))
        p4 = checkpoint("all products", secs, products, errs)
        ok, errs, secs = pipelined(node.port, reads("inventory", range(products)))
        p5 = checkpoint("all inventories", secs, products, errs)

        def slope(x, y):
            d = y["active"] - x["active"]
            return round((y["rss_kib"] - x["rss_kib"]) * 1024 / d, 1) if d > 0 else None

        res["memory"] = {
            "steps": steps,
            "bytes_per_entity_slope": slope(p1, p5),
            "bytes_per_order": slope(p1, p2),
            "bytes_per_user": slope(p2, p3),
            "bytes_per_product": slope(p3, p4),
            "bytes_per_inventory": slope(p4, p5),
            "holds_all": p5["active"] >= entities,
            "final_active": p5["active"],
            "final_rss_kib": p5["rss_kib"],
        }
        log(f"memory slope {res['memory']['bytes_per_entity_slope']} B/entity "
            f"({p1['active']} -> {p5['active']} active)")

        # 5. Group commit: deposits at rising concurrency.
        gc = []
        secs_each = 3 if a.quick else 6
        for conns, depth in ((1, 1), (4, 4), (16, 16), (32, 64)):
            before = node.status()["storage"]
            tag = f"gc{conns}x{depth}-"
            nreq = [0]

            def deposits():
                i = 0
                while True:
                    i += 1
                    nreq[0] = i
                    yield "user.deposit", {"user_id": f"u{i % users}", "amount_cents": 1,
                                           "request_id": f"{tag}{i}"}

            ok, errs, secs = pipelined(node.port, deposits(), conns, depth,
                                       deadline=time.monotonic() + secs_each)
            after = node.status()["storage"]
            dw = after["writes"] - before["writes"]
            db = after["synced_batches"] - before["synced_batches"]
            row = {"concurrency": conns * depth, "connections": conns, "depth": depth,
                   "ok": ok, "errors": errs, "seconds": round(secs, 2),
                   "writes_per_s": round(dw / secs), "synced_batches_per_s": round(db / secs),
                   "writes_per_batch": round(dw / db, 2) if db else None,
                   "max_batch_so_far": after["max_batch"]}
            gc.append(row)
            log(f"  group commit x{conns * depth}: {row['writes_per_s']} writes/s, "
                f"{row['writes_per_batch']} writes/batch, max {row['max_batch_so_far']}")
        res["group_commit"] = gc

        # 6. Restarts with everything on disk (SIGTERM, then once SIGKILL: WAL replay).
        restarts = []
        kinds = ["SIGTERM"] * a.restarts + ["SIGKILL"]
        for k in kinds:
            stop_s = node.stop(signal.SIGTERM if k == "SIGTERM" else signal.SIGKILL)
            wal = wal_bytes(data)
            t0 = node.start()
            first = wait_first_answer(node, t0, "inventory.get", {"product_id": "p1"})
            ready = wait_all_shards(node, t0)
            order_s = wait_first_answer(node, t0, "order.get", {"order_id": "o12345"})
            r = {"stop": k, "stop_s": round(stop_s, 3), "wal_bytes": wal,
                 "first_answer_s": round(first, 3),
                 "all_shards_ready_s": round(ready, 3), "order_get_s": round(order_s, 3),
                 "rss_kib_after": rss_kib(node.proc.pid)}
            restarts.append(r)
            log(f"  restart after {k} (stop took {stop_s:.2f}s): first answer {first * 1000:.0f} ms, "
                f"all shards ready {ready * 1000:.0f} ms")
        res["restart"] = {
            "runs": restarts,
            "median_first_answer_s": statistics.median(r["first_answer_s"] for r in restarts),
            "median_all_shards_ready_s": statistics.median(r["all_shards_ready_s"] for r in restarts),
        }
    finally:
        node.stop()
        if not a.keep:
            shutil.rmtree(a.workdir, ignore_errors=True)

    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print_table(res)


def print_table(res):
    m, L = res["machine"], res["load"]
    print()
    print(f"ordermesh micro-benchmarks ({res['mode']}) — {m['nproc']} cores, {m['cpu']}, "
          f"kernel {m['kernel']}, commit {m['commit']}, {m['date']}")
    print(f"data: {L['entities']} entities, {L['events']} events, db {L['db_bytes'] / 2**20:.0f} MiB,"
          f" loaded in {L['seconds']:.1f} s")
    rows = []
    mem = res["memory"]
    rows.append(("memory per active entity (slope)", f"{mem['bytes_per_entity_slope']} B",
                 "<= 1024 B"))
    for k in ("order", "user", "product", "inventory"):
        rows.append((f"  per {k}", f"{mem['bytes_per_' + k]} B", ""))
    rows.append(("active entities held / RSS", f"{mem['final_active']} / "
                 f"{mem['final_rss_kib'] / 1024:.0f} MiB", f"{L['entities']}"))
    act = res["activation"]
    rows.append(("order.get from disk p50/p99", f"{act['cold_order_get']['p50_us']:.0f} / "
                 f"{act['cold_order_get']['p99_us']:.0f} us", ""))
    rows.append(("order.get in memory p50/p99", f"{act['warm_order_get']['p50_us']:.0f} / "
                 f"{act['warm_order_get']['p99_us']:.0f} us", ""))
    rows.append(("user.get from disk / in memory p50", f"{act['cold_user_get']['p50_us']:.0f} / "
                 f"{act['warm_user_get']['p50_us']:.0f} us", ""))
    rs = res["restart"]
    rows.append(("restart: first answer (median)", f"{rs['median_first_answer_s'] * 1000:.0f} ms",
                 "<= 2000 ms"))
    rows.append(("restart: all shards ready (median)",
                 f"{rs['median_all_shards_ready_s'] * 1000:.0f} ms", ""))
    for r in rs["runs"]:
        rows.append((f"  after {r['stop']} (stop {r['stop_s']:.1f} s)",
                     f"{r['first_answer_s'] * 1000:.0f} / {r['all_shards_ready_s'] * 1000:.0f} ms",
                     f"WAL {r['wal_bytes'] / 2**20:.1f} MiB"))
    rows.append(("first start after the load: first answer",
                 f"{res['first_start_first_answer_s'] * 1000:.0f} ms",
                 f"WAL {res['first_start_wal_bytes'] / 2**20:.0f} MiB to replay"))
    for k in ("user", "product", "inventory", "order"):
        s = L[k]
        rows.append((f"snapshot bytes {k} (min/mean/max)",
                     f"{s['snapshot_bytes_min']} / {s['snapshot_bytes_mean']:.0f} / "
                     f"{s['snapshot_bytes_max']}", f"{s['events'] / max(1, s['entities']):.1f} ev/entity"))
    for g in res["group_commit"]:
        rows.append((f"group commit, {g['concurrency']} in flight",
                     f"{g['writes_per_s']} w/s, {g['writes_per_batch']} w/batch",
                     f"max {g['max_batch_so_far']}"))
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    print(f"{'measure':<{w}}  {'result':<{v}}  target/note")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<{v}}  {r[2]}")


if __name__ == "__main__":
    sys.exit(main())
