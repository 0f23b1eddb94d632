#!/usr/bin/env bash
# The chaos suite: scripts/chaos.sh [--scenario NAME|all] [--seed N] [--duration S] [--nodes N]
#   [--out DIR] [--clients N] [--allow-skips] [--etcd-members 1|3] [--replication-factor N]
# Runs chaos/run.py (docs/CHAOS.md). Every scenario runs on a cluster coordinated through an
# etcd the runner starts for it (Debian's /usr/bin/etcd, or env ORDERMESH_ETCD_BIN); there is no
# other mode (`--coordination` is refused). As root it re-executes itself inside private
# network and mount namespaces (unshare -n -m, lo brought up); each node then gets a network
# namespace of its own (10.77.N.2, chaos/netns.py), so every address, veth pair,
# firewall rule and tmpfs lives in namespaces that disappear with it. Without root it runs on
# plain loopback and reports namespace-only scenarios (and those whose tool is missing) as
# skipped. As root (CI) every scenario can run, so one that would be skipped (a missing tool,
# a failed namespace) FAILS instead ("would be skipped as root: <reason>"); --allow-skips keeps
# such skips as skips even as root (a developer's machine). A trap ends every process it
# started (by pid): nodes, namespace holders and the etcd members the runner starts (one etcd
# per scenario; docs/CHAOS.md). Last line:
# `chaos: N passed, M failed[, K skipped]`; exit 1 on any failure.
# With ORDERMESH_REPORT_DIR set, the per-scenario report py-chaos.json is written there
# (py-$ORDERMESH_REPORT_SUITE.json when that is set; ctest: py-chaos_suite.json).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

SCENARIO=all
SEED=""
DURATION=20
NODES=3
CLIENTS=4
OUT=""
ALLOW_SKIPS=()
ETCD_MEMBERS=1
RF=1
usage() {
  sed -n '2,3p' "$0" | sed 's/^# //'
  exit 2
}
while (($#)); do
  case "$1" in
    --scenario) SCENARIO="${2:?}"; shift 2 ;;
    --seed) SEED="${2:?}"; shift 2 ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --nodes) NODES="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --allow-skips) ALLOW_SKIPS=(--allow-skips); shift ;;
    --coordination | --coordination=*)
      echo "chaos.sh: --coordination is gone: chaos always runs on etcd (one etcd per" \
        "scenario, started by the runner; --etcd-members 1|3 picks its size)" >&2
      exit 2 ;;
    --etcd-members) ETCD_MEMBERS="${2:?}"; shift 2 ;;
    --replication-factor) RF="${2:?}"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "chaos.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$SEED" =~ ^[0-9]+$ ]] || SEED="${SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}"
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "chaos.sh: --seed must be an integer" >&2; exit 2; }
[[ "$ETCD_MEMBERS" == 1 || "$ETCD_MEMBERS" == 3 ]] ||
  { echo "chaos.sh: --etcd-members must be 1 or 3" >&2; exit 2; }
[[ "$RF" =~ ^[1-9]$ ]] || { echo "chaos.sh: --replication-factor must be 1..9" >&2; exit 2; }
[[ -n "$OUT" ]] || OUT="var/chaos/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"

ORDERD="${ORDERD:-$ROOT/build/nodes/orderd}"
[[ -x "$ORDERD" ]] || { echo "chaos.sh: $ORDERD not built" >&2; exit 2; }

# As root (and not yet inside our namespace): re-execute inside a fresh network namespace.
if [[ $(id -u) -eq 0 && -z "${ORDERMESH_CHAOS_NETNS:-}" ]] && command -v unshare >/dev/null; then
  if unshare -n -m true 2>/dev/null; then
    export ORDERMESH_CHAOS_NETNS=1
    # the single quotes are meant: $0 and $@ are the inner bash's, i.e. this script and the
    # arguments after it (the seed and out dir already fixed here)
    # shellcheck disable=SC2016
    exec unshare -n -m -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" \
      --scenario "$SCENARIO" --seed "$SEED" --duration "$DURATION" --nodes "$NODES" \
      --clients "$CLIENTS" --out "$OUT" --etcd-members "$ETCD_MEMBERS" \
      --replication-factor "$RF" "${ALLOW_SKIPS[@]}"
  fi
  echo "chaos.sh: unshare -n -m failed; running on plain loopback" >&2
fi

NETNS=()
[[ -n "${ORDERMESH_CHAOS_NETNS:-}" ]] && NETNS=(--netns)

RUNNER=""
# shellcheck disable=SC2317  # not unreachable: the EXIT trap below calls it
cleanup() {
  # end the runner (by pid), then any orderd, etcd or holder it started that is still around
  # (the pids it recorded)
  if [[ -n "$RUNNER" ]] && kill -0 "$RUNNER" 2>/dev/null; then
    kill -TERM "$RUNNER" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$RUNNER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RUNNER" 2>/dev/null
  fi
  if [[ -f "$OUT/pids" ]]; then
    while read -r pid; do
      [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
    done <"$OUT/pids"
  fi
  # inside our own namespace, flush any firewall rules a nemesis left (the namespace goes too)
  if [[ ${#NETNS[@]} -gt 0 ]]; then
    command -v iptables >/dev/null && iptables -F 2>/dev/null
    command -v nft >/dev/null && nft flush ruleset 2>/dev/null
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 -m chaos.run --scenario "$SCENARIO" --seed "$SEED" --duration "$DURATION" \
  --nodes "$NODES" --clients "$CLIENTS" --out "$OUT" --orderd "$ORDERD" "${NETNS[@]}" \
  --etcd-members "$ETCD_MEMBERS" --replication-factor "$RF" "${ALLOW_SKIPS[@]}" &
RUNNER=$!
wait "$RUNNER"
RC=$?
RUNNER=""
exit "$RC"
