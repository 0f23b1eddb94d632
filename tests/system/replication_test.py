#!/usr/bin/env python3
"""System tests of replication and failover (issue 12): real orderd processes on a private etcd,
three nodes started with --replication-factor 3 --min-insync 2.

  * the shard map: every shard on all three nodes, all in the ISR, each ISR entry with the
    disk identity of its member's data dir; writes are acknowledged and read back through every node;
    each primary's cluster.status shows its followers' lag, 0 once they have caught up
  * kill -9 of a primary: once its lease expires the controller promotes an in-sync replica of
    each of its shards; every entity it led is served again by another node with exactly the
    state acknowledged before the kill (nothing lost), and takes new writes; the time from the
    kill to the first acknowledged write on its shards is printed. Restarted, the node catches
    up as a follower and re-enters the ISR of every shard; then a second node is killed and
    its shards fail over too, again losing nothing
  * four clients depositing while each node in turn is killed -9 and restarted: every
    acknowledged deposit is in the final balances exactly once
  * cluster.force-primary: refused for a healthy shard, a non-member, without the admin token;
    after every in-sync replica of every shard is gone, it promotes the one node left, which
    serves what it holds; writes resume once a second replica is back
  * reads show only what is committed and current: with both followers of a shard stopped, a
    deposit through its primary is not acknowledged, and a read through the primary does not
    show it (it answers `unavailable`, or the balance without it), although the primary's disk
    and its entity's memory hold it; the deposit retried later is applied once. A primary
    stopped (SIGSTOP) beyond its lease is replaced; a deposit is acknowledged by its successor;
    woken up (SIGCONT) with a read already waiting in its socket, it answers `unavailable` or
    the successor's balance, never its own stale one
  * every node killed at once and restarted on its data dir: every shard served again by its
    in-sync replicas (ISR entries name disks, not membership lives), nothing lost
  * a member leaves (cluster.leave) after a fourth node joined: its replicas move to the others
    under load, it exits 0, nothing acknowledged is lost; refused with too few members
  * a fourth node joins three under load: within JOIN_TIMEOUT it holds its share of the
    replicas (48 of 192) and of the primaries (16 of 64), every count within one of the others,
    every ISR complete; nothing acknowledged is lost; the old members deleted the copies of
    shards they no longer replicate (once the shard's epoch moved on); then one old member is
    killed -9 and everything is still served
  * a primary paused (SIGSTOP): the controller's pings find it silent and its shards are served
    by in-sync replicas while its lease still lives; woken, it follows
  * SIGTERM to a node started with --drain, under load: before it exits 0, the leadership of
    every shard it led moves to an in-sync replica (no survivor fails any over), it stays a
    replica of each; restarted, it leads its share again; nothing acknowledged is lost
  * two of three killed: the shards of the survivor can no longer reach min-insync replicas,
    so writes answer `unavailable` (never acknowledged on one disk); both restarted, the
    cluster serves everything acknowledged before, and new writes

Every test ends by stopping its nodes and auditing their journals (chaos/journal_audit.py with
deposed_ok: one owner per shard at its highest epoch, a killed primary's stale ownership at a
lower epoch allowed; contiguous seqs, no (entity, seq) with two contents on two nodes), then:
the top owner's replay of every entity equals what the cluster served last, and at least
--min-insync (2) nodes' journals replay to it: every acknowledged write is on two disks.
Numbers are printed, never asserted on. Needs /usr/bin/etcd (Debian etcd-server).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcd_harness as eh  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402
import etcd_cluster_test as ect  # noqa: E402

sys.path.insert(0, str(h.REPO))
from chaos import journal_audit  # noqa: E402
from chaos.cluster_ctl import balanced_view  # noqa: E402

RF3 = ["--replication-factor", "3", "--min-insync", "2"]
FAILOVER_TIMEOUT = 30.0  # a dead primary's shards must be served again by then
ISR_TIMEOUT = 90.0       # a restarted node must be back in every ISR by then
JOIN_TIMEOUT = 90.0      # a joined node must hold its share of replicas and primaries by then


def rf3_cluster(s, tag, extra=(), lease_ttl="3s"):
    etcd = eh.Etcd(s).start()
    c = eh.EtcdCluster(s, etcd, name=tag, lease_ttl=lease_ttl, extra_args=RF3 + list(extra))
    t0 = time.monotonic()
    st = c.start(3, balance_timeout=ect.BALANCE_TIMEOUT)
    log(f"3 nodes, replication factor 3, up in {time.monotonic() - t0:.1f}s")
    return etcd, c, st


def isr_complete(c, nodes):
    """The status of nodes[0] once every shard has all three replicas in its ISR, each entry
    naming its member's current disk (a wiped disk does not count for failover), as every node
    of `nodes` sees it; else None."""
    first = None
    for n in nodes:
        st = c.status(n)
        if st is None:
            return None
        incs = ect.disks(st)
        for sh in st.get("shards", []):
            if sorted(sh.get("isr", [])) != sorted(sh.get("replicas", [])) or \
                    len(sh.get("replicas", [])) != 3:
                return None
            if [incs.get(m) for m in sh["isr"]] != sh.get("isr_disks"):
                return None
        first = first or st
    return first


def stop_and_audit(c, ents, min_copies=2):
    """Reads every entity through a live node, kills every node, audits the journals (above).
    With every node running, first waits until the cluster is settled (every ISR complete and
    caught up, primaries spread within one: no replica or primary move in flight, since a
    cluster killed during a primary move shows the shard released and not yet owned)."""
    running = ect.live(c)
    check(running, "no node left running to read the final state through")
    if len(running) == len(c.nodes):
        names = [n.name for n in running]
        h.wait_until(lambda: balanced_view([c.status(n) for n in running], names,
                                           replicated=True),
                     ISR_TIMEOUT, 0.5, "the cluster settled (ISRs complete, primaries spread)")
    final = ect.snapshot(c, running[0], ents)
    for n in running:
        n.kill()
    journal = ect.dump_journals([n for n in c.nodes if n.starts > 0])
    finding = journal_audit.audit(journal, ect._NO_FACTS, deposed_ok=True).result()
    eq(finding["violations"][:5], [], f"journal audit ({finding['violation_count']} violations)")
    top = {}  # shard -> (epoch, node) of its owner at the highest epoch
    for node, shards in journal["owned"].items():
        for shard, rec in shards.items():
            if rec.get("owned") and rec["epoch"] > top.get(int(shard), (0, ""))[0]:
                top[int(shard)] = (rec["epoch"], node)
    replays = {}
    for r in journal["replayed"]:
        replays.setdefault((r.get("kind"), r.get("id")), {})[r.get("node")] = r.get("state") or {}
    bad, thin, copies = [], [], []
    for key, served in final.items():
        shard = h.shard_of(key[0], key[1], 64)
        owner = top.get(shard, (0, None))[1]
        states = replays.get(key, {})

        def same(state):
            return all(state.get(k) == v for k, v in served.items() if k in state)
        if owner not in states or not same(states[owner]):
            bad.append(f"{key}: owner {owner}'s replay {states.get(owner)} vs served {served}")
        n = sum(1 for st in states.values() if same(st))
        copies.append(n)
        if n < min_copies:
            thin.append(f"{key}: on {n} disk(s) only")
    eq(bad[:5], [], f"owners' replays vs final reads ({len(bad)} of {len(final)} differ)")
    eq(thin[:5], [], f"entities whose served state is on fewer than {min_copies} disks")
    log(f"journal audit: {len(journal['entries'])} records on {len(journal['owned'])} nodes; "
        f"{len(final)} entities, each served state on {min(copies)}..{max(copies)} disks")
    return journal


def deposit(adm, user, cents, rid):
    return adm.request("user.deposit", {"user_id": user, "amount_cents": cents,
                                        "request_id": rid})


def test_a_cluster_replicates_by_default():
    """Nodes started with --etcd and no --replication-factor make a cluster of replication
    factor 3 (min-insync 2): every shard on all three nodes, all in its ISR."""
    with h.Session("repl-default") as s:
        etcd = eh.Etcd(s).start()
        c = eh.EtcdCluster(s, etcd, name="dflt", lease_ttl="3s", replication_factor=None)
        c.start(3, balance_timeout=ect.BALANCE_TIMEOUT)
        for n in c.nodes:
            check("--replication-factor" not in n.command(),
                  f"{n.name} was started with --replication-factor")
        st = h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5,
                          "every shard on three nodes, all in its ISR")
        eq(len(st["shards"]), 64, "shards")


def test_replicated_shard_map():
    with h.Session("repl-map") as s:
        _, c, st = rf3_cluster(s, "map")
        names = sorted(n.name for n in c.nodes)
        for sh in st["shards"]:
            eq(sorted(sh["replicas"]), names, f"replicas of shard {sh['shard']}")
            eq(sorted(sh["isr"]), names, f"ISR of shard {sh['shard']}")
        keys = c.keys()
        shard_keys = [json.loads(kv["value"]) for k, kv in keys.items() if "/shards/" in k]
        check(len(shard_keys) == st["shard_count"], f"{len(shard_keys)} shard keys in etcd")
        disks = ect.disks(st)
        check(len(set(disks.values())) == 3 and all(isinstance(d, int) and d > 0
                                                    for d in disks.values()),
              f"three distinct disk identities: {disks}")
        for v in shard_keys:
            eq(len(v.get("isr_disks", [])), 3, f"ISR disks of {v.get('shard')}")
            for node, disk in zip(v["isr"], v["isr_disks"]):
                eq(int(disk), disks[node], f"shard {v['shard']}: {node}'s ISR disk")
        shop = ect.Shop(c, c.nodes, tag="m")
        ents = shop.entities()
        for n in c.nodes:
            ect.snapshot(c, n, ents)

        def caught_up():
            for n in c.nodes:
                sn = c.status(n)
                if sn is None:
                    return None
                for sh in sn["shards"]:
                    lag = sh.get("lag")
                    if sh["primary"] != n.name:
                        check(lag is None, f"{n.name} shows lag for shard {sh['shard']} it does "
                              "not lead")
                        continue
                    want = sorted(x for x in names if x != n.name)
                    if lag is None or sorted(lag) != want or any(v != 0 for v in lag.values()):
                        return None
            return True
        h.wait_until(caught_up, 30.0, 0.3, "every primary to show its followers at lag 0")
        stop_and_audit(c, ents)


def wait_failover(c, rest, victim, ents_on_victim, before):
    """Until every entity `victim` led is served through each of `rest` as it was before;
    returns the seconds it took."""
    t0 = time.monotonic()
    expected = {e: "ok" for e in ents_on_victim}
    ect.wait_codes(c, rest, expected, timeout=FAILOVER_TIMEOUT,
                   what=f"the entities {victim.name} led to be served by another node")
    took = time.monotonic() - t0
    for n in rest:
        after = ect.snapshot(c, n, ents_on_victim)
        ect.compare({e: before[e] for e in ents_on_victim}, after,
                    f"after {victim.name}'s failover, via {n.name}")
    return took


def first_write_after(c, via, users, tag, t_kill):
    """Deposits to each of `users` until acknowledged; returns {user: seconds after the kill}."""
    out = {}
    with c.admin(via, timeout=ect.CLIENT_TIMEOUT) as adm:
        for u in users:
            deadline = time.monotonic() + FAILOVER_TIMEOUT
            while True:
                r = deposit(adm, u, 7, f"{tag}-{u}")
                if r.get("ok"):
                    out[u] = time.monotonic() - t_kill
                    break
                check(time.monotonic() < deadline, f"no deposit to {u} acknowledged within "
                      f"{FAILOVER_TIMEOUT:.0f}s: {r}")
                time.sleep(0.1)
    return out


def test_kill9_primary_fails_over_and_rejoins():
    with h.Session("repl-kill") as s:
        _, c, st = rf3_cluster(s, "kill")
        shop = ect.Shop(c, c.nodes, tag="k")
        ents = shop.entities()
        victim = [n for n in c.nodes if n.name != st["controller"]][0]
        rest = [n for n in c.nodes if n is not victim]
        before = ect.snapshot(c, rest[0], ents)
        on_victim, _ = ect.split(c, st, ents, victim.name)
        check(on_victim, f"{victim.name} leads some entities")
        inc = ect.incarnation(st, victim.name)

        victim.kill()
        t_kill = time.monotonic()
        took = wait_failover(c, rest, victim, on_victim, before)
        users = [i for k, i in on_victim if k == "user"]
        firsts = first_write_after(c, rest[0], users, "after-kill", t_kill)
        log(f"killed {victim.name}: its {len(on_victim)} entities served again after "
            f"{took:.1f}s; first acknowledged deposits {sorted(round(v, 1) for v in firsts.values())}"
            " s after the kill")
        st2 = c.status(rest[0])
        for sh in st2["shards"]:
            check(sh["primary"] != victim.name, f"shard {sh['shard']} still led by the dead node")

        # orderctl cluster-status while it is down: its shards' group shows the in-sync set
        # without it, and once its lease has expired (no member any more) it is not named
        # unreachable.
        def status_text():
            p = h.orderctl("--port", rest[0].port, "cluster-status")
            eq(p.returncode, 0, f"orderctl cluster-status (stderr {p.stderr!r})")
            return p.stdout

        def shows_dead_node_gone():
            text = status_text()
            groups = text.split("shard groups", 1)[-1]
            return text if ("ISR smaller than the replicas" in groups
                            and f"unreachable from {rest[0].name}: (none)" in text) else None
        text = h.wait_until(shows_dead_node_gone, FAILOVER_TIMEOUT, 0.5,
                            f"cluster-status without {victim.name} in the ISR or as unreachable")
        log(text.rstrip())
        for u in users:
            before[("user", u)]["balance_cents"] += 7

        victim.start()
        seen = ect.rejoined(c, c.nodes, victim, inc)
        t0 = time.monotonic()
        h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5,
                     f"{victim.name} back in the ISR of every shard")
        log(f"{victim.name} rejoined (incarnation {ect.incarnation(seen[victim.name], victim.name)})"
            f" and is in every ISR {time.monotonic() - t0:.1f}s later")
        # Writes while it catches up and after: acknowledged through it.
        with c.admin(victim) as adm:
            for u in shop.users[:4]:
                eq(adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 5,
                                                 "request_id": f"back-{u}"})["balance_cents"],
                   before[("user", u)]["balance_cents"] + 5, f"{u} after the rejoin")
                before[("user", u)]["balance_cents"] += 5

        # A second failure: the node that took most of the victim's shards.
        st3 = c.status(rest[0])
        second = rest[1] if rest[1].name != st3["controller"] else rest[0]
        others = [n for n in c.nodes if n is not second]
        on_second, _ = ect.split(c, st3, ents, second.name)
        before = ect.snapshot(c, others[0], ents)
        second.kill()
        took = wait_failover(c, others, second, on_second, before)
        log(f"killed {second.name}: its {len(on_second)} entities served again after {took:.1f}s"
            f" (the restarted {victim.name} among the candidates)")
        stop_and_audit(c, ents)


def test_primaries_killed_under_load():
    """Deposits from four clients at once (each retried with its request_id until acknowledged)
    while each node in turn is killed -9 and restarted: every acknowledged deposit is in the
    final balances exactly once, and on two disks."""
    with h.Session("repl-load") as s:
        _, c, st = rf3_cluster(s, "load")
        shop = ect.Shop(c, c.nodes, tag="l", products=6, users=24, orders=3)
        ents = shop.entities()
        before = ect.snapshot(c, c.nodes[0], ents)
        groups = [shop.users[i::4] for i in range(4)]
        deps = [ect.Depositor(c, g, max_ops=3000, max_s=300.0) for g in groups]
        for d in deps:
            d.__enter__()
        try:
            for round_ in range(3):
                st = c.status(ect.live(c)[0])
                ctrl = st["controller"]
                # The controller last: its failover waits for a new controller too.
                victim = next((n for n in c.nodes if n.name != ctrl and n.name not in
                               [v for v in getattr(c, "_killed", [])]), None) or \
                    next(n for n in c.nodes if n.name == ctrl)
                c._killed = getattr(c, "_killed", []) + [victim.name]
                victim.kill()
                t0 = time.monotonic()
                time.sleep(6)  # failover under load, then more load on the survivors
                victim.start()
                h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5,
                             "every ISR complete again")
                log(f"round {round_ + 1}: {victim.name} killed, back in every ISR after "
                    f"{time.monotonic() - t0:.1f}s; answers so far "
                    f"{[d.codes for d in deps]}")
        finally:
            acked = {}
            for d in deps:
                acked.update(d.finish())
        log(f"deposits: {sum(acked.values())} cents acknowledged")
        after = ect.snapshot(c, ect.live(c)[0], ents)
        for u in shop.users:
            eq(after[("user", u)]["balance_cents"],
               before[("user", u)]["balance_cents"] + acked[u], f"{u}'s balance")
        stop_and_audit(c, ents)


def user_read(adm, user):
    """(code, balance or None) of one user.get."""
    r = adm.request("user.get", {"user_id": user})
    return ect.code_of(r), (r.get("result") or {}).get("balance_cents")


def test_reads_show_only_committed_and_current_state():
    with h.Session("repl-reads") as s:
        _, c, st = rf3_cluster(s, "reads", ["--commit-timeout", "1s"])
        shop = ect.Shop(c, c.nodes, tag="r", products=2, users=6, orders=0)
        u = shop.users[0]
        shard = h.shard_of("user", u, 64)
        primary = next(n for n in c.nodes if n.name == st["shards"][shard]["primary"])
        followers = [n for n in c.nodes if n is not primary]
        with c.admin(primary) as adm:
            before = adm.ok_retry("user.get", {"user_id": u})["balance_cents"]
        # 1. Both followers stopped (shorter than the lease): the deposit reaches the primary's
        # disk and its entity, but no other disk, so it is not acknowledged, and not shown.
        for f in followers:
            f.proc.send_signal(signal.SIGSTOP)
        try:
            with c.admin(primary, timeout=ect.CLIENT_TIMEOUT) as adm:
                r = deposit(adm, u, 100, "while-followers-stopped")
                check(not r.get("ok"), f"deposit acknowledged with both followers stopped: {r}")
                code, bal = user_read(adm, u)
        finally:
            for f in followers:
                f.proc.send_signal(signal.SIGCONT)
        log(f"{u} on shard {shard}, primary {primary.name}, followers stopped: deposit "
            f"{ect.code_of(r)}, read {code} {bal}")
        check(code in ("ok", "unavailable"), f"read with both followers stopped: {code}")
        if code == "ok":
            eq(bal, before, f"{u}'s balance read while its deposit was not committed")
        with c.admin(primary, timeout=ect.CLIENT_TIMEOUT) as adm:
            got = adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 100,
                                                "request_id": "while-followers-stopped"},
                               timeout=30.0)["balance_cents"]
        eq(got, before + 100, f"{u}: the retried deposit, applied once")
        # 2. The primary stopped beyond its lease: a follower takes over and acknowledges a
        # deposit; the old primary, woken with a read waiting, must not answer its stale state.
        primary.proc.send_signal(signal.SIGSTOP)
        try:
            with c.admin(followers[0], timeout=ect.CLIENT_TIMEOUT) as adm:
                after = adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 50,
                                                      "request_id": "after-failover"},
                                     timeout=FAILOVER_TIMEOUT)["balance_cents"]
            eq(after, before + 150, f"{u} after the failover")
            zombie = c.admin(primary, timeout=ect.CLIENT_TIMEOUT)
        except BaseException:
            primary.proc.send_signal(signal.SIGCONT)
            raise
        with zombie as adm:
            # The request sits in the stopped node's socket when it wakes up.
            req = adm.make("user.get", {"user_id": u})
            adm.send_raw(json.dumps(req) + "\n")
            primary.proc.send_signal(signal.SIGCONT)
            r = adm.read_reply()
        code, bal = ect.code_of(r), (r.get("result") or {}).get("balance_cents")
        log(f"woken old primary {primary.name} answers {code} {bal}")
        check(code in ("ok", "unavailable"), f"read through the woken old primary: {r}")
        if code == "ok":
            eq(bal, before + 150, f"{u} read through the woken old primary")
        h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5, "every ISR complete")
        for n in c.nodes:
            with c.admin(n) as adm:
                eq(adm.ok_retry("user.get", {"user_id": u})["balance_cents"], before + 150,
                   f"{u} through {n.name}")
        stop_and_audit(c, shop.entities())


def pause_and_write(c, st, tag, victim, lease_ttl):
    """Pauses `victim` (SIGSTOP) and sends a deposit to one of its users through another node,
    as a client that gives up after 1 s and sends it again (same request id) does, until it is
    acknowledged. Then reads, before waking it: whether its member key was still in etcd (i.e.
    its lease could not have expired yet) and the cluster status a live node shows. Returns
    (the entities, seconds from the pause to the ack, still a member, that status)."""
    shop = ect.Shop(c, c.nodes, tag=tag, products=6, users=12, orders=3)
    ents = shop.entities()
    rest = [n for n in c.nodes if n is not victim]
    mine, _ = ect.split(c, st, ents, victim.name)
    users = [i for k, i in mine if k == "user"]
    check(users, f"{victim.name} leads some users")
    member_key = next(k for k in c.keys() if k.endswith("/members/" + victim.name))
    t0 = time.monotonic()
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        deadline = t0 + FAILOVER_TIMEOUT
        while True:
            try:
                with c.admin(rest[0], timeout=1.0) as adm:
                    if deposit(adm, users[0], 9, "while-paused").get("ok"):
                        break
            except OSError:
                pass
            check(time.monotonic() < deadline, f"no deposit to {users[0]} acknowledged")
            time.sleep(0.1)
        took = time.monotonic() - t0
        still = member_key in c.keys()
        now = c.status(rest[0]) or {}
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    log(f"{victim.name} paused (lease {lease_ttl}): a deposit to {users[0]} acknowledged by "
        f"another primary {took:.2f}s later, controller then {now.get('controller')}; its member "
        f"key then {'still' if still else 'no longer'} in etcd")
    return ents, took, still, now


def test_drain_moves_leadership_before_stopping():
    """SIGTERM to a node started with --drain in a replicated cluster, under load: before it
    exits (0), the leadership of every shard it led moves to an in-sync replica by one epoch
    step each (a controlled move, not a failover: no survivor logs its shards as gone or
    suspected), and it stays a replica of every shard. Every acknowledged deposit is in the
    final balances exactly once. Restarted, it takes its share of leadership again."""
    with h.Session("repl-drain") as s:
        _, c, st = rf3_cluster(s, "drain", ["--drain"])
        shop = ect.Shop(c, c.nodes, tag="d", products=2, users=12, orders=0)
        ents = shop.entities()
        before = ect.snapshot(c, c.nodes[0], ents)
        victim = next(n for n in c.nodes if n.name != st["controller"])
        st = c.status(victim)
        led = {sh["shard"]: sh["epoch"] for sh in st["shards"] if sh["primary"] == victim.name}
        check(led, f"{victim.name} leads no shard to drain")
        dep = ect.Depositor(c, shop.users, max_ops=3000, max_s=120.0)
        dep.__enter__()
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            rc = victim.terminate(timeout=60.0)
            took = time.monotonic() - t0
            time.sleep(1.0)
        finally:
            acked = dep.finish()
        eq(rc, 0, f"{victim.name}'s exit code after SIGTERM with --drain")
        text = victim.log_text()
        check("leads no shard any more (drained)" in text,
              f"{victim.name} did not report itself drained before stopping")
        check("still leads shards after" not in text, f"{victim.name} stopped before it drained")
        survivors = [n for n in c.nodes if n is not victim]
        after_map = {sh["shard"]: sh for sh in c.status(survivors[0])["shards"]}
        for shard, epoch in led.items():
            sh = after_map[shard]
            check(sh["primary"] != victim.name, f"shard {shard} still led by {victim.name}")
            check(victim.name in sh["replicas"], f"shard {shard} lost {victim.name} as a replica")
        for n in survivors:
            for line in n.log_text().splitlines():
                check(f"primary {victim.name} is" not in line,
                      f"{n.name} failed over a shard of the draining {victim.name}: {line}")
        log(f"{victim.name} drained {len(led)} shards and exited {took:.1f}s after SIGTERM; "
            f"deposits meanwhile {dep.codes}")
        victim.start()
        names = [n.name for n in c.nodes]
        h.wait_until(lambda: balanced_view([c.status(n) for n in c.nodes], names,
                                           replicated=True),
                     ISR_TIMEOUT, 0.5, f"{victim.name} back and leading its share")
        after = ect.snapshot(c, c.nodes[0], ents)
        for u in shop.users:
            eq(after[("user", u)]["balance_cents"],
               before[("user", u)]["balance_cents"] + acked[u], f"{u}'s balance")
        stop_and_audit(c, ents)


def test_paused_primary_replaced_while_its_lease_lives():
    """A primary paused (SIGSTOP) keeps its connections and its lease for a while; the
    controller's pings find it silent (--suspect-after) and its shards are served by in-sync
    replicas while its member key is still in etcd, i.e. before its lease could expire. Woken,
    it demotes and follows; nothing acknowledged is lost."""
    with h.Session("repl-pause") as s:
        # A 6 s lease, as for the paused controller below: the lease is renewed every third of
        # its TTL, so a 3 s lease may end 2 s after the pause, and a loaded CI machine took 2.2 s
        # to fail over. What is checked is the order (pings before the lease), not a time.
        _, c, st = rf3_cluster(s, "pause", lease_ttl="6s")
        victim = next(n for n in c.nodes if n.name != st["controller"])
        ents, _, still, _ = pause_and_write(c, st, "p", victim, "6s")
        check(still, f"{victim.name}'s shards were served only once its lease had expired: the "
              "pings did not find it silent")
        h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5, "every ISR complete")
        stop_and_audit(c, ents)


def test_paused_controller_replaced_while_its_lease_lives():
    """The controller paused (SIGSTOP): the other members' pings find it silent, one of them
    deposes it (deletes the controller key while its lease lives), a new controller is elected
    and fails the paused node's shards over at once, all while its member key is still in etcd.
    Woken, the old controller sees the new one and follows; nothing acknowledged is lost."""
    with h.Session("repl-pause-ctl") as s:
        # A 6 s lease: what is checked is that the controller is replaced before its lease
        # could expire, and a loaded CI machine must not make that a race.
        _, c, st = rf3_cluster(s, "pausectl", lease_ttl="6s")
        victim = next(n for n in c.nodes if n.name == st["controller"])
        ents, _, still, now = pause_and_write(c, st, "q", victim, "6s")
        live = [n.name for n in c.nodes if n is not victim]
        check(now.get("controller") in live,
              f"the controller is {now.get('controller')!r}, not one of the live nodes")
        check(still, f"{victim.name}'s shards were served only once its lease had expired: "
              "nobody deposed the silent controller")
        h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5, "every ISR complete")
        stop_and_audit(c, ents)


def test_suspected_primary_gets_no_forwards():
    """Two of three nodes paused (SIGSTOP) on a long lease: the third reaches no majority, so
    nobody fails their shards over. It suspects both once they have left its pings unanswered
    for --suspect-after, and from then on answers requests for the shards they lead with
    `unavailable` at once, instead of forwarding them into a queue nobody reads (the client
    would wait for its own timeout, and a load balancer would eject this healthy node). Woken,
    they are served again; nothing acknowledged is lost."""
    with h.Session("repl-suspect") as s:
        # A 10 s lease: the paused nodes stay members (and primaries) for the whole check.
        _, c, st = rf3_cluster(s, "suspect", lease_ttl="10s")
        alive = next(n for n in c.nodes if n.name == st["controller"])
        paused = [n for n in c.nodes if n is not alive]
        shop = ect.Shop(c, c.nodes, tag="s", products=3, users=12, orders=0)
        ents = shop.entities()
        users = []
        for n in paused:
            mine, _ = ect.split(c, st, ents, n.name)
            users += [i for k, i in mine if k == "user"]
        check(users, "the paused nodes lead some users")
        keys = [k for k in c.keys() if any(k.endswith("/members/" + n.name) for n in paused)]
        for n in paused:
            n.proc.send_signal(signal.SIGSTOP)
        reply, took, still = None, None, False
        try:
            time.sleep(2.5)  # past --suspect-after (1 s), well inside the lease
            t0 = time.monotonic()
            try:
                with c.admin(alive, timeout=5.0) as adm:
                    reply = deposit(adm, users[0], 1, "while-suspected")
            except OSError as e:
                reply = {"no reply": f"{type(e).__name__}: {e}"}
            took = time.monotonic() - t0
            still = all(k in c.keys() for k in keys)
        finally:
            for n in paused:
                n.proc.send_signal(signal.SIGCONT)
        check(still, "a paused node's member key left etcd: its lease ran out, so this did not "
              "check suspicion alone")
        eq(ect.code_of(reply), "unavailable",
           f"a deposit to {users[0]} (its primary paused and suspected) through {alive.name}: "
           f"{reply}")
        log(f"{alive.name} answered a request for a suspected primary's shard in {took:.3f}s: "
            f"{ect.code_of(reply)}")
        with c.admin(alive) as adm:
            adm.ok_retry("user.deposit", {"user_id": users[0], "amount_cents": 2,
                                          "request_id": "after-wake"})
        stop_and_audit(c, ents)


def test_two_of_three_killed():
    with h.Session("repl-two") as s:
        _, c, st = rf3_cluster(s, "two")
        shop = ect.Shop(c, c.nodes, tag="t")
        ents = shop.entities()
        survivor = next(n for n in c.nodes if n.name == st["controller"])
        dead = [n for n in c.nodes if n is not survivor]
        before = ect.snapshot(c, survivor, ents)
        for n in dead:
            n.kill()
        mine, _ = ect.split(c, st, ents, survivor.name)
        users = [i for k, i in mine if k == "user"]
        check(users, f"{survivor.name} leads some users")
        # Its own shards lose their in-sync replicas: writes must never be acknowledged now.
        time.sleep(8)  # past the lease and the replica lag timeout
        with c.admin(survivor, timeout=ect.CLIENT_TIMEOUT) as adm:
            for u in users[:3]:
                r = deposit(adm, u, 3, f"alone-{u}")
                eq(ect.code_of(r), "unavailable", f"deposit to {u} with one live replica")
        for n in dead:
            n.start()
        h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5,
                     "every shard's ISR complete again")
        for n in c.nodes:
            after = ect.snapshot(c, n, ents)
            for u in users[:3]:  # the refused deposits' outcome was unknown: maybe applied
                for k in ("balance_cents",):
                    check(after[("user", u)][k] in (before[("user", u)][k],
                                                     before[("user", u)][k] + 3),
                          f"{u}'s balance after the restart")
                    after[("user", u)] = before[("user", u)]
            ect.compare(before, after, f"after both restarts, via {n.name}")
        with c.admin(dead[0]) as adm:
            for u in shop.users[:3]:
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 1,
                                              "request_id": f"healed-{u}"})
        stop_and_audit(c, ents)


def test_whole_cluster_restarted_on_its_disks():
    """Every node killed -9 at once (a power cut), then restarted on its data dir: each ISR entry
    names a disk, not a membership life, so every shard is served again by its in-sync replicas
    without cluster.force-primary, with everything acknowledged before."""
    with h.Session("repl-all") as s:
        _, c, st = rf3_cluster(s, "all")
        shop = ect.Shop(c, c.nodes, tag="a", products=6, users=9, orders=3)
        ents = shop.entities()
        before = ect.snapshot(c, c.nodes[0], ents)
        disks = ect.disks(st)
        for n in c.nodes:
            n.kill()
        for n in c.nodes:
            n.start()
        h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5,
                     "every shard's ISR complete after the restart of every node")
        eq(ect.disks(c.status(c.nodes[0])), disks, "each node's disk after its restart")
        for n in c.nodes:
            ect.compare(before, ect.snapshot(c, n, ents), f"after the restart, via {n.name}")
        with c.admin(c.nodes[1]) as adm:
            for u in shop.users[:3]:
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 1,
                                              "request_id": f"after-all-{u}"})
        stop_and_audit(c, ents)


def test_leave_moves_replicas_to_a_new_node():
    """A fourth node joins a replicated cluster of three (rebalance starts giving it replicas,
    test_join_rebalances_replicas), then a member leaves (cluster.leave) while clients deposit:
    each of its replicas moves to a member that does not hold the shard yet (added, caught up by
    a full copy, into the ISR; the primaries it led move to an in-sync replica that stays; then
    it is dropped), it exits 0 holding none, and
    every shard ends on the other three, all in sync, with every acknowledged deposit counted
    once and on at least two disks. Refused while it would leave fewer members than the
    replication factor."""
    with h.Session("repl-leave") as s:
        _, c, st = rf3_cluster(s, "leave")
        shop = ect.Shop(c, c.nodes, tag="v", products=6, users=9, orders=3)
        ents = shop.entities()
        ctrl = next(n for n in c.nodes if n.name == st["controller"])
        leaver = next(n for n in c.nodes if n is not ctrl)
        with c.admin(ctrl) as adm:
            r = adm.request("cluster.leave", {"node_id": leaver.name})
            eq(ect.code_of(r), "invalid_state", f"leave with three members and replication "
               f"factor 3: {r}")
            log(f"refused as expected: {r['error']['message']}")
        c.add()
        c.wait_members([ctrl], sorted(n.name for n in c.nodes))
        before = ect.snapshot(c, ctrl, ents)
        acked = {u: 0 for u in shop.users}
        stop = threading.Event()

        def depositor(i):
            # Each deposit is retried with its request id until acknowledged (applied once), also
            # after a lost connection and after `stop`, so `acked` is exactly what the balance
            # must show.
            k, u, adm, pending = 0, shop.users[i], None, False
            deadline = time.monotonic() + 300
            while (pending or not stop.is_set()) and time.monotonic() < deadline:
                try:
                    adm = adm or c.admin(ctrl, timeout=ect.CLIENT_TIMEOUT)
                    pending = True
                    r = deposit(adm, u, 1, f"mv-{i}-{k}")
                except (OSError, ValueError):
                    if adm:
                        adm.close()
                    adm = None
                    time.sleep(0.1)
                    continue
                if r.get("ok"):
                    acked[u] += 1
                    k += 1
                    pending = False
                else:
                    time.sleep(0.05)
            if adm:
                adm.close()
        workers = [threading.Thread(target=depositor, args=(i,)) for i in range(3)]
        for w in workers:
            w.start()
        t0 = time.monotonic()
        try:
            with c.admin(ctrl) as adm:
                adm.ok("cluster.leave", {"node_id": leaver.name})
            try:
                code = leaver.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{leaver.name} did not exit within 120 s of cluster.leave")
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        eq(code, 0, f"{leaver.name}'s exit status")
        log(f"{leaver.name} left {time.monotonic() - t0:.1f}s after cluster.leave; deposits "
            f"acknowledged meanwhile: {sum(acked.values())}")
        rest = [n for n in c.nodes if n is not leaver]
        names = sorted(n.name for n in rest)
        h.wait_until(lambda: isr_complete(c, rest), ISR_TIMEOUT, 0.5,
                     "every shard on the three members left, all in sync")
        sn = c.status(ctrl)
        for sh in sn["shards"]:
            eq(sorted(sh["replicas"]), names, f"replicas of shard {sh['shard']}")
        for n in rest:
            after = ect.snapshot(c, n, ents)
            for u in shop.users[:3]:
                eq(after[("user", u)]["balance_cents"],
                   before[("user", u)]["balance_cents"] + acked[u], f"{u}'s balance via {n.name}")
                after[("user", u)] = before[("user", u)]
            ect.compare(before, after, f"after {leaver.name} left, via {n.name}")
        stop_and_audit(c, ents)


def shares(st, names):
    """({node: replicas held}, {node: shards led}) over `names`, from a cluster.status."""
    held = {n: 0 for n in names}
    led = {n: 0 for n in names}
    for sh in st["shards"]:
        for r in sh["replicas"]:
            held[r] = held.get(r, 0) + 1
        led[sh["primary"]] = led.get(sh["primary"], 0) + 1
    return held, led


def test_join_rebalances_replicas():
    """A fourth node joins a replicated cluster of three while clients deposit: the controller
    moves replicas to it (a few shards at a time: add, full copy, into the ISR, drop), then
    leadership, until every member holds 48 of the 192 replicas and leads 16 of the 64 shards
    (max - min <= 1 both), every ISR complete. Every acknowledged deposit is counted once, every
    other entity unchanged, through every node. The old members delete the copies of the shards
    they no longer replicate once the shard's epoch has moved on (checked in their journals).
    Then an old member is killed -9: everything is still served, and takes writes."""
    with h.Session("repl-join") as s:
        _, c, st = rf3_cluster(s, "join")
        shop = ect.Shop(c, c.nodes, tag="j", products=6, users=9, orders=3)
        ents = shop.entities()
        ctrl = next(n for n in c.nodes if n.name == st["controller"])
        old = list(c.nodes)
        before = ect.snapshot(c, ctrl, ents)
        acked = {u: 0 for u in shop.users}
        stop = threading.Event()

        def depositor(i):
            # As in test_leave_moves_replicas_to_a_new_node: retried with its request id until
            # acknowledged, so `acked` is exactly what the balance must show.
            k, u, adm, pending = 0, shop.users[i], None, False
            deadline = time.monotonic() + 300
            while (pending or not stop.is_set()) and time.monotonic() < deadline:
                try:
                    adm = adm or c.admin(ctrl, timeout=ect.CLIENT_TIMEOUT)
                    pending = True
                    r = deposit(adm, u, 1, f"join-{i}-{k}")
                except (OSError, ValueError):
                    if adm:
                        adm.close()
                    adm = None
                    time.sleep(0.1)
                    continue
                if r.get("ok"):
                    acked[u] += 1
                    k += 1
                    pending = False
                else:
                    time.sleep(0.05)
            if adm:
                adm.close()
        workers = [threading.Thread(target=depositor, args=(i,)) for i in range(3)]
        for w in workers:
            w.start()
        try:
            joiner = c.add()
            names = sorted(n.name for n in c.nodes)
            c.wait_members([ctrl], names)
            t0 = time.monotonic()
            first_replica = [None]

            def balanced():
                sn = c.status(ctrl)
                if sn is None or len(sn.get("shards", [])) != 64:
                    return None
                held, led = shares(sn, names)
                if first_replica[0] is None and held[joiner.name] > 0:
                    first_replica[0] = time.monotonic() - t0
                if held[joiner.name] < 48 or led[joiner.name] < 15:
                    return None
                if max(held.values()) - min(held.values()) > 1 or \
                        max(led.values()) - min(led.values()) > 1:
                    return None
                return isr_complete(c, [ctrl]) and sn
            sn = h.wait_until(balanced, JOIN_TIMEOUT, 0.5,
                              f"{joiner.name} holding its share of replicas and primaries")
            took = time.monotonic() - t0
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        held, led = shares(sn, names)
        moved = held[joiner.name]
        log(f"{joiner.name} got its share {took:.1f}s after it joined (first replica after "
            f"{first_replica[0] or 0:.1f}s): replicas {held}, primaries {led}; "
            f"{moved} replicas moved; deposits acknowledged meanwhile: {sum(acked.values())}")
        epochs = {sh["shard"]: sh["epoch"] for sh in sn["shards"]}
        for n in c.nodes:
            after = ect.snapshot(c, n, ents)
            for u in shop.users[:3]:
                eq(after[("user", u)]["balance_cents"],
                   before[("user", u)]["balance_cents"] + acked[u], f"{u}'s balance via {n.name}")
                after[("user", u)] = before[("user", u)]
            ect.compare(before, after, f"after the rebalance, via {n.name}")
        # One old member (not the controller) dies: its shards fail over, nothing is lost.
        victim = next(n for n in old if n is not ctrl)
        victim.kill()
        log(f"killed -9 {victim.name} (it led {led[victim.name]} shards)")
        rest = [n for n in c.nodes if n is not victim]
        with c.admin(ctrl, timeout=ect.CLIENT_TIMEOUT) as adm:
            for u in shop.users[:3]:
                adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 1,
                                              "request_id": f"after-kill-{u}"}, timeout=30.0)
                acked[u] += 1
        for n in rest:
            after = ect.snapshot(c, n, ents)
            for u in shop.users[:3]:
                eq(after[("user", u)]["balance_cents"],
                   before[("user", u)]["balance_cents"] + acked[u],
                   f"{u}'s balance via {n.name} after {victim.name} died")
                after[("user", u)] = before[("user", u)]
            ect.compare(before, after, f"after {victim.name} died, via {n.name}")
        final = c.status(ctrl)
        journal = stop_and_audit(c, ents)
        # The dropped copies: an old member holds no record of a shard it no longer replicates
        # once that shard's epoch moved on after the drop; the rest stay until it does.
        holds = set((e["node"], e["shard"]) for e in journal["entries"])
        gone, kept = 0, 0
        for n in old:
            for sh in final["shards"]:
                if n.name in sh["replicas"]:
                    continue
                if (n.name, sh["shard"]) in holds:
                    kept += 1
                else:
                    gone += 1
        log(f"copies of shards the old members no longer replicate: {gone} deleted, {kept} kept "
            f"(their shard's epoch has not moved on since the drop); epochs now "
            f"{min(epochs.values())}..{max(epochs.values())}")
        check(gone > 0, "no dropped copy was deleted")


def test_force_primary():
    """cluster.force-primary: refused for a healthy shard, for a non-member and without the admin
    token; for a shard whose every in-sync replica is gone it makes the named node primary at a
    higher epoch, alone in the ISR: what that node holds is served (writes stay paused below
    --min-insync), and once another replica is back and caught up, writes are acknowledged
    again."""
    with h.Session("repl-force") as s:
        _, c, st = rf3_cluster(s, "force")
        shop = ect.Shop(c, c.nodes, tag="f", products=6, users=9, orders=3)
        u = shop.users[0]
        shard = h.shard_of("user", u, 64)
        ctrl = next(n for n in c.nodes if n.name == st["controller"])
        first, second = [n for n in c.nodes if n is not ctrl]
        with c.admin(ctrl) as adm:
            r = adm.request("cluster.force-primary", {"shard": shard, "node_id": first.name})
            eq(ect.code_of(r), "invalid_state", "force-primary of a healthy shard")
            r = adm.request("cluster.force-primary", {"shard": shard, "node_id": "nobody"})
            eq(ect.code_of(r), "invalid_state", "force-primary to a non-member")
        with h.Client(ctrl.port) as anon:
            r = anon.request("cluster.force-primary", {"shard": shard, "node_id": first.name})
            check(ect.code_of(r) in ("forbidden", "unauthorized"), f"without the admin token: {r}")
        # `first` dies and stays down; a write to the shard makes its primary drop it from the
        # ISR (lag), so `first` is behind: what it holds is older than what was acknowledged.
        with c.admin(ctrl) as adm:
            held = adm.ok_retry("user.get", {"user_id": u})["balance_cents"]
        first.kill()
        with c.admin(ctrl, timeout=ect.CLIENT_TIMEOUT) as adm:
            adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 100,
                                          "request_id": "while-first-down"}, timeout=30.0)
        h.wait_until(lambda: (lambda x: x and first.name not in x["shards"][shard]["isr"])(
            c.status(ctrl)), 60.0, 0.5, f"{first.name} out of shard {shard}'s ISR")
        ctrl.kill()
        second.kill()
        first.start()
        h.wait_until(lambda: c.status(first), 30.0, 0.5, f"{first.name} answering")
        with c.admin(first) as adm:
            eq(ect.code_of(adm.request("user.get", {"user_id": u})), "unavailable",
               f"{u} with no in-sync replica of shard {shard} left")
        c.wait_members([first], [first.name], timeout=ect.GONE_TIMEOUT)  # their leases ended
        epoch = c.status(first)["shards"][shard]["epoch"]
        p = h.orderctl("--port", first.port, "cluster.force-primary", "--shard", shard,
                       "--node", first.name, token=c.admin_token)
        eq(p.returncode, 0, f"orderctl cluster.force-primary: {p.stdout} {p.stderr}")
        sh = h.wait_until(lambda: (lambda x: x and x["shards"][shard]["primary"] == first.name
                                   and x["shards"][shard])(c.status(first)), 30.0, 0.3,
                          f"{first.name} primary of shard {shard}")
        check(sh["epoch"] > epoch and sh["isr"] == [first.name],
              f"forced: epoch {epoch} -> {sh['epoch']}, ISR {sh['isr']}")
        with c.admin(first) as adm:
            got = adm.ok_retry("user.get", {"user_id": u})
            log(f"forced shard {shard} onto {first.name} (epoch {epoch} -> {sh['epoch']}): {u} "
                f"has {got['balance_cents']} (the deposit made while it was down is lost, as "
                "documented)")
            eq(got["balance_cents"], held, f"{u}: what {first.name} held, served")
            r = deposit(adm, u, 5, "forced-1")
            eq(ect.code_of(r), "unavailable", "a write with one in-sync replica")
        second.start()
        with c.admin(first) as adm:
            eq(adm.ok_retry("user.deposit", {"user_id": u, "amount_cents": 5,
                                             "request_id": "forced-1"},
                            timeout=60.0)["balance_cents"],
               got["balance_cents"] + 5, "a write once a second replica is back")
        ctrl.start()
        try:
            h.wait_until(lambda: isr_complete(c, c.nodes), ISR_TIMEOUT, 0.5, "every ISR complete")
        except AssertionError:
            st = c.status(first)
            log(f"incomplete: {[(x['shard'], x['primary'], x['epoch'], x['isr'], x['isr_disks']) for x in st['shards'] if len(x['isr']) < 3][:6]}; disks {ect.disks(st)}")
            raise


if __name__ == "__main__":
    h.main([test_a_cluster_replicates_by_default, test_replicated_shard_map, test_kill9_primary_fails_over_and_rejoins,
            test_primaries_killed_under_load, test_reads_show_only_committed_and_current_state,
            test_paused_primary_replaced_while_its_lease_lives,
            test_paused_controller_replaced_while_its_lease_lives,
            test_suspected_primary_gets_no_forwards, test_two_of_three_killed, test_whole_cluster_restarted_on_its_disks,
            test_leave_moves_replicas_to_a_new_node, test_join_rebalances_replicas,
            test_drain_moves_leadership_before_stopping, test_force_primary],
           __doc__)
