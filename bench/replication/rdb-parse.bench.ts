// RDB parse throughput and peak memory: our parser against redis-check-rdb (C, ships with
// redis-server; it loads every key into Redis objects, checksum included) on the same file,
// written by a real server with a realistic mix of types and encodings.
//
// Peers from npm: `rdb-parser` (2012) and `rdb-tools` (2014) read RDB <= 6 only and are not on
// the registry this project installs from, so no JavaScript peer runs here.
//
// Two sizes show throughput and that memory does not follow the file size. BENCH_RDB_KEYS sets
// the smaller key count (default 100,000; the larger file has 4 times as many keys).
//
// "ours" is the fastest way to use the parser: `RdbParser.write(chunk, onEvent)`, each event
// handed over as soon as it is complete. Peak RSS is measured on the built JavaScript (what users
// run; the TypeScript loader of this suite would add its own memory), with Node's defaults and
// with a 2 MiB young generation (`--max-semi-space-size=2`).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseRdbFile, type RdbEvent, RdbParser } from '@redis-events/replication';
import { findServer, spawnRedis } from '@redis-events/testkit';
import { type BenchCase, runSuite } from '../lib/harness.ts';
import { writeMix } from './mix.ts';

interface Fixture {
  path: string;
  keys: number;
  bytes: number;
}

const CHECK_RDB = process.env.BENCH_CHECK_RDB ?? 'redis-check-rdb';

/** Writes a realistic mix with a real server and returns its dump. */
async function makeFixture(dir: string, keys: number): Promise<Fixture> {
  await using server = await spawnRedis({ binary: await findServer({ PATH: process.env.PATH }) });
  const written = await writeMix(server.createClient({ protocol: 2 }), keys);
  await server.command('SAVE');
  const path = join(dir, `mix-${keys}.rdb`);
  copyFileSync(join(server.dir, 'dump.rdb'), path);
  return { path, keys: written, bytes: statSync(path).size };
}

function parseSync(path: string): number {
  const fd = openSync(path, 'r');
  const parser = new RdbParser();
  let keys = 0;
  const onEvent = (e: RdbEvent) => {
    if (e.kind === 'entry' && e.last) keys++;
  };
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk);
      if (n === 0) break;
      parser.write(chunk.subarray(0, n), onEvent);
    }
    parser.end();
  } finally {
    closeSync(fd);
  }
  return keys;
}

async function parseAsync(path: string): Promise<number> {
  let keys = 0;
  for await (const e of parseRdbFile(path)) if (e.kind === 'entry' && e.last) keys++;
  return keys;
}

