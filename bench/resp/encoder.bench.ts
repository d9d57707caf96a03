// Command encoders side by side: ours against @redis/client's encodeCommand, turning a pipeline
// of commands into what a socket write needs. @redis/client returns strings (and Buffers) that
// the socket encodes to UTF-8 when it writes; its "to bytes" case adds that Buffer.from, its
// other case stops before it (less work than a write really costs).
import { createRequire } from 'node:module';
import { CommandEncoder } from '@redis-events/resp';
import { type BenchCase, runSuite } from '../lib/harness.ts';

const require = createRequire(import.meta.url);
type Encode = (args: readonly (string | Buffer)[]) => (string | Buffer)[];
const nodeRedisEncode = (require('@redis/client/dist/lib/RESP/encoder') as { default: Encode }).default;

interface Workload {
  readonly name: string;
  readonly commands: (string | Buffer)[][];
  /** Commands per pipeline (one take / one batch of chunks). */
  readonly batch: number;
}

const big = Buffer.alloc(16 * 1024, 'x');

/** The workloads by name, each built only in the process that measures it. */
const WORKLOADS: Record<string, () => Omit<Workload, 'name'>> = {
  '200k × SET key value': () => ({
    commands: Array.from({ length: 200_000 }, (_, i) => ['SET', `key:${i}`, `value:${i}`]),
    batch: 1000,
  }),
  '20k × HSET with 10 fields': () => ({
    commands: Array.from({ length: 20_000 }, (_, i) => {
      const args = ['HSET', `hash:${i}`];
      for (let f = 0; f < 10; f++) args.push(`field${f}`, `v${i}-${f}`);
      return args;
    }),
    batch: 100,
  }),
  '100k × SET, non-ASCII': () => ({
    commands: Array.from({ length: 100_000 }, (_, i) => ['SET', `clé:${i}`, `välue—${i}€`]),
    batch: 1000,
  }),
  '20k × SET with a 16 KiB Buffer': () => ({
    commands: Array.from({ length: 20_000 }, (_, i) => ['SET', `blob:${i}`, big]),
    batch: 100,
  }),
};

interface Context {
  workload: Workload;
}

function bytesOf(chunks: readonly (string | Buffer)[]): number {
  let n = 0;
  for (const c of chunks) n += typeof c === 'string' ? Buffer.byteLength(c) : c.length;
  return n;
}

function oursRun({ workload }: Context) {
  const encoder = new CommandEncoder();
  let bytes = 0;
  const { commands, batch } = workload;
  for (let i = 0; i < commands.length; i += batch) {
    const end = Math.min(i + batch, commands.length);
    for (let j = i; j < end; j++) encoder.push(commands[j] as (string | Buffer)[]);
    for (const chunk of encoder.take()) bytes += chunk.length;
  }
  return { ops: commands.length, bytes };
}

function peerRun(toBytes: boolean) {
  return ({ workload }: Context) => {
    let bytes = 0;
    const { commands, batch } = workload;
    for (let i = 0; i < commands.length; i += batch) {
      const end = Math.min(i + batch, commands.length);
      const chunks: (string | Buffer)[] = [];
      for (let j = i; j < end; j++) for (const c of nodeRedisEncode(commands[j] as (string | Buffer)[])) chunks.push(c);
      if (toBytes) for (const c of chunks) bytes += typeof c === 'string' ? Buffer.from(c, 'utf8').length : c.length;
      else bytes += chunks.length;
    }
    return { ops: commands.length, bytes: toBytes ? bytes : undefined } as { ops: number; bytes?: number };
  };
}

/** Every contender must produce the same bytes: checked before timing. */
function check(workload: Workload): void {
  const sample = workload.commands.slice(0, 50);
  const encoder = new CommandEncoder();
  for (const command of sample) encoder.push(command);
  const ours = Buffer.concat(encoder.take());
  const theirs = Buffer.concat(
    sample.flatMap((c) => nodeRedisEncode(c).map((x) => (typeof x === 'string' ? Buffer.from(x) : x))),
  );
  if (!ours.equals(theirs)) throw new Error(`encoders disagree on ${workload.name}`);
  if (bytesOf(theirs ? [theirs] : []) !== ours.length) throw new Error('length mismatch');
}

const cases: BenchCase<Context>[] = [];
for (const [name, build] of Object.entries(WORKLOADS)) {
  const setup = (): Context => {
    const workload = { name, ...build() };
    check(workload);
    return { workload };
  };
  cases.push({ group: name, subject: 'ours', setup, run: oursRun });
  cases.push({ group: name, subject: '@redis/client, to bytes', setup, run: peerRun(true) });
  cases.push({ group: name, subject: '@redis/client, strings only', setup, run: peerRun(false) });
}

await runSuite(import.meta.url, 'resp: command encoders (ops/s = commands/s)', cases);
