#!/usr/bin/env bash
# Sets up, builds, and runs the main job: batch generation with the default masked-diffusion model
# (models/diffusion-11m) over examples/prompts.txt, JSONL on stdout.
#   scripts/quickstart.sh [extra `dlm generate` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target dlm >&2
exec ./build/dlm generate --model models/diffusion-11m --prompts examples/prompts.txt \
  --gen-length 48 --steps 48 --block-length 16 "$@"
