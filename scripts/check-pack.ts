// Packs the package in the current directory the way `pnpm publish` would, then checks the
// tarball: publint (strict), attw (ESM-only profile), and that no development-only export
// condition or workspace range leaked into what would be published.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const out = mkdtempSync(join(tmpdir(), 'redis-events-pack-'));
try {
  execFileSync('pnpm', ['pack', '--pack-destination', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = join(out, readdirSync(out).find((f) => f.endsWith('.tgz')) ?? '');
  const manifest = execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' });
  const problems: string[] = [];
  if (manifest.includes('@redis-events/source'))
    problems.push('the "@redis-events/source" export condition leaked into the tarball');
  if (manifest.includes('workspace:')) problems.push('a "workspace:" range leaked into the tarball');
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
  // Every entry of the development exports map is published (a subpath such as
  // `@redis-events/resp/ioredis`), and every file the published map names is in the tarball.
  type Conditions = Record<string, string>;
  const published = JSON.parse(manifest) as { exports?: Record<string, string | Conditions> };
  const local = JSON.parse(readFileSync('package.json', 'utf8')) as { exports?: Record<string, string | Conditions> };
  for (const entry of Object.keys(local.exports ?? {})) {
    if (!(entry in (published.exports ?? {})))
      problems.push(`the export "${entry}" is missing from publishConfig.exports`);
  }
  for (const [entry, target] of Object.entries(published.exports ?? {})) {
    for (const path of typeof target === 'string' ? [target] : Object.values(target)) {
      if (!files.includes(`package/${path.replace(/^\.\//, '')}`))
        problems.push(`the export "${entry}" names ${path}, which is not in the tarball`);
    }
  }
  if (files.some((f) => f.includes('/test/') || f.endsWith('.tsbuildinfo')))
    problems.push('tests or build info are in the tarball');
  if (problems.length > 0) {
    console.error(`check:pack ${process.cwd()}:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  execFileSync(bin('publint'), ['run', tarball, '--strict'], { stdio: 'inherit' });
  execFileSync(bin('attw'), [tarball, '--profile', 'esm-only', '--no-emoji', '--no-color'], { stdio: 'inherit' });
} finally {
  rmSync(out, { recursive: true, force: true });
}
