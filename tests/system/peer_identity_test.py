"""A node proves its id to its peers (docs/SECURITY.md, "Identity inside the cluster"): real
orderd processes on 127.0.0.1 with certificates of one cluster CA (scripts/gen-certs.sh in the
test's temp dir), on a private etcd.

  * test_impostor_with_another_members_id_is_refused: while n1, n2 and n3 serve, an orderd
    holding a valid cluster certificate for n9 starts with --node-id n2 (its own start-up
    certificate check skipped with ORDERMESH_TEST_SKIP_OWN_CERT_CHECK, a convenience an
    attacker would simply build without). It registers in etcd as n2 (the store still allows
    that: SECURITY.md), so the members dial it for n2 and it dials them. Shown: the real
    members refuse it (their logs name the failed proof and the id n2),
    it connects to nobody, receives no shard and serves no entity through its client port;
    money deposited through n1 and n3 for users led by n2 while it runs reaches the real n2
    exactly once; after it is gone the shard map has its primaries and every entity is as
    expected through every node.

Needs /usr/bin/etcd and the openssl CLI: missing, the test fails (never skips).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import admin_http  # noqa: E402
import cluster_tls_test as ct  # noqa: E402
import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

WATCH_S = 15.0  # how long the impostor is given to do harm before the cluster is compared
DEPOSIT = 700


class Impostor(eh.ClusterNode):
    """A ClusterNode whose files and logs are its own (name "impostor") but that claims
    another member's id with --node-id."""

    def __init__(self, session, claims, **kw):
        super().__init__(session, "impostor", **kw)
        self.claims = claims

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--node-id") + 1] = self.claims
        return cmd


def refusals(node, claimed):
    """Lines of `node`'s log that refuse a peer claiming `claimed`."""
    return [x for x in node.log_text().splitlines()
            if f"refused a peer claiming to be {claimed}" in x and "proof of identity failed" in x]


def with_admin_port(node):
    node.admin_port = h.free_port()
    node.extra_args += ["--admin-port", str(node.admin_port)]


def refused_total(node):
    """ordermesh_peer_proofs_refused_total from `node`'s GET /metrics (0 when absent)."""
    status, _, body = admin_http.get(node.admin_port, "/metrics")
    eq(status, 200, f"GET /metrics of {node.name}")
    for line in body.splitlines():
        if line.startswith("ordermesh_peer_proofs_refused_total"):
            return float(line.split()[-1])
    return 0.0


def test_impostor_with_another_members_id_is_refused():
    with h.Session("peer-impostor") as s:
        c = eh.EtcdCluster(s, ct.SHARED.get(s), name=ct.SHARED.cluster_name("imp"),
                           lease_ttl="2s")
        st = c.start(3, balance_timeout=ct.BALANCE_TIMEOUT, prepare=with_admin_port)
        real = list(c.nodes)
        n1, n2, n3 = real
        ents = ct.shop(c, real, "imp", products=4, users=6, orders=3)
        before = ct.snapshot(c, n1, ents)
        primaries = c.owners(st)
        users_of_n2 = [ident for kind, ident in ents
                       if kind == "user" and c.owner_of(st, kind, ident) == "n2"]
        check(users_of_n2, f"no user led by n2 among {ents}")
        log(f"users led by n2: {users_of_n2}")
        imp = Impostor(s, "n2", cluster_args=c.cluster_args + c.etcd_args() +
                       eh.cluster_tls(s, "n9"), admin_token=c.admin_token,
                       env={"ORDERMESH_TEST_SKIP_OWN_CERT_CHECK": "1"})
        imp.port, imp.cluster_port = h.free_port(), h.free_port()
        imp._launch()
        deposited = {}
        try:
            # The real n2's requests go to the real n2 while the impostor is up: deposits for
            # its users through the two other nodes (each retried with the same request id
            # until acknowledged: applied once).
            for i, u in enumerate(users_of_n2):
                via = (n1, n3)[i % 2]
                with c.admin(via, timeout=ct.CLIENT_TIMEOUT) as adm:
                    adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": DEPOSIT,
                                                  "request_id": f"during-{u}"}, timeout=40.0)
                deposited[u] = DEPOSIT
            ct.watch_intruder(c, real, imp, ents, primaries)
            check(imp.alive(), "the impostor kept running (it is refused, not crashed)")
            eq(ct.connected_lines(imp), [], "peers the impostor connected to")

            critical = [x for x in imp.log_text().splitlines() if "SKIP_OWN_CERT_CHECK" in x]
            check(critical, "the impostor's log says its own certificate check was skipped")
            said = {n.name: refusals(n, "n2") for n in (n1, n3)}
            log(f"refusals naming n2: { {k: len(v) for k, v in said.items()} }, "
                f"first: {next((v[0] for v in said.values() if v), None)}")
            check(any(said.values()), "no real member logged a refused proof for n2")
            counted = {n.name: refused_total(n) for n in (n1, n3)}
            log(f"ordermesh_peer_proofs_refused_total: {counted}")
            check(any(v > 0 for v in counted.values()), "no refused proof counted in /metrics")
            for lines in said.values():
                for x in lines:
                    check("names 'n9' (CN) and no DNS name 'n2'" in x or
                          "no hello of its own waits" in x,
                          f"a refusal that does not say why: {x}")
            # A handoff's target logs "received shard N", a replica "full copy" (shard_copy.cpp,
            # replica_follower.cpp); both need a connection, which it never had.
            copies = [x for x in imp.log_text().splitlines()
                      if "received shard" in x or "full copy" in x]
            eq(copies, [], "shard copies the impostor received")
        finally:
            imp.kill()
        # Gone, the real n2 holds its member key again and the cluster is as it was, plus the
        # deposits made while the impostor ran, each once.
        st = c.wait_balanced(names=[n.name for n in real], timeout=ct.BALANCE_TIMEOUT)
        eq(c.owners(st), primaries, "primaries after the impostor left")
        expected = dict(before)
        for u, amount in deposited.items():
            want = dict(expected[("user", u)])
            want["balance_cents"] = want["balance_cents"] + amount
            expected[("user", u)] = want
        for n in real:
            ct.compare(expected, ct.snapshot(c, n, ents), f"after the impostor, via {n.name}")


if __name__ == "__main__":
    with ct.SHARED:  # ends the shared etcd (by pid) however the run ends
        h.main([test_impostor_with_another_members_id_is_refused], __doc__)
