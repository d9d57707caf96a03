// A small mutation fuzzer for the project's parsers. A target names its seeds, where its length
// fields are, and a check that throws a FuzzFinding when an invariant breaks; the engine feeds
// it the seeds, every truncation of every seed, then stacked random mutations (bit flips,
// interesting bytes, inflated lengths, repeated headers, splices), deterministically from one
// seed number. It runs in-process for `./run check` (a fixed budget of executions) and inside a
// worker for `pnpm fuzz` (a time budget, with a watchdog for hangs: see fuzz.ts).
import { createHash } from 'node:crypto';

/** A deterministic generator (mulberry32): the same seed gives the same inputs on every machine. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Up to `max` sorted cut points inside a buffer of `length` bytes. */
  cuts(length: number, max: number): number[] {
    if (length < 2) return [];
    const n = this.below(max + 1);
    const set = new Set<number>();
    for (let i = 0; i < n; i++) set.add(this.between(1, length - 1));
    return [...set].sort((a, b) => a - b);
  }
}

/** An invariant a target found broken: the engine records it with the input. */
export class FuzzFinding extends Error {
  readonly kind: string;

  constructor(kind: string, message: string) {
    super(message);
    this.name = 'FuzzFinding';
    this.kind = kind;
  }
}

/** What a target's check reports besides "no finding". */
export interface CheckResult {
  /** Bytes the code under test held (heap and ArrayBuffers) at its peak, when measured. */
  readonly heldBytes?: number | undefined;
  /** The input decoded to something (values, or an error deep inside): worth mutating further. */
  readonly interesting?: boolean | undefined;
}

/** A parser under fuzz. */
export interface FuzzTarget {
  readonly name: string;
  /** Valid, malformed and incomplete inputs the mutations start from. */
  readonly seeds: () => readonly Buffer[];
  /** Spans `[start, end)` of decimal length fields, for the "inflate a length" mutations. */
  readonly lengthFields?: ((input: Buffer) => [number, number][]) | undefined;
  /** Bytes that mean something to the format (type bytes, separators), for byte substitutions. */
  readonly interestingBytes?: readonly number[] | undefined;
  /**
   * Runs one input; throws a {@link FuzzFinding} when an invariant breaks. Anything else it
   * throws is recorded as an `uncaught` finding. `rng` chooses chunkings and options.
   */
  readonly check: (input: Buffer, rng: Rng) => CheckResult | undefined;
}

/** One recorded finding. */
export interface Finding {
  readonly target: string;
  readonly kind: string;
  readonly message: string;
  /** The input, base64. */
  readonly input: string;
  readonly length: number;
  /** First 12 hex digits of the input's SHA-256: the file name under which it is saved. */
  readonly id: string;
}

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  readonly seed: number;
  /** Stop after this many checks. */
  readonly maxExecs?: number | undefined;
  /** Check the seeds and their truncations first (default true). */
  readonly truncations?: boolean | undefined;
  /** Stop after this many checks of mutated inputs (after the deterministic phase). */
  readonly maxMutations?: number | undefined;
  /** Stop at this time (`Date.now()` milliseconds). */
  readonly deadline?: number | undefined;
  /** Largest input a mutation may produce. Default 64 KiB. */
  readonly maxLength?: number | undefined;
  /** Stop at the first finding (the test does); else keep going and collect up to 100. */
  readonly stopOnFinding?: boolean | undefined;
  /** A check slower than this is a `slow` finding (a hang in the making). Default none. */
  readonly slowMs?: number | undefined;
  /** Ids ({@link Finding.id}) of inputs to leave out: they hung or crashed an earlier run. */
  readonly skip?: ReadonlySet<string> | undefined;
  /** Called before each check with the input (the worker copies it where the watchdog can read it). */
  readonly beforeCheck?: ((input: Buffer, execs: number) => void) | undefined;
  /** Called every `progressEvery` checks. */
  readonly onProgress?: ((summary: FuzzSummary) => void) | undefined;
  readonly progressEvery?: number | undefined;
}

/** What a run did. */
export interface FuzzSummary {
  readonly target: string;
  readonly seed: number;
  execs: number;
  /** Checks from the deterministic phase (seeds and their truncations). */
  deterministic: number;
  corpus: number;
  bytes: number;
  maxInput: number;
  /** Largest `heldBytes / input length` seen on inputs of 1 KiB or more, and the most bytes held. */
  maxHeldRatio: number;
  maxHeldBytes: number;
  slowestMs: number;
  /** Length of the input of the slowest check, and the input (base64) when it took over 100 ms. */
  slowestLength: number;
  slowestInput: string | undefined;
  findings: Finding[];
  seconds: number;
}

