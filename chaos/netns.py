"""Per-node hosts and the firewall of a chaos run in a private network namespace (stdlib only).

On one loopback every connection leaves from 127.0.0.1 whatever address the node listens on,
so address rules cannot cut one node's traffic to another. In netns mode (scripts/chaos.sh runs
us as root inside a namespace of our own) each node therefore gets a namespace of its own, a
"host": a holder process (`unshare -n sleep`) keeps it alive across node restarts, and a veth
pair links it to the chaos namespace, which routes between hosts:

    chaos namespace (driver, nemesis, nft)      host k (orderd k)
    hk  10.77.k.1/24  <------ veth ------>     eth0 10.77.k.2/24, default via 10.77.k.1

Node-to-node packets cross the chaos namespace's `forward` hook, where partitions and packet
loss are nft rules in one table of ours; clients (the driver, in the chaos namespace) reach a
host directly, so only packet loss touches them. etcd runs in the chaos namespace itself
(etcd_ctl.py): node-to-etcd packets take `input`/`output`, not `forward`. Everything here
dies with the namespaces: the holders are ours (by pid) and scripts/chaos.sh's trap kills them.
"""

import os
import shutil
import subprocess
import time

from chaos import etcd_ctl

TABLE = "ordermesh_chaos"
SUBNET = "10.77"


def _run(cmd, timeout=10):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    return p.stdout


def supported():
    """None when hosts and nft rules can be made here, else why not."""
    for tool in ("ip", "nft", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    try:
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1\n")
    except OSError as e:
        return f"cannot enable forwarding in the namespace: {e}"
    return None


class Host:
    """One node's network namespace, kept by a holder process we started."""

    def __init__(self, k, launcher, remember_pid):
        self.k = k
        self.iface = f"h{k}"
        self.address = f"{SUBNET}.{k}.2"
        self.gateway = f"{SUBNET}.{k}.1"
        self.holder = subprocess.Popen(launcher + ["unshare", "-n", "--", "sleep", "1000000"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, close_fds=True)
        remember_pid(self.holder.pid)
        pid = str(self.holder.pid)
        # the holder must be inside its new namespace before an interface is moved into it
        own = os.readlink("/proc/self/ns/net")
        for _ in range(250):
            try:
                if os.readlink(f"/proc/{pid}/ns/net") != own:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError(f"host {k}: the namespace holder did not start")
        # a previous scenario's pair goes away with its namespace, which the kernel may still be
        # tearing down: delete it ourselves
        subprocess.run(["ip", "link", "del", self.iface], capture_output=True, timeout=10)
        _run(["ip", "link", "add", self.iface, "type", "veth", "peer", "name", "eth0", "netns",
              pid])
        _run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.iface])
        _run(["ip", "link", "set", self.iface, "up"])
        inner = ["nsenter", "-t", pid, "-n", "--"]
        _run(inner + ["ip", "link", "set", "lo", "up"])
        _run(inner + ["ip", "addr", "add", f"{self.address}/24", "dev", "eth0"])
        _run(inner + ["ip", "link", "set", "eth0", "up"])
        _run(inner + ["ip", "route", "add", "default", "via", self.gateway])

    def wrap(self, cmd):
        """`cmd` run inside this host (nsenter execs it: the pid stays the command's)."""
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--"] + list(cmd)

    def close(self):
        if self.holder.poll() is None:
            self.holder.kill()
        try:
            self.holder.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Firewall:
    """Our nft table in the chaos namespace: partitions and packet loss, healed all at once."""

    def __init__(self):
        _run(["nft", "add", "table", "inet", TABLE])
        for chain in ("forward", "input", "output"):
            _run(["nft", "add", "chain", "inet", TABLE, chain,
                  f"{{ type filter hook {chain} priority 0; policy accept; }}"])

    def _rule(self, chain, text):
        _run(["nft", "add", "rule", "inet", TABLE, chain] + text.split())

    def cut(self, from_hosts, to_hosts):
        """Drops every packet from a host in `from_hosts` to one in `to_hosts` (one way)."""
        for a in from_hosts:
            for b in to_hosts:
                if a is not b:
                    self._rule("forward", f"ip saddr {a.address} ip daddr {b.address} drop")

    def loss(self, host, percent):
        """Drops `percent` % of the packets in and out of `host`, peers and clients alike."""
        p = int(percent)
        self._rule("forward", f"iifname {host.iface} numgen random mod 100 < {p} drop")
        self._rule("forward", f"oifname {host.iface} numgen random mod 100 < {p} drop")
        self._rule("input", f"iifname {host.iface} numgen random mod 100 < {p} drop")
        self._rule("output", f"oifname {host.iface} numgen random mod 100 < {p} drop")

    def cut_etcd(self, host, etcd_addresses):
        """Cuts `host` off from etcd alone (etcd runs in this namespace: etcd_ctl.cut_rules);
        its traffic to other hosts and to clients is untouched."""
        for chain, text in etcd_ctl.cut_rules(host.address, etcd_addresses):
            self._rule(chain, text)

    def heal(self):
        for chain in ("forward", "input", "output"):
            _run(["nft", "flush", "chain", "inet", TABLE, chain])

    def rules(self):
        return _run(["nft", "list", "table", "inet", TABLE])

    def close(self):
        try:
            _run(["nft", "delete", "table", "inet", TABLE])
        except (RuntimeError, OSError, subprocess.SubprocessError):
            pass
