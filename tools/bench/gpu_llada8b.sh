#!/usr/bin/env bash
# dlm against the PyTorch reference on one GPU, on random bf16 checkpoints with LLaDA-8B-Instruct's and
# Qwen2.5-7B-Instruct's exact shapes; one table of both sides.
#
#   tools/bench/gpu_llada8b.sh DLM_BINARY OUT_DIR        (from the repository root, on the GPU machine)
#
# Environment: CKPT_DIR (default /tmp/dlm-ckpt: the checkpoints are written there when missing, 53 s),
# LLADA_B32=0 to leave out LLaDA's end-to-end run at batch 32 on both sides (256 steps of a 32-request batch:
# ~100 s each side), BUDGET_S (default 570: the whole script's time; each step's timeout is cut to what is
# left, and a step with no time left is skipped, so the summary is written inside a 10-minute device call),
# TORCH_PYTHON (default python3; needs torch + transformers + safetensors), DLM_FLAGS (extra flags for every
# dlm generate and dlm bench run, e.g. "--cuda-tune-gemm"; the summary names them), STEPS (a
# comma-separated list of step names, as steps.tsv names them: only those run, besides the checkpoints, e.g.
# STEPS=dlm_linear_bench,dlm_bench_no_graphs for what a first call's BUDGET_S left out). DLM_BINARY must start on its own
# (LD_LIBRARY_PATH set for its libraries): `DLM_BINARY --help` is tried first.
# Writes OUT_DIR/summary.md (also printed) and keeps every raw output in OUT_DIR: dlm_*.items.jsonl (the
# prompts and per-item settings fed to dlm), dlm_*.jsonl (its records), torch_*.jsonl (the reference's JSON
# lines), profile.md (dlm bench --profile: where dlm's step time goes, by op; profile_kernel_attention.md: the
# same with --cuda-attention kernel; bench_ar.md / bench_ar_unsplit.md and bench_b1.md / bench_b1_tuned.md:
# dlm bench without and with --cuda-split-attention off, without and with --cuda-tune-gemm;
# bench_filters_ar.md and bench_filters_llada.md: dlm bench with sampling filters and a penalty;
# bench_no_graphs.md: dlm bench with --cuda-graphs off; linear_bench.md: each product shape of these forwards
# timed alone by dlm_linear_bench, where tools/device/pack.sh put it next to DLM_BINARY), *.log (stderr),
# steps.tsv (each step's exit status and seconds). Each step runs under a timeout and
# on its own: a failure leaves its rows empty ("—") and the others go on.
#
# Time on an H200 (measured 2026-12-05): checkpoints 52 s when missing; dlm: LLaDA b1 9 s, AR b1 6 s, AR b32
# 4 s, LLaDA b32 18 s, the two profiles 26 and 29 s, the bench without graphs 34 s; reference: AR 38-54 s, LLaDA
# 42-44 s. With LLADA_B32 on an H100: dlm's LLaDA b32 run 91 s, the reference's LLaDA runs 171 s; the A/B
# benches 5-21 s each; in all about 9.5 minutes from a bare machine, so BUDGET_S=570 leaves out the last
# steps (dlm_linear_bench and the bench without graphs: a second call with STEPS runs them).
#
# The LLaDA checkpoint's LM-head row of the MASK id is zeroed first (zero_mask_logit.py): with random weights
# MASK can be the argmax; dlm never draws it but the reference commits it, so both sides would decode
# different canvases.
#
# Every request: 128 prompt token ids (random, below the special ids) and 256 generated positions; LLaDA
# schedules use blocks of 32, temperature 0, low-confidence remasking, a fixed count per step, no early stop.
# dlm runs `dlm generate --device cuda` (bf16 activations), one process per model and batch size, on a
# prompts file whose groups of items carry their own settings (gpu_llada8b.py: RUNS); the reference is
# tools/bench/torch_reference.py (transformers LlamaForCausalLM with LLaDA's tensors renamed and an all-zero
# 4-D mask; AutoModelForCausalLM for Qwen), one process per model. The rows:
#  a  full-recompute step at batch 1 and 32: a forward of all 384 positions, then the commit.
#     dlm "whole": a request's `seconds / nfe` (32 steps at b1, 16 at b32: 4 and 2 per block, full
#     recompute), the sampler's own work included; "forward only": `timings.denoise / nfe`, the time inside
#     the decoder's forward calls (the backbone over all rows and the copy of its outputs for the block's
#     masked positions to the host). A forward serves every row of the batch and counts in full for each.
#     reference "whole": model(x).logits + LLaDA's commit on the GPU (argmax, float32 softmax over every
#     position, confidence, top-k, where); "forward only": model(x).logits (LM head on all 384 positions, as
#     LLaDA's model does). Medians of 5 calls after 2.
#  b  dual-cache block step (Fast-dLLM) at batch 1 and 32: the 32 positions of a block against the cached K/V
#     of the other 352. dlm: the difference of two dual-cache runs, 128 steps (8 refreshes + 120 block
#     steps) and 8 steps (the 8 refreshes alone), over 120: `seconds` for "whole", `timings.denoise` for
#     "forward only" (dlm's records have no per-forward split: the refresh forwards are denoise forwards too).
#     reference: one block forward against a DualCache filled by a refresh (transformers' attention with the
#     block's fresh K/V written into the canvas' K/V, Fast-dLLM's replace_position), with / without the
#     commit. Medians of 5 after 2.
#  c  end to end, tok/s = batch * 256 / wall time of the whole generation (prompt to last token):
#     LLaDA: 256 steps (1 token a step), a full forward every step; batch 1 and 32 (LLADA_B32=0: 1 only).
#     Fast-dLLM: dual cache, 128 steps (2 tokens a step); per block one refresh forward over all 384
#     positions (which also takes the block's first step), then 15 forwards of the block's 32 positions
#     against the cache; batch 1 and 32. dlm: the group's record `seconds` (at b32 the largest: the batch
#     starts together); reference: CUDA events around the run, median of the timed runs, after a one-block
#     warm-up.
#  d  Qwen2.5-7B-shaped AR decoding, 128-token prompt, 256 greedy tokens, KV cache, batch 1 and 32, tok/s as
#     in c (prefill included). Reference: the faster of a manual greedy loop over transformers' DynamicCache
#     and transformers' generate() (the table names it); dlm --method autoregressive.
set -uo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DLM_BINARY OUT_DIR" >&2
  exit 2
