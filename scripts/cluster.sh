#!/usr/bin/env bash
# A local ordermesh cluster on 127.0.0.1, coordinated through etcd: one etcd (client port 7379,
# peer port 7380, data, log and pid file under var/cluster/etcd/), then nodes n1..nN (client ports
# 7401.., cluster ports 7501..), each with its data, logs, pid file and command line under
# var/cluster/<id>/. Nodes find each other in etcd (orderd --etcd, no --seeds): membership, the
# controller and the shard map live there. Node-to-node traffic runs mutual TLS: the cluster CA
# and one certificate per node are made by scripts/gen-certs.sh under var/cluster/certs/ (the CA
# once; a node's certificate when it first starts), and every node gets --tls-cert/--tls-key/
# --tls-ca (ORDERMESH_CLUSTER_ARGS="--insecure-cluster" for plain BASP, with a warning).
#
#   scripts/cluster.sh up N [--fresh]  start etcd (unless ORDERMESH_ETCD is set) and wait until it
#                                      answers, then n1..nN; wait until every node answers and the
#                                      shard map is balanced (no move pending, leads differ by at
#                                      most one). --fresh: delete the cluster's data first (nodes,
#                                      our etcd's data, or the cluster's keys in ORDERMESH_ETCD).
#                                      A new cluster keeps 3 copies of each shard (orderd's
#                                      default); with N < 3, N copies.
#   scripts/cluster.sh add             start the next id; it joins through etcd and gets its share
#   scripts/cluster.sh leave ID        cluster.leave: ID hands off its shards and exits; wait for it
#   scripts/cluster.sh kill ID         kill -9 of ID (our orderd on var/cluster/ID/data only)
#   scripts/cluster.sh restart ID      start ID again with the flags it was started with
#   scripts/cluster.sh status          etcd, our processes, the controller, then
#                                      `orderctl cluster-status` from a live node
#   scripts/cluster.sh down            SIGTERM every node we started (SIGKILL after 20 s), then
#                                      our etcd the same way
#   scripts/cluster.sh etcd-kill       kill -9 of our etcd (the nodes keep serving within their
#                                      leases, then answer `unavailable` until it is back)
#   scripts/cluster.sh etcd-restart    start our etcd again on the same data dir and ports
#   scripts/cluster.sh etcd-status     our etcd's process, health, and the cluster's keys in it
#
# Environment: ORDERMESH_ETCD=http://host:port,... uses that etcd instead: cluster.sh then never
# starts or stops an etcd of its own (set it for every cluster.sh command of that cluster;
# etcd-kill and etcd-restart refuse). ORDERMESH_ETCD_PORT (7379: our etcd's client port, its peer
# port is the next one), ORDERMESH_CLUSTER_NAME (orderd --cluster "default": keys under
# /ordermesh/NAME/), ORDERMESH_ADMIN_TOKEN (else generated once into var/cluster/admin.token),
# ORDERMESH_BUILD_DIR (build), ORDERMESH_CLUSTER_DIR (var/cluster),
# ORDERMESH_CLUSTER_PORT_BASE (7400: nK gets client port base+K, cluster port base+100+K and
# the HTTP admin port, /status /metrics /readyz on 127.0.0.1, base+200+K),
# ORDERMESH_CLUSTER_ARGS (extra orderd flags for new nodes, e.g. "--lease-ttl 5s"),
# ORDERMESH_CLUSTER_WAIT (seconds `up`/`add` wait for balance, default 120).
# scripts/setup.sh runs first only when a binary (orderd, orderctl, etcd, etcdctl) is missing.
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
CERT_DIR="$CDIR/certs"
PORT_BASE="${ORDERMESH_CLUSTER_PORT_BASE:-7400}"
WAIT_S="${ORDERMESH_CLUSTER_WAIT:-120}"
HOST=127.0.0.1
MAX_NODES=99

# etcd: ours (started and stopped here) unless ORDERMESH_ETCD names one.
EXTERNAL_ETCD="${ORDERMESH_ETCD:-}"
ETCD_PORT="${ORDERMESH_ETCD_PORT:-7379}"
ETCD_DIR="$CDIR/etcd"
ETCD_WAIT_S=20
CLUSTER_NAME="${ORDERMESH_CLUSTER_NAME:-default}"

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; }

