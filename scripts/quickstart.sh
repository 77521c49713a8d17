#!/usr/bin/env bash
# Sets up, builds, and runs the main job: batch generation from examples/prompts.txt, JSONL on stdout.
# Until the trained default model ships, the model is a tiny random-weight one written by the tests'
# fixture generator, so the text is noise.
#   scripts/quickstart.sh [extra `dlm generate` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target dlm dlm_make_tiny_model >&2
[[ -f build/tiny-model/config.json ]] || ./build/tests/fixtures/dlm_make_tiny_model build/tiny-model >&2
exec ./build/dlm generate --model build/tiny-model --prompts examples/prompts.txt "$@"