fi
dlm=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ckpt=${CKPT_DIR:-/tmp/dlm-ckpt}
py=${TORCH_PYTHON:-python3}
llada_b32=${LLADA_B32:-1}
budget=${BUDGET_S:-570}
read -ra dlm_flags <<<"${DLM_FLAGS:-}"
if [[ ! -x $dlm ]]; then
  echo "$0: DLM_BINARY $dlm is not an executable file" >&2
  exit 2
fi
mkdir -p "$out" || exit 2
: >"$out/steps.tsv"

# step NAME TIMEOUT_S STDOUT_FILE COMMAND...: runs COMMAND with stdout to STDOUT_FILE and stderr to
# OUT_DIR/NAME.log, under its timeout cut to what is left of BUDGET_S; records its exit status (124: timed
# out; "skipped": no time left; "unselected": not in STEPS) and seconds in steps.tsv.
step() {
  local name=$1 limit=$2 stdout=$3
  shift 3
  if [[ -n ${STEPS:-} && $name != checkpoint_* && $name != zero_mask_logit && ",$STEPS," != *",$name,"* ]]; then
    printf '%s\tunselected\t0\n' "$name" >>"$out/steps.tsv"
    return 0
  fi
  local left=$((budget - SECONDS - 15))  # 15 s kept for the summary
  if ((left < 20)); then
    printf '%s\tskipped\t0\n' "$name" >>"$out/steps.tsv"
    echo "[$(date +%T)] $name: skipped, BUDGET_S=$budget s spent" >&2
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "[$(date +%T)] $name (timeout ${limit} s): $*" >&2
  local start=$SECONDS
  timeout --kill-after=15 "$limit" "$@" >"$stdout" 2>"$out/$name.log"
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >>"$out/steps.tsv"
  echo "[$(date +%T)] $name: exit $rc, $((SECONDS - start)) s" >&2
  return 0
}

