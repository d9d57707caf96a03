#!/usr/bin/env bash
# pnpm canary: tries this commit against the newest versions the registry serves, without
# touching the lockfile the check uses. In a throw-away worktree of HEAD it
#   1. updates every dependency to the newest version its range allows (`pnpm update -r`),
#      which moves the peers ioredis and testcontainers and the tools (vitest, turbo...);
#   2. takes the newest TypeScript 7 and the newest Node types (@types/node@latest, what a user
#      on the current Node has);
#   3. builds, runs the unit tests, and the consumer tests (e2e/packaging: packed packages in an
#      npm project; e2e/readme: every README block typechecked and run), which install what
#      the updated lockfile pins;
# then prints what moved and what broke, with which version. Exit 1 when something broke.
# Not part of `./run check`: that one installs exactly what pnpm-lock.yaml pins.
set -uo pipefail
if [ "${1:-}" = "--" ]; then shift; fi
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
if [ $# -gt 0 ]; then echo "canary: unknown argument $1 (usage: pnpm canary [--help])" >&2; exit 2; fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/redis-events-canary-XXXXXX")"
log="$work.log"
cleanup() {
  git -C "$root" worktree remove --force "$work" >/dev/null 2>&1 || rm -rf "$work"
  git -C "$root" worktree prune >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '[canary] %s\n' "$*"; }

git -C "$root" worktree add --detach --quiet "$work" HEAD || { say "cannot create a worktree"; exit 1; }
[ -d "$root/.tools" ] && ln -s "$root/.tools" "$work/.tools"
cd "$work" || exit 1

# name → version of the direct dependencies of every workspace project
versions() {
  pnpm ls -r --depth 0 --json 2>/dev/null | node -e '
    const projects = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    const out = {};
    for (const p of projects)
      for (const kind of ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"])
        for (const [name, info] of Object.entries(p[kind] ?? {}))
          if (!String(info.version).startsWith("link:")) out[name] = info.version;
    console.log(JSON.stringify(out));'
}

say "installing what the lockfile pins (for the comparison)"
pnpm install --frozen-lockfile >"$log" 2>&1 || { say "pnpm install failed: see $log"; exit 1; }
before="$(versions)"

say "updating every dependency to the newest version its range allows"
pnpm update -r >>"$log" 2>&1 || { say "pnpm update failed: see $log"; exit 1; }
pnpm add -D -w 'typescript@^7' '@types/node@latest' >>"$log" 2>&1 || { say "pnpm add failed: see $log"; exit 1; }
pnpm --filter @redis-events/e2e add -D '@types/node@latest' >>"$log" 2>&1 || true
after="$(versions)"

say "what moved:"
moved="$(node -e '
  const [before, after] = process.argv.slice(1).map((s) => JSON.parse(s));
  const rows = Object.keys(after).sort().filter((n) => before[n] !== after[n]).map((n) => `  ${n} ${before[n] ?? "-"} -> ${after[n]}`);
  console.log(rows.join("\n") || "  nothing: the lockfile already has the newest versions");' "$before" "$after")"
printf '%s\n' "$moved"

failed=()
step() { # <name> <command...>
  local name="$1"
  shift
  say "running: $name"
  if "$@" >>"$log" 2>&1; then say "  ok: $name"; else say "  BROKEN: $name"; failed+=("$name"); fi
}
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
step build pnpm turbo run build --output-logs=errors-only --cache=local:
step typecheck pnpm turbo run typecheck --output-logs=errors-only --cache=local:
step "unit tests" pnpm turbo run test --output-logs=errors-only --cache=local:
step "packed packages in a consumer project, README blocks" pnpm vitest run --project e2e packaging readme

echo
if [ "${#failed[@]}" -eq 0 ]; then
  say "all green with the newest versions above"
  exit 0
fi
say "broken with the newest versions above: ${failed[*]}"
say "the failures (from $log, kept):"
grep -E "error TS|FAIL|AssertionError|Error:|ERR_" "$log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u | head -60
trap - EXIT
cleanup
exit 1
