// Each published package, used the way a user gets it: packed as pnpm would publish it, installed
// with npm into an empty project outside the workspace (with the tarballs of the internal packages
// it depends on, since those are not on the registry yet), imported from ESM by plain Node, and
// typechecked from a TypeScript consumer against the shipped declarations.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

interface Manifest {
  name: string;
  version: string;
  bin?: Record<string, string>;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const published = readdirSync(join(root, 'packages'))
  .map((dir) => ({
    dir,
    manifest: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest,
  }))
  .filter(({ manifest }) => !manifest.private);

let work: string;
const tarballs = new Map<string, string>();

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'redis-events-consumers-'));
  for (const { dir, manifest } of published) {
    const out = execFileSync('pnpm', ['pack', '--pack-destination', work], {
      cwd: join(root, 'packages', dir),
      encoding: 'utf8',
    });
    const file = out.trim().split('\n').pop() ?? '';
    expect(file.endsWith('.tgz')).toBe(true);
    tarballs.set(manifest.name, file);
  }
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** The package's tarball and those of the internal packages it needs, transitively. */
function tarballsFor(name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const own = tarballs.get(name);
  if (!own) throw new Error(`${name} was not packed`);
  const manifest = published.find((p) => p.manifest.name === name)?.manifest;
  const internal = Object.keys(manifest?.dependencies ?? {}).filter((dep) => dep.startsWith('@redis-events/'));
  return [own, ...internal.flatMap((dep) => tarballsFor(dep, seen))];
}

describe.each(published.map((p) => [p.manifest.name, p] as const))('%s installed alone', (name, { manifest }) => {
  let project: string;

  beforeAll(() => {
    project = mkdtempSync(join(work, 'project-'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // Required peers install with the package (npm >= 7); optional ones stay out, as for a user.
    // A TypeScript user has @types/node; the version matches the one this repository builds with.
    const typesNode = JSON.parse(
      readFileSync(join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8'),
    ) as Manifest;
    execFileSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...tarballsFor(name),
        `@types/node@${typesNode.version}`,
      ],
      {
        cwd: project,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  }, 120_000);

  it('imports from ESM with plain Node, without the workspace', () => {
    writeFileSync(
      join(project, 'probe.mjs'),
      `const m = await import(${JSON.stringify(name)});\nconsole.log(JSON.stringify(Object.keys(m).sort()));\n`,
    );
    const exported = JSON.parse(
      execFileSync(process.execPath, ['probe.mjs'], { cwd: project, encoding: 'utf8' }),
    ) as string[];
    expect(exported.length).toBeGreaterThan(0);
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')) as Manifest;
    expect(installed.version).toBe(manifest.version);
    expect(JSON.stringify(installed)).not.toContain('@redis-events/source');
  });

  // Only packages with commands get this case (no skipped cases for the others).
  if (manifest.bin !== undefined)
    it('installs its commands, which run with plain Node', () => {
      for (const command of Object.keys(manifest.bin ?? {})) {
        const result = spawnSync(join(project, 'node_modules', '.bin', command), ['--help'], {
          cwd: project,
          encoding: 'utf8',
        });
        expect(result.stderr).toBe('');
        expect(result.status).toBe(0);
        expect(result.stdout).toMatch(new RegExp(`Usage: ${command}`));
      }
    });

  it('typechecks a TypeScript consumer against the shipped declarations', () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import * as api from ${JSON.stringify(name)};\nconst names: string[] = Object.keys(api);\nexport { names };\n`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2024',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    // skipLibCheck is off: the package's own .d.ts files must be valid for a strict consumer.
    const result = spawnSync(tsc, ['-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(`${result.stdout}${result.stderr}`.slice(0, 4000)).toBe('');
    expect(result.status).toBe(0);
  });
});
