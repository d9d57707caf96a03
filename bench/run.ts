// Runs every benchmark suite (*.bench.ts) one after another, or those whose path contains the
// first argument: `pnpm bench resp`.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = import.meta.dirname;
const filter = process.argv[2] ?? '';
const suites = readdirSync(root, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.bench.ts') && !f.includes('node_modules') && f.includes(filter))
  .sort();
if (suites.length === 0) {
  console.error(`no benchmark matches "${filter}"`);
  process.exit(1);
}
for (const suite of suites) {
  process.stderr.write(`\n== ${relative(root, join(root, suite))}\n`);
  execFileSync(process.execPath, [...process.execArgv, join(root, suite)], { stdio: 'inherit' });
}
