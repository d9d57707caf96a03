// README code blocks are tests. Every ```ts block of every README (see blocks.ts for the kinds)
// is typechecked as a user's code would be: in an npm project outside the workspace that
// installed our packed packages (and the peers at the versions the lockfile pins), with the
// tsconfig.json that `tsc --init` writes (strict, exactOptionalPropertyTypes, skipLibCheck)
// plus `types: ["node"]` as its comments say for Node; then once more with skipLibCheck off.
// Each whole program then runs there with plain Node against a real Redis, and the output its
// comments state is compared.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisServer, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, packAll, root, tsc } from '../packaging/consumer.ts';
import { extractBlocks, instrument, outputChecks, printedLines, type ReadmeBlock, readmes } from './blocks.ts';

const all: ReadmeBlock[] = readmes(root).flatMap(({ readme, pkg }) =>
  extractBlocks(readme, pkg, readFileSync(join(root, readme), 'utf8')),
);
const fileOf = (block: ReadmeBlock) => `${block.pkg}-${block.index}.ts`;
const RUN_TIMEOUT_MS = 60_000;

let work: string;
let project: string;
let server: RedisServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'redis-events-readme-'));
  const tarballs = packAll(work);
  // vitest: the testkit README shows a global setup and a test file; the OpenTelemetry SDK: the
  // opentelemetry README sets one up
  project = createConsumer(
    work,
    [...tarballs.values()],
    [
      'ioredis',
      '@types/node',
      'vitest',
      '@opentelemetry/api',
      '@opentelemetry/sdk-trace',
      '@opentelemetry/sdk-metrics',
      '@opentelemetry/context-async-hooks',
    ],
  );
  execFileSync(tsc, ['--init'], { cwd: project, stdio: 'ignore' });
  renameSync(join(project, 'tsconfig.json'), join(project, 'tsconfig.init.json'));
  mkdirSync(join(project, 'blocks'));
  for (const block of all) {
    const preamble = block.preamble ? `${block.preamble}\n` : '';
    // `export {}`: a block is a module even when it imports nothing (a fragment)
    writeFileSync(join(project, 'blocks', fileOf(block)), `${preamble}${block.code}\nexport {};\n`);
  }
  server = await spawnRedis();
  // The RDB examples read dump.rdb (and small-dump.rdb) from the working directory: a small
  // dataset of each common type, saved by the test's server.
  const client = server.createClient();
  await client.set('greeting', 'hello');
  await client.hset('user:1', { name: 'ada', email: 'ada@example.com' });
  await client.zadd('scores', 1, 'ada', 2, 'grace');
  await client.rpush('jobs', 'a', 'b', 'c');
  await client.save();
  const [, dir] = (await client.config('GET', 'dir')) as [string, string];
  const [, dbfilename] = (await client.config('GET', 'dbfilename')) as [string, string];
  copyFileSync(join(dir, dbfilename), join(project, 'dump.rdb'));
  copyFileSync(join(dir, dbfilename), join(project, 'small-dump.rdb'));
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
  const counts = new Map<string, { typechecked: number; run: number }>();
  for (const block of all) {
    const count = counts.get(block.pkg) ?? { typechecked: 0, run: 0 };
    count.typechecked++;
    if (block.kind === 'program') count.run++;
    counts.set(block.pkg, count);
  }
  console.log(`README blocks (typechecked / run): ${JSON.stringify(Object.fromEntries(counts))}`);
});

/** tsc over every block; errors are reported at their README line. */
function typecheck(skipLibCheck: boolean): string[] {
  const config = `tsconfig.blocks-${skipLibCheck ? 'skip' : 'full'}.json`;
  writeFileSync(
    join(project, config),
    JSON.stringify({
      extends: './tsconfig.init.json',
      compilerOptions: { types: ['node'], noEmit: true, skipLibCheck },
      include: ['blocks/*.ts'],
    }),
  );
  let output = '';
  try {
    execFileSync(tsc, ['-p', config, '--pretty', 'false'], { cwd: project, encoding: 'utf8', maxBuffer: 1 << 26 });
  } catch (err) {
    output = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
  }
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const m = /^blocks\/([\w-]+)-(\d+)\.ts\((\d+),(\d+)\): (.*)$/.exec(line);
      const block = m && all.find((b) => b.pkg === m[1] && b.index === Number(m[2]));
      if (!m || !block) return line;
      const preambleLines = block.preamble ? block.preamble.split('\n').length : 0;
      const at = Number(m[3]) - preambleLines;
      const where =
        at >= 1 ? `${block.readme}:${block.line + at - 1}:${m[4]}` : `${block.readme}:${block.line} (preamble)`;
      return `${where}: ${m[5]}`;
    });
}

describe('README ts blocks', () => {
  it('finds blocks in the READMEs, and each program imports what it uses', () => {
    expect(all.length).toBeGreaterThan(40);
  });

  // One tsc run over every block of every README: about 20 s on an idle 2-core machine, more
  // when other work shares it, so these get a bound well above the default.
  it('typecheck as a consumer with the tsc --init settings (exactOptionalPropertyTypes, skipLibCheck)', () => {
    expect(typecheck(true)).toEqual([]);
  }, 180_000);

  it('typecheck with skipLibCheck off, against the peers the lockfile pins', () => {
    expect(typecheck(false)).toEqual([]);
  }, 180_000);
});

const programs = all.filter((b) => b.kind === 'program');

describe.each([...new Set(programs.map((b) => b.readme))])('%s programs', (readme) => {
  it.each(programs.filter((b) => b.readme === readme).map((b) => [`block ${b.index} (line ${b.line})`, b] as const))(
    '%s runs as written and prints what it says',
    async (_name, block) => {
      await server.flushAll();
      const file = join(project, 'blocks', `run-${fileOf(block)}`);
      writeFileSync(file, instrument(block));
      const prints = printedLines(block);
      const result = await runNode(file, {
        README_REDIS_PORT: String(server.port),
        REDIS_URL: 'redis://127.0.0.1:6379',
        README_CHECKS: JSON.stringify(outputChecks(block).map((c) => `${block.readme}:${c.line}`)),
        ...(prints.length > 0
          ? { README_PRINTS: JSON.stringify({ where: `${block.readme}:${block.line}`, lines: prints }) }
          : {}),
      });
      const mismatches = result.stderr
        .split('\n')
        .filter((line) => line.startsWith('README-MISMATCH '))
        .map((line) => JSON.parse(line.slice('README-MISMATCH '.length)) as unknown);
      expect(mismatches).toEqual([]);
      expect({ code: result.code, signal: result.signal, stderr: result.stderr.slice(-2000) }).toMatchObject({
        code: 0,
        signal: null,
      });
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runNode(file: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', join(import.meta.dirname, 'preload.mjs'), file], {
      cwd: project,
      env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not exit within ${RUN_TIMEOUT_MS} ms (it hangs); output:\n${stdout}\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
