# Shared by scripts/setup.sh and tools/data/install_sources.sh (sourced, run from the repository root):
# idempotent, non-interactive installs that print nothing when everything is already present.

# ensure_debian_packages LABEL PACKAGE...: apt-get installs the packages not yet installed.
ensure_debian_packages() {
  local label=$1
  shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # The machine image may already ship Node.js with its own npm; Debian's npm would conflict with it.
  command -v npm >/dev/null || missing+=(nodejs npm)
  ((${#missing[@]})) || return 0
  echo "$label: installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_npm_packages LABEL DIR NAME@VERSION...: npm installs into DIR/node_modules unless every package is
# there at exactly its version.
ensure_npm_packages() {
  local label=$1 dir=$2
  shift 2
  local spec name version installed need=0
  for spec in "$@"; do
    name=${spec%@*}
    version=${spec##*@}
    installed=$(node -p "require('./$dir/node_modules/$name/package.json').version" 2>/dev/null || true)
    [[ "$installed" == "$version" ]] || need=1
  done
  ((need)) || return 0
  echo "$label: installing npm packages into $dir: $*" >&2
  mkdir -p "$dir"
  [[ -f $dir/package.json ]] || echo '{"name":"dlm-test-data","private":true}' >"$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --silent "$@" >/dev/null
}
