#!/usr/bin/env bash
# Builds the libFuzzer tree (build-fuzz: clang, -DDLM_FUZZ=ON) and runs every fuzz target for a bounded time
# over a copy of its seed corpus (tests/fuzz/corpus/<target>/), with its dictionary if there is one
# (tests/fuzz/<target>.dict). Exits non-zero if any target reports a finding; reproducers are kept in
# <build>/findings/<target>/.
#
# Usage: scripts/run_fuzzers.sh [-B BUILD_DIR (default build-fuzz)] [--seed N (default 1)]
#                               [SECONDS_PER_TARGET (default 30)] [TARGET...]
# The fixed default seed keeps a CI run reproducible; longer campaigns should vary it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=$root/build-fuzz
if [[ ${1:-} == -B ]]; then
  build=$(realpath -m "${2:?run_fuzzers: -B needs a directory}")
  shift 2
fi

seed=1
if [[ ${1:-} == --seed ]]; then
  seed=${2:?run_fuzzers: --seed needs a number}
  [[ $seed =~ ^[0-9]+$ ]] || { echo "run_fuzzers: seed must be a whole number, got '$seed'" >&2; exit 2; }
  shift 2
fi

seconds=${1:-30}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "run_fuzzers: seconds must be a whole number, got '$seconds'" >&2; exit 2; }
shift $(($# > 0 ? 1 : 0))

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DDLM_FUZZ=ON -DDLM_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"

if (($# > 0)); then
  targets=("$@")
else
  mapfile -t targets < <(find "$build/tests/fuzz" -maxdepth 1 -type f -executable -name 'fuzz_*' -printf '%f\n' | sort)
fi
((${#targets[@]})) || { echo "run_fuzzers: no fuzz targets were built" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  binary=$build/tests/fuzz/$target
  [[ -x $binary ]] || { echo "run_fuzzers: no target $target" >&2; exit 2; }
  corpus=$work/$target
  mkdir -p "$corpus"
  if [[ -d tests/fuzz/corpus/$target ]]; then cp -r "tests/fuzz/corpus/$target/." "$corpus/"; fi
  findings=$build/findings/$target
  mkdir -p "$findings"
  options=(-seed="$seed" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
    -artifact_prefix="$findings/")
  [[ -f tests/fuzz/$target.dict ]] && options+=(-dict="tests/fuzz/$target.dict")
  echo "== $target: ${seconds}s" >&2
  if "$binary" "${options[@]}" "$corpus" >"$work/$target.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$work/$target.log" | tail -2 >&2 || true
  else
    failed+=("$target")
    tail -n 60 "$work/$target.log" >&2
    echo "== $target: FINDING (reproducers in $findings)" >&2
  fi
done

if ((${#failed[@]})); then
  echo "run_fuzzers: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "run_fuzzers: ${#targets[@]} targets ran ${seconds}s each without findings" >&2
