// A small benchmark harness built for side-by-side runs:
// - every case runs in its own Node process, so JIT feedback from one library cannot help or
//   hurt another;
// - each process does one checked run, warm-ups, then timed runs; the median is reported
//   (with the min and max), never a single sample;
// - cases of one group do the same work on the same input, and the table shows each one's
//   ratio against our implementation.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type RedisServer, startRedis } from '@redis-events/testkit';

/** What one timed run did. */
export interface RunResult {
  /** Operations done (replies decoded, messages delivered...). */
  readonly ops: number;
  /** Bytes processed, when throughput in MiB/s means something. */
  readonly bytes?: number;
  /**
   * More figures of this run (latency percentiles, CPU shares...), printed as extra columns of
   * its group; the measurement keeps those of the median run.
   */
  readonly details?: Readonly<Record<string, number>>;
}

/** One contender in a group. */
export interface BenchCase<Context = unknown> {
  /** Cases with the same group are compared with each other. */
  readonly group: string;
  /** Who runs: `ours` for our code, else the peer's name (for example `ioredis`). */
  readonly subject: string;
  /** Prepares inputs outside the timed region. */
  readonly setup?: () => Promise<Context> | Context;
  /** One timed run. It must check its own result (throw when wrong). */
  readonly run: (context: Context) => Promise<RunResult> | RunResult;
  readonly teardown?: (context: Context) => Promise<void> | void;
}

/** A measured case, as printed and saved. */
export interface Measurement {
  readonly group: string;
  readonly subject: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly opsPerSec: number;
  readonly mibPerSec?: number;
  readonly runs: number;
  /** The median run's {@link RunResult.details}. */
  readonly details?: Readonly<Record<string, number>>;
}

const runs = Number(process.env.BENCH_RUNS ?? 7);
const warmups = Number(process.env.BENCH_WARMUPS ?? 3);

async function measure<C>(c: BenchCase<C>): Promise<Measurement> {
  const context = (await c.setup?.()) as C;
  try {
    await c.run(context); // checked run: a wrong result throws before anything is timed
    for (let i = 0; i < warmups; i++) await c.run(context);
    const times: number[] = [];
    const results: RunResult[] = [];
    let last: RunResult = { ops: 0 };
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      last = await c.run(context);
      times.push(performance.now() - start);
      results.push(last);
    }
    const order = times.map((_, i) => i).sort((a, b) => (times[a] as number) - (times[b] as number));
    const medianRun = order[Math.floor(order.length / 2)] ?? 0;
    const details = results[medianRun]?.details;
    times.sort((a, b) => a - b);
    const medianMs = times[Math.floor(times.length / 2)] ?? Number.NaN;
    return {
      group: c.group,
      subject: c.subject,
      medianMs,
      minMs: times[0] ?? Number.NaN,
      maxMs: times[times.length - 1] ?? Number.NaN,
      opsPerSec: last.ops / (medianMs / 1000),
      ...(last.bytes !== undefined ? { mibPerSec: last.bytes / 1048576 / (medianMs / 1000) } : {}),
      runs,
      ...(details !== undefined ? { details } : {}),
    };
  } finally {
    await c.teardown?.(context);
  }
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(n >= 100 ? 0 : 2);
}

/** Prints a markdown table per group, with each subject's speed relative to ours. */
export function report(title: string, results: readonly Measurement[]): string {
  const lines = [`### ${title}`, ''];
  const groups = [...new Set(results.map((r) => r.group))];
  for (const group of groups) {
    const rows = results.filter((r) => r.group === group);
    const ours = rows.find((r) => r.subject === 'ours');
    const extra = [...new Set(rows.flatMap((r) => Object.keys(r.details ?? {})))];
    lines.push(
      `**${group}**`,
      '',
      `| subject | median ms | min–max ms | ops/s | MiB/s | ours vs this |${extra.map((k) => ` ${k} |`).join('')}`,
      `|---|---:|---:|---:|---:|---:|${extra.map(() => '---:|').join('')}`,
    );
    for (const r of rows) {
      const ratio = ours && r !== ours ? `${(r.medianMs / ours.medianMs).toFixed(2)}x` : '';
      const more = extra.map((k) => ` ${r.details?.[k] === undefined ? '' : fmt(r.details[k] as number)} |`).join('');
      lines.push(
        `| ${r.subject} | ${r.medianMs.toFixed(2)} | ${r.minMs.toFixed(1)}–${r.maxMs.toFixed(1)} | ${fmt(r.opsPerSec)} | ${r.mibPerSec === undefined ? '' : r.mibPerSec.toFixed(0)} | ${ratio} |${more}`,
      );
    }
    lines.push('');
  }
  lines.push(
    `_${runs} timed runs after ${warmups} warm-ups, each case in its own process; "ours vs this" above 1 means ours is faster._`,
    '',
  );
  return lines.join('\n');
}

