"""The one-writer-per-entity audit, over a dump of every node's journal (optional input).

The history alone cannot show two writers of one entity; the journals can. A later tool will
dump them; until then this is the hook, with the smallest shape that makes the audit possible
(JSON, one object; all keys but `entries` optional):

    {"version": 1,
     "entries": [                                   # every journal record of every node
       {"node": "n1", "shard": 3, "epoch": 2, "kind": "order", "id": "o1", "seq": 1,
        "digest": "9f2c..."},                       # digest: any hash of the event bytes
       {"node": "n1", "shard": 3, "epoch": 2, "kind": "order", "id": "o1", "seq": 40,
        "snapshot": true}                           # a snapshot covering seqs 1..40
     ],
     "shard_epochs": {"n1": {"3": [1, 2, 4]}},      # per node and shard: the epochs it owned
                                                    # the shard under, in the order it did
     "replayed": [                                  # the state replaying the journal gives
       {"kind": "order", "id": "o1", "state": {"status": "PAID", ...}}
     ]}

Rules (rule names in the violations):
  contiguous     per node and entity, the event seqs have no gap and no duplicate, and start
                 at 1 (or right after a snapshot of that entity: pruned events are fine)
  epochs         per node and entity, epochs never decrease as seqs grow; per node and shard,
                 shard_epochs never decrease
  forked         one (kind, id, seq) on two nodes with different digests: two writers
                 (a copy made by a handoff has the same digest)
  replay         a replayed state differs from the final read of that entity in a field both
                 have
"""

import json
from collections import defaultdict

from client.chaos.invariants import Finding

NAME = "one_writer_per_entity"
DESCRIPTION = ("one writer per entity: journal seqs contiguous, shard epochs never going back, "
               "replay gives the served state")


def load(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def audit(journal, facts, **limits):
    """The Finding of the audit; skipped (ok, with a reason) when no journal is given."""
    out = Finding(NAME, DESCRIPTION, **limits)
    if journal is None:
        out.skipped = "no journal_audit given"
        return out
    entries = []
    for e in journal.get("entries") or ():
        if isinstance(e, dict) and isinstance(e.get("seq"), int) and not isinstance(e["seq"], bool):
            entries.append(e)
        else:
            out.add("malformed journal entry (needs an integer seq)", [e], rule="malformed")
    _per_entity(entries, out)
    _forks(entries, out)
    for node, shards in sorted((journal.get("shard_epochs") or {}).items()):
        for shard, epochs in sorted(shards.items()):
            for a, b in zip(epochs, epochs[1:]):
                if b < a:
                    out.add(f"node {node} shard {shard}: epoch went back from {a} to {b}",
                            [{"node": node, "shard": shard, "epochs": epochs}], rule="epochs")
                    break
    for rep in journal.get("replayed") or ():
        fr = facts.final.get(rep.get("kind"), {}).get(rep.get("id"))
        if fr is None or not fr.exists or not isinstance(rep.get("state"), dict):
            continue
        diff = sorted(k for k, v in rep["state"].items() if k in fr.state and fr.state[k] != v)
        if diff:
            out.add(f"{rep['kind']}/{rep['id']}: replaying the journal gives other {diff} than "
                    f"the node serves", [rep, fr.latest], rule="replay")
    return out


def _per_entity(entries, out):
    by_entity = defaultdict(list)
    for e in entries:
        by_entity[(e.get("node"), e.get("kind"), e.get("id"))].append(e)
    for (node, kind, eid), es in sorted(by_entity.items(), key=lambda kv: str(kv[0])):
        name = f"node {node} {kind}/{eid}"
        events = sorted((e for e in es if not e.get("snapshot")), key=lambda e: e["seq"])
        snaps = [e["seq"] for e in es if e.get("snapshot")]
        if events:
            first = events[0]["seq"]
            if first != 1 and not any(s >= first - 1 for s in snaps):
                out.add(f"{name}: events start at seq {first}, no snapshot covers 1..{first - 1}",
                        [events[0]], rule="contiguous")
        for a, b in zip(events, events[1:]):
            if b["seq"] != a["seq"] + 1:
                what = "duplicate" if b["seq"] == a["seq"] else "gap"
                out.add(f"{name}: {what} between seq {a['seq']} and {b['seq']}", [a, b],
                        rule="contiguous")
                break
        for a, b in zip(events, events[1:]):
            if b.get("epoch", 0) < a.get("epoch", 0):
                out.add(f"{name}: epoch went back from {a.get('epoch')} at seq {a['seq']} to "
                        f"{b.get('epoch')} at seq {b['seq']}", [a, b], rule="epochs")
                break


def _forks(entries, out):
    first = {}
    reported = set()
    for e in entries:
        if e.get("snapshot") or e.get("digest") is None:
            continue
        key = (e.get("kind"), e.get("id"), e.get("seq"))
        other = first.setdefault(key, e)
        if other.get("digest") != e["digest"] and key[:2] not in reported:
            reported.add(key[:2])
            out.add(f"{key[0]}/{key[1]} seq {key[2]}: different events on {other.get('node')} "
                    f"(epoch {other.get('epoch')}) and {e.get('node')} (epoch {e.get('epoch')}): "
                    f"two writers", [other, e], rule="forked")
