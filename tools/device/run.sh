#!/usr/bin/env bash
# On the GPU machine, from the repository root: unpacks what tools/device/pack.sh packed into /tmp/dlm-bin,
# runs the GPU tests (logs and XML under $OUT), then the command given, if any, with DLM naming the dlm binary
# and the libraries on LD_LIBRARY_PATH; each folder the command leaves under $OUT is packed into
# $OUT/FOLDER.tar.xz.
#   tools/device/run.sh PACK.tar.xz [COMMAND...]      e.g. ... tools/bench/gpu_llada8b.sh '$DLM' "$OUT/bench"
# GTEST_ARGS (say --gtest_filter=...) narrows the tests; SKIP_TESTS=1 skips them.
set -uo pipefail
bin=/tmp/dlm-bin
mkdir -p "$bin" && tar -xJf "$1" -C "$bin" || exit 2
shift
# The tests find their golden data under the source directory they were built from (a worktree's, for a
# branch's build): that path leads here.
source_dir=$(cat "$bin/source_dir" 2>/dev/null || echo /work/main)
[[ -e $source_dir ]] || { mkdir -p "$(dirname "$source_dir")" && ln -s "$PWD" "$source_dir"; }
# The CUDA libraries dlm links (cuBLASLt, cuDNN) and the one cuDNN loads to compile its attention kernels
# (NVRTC), wherever the machine keeps them (the toolkit, or Python's nvidia-* packages).
library_dirs=$bin/libs
for library in libcublasLt.so.13 libcudnn.so.9 libnvrtc.so.13; do
  found=$(find /usr/local/cuda/lib64 /usr/local /usr/lib /opt -name "$library" 2>/dev/null | head -1)
  if [[ -n $found ]]; then library_dirs+=:$(dirname "$found"); else echo "run.sh: $library not found" >&2; fi
done
export LD_LIBRARY_PATH=$library_dirs:/usr/local/cuda/lib64
export DLM=$bin/dlm
out=${OUT:-/tmp/out}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [[ -z ${SKIP_TESTS:-} ]]; then
  start=$SECONDS
  "$bin/dlm_gpu_tests" --gtest_output="xml:$out/gpu.xml" ${GTEST_ARGS:-} >"$out/gpu.log" 2>&1
  echo "gpu tests: exit $? in $((SECONDS - start)) s"
  grep -E '^\[  (FAILED|PASSED|SKIPPED) ' "$out/gpu.log" | head -40
  grep -B2 -A12 'Failure$' "$out/gpu.log" | head -60
fi
(($# == 0)) || eval "$@"
# The device tool brings back only a few files from $OUT: each folder there goes back as one archive.
for dir in "$out"/*/; do
  [[ -d $dir ]] || continue
  name=$(basename "$dir")
  tar -C "$out" -cJf "$out/$name.tar.xz" "$name" && rm -rf "$dir"
done
