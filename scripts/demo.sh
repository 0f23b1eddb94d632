#!/usr/bin/env bash
# The ordermesh demo: builds (scripts/setup.sh), starts one orderd on 127.0.0.1:7400 with its data,
# logs and pid file under var/demo/, and walks through a small shop: catalog, users, deposit,
# an order paid, one rejected for stock, one cancelled. The node keeps running afterwards.
#
#   scripts/demo.sh          (re)start the node and run the demo flow
#   scripts/demo.sh stop     stop the node this script started (SIGTERM, then SIGKILL if stuck)
#   scripts/demo.sh status   tell whether it is running
#
# Environment: ORDERMESH_ADMIN_TOKEN (else one is generated and kept in var/demo/admin.token),
# ORDERMESH_DEMO_PORT (7400), ORDERMESH_DEMO_CLUSTER_PORT (7500), ORDERMESH_BUILD_DIR (build),
# ORDERMESH_SKIP_SETUP=1 (binaries already built: do not run scripts/setup.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="${ORDERMESH_BUILD_DIR:-build}"
ORDERD="$ROOT/$BUILD_DIR/nodes/orderd"
ORDERCTL="$ROOT/$BUILD_DIR/client/orderctl"
[[ "$BUILD_DIR" = /* ]] && ORDERD="$BUILD_DIR/nodes/orderd" && ORDERCTL="$BUILD_DIR/client/orderctl"
DEMO_DIR="$ROOT/var/demo"
PID_FILE="$DEMO_DIR/orderd.pid"
TOKEN_FILE="$DEMO_DIR/admin.token"
LOG_FILE="$DEMO_DIR/orderd.log"
STDERR_FILE="$DEMO_DIR/orderd.stderr.log"
PORT="${ORDERMESH_DEMO_PORT:-7400}"
CLUSTER_PORT="${ORDERMESH_DEMO_CLUSTER_PORT:-7500}"
HOST=127.0.0.1

say() { printf '%s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# The pid in our pid file, if that process is alive and is the orderd we started.
our_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must be orderd running on our data dir.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "orderd .*--data-dir $DEMO_DIR/data" ||
    return 1
  printf '%s' "$pid"
}

stop_node() {
  local pid
  if ! pid="$(our_pid)"; then
    say "demo: no orderd of ours is running"
    rm -f "$PID_FILE"
    return 0
  fi
  say "demo: stopping orderd (pid $pid) with SIGTERM"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 150; i++)); do  # 15 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "demo: still alive after 15 s, sending SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$PID_FILE"
  say "demo: stopped"
}

ctl() { "$ORDERCTL" --host "$HOST" --port "$PORT" "$@"; }

# step TITLE CMD...: prints the title and the orderctl command line, runs it, shows its output.
step() {
  local title="$1"
  shift
  [[ -n "$title" ]] && printf '\n==> %s\n' "$title"
  printf '    $ orderctl %s\n' "$(sed -E 's/--token [^ ]+/--token .../g' <<<"$*")"
  ctl "$@" 2>&1 | sed 's/^/    /'
  return "${PIPESTATUS[0]}"
}

case "${1:-}" in
  stop) stop_node; exit 0 ;;
  status)
    if pid="$(our_pid)"; then say "demo: orderd running, pid $pid, $HOST:$PORT"; else
      say "demo: not running"; fi
    exit 0 ;;
  "" | start) ;;
  -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
  *) die "unknown command: $1 (use: scripts/demo.sh [stop|status])" ;;
esac

if [[ "${ORDERMESH_SKIP_SETUP:-0}" != 1 ]]; then
  bash scripts/setup.sh
fi
[[ -x "$ORDERD" ]] || die "$ORDERD not built"
[[ -x "$ORDERCTL" ]] || die "$ORDERCTL not built"

mkdir -p "$DEMO_DIR"
# A second run restarts the node on the same data (ids below carry a run suffix).
stop_node
if "$ORDERCTL" --host "$HOST" --port "$PORT" --timeout-ms 1000 cluster.status >/dev/null 2>&1; then
  die "something else already answers on $HOST:$PORT; set ORDERMESH_DEMO_PORT"
fi

if [[ -n "${ORDERMESH_ADMIN_TOKEN:-}" ]]; then
  ADMIN_TOKEN="$ORDERMESH_ADMIN_TOKEN"
elif [[ -s "$TOKEN_FILE" ]]; then
  ADMIN_TOKEN="$(cat "$TOKEN_FILE")"
else
  ADMIN_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
fi
(umask 077 && printf '%s\n' "$ADMIN_TOKEN" >"$TOKEN_FILE")

say "demo: starting orderd on $HOST:$PORT (data $DEMO_DIR/data, log $LOG_FILE)"
# The token goes by environment, not argv, so it does not show in ps.
ORDERMESH_ADMIN_TOKEN="$ADMIN_TOKEN" nohup "$ORDERD" --node-id demo --data-dir "$DEMO_DIR/data" \
  --client-host "$HOST" --client-port "$PORT" --cluster-port "$CLUSTER_PORT" \
  --log-file "$LOG_FILE" --log-level info </dev/null >"$STDERR_FILE" 2>&1 &
PID=$!
echo "$PID" >"$PID_FILE"

ready=0
for ((i = 0; i < 300; i++)); do  # 30 s
  if ! kill -0 "$PID" 2>/dev/null; then
    say "demo: orderd exited while starting; last lines of its logs:"
    tail -n 20 "$STDERR_FILE" "$LOG_FILE" 2>/dev/null || true
    rm -f "$PID_FILE"
    exit 1
  fi
  if "$ORDERCTL" --host "$HOST" --port "$PORT" --timeout-ms 1000 cluster.status >/dev/null 2>&1
  then
    ready=1
    break
  fi
  sleep 0.1
done
if ((!ready)); then
  say "demo: orderd did not answer within 30 s; last lines of its logs:"
  tail -n 20 "$STDERR_FILE" "$LOG_FILE" 2>/dev/null || true
  stop_node
  exit 1
fi
say "demo: orderd is up (pid $PID)"

on_error() {
  say ""
  say "demo: a step failed (see above). The node is still running: scripts/demo.sh stop"
  say "      logs: $LOG_FILE $STDERR_FILE"
}
trap on_error ERR

RUN="$(date +%s)"  # ids unique per run: a second run reuses the same data
APPLE="apple-$RUN" PEAR="pear-$RUN" PLUM="plum-$RUN"
ALICE="alice-$RUN" BOB="bob-$RUN"
PW_ALICE="alice-pass-$RUN" PW_BOB="bob-pass-$RUN"
A="--token $ADMIN_TOKEN"

step "cluster status (members)" --get members cluster.status
# shellcheck disable=SC2086
{
  step "catalog: create 3 products (admin)" $A product.create --product-id "$APPLE" --name Apple \
    --price-cents 120
  step "" $A product.create --product-id "$PEAR" --name Pear --price-cents 250
  step "" $A product.create --product-id "$PLUM" --name Plum --price-cents 90
  step "stock: 10 apples, 5 pears, 1 plum (admin)" $A inventory.add --product-id "$APPLE" \
    --quantity 10 --request-id "stock-$APPLE"
  step "" $A inventory.add --product-id "$PEAR" --quantity 5 --request-id "stock-$PEAR"
  step "" $A inventory.add --product-id "$PLUM" --quantity 1 --request-id "stock-$PLUM"
}
step "register two users" user.register --user-id "$ALICE" --password "$PW_ALICE" --name Alice
step "" user.register --user-id "$BOB" --password "$PW_BOB" --name Bob

printf '\n==> log in (orderctl --get token user.login ...)\n'
T_ALICE="$(ctl --get token user.login --user-id "$ALICE" --password "$PW_ALICE")"
T_BOB="$(ctl --get token user.login --user-id "$BOB" --password "$PW_BOB")"
say "    alice and bob have session tokens"

step "alice deposits 50.00" --token "$T_ALICE" user.deposit --user-id "$ALICE" \
  --amount-cents 5000 --request-id "dep-$ALICE"
step "alice orders 2 apples and 1 pear (reserved)" --token "$T_ALICE" order.place \
  --order-id "order-1-$RUN" --user-id "$ALICE" --items "$APPLE:2,$PEAR:1"
step "alice pays it" --token "$T_ALICE" order.pay --order-id "order-1-$RUN"
step "bob orders 3 plums, but there is only 1 (rejected for stock)" --token "$T_BOB" \
  order.place --order-id "order-2-$RUN" --user-id "$BOB" --items "$PLUM:3" || true
step "bob's order as stored" --token "$T_BOB" order.get --order-id "order-2-$RUN"
step "alice orders 1 more pear ..." --token "$T_ALICE" order.place --order-id "order-3-$RUN" \
  --user-id "$ALICE" --items "$PEAR:1"
step "... and cancels it (the pear goes back)" --token "$T_ALICE" order.cancel \
  --order-id "order-3-$RUN"

step "inventory (available / reserved / sold)" inventory.get --product-id "$APPLE"
step "" inventory.get --product-id "$PEAR"
step "" inventory.get --product-id "$PLUM"
step "alice's orders" --token "$T_ALICE" order.list --user-id "$ALICE"
step "bob's orders" --token "$T_BOB" order.list --user-id "$BOB"
step "alice's wallet (50.00 - 2x1.20 - 2.50)" --token "$T_ALICE" user.get --user-id "$ALICE"

# The outcomes the demo is about.
s1="$(ctl --token "$T_ALICE" --get status order.get --order-id "order-1-$RUN")"
s2="$(ctl --token "$T_BOB" --get status order.get --order-id "order-2-$RUN")"
s3="$(ctl --token "$T_ALICE" --get status order.get --order-id "order-3-$RUN")"
bal="$(ctl --token "$T_ALICE" --get balance_cents user.get --user-id "$ALICE")"
printf '\n==> outcome: order-1 %s, order-2 %s, order-3 %s, alice balance %s cents\n' \
  "$s1" "$s2" "$s3" "$bal"
if [[ "$s1" != PAID || "$s2" != REJECTED || "$s3" != CANCELLED || "$bal" != 4510 ]]; then
  die "unexpected outcome (want PAID, REJECTED, CANCELLED, 4510)"
fi
trap - ERR

cat <<EOF

demo: done. orderd keeps running on $HOST:$PORT (pid $PID).
  talk to it:   $BUILD_DIR/client/orderctl --port $PORT cluster.status
                $BUILD_DIR/client/orderctl --port $PORT inventory.get --product-id $APPLE
                $BUILD_DIR/client/orderctl --port $PORT --token "\$(cat var/demo/admin.token)" \\
                  order.list --user-id $ALICE
  raw protocol: echo '{"id":1,"op":"product.get","args":{"product_id":"$APPLE"}}' | nc -q1 $HOST $PORT
  logs:         $LOG_FILE
  stop it:      scripts/demo.sh stop
EOF