/** First 12 hex digits of the input's SHA-256. */
export function inputId(input: Buffer): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 12);
}

export function findingOf(target: string, kind: string, message: string, input: Buffer): Finding {
  return {
    target,
    kind,
    message: message.slice(0, 2000),
    input: input.toString('base64'),
    length: input.length,
    id: inputId(input),
  };
}

const DEFAULT_INTERESTING = [0, 10, 13, 32, 43, 45, 46, 48, 49, 57, 58, 63, 127, 128, 255];
const LENGTH_REPLACEMENTS = [
  '0',
  '1',
  '2',
  '-1',
  '-2',
  '?',
  '16',
  '17',
  '255',
  '32768',
  '65536',
  '65537',
  '1048576',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '536870912',
  '536870913',
  '999999999999999',
  '9999999999999999',
  '9223372036854775807',
];

/** One random mutation of `input`, at most `maxLength` bytes long. */
export function mutate(
  input: Buffer,
  rng: Rng,
  target: FuzzTarget,
  corpus: readonly Buffer[],
  maxLength: number,
): Buffer {
  let out = Buffer.from(input);
  const rounds = rng.between(1, 4);
  for (let round = 0; round < rounds; round++) {
    const len = out.length;
    switch (rng.below(11)) {
      case 0: // truncate
        out = out.subarray(0, rng.below(len + 1));
        break;
      case 1: {
        // flip bits
        if (len === 0) break;
        const flips = rng.between(1, 4);
        for (let i = 0; i < flips; i++) {
          const at = rng.below(len);
          out[at] = (out[at] as number) ^ (1 << rng.below(8));
        }
        break;
      }
      case 2: // a random byte
        if (len > 0) out[rng.below(len)] = rng.below(256);
        break;
      case 3: // a byte that means something
        if (len > 0) out[rng.below(len)] = rng.pick(target.interestingBytes ?? DEFAULT_INTERESTING);
        break;
      case 4:
      case 5: {
        // inflate (or deflate) a length field
        const fields = target.lengthFields?.(out) ?? [];
        if (fields.length === 0) break;
        const [s, e] = rng.pick(fields);
        const current = Number(out.subarray(s, e).toString('latin1'));
        const choices = [...LENGTH_REPLACEMENTS];
        if (Number.isFinite(current)) choices.push(String(current + 1), String(current - 1), String(current * 2));
        out = Buffer.concat([out.subarray(0, s), Buffer.from(rng.pick(choices), 'latin1'), out.subarray(e)]);
        break;
      }
      case 6: {
        // repeat a span many times (nested headers, long runs of attributes)
        if (len === 0) break;
        const s = rng.below(len);
        const e = Math.min(len, s + rng.between(1, 16));
        const times = rng.pick([2, 3, 16, 100, 1024, 4096]);
        const span = out.subarray(s, e);
        const room = Math.max(0, Math.floor((maxLength - len) / span.length));
        const parts = [out.subarray(0, e)];
        for (let i = 1; i < Math.min(times, room + 1); i++) parts.push(span);
        parts.push(out.subarray(e));
        out = Buffer.concat(parts);
        break;
      }
      case 7: {
        // delete a span
        if (len === 0) break;
        const s = rng.below(len);
        out = Buffer.concat([out.subarray(0, s), out.subarray(Math.min(len, s + rng.between(1, 32)))]);
        break;
      }
      case 8: {
        // insert random or meaningful bytes
        const s = rng.below(len + 1);
        const n = rng.between(1, 8);
        const bytes = Buffer.alloc(n);
        const pool = target.interestingBytes ?? DEFAULT_INTERESTING;
        for (let i = 0; i < n; i++) bytes[i] = rng.chance(0.5) ? rng.below(256) : rng.pick(pool);
        out = Buffer.concat([out.subarray(0, s), bytes, out.subarray(s)]);
        break;
      }
      case 9: {
        // splice with another corpus entry
        const other = rng.pick(corpus);
        out = Buffer.concat([out.subarray(0, rng.below(len + 1)), other.subarray(rng.below(other.length + 1))]);
        break;
      }
      default: {
        // concatenate (pipelines)
        const other = rng.chance(0.5) ? out : rng.pick(corpus);
        out = Buffer.concat([out, other]);
        break;
      }
    }
    if (out.length > maxLength) out = out.subarray(0, maxLength);
  }
  return Buffer.from(out);
}

/**
 * Fuzzes one target: the seeds, every truncation of every seed, then random mutations, until
 * `maxExecs` checks or the deadline. Returns the summary with the findings.
 */
