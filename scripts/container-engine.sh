#!/usr/bin/env bash
# A Docker-compatible engine for the testkit's container mode, without any registry:
#   scripts/container-engine.sh start   install podman and runc (apt, as root) when missing, build
#                                       an image from the installed redis-server binary, start
#                                       podman's Docker API on a socket under .tools/podman, and
#                                       print the environment for the testkit (eval it);
#   scripts/container-engine.sh stop    stop that API service and remove testcontainers' leftovers.
# It fails loudly when the engine cannot start: container mode is never skipped in silence.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.tools/podman"
SOCK="$STATE/podman.sock"
CONF="$STATE/containers.conf"
log() { printf '[container-engine] %s\n' "$*" >&2; }
die() { printf '[container-engine] error: %s\n' "$*" >&2; exit 1; }

ensure_podman() {
  if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1; then return 0; fi
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || die "podman and runc are missing and cannot be installed here (needs root and apt)"
  log "installing podman and runc with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends podman runc >&2 || die "apt-get install podman runc failed"
}

write_conf() {
  mkdir -p "$STATE"
  # runc may not raise a limit above the host's hard limit, and podman's defaults are higher than
  # many hosts allow (EPERM on RLIMIT_NOFILE / RLIMIT_NPROC), so take the host's own limits.
  local nofile nproc
  nofile="$(ulimit -Hn)"
  nproc="$(ulimit -Hu)"
  [ "$nofile" = unlimited ] && nofile=1048576
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; then nproc=4096; fi
  cat >"$CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
}

# The image holds the host's redis-server and the shared libraries it links, on an empty base:
# nothing is pulled from a registry.
build_image() {
  local bin version tag ctx
  bin="${REDIS_SERVER_BIN:-$(command -v redis-server || true)}"
  [ -x "$bin" ] || die "no redis-server binary to put in the image (install redis-server or set REDIS_SERVER_BIN)"
  version="$("$bin" --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')"
  tag="localhost/redis-events/redis:$version"
  if CONTAINERS_CONF="$CONF" podman image exists "$tag"; then echo "$tag"; return 0; fi
  log "building $tag from $bin"
  ctx="$(mktemp -d)"
  mkdir -p "$ctx/root/usr/bin" "$ctx/root/data" "$ctx/root/etc" "$ctx/root/tmp"
  cp -L "$bin" "$ctx/root/usr/bin/redis-server"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$ctx/root$(dirname "$lib")"
    cp -L "$lib" "$ctx/root$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$ctx/root/etc/passwd"
  cat >"$ctx/Containerfile" <<'EOF'
FROM scratch
COPY root/ /
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/usr/bin/redis-server"]
CMD ["--protected-mode", "no"]
EOF
  CONTAINERS_CONF="$CONF" podman build --pull=never -q -t "$tag" "$ctx" >&2 || die "podman build of $tag failed"
  rm -rf "$ctx"
  echo "$tag"
}

start_service() {
  if [ -S "$SOCK" ] && curl -sf --unix-socket "$SOCK" http://engine/_ping >/dev/null 2>&1; then return 0; fi
  rm -f "$SOCK"
  CONTAINERS_CONF="$CONF" nohup podman system service --time=0 "unix://$SOCK" >"$STATE/service.log" 2>&1 &
  echo $! >"$STATE/service.pid"
  for _ in $(seq 1 100); do
    if curl -sf --unix-socket "$SOCK" http://engine/_ping >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "podman's API service did not answer on $SOCK (log: $STATE/service.log)"
}

remove_leftovers() {
  local ids
  ids="$(CONTAINERS_CONF="$CONF" podman ps -aq --filter label=org.testcontainers=true 2>/dev/null || true)"
  if [ -n "$ids" ]; then CONTAINERS_CONF="$CONF" podman rm -f $ids >/dev/null 2>&1 || true; fi
}

case "${1:-}" in
  start)
    ensure_podman
    write_conf
    tag="$(build_image)"
    start_service
    remove_leftovers
    cat <<EOF
export DOCKER_HOST=unix://$SOCK
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
export REDIS_IMAGE=$tag
export REDIS_TESTKIT_OFFLINE=1
EOF
    ;;
  stop)
    remove_leftovers
    if [ -f "$STATE/service.pid" ]; then kill "$(cat "$STATE/service.pid")" 2>/dev/null || true; rm -f "$STATE/service.pid" "$SOCK"; fi
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
