#!/usr/bin/env bash
# A local ordermesh cluster on 127.0.0.1: nodes n1..nN, client ports 7401.., cluster ports 7501..,
# each with its data, logs, pid file and command line under var/cluster/<id>/.
#
#   scripts/cluster.sh up N [--fresh]  start n1, then n2..nN joining through n1; wait until every
#                                      node answers and the shard map is balanced (no member
#                                      above ceil(shards/N)). --fresh: delete var/cluster first.
#   scripts/cluster.sh add             start the next id, joining through the running nodes
#   scripts/cluster.sh leave ID        cluster.leave: ID hands off its shards and exits; wait for it
#   scripts/cluster.sh kill ID         kill -9 of ID (our orderd on var/cluster/ID/data only)
#   scripts/cluster.sh restart ID      start ID again with the flags it was started with
#   scripts/cluster.sh status          our processes, then `orderctl cluster-status` from a live node
#   scripts/cluster.sh down            SIGTERM every node we started (then SIGKILL after 20 s)
#
# Environment: ORDERMESH_ADMIN_TOKEN (else generated once into var/cluster/admin.token),
# ORDERMESH_BUILD_DIR (build), ORDERMESH_CLUSTER_DIR (var/cluster),
# ORDERMESH_CLUSTER_PORT_BASE (7400: nK gets client port base+K and cluster port base+100+K),
# ORDERMESH_CLUSTER_ARGS (extra orderd flags for new nodes, e.g. "--heartbeat-interval 200ms"),
# ORDERMESH_CLUSTER_WAIT (seconds `up`/`add` wait for balance, default 120).
# scripts/setup.sh runs first only when a binary is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="${ORDERMESH_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
ORDERD="$BUILD_DIR/nodes/orderd"
ORDERCTL="$BUILD_DIR/client/orderctl"
CDIR="${ORDERMESH_CLUSTER_DIR:-var/cluster}"
[[ "$CDIR" = /* ]] || CDIR="$ROOT/$CDIR"
TOKEN_FILE="$CDIR/admin.token"
PORT_BASE="${ORDERMESH_CLUSTER_PORT_BASE:-7400}"
WAIT_S="${ORDERMESH_CLUSTER_WAIT:-120}"
HOST=127.0.0.1
MAX_NODES=99

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; }

# shellcheck disable=SC2015
[[ "$PORT_BASE" =~ ^[0-9]+$ ]] && ((PORT_BASE >= 1024 && PORT_BASE + 100 + MAX_NODES <= 65535)) ||
  die "ORDERMESH_CLUSTER_PORT_BASE must be an integer in 1024..65336"
[[ "$WAIT_S" =~ ^[0-9]+$ ]] || die "ORDERMESH_CLUSTER_WAIT must be a number of seconds"

# ---- node bookkeeping ----------------------------------------------------------------------

node_num() { # "n3" -> 3; dies on anything else
  [[ "$1" =~ ^n([1-9][0-9]?)$ ]] || die "node ids are n1..n$MAX_NODES, got '$1'"
  printf '%s' "${BASH_REMATCH[1]}"
}
client_port() { printf '%s' $((PORT_BASE + $(node_num "$1"))); }
cluster_port() { printf '%s' $((PORT_BASE + 100 + $(node_num "$1"))); }
node_dir() { printf '%s' "$CDIR/$1"; }

# Ids with a directory under $CDIR, in numeric order.
known_ids() {
  local d
  for d in "$CDIR"/n*/; do
    [[ -d "$d" ]] || continue
    d="${d%/}"
    d="${d##*/}"
    [[ "$d" =~ ^n[1-9][0-9]?$ ]] && printf '%s\n' "${d#n}"
  done | sort -n | sed 's/^/n/'
}

# The pid of node $1 if its pid file names a live orderd running on that node's data dir.
our_pid() {
  local dir pid
  dir="$(node_dir "$1")"
  [[ -f "$dir/orderd.pid" ]] || return 1
  pid="$(tr -dc '0-9' <"$dir/orderd.pid")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must be orderd with our data dir (exact argument).
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$dir/data" || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1 | grep -q 'orderd$' || return 1
  printf '%s' "$pid"
}

running_ids() {
  local id
  for id in $(known_ids); do
    our_pid "$id" >/dev/null && printf '%s\n' "$id"
  done
  return 0
}

port_busy() { # something accepts TCP on 127.0.0.1:$1
  timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

admin_token() {
  if [[ -n "${ORDERMESH_ADMIN_TOKEN:-}" ]]; then
    printf '%s' "$ORDERMESH_ADMIN_TOKEN"
  elif [[ -s "$TOKEN_FILE" ]]; then
    tr -d ' \n' <"$TOKEN_FILE"
  else
    die "no admin token: $TOKEN_FILE is missing (start the cluster with 'up') and" \
      "ORDERMESH_ADMIN_TOKEN is not set"
  fi
}

ensure_token() {
  mkdir -p "$CDIR"
  local token
  if [[ -n "${ORDERMESH_ADMIN_TOKEN:-}" ]]; then
    token="$ORDERMESH_ADMIN_TOKEN"
  elif [[ -s "$TOKEN_FILE" ]]; then
    token="$(tr -d ' \n' <"$TOKEN_FILE")"
  else
    token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  fi
  ((${#token} >= 16)) || die "the admin token must be at least 16 characters"
  (umask 077 && printf '%s\n' "$token" >"$TOKEN_FILE")
}

ensure_binaries() {
  local i
  # In a configured build tree a missing binary may just be being relinked: give it a moment
  # before building.
  for ((i = 0; i < 10; i++)); do
    [[ -x "$ORDERD" && -x "$ORDERCTL" ]] || [[ ! -f "$BUILD_DIR/build.ninja" ]] && break
    sleep 0.5
  done
  if [[ ! -x "$ORDERD" || ! -x "$ORDERCTL" ]]; then
    say "binaries missing in $BUILD_DIR: running scripts/setup.sh"
    bash scripts/setup.sh
  fi
  [[ -x "$ORDERD" ]] || die "$ORDERD not built"
  [[ -x "$ORDERCTL" ]] || die "$ORDERCTL not built"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed (scripts/setup.sh installs it)"
}

ctl() { "$ORDERCTL" --host "$HOST" "$@"; }

# cluster.status (raw JSON line) from node $1, or nothing.
status_json() {
  ctl --port "$(client_port "$1")" --timeout-ms 2000 --connect-timeout-ms 500 --json \
    cluster.status 2>/dev/null || true
}

# Prints the tail of node $1's logs.
show_logs() {
  local dir
  dir="$(node_dir "$1")"
  say "last lines of $1's logs:"
  tail -n 15 "$dir/orderd.stderr.log" "$dir/orderd.log" 2>/dev/null | sed 's/^/    /' || true
}

# Starts node $1 with the command line stored in its args file (one argument per line).
launch() {
  local id="$1" dir pid port
  dir="$(node_dir "$id")"
  for port in "$(client_port "$id")" "$(cluster_port "$id")"; do
    port_busy "$port" && die "port $port (for $id) is already in use by another process"
  done
  local args=()
  mapfile -t args <"$dir/args"
  # The token goes by environment, not argv, so it does not show in ps.
  ORDERMESH_ADMIN_TOKEN="$(admin_token)" nohup setsid "$ORDERD" "${args[@]}" \
    </dev/null >>"$dir/orderd.stderr.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/orderd.pid"
  rm -f "$dir/left"
  say "$id: started orderd pid $pid (client $HOST:$(client_port "$id"), cluster" \
    "$HOST:$(cluster_port "$id"))"
}

# Writes the args file of a new node $1 joining through seeds $2 ("" for none).
write_args() {
  local id="$1" seeds="$2" dir
  dir="$(node_dir "$id")"
  mkdir -p "$dir/data"
  {
    printf '%s\n' --node-id "$id" --data-dir "$dir/data" --client-host "$HOST" \
      --client-port "$(client_port "$id")" --cluster-host "$HOST" \
      --cluster-port "$(cluster_port "$id")" --log-file "$dir/orderd.log" --log-level info
    [[ -n "$seeds" ]] && printf '%s\n' --seeds "$seeds"
    # shellcheck disable=SC2086
    [[ -n "${ORDERMESH_CLUSTER_ARGS:-}" ]] && printf '%s\n' ${ORDERMESH_CLUSTER_ARGS}
    true
  } >"$dir/args"
}

# Waits until node $1 answers cluster.status (bounded by $2 seconds); 1 if it exits or times out.
wait_answers() {
  local id="$1" limit="$2" t0=$SECONDS pid
  pid="$(tr -dc '0-9' <"$(node_dir "$id")/orderd.pid")"
  while ((SECONDS - t0 < limit)); do
    # kill -0, not our_pid: right after the fork the process may not have exec'd orderd yet.
    kill -0 "$pid" 2>/dev/null || { say "$id exited while starting"; show_logs "$id"; return 1; }
    [[ -n "$(status_json "$id")" ]] && return 0
    sleep 0.2
  done
  say "$id did not answer within ${limit}s"
  show_logs "$id"
  return 1
}

# Checks a cluster.status reply on stdin against the expected up members ($1: "n1 n2 ..."):
# prints "ok <summary>" when they are all up and own every shard with none above ceil(S/N),
# else "wait <reason>".
BALANCE_PY='
import json, sys
want = sys.argv[1].split()
try:
    st = json.loads(sys.stdin.read())["result"]
except Exception as e:
    print("wait no status"); sys.exit(0)
S = st.get("shard_count", 64)
cap = -(-S // max(1, len(want)))
members = {m["node_id"]: m for m in st.get("members", [])}
missing = [w for w in want if members.get(w, {}).get("state") != "up"]
if missing:
    print("wait not up yet: " + " ".join(missing)); sys.exit(0)
owners = {}
for s in st.get("shards", []):
    owners[s.get("owner")] = owners.get(s.get("owner"), 0) + 1
others = {o: n for o, n in owners.items() if o not in want and n}
if others:
    print("wait shards still owned by nodes not running here: %s" % others); sys.exit(0)
over = {w: owners.get(w, 0) for w in want if owners.get(w, 0) > cap}
counts = " ".join("%s=%d" % (w, owners.get(w, 0)) for w in want)
if over or sum(owners.get(w, 0) for w in want) != S:
    print("wait shards %s (at most %d each)" % (counts, cap)); sys.exit(0)
print("ok view %s, coordinator %s, shards %s" % (st.get("view_version"), st.get("coordinator"), counts))
'

# Waits (bounded) until every running node answers and the map is balanced over them.
wait_balanced() {
  local ids=("$@") t0=$SECONDS verdict="" id last=""
  say "waiting (up to ${WAIT_S}s) for ${ids[*]} to be up and the shards balanced"
  while ((SECONDS - t0 < WAIT_S)); do
    verdict=""
    for id in "${ids[@]}"; do
      our_pid "$id" >/dev/null || die "$id is no longer running (see $(node_dir "$id")/orderd.log)"
      local js
      js="$(status_json "$id")"
      if [[ -z "$js" ]]; then
        verdict="wait $id does not answer"
        break
      fi
      verdict="$(python3 -c "$BALANCE_PY" "${ids[*]}" <<<"$js")"
      [[ "$verdict" == ok* ]] || { verdict="$verdict (as $id sees it)"; break; }
    done
    if [[ "$verdict" == ok* ]]; then
      say "balanced after $((SECONDS - t0))s: ${verdict#ok }"
      return 0
    fi
    if [[ "$verdict" != "$last" ]]; then
      say "  ${verdict#wait }"
      last="$verdict"
    fi
    sleep 0.5
  done
  say "not balanced within ${WAIT_S}s: ${verdict#wait }"
  return 1
}

stop_pid() { # $1 id, $2 pid: SIGTERM, wait up to $3 s, then SIGKILL
  local id="$1" pid="$2" limit="${3:-20}" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$id: still alive after ${limit}s, SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$(node_dir "$id")/orderd.pid"
}

# ---- commands ------------------------------------------------------------------------------

cmd_up() {
  local n="${1:-}" fresh="${2:-}"
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "usage: cluster.sh up N [--fresh] (N in 1..$MAX_NODES)"
  [[ -z "$fresh" || "$fresh" == --fresh ]] || die "unknown option '$fresh' (up N [--fresh])"
  local running
  running="$(running_ids | tr '\n' ' ')"
  [[ -z "$running" ]] || die "already running: $running(use 'down' first, or 'add')"
  ensure_binaries
  if [[ -n "$fresh" && -d "$CDIR" ]]; then
    say "--fresh: deleting the data of $(known_ids | tr '\n' ' ')"
    local id
    for id in $(known_ids); do rm -rf "$(node_dir "$id")"; done
  fi
  # Nodes beyond N that have data and did not leave are members of the stored cluster: their
  # shards would stay unreachable and the map could never balance over n1..nN.
  local extra=() id
  for id in $(known_ids); do
    (($(node_num "$id") > n)) && [[ ! -f "$(node_dir "$id")/left" ]] && extra+=("$id")
  done
  if ((${#extra[@]})); then
    printf 'cluster: error: %s has data of %s, members of the stored cluster; use "up %s",\n' \
      "$CDIR" "${extra[*]}" "$(node_num "${extra[-1]}")" >&2
    printf '               or "up %s --fresh" to start over (deletes the data)\n' "$n" >&2
    exit 4
  fi
  ensure_token
  local ids=() i
  for ((i = 1; i <= n; i++)); do ids+=("n$i"); done
  for id in "${ids[@]}"; do
    if [[ ! -f "$(node_dir "$id")/args" ]]; then
      if [[ "$id" == n1 ]]; then write_args n1 ""; else write_args "$id" "$HOST:$(cluster_port n1)"; fi
    fi
  done
  local port
  for id in "${ids[@]}"; do
    for port in "$(client_port "$id")" "$(cluster_port "$id")"; do
      port_busy "$port" && die "port $port (for $id) is already in use by another process" \
        "(set ORDERMESH_CLUSTER_PORT_BASE to use other ports)"
    done
  done
  launch n1
  wait_answers n1 30 || { cmd_down >/dev/null; die "n1 did not start"; }
  for id in "${ids[@]:1}"; do launch "$id"; done
  for id in "${ids[@]:1}"; do
    wait_answers "$id" 45 || { cmd_down >/dev/null; die "$id did not start"; }
  done
  wait_balanced "${ids[@]}" || die "the cluster is running but not balanced (see 'status')"
}

cmd_add() {
  ensure_binaries
  local running=() id
  mapfile -t running < <(running_ids)
  ((${#running[@]})) || die "no node is running: use 'up N' first"
  local last=0
  for id in $(known_ids); do
    (($(node_num "$id") > last)) && last=$(node_num "$id")
  done
  ((last < MAX_NODES)) || die "no free node id"
  id="n$((last + 1))"
  local seeds=""
  for i in "${running[@]}"; do seeds+="${seeds:+,}$HOST:$(cluster_port "$i")"; done
  write_args "$id" "$seeds"
  launch "$id"
  wait_answers "$id" 45 || die "$id did not join (see $(node_dir "$id")/orderd.log)"
  wait_balanced "${running[@]}" "$id" || die "$id joined but the shards are not balanced"
}

cmd_leave() {
  local id="${1:-}"
  [[ -n "$id" ]] || die "usage: cluster.sh leave ID"
  node_num "$id" >/dev/null
  ensure_binaries
  local pid
  pid="$(our_pid "$id")" || die "$id is not running (not ours, or no pid file)"
  # Ask through another live node if there is one (the leaving node answers too).
  local via="$id" other
  for other in $(running_ids); do [[ "$other" != "$id" ]] && via="$other" && break; done
  say "$id leaves (asking $via): it hands off its shards, then exits"
  ctl --port "$(client_port "$via")" --token "$(admin_token)" --timeout-ms 15000 \
    call cluster.leave "{\"node_id\":\"$id\"}" || die "cluster.leave $id failed"
  local t0=$SECONDS limit=$((WAIT_S + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - t0 >= limit)); then
      say "$id (pid $pid) did not exit within ${limit}s; it keeps running (kill it with 'kill $id')"
      show_logs "$id"
      exit 1
    fi
    sleep 0.2
  done
  rm -f "$(node_dir "$id")/orderd.pid"
  touch "$(node_dir "$id")/left"
  say "$id left and exited after $((SECONDS - t0))s"
  grep -E 'exit|stopped|left' "$(node_dir "$id")/orderd.log" 2>/dev/null | tail -n 2 | sed 's/^/    /'
}

cmd_kill() {
  local id="${1:-}"
  [[ -n "$id" ]] || die "usage: cluster.sh kill ID"
  node_num "$id" >/dev/null
  local pid i
  pid="$(our_pid "$id")" || die "$id is not running (not ours, or no pid file)"
  kill -KILL "$pid"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$(node_dir "$id")/orderd.pid"
  say "$id: killed pid $pid (SIGKILL)"
}

cmd_restart() {
  local id="${1:-}"
  [[ -n "$id" ]] || die "usage: cluster.sh restart ID"
  node_num "$id" >/dev/null
  ensure_binaries
  [[ -f "$(node_dir "$id")/args" ]] || die "$id was never started here (no $(node_dir "$id")/args)"
  [[ -f "$(node_dir "$id")/left" ]] && say "warning: $id left the cluster earlier"
  local pid
  if pid="$(our_pid "$id")"; then
    say "$id is running (pid $pid): stopping it first (SIGTERM)"
    stop_pid "$id" "$pid" 20
  fi
  ensure_token
  launch "$id"
  wait_answers "$id" 45 || die "$id did not come back"
  say "$id answers again"
}

cmd_status() {
  ensure_binaries
  local id pid any="" live=()
  for id in $(known_ids); do
    any=1
    if pid="$(our_pid "$id")"; then
      live+=("$id")
      say "$id: running, pid $pid, client $HOST:$(client_port "$id")"
    elif [[ -f "$(node_dir "$id")/left" ]]; then
      say "$id: left the cluster (not running)"
    else
      say "$id: not running"
    fi
  done
  [[ -n "$any" ]] || { say "no cluster in $CDIR (use 'up N')"; return 1; }
  ((${#live[@]})) || { say "no node is running"; return 1; }
  for id in "${live[@]}"; do
    echo
    if ctl --port "$(client_port "$id")" --timeout-ms 2000 --connect-timeout-ms 500 \
      cluster-status 2>/dev/null; then
      return 0
    fi
    say "$id does not answer; trying the next node"
  done
  say "no running node answered"
  return 1
}

cmd_down() {
  local id pid pids=() stopped=()
  for id in $(known_ids); do
    if pid="$(our_pid "$id")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      stopped+=("$id")
    fi
  done
  if ((${#pids[@]} == 0)); then
    say "no node of ours is running"
    return 0
  fi
  say "SIGTERM to ${stopped[*]} (pids ${pids[*]})"
  local i alive
  for ((i = 0; i < 200; i++)); do  # 20 s
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    ((${#alive[@]})) || break
    sleep 0.1
  done
  if ((${#alive[@]})); then
    say "still alive after 20 s, SIGKILL to pids ${alive[*]}"
    kill -KILL "${alive[@]}" 2>/dev/null || true
    sleep 0.2
  fi
  for id in "${stopped[@]}"; do rm -f "$(node_dir "$id")/orderd.pid"; done
  say "stopped"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) cmd_up "$@" ;;
  add) cmd_add ;;
  leave) cmd_leave "$@" ;;
  kill) cmd_kill "$@" ;;
  restart) cmd_restart "$@" ;;
  status) cmd_status ;;
  down) cmd_down ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) printf 'cluster: error: unknown command %s\n' "$cmd" >&2; usage >&2; exit 2 ;;
esac
