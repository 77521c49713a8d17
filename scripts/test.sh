#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: the release build (with the CUDA backend when nvcc is
# present; GPU tests skip without a device), the dataset tools' Python tests, the same suite under
# AddressSanitizer + UBSan, and every libFuzzer target for a bounded time. Exits non-zero on any failure.
#   scripts/test.sh [--fuzz-seconds N] [--skip-sanitizers] [--skip-fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=20
run_sanitizers=1
run_fuzz=1
while (($#)); do
  case "$1" in
    --fuzz-seconds) fuzz_seconds="$2"; shift 2 ;;
    --skip-sanitizers) run_sanitizers=0; shift ;;
    --skip-fuzz) run_fuzz=0; shift ;;
    *) echo "test.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

jobs=$(nproc)
scripts/setup.sh

passed=0
failed=0
# Each phase's header carries the seconds since the start, so a run's log shows where its time went.
phase() { echo "== $1 (at ${SECONDS} s)" >&2; }
run_ctest() {  # build_dir label
  local log
  log=$(mktemp)
  phase "ctest ($2)"
  if ctest --test-dir "$1" -j"$jobs" --output-on-failure --timeout 600 2>&1 | tee "$log"; then :; fi
  local line
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1 || true)
  if [[ -z "$line" ]]; then
    echo "test.sh: ctest ($2) printed no summary" >&2
    failed=$((failed + 1))
  else
    local total fails
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    fails=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
    passed=$((passed + total - fails))
    failed=$((failed + fails))
  fi
  rm -f "$log"
}

phase "build (release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
run_ctest build release

# The Python tools' own tests: the task checker scores the default models; the GPU benchmark's summary and
# checkpoint edit work on the host.
for python_test in tools/data/test_tasks.py tools/bench/test_bench_tools.py; do
  phase "python ($python_test)"
  if python3 "$python_test"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done

if ((run_sanitizers)); then
  phase "build (AddressSanitizer + UBSan)"
  # -O1 and line tables only: half the compile time of -O2 -g, with every check and file:line in reports.
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DDLM_SANITIZE=ON -DDLM_ENABLE_CUDA=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build-asan asan+ubsan
fi

if ((run_fuzz)); then
  phase "fuzz (${fuzz_seconds}s per target)"
  if scripts/run_fuzzers.sh "$fuzz_seconds"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

phase "done"
echo "suite: $passed passed, $failed failed"
((failed == 0))
