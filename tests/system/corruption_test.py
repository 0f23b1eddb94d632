#!/usr/bin/env python3
"""A bit flipped in a stopped node's data dir is found, and only the damaged entity pays for it
(issue 13, "Fuzzing and corruption").

Each test runs a real single node (orderd without etcd), creates users, products and orders,
stops it (SIGTERM: the memtables are flushed to SST files), damages the real data dir and
starts the node again on it:
  * test_flipped_value_quarantines_one_entity: one bit of one product's stored event is flipped
    through RocksDB (`ldb put`, Debian's rocksdb-tools), so RocksDB's own block checksums hold
    and only the value's CRC32C can tell. The product answers `corrupted` (every time, the node
    logs it once at error level and counts it in ordermesh_entity_corrupted_total); its
    inventory, the other products, users and orders answer normally and new orders are placed;
    `ordermesh-journal verify` names the product and exits 1, and exits 0 on an undamaged copy
    taken before the flip.
  * test_flipped_sst_byte_is_a_per_entity_error: one byte inside an SST file is flipped, where a
    user's name is stored, so RocksDB's block checksum reports it first. The node still starts;
    that user answers `corrupted`, every other entity answers normally or (those in the same
    damaged block) `corrupted` too, never `unavailable`, `internal` or a dead node; verify
    exits 1.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

LDB = shutil.which("ldb")


def journal_tool():
    path = os.environ.get("ORDERMESH_JOURNAL") or str(Path(h.ARGS.orderd).parent /
                                                       "ordermesh-journal")
    check(os.access(path, os.X_OK), f"ordermesh-journal not found at {path} (build it)")
    return path


def verify(data_dir):
    p = subprocess.run([journal_tool(), "verify", "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=120, env=h.clean_env())
    log(f"verify {data_dir}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def ldb(data_dir, *args):
    check(LDB is not None, "ldb not found (Debian package rocksdb-tools, see scripts/setup.sh)")
    p = subprocess.run([LDB, f"--db={Path(data_dir) / 'db'}", "--hex"] + list(args),
                       capture_output=True, text=True, timeout=120, env=h.clean_env())
    check(p.returncode == 0, f"ldb {args[0]} failed: {p.stdout}{p.stderr}")
    return p.stdout


def event_key_value(data_dir, kind, ident, seq):
    """(key hex, value hex) of an entity's event, found by scanning the real store."""
    pattern = re.compile(r"^0x([0-9A-F]{4}%02X%s0065%016X) : 0x([0-9A-F]*)$" %
                         (h.KINDS[kind], ident.encode().hex().upper(), seq))
    for line in ldb(data_dir, "scan").splitlines():
        m = pattern.match(line.strip())
        if m:
            return m.group(1), m.group(2)
    raise AssertionError(f"no event {seq} of {kind}/{ident} in {data_dir}")


