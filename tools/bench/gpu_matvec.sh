#!/usr/bin/env bash
# The products of 1 to 4 bf16 rows on dlm's kernel (linear_matvec.cu) against cuBLASLt, in one device call:
# the whole GPU suite, dlm_linear_bench (each shape on both), then Qwen2.5-7B-shaped AR decoding at batch 1
# and 4 with --cuda-linear auto and cublaslt, alternating, and the LLaDA batch-1 block step as a control
# (its products have 32 rows, so both runs take cuBLASLt).
#   tools/bench/gpu_matvec.sh DLM_BINARY OUT_DIR   (through tools/device/run.sh with SKIP_TESTS=1)
set -uo pipefail
dlm=$1
out=$2
bin=$(dirname "$dlm")
ckpt=${CKPT_DIR:-/tmp/dlm-ckpt}
mkdir -p "$out"
start=$SECONDS
at() { echo "$1 (exit $2, at $((SECONDS - start)) s)"; }
(python3 tools/checkpoints/make_random_checkpoint.py --family qwen2.5-7b --out "$ckpt/qwen2.5-7b" --force &&
  python3 tools/checkpoints/make_random_checkpoint.py --family llada-8b --out "$ckpt/llada-8b" --force &&
  python3 tools/bench/zero_mask_logit.py "$ckpt/llada-8b") >"$out/checkpoint.log" 2>&1 &
checkpoint=$!
timeout 240 "$bin/dlm_gpu_tests" --gtest_output="xml:$out/gpu.xml" >"$out/gpu.log" 2>&1
at "GPU suite" $?
grep -E '^\[  (FAILED|PASSED|SKIPPED) ' "$out/gpu.log" | head -20
grep -B2 -A12 'Failure$' "$out/gpu.log" | head -60
timeout 150 "$bin/dlm_linear_bench" 30 >"$out/linear_bench.md" 2>&1
at dlm_linear_bench $?
cat "$out/linear_bench.md"
wait "$checkpoint"
at checkpoints $?
ar=(bench --device cuda -m "$ckpt/qwen2.5-7b" --method autoregressive --batch-size 1,4 --prompt-length 128
  --gen-length 256 --warmup 1 --repeat 2)
block=(bench --device cuda -m "$ckpt/llada-8b" --batch-size 1 --prompt-length 128 --gen-length 256
  --block-length 32 --steps 8,128 --cache dual --warmup 1 --repeat 3)
run() {  # NAME LINEAR BENCH_ARRAY_NAME
  local -n args=$3
  timeout 90 "$dlm" "${args[@]}" --cuda-linear "$2" >"$out/$1.md" 2>"$out/$1.log"
  at "$1" $?
  grep -E '^\| (autoregressive|llada)' "$out/$1.md" | cut -d'|' -f3,7,10,13,16
}
for round in 1 2; do
  run ar_auto_$round auto ar
  run ar_cublaslt_$round cublaslt ar
done
run block_auto auto block
run block_cublaslt cublaslt block
# Greedy tokens of both: the kernel sums in another order than cuBLASLt, so bf16 near-ties may differ.
for linear in auto cublaslt; do
  timeout 60 "$dlm" generate --device cuda -m "$ckpt/qwen2.5-7b" --method autoregressive -p "The" \
    --gen-length 64 --cuda-linear "$linear" >"$out/tokens_$linear.jsonl" 2>"$out/tokens_$linear.log"
  at "greedy tokens, $linear" $?
done
python3 - "$out/tokens_auto.jsonl" "$out/tokens_cublaslt.jsonl" <<'EOF'
import json, sys
a, b = (json.loads(open(p).readline())["token_ids"] for p in sys.argv[1:])
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
print("greedy tokens: identical" if same is None else f"greedy tokens: first difference at {same}")
EOF
