#!/usr/bin/env bash
# Runs every test of ordermesh and proves that it did:
#   1. setup + build (build/), then ctest: unit (label unit), process-level (system) and the
#      chaos suite (chaos); scripts/check_test_reports.py then checks, case by case, that every
#      Catch2 case each binary defines ran, and that every other entry's per-case report shows
#      its cases run (a case defined but not run fails the stage, by name)
#   2. lint: clang-format on the C++ that git tracks, shellcheck on the shell scripts, pyflakes
#      on the Python
#   3. fuzz: the libFuzzer targets of fuzz/ (build-fuzz/, clang, -DORDERMESH_FUZZ=ON), each run
#      for a bounded number of inputs from its seed corpus; one test case per target
#   4. ASan/UBSan build (build-asan/) running every unit case, checked the same way
# Keeps going after a failing stage, prints a summary, exits non-zero if anything failed. The last
# line counts test cases (Catch2 cases, Python test functions, chaos scenarios, lint checks):
#   total: N passed, M failed[, K skipped]
#
# Environment: ORDERMESH_SKIP_ASAN=1 skips stage 4 and ORDERMESH_SKIP_FUZZ=1 stage 3 (for quick
# local runs); ORDERMESH_FUZZ_RUNS=N inputs per fuzz target (default 20000);
# ORDERMESH_CTEST_LABEL=L runs only ctest label L in stage 1 (unit, system or chaos);
# ORDERMESH_JOBS as for setup.sh.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

JOBS="${ORDERMESH_JOBS:-2}"
START=$SECONDS
STAGES=()   # "name: result" lines for the summary
FAILED=0    # failed stages
T_PASSED=0  # test cases, summed over the stages
T_FAILED=0
T_SKIPPED=0
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/ordermesh-test.XXXXXX")"
trap 'rm -rf "$LOGDIR"' EXIT

banner() { printf '\n==== %s (%d s elapsed)\n' "$*" "$((SECONDS - START))"; }
stage() { # stage NAME ok|FAILED|skipped [detail]
  STAGES+=("$(printf '%-14s %s%s' "$1" "$2" "${3:+ ($3)}")")
  [[ "$2" == FAILED ]] && FAILED=$((FAILED + 1))
  return 0
}

# add_counts LINE: adds "NAME: N passed, M failed[, K skipped]" to the totals.
add_counts() {
  local re='([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?'
  if [[ "$1" =~ $re ]]; then
    T_PASSED=$((T_PASSED + BASH_REMATCH[1]))
    T_FAILED=$((T_FAILED + BASH_REMATCH[2]))
    T_SKIPPED=$((T_SKIPPED + ${BASH_REMATCH[4]:-0}))
  else
    T_FAILED=$((T_FAILED + 1))
  fi
}

# run_ctest NAME BUILD_DIR [-L LABEL]: runs ctest, then the per-case check of what it ran.
run_ctest() {
  local name="$1" dir="$2" label=""
  shift 2
  [[ "${1:-}" == -L ]] && label="$2"
  local out="$LOGDIR/$name.log" junit="$LOGDIR/$name.junit.xml" rc check_rc
  # Reports of an earlier run must not count for this one; the directories stay (Catch2 does
  # not create the directory of its --out file).
  find "$dir/test-reports" -type f \( -name '*.xml' -o -name '*.json' \) -delete 2>/dev/null
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$JOBS" \
    --output-junit "$junit" "$@") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  python3 scripts/check_test_reports.py --build "$dir" --junit "$junit" \
    ${label:+--label "$label"} --name "$name" 2>&1 | tee "$out.check"
  check_rc=${PIPESTATUS[0]}
  local line
  line="$(tail -n 1 "$out.check")"
  add_counts "$line"
  local catch2
  catch2="$(grep -E '^check: Catch2:' "$out.check" | sed 's/^check: //')"
  if ((rc == 0 && check_rc == 0)); then
    stage "$name" ok "$line; $catch2"
  else
    stage "$name" FAILED "$line; $catch2; ctest exit $rc, check exit $check_rc"
  fi
}

# lint NAME COMMAND...: one lint check over the files git tracks; counts as one test case.
lint() {
  local name="$1"
  shift
  if "$@" >"$LOGDIR/$name.log" 2>&1; then
    stage "$name" ok "$LINT_DETAIL"
    T_PASSED=$((T_PASSED + 1))
  else
    head -n 80 "$LOGDIR/$name.log"
    stage "$name" FAILED "$LINT_DETAIL"
    T_FAILED=$((T_FAILED + 1))
  fi
}

# ---- 1. build + unit, system and chaos tests ----------------------------------------------
banner "setup + build (build/)"
if bash scripts/setup.sh; then
  stage build ok
  banner "ctest (unit + system + chaos)"
  if [[ -n "${ORDERMESH_CTEST_LABEL:-}" ]]; then
    run_ctest ctest build -L "$ORDERMESH_CTEST_LABEL"
  else
    run_ctest ctest build
  fi
else
  stage build FAILED
  stage ctest skipped "build failed"
  T_FAILED=$((T_FAILED + 1))
fi

# ---- 2. lint, over what git tracks (not whatever lies in the working tree) -----------------
banner "lint: clang-format, shellcheck, pyflakes"
mapfile -t CXX_FILES < <(git ls-files -- '*.cpp' '*.hpp')
mapfile -t SH_FILES < <(git ls-files -- '*.sh' .ci/run)
mapfile -t PY_FILES < <(git ls-files -- '*.py')
for tool in clang-format shellcheck pyflakes3; do
  command -v "$tool" >/dev/null 2>&1 || echo "test.sh: $tool is not installed"
