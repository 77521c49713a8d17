#!/usr/bin/env bash
# dlm on the GPU against the PyTorch reference, on LLaDA-8B's shapes (and Qwen2.5-7B's for AR decoding):
# full-recompute denoising steps at batch 1 and 32 (128 prompt + 256 canvas tokens) and AR tokens/s.
#   tools/bench/gpu_llada8b.sh DLM_BINARY OUT_DIR
# Random bf16 checkpoints are written under /tmp by tools/checkpoints/make_random_checkpoint.py. dlm's step
# time is a record's denoise seconds over its forwards (`timings.denoise / nfe`): every forward of a run
# serves all its rows, so at --batch-size 32 it is the time of a 32-row step.
set -uo pipefail
dlm=$1
out=$2
mkdir -p "$out"
ckpt=/tmp/dlm-ckpt
[[ -d $ckpt/llada-8b ]] || python3 tools/checkpoints/make_random_checkpoint.py --family llada-8b --out "$ckpt/llada-8b"
[[ -d $ckpt/qwen2.5-7b ]] || python3 tools/checkpoints/make_random_checkpoint.py --family qwen2.5-7b --out "$ckpt/qwen2.5-7b"

# Prompts of exactly 128 token ids, no special ids, one per request.
prompts() {  # count vocabulary
  python3 -c "import json, random; r = random.Random(7)
for i in range($1): print(json.dumps({'id': i, 'prompt_ids': [r.randrange(1000, $2) for _ in range(128)]}))"
}
prompts 1 126000 >"$out/p1.jsonl"
prompts 32 126000 >"$out/p32.jsonl"
prompts 1 150000 >"$out/q1.jsonl"
prompts 32 150000 >"$out/q32.jsonl"

step_ms() {  # records.jsonl: median over requests of denoise / nfe, in ms
  python3 -c "import json, statistics, sys
r = [json.loads(l) for l in open(sys.argv[1])]
ok = [x for x in r if 'error' not in x]
assert ok, r[0]
print(round(statistics.median(1000 * x['timings']['denoise'] / x['nfe'] for x in ok), 2),
      sum(x['nfe'] for x in ok) // len(ok))" "$1"
}
for batch in 1 32; do
  "$dlm" generate --device cuda -m "$ckpt/llada-8b" --prompts "$out/p$batch.jsonl" --gen-length 256 \
    --block-length 256 --steps 16 --no-stop-early --batch-size "$batch" -o "$out/llada_b$batch.jsonl"
  echo "dlm llada-8b full-recompute step, batch $batch: $(step_ms "$out/llada_b$batch.jsonl") (ms, nfe)"
done
python3 tools/bench/torch_llada_step.py --batch 1 32 --repeat 10
for batch in 1 32; do
  "$dlm" generate --device cuda -m "$ckpt/qwen2.5-7b" --prompts "$out/q$batch.jsonl" --gen-length 256 \
    --no-stop-early --batch-size "$batch" -o "$out/ar_b$batch.jsonl"
  echo "dlm qwen2.5-7b AR, batch $batch: $(step_ms "$out/ar_b$batch.jsonl") (ms per token step, nfe)"
done