step dlm_help 30 "$out/dlm_help.txt" "$dlm" --help

# The checkpoints: written once per machine (the index is written last, so its presence means complete).
checkpoint() {  # family
  local dir=$ckpt/$1
  [[ -f $dir/model.safetensors.index.json ]] && return 0
  step "checkpoint_$1" 300 "$out/checkpoint_$1.txt" \
    "$py" "$repo/tools/checkpoints/make_random_checkpoint.py" --family "$1" --out "$dir" --force
}
checkpoint llada-8b
checkpoint qwen2.5-7b
step zero_mask_logit 30 "$out/zero_mask_logit.txt" python3 "$here/zero_mask_logit.py" "$ckpt/llada-8b"

items_flag=()
[[ $llada_b32 == 1 ]] && items_flag=(--llada-b32)
for run in llada_b1 llada_b32 ar_b1 ar_b32; do
  python3 "$here/gpu_llada8b.py" items "$run" "$out/dlm_$run.items.jsonl" "${items_flag[@]}"
done

# dlm generate RUN BATCH TIMEOUT MODEL_FLAGS...
dlm_run() {
  local run=$1 batch=$2 limit=$3
  shift 3
  step "dlm_$run" "$limit" "$out/dlm_$run.stdout" "$dlm" generate --device cuda \
    --prompts "$out/dlm_$run.items.jsonl" -o "$out/dlm_$run.jsonl" --batch-size "$batch" --gen-length 256 --no-stop-early --temperature 0 \
    --no-progress -v "${dlm_flags[@]}" "$@"
}
llada=(-m "$ckpt/llada-8b" --method llada --block-length 32)
ar=(-m "$ckpt/qwen2.5-7b" --method autoregressive)
# The runs most likely to be cut by BUDGET_S go last: LLaDA at batch 32 (its end-to-end group last of all).
b32_limit=120
[[ $llada_b32 == 1 ]] && b32_limit=240
dlm_run llada_b1 1 120 "${llada[@]}"
dlm_run ar_b1 1 90 "${ar[@]}"
dlm_run ar_b32 32 90 "${ar[@]}"
dlm_run llada_b32 32 "$b32_limit" "${llada[@]}"

# Where dlm's step time goes: every op timed alone in one more run per point (full recompute and dual cache,
# batch 1 and 32, 2 steps per block); the tables land in profile.md.
step dlm_profile 150 "$out/profile.md" "$dlm" bench --device cuda -m "$ckpt/llada-8b" --method llada \
  --batch-size 1,32 --prompt-length 128 --gen-length 256 --block-length 32 --steps 16 --cache none,dual \
  --warmup 1 --repeat 1 --profile "${dlm_flags[@]}"

# The reference: one process per model (each loads its checkpoint once), LLaDA's batch-32 end to end last.
step torch_ar 150 "$out/torch_ar.jsonl" "$py" "$here/torch_reference.py" "$ckpt/qwen2.5-7b" \
  ar ar-generate --batch 1 32 --runs 1
llada_e2e=llada:1
[[ $llada_b32 == 1 ]] && llada_e2e=llada:1,32
ref_limit=150
[[ $llada_b32 == 1 ]] && ref_limit=300
step torch_llada "$ref_limit" "$out/torch_llada.jsonl" "$py" "$here/torch_reference.py" "$ckpt/llada-8b" \
  step dual-step fast-dllm "$llada_e2e" --batch 1 32 --warmup 2 --repeat 5 --runs 1

