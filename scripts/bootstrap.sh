# shellcheck shell=bash
# Brings a fresh machine to a working toolchain, idempotently:
#   1. Node >= 22.22 (the dev floor: vitest 5 and testcontainers 12), else Node 24 from the npm
#      package `node` into .tools/node (it ships the binary; no download outside the registry);
#   2. pnpm at the version pinned in package.json#packageManager, into .tools/pnpm when missing;
#   3. workspace dependencies with a frozen lockfile (skipped when nothing changed);
#   4. a redis-server for the tests and the demo: Debian's package through apt when missing and
#      we are root (skipped when REDIS_URL or REDIS_SERVER_BIN already selects a server);
#   5. tmux, the pseudo-terminal of the CLI's journey tests (e2e/journeys), and jq, which the CLI
#      README pipes into (e2e/commands runs those pipelines), with apt likewise.
# Sourced by ./run; prints what it does on stderr, keeps stdout for the command.

RE_ROOT="${RE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
RE_TOOLS="$RE_ROOT/.tools"
RE_NODE_MIN="22.22.0"
RE_NODE_PIN="24.21.0"

re_log() { printf '\033[2m[bootstrap]\033[0m %s\n' "$*" >&2; }
re_die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

# version_ge A B: true when dotted version A >= B
re_version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

re_npm_install_into() { # <prefix> <package@version>
  local prefix="$1" spec="$2"
  command -v npm >/dev/null 2>&1 || re_die "npm is needed once to fetch $spec; install Node.js with npm, or put Node >= $RE_NODE_MIN and pnpm on PATH"
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || printf '{ "private": true }\n' >"$prefix/package.json"
  re_log "installing $spec into ${prefix#"$RE_ROOT"/}"
  (cd "$prefix" && npm install --no-audit --no-fund --loglevel=error --save-exact "$spec" >&2) ||
    re_die "npm could not install $spec"
}

re_ensure_node() {
  local v=""
  if command -v node >/dev/null 2>&1; then v="$(node -p 'process.versions.node' 2>/dev/null || true)"; fi
  if [ -n "$v" ] && re_version_ge "$v" "$RE_NODE_MIN"; then return 0; fi
  local bin="$RE_TOOLS/node/node_modules/.bin"
  if [ ! -x "$bin/node" ] || [ "$("$bin/node" -p 'process.versions.node' 2>/dev/null)" != "$RE_NODE_PIN" ]; then
    re_log "system Node is ${v:-missing}; this project needs >= $RE_NODE_MIN"
    re_npm_install_into "$RE_TOOLS/node" "node@$RE_NODE_PIN"
  fi
  export PATH="$bin:$PATH"
}

re_ensure_pnpm() {
  local want
  want="$(node -p 'require(process.argv[1]).packageManager.split("@")[1].split("+")[0]' "$RE_ROOT/package.json")"
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$want" ]; then return 0; fi
  local bin="$RE_TOOLS/pnpm/node_modules/.bin"
  if [ ! -x "$bin/pnpm" ] || [ "$("$bin/pnpm" --version 2>/dev/null)" != "$want" ]; then
    re_npm_install_into "$RE_TOOLS/pnpm" "pnpm@$want"
  fi
  export PATH="$bin:$PATH"
}

re_ensure_deps() {
  local stamp="$RE_ROOT/node_modules/.bootstrap-stamp" sum
  sum="$(cd "$RE_ROOT" && cat pnpm-lock.yaml package.json pnpm-workspace.yaml ./*/package.json ./packages/*/package.json 2>/dev/null | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then return 0; fi
  re_log "installing workspace dependencies (frozen lockfile)"
  (cd "$RE_ROOT" && pnpm install --frozen-lockfile >&2) || re_die "pnpm install failed"
  printf '%s' "$sum" >"$stamp"
}

re_ensure_redis() {
  if [ -n "${REDIS_URL:-}" ] || [ -n "${REDIS_SERVER_BIN:-}" ]; then return 0; fi
  if command -v redis-server >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    re_log "installing Debian's redis-server and openssl with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || re_die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends redis-server openssl >&2 || re_die "apt-get install redis-server failed"
    return 0
  fi
  re_log "warning: no redis-server found and cannot install one (not root, or no apt)."
  re_log "  set REDIS_URL to a running Redis, or REDIS_SERVER_BIN to a redis-server binary,"
  re_log "  or install redis-server (e.g. 'sudo apt-get install redis-server')."
}

re_ensure_terminal_tools() {
  local missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    re_log "installing Debian's ${missing[*]} with apt (the CLI's journey tests and documented pipelines)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || re_die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || re_die "apt-get install ${missing[*]} failed"
    return 0
  fi
  re_log "warning: no ${missing[*]} found and cannot install (not root, or no apt); the CLI journey"
  re_log "  tests (e2e/journeys, tmux) and documented pipelines (e2e/commands, jq) need them:"
  re_log "  install them (e.g. 'sudo apt-get install ${missing[*]}')."
}

# Node and npm trust their bundled CA list, not the system's. Behind a TLS-inspecting proxy (or
# any private CA added to the system store) registry downloads then fail, so trust the system
# store as well when the caller has not chosen otherwise.
re_trust_system_cas() {
  local bundle=/etc/ssl/certs/ca-certificates.crt
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$bundle" ]; then export NODE_EXTRA_CA_CERTS="$bundle"; fi
}

bootstrap() {
  re_trust_system_cas
  re_ensure_node
  re_ensure_pnpm
  re_ensure_deps
  re_ensure_redis
  re_ensure_terminal_tools
  export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
}