done
if ((${#CXX_FILES[@]} == 0 || ${#SH_FILES[@]} == 0 || ${#PY_FILES[@]} == 0)); then
  stage lint FAILED "git ls-files found no C++, shell or Python files"
  T_FAILED=$((T_FAILED + 1))
else
  LINT_DETAIL="${#CXX_FILES[@]} files"
  lint format clang-format --dry-run --Werror "${CXX_FILES[@]}"
  if [[ "${STAGES[-1]}" == *FAILED* ]]; then
    bad="$(grep -oE '^[^:]+\.(cpp|hpp):' "$LOGDIR/format.log" | sort -u | tr -d ':' | tr '\n' ' ')"
    echo "files that need clang-format: $bad"
    echo "fix with: clang-format -i $bad"
  fi
  LINT_DETAIL="${#SH_FILES[@]} files"
  lint shellcheck shellcheck -x "${SH_FILES[@]}"
  LINT_DETAIL="${#PY_FILES[@]} files"
  lint pyflakes pyflakes3 "${PY_FILES[@]}"
fi

# ---- 3. fuzz: every decoder under libFuzzer (fuzz/, docs/SECURITY.md "Fuzzing") ----------------
# fuzz_stage: configures build-fuzz/ with clang, builds the targets, runs each for a bounded
# number of inputs over a scratch copy of its committed seed corpus. A crash or a broken contract
# fails the target by name; its input is kept under build-fuzz/crashes/.
fuzz_stage() {
  local dir="${ORDERMESH_FUZZ_BUILD_DIR:-build-fuzz}" runs="${ORDERMESH_FUZZ_RUNS:-20000}"
  local cmake_args=(-S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DCMAKE_CXX_COMPILER=clang++ -DORDERMESH_FUZZ=ON)
  command -v ccache >/dev/null 2>&1 && cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  if ! cmake "${cmake_args[@]}" >"$LOGDIR/fuzz-configure.log" 2>&1 ||
    ! cmake --build "$dir" --parallel "$JOBS" --target fuzz_targets \
      >"$LOGDIR/fuzz-build.log" 2>&1; then
    tail -n 40 "$LOGDIR/fuzz-configure.log" "$LOGDIR/fuzz-build.log" 2>/dev/null
    stage fuzz-build FAILED
    T_FAILED=$((T_FAILED + 1))
    return
  fi
  stage fuzz-build ok
  local targets=() t passed=0 failed=() scratch="$LOGDIR/fuzz-corpus"
  mapfile -t targets <"$dir/fuzz_targets.txt"
  mkdir -p "$dir/crashes"
  for t in "${targets[@]}"; do
    if [[ ! -d "fuzz/corpus/$t" ]]; then
      echo "fuzz: $t has no seed corpus fuzz/corpus/$t"
      failed+=("$t")
      continue
    fi
    # New inputs go to the scratch directory (listed first), never into the committed corpus.
    mkdir -p "$scratch/$t"
    if "$dir/fuzz/$t" -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$dir/crashes/$t-" "$scratch/$t" "fuzz/corpus/$t" \
      >"$LOGDIR/fuzz-$t.log" 2>&1; then
      passed=$((passed + 1))
      echo "fuzz: $t ok ($(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$LOGDIR/fuzz-$t.log"))"
    else
      tail -n 40 "$LOGDIR/fuzz-$t.log"
      echo "fuzz: $t FAILED (input kept under $dir/crashes/)"
      failed+=("$t")
    fi
  done
  T_PASSED=$((T_PASSED + passed))
  T_FAILED=$((T_FAILED + ${#failed[@]}))
  if ((${#failed[@]} == 0 && passed > 0)); then
    stage fuzz ok "$passed targets, $runs runs each"
  else
    stage fuzz FAILED "$passed of ${#targets[@]} targets passed; failed: ${failed[*]:-none ran}"
  fi
}

if [[ "${ORDERMESH_SKIP_FUZZ:-0}" == 1 ]]; then
  stage fuzz skipped "ORDERMESH_SKIP_FUZZ=1"
elif ! command -v clang++ >/dev/null 2>&1; then
  echo "test.sh: clang++ is not installed (scripts/setup.sh installs it): fuzz stage skipped"
  stage fuzz skipped "clang++ not installed"
else
  banner "fuzz: libFuzzer targets (build-fuzz/)"
  fuzz_stage
fi

# ---- 4. sanitizers --------------------------------------------------------------------------
if [[ "${ORDERMESH_SKIP_ASAN:-0}" == 1 ]]; then
  stage asan-build skipped "ORDERMESH_SKIP_ASAN=1"
else
  banner "setup + build with ASan/UBSan (build-asan/)"
  ASAN_DIR="${ORDERMESH_ASAN_BUILD_DIR:-build-asan}"
  # Only the unit test binaries: nothing else runs in this stage.
  if ORDERMESH_SANITIZE=1 ORDERMESH_BUILD_DIR="$ASAN_DIR" ORDERMESH_BUILD_TARGET=unit_tests \
    bash scripts/setup.sh; then
    stage asan-build ok
    banner "ctest unit tests under ASan/UBSan"
    # Every unit case (label unit) runs here; process-level tests (system, chaos) do not.
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
      UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      run_ctest asan-unit "$ASAN_DIR" -L unit
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
echo "total: $T_PASSED passed, $T_FAILED failed$( ((T_SKIPPED > 0)) && echo ", $T_SKIPPED skipped")"
((FAILED == 0 && T_FAILED == 0))
