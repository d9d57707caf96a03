// The fuzzer on demand: mutation fuzzing of the project's parsers for as long as you like.
//
//   pnpm fuzz                          # every target, 5 minutes in all
//   pnpm fuzz --minutes 30 resp        # one target (also: pnpm fuzz -- --minutes 30 resp)
//   pnpm fuzz --seconds 20 --seed 7    # another sequence of inputs
//   pnpm fuzz resp --replay fuzz-findings/resp/chunking-0123456789ab.bin
//
// Each target runs in a worker thread. A watchdog terminates a worker whose check has not
// finished within --hang-ms and records that input as a `hang`; a worker that dies (out of
// memory: --max-old-mb) is recorded as a `crash`; either way a new worker continues with the next
// seed until the time is up. Findings are written to --out (fuzz-findings/<target>/<kind>-<id>.bin
// and .txt). The last line on stdout is one JSON summary; the exit code is 1 when anything was found.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { type Finding, FuzzFinding, type FuzzSummary, findingOf, Rng } from './engine.ts';
import { TARGETS } from './targets.ts';
import type { WorkerData, WorkerMessage } from './worker.ts';

const root = resolve(import.meta.dirname, '../..');
// `pnpm fuzz -- --minutes 1` hands the script a literal `--`: drop it, so both spellings work.
const argv = process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === '--'));
const { values, positionals } = parseArgs({
  args: argv,
  allowPositionals: true,
  options: {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    'max-length': { type: 'string', default: String(64 * 1024) },
    'slow-ms': { type: 'string', default: '2000' },
    'hang-ms': { type: 'string', default: '30000' },
    'max-old-mb': { type: 'string', default: '1024' },
    out: { type: 'string', default: join(root, 'fuzz-findings') },
    replay: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

function usage(code: number): never {
  process.stderr.write(
    `usage: pnpm fuzz [--minutes N | --seconds N] [--seed N] [--max-length BYTES] [--slow-ms MS] [--hang-ms MS]\n` +
      `                 [--max-old-mb MB] [--out DIR] [--replay FILE] [target...]\n` +
      `targets: ${Object.keys(TARGETS).join(', ')}\n`,
  );
  process.exit(code);
}
if (values.help) usage(0);

function number(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${name} takes a non-negative number, got ${text}\n`);
    usage(2);
  }
  return n;
}

const names = positionals.length > 0 ? positionals : Object.keys(TARGETS);
for (const name of names) {
  if (TARGETS[name] === undefined) {
    process.stderr.write(`no fuzz target "${name}"\n`);
    usage(2);
  }
}
const seconds =
  values.seconds !== undefined ? number('seconds', values.seconds, 0) : number('minutes', values.minutes, 5) * 60;
const seed = number('seed', values.seed, Date.now() % 1_000_000);
const maxLength = number('max-length', values['max-length'], 64 * 1024);
const slowMs = number('slow-ms', values['slow-ms'], 2000);
const hangMs = number('hang-ms', values['hang-ms'], 30_000);
const maxOldMb = number('max-old-mb', values['max-old-mb'], 1024);
const out = resolve(values.out as string);
const log = (text: string) => process.stderr.write(`[fuzz] ${text}\n`);

if (values.replay !== undefined) {
  // One input, in this thread, with the seed's choices of options and chunking.
  const target = await (TARGETS[names[0] as string] as () => Promise<import('./engine.ts').FuzzTarget>)();
  const input = readFileSync(values.replay);
  try {
    const result = target.check(input, new Rng(seed));
    console.log(JSON.stringify({ replay: values.replay, target: target.name, ok: true, ...result }));
  } catch (err) {
    const kind = err instanceof FuzzFinding ? err.kind : 'uncaught';
    console.log(
      JSON.stringify({
        replay: values.replay,
        target: target.name,
        ok: false,
        kind,
        message: String((err as Error)?.message ?? err),
      }),
    );
    process.exitCode = 1;
  }
  process.exit();
}

interface TargetReport {
  execs: number;
  deterministic: number;
  bytes: number;
  maxInput: number;
  maxHeldBytes: number;
  maxHeldRatio: number;
  slowestMs: number;
  workers: number;
  findings: Finding[];
}

/** Runs `name` in workers until `deadline`, restarting after a hang or a crash. */
async function fuzzTarget(name: string, deadline: number, firstSeed: number): Promise<TargetReport> {
  const report: TargetReport = {
    execs: 0,
    deterministic: 0,
    bytes: 0,
    maxInput: 0,
    maxHeldBytes: 0,
    maxHeldRatio: 0,
    slowestMs: 0,
    workers: 0,
    findings: [],
  };
  const merge = (s: FuzzSummary) => {
    report.execs += s.execs;
    report.deterministic += s.deterministic;
    report.bytes += s.bytes;
    report.maxInput = Math.max(report.maxInput, s.maxInput);
    report.maxHeldBytes = Math.max(report.maxHeldBytes, s.maxHeldBytes);
    report.maxHeldRatio = Math.max(report.maxHeldRatio, s.maxHeldRatio);
    report.slowestMs = Math.max(report.slowestMs, s.slowestMs);
    report.findings.push(...s.findings);
  };
  let workerSeed = firstSeed;
  while (Date.now() < deadline - 200) {
    const shared = new SharedArrayBuffer(8 + maxLength);
    const header = new Int32Array(shared, 0, 2);
    const current = () => Buffer.from(new Uint8Array(shared, 8, Atomics.load(header, 1)));
    // A new worker replays the seeds: it skips the inputs that already hung or crashed one.
    const skip = report.findings.filter((f) => f.kind === 'hang' || f.kind === 'crash').map((f) => f.id);
    const data: WorkerData = { target: name, seed: workerSeed, deadline, maxLength, slowMs, shared, skip };
    report.workers++;
    const worker = new Worker(new URL('./worker.ts', import.meta.url), {
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: maxOldMb },
    });
    let last: FuzzSummary | undefined;
    let finished = false;
    let failure: Error | undefined;
    const outcome = await new Promise<'done' | 'hang' | 'crash'>((settle) => {
      let seen = -1;
      let since = Date.now();
      let lastProgress = Date.now();
      const watchdog = setInterval(() => {
        const started = Atomics.load(header, 0);
        if (started !== seen) {
          seen = started;
          since = Date.now();
        } else if (started > 0 && Date.now() - since > hangMs) {
          clearInterval(watchdog);
          finished = true;
          const input = current();
          report.findings.push(findingOf(name, 'hang', `no check finished within ${hangMs} ms`, input));
          void worker.terminate().then(() => settle('hang'));
        }
      }, 250);
      worker.on('message', (message: WorkerMessage) => {
        last = message.summary;
        if (message.type === 'done') {
          clearInterval(watchdog);
          finished = true;
          settle('done');
        } else if (Date.now() - lastProgress > 10_000) {
          lastProgress = Date.now();
          const s = message.summary;
          log(`${name}: ${report.execs + s.execs} checks, ${report.findings.length + s.findings.length} findings`);
        }
      });
      worker.on('error', (err) => {
        failure = err;
      });
      worker.on('exit', (code) => {
        clearInterval(watchdog);
        if (finished) return;
        // Out of memory, or an error outside any check: the input in hand is the suspect.
        const why = failure !== undefined ? `${failure.name}: ${failure.message}` : `exit code ${code}`;
        report.findings.push(findingOf(name, 'crash', `the worker died: ${why}`, current()));
        settle('crash');
      });
    });
    // A worker that hung or crashed took its own summary with it; count what it reported last.
    if (last !== undefined) merge(last);
    if (outcome === 'done') break;
    log(`${name}: a worker ended with a ${outcome}; continuing with the next seed`);
    workerSeed++;
  }
  return report;
}

function save(finding: Finding): string {
  const dir = join(out, finding.target);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${finding.kind}-${finding.id}.bin`);
  writeFileSync(file, Buffer.from(finding.input, 'base64'));
  writeFileSync(file.replace(/\.bin$/, '.txt'), `${finding.kind}: ${finding.message}\n`);
  return relative(process.cwd(), file);
}

const started = Date.now();
const reports: Record<string, Omit<TargetReport, 'findings'> & { findings: number }> = {};
const found: { target: string; kind: string; id: string; length: number; message: string; file: string }[] = [];
log(`${names.join(', ')} for ${seconds} s, seed ${seed}`);
for (const [i, name] of names.entries()) {
  // The time left is shared by the targets still to run.
  const left = seconds * 1000 - (Date.now() - started);
  const deadline = Date.now() + left / (names.length - i);
  const report = await fuzzTarget(name, deadline, seed + i * 1000);
  for (const finding of report.findings) {
    found.push({
      target: finding.target,
      kind: finding.kind,
      id: finding.id,
      length: finding.length,
      message: finding.message.split('\n')[0] as string,
      file: save(finding),
    });
  }
  reports[name] = { ...report, findings: report.findings.length };
  log(`${name}: ${report.execs} checks (${report.deterministic} deterministic), ${report.findings.length} findings`);
}
console.log(
  JSON.stringify({
    fuzz: 'redis-events',
    ok: found.length === 0,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    seed,
    targets: reports,
    findings: found,
  }),
);
process.exitCode = found.length === 0 ? 0 : 1;