# shellcheck disable=SC2015
[[ "$PORT_BASE" =~ ^[0-9]+$ ]] && ((PORT_BASE >= 1024 && PORT_BASE + 100 + MAX_NODES <= 65535)) ||
  die "ORDERMESH_CLUSTER_PORT_BASE must be an integer in 1024..65336"
[[ "$WAIT_S" =~ ^[0-9]+$ ]] || die "ORDERMESH_CLUSTER_WAIT must be a number of seconds"
# shellcheck disable=SC2015
[[ "$ETCD_PORT" =~ ^[0-9]+$ ]] && ((ETCD_PORT >= 1024 && ETCD_PORT < 65535)) ||
  die "ORDERMESH_ETCD_PORT must be an integer in 1024..65534"
[[ "$CLUSTER_NAME" =~ ^[A-Za-z0-9._-]{1,128}$ ]] ||
  die "ORDERMESH_CLUSTER_NAME must be 1..128 of letters, digits, '.', '_', '-'"
if [[ -n "$EXTERNAL_ETCD" ]]; then
  [[ "$EXTERNAL_ETCD" =~ ^https?://[^,/[:space:]]+(,https?://[^,/[:space:]]+)*$ ]] ||
    die "ORDERMESH_ETCD must be http://host:port[,http://host:port...], got '$EXTERNAL_ETCD'"
  ETCD_ENDPOINTS="$EXTERNAL_ETCD"
else
  ETCD_ENDPOINTS="http://$HOST:$ETCD_PORT"
fi
ETCD_PEER_PORT=$((ETCD_PORT + 1))
KEY_PREFIX="/ordermesh/$CLUSTER_NAME/"
# Which etcd and cluster name the nodes' data belongs to ("ENDPOINTS NAME"), written by `up`.
COORD_FILE="$CDIR/coordination"

# ---- node bookkeeping ----------------------------------------------------------------------

node_num() { # "n3" -> 3; dies on anything else
  [[ "$1" =~ ^n([1-9][0-9]?)$ ]] || die "node ids are n1..n$MAX_NODES, got '$1'"
  printf '%s' "${BASH_REMATCH[1]}"
}
client_port() { printf '%s' $((PORT_BASE + $(node_num "$1"))); }
cluster_port() { printf '%s' $((PORT_BASE + 100 + $(node_num "$1"))); }
admin_port() { printf '%s' $((PORT_BASE + 200 + $(node_num "$1"))); }
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

# True when /proc/$1 runs program $2 (basename of argv[0]) with the exact argument $3.
pid_runs() {
  local pid="$1" prog="$2" arg="$3"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$arg" || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1 | grep -q "$prog\$" || return 1
}

# The pid of node $1 if its pid file names a live orderd running on that node's data dir.
our_pid() {
  local dir pid
  dir="$(node_dir "$1")"
  [[ -f "$dir/orderd.pid" ]] || return 1
  pid="$(tr -dc '0-9' <"$dir/orderd.pid")"
  # Guard against a recycled pid: it must be orderd with our data dir (exact argument).
  pid_runs "$pid" orderd "$dir/data" || return 1
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
  if [[ ! -x "$ORDERD" || ! -x "$ORDERCTL" ]] || ! command -v etcdctl >/dev/null 2>&1 ||
    { [[ -z "$EXTERNAL_ETCD" ]] && ! command -v etcd >/dev/null 2>&1; }; then
    say "orderd, orderctl, etcd or etcdctl missing: running scripts/setup.sh"
    bash scripts/setup.sh
  fi
  [[ -x "$ORDERD" ]] || die "$ORDERD not built"
  [[ -x "$ORDERCTL" ]] || die "$ORDERCTL not built"
  command -v etcdctl >/dev/null 2>&1 || die "etcdctl is needed (Debian package etcd-client)"
  [[ -n "$EXTERNAL_ETCD" ]] || command -v etcd >/dev/null 2>&1 ||
    die "etcd is needed (Debian package etcd-server), or set ORDERMESH_ETCD"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed (scripts/setup.sh installs it)"
}

ctl() { "$ORDERCTL" --host "$HOST" "$@"; }

# cluster.status (raw JSON line) from node $1, or nothing (orderctl prints an error answer too,
# e.g. when it cannot connect, but then exits non-zero).
status_json() {
  local out
  out="$(ctl --port "$(client_port "$1")" --timeout-ms 2000 --connect-timeout-ms 500 --json \
    cluster.status 2>/dev/null)" || return 0
  printf '%s\n' "$out"
}

# Prints the tail of node $1's logs.
show_logs() {
  local dir
  dir="$(node_dir "$1")"
  say "last lines of $1's logs:"
  tail -n 15 "$dir/orderd.stderr.log" "$dir/orderd.log" 2>/dev/null | sed 's/^/    /' || true
}

# ---- etcd ------------------------------------------------------------------------------------

ectl() { # etcdctl against the cluster's etcd, each call bounded
  ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --dial-timeout 1s --command-timeout 3s "$@"
}

# True when etcd serves a linearizable read (a leader and a quorum), through any endpoint.
etcd_reachable() {
  timeout 6 env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --dial-timeout 1s \
    --command-timeout 3s get --limit 1 --keys-only "$KEY_PREFIX" >/dev/null 2>&1
}

# The pid of our etcd if its pid file names a live etcd on our data dir.
etcd_pid() {
  local pid
  [[ -f "$ETCD_DIR/etcd.pid" ]] || return 1
  pid="$(tr -dc '0-9' <"$ETCD_DIR/etcd.pid")"
  pid_runs "$pid" etcd "$ETCD_DIR/data" || return 1
  printf '%s' "$pid"
}

# Waits (bounded by $1 seconds) until etcd answers; with $2 (a pid) gives up when it exits.
etcd_wait() {
  local limit="$1" pid="${2:-}" t0=$SECONDS
  while ((SECONDS - t0 < limit)); do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      say "etcd (pid $pid) exited while starting; last lines of $ETCD_DIR/etcd.log:"
      tail -n 15 "$ETCD_DIR/etcd.log" 2>/dev/null | sed 's/^/    /' || true
      return 1
    fi
    etcd_reachable && return 0
    sleep 0.3
  done
  say "etcd at $ETCD_ENDPOINTS did not answer within ${limit}s"
  [[ -n "$pid" ]] && tail -n 15 "$ETCD_DIR/etcd.log" 2>/dev/null | sed 's/^/    /'
  return 1
}

# Starts our etcd (one member, loopback, default timings) on $ETCD_DIR/data and waits for it.
etcd_launch() {
  local pid port etcd_bin
  etcd_bin="$(command -v etcd)"
  for port in "$ETCD_PORT" "$ETCD_PEER_PORT"; do
    port_busy "$port" && die "port $port (for etcd) is already in use by another process; to use" \
      "an etcd that runs already, set ORDERMESH_ETCD=http://$HOST:$ETCD_PORT, else pick other" \
      "ports with ORDERMESH_ETCD_PORT"
  done
  mkdir -p "$ETCD_DIR"
  local client_url="http://$HOST:$ETCD_PORT" peer_url="http://$HOST:$ETCD_PEER_PORT"
  local args=(--name ordermesh --data-dir "$ETCD_DIR/data"
    --listen-client-urls "$client_url" --advertise-client-urls "$client_url"
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url"
    --initial-cluster "ordermesh=$peer_url" --initial-cluster-state new
    --initial-cluster-token ordermesh-local --logger zap --log-outputs stderr)
  printf '%s\n' "$etcd_bin" "${args[@]}" >"$ETCD_DIR/args"
  nohup setsid "$etcd_bin" "${args[@]}" </dev/null >>"$ETCD_DIR/etcd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$ETCD_DIR/etcd.pid"
  say "etcd: started pid $pid (client $client_url, peer $peer_url, data $ETCD_DIR/data)"
  if ! etcd_wait "$ETCD_WAIT_S" "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$ETCD_DIR/etcd.pid"
    die "etcd did not come up (see $ETCD_DIR/etcd.log)"
  fi
  say "etcd: answers at $client_url"
}

# Stops our etcd: SIGTERM, up to $1 s, then SIGKILL. Nothing when it is not running.
etcd_stop() {
  local limit="${1:-10}" pid i
  pid="$(etcd_pid)" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "etcd: still alive after ${limit}s, SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$ETCD_DIR/etcd.pid"
  say "etcd: stopped pid $pid"
}

# Makes sure the cluster's etcd answers: ours is started when it is not running; an external
# one (ORDERMESH_ETCD) is only waited for. ETCD_STARTED_HERE=1 when this call started ours.
ETCD_STARTED_HERE=0
ensure_etcd() {
  if [[ -n "$EXTERNAL_ETCD" ]]; then
    etcd_wait "$ETCD_WAIT_S" || die "ORDERMESH_ETCD=$EXTERNAL_ETCD does not answer"
    say "etcd: using ORDERMESH_ETCD=$EXTERNAL_ETCD (not started or stopped here)"
    return 0
  fi
  local pid
  if pid="$(etcd_pid)"; then
    etcd_wait "$ETCD_WAIT_S" "$pid" || die "our etcd (pid $pid) does not answer"
    say "etcd: running, pid $pid, $ETCD_ENDPOINTS"
    return 0
  fi
  etcd_launch
  ETCD_STARTED_HERE=1
}

# One line on the cluster's etcd; returns 1 when it does not answer.
etcd_line() {
  local pid
  if [[ -n "$EXTERNAL_ETCD" ]]; then
    if etcd_reachable; then
      say "etcd: ORDERMESH_ETCD=$EXTERNAL_ETCD, answers"
    else
      say "etcd: ORDERMESH_ETCD=$EXTERNAL_ETCD, does NOT answer"
      return 1
    fi
  elif pid="$(etcd_pid)"; then
    if etcd_reachable; then
      say "etcd: running, pid $pid, $ETCD_ENDPOINTS, answers (data $ETCD_DIR/data)"
    else
      say "etcd: running, pid $pid, $ETCD_ENDPOINTS, does NOT answer (see $ETCD_DIR/etcd.log)"
      return 1
    fi
  else
    say "etcd: not running (ours on $ETCD_ENDPOINTS; 'up N' or 'etcd-restart' starts it)"
    return 1
  fi
}

# Whether etcd holds this cluster (its config key exists). 2 when etcd does not answer.
etcd_has_cluster() {
  local out
  out="$(ectl get --keys-only "${KEY_PREFIX}config" 2>/dev/null)" || return 2
  [[ -n "$out" ]]
}

# The --etcd of a running node's command line (the first found), or nothing.
running_etcd() {
  local id
  for id in $(running_ids); do
    awk 'prev == "--etcd" { print; exit } { prev = $0 }' "$(node_dir "$id")/args" 2>/dev/null
    return 0
  done
}

# Dies when running nodes use another etcd than this call would give a new node.
check_same_etcd() {
  local theirs
  theirs="$(running_etcd)"
  [[ -z "$theirs" || "$theirs" == "$ETCD_ENDPOINTS" ]] && return 0
  if [[ -n "$EXTERNAL_ETCD" ]]; then
    die "the running nodes use etcd $theirs, not ORDERMESH_ETCD=$EXTERNAL_ETCD"
  fi
  die "the running nodes use etcd $theirs: set ORDERMESH_ETCD=$theirs"
}

# ---- nodes -------------------------------------------------------------------------------------

# Starts node $1 with the command line stored in its args file (one argument per line), its
# coordination flags replaced by this cluster's (--etcd, --cluster; an old --seeds goes), and
# its certificate flags (made here if it has none yet) unless it runs --insecure-cluster.
launch() {
  local id="$1" dir pid port
  dir="$(node_dir "$id")"
  for port in "$(client_port "$id")" "$(cluster_port "$id")"; do
    port_busy "$port" && die "port $port (for $id) is already in use by another process"
  done
  local stored=() args=() a skip=0
  mapfile -t stored <"$dir/args"
  for a in "${stored[@]}"; do
    if ((skip)); then skip=0; continue; fi
    case "$a" in
      --seeds | --etcd | --cluster | --tls-cert | --tls-key | --tls-ca) skip=1 ;;
      --seeds=* | --etcd=* | --cluster=* | --tls-*=*) ;;
      *) args+=("$a") ;;
    esac
  done
  args+=(--etcd "$ETCD_ENDPOINTS" --cluster "$CLUSTER_NAME")
  if [[ " ${args[*]} " != *" --insecure-cluster "* ]]; then
    if [[ ! -f "$CERT_DIR/$id.pem" || ! -f "$CERT_DIR/$id.key" ]]; then
      bash "$ROOT/scripts/gen-certs.sh" "$CERT_DIR" "$id" >/dev/null ||
        die "could not make the certificate of $id in $CERT_DIR"
    fi
    args+=(--tls-cert "$CERT_DIR/$id.pem" --tls-key "$CERT_DIR/$id.key" --tls-ca "$CERT_DIR/ca.pem")
  fi
  printf '%s\n' "${args[@]}" >"$dir/args"
  # The token goes by environment, not argv, so it does not show in ps.
  ORDERMESH_ADMIN_TOKEN="$(admin_token)" nohup setsid "$ORDERD" "${args[@]}" \
    </dev/null >>"$dir/orderd.stderr.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/orderd.pid"
  rm -f "$dir/left"
  say "$id: started orderd pid $pid (client $HOST:$(client_port "$id"), cluster" \
    "$HOST:$(cluster_port "$id"), status http://$HOST:$(admin_port "$id")/status," \
    "etcd $ETCD_ENDPOINTS)"
}