/** One suite's results in the JSON summary line of `pnpm bench`. */
export interface SuiteSummary {
  readonly title: string;
  readonly cases: readonly (Measurement & { readonly oursVsThis?: number })[];
}

/** Each peer's ratio to ours in its group (above 1: ours is faster), for the summary line. */
function summarize(title: string, results: readonly Measurement[]): SuiteSummary {
  return {
    title,
    cases: results.map((r) => {
      const ours = results.find((o) => o.group === r.group && o.subject === 'ours');
      return ours && ours !== r ? { ...r, oursVsThis: Number((r.medianMs / ours.medianMs).toFixed(3)) } : r;
    }),
  };
}

/** Options of {@link runSuite}. */
export interface SuiteOptions {
  /**
   * Start one Redis for the whole suite (or use REDIS_URL) and hand its URL to every case
   * process through {@link benchRedisUrl}, so that all contenders hit the same server.
   */
  readonly redis?: boolean;
}

/** The suite's shared server URL inside a case process. */
export function benchRedisUrl(): string {
  const url = process.env.BENCH_REDIS_URL;
  if (!url) throw new Error('this suite was not started with { redis: true }');
  return url;
}

/**
 * Runs one case in its own process and returns what it printed. Not execFileSync: the shared
 * server's log pipe is read by this process, and a blocked event loop would let it fill up and
 * stall the server (replication logs lines on every sync).
 */
function runCase(file: string, index: number, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, file, `--case=${index}`], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`case ${index} of ${file} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/**
 * Runs a suite. Called with `--case=<i>` it measures that one case and prints JSON (this is
 * how the parent runs each case in a fresh process); otherwise it runs every case, optionally
 * filtered by `BENCH_FILTER` (a substring of group or subject), and prints the table.
 */
export async function runSuite(
  moduleUrl: string,
  title: string,
  // biome-ignore lint/suspicious/noExplicitAny: cases of one suite have different context types
  cases: readonly BenchCase<any>[],
  options: SuiteOptions = {},
): Promise<Measurement[]> {
  const only = process.argv.find((a) => a.startsWith('--case='));
  if (only) {
    const c = cases[Number(only.slice('--case='.length))];
    if (!c) throw new Error(`no case ${only}`);
    process.stdout.write(`${JSON.stringify(await measure(c))}\n`);
    return [];
  }
  const filter = process.env.BENCH_FILTER;
  if (process.env.BENCH_DRY_RUN) {
    // `pnpm bench --dry-run`: the suite loaded (its imports resolve); list what it would measure
    const listed = cases.filter((c) => !filter || `${c.group} ${c.subject}`.includes(filter));
    console.log(`### ${title} (dry run)\n${listed.map((c) => `- ${c.group} / ${c.subject}`).join('\n')}\n`);
    return [];
  }
  const file = fileURLToPath(moduleUrl);
  const results: Measurement[] = [];
  let server: RedisServer | undefined;
  const env = { ...process.env };
  if (options.redis) {
    server = await startRedis();
    env.BENCH_REDIS_URL = server.url;
    process.stderr.write(`${title}: ${server.kind} ${server.version.text} at ${server.host}:${server.port}\n`);
  }
  try {
    for (const [i, c] of cases.entries()) {
      if (filter && !`${c.group} ${c.subject}`.includes(filter)) continue;
      const out = await runCase(file, i, env);
      const line = out.trim().split('\n').pop() ?? '';
      results.push(JSON.parse(line) as Measurement);
      process.stderr.write(`  measured ${c.group} / ${c.subject}\n`);
    }
  } finally {
    await server?.stop();
  }
  console.log(report(title, results));
  if (process.env.BENCH_SUMMARY_FILE)
    appendFileSync(process.env.BENCH_SUMMARY_FILE, `${JSON.stringify(summarize(title, results))}\n`);
  return results;
}
