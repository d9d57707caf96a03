// Runs every benchmark suite (*.bench.ts) one after another, or those whose path contains the
// filter: `pnpm bench resp` (`pnpm bench -- resp` works too).
//   --dry-run   loads each suite and lists its cases without measuring anything
// At the end it prints one JSON line (`{"bench":...}`) with every measurement and each peer's
// ratio to ours, for comparing runs without reading tables.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { SuiteSummary } from './lib/harness.ts';

const root = import.meta.dirname;
const args = process.argv.slice(2).filter((a) => a !== '--');
const dryRun = args.includes('--dry-run');
const unknown = args.filter((a) => a.startsWith('-') && a !== '--dry-run');
if (unknown.length > 0) {
  console.error(`unknown option ${unknown.join(' ')}; usage: pnpm bench [filter] [--dry-run]`);
  process.exit(2);
}
const filter = args.find((a) => !a.startsWith('-')) ?? '';
const suites = readdirSuites().filter((f) => f.includes(filter));
if (suites.length === 0) {
  console.error(`no benchmark matches "${filter}"`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'redis-events-bench-'));
const summaryFile = join(work, 'summary.jsonl');
try {
  for (const suite of suites) {
    process.stderr.write(`\n== ${relative(root, join(root, suite))}\n`);
    execFileSync(process.execPath, [...process.execArgv, join(root, suite)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_SUMMARY_FILE: summaryFile, ...(dryRun ? { BENCH_DRY_RUN: '1' } : {}) },
    });
  }
  let lines: string[] = [];
  try {
    lines = readFileSync(summaryFile, 'utf8').split('\n').filter(Boolean);
  } catch {
    // no suite wrote a summary (every case filtered out)
  }
  const summaries = lines.map((line) => JSON.parse(line) as SuiteSummary);
  console.log(JSON.stringify({ bench: { filter, dryRun, suites: summaries } }));
} finally {
  rmSync(work, { recursive: true, force: true });
}

function readdirSuites(): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.bench.ts') && !f.includes('node_modules'))
    .sort();
}