# The same profile with dlm's own attention kernels instead of cuDNN's, for the attention rows side by side.
step dlm_profile_kernel_attention 150 "$out/profile_kernel_attention.md" "$dlm" bench --device cuda \
  -m "$ckpt/llada-8b" --method llada --batch-size 1,32 --prompt-length 128 --gen-length 256 --block-length 32 \
  --steps 16 --cache none,dual --warmup 1 --repeat 1 --profile --cuda-attention kernel "${dlm_flags[@]}"

# A/B runs of options, each against the same bench with the default: AR decoding with the attention kernels
# never splitting a decoding step's keys across blocks (bench_ar.md, the default, which splits them;
# bench_ar_unsplit.md), and the batch-1 LLaDA steps with cuBLASLt's algorithms timed per product shape,
# split-K variants included (bench_b1.md, bench_b1_tuned.md).
ar_bench=(bench --device cuda -m "$ckpt/qwen2.5-7b" --method autoregressive --batch-size 1,32 --prompt-length 128
  --gen-length 256 --warmup 1 --repeat 2)
step dlm_bench_ar 90 "$out/bench_ar.md" "$dlm" "${ar_bench[@]}" "${dlm_flags[@]}"
step dlm_bench_ar_unsplit 90 "$out/bench_ar_unsplit.md" "$dlm" "${ar_bench[@]}" --cuda-split-attention off \
  "${dlm_flags[@]}"
b1_bench=(bench --device cuda -m "$ckpt/llada-8b" --method llada --batch-size 1 --prompt-length 128 --gen-length 256
  --block-length 32 --steps 16 --cache none,dual --warmup 1 --repeat 3)
step dlm_bench_b1 60 "$out/bench_b1.md" "$dlm" "${b1_bench[@]}" "${dlm_flags[@]}"
step dlm_bench_b1_tuned 90 "$out/bench_b1_tuned.md" "$dlm" "${b1_bench[@]}" --cuda-tune-gemm "${dlm_flags[@]}"

# Sampling with filters and a repetition penalty, whose rules run next to the logits: AR with Qwen2.5's
# generation settings (bench_filters_ar.md, against bench_ar.md's greedy decoding), LLaDA with top-k 50 and
# top-p 0.95 (bench_filters_llada.md).
step dlm_bench_filters_ar 90 "$out/bench_filters_ar.md" "$dlm" "${ar_bench[@]}" --temperature 0.7 --top-k 20 \
  --top-p 0.8 --repetition-penalty 1.05 "${dlm_flags[@]}"
step dlm_bench_filters_llada 90 "$out/bench_filters_llada.md" "$dlm" bench --device cuda -m "$ckpt/llada-8b" \
  --method llada --batch-size 1,8 --prompt-length 128 --gen-length 256 --block-length 32 --steps 64 \
  --temperature 0.5 --top-k 50 --top-p 0.95 --warmup 1 --repeat 2 "${dlm_flags[@]}"

# The products of these forwards, shape by shape (cuBLASLt's microseconds, weight streaming rate, TFLOP/s).
linear_bench=$(dirname "$dlm")/dlm_linear_bench
if [[ -x $linear_bench ]]; then
  step dlm_linear_bench 60 "$out/linear_bench.md" "$linear_bench" 30
fi

# The step times again with every op queued on its own (graphs off; dlm's default replays steady-state steps).
step dlm_bench_no_graphs 120 "$out/bench_no_graphs.md" "$dlm" bench --device cuda -m "$ckpt/llada-8b" \
  --method llada --batch-size 1,32 --prompt-length 128 --gen-length 256 --block-length 32 --steps 16 \
  --cache none,dual --warmup 1 --repeat 3 --cuda-graphs off "${dlm_flags[@]}"

DLM_FLAGS=${DLM_FLAGS:-} python3 "$here/gpu_llada8b.py" summary "$out"
