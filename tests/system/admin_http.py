"""Talking to orderd's HTTP admin port from the system tests (Python 3 stdlib only).

  * get(port, path, method="GET"): one request on a fresh connection -> (status, headers, body);
    never through a proxy from the environment (the admin port is on 127.0.0.1).
  * raw(port, data): sends raw bytes and returns everything the server answers until it closes.
  * wait_ready(port, timeout): /readyz until 200 (bounded); returns its JSON.
  * wait_view(port, status, timeout): /status.json until its members and shard primaries are
    those of `status` (a cluster.status result); returns it. The admin port shows a view the
    node samples each second, so right after a change it may still show the one before.
  * listen_address(port): the address a local TCP socket listens on for `port`, from
    /proc/net/tcp (to show that the admin port binds to loopback by default).

Everything reaches only 127.0.0.1; every loop and wait is bounded.
"""

import http.client
import json
import socket
import time

from harness import HOST


def get(port, path, method="GET", timeout=5.0, headers=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        res = conn.getresponse()
        body = res.read()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, body.decode(
            "utf-8", "replace")
    finally:
        conn.close()


def raw(port, data, timeout=5.0):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < 1 << 20:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode("utf-8", "replace")


def readyz(port):
    """(status, JSON) of /readyz, or (None, None) when the port does not answer."""
    try:
        status, _, body = get(port, "/readyz", timeout=2.0)
        return status, json.loads(body)
    except (OSError, http.client.HTTPException, ValueError):
        return None, None


def wait_ready(port, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status, body = readyz(port)
        last = (status, body)
        if status == 200:
            return body
        time.sleep(0.1)
    raise AssertionError(f"/readyz on port {port} not 200 within {timeout}s (last: {last})")


def view_of(status):
    """(members, shard primaries) of a cluster.status result or a /status.json."""
    return (sorted(m["node_id"] for m in status["members"]),
            {x["shard"]: x["primary"] for x in status["shards"]})


def wait_view(port, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    want, last = view_of(status), None
    while time.monotonic() < deadline:
        try:
            last = json.loads(get(port, "/status.json", timeout=2.0)[2])
            if view_of(last) == want:
                return last
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"/status.json on port {port} does not show {want} within {timeout}s "
                         f"(last: {view_of(last) if last else None})")


def listen_address(port):
    """The IPv4 address orderd listens on for `port` ("127.0.0.1", "0.0.0.0"), or None."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw_addr = bytes.fromhex(addr_hex)[::-1]  # little-endian on x86
                return socket.inet_ntoa(raw_addr)
    return None
