#!/usr/bin/env bash
# Held-out task accuracy and speed of the default models, parallel against autoregressive decoding, through
# `dlm compare`: for each task, diffusion-11m over a sweep of steps and a sweep of confidence thresholds, each
# against ar-11m decoding the same prompts. Writes OUT_DIR/<task>_<sweep>.{json,svg,md}.
#   tools/eval/compare_default_models.sh DATA_DIR OUT_DIR [PROMPTS_PER_TASK]
# DATA_DIR holds tasks_test.jsonl from tools/data/build_dataset.py; dlm is build/dlm.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$1
out=$2
count=${3:-200}
mkdir -p "$out"

# task, tokens generated (the answer and its EOS fit), steps sweep (1, 2 and 4 tokens per step).
tasks=(
  "sudoku4 24 24,12,6"
  "reverse 16 16,8,4"
  "add 8 8,4,2"
  "sort 32 32,16,8"
)
for entry in "${tasks[@]}"; do
  read -r task gen steps <<<"$entry"
  python3 tools/eval/score_tasks.py items "$data/tasks_test.jsonl" "$task" "$count" >"$out/$task.jsonl"
  for sweep in "steps=$steps" "threshold=0.5,0.7,0.9"; do
    name=$out/${task}_${sweep%%=*}
    echo "== $task, $sweep" >&2
    build/dlm compare -m models/diffusion-11m --ar-model models/ar-11m --prompts "$out/$task.jsonl" \
      --gen-length "$gen" --steps "$gen" --block-length "$gen" --sweep "$sweep" --batch-size 8 \
      --report "$name.json" --chart "$name.svg" >"$name.md"
  done
done
