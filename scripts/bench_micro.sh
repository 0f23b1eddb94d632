#!/usr/bin/env bash
# ordermesh micro-benchmarks (issue 5): memory per idle active entity, activation time from disk,
# restart time, snapshot size per entity, group-commit batch sizes. One orderd on 127.0.0.1.
#
#   scripts/bench_micro.sh --quick [--out FILE]   10^5 entities, 10^6 events (a minute or two)
#   scripts/bench_micro.sh [--out FILE]           10^6 entities, 10^7 events (about 15 minutes)
#
# Builds orderd and ordermesh_loader (Release) into $ORDERMESH_BUILD (default build-micro/),
# loads the data with the loader into $ORDERMESH_MICRO_DIR (default /tmp/ordermesh-micro, removed
# afterwards unless --keep), then runs scripts/bench/micro.py, which prints a plain-text table
# and writes every number as JSON to --out (default micro-results.json). Results and how to read
# them: docs/BENCHMARKS_MICRO.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${ORDERMESH_BUILD:-$ROOT/build-micro}"
WORKDIR="${ORDERMESH_MICRO_DIR:-/tmp/ordermesh-micro}"
JOBS="${ORDERMESH_JOBS:-2}"
OUT="micro-results.json"
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) ARGS+=(--quick) ;;
    --keep) ARGS+=(--keep) ;;
    --out) OUT="$2"; shift ;;
    --restarts) ARGS+=(--restarts "$2"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench_micro.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j "$JOBS" --target orderd ordermesh_loader >/dev/null

exec python3 "$ROOT/scripts/bench/micro.py" --build "$BUILD" --workdir "$WORKDIR" --out "$OUT" \
  "${ARGS[@]}"
