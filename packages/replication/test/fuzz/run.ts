// Runs the RDB parser's fuzzer for as long as you like:
//
//   pnpm --filter @redis-events/replication fuzz [--seconds 600] [--seed 42] [--out test/fixtures/fuzz]
//
// Seeds follow one another (5,000 mutations each) until the time is up; each seed's cases are
// the same on every machine, so a finding is reproduced by its seed. The fuzzer runs in a
// worker watched from here: a case that does not finish within --hang-seconds (30) is a hang.
// A finding (or a hang) is saved as <out>/<what>-<seed>-<case>.rdb with a .txt saying what broke,
// and the run exits 1; put the .rdb in test/fixtures/fuzz to keep it in the check.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { RdbFuzzFinding, runRdbFuzz } from './rdb-target.ts';

interface Job {
  readonly seed: number;
  readonly seconds: number;
  readonly input: SharedArrayBuffer; // the case in progress: [index, length, ...bytes]
}

const MAX_SAVED = 4 * 1024 * 1024;

if (isMainThread) {
  const { values } = parseArgs({
    // `pnpm fuzz -- --seconds 5` hands the `--` over too
    args: process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === '--')),
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      out: { type: 'string', default: 'fuzz-findings' },
      'hang-seconds': { type: 'string', default: '30' },
    },
  });
  const seconds = Number(values.seconds);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  const hangMs = Number(values['hang-seconds']) * 1000;
  const out = resolve(values.out);
  const input = new SharedArrayBuffer(8 + MAX_SAVED);
  const header = new Int32Array(input, 0, 2);
  const save = (what: string, seedOf: number, index: number, bytes: Buffer, text: string) => {
    mkdirSync(out, { recursive: true });
    const base = join(out, `${what}-${seedOf}-${index}`);
    writeFileSync(`${base}.rdb`, bytes);
    writeFileSync(`${base}.txt`, `${text}\n`);
    console.error(`saved ${base}.rdb`);
  };
  console.log(`fuzzing the RDB parser for ${seconds} s from seed ${seed}`);
  const worker = new Worker(new URL(import.meta.url), { workerData: { seed, seconds, input } satisfies Job });
  let lastIndex = -1;
  let lastChange = Date.now();
  let currentSeed = seed;
  const watchdog = setInterval(() => {
    const index = Atomics.load(header, 0);
    if (index !== lastIndex) {
      lastIndex = index;
      lastChange = Date.now();
      return;
    }
    if (Date.now() - lastChange < hangMs) return;
    const length = Atomics.load(header, 1);
    const bytes = Buffer.from(new Uint8Array(input, 8, Math.min(length, MAX_SAVED)));
    save('hang', currentSeed, index, bytes, `case ${index} of seed ${currentSeed} did not finish in ${hangMs} ms`);
    void worker.terminate();
    process.exitCode = 1;
  }, 1000);
  worker.on(
    'message',
    (message: {
      kind: string;
      seed: number;
      cases?: number;
      finding?: { index: number; text: string; input: Uint8Array };
    }) => {
      currentSeed = message.seed;
      if (message.kind === 'seed-done') console.log(`seed ${message.seed}: ${message.cases} cases, no finding`);
      if (message.kind === 'finding' && message.finding) {
        const { index, text, input: bytes } = message.finding;
        save('finding', message.seed, index, Buffer.from(bytes), text);
        console.error(text);
        process.exitCode = 1;
      }
    },
  );
  worker.on('error', (err) => {
    console.error('the fuzzer itself failed:', err);
    process.exitCode = 1;
  });
  worker.on('exit', () => clearInterval(watchdog));
} else {
  const job = workerData as Job;
  const header = new Int32Array(job.input, 0, 2);
  const bytes = new Uint8Array(job.input, 8);
  const deadline = Date.now() + job.seconds * 1000;
  let counter = 0;
  for (let seed = job.seed; Date.now() < deadline; seed++) {
    try {
      const report = runRdbFuzz({
        seed,
        runs: 5000,
        seconds: (deadline - Date.now()) / 1000,
        everyTruncationUpTo: seed === job.seed ? undefined : 0, // every offset once, then samples
        onCase: (_index, input) => {
          Atomics.store(header, 0, ++counter);
          const length = Math.min(input.length, MAX_SAVED);
          bytes.set(input.subarray(0, length));
          Atomics.store(header, 1, length);
        },
      });
      parentPort?.postMessage({ kind: 'seed-done', seed, cases: report.cases });
    } catch (err) {
      if (!(err instanceof RdbFuzzFinding)) throw err;
      parentPort?.postMessage({
        kind: 'finding',
        seed,
        finding: { index: err.caseIndex, text: err.message, input: new Uint8Array(err.input) },
      });
      break;
    }
  }
}