function checkRdb(path: string): number {
  const out = execFileSync(CHECK_RDB, [path], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const m = /(\d+) keys read/.exec(out);
  if (!m || !out.includes('RDB looks OK')) throw new Error(`redis-check-rdb failed:\n${out.slice(-500)}`);
  return Number(m[1]);
}

// Case processes find the fixtures in the environment the parent sets before runSuite.
const fixtures: Fixture[] = JSON.parse(process.env.BENCH_RDB_FIXTURES ?? '[]') as Fixture[];
const isCase = process.argv.some((a) => a.startsWith('--case='));
let dir: string | undefined;
if (!isCase) {
  dir = mkdtempSync(join(tmpdir(), 'bench-rdb-'));
  // a dry run only proves the suite loads: small fixtures
  const small = Number(process.env.BENCH_RDB_KEYS ?? (process.env.BENCH_DRY_RUN ? 1000 : 100_000));
  for (const keys of [small, small * 4]) fixtures.push(await makeFixture(dir, keys));
  process.env.BENCH_RDB_FIXTURES = JSON.stringify(fixtures);
}

// Peak RSS is measured in a plain JavaScript process on the built package: it parses once, the
// way the timed cases do, and prints its peak RSS.
const RSS_SCRIPT = `
import { closeSync, openSync, readSync } from 'node:fs';
import { parseRdbFile, RdbParser } from '@redis-events/replication';
const [mode, path, expected] = process.argv.slice(-3);
let keys = 0;
if (mode === 'async') {
  for await (const e of parseRdbFile(path)) if (e.kind === 'entry' && e.last) keys++;
} else {
  const fd = openSync(path, 'r');
  const parser = new RdbParser();
  const onEvent = (e) => { if (e.kind === 'entry' && e.last) keys++; };
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const n = readSync(fd, chunk);
    if (n === 0) break;
    parser.write(chunk.subarray(0, n), onEvent);
  }
  parser.end();
  closeSync(fd);
}
if (keys !== Number(expected)) throw new Error('parsed ' + keys + ' keys, expected ' + expected);
process.stdout.write(process.resourceUsage().maxRSS * 1024 + '\\n');
`;

/** Builds the package (incrementally), so that the RSS runs use the current code. */
function buildPackage(): void {
  const require = createRequire(import.meta.url);
  const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin/tsc');
  const dir = join(import.meta.dirname, '../../packages/replication');
  execFileSync(process.execPath, [tsc, '-b', dir], { stdio: 'inherit' });
}

function group(f: Fixture): string {
  return `${f.keys.toLocaleString('en')} keys, ${(f.bytes / 1048576).toFixed(1)} MiB RDB (redis 7.0 mix)`;
}

const cases: BenchCase[] = [];
fixtures.forEach((f, i) => {
  const check = (keys: number) => {
    if (keys !== f.keys) throw new Error(`read ${keys} keys, expected ${f.keys}`);
    return { ops: keys, bytes: f.bytes };
  };
  cases.push({ group: group(f), subject: 'ours', run: () => check(parseSync((fixtures[i] as Fixture).path)) });
  cases.push({
    group: group(f),
    subject: 'ours (parseRdbFile, async iterator)',
    run: async () => check(await parseAsync(f.path)),
  });
  cases.push({ group: group(f), subject: 'redis-check-rdb 7.0 (C)', run: () => check(checkRdb(f.path)) });
});

/** Peak RSS of a command: VmHWM read from /proc until it exits. */
function peakRss(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    // From this folder, so that a script resolves '@redis-events/replication' to the built package.
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: import.meta.dirname });
    let peak = 0;
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {
        // the process has just ended
      }
    }, 2);
    child.on('error', reject);
    child.on('close', () => {
      clearInterval(poll);
      const reported = Number(out.trim().split('\n').pop());
      resolve(Number.isFinite(reported) && reported > 0 ? reported : peak);
    });
  });
}

try {
  await runSuite(import.meta.url, 'replication: RDB parse throughput', cases);
  if (isCase) process.exit(0);
  if (process.env.BENCH_DRY_RUN) process.exit(0);
  buildPackage();
  const lines = [
    '**Peak RSS (whole process; ours: the built JavaScript, Node defaults / `--max-semi-space-size=2`)**',
    '',
    '| RDB | ours | ours (async iterator) | redis-check-rdb |',
    '|---|---:|---:|---:|',
  ];
  const node = (flags: string[], mode: string, f: Fixture) =>
    peakRss(process.execPath, [...flags, '--input-type=module', '-e', RSS_SCRIPT, mode, f.path, String(f.keys)]);
  const small = ['--max-semi-space-size=2'];
  for (const f of fixtures) {
    const mib = (n: number) => `${(n / 1048576).toFixed(0)}`;
    const sync = `${mib(await node([], 'sync', f))} / ${mib(await node(small, 'sync', f))} MiB`;
    const async = `${mib(await node([], 'async', f))} / ${mib(await node(small, 'async', f))} MiB`;
    const c = `${mib(await peakRss(CHECK_RDB, [f.path]))} MiB`;
    lines.push(`| ${group(f)} | ${sync} | ${async} | ${c} |`);
  }
  console.log(`${lines.join('\n')}\n`);
} finally {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
