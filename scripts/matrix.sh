#!/usr/bin/env bash
# The version matrix: the unit and e2e suites once per server, Debian's redis-server first, then
# every server in REDIS_SERVERS_DIR (default ../shared/redis). Prints a summary table and exits
# non-zero when any server fails (turbo --force: each server really runs). Pass server names to
# run only those: scripts/matrix.sh 7.4 valkey-9
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export REDIS_SERVERS_DIR="${REDIS_SERVERS_DIR:-$(cd "$ROOT/.." && pwd)/shared/redis}"
servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then
  servers=(debian)
  if [ -d "$REDIS_SERVERS_DIR" ]; then
    for dir in "$REDIS_SERVERS_DIR"/*/; do servers+=("$(basename "$dir")"); done
  fi
fi
summary=()
failed=0
for server in "${servers[@]}"; do
  start=$(date +%s)
  if [ "$server" = debian ]; then
    echo "== matrix: Debian's redis-server ($(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p'))" >&2
    env -u REDIS_SERVER pnpm turbo run test e2e --force --concurrency=2 --output-logs=errors-only
  else
    echo "== matrix: $server" >&2
    REDIS_SERVER="$server" pnpm turbo run test e2e --force --concurrency=2 --output-logs=errors-only
  fi
  status=$?
  took=$(($(date +%s) - start))
  if [ $status -eq 0 ]; then result=pass; else result=FAIL; failed=1; fi
  summary+=("$(printf '| %-14s | %-4s | %5ss |' "$server" "$result" "$took")")
done
echo
echo '| server         | result | time |'
echo '|----------------|--------|------|'
printf '%s\n' "${summary[@]}"
exit $failed
