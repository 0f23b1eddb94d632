#!/usr/bin/env bash
# Benchmarks on this machine, durability on everywhere (docs/BENCHMARKS.md):
#   ordermesh one node and three nodes on loopback (orderbench, place+pay: saturation and fixed
#   rates), PostgreSQL 15 doing the same work through pgbench (scripts/bench/place_pay.sql), and
#   RocksDB's db_bench fillrandom --sync=1 at 1 and 16 threads (the disk's limit).
#
#   scripts/bench.sh --quick      3 short repeats (under 5 minutes)
#   scripts/bench.sh              the full run (5 repeats of 20 s, more rates)
#   scripts/bench.sh [--quick] --no-doc | --repeats N | --duration S | --connections N | ...
#                                 (every option of scripts/bench/run.py --help)
#
# Installs postgresql-15 and rocksdb-tools with apt-get when missing, builds orderd, orderctl and
# orderbench (Release) into build-bench/ (ORDERMESH_BENCH_BUILD_DIR), keeps data under a temp dir
# in ORDERMESH_BENCH_DIR (default /var/tmp) and stops what it started (by pid) on exit.
# Prints a table and writes docs/BENCHMARKS.md. Needs root (postgres is run as nobody).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${ORDERMESH_BENCH_BUILD_DIR:-$ROOT/build-bench}"

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

[[ "$(id -u)" -eq 0 ]] || die "run as root (PostgreSQL is started as nobody; packages may be installed)"

# Project dependencies (and a first build of the tree) through setup.sh, then the bench's own.
bash scripts/setup.sh --deps-only
missing=()
[[ -x /usr/lib/postgresql/15/bin/postgres && -x /usr/lib/postgresql/15/bin/pgbench ]] ||
  missing+=(postgresql-15 postgresql-client-15)
command -v db_bench >/dev/null 2>&1 || missing+=(rocksdb-tools)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt_opts=(-o DPkg::Lock::Timeout=600 -o APT::Get::Assume-Yes=true)
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q
  # The Debian package starts a cluster of its own on 5432: not ours, and not needed.
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -q -y --no-install-recommends \
    "${missing[@]}"
fi

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${gen[@]}" >/dev/null
fi
say "building orderd, orderctl, orderbench (Release) in $BUILD_DIR"
cmake --build "$BUILD_DIR" --parallel "${ORDERMESH_JOBS:-2}" --target orderd orderctl orderbench \
  >/dev/null || die "build failed (cmake --build $BUILD_DIR)"

# run.py stops its own children (by pid) on exit or signal; this trap forwards a signal to it.
runner=""
forward() { [[ -n "$runner" ]] && kill -TERM "$runner" 2>/dev/null; wait "$runner" 2>/dev/null; exit 130; }
trap forward INT TERM
python3 scripts/bench/run.py --build-dir "$BUILD_DIR" --argv "scripts/bench.sh $*" "$@" &
runner=$!
wait "$runner"
