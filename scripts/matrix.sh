#!/usr/bin/env bash
# The version matrix: the unit and e2e suites once per server, Debian's redis-server first, then
# every server in REDIS_SERVERS_DIR (default ../shared/redis). Prints a summary table and exits
# non-zero when any server fails (turbo --force: each server really runs). Pass server names to
# run only those: scripts/matrix.sh 7.4 valkey-9 (`pnpm matrix -- 7.4` works too).
#   --dry-run   resolve the names and print what would run, without running it
# The last line is a JSON summary (`{"matrix":...}`) for comparing runs.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export REDIS_SERVERS_DIR="${REDIS_SERVERS_DIR:-$(cd "$ROOT/.." && pwd)/shared/redis}"
servers=()
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --) ;;
    --dry-run) dry_run=1 ;;
    -*) echo "matrix: unknown option $arg; usage: pnpm matrix [server...] [--dry-run]" >&2; exit 2 ;;
    *) servers+=("$arg") ;;
  esac
done
if [ ${#servers[@]} -eq 0 ]; then
  servers=(debian)
  if [ -d "$REDIS_SERVERS_DIR" ]; then
    for dir in "$REDIS_SERVERS_DIR"/*/; do servers+=("$(basename "$dir")"); done
  fi
fi
if [ $dry_run -eq 1 ]; then
  status=0
  for server in "${servers[@]}"; do
    if [ "$server" = debian ]; then
      echo "would run: Debian's redis-server ($(command -v redis-server || echo 'not installed'))"
      continue
    fi
    # resolved the way the tests resolve REDIS_SERVER, so a name that matches nothing fails here
    if names="$(REDIS_SERVER="$server" node --conditions=@redis-events/source --input-type=module -e \
      "import { selectedServers } from '@redis-events/testkit'; try { console.log((await selectedServers()).map((s) => s.name + ' (' + s.version.text + ')').join(', ')) } catch (e) { console.log(e.message); process.exit(1) }" 2>&1)"; then
      echo "would run: $server -> $names"
    else
      echo "matrix: $server: $names" >&2
      status=1
    fi
  done
  printf '{"matrix":{"dryRun":true,"servers":%s,"passed":%s}}\n' \
    "$(printf '%s\n' "${servers[@]}" | node -e 'console.log(JSON.stringify(require("fs").readFileSync(0,"utf8").trim().split("\n")))')" \
    "$([ $status -eq 0 ] && echo true || echo false)"
  exit $status
fi

summary=()
rows=()
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
  rows+=("$(printf '{"server":"%s","result":"%s","seconds":%s}' "$server" "$result" "$took")")
done
echo
echo '| server         | result | time |'
echo '|----------------|--------|------|'
printf '%s\n' "${summary[@]}"
printf '{"matrix":{"dryRun":false,"servers":[%s],"passed":%s}}\n' "$(IFS=,; echo "${rows[*]}")" "$([ $failed -eq 0 ] && echo true || echo false)"
exit $failed
