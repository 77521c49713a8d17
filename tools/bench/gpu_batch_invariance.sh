#!/usr/bin/env bash
# Whether a request decodes the same alone as in a batch on the GPU, at the shapes of LLaDA-8B and
# Qwen2.5-7B (random bf16 checkpoints, bf16 activations, temperature 0): 8 requests of 128 random prompt ids
# decoded one at a time (--batch-size 1) and all together (--batch-size 8), by LLaDA with full recompute and
# with the dual cache, and autoregressively; prints, per run, how many requests gave other tokens and where
# the first difference is; each with the default settings and with --cuda-batch-invariant. ar_unsplit
# repeats the default AR runs with --cuda-split-attention off (one attention block per query block, whatever
# the batch), to tell the attention's share from the products'. With each setting, what it costs in dlm bench.
#   tools/bench/gpu_batch_invariance.sh DLM_BINARY OUT_DIR   (on the GPU machine, from the repository root)
set -uo pipefail
dlm=$1
out=$2
ckpt=${CKPT_DIR:-/tmp/dlm-ckpt}
mkdir -p "$out"
(
  for family in llada-8b qwen2.5-7b; do
    [[ -f $ckpt/$family/model.safetensors.index.json ]] && continue
    python3 tools/checkpoints/make_random_checkpoint.py --family "$family" --out "$ckpt/$family" --force \
      >"$out/checkpoint_$family.log" 2>&1 || echo "checkpoint $family failed"
  done
  python3 tools/bench/zero_mask_logit.py "$ckpt/llada-8b" >"$out/zero_mask_logit.log" 2>&1
) &
checkpoints=$!
# Meanwhile the GPU tests of what --cuda-batch-invariant changes, where dlm_gpu_tests lies next to dlm.
tests=$(dirname "$dlm")/dlm_gpu_tests
if [[ -x $tests ]]; then
  timeout 200 "$tests" --gtest_filter='CudaLinear.*:CudaTokenPrediction.*:*Golden*' >"$out/gpu_tests.log" 2>&1
  echo "GPU tests: exit $?"
  grep -E '^\[  (FAILED|PASSED) ' "$out/gpu_tests.log"
  grep -B2 -A10 'Failure$' "$out/gpu_tests.log" | head -40
fi
wait "$checkpoints"
python3 - "$out/items.jsonl" <<'EOF'
import json, random, sys
rng = random.Random(11)
with open(sys.argv[1], "w") as f:
    for i in range(8):
        f.write(json.dumps({"id": i, "prompt_ids": [rng.randrange(100, 120000) for _ in range(128)]}) + "\n")
EOF
decode() {  # NAME BATCH FLAGS...
  local name=$1 batch=$2
  shift 2
  timeout 120 "$dlm" generate --device cuda --prompts "$out/items.jsonl" -o "$out/${name}_b$batch.jsonl" \
    --batch-size "$batch" --gen-length 64 --temperature 0 --no-stop-early --no-progress "$@" \
    2>"$out/${name}_b$batch.log"
  echo "$name, batch $batch: exit $?"
}
compare() {  # NAME
  python3 - "$out/$1_b1.jsonl" "$out/$1_b8.jsonl" "$1" <<'EOF'
import json, sys
def tokens(path):
    return {r["id"]: r["token_ids"] for r in map(json.loads, open(path))}
alone, together = tokens(sys.argv[1]), tokens(sys.argv[2])
firsts = []
for i in sorted(alone):
    a, b = alone[i], together[i]
    first = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))
    if first is not None:
        firsts.append(f"request {i} at token {first}")
print(f"{sys.argv[3]}: {len(firsts)} of {len(alone)} requests differ alone and in the batch"
      + (": " + ", ".join(firsts) if firsts else ""))
EOF
}
# What --cuda-batch-invariant costs: dlm bench with and without it (ms a forward in the last column; the
# block step is (T128 - T8) / 120).
bench() {  # NAME FLAGS...
  local name=$1
  shift
  timeout 90 "$dlm" bench --device cuda "$@" >"$out/$name.md" 2>"$out/$name.log"
  echo "$name: exit $?"
  grep -E '^\| (autoregressive|llada)' "$out/$name.md" | cut -d'|' -f3,7,9,10,13,16
}
llada=(-m "$ckpt/llada-8b" --method llada --block-length 32)
ar=(-m "$ckpt/qwen2.5-7b" --method autoregressive)
for mode in default invariant; do
  flags=()
  [[ $mode == invariant ]] && flags=(--cuda-batch-invariant)
  for batch in 1 8; do
    decode "llada_full_$mode" "$batch" "${llada[@]}" --steps 64 "${flags[@]}"
    decode "llada_dual_$mode" "$batch" "${llada[@]}" --steps 64 --cache dual "${flags[@]}"
    decode "ar_$mode" "$batch" "${ar[@]}" "${flags[@]}"
    [[ $mode == default ]] && decode ar_unsplit "$batch" "${ar[@]}" --cuda-split-attention off
  done
  bench "block_$mode" "${llada[@]}" --batch-size 1 --prompt-length 128 --gen-length 256 --steps 8,128 \
    --cache dual --warmup 1 --repeat 3 "${flags[@]}"
  bench "full_$mode" "${llada[@]}" --batch-size 1,32 --prompt-length 128 --gen-length 256 --steps 16 \
    --cache none --warmup 1 --repeat 2 "${flags[@]}"
  bench "ar_$mode" "${ar[@]}" --batch-size 1,32 --prompt-length 128 --gen-length 256 --warmup 1 --repeat 2 \
    "${flags[@]}"
done
for name in llada_full llada_dual ar; do
  for mode in default invariant; do compare "${name}_$mode"; done
done
compare ar_unsplit