def flip_value_bit(data_dir, kind, ident, seq):
    key, value = event_key_value(data_dir, kind, ident, seq)
    raw = bytearray(bytes.fromhex(value))
    raw[len(raw) // 2] ^= 0x08  # a bit in the payload, not in the checksum
    ldb(data_dir, "put", "0x" + key, "0x" + raw.hex().upper())
    eq(event_key_value(data_dir, kind, ident, seq)[1], raw.hex().upper(), "the flipped value")


def metric(node, name):
    url = f"http://{h.HOST}:{node.admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def error_code(reply):
    check(not reply.get("ok"), f"expected an error, got {reply}")
    return (reply.get("error") or {}).get("code")


def log_lines(node, text):
    return [line for line in Path(node.log_file).read_text(errors="replace").splitlines()
            if text in line]


def populate(node, products):
    """Users alice and bob, the given products with stock, and one paid order of alice."""
    with node.admin() as adm:
        for p in products:
            h.create_product(adm, p, 150, stock=20)
    with node.client() as c:
        tok = h.register_login(c, "alice")
        h.register_login(c, "bob")
        c.ok("user.deposit", {"user_id": "alice", "amount_cents": 10000, "request_id": "d1"}, tok)
        order = c.ok("order.place", {"order_id": "o1", "user_id": "alice",
                                     "items": [{"product_id": products[0], "quantity": 2}]}, tok)
        h.settled(c, order, tok)
        h.settled(c, c.ok("order.pay", {"order_id": "o1"}, tok), tok)
    return tok


def test_flipped_value_quarantines_one_entity():
    with h.Session("bitflip") as s:
        node = s.node()
        node.admin_port = h.free_port()
        node.extra_args += ["--admin-port", str(node.admin_port)]
        node.start()
        populate(node, ["keep", "victim"])
        eq(node.terminate(), 0, "orderd exit code on SIGTERM")
        clean = s.dir / "clean-copy"
        shutil.copytree(node.data_dir, clean)
        flip_value_bit(node.data_dir, "product", "victim", 1)

        p = verify(node.data_dir)
        eq(p.returncode, 1, "verify exit code on the damaged dir")
        damaged = [line for line in p.stdout.splitlines() if line.startswith("damaged:")]
        eq(len(damaged), 1, "damaged entities listed")
        check("kind=product id=victim seq=1 " in damaged[0] and "checksum mismatch" in damaged[0],
              f"verify names the product: {damaged[0]}")
        check("; 1 damaged" in p.stdout, "summary counts one")
        p = verify(clean)
        eq(p.returncode, 0, "verify exit code on the undamaged copy")
        check("; 0 damaged" in p.stdout, "summary counts none")

        node.start()
        with node.client() as c:
            for attempt in range(3):  # first from the entity itself, then from its supervisor
                r = c.request("product.get", {"product_id": "victim"})
                eq(error_code(r), "corrupted", f"product.get victim, attempt {attempt}")
                check("victim" in r["error"]["message"], f"message names it: {r}")
            eq(c.ok("product.get", {"product_id": "keep"})["price_cents"], 150, "keep's price")
            eq(h.inv(c, "victim"), (20, 0, 0), "victim's inventory is another entity")
            eq(h.inv(c, "keep"), (18, 0, 2), "keep's inventory")
            tok = c.ok("user.login", {"user_id": "alice", "password": "pw-alice-secret"})["token"]
            eq(c.ok("order.get", {"order_id": "o1"}, tok)["status"], "PAID", "o1")
            eq(c.ok("user.get", {"user_id": "alice"}, tok)["balance_cents"], 9700, "alice")
            order = c.ok("order.place", {"order_id": "o2", "user_id": "alice",
                                         "items": [{"product_id": "keep", "quantity": 1}]}, tok)
            eq(h.settled(c, order, tok)["status"], "RESERVED", "a new order on this node")
        check(node.alive(), "the node is still up")
        lines = log_lines(node, "entity=product/victim")
        errors = [line for line in lines if " error node=" in line and "damaged" in line]
        eq(len(errors), 1, f"logged once at error level: {lines}")
        check("node=n1" in errors[0], f"the line names the node: {errors[0]}")
        eq(metric(node, "ordermesh_entity_corrupted_total"), 1.0, "corrupted entities metric")


def test_flipped_sst_byte_is_a_per_entity_error():
    with h.Session("sstflip") as s:
        node = s.node().start()
        marker = "zq" + secrets.token_hex(20)  # stored once, in the victim's events
        with node.client() as c:
            c.ok("user.register", {"user_id": "victim", "password": "pw-victim-secret",
                                   "name": marker})
        # Enough other entities that the SST file has many blocks besides the damaged one.
        products = [f"prod-{i:03d}" for i in range(150)]
        with node.admin() as adm:
            for p in products:
                adm.ok("product.create", {"product_id": p, "name": p + "-" + "n" * 150,
                                          "price_cents": 100})
        eq(node.terminate(), 0, "orderd exit code on SIGTERM")
        hits = []
        for sst in sorted((node.data_dir / "db").glob("*.sst")):
            data = sst.read_bytes()
            at = data.find(marker.encode())
            if at >= 0:
                hits.append((sst, at))
        eq(len(hits), 1, "the victim's name is in one SST file")
        sst, at = hits[0]
        data = bytearray(sst.read_bytes())
        data[at + len(marker) // 2] ^= 0x01
        os.chmod(sst, 0o600)
        sst.write_bytes(bytes(data))

        p = verify(node.data_dir)
        eq(p.returncode, 1, "verify exit code")
        check("unreadable" in p.stdout and "Corruption" in p.stdout,
              f"verify reports the unreadable block: {p.stdout}")
        damaged_lines = [line for line in p.stdout.splitlines() if line.startswith("damaged:")]
        eq(len(damaged_lines), 1, "one line for the one damaged block")
        # The shards the damaged block covers: from the line's shard to "through shard N".
        first = int(re.search(r"shard=(\d+)", damaged_lines[0]).group(1))
        through = re.search(r"through shard (\d+)", damaged_lines[0])
        last = int(through.group(1)) if through else first
        check(h.shard_of("user", "victim") in range(first, last + 1),
              f"the victim's shard {h.shard_of('user', 'victim')} is in {first}..{last}")
        fresh = next(f"after-{i}" for i in range(1000)
                     if h.shard_of("product", f"after-{i}") not in range(first, last + 1))

        node.start()
        with node.admin() as adm:
            r = adm.request("user.get", {"user_id": "victim"})
            eq(error_code(r), "corrupted", "the victim")
            outcomes = {}
            for p in products:
                r = adm.request("product.get", {"product_id": p})
                code = "ok" if r.get("ok") else error_code(r)
                outcomes[code] = outcomes.get(code, 0) + 1
            log(f"other entities: {outcomes}")
            check(set(outcomes) <= {"ok", "corrupted"}, f"only ok or corrupted: {outcomes}")
            check(outcomes.get("ok", 0) >= len(products) // 2, f"most serve: {outcomes}")
            h.create_product(adm, fresh, 99, stock=5)
            eq(h.inv(adm, fresh), (5, 0, 0), "a new entity is written and read")
        check(node.alive(), "the node is still up")


if __name__ == "__main__":
    h.main([test_flipped_value_quarantines_one_entity, test_flipped_sst_byte_is_a_per_entity_error],
           __doc__)
