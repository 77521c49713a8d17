#!/usr/bin/env bash
# EXPERIMENT: kernels launched overlapping the previous kernel (programmatic dependent launch, DLM_PDL=0 turns
# it off) against plain launches: the GPU tests with it on, then A/B runs alternating on random checkpoints
# with LLaDA-8B's and Qwen2.5-7B's shapes.
#   tools/bench/gpu_overlap.sh DLM_BINARY OUT_DIR      (through tools/device/run.sh with SKIP_TESTS=1)
set -uo pipefail
dlm=$1
out=$2
bin=$(dirname "$dlm")
ckpt=${CKPT_DIR:-/tmp/dlm-ckpt}
mkdir -p "$out"
start=$SECONDS
at() { echo "$1 (exit $2, at $((SECONDS - start)) s)"; }
write_checkpoint() {  # FAMILY
  [[ -f $ckpt/$1/model.safetensors.index.json ]] ||
    python3 tools/checkpoints/make_random_checkpoint.py --family "$1" --out "$ckpt/$1" --force
}
(write_checkpoint llada-8b && python3 tools/bench/zero_mask_logit.py "$ckpt/llada-8b") >"$out/checkpoint.log" 2>&1 &
checkpoint=$!
cuobjdump -sass "$bin/dlm" 2>/dev/null | grep -cE 'ACQBULK|PREEXIT' | sed 's/^/griddepcontrol instructions in dlm: /'
timeout 150 "$bin/dlm_gpu_tests" >"$out/gpu_tests.log" 2>&1
at "GPU tests" $?
grep -E '^\[  (FAILED|PASSED|SKIPPED) ' "$out/gpu_tests.log" | head -20
grep -A8 'Failure$' "$out/gpu_tests.log" | head -40
# A build whose kernels skip the wait (griddepcontrol.wait removed), where packed: the launch tests must fail.
if [[ -x $bin/dlm_gpu_tests_mutant ]]; then
  for round in 1 2 3; do
    timeout 60 "$bin/dlm_gpu_tests_mutant" --gtest_filter='CudaOverlappedLaunch*' >"$out/mutant_$round.log" 2>&1
    at "launch tests without the wait, round $round" $?
    grep -E '^\[  (FAILED|PASSED) |Which is|unequal|of [0-9]+' "$out/mutant_$round.log" | head -12
  done
fi
wait "$checkpoint"
at "LLaDA checkpoint" $?
tail -1 "$out/checkpoint.log"
(write_checkpoint qwen2.5-7b >>"$out/checkpoint.log" 2>&1) &
qwen=$!

run() {  # NAME PDL LIMIT DLM_ARGS...
  local name=$1 pdl=$2 limit=$3
  shift 3
  DLM_PDL=$pdl timeout "$limit" "$dlm" "$@" >"$out/$name.md" 2>"$out/$name.log"
  at "$name" $?
  grep -E '^\| (llada|auto)' "$out/$name.md" | cut -d'|' -f3,7,9,10,16
}
# A block step is (T(128 steps) - T(8 steps)) / 120 from the two rows.
block=(bench --device cuda -m "$ckpt/llada-8b" --batch-size 1 --prompt-length 128 --gen-length 256
  --block-length 32 --steps 8,128 --cache dual --warmup 1 --repeat 3)
run block_off_1 0 60 "${block[@]}"
run block_on_1 1 60 "${block[@]}"
run block_off_2 0 60 "${block[@]}"
run block_on_2 1 60 "${block[@]}"
steps=(bench --device cuda -m "$ckpt/llada-8b" --method llada --batch-size 1,32 --prompt-length 128
  --gen-length 256 --block-length 32 --steps 16 --cache none,dual --warmup 1 --repeat 3)
run steps_off 0 120 "${steps[@]}"
run steps_on 1 120 "${steps[@]}"
wait "$qwen"
at "Qwen checkpoint" $?
ar=(bench --device cuda -m "$ckpt/qwen2.5-7b" --method autoregressive --batch-size 1,32 --prompt-length 128
  --gen-length 256 --warmup 1 --repeat 2)
run ar_off 0 90 "${ar[@]}"
run ar_on 1 90 "${ar[@]}"
