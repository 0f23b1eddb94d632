#!/usr/bin/env bash
# The ordermesh demo: builds (scripts/setup.sh), starts a 3-node cluster on 127.0.0.1 with
# scripts/cluster.sh (etcd on 127.0.0.1:7379 with its data in var/cluster/etcd/, then n1..n3 on
# client ports 7401-7403, data and logs under var/cluster/; node-to-node traffic in mutual TLS
# with certificates that cluster.sh makes with scripts/gen-certs.sh in var/cluster/certs/), waits until the shard map in etcd is
# balanced over the three nodes, and walks through a small shop across them: the catalog is loaded
# through n1, an order is placed on n2, paid on n3 and read on n1; one is rejected for stock, one
# cancelled. It ends with the shard (and so the node) that owns each entity used. The cluster
# keeps running afterwards.
#
#   scripts/demo.sh          (re)start the cluster and run the demo flow
#   scripts/demo.sh stop     stop the cluster: its nodes, then its etcd (scripts/cluster.sh down)
#   scripts/demo.sh status   scripts/cluster.sh status
#
# Environment: ORDERMESH_ADMIN_TOKEN (else one is generated and kept in var/cluster/admin.token),
# ORDERMESH_BUILD_DIR (build), ORDERMESH_CLUSTER_PORT_BASE (7400: nK listens on base+K),
# ORDERMESH_ETCD=http://host:port,... (use that etcd; the demo then starts and stops none),
# ORDERMESH_SKIP_SETUP=1 (binaries already built: do not run scripts/setup.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="${ORDERMESH_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
ORDERCTL="$BUILD_DIR/client/orderctl"
CLUSTER="$ROOT/scripts/cluster.sh"
CDIR="${ORDERMESH_CLUSTER_DIR:-var/cluster}"
[[ "$CDIR" = /* ]] || CDIR="$ROOT/$CDIR"
PORT_BASE="${ORDERMESH_CLUSTER_PORT_BASE:-7400}"
HOST=127.0.0.1
declare -A PORT=([n1]=$((PORT_BASE + 1)) [n2]=$((PORT_BASE + 2)) [n3]=$((PORT_BASE + 3)))

say() { printf '%s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  stop) exec bash "$CLUSTER" down ;;
  status) exec bash "$CLUSTER" status ;;
  "" | start) ;;
  -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown command: $1 (use: scripts/demo.sh [stop|status])" ;;
esac

if [[ "${ORDERMESH_SKIP_SETUP:-0}" != 1 ]]; then
  bash scripts/setup.sh
fi
[[ -x "$ORDERCTL" ]] || die "$ORDERCTL not built"

# A second run restarts the cluster on the same data (the ids below carry a run suffix).
bash "$CLUSTER" down
rc=0
bash "$CLUSTER" up 3 || rc=$?
if ((rc == 4)); then
  say "demo: var/cluster holds another cluster's layout; starting a fresh 3-node cluster instead"
  rc=0
  bash "$CLUSTER" up 3 --fresh || rc=$?
fi
if ((rc != 0)); then
  say "demo: the cluster did not come up balanced (see above); stopping it"
  bash "$CLUSTER" down || true
  exit 1
fi

# `cluster.sh up` returns once the map is balanced; check it once more from each node's view
# (bounded), so that the session below really crosses nodes: every shard has its primary and no
# move pending, and n1, n2 and n3 each lead some shards.
BALANCED_PY='
import json, sys
try:
    st = json.loads(sys.stdin.read())["result"]
except Exception:
    print("no cluster.status"); sys.exit(1)
shards = st.get("shards", [])
leads = {}
for s in shards:
    leads[s.get("primary", s.get("owner"))] = leads.get(s.get("primary", s.get("owner")), 0) + 1
pending = sum(1 for s in shards if s.get("target"))
summary = "controller %s, leads %s, %d move(s) pending" % (
    st.get("controller"), " ".join("%s=%d" % (n, leads.get(n, 0)) for n in sys.argv[1:]), pending)
ok = shards and not pending and all(leads.get(n, 0) > 0 for n in sys.argv[1:]) \
    and sum(leads.get(n, 0) for n in sys.argv[1:]) == len(shards)
print(summary); sys.exit(0 if ok else 1)
'
t0=$SECONDS
while :; do
  balanced=1
  for node in n1 n2 n3; do
    js="$("$ORDERCTL" --host "$HOST" --port "${PORT[$node]}" --timeout-ms 2000 --json \
      cluster.status 2>/dev/null || true)"
    view="$(python3 -c "$BALANCED_PY" n1 n2 n3 <<<"$js")" || { balanced=0; break; }
  done
  ((balanced)) && break
  if ((SECONDS - t0 >= 60)); then
    say "demo: the shard map is not balanced over n1, n2, n3 after 60 s ($node sees: $view)"
    say "      the cluster keeps running: scripts/cluster.sh status; scripts/demo.sh stop"
    exit 1
  fi
  sleep 0.5
done
say "demo: shard map balanced in etcd, as every node sees it: $view"

if [[ -n "${ORDERMESH_ADMIN_TOKEN:-}" ]]; then
  ADMIN_TOKEN="$ORDERMESH_ADMIN_TOKEN"
else
  ADMIN_TOKEN="$(tr -d ' \n' <"$CDIR/admin.token")"
fi

# on NODE orderctl-args...: one request to that node. Bounded by orderctl's own timeouts; the
# cluster can answer `unavailable` for a moment (a shard being moved), so that is retried.
on() {
  local node="$1"
  shift
  local attempt rc out
  for ((attempt = 1; ; attempt++)); do
    rc=0
    out="$("$ORDERCTL" --host "$HOST" --port "${PORT[$node]}" --timeout-ms 10000 "$@" 2>&1)" || rc=$?
    if ((rc != 0)) && ((attempt < 5)) && grep -q '^error unavailable' <<<"$out"; then
      sleep 0.5
      continue
    fi
    [[ -n "$out" ]] && printf '%s\n' "$out"
    return "$rc"
  done
}

# step TITLE NODE ARGS...: prints the title and the orderctl command line, runs it on NODE.
step() {
  local title="$1" node="$2"
  shift 2
  [[ -n "$title" ]] && printf '\n==> %s\n' "$title"
  printf '    [%s] $ orderctl --port %s %s\n' "$node" "${PORT[$node]}" \
    "$(sed -E 's/--token [^ ]+/--token .../g' <<<"$*")"
  on "$node" "$@" 2>&1 | sed 's/^./    &/'
  return "${PIPESTATUS[0]}"
}

on_error() {
  say ""
  say "demo: a step failed (see above). The cluster is still running:"
  say "      scripts/cluster.sh status; scripts/demo.sh stop; logs in var/cluster/n*/orderd.log"
}
trap on_error ERR

# Which node leads an entity's shard: shard = stable_hash(kind, id) % shard_count
# (cluster/sharding.cpp: FNV-1a 64 + splitmix64 finalizer, kinds user=1 product=2 inventory=3
# order=4), and the shard's primary from cluster.status.
SHARD_PY='import json, sys
M = (1 << 64) - 1
KINDS = {"user": 1, "product": 2, "inventory": 3, "order": 4}
def stable_hash(kind, ident):
    h = 14695981039346656037
    h = ((h ^ kind) * 1099511628211) & M
    for c in ident.encode():
        h = ((h ^ c) * 1099511628211) & M
    h ^= h >> 30; h = (h * 0xBF58476D1CE4E5B9) & M
    h ^= h >> 27; h = (h * 0x94D049BB133111EB) & M
    h ^= h >> 31
    return h
assert stable_hash(1, "alice") == 0x3E267EEB0256291A  # pinned in tests/cluster/sharding_test.cpp
'
# primary_of NODE KIND/ID: the node leading that entity's shard now, as NODE sees it.
primary_of() {
  python3 - "$(on "$1" --json cluster.status)" "$2" <<EOF
$SHARD_PY
st = json.loads(sys.argv[1])["result"]
kind, ident = sys.argv[2].split("/", 1)
shard = stable_hash(KINDS[kind], ident) % st["shard_count"]
print(next(s["primary"] for s in st["shards"] if s["shard"] == shard))
EOF
}

RUN="$(date +%s)"  # ids unique per run: a second run reuses the same data
APPLE="apple-$RUN" PEAR="pear-$RUN" PLUM="plum-$RUN"
ALICE="alice-$RUN" BOB="bob-$RUN"
PW_ALICE="alice-pass-$RUN" PW_BOB="bob-pass-$RUN"
O1="order-1-$RUN" O2="order-2-$RUN" O3="order-3-$RUN"
A="--token $ADMIN_TOKEN"

step "the cluster: 3 nodes, 64 shards placed by the controller in etcd; any node takes any request" \
  n1 cluster-status
# shellcheck disable=SC2086
{
  step "catalog through n1: 3 products (admin)" n1 $A product.create --product-id "$APPLE" \
    --name Apple --price-cents 120
  step "" n1 $A product.create --product-id "$PEAR" --name Pear --price-cents 250
  step "" n1 $A product.create --product-id "$PLUM" --name Plum --price-cents 90
  step "stock through n1: 10 apples, 5 pears, 1 plum" n1 $A inventory.add \
    --product-id "$APPLE" --quantity 10 --request-id "stock-$APPLE"
  step "" n1 $A inventory.add --product-id "$PEAR" --quantity 5 --request-id "stock-$PEAR"
  step "" n1 $A inventory.add --product-id "$PLUM" --quantity 1 --request-id "stock-$PLUM"
}
step "the catalog as n2 and n3 see it" n2 product.get --product-id "$APPLE"
step "" n3 product.get --product-id "$PLUM"
step "register alice on n2 and bob on n3" n2 user.register --user-id "$ALICE" \
  --password "$PW_ALICE" --name Alice
step "" n3 user.register --user-id "$BOB" --password "$PW_BOB" --name Bob

printf '\n==> log in through n1 (orderctl --get token user.login ...); sessions are valid on every node\n'
T_ALICE="$(on n1 --get token user.login --user-id "$ALICE" --password "$PW_ALICE")"
T_BOB="$(on n1 --get token user.login --user-id "$BOB" --password "$PW_BOB")"
say "    alice and bob have session tokens"

step "alice deposits 50.00 through n3" n3 --token "$T_ALICE" user.deposit --user-id "$ALICE" \
  --amount-cents 5000 --request-id "dep-$ALICE"
step "alice places an order for 2 apples and 1 pear on n2 (reserved)" n2 --token "$T_ALICE" \
  order.place --order-id "$O1" --user-id "$ALICE" --items "$APPLE:2,$PEAR:1"
# A failover mid-session: the node leading the order's shard dies (kill -9) between the
# placement and the payment; the payment goes through another node to the in-sync replica that
# took the shard over, and the dead node comes back as a follower.
VICTIM="$(primary_of n1 "order/$O1")"
PAY_VIA=n3
[[ "$VICTIM" == n3 ]] && PAY_VIA=n1
printf '\n==> failover: %s leads the shard of %s; kill -9 it (scripts/cluster.sh kill %s)\n' \
  "$VICTIM" "$O1" "$VICTIM"
"$CLUSTER" kill "$VICTIM" | sed 's/^/    /'
step "she pays it on $PAY_VIA: an in-sync replica took the shard over" "$PAY_VIA" \
  --token "$T_ALICE" order.pay --order-id "$O1"
say "    the order's shard is now led by $(primary_of "$PAY_VIA" "order/$O1")"
printf '\n==> %s comes back on its disk and catches up as a follower (scripts/cluster.sh restart %s)\n' \
  "$VICTIM" "$VICTIM"
"$CLUSTER" restart "$VICTIM" | sed 's/^/    /'
step "and reads it on n1" n1 --token "$T_ALICE" order.get --order-id "$O1"
step "bob orders 3 plums on n3, but there is only 1 (rejected for stock)" n3 --token "$T_BOB" \
  order.place --order-id "$O2" --user-id "$BOB" --items "$PLUM:3" || true
step "bob's order as n2 has it" n2 --token "$T_BOB" order.get --order-id "$O2"
step "alice orders 1 more pear on n1 ..." n1 --token "$T_ALICE" order.place --order-id "$O3" \
  --user-id "$ALICE" --items "$PEAR:1"
step "... and cancels it on n2 (the pear goes back)" n2 --token "$T_ALICE" order.cancel \
  --order-id "$O3"

step "inventory (available / reserved / sold), one product per node" n1 inventory.get \
  --product-id "$APPLE"
step "" n2 inventory.get --product-id "$PEAR"
step "" n3 inventory.get --product-id "$PLUM"
step "alice's orders (n3)" n3 --token "$T_ALICE" order.list --user-id "$ALICE"
step "alice's wallet on n1 (50.00 - 2x1.20 - 2.50)" n1 --token "$T_ALICE" user.get \
  --user-id "$ALICE"

# Which node owns what: shard = stable_hash(kind, id) % shard_count (cluster/sharding.cpp,
# FNV-1a 64 + splitmix64 finalizer, kinds user=1 product=2 inventory=3 order=4), and the shard's
# owner from cluster.status.
printf '\n==> where the entities live (shard = stable hash of kind and id; owner = its primary in etcd, from cluster.status)\n'
status="$(on n1 --json cluster.status)"
python3 - "$status" "user/$ALICE" "user/$BOB" "product/$APPLE" "product/$PEAR" "product/$PLUM" \
  "inventory/$APPLE" "inventory/$PEAR" "inventory/$PLUM" "order/$O1" "order/$O2" "order/$O3" <<EOF
$SHARD_PY
st = json.loads(sys.argv[1])["result"]
owner = {s["shard"]: s.get("primary", s.get("owner")) for s in st["shards"]}
rows = [("ENTITY", "SHARD", "OWNER")]
count = {}
for ent in sys.argv[2:]:
    kind, ident = ent.split("/", 1)
    shard = stable_hash(KINDS[kind], ident) % st["shard_count"]
    rows.append((ent, str(shard), owner.get(shard, "?")))
    count[owner.get(shard, "?")] = count.get(owner.get(shard, "?"), 0) + 1
w = [max(len(r[i]) for r in rows) for i in range(3)]
for r in rows:
    print("    " + "  ".join(r[i].ljust(w[i]) for i in range(2)) + "  " + r[2])
print("    (%s)" % ", ".join("%s owns %d" % kv for kv in sorted(count.items())))
EOF

# The outcomes the demo is about, each read through a different node.
s1="$(on n1 --token "$T_ALICE" --get status order.get --order-id "$O1")"
s2="$(on n2 --token "$T_BOB" --get status order.get --order-id "$O2")"
s3="$(on n3 --token "$T_ALICE" --get status order.get --order-id "$O3")"
bal="$(on n2 --token "$T_ALICE" --get balance_cents user.get --user-id "$ALICE")"
printf '\n==> outcome: order-1 %s, order-2 %s, order-3 %s, alice balance %s cents\n' \
  "$s1" "$s2" "$s3" "$bal"
if [[ "$s1" != PAID || "$s2" != REJECTED || "$s3" != CANCELLED || "$bal" != 4510 ]]; then
  die "unexpected outcome (want PAID, REJECTED, CANCELLED, 4510)"
fi
trap - ERR

B="${BUILD_DIR#"$ROOT"/}"
ETCD_SHOWN="${ORDERMESH_ETCD:-$HOST:${ORDERMESH_ETCD_PORT:-7379}}"
cat <<EOF

demo: done. The cluster keeps running: n1, n2, n3 on $HOST:${PORT[n1]}, ${PORT[n2]}, ${PORT[n3]}, etcd on $ETCD_SHOWN.
  the cluster:  scripts/cluster.sh status       (or: $B/client/orderctl --port ${PORT[n2]} cluster-status)
  etcd:         scripts/cluster.sh etcd-status; scripts/cluster.sh etcd-kill; scripts/cluster.sh etcd-restart
  any node:     $B/client/orderctl --host $HOST:${PORT[n3]},$HOST:${PORT[n1]} inventory.get --product-id $APPLE
                $B/client/orderctl --port ${PORT[n2]} --token-file var/cluster/admin.token \\
                  order.list --user-id $ALICE
  try:          scripts/cluster.sh kill n2; ... ; scripts/cluster.sh restart n2
                scripts/cluster.sh add; scripts/cluster.sh leave n3
  logs:         var/cluster/n1/orderd.log (n2, n3 alike), var/cluster/etcd/etcd.log
  stop it:      scripts/demo.sh stop         (the nodes, then etcd)
EOF
