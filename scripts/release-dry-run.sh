#!/usr/bin/env bash
# Rehearses a release without changing this checkout or the registry:
# 1. in a throw-away worktree of HEAD, `changeset version` consumes the pending changesets; every
#    package named in them must get its own new version and a CHANGELOG.md entry, and private
#    workspaces (e2e, bench) must stay unversioned;
# 2. `pnpm publish --dry-run` of every published package (after a build), as `changeset publish` would.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tmp="$(mktemp -d)"
cleanup() { git -C "$ROOT" worktree remove --force "$tmp/tree" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

git worktree add --detach -q "$tmp/tree" HEAD
ln -s "$ROOT/node_modules" "$tmp/tree/node_modules"
pending="$(find .changeset -name '*.md' ! -name README.md | wc -l)"
echo "release dry run: $pending pending changeset(s)"
if [ "$pending" -gt 0 ]; then
  (cd "$tmp/tree" && node_modules/.bin/changeset version >/dev/null)
  node - "$ROOT" "$tmp/tree" <<'EOF'
const { readFileSync, readdirSync, existsSync } = require('node:fs');
const { join } = require('node:path');
const [before, after] = process.argv.slice(2);
const named = new Map();
for (const file of readdirSync(join(before, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md')) {
  const front = readFileSync(join(before, '.changeset', file), 'utf8').split('---')[1] ?? '';
  for (const m of front.matchAll(/['"]?(@redis-events\/[\w-]+)['"]?\s*:\s*(major|minor|patch)/g)) named.set(m[1], m[2]);
}
const problems = [];
for (const dir of readdirSync(join(before, 'packages'))) {
  const old = JSON.parse(readFileSync(join(before, 'packages', dir, 'package.json'), 'utf8'));
  const now = JSON.parse(readFileSync(join(after, 'packages', dir, 'package.json'), 'utf8'));
  const changelog = join(after, 'packages', dir, 'CHANGELOG.md');
  if (named.has(old.name)) {
    if (now.version === old.version) problems.push(`${old.name}: a changeset names it but its version stayed ${old.version}`);
    else if (!existsSync(changelog) || !readFileSync(changelog, 'utf8').includes(`## ${now.version}`)) problems.push(`${old.name}: no CHANGELOG entry for ${now.version}`);
    else console.log(`  ${old.name}: ${old.version} -> ${now.version} (${named.get(old.name)}), CHANGELOG.md written`);
  }
}
for (const dir of ['e2e', 'bench']) {
  const old = JSON.parse(readFileSync(join(before, dir, 'package.json'), 'utf8'));
  const now = JSON.parse(readFileSync(join(after, dir, 'package.json'), 'utf8'));
  if (old.version !== now.version) problems.push(`${old.name} is private but was versioned`);
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
EOF
fi
echo "publish dry run:"
pnpm -r --filter './packages/*' publish --dry-run --no-git-checks 2>&1 | sed 's/^/  /'