export function runFuzz(target: FuzzTarget, options: FuzzOptions): FuzzSummary {
  const started = performance.now();
  const rng = new Rng(options.seed);
  const maxLength = options.maxLength ?? 64 * 1024;
  const maxExecs = options.maxExecs ?? Number.POSITIVE_INFINITY;
  const deadline = options.deadline ?? Number.POSITIVE_INFINITY;
  const progressEvery = options.progressEvery ?? 1000;
  const seeds = target.seeds().map((s) => Buffer.from(s));
  const corpus: Buffer[] = [...seeds];
  const seen = new Set<string>();
  const summary: FuzzSummary = {
    target: target.name,
    seed: options.seed,
    execs: 0,
    deterministic: 0,
    corpus: corpus.length,
    bytes: 0,
    maxInput: 0,
    maxHeldRatio: 0,
    maxHeldBytes: 0,
    slowestMs: 0,
    slowestLength: 0,
    slowestInput: undefined,
    findings: [],
    seconds: 0,
  };
  const maxMutations = options.maxMutations ?? Number.POSITIVE_INFINITY;
  const done = () =>
    summary.execs >= maxExecs ||
    summary.execs - summary.deterministic >= maxMutations ||
    Date.now() >= deadline ||
    (options.stopOnFinding === true && summary.findings.length > 0) ||
    summary.findings.length >= 100;

  const record = (kind: string, message: string, input: Buffer) => {
    const finding = findingOf(target.name, kind, message, input);
    if (seen.has(`${finding.kind}:${finding.id}`)) return;
    seen.add(`${finding.kind}:${finding.id}`);
    summary.findings.push(finding);
  };

  const skip = options.skip !== undefined && options.skip.size > 0 ? options.skip : undefined;
  const exec = (input: Buffer): boolean => {
    if (skip?.has(inputId(input))) return false;
    options.beforeCheck?.(input, summary.execs);
    const t0 = performance.now();
    let result: CheckResult | undefined;
    try {
      result = target.check(input, rng);
    } catch (err) {
      if (err instanceof FuzzFinding) record(err.kind, err.message, input);
      else
        record(
          'uncaught',
          `${(err as Error)?.name}: ${(err as Error)?.message ?? String(err)}\n${(err as Error)?.stack ?? ''}`,
          input,
        );
    }
    const ms = performance.now() - t0;
    summary.execs++;
    summary.bytes += input.length;
    if (input.length > summary.maxInput) summary.maxInput = input.length;
    if (ms > summary.slowestMs) {
      summary.slowestMs = ms;
      summary.slowestLength = input.length;
      summary.slowestInput = ms > 100 ? input.toString('base64') : undefined;
    }
    if (options.slowMs !== undefined && ms > options.slowMs) {
      record('slow', `one check took ${ms.toFixed(0)} ms on ${input.length} bytes`, input);
    }
    const held = result?.heldBytes;
    // The ratio means something from 1 KiB on; below, unrelated allocations dominate.
    if (held !== undefined && input.length >= 1024) {
      if (held / input.length > summary.maxHeldRatio) summary.maxHeldRatio = held / input.length;
      if (held > summary.maxHeldBytes) summary.maxHeldBytes = held;
    }
    if (summary.execs % progressEvery === 0) options.onProgress?.(summary);
    return result?.interesting === true;
  };

  // Deterministic phase: each seed whole and truncated at every offset (for a seed over 4 KiB,
  // every offset within 128 bytes of its ends and 63 spread between: its middle is payload).
  for (const seed of options.truncations === false ? [] : seeds) {
    for (const at of truncations(seed.length)) {
      if (done()) break;
      exec(seed.subarray(0, at));
      summary.deterministic++;
    }
    if (done()) break;
  }
  // Random phase.
  while (!done()) {
    const base = rng.pick(corpus);
    const input = mutate(base, rng, target, corpus, maxLength);
    if (exec(input) && corpus.length < 4096 && rng.chance(0.05)) corpus.push(input);
  }
  summary.corpus = corpus.length;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

/** Offsets to truncate a seed of `length` bytes at, longest first. */
function truncations(length: number): number[] {
  if (length <= 4096) return Array.from({ length: length + 1 }, (_, i) => length - i);
  const out = new Set<number>();
  for (let i = 0; i <= 128; i++) {
    out.add(i);
    out.add(length - i);
  }
  for (let i = 1; i < 64; i++) out.add(Math.floor((length * i) / 64));
  return [...out].sort((a, b) => b - a);
}

/** Heap plus ArrayBuffer bytes in use: what a check compares before and after feeding. */
export function memoryInUse(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