# Writes the args file of a new node $1 (launch adds --etcd and --cluster).
write_args() {
  local id="$1" dir
  dir="$(node_dir "$id")"
  mkdir -p "$dir/data"
  {
    printf '%s\n' --node-id "$id" --data-dir "$dir/data" --client-host "$HOST" \
      --client-port "$(client_port "$id")" --cluster-host "$HOST" \
      --cluster-port "$(cluster_port "$id")" --admin-port "$(admin_port "$id")" \
      --log-file "$dir/orderd.log" --log-level info
    # shellcheck disable=SC2086
    [[ -n "${ORDERMESH_CLUSTER_ARGS:-}" ]] && printf '%s\n' ${ORDERMESH_CLUSTER_ARGS}
    # A cluster's default replication factor is 3 (it starts once three members joined): "up 1"
    # and "up 2" make one of that many copies instead. It is fixed when the cluster is created.
    [[ -n "${UP_RF:-}" && " ${ORDERMESH_CLUSTER_ARGS:-} " != *" --replication-factor "* ]] &&
      printf '%s\n' --replication-factor "$UP_RF"
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
# prints "ok <summary>" when the node coordinates through etcd, they are all up members, a
# controller is elected, no move is pending, they lead every shard and their leads differ by at
# most one (what the controller's placement aims at, so each leads some); else "wait <reason>".
BALANCE_PY='
import json, sys
want = sys.argv[1].split()
try:
    st = json.loads(sys.stdin.read())["result"]
except Exception as e:
    print("wait no status"); sys.exit(0)
if st.get("coordination") != "etcd":
    print("wait coordination is %r, not etcd" % st.get("coordination")); sys.exit(0)
members = {m["node_id"]: m for m in st.get("members", [])}
missing = [w for w in want if members.get(w, {}).get("state") != "up"]
if missing:
    print("wait not up members yet: " + " ".join(missing)); sys.exit(0)
if not st.get("controller"):
    print("wait no controller yet"); sys.exit(0)
shards = st.get("shards", [])
S = st.get("shard_count", len(shards))
if not shards or len(shards) != S:
    print("wait no shard map yet"); sys.exit(0)
pending = [s["shard"] for s in shards if s.get("target")]
leads = {}
for s in shards:
    p = s.get("primary", s.get("owner"))
    leads[p] = leads.get(p, 0) + 1
counts = " ".join("%s=%d" % (w, leads.get(w, 0)) for w in want)
if pending:
    print("wait %d move(s) pending, leads %s" % (len(pending), counts)); sys.exit(0)
others = {o: n for o, n in leads.items() if o not in want}
if others:
    print("wait shards still led by nodes not running here: %s" % others); sys.exit(0)
lo, hi = min(leads.get(w, 0) for w in want), max(leads.get(w, 0) for w in want)
if hi - lo > 1:
    print("wait leads %s" % counts); sys.exit(0)
print("ok controller %s, %d shards led %s, no move pending" % (st.get("controller"), S, counts))
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
  local id
  if [[ -n "$fresh" && -d "$CDIR" ]]; then
    say "--fresh: deleting the data of $(known_ids | paste -sd ' ')"
    for id in $(known_ids); do rm -rf "$(node_dir "$id")"; done
    rm -f "$COORD_FILE"
    if [[ -z "$EXTERNAL_ETCD" ]]; then
      etcd_stop
      say "--fresh: deleting our etcd's data ($ETCD_DIR)"
      rm -rf "$ETCD_DIR"
    fi
  fi
  # Nodes beyond N that have data and did not leave are members of the stored cluster: their
  # shards would stay unreachable and the map could never balance over n1..nN.
  local extra=()
  for id in $(known_ids); do
    (($(node_num "$id") > n)) && [[ ! -f "$(node_dir "$id")/left" ]] && extra+=("$id")
  done
  if ((${#extra[@]})); then
    printf 'cluster: error: %s has data of %s, members of the stored cluster; use "up %s",\n' \
      "$CDIR" "${extra[*]}" "$(node_num "${extra[-1]}")" >&2
    printf '               or "up %s --fresh" to start over (deletes the data)\n' "$n" >&2
    exit 4
  fi
  # The nodes' data dirs and etcd's keys belong together: a data dir remembers the cluster id
  # stored in etcd (orderd refuses another), and etcd's shard map says which node holds what.
  # First: the etcd and cluster name the data was made with ($COORD_FILE).
  local with_data=() made_with=""
  for id in $(known_ids); do
    [[ -f "$(node_dir "$id")/left" ]] && continue
    [[ -n "$(ls -A "$(node_dir "$id")/data" 2>/dev/null)" ]] && with_data+=("$id")
  done
  [[ -f "$COORD_FILE" ]] && made_with="$(head -n1 "$COORD_FILE")"
  if ((${#with_data[@]})) && [[ -n "$made_with" && "$made_with" != "$ETCD_ENDPOINTS $CLUSTER_NAME" ]]; then
    printf 'cluster: error: the data in %s belongs to cluster "%s" in etcd %s;\n' "$CDIR" \
      "${made_with#* }" "${made_with%% *}" >&2
    if [[ "${made_with%% *}" == "http://$HOST:$ETCD_PORT" ]]; then
      printf '               unset ORDERMESH_ETCD to use it again,' >&2
    else
      printf '               set ORDERMESH_ETCD=%s to use it again,' "${made_with%% *}" >&2
    fi
    printf ' or "up %s --fresh" to start over (deletes the data)\n' "$n" >&2
    exit 4
  fi
  ensure_token
  ensure_etcd
  if [[ -n "$fresh" && -n "$EXTERNAL_ETCD" ]]; then
    say "--fresh: deleting the keys under $KEY_PREFIX in ORDERMESH_ETCD"
    ectl del --prefix "$KEY_PREFIX" >/dev/null || die "could not delete $KEY_PREFIX in etcd"
  fi
  # Then: data here and the cluster in etcd, both or neither.
  local in_etcd=0 rc=0
  etcd_has_cluster || rc=$?
  ((rc != 2)) || die "etcd stopped answering"
  ((rc == 0)) && in_etcd=1
  if { ((${#with_data[@]})) && ((in_etcd == 0)); } || { ((${#with_data[@]} == 0)) && ((in_etcd)); }; then
    if ((in_etcd)); then
      printf 'cluster: error: etcd holds cluster "%s" (keys under %s) but no node here has data\n' \
        "$CLUSTER_NAME" "$KEY_PREFIX" >&2
      [[ -z "$EXTERNAL_ETCD" ]] ||
        printf '               (another cluster name: ORDERMESH_CLUSTER_NAME)\n' >&2
    else
      printf 'cluster: error: %s has data of %s but etcd holds no cluster "%s" (data made\n' \
        "$CDIR" "${with_data[*]}" "$CLUSTER_NAME" >&2
      printf '               before etcd coordination, or etcd was wiped)\n' >&2
    fi
    printf '               use "up %s --fresh" to start over (deletes the data)\n' "$n" >&2
    ((ETCD_STARTED_HERE)) && etcd_stop >/dev/null
    exit 4
  fi
  printf '%s %s\n' "$ETCD_ENDPOINTS" "$CLUSTER_NAME" >"$COORD_FILE"
  ((n < 3)) && UP_RF="$n"
  local ids=() i
  for ((i = 1; i <= n; i++)); do ids+=("n$i"); done
  for id in "${ids[@]}"; do
    [[ -f "$(node_dir "$id")/args" ]] || write_args "$id"
  done
  local port
  for id in "${ids[@]}"; do
    for port in "$(client_port "$id")" "$(cluster_port "$id")"; do
      port_busy "$port" && die "port $port (for $id) is already in use by another process" \
        "(set ORDERMESH_CLUSTER_PORT_BASE to use other ports)"
    done
  done
  # All at once: they meet in etcd; the first controller maps the shards over the members
  # present and then moves shards until the map is balanced.
  for id in "${ids[@]}"; do launch "$id"; done
  for id in "${ids[@]}"; do
    wait_answers "$id" 45 || { cmd_down >/dev/null; die "$id did not start"; }
  done
  wait_balanced "${ids[@]}" || die "the cluster is running but not balanced (see 'status')"
}

cmd_add() {
  ensure_binaries
  local running=() id
  mapfile -t running < <(running_ids)
  ((${#running[@]})) || die "no node is running: use 'up N' first"
  check_same_etcd
  etcd_reachable || { etcd_line || true; die "etcd does not answer: a new node cannot join now"; }
  local last=0
  for id in $(known_ids); do
    (($(node_num "$id") > last)) && last=$(node_num "$id")
  done
  ((last < MAX_NODES)) || die "no free node id"
  id="n$((last + 1))"
  write_args "$id"
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
  # The token by environment, not argv (ps shows argv to every local user).
  local token
  token="$(admin_token)"
  if ! ORDERMESH_TOKEN="$token" ctl --port "$(client_port "$via")" --timeout-ms 15000 \
    call cluster.leave "{\"node_id\":\"$id\"}"; then
    [[ "$via" != "$id" ]] || die "cluster.leave $id failed"
    say "asking $id itself"
    ORDERMESH_TOKEN="$token" ctl --port "$(client_port "$id")" --timeout-ms 15000 \
      call cluster.leave "{\"node_id\":\"$id\"}" || die "cluster.leave $id failed"
  fi
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
  check_same_etcd
  etcd_reachable || say "warning: etcd does not answer at $ETCD_ENDPOINTS; $id starts anyway"
  ensure_token
  launch "$id"
  wait_answers "$id" 45 || die "$id did not come back"
  wait_member "$id" 30 || die "$id answers but is not a member again (see $(node_dir "$id")/orderd.log)"
}

# Waits (bounded by $2 seconds) until node $1 is an up member in etcd with a valid lease, as it
# sees itself, connected to every other member.
MEMBER_PY='
import json, sys
me = sys.argv[1]
try:
    st = json.loads(sys.stdin.read())["result"]
except Exception:
    print("no cluster.status"); sys.exit(1)
m = {m["node_id"]: m for m in st.get("members", [])}.get(me)
if st.get("coordination") != "etcd" or not st.get("lease_valid") or not m or m.get("state") != "up":
    print("coordination %s, lease valid %s, member %s" % (st.get("coordination"),
          st.get("lease_valid"), m.get("state") if m else "no")); sys.exit(1)
if st.get("unreachable_from_here"):
    # Up in etcd is not enough to serve: requests for the shards other members lead are
    # forwarded, and answer unavailable until the connections to them are up.
    print("peers not reached yet: %s" % ",".join(st["unreachable_from_here"])); sys.exit(1)
print("up member, incarnation %s, leads %s shards, controller %s" % (m.get("incarnation"),
      m.get("shards_owned"), st.get("controller")))
'
wait_member() {
  local id="$1" limit="$2" t0=$SECONDS line=""
  while ((SECONDS - t0 < limit)); do
    our_pid "$id" >/dev/null || { say "$id exited"; show_logs "$id"; return 1; }
    if line="$(status_json "$id" | python3 -c "$MEMBER_PY" "$id")"; then
      say "$id answers again after $((SECONDS - t0))s: $line"
      return 0
    fi
    sleep 0.3
  done
  say "$id: not an up member within ${limit}s (${line:-no answer})"
  show_logs "$id"
  return 1
}

# The controller and members as node $1 sees them (from cluster.status), one line.
CONTROLLER_PY='
import json, sys
try:
    st = json.loads(sys.stdin.read())["result"]
except Exception:
    sys.exit(1)
ms = " ".join("%s(%s, incarnation %s, leads %s)" % (m["node_id"], m.get("state"),
              m.get("incarnation"), m.get("shards_owned")) for m in st.get("members", []))
pend = sum(1 for s in st.get("shards", []) if s.get("target"))
print("controller %s, coordination %s, lease valid %s, moves pending %d; members %s" % (
    st.get("controller") or "(none)", st.get("coordination"), st.get("lease_valid"), pend, ms))
'

cmd_status() {
  ensure_binaries
  etcd_line || true
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
  local js line
  for id in "${live[@]}"; do
    js="$(status_json "$id")"
    [[ -n "$js" ]] || continue
    line="$(python3 -c "$CONTROLLER_PY" <<<"$js")" || continue
    say "as $id sees it: $line"
    break
  done
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
  else
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
    say "nodes stopped"
  fi
  if [[ -n "$EXTERNAL_ETCD" ]]; then
    say "etcd: ORDERMESH_ETCD=$EXTERNAL_ETCD is not ours; left running"
  elif etcd_pid >/dev/null; then
    etcd_stop 10
  else
    say "etcd: ours is not running"
  fi
}

need_own_etcd() {
  [[ -z "$EXTERNAL_ETCD" ]] ||
    die "ORDERMESH_ETCD=$EXTERNAL_ETCD is not ours: cluster.sh does not $1 it"
}

cmd_etcd_kill() {
  need_own_etcd kill
  local pid i
  pid="$(etcd_pid)" || die "our etcd is not running (no live etcd on $ETCD_DIR/data)"
  kill -KILL "$pid"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$ETCD_DIR/etcd.pid"
  say "etcd: killed pid $pid (SIGKILL); nodes serve within their leases, then answer" \
    "'unavailable' until 'etcd-restart'"
}

cmd_etcd_restart() {
  need_own_etcd restart
  command -v etcd >/dev/null 2>&1 || die "etcd is needed (Debian package etcd-server)"
  command -v etcdctl >/dev/null 2>&1 || die "etcdctl is needed (Debian package etcd-client)"
  [[ -d "$ETCD_DIR/data" ]] || say "warning: no etcd data in $ETCD_DIR/data: it starts empty"
  local pid
  if pid="$(etcd_pid)"; then
    say "etcd: running (pid $pid): stopping it first (SIGTERM)"
    etcd_stop 10
  fi
  etcd_launch
}

cmd_etcd_status() {
  command -v etcdctl >/dev/null 2>&1 || die "etcdctl is needed (Debian package etcd-client)"
  local rc=0 pid
  if [[ -z "$EXTERNAL_ETCD" ]]; then
    if pid="$(etcd_pid)"; then
      say "etcd: ours, pid $pid, client $ETCD_ENDPOINTS, peer http://$HOST:$ETCD_PEER_PORT"
      say "      data $ETCD_DIR/data, log $ETCD_DIR/etcd.log"
    else
      say "etcd: ours is not running (client $ETCD_ENDPOINTS; data $ETCD_DIR/data)"
      return 1
    fi
  else
    say "etcd: ORDERMESH_ETCD=$EXTERNAL_ETCD (not ours)"
  fi
  ectl endpoint health 2>&1 | sed 's/^/    /' || rc=1
  ((rc == 0)) || { say "etcd does not answer"; return 1; }
  ectl endpoint status -w table 2>&1 | sed 's/^/    /' || true
  local members controller shards
  members="$(ectl get --prefix --keys-only "${KEY_PREFIX}members/" 2>/dev/null |
    sed -n "s|^${KEY_PREFIX}members/||p" | paste -sd " ")"
  controller="$(ectl get --print-value-only "${KEY_PREFIX}controller" 2>/dev/null)"
  shards="$(ectl get --prefix --keys-only "${KEY_PREFIX}shards/" 2>/dev/null | grep -c . || true)"
  say "cluster \"$CLUSTER_NAME\" in etcd (keys under $KEY_PREFIX):"
  say "    members (live leases): ${members:-(none)}"
  say "    controller: ${controller:-(none)}"
  say "    shard keys: $shards"
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
  etcd-kill) cmd_etcd_kill ;;
  etcd-restart) cmd_etcd_restart ;;
  etcd-status) cmd_etcd_status ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) printf 'cluster: error: unknown command %s\n' "$cmd" >&2; usage >&2; exit 2 ;;
esac
