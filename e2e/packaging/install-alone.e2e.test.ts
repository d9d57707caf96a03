// Each published package, used the way a user gets it: packed as pnpm would publish it, installed
// with npm into an empty project outside the workspace (with the tarballs of the internal packages
// it depends on, since those are not on the registry yet), imported from ESM by plain Node, and
// typechecked from a TypeScript consumer against the shipped declarations.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, type Manifest, packAll, published, tarballsFor, tsc } from './consumer.ts';
import { optionalWithoutUndefined } from './declarations.ts';

let work: string;
let tarballs: Map<string, string>;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'redis-events-consumers-'));
  tarballs = packAll(work);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe.each(published.map((p) => [p.manifest.name, p] as const))('%s installed alone', (name, { manifest }) => {
  let project: string;

  beforeAll(() => {
    // Required peers install with the package (npm >= 7), at the versions the workspace lockfile
    // pins; optional ones stay out, as for a user. A TypeScript user has @types/node.
    const peers = Object.keys(manifest.peerDependencies ?? {}).filter(
      (peer) => !manifest.peerDependenciesMeta?.[peer]?.optional,
    );
    project = createConsumer(work, tarballsFor(tarballs, name), [...peers, '@types/node']);
  }, 120_000);

  it('imports from ESM with plain Node, without the workspace, every subpath too', () => {
    // Every entry of the exports map but package.json: `@redis-events/resp/ioredis` loads without
    // ioredis installed (an optional peer it only takes types from).
    const entries = Object.keys(manifest.exports ?? { '.': '' })
      .filter((key) => key !== './package.json')
      .map((key) => (key === '.' ? name : `${name}/${key.slice(2)}`));
    writeFileSync(
      join(project, 'probe.mjs'),
      `const out = {};\nfor (const entry of ${JSON.stringify(entries)}) out[entry] = Object.keys(await import(entry)).sort();\nconsole.log(JSON.stringify(out));\n`,
    );
    const exported = JSON.parse(
      execFileSync(process.execPath, ['probe.mjs'], { cwd: project, encoding: 'utf8' }),
    ) as Record<string, string[]>;
    expect(Object.keys(exported)).toEqual(entries);
    for (const entry of entries) expect(exported[entry]?.length, entry).toBeGreaterThan(0);
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

  // A project with exactOptionalPropertyTypes (TypeScript 7's tsc --init turns it on) must be
  // able to pass `undefined` to any optional property: `{ url: process.env.REDIS_URL }`.
  it('declares every optional property of its declarations as accepting undefined', () => {
    const offenders = optionalWithoutUndefined(join(project, 'node_modules', name));
    expect(offenders).toEqual([]);
  });
});
