#!/usr/bin/env bash
# Runs every test of ordermesh:
#   1. setup + build (build/), then ctest: unit tests and system tests
#   2. format check: clang-format --dry-run --Werror on the project's .cpp/.hpp
#   3. ASan/UBSan build (build-asan/) running the unit tests
# Keeps going after a failing stage, prints a summary, exits non-zero if anything failed.
#
# Environment: ORDERMESH_SKIP_ASAN=1 skips stage 3 (for quick local runs);
# ORDERMESH_JOBS as for setup.sh.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

JOBS="${ORDERMESH_JOBS:-2}"
START=$SECONDS
STAGES=()      # "name: result" lines for the summary
FAILED=0       # failed stages
T_PASSED=0     # test counts, summed over the ctest runs (+ the format check)
T_FAILED=0
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/ordermesh-test.XXXXXX")"
trap 'rm -rf "$LOGDIR"' EXIT

banner() { printf '\n==== %s (%d s elapsed)\n' "$*" "$((SECONDS - START))"; }
stage() {  # stage NAME ok|FAILED|skipped [detail]
  STAGES+=("$(printf '%-14s %s%s' "$1" "$2" "${3:+ ($3)}")")
  [[ "$2" == FAILED ]] && FAILED=$((FAILED + 1))
  return 0
}

# run_ctest NAME BUILD_DIR [ctest args...]: runs ctest, adds its counts to the totals.
run_ctest() {
  local name="$1" dir="$2"
  shift 2
  local out="$LOGDIR/$name.log" rc
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$JOBS" "$@") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  # "100% tests passed, 0 tests failed out of 57"
  local line total failed
  line="$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -n 1)"
  if [[ -n "$line" ]]; then
    total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")"
    failed="$(sed -E 's/.*tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")"
    T_PASSED=$((T_PASSED + total - failed))
    T_FAILED=$((T_FAILED + failed))
  else
    T_FAILED=$((T_FAILED + 1))
  fi
  if ((rc == 0)); then
    stage "$name" ok "${line:-no summary}"
  else
    [[ -z "$line" ]] && line="ctest exit $rc"
    stage "$name" FAILED "$line"
  fi
  return "$rc"
}

# ---- 1. build + unit and system tests ------------------------------------------------------
banner "setup + build (build/)"
if bash scripts/setup.sh; then
  stage build ok
  banner "ctest (unit + system)"
  run_ctest ctest build || true
else
  stage build FAILED
  stage ctest skipped "build failed"
  T_FAILED=$((T_FAILED + 1))
fi

# ---- 2. format ------------------------------------------------------------------------------
banner "clang-format check"
mapfile -d '' SOURCES < <(find . \( -path ./.git -o -path './build' -o -path './build-*' \
  -o -path ./var -o -path ./node_modules \) -prune -o -type f \( -name '*.cpp' -o -name '*.hpp' \) \
  -print0 | sort -z)
if ! command -v clang-format >/dev/null 2>&1; then
  stage format FAILED "clang-format not installed"
  T_FAILED=$((T_FAILED + 1))
elif ((${#SOURCES[@]} == 0)); then
  stage format FAILED "no .cpp/.hpp files found"
  T_FAILED=$((T_FAILED + 1))
elif clang-format --dry-run --Werror "${SOURCES[@]}" >"$LOGDIR/format.log" 2>&1; then
  stage format ok "${#SOURCES[@]} files"
  T_PASSED=$((T_PASSED + 1))
else
  head -n 60 "$LOGDIR/format.log"
  bad="$(grep -oE '^[^:]+\.(cpp|hpp):' "$LOGDIR/format.log" | sort -u | tr -d ':' | tr '\n' ' ')"
  echo "files that need clang-format: $bad"
  echo "fix with: clang-format -i $bad"
  stage format FAILED "$(wc -w <<<"$bad") files need clang-format"
  T_FAILED=$((T_FAILED + 1))
fi

# ---- 3. sanitizers --------------------------------------------------------------------------
if [[ "${ORDERMESH_SKIP_ASAN:-0}" == 1 ]]; then
  stage asan-build skipped "ORDERMESH_SKIP_ASAN=1"
else
  banner "setup + build with ASan/UBSan (build-asan/)"
  if ORDERMESH_SANITIZE=1 ORDERMESH_BUILD_DIR="${ORDERMESH_ASAN_BUILD_DIR:-build-asan}" \
    bash scripts/setup.sh; then
    stage asan-build ok
    banner "ctest unit tests under ASan/UBSan"
    # Process-level tests (system_*, chaos_short) carry the label `system`; run all but those.
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
      UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      run_ctest asan-unit "${ORDERMESH_ASAN_BUILD_DIR:-build-asan}" -LE system || true
  else
    stage asan-build FAILED
    stage asan-unit skipped "build failed"
    T_FAILED=$((T_FAILED + 1))
  fi
fi

# ---- summary --------------------------------------------------------------------------------
printf '\n==== summary (%d s)\n' "$((SECONDS - START))"
for s in "${STAGES[@]}"; do printf '  %s\n' "$s"; done
if ((FAILED == 0 && T_FAILED == 0)); then
  echo "test.sh: ALL OK"
else
  echo "test.sh: FAILED ($FAILED stage(s))"
fi
echo "total: $T_PASSED passed, $T_FAILED failed"
((FAILED == 0 && T_FAILED == 0))
