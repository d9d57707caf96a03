// The RDB parser's mutation fuzzer. It takes seed files (./rdb-corpus.ts), damages them the ways
// files and transfers get damaged (cut at every offset, bits flipped, bytes replaced, lengths
// inflated, ranges deleted, repeated or borrowed from another file), feeds each result whole and
// in random chunks, and checks what a user is promised:
//
// - the outcome is events, or events then a typed error (a ReplicationError with a known code and
//   an offset inside the input), never another exception;
// - the outcome does not depend on the chunking: the same events, the same error, the same offset;
// - memory follows the bytes given, not the lengths they declare: no Buffer larger than what the
//   input can produce (88 bytes per LZF byte) plus one part, and a bounded heap growth per case;
// - it ends (a hang never returns: the on-demand runner watches for it, vitest's timeout here).
//
// It needs no Redis and no test framework: `runRdbFuzz` is called by test/rdb-fuzz.test.ts (a short
// run with a fixed seed) and by test/fuzz/run.ts (as long as you like).

import { crc64 } from '../../src/crc64.ts';
import {
  parseDumpPayload,
  type RdbEvent,
  RdbParser,
  type RdbParserOptions,
  RdbTransfer,
  ReplicationError,
} from '../../src/index.ts';
import { RdbWriter } from '../rdb-writer.ts';
import { rdbSeeds, type Seed } from './rdb-corpus.ts';

/** What to run. */
export interface RdbFuzzOptions {
  /** The PRNG seed: the same seed gives the same cases. Default 1. */
  readonly seed?: number | undefined;
  /** Mutated cases to run after the truncation pass. Default 1000 (unbounded when `seconds` is set). */
  readonly runs?: number | undefined;
  /** Stop after this long, in seconds (the on-demand runner). */
  readonly seconds?: number | undefined;
  /** Cut seeds up to this size at every offset, larger ones at 500 offsets spread over them. Default: every seed at every offset. */
  readonly everyTruncationUpTo?: number | undefined;
  /** Called every 100 cases, and with each case's input before it runs (for a hang report). */
  readonly onCase?: ((index: number, input: Buffer, description: string) => void) | undefined;
}

/** What a run did. */
export interface RdbFuzzReport {
  readonly cases: number;
  /** Cases that parsed to their end event. */
  readonly parsed: number;
  /** Error codes and how often each ended a case. */
  readonly errors: Readonly<Record<string, number>>;
  /** The largest Buffer allocated in a case, relative to its input size plus one part. */
  readonly largestAllocationRatio: number;
  /** The largest heap growth of one case, in bytes. */
  readonly largestHeapGrowth: number;
}

/** A broken promise, with what reproduces it. */
export class RdbFuzzFinding extends Error {
  override readonly name = 'RdbFuzzFinding';
  readonly input: Buffer;
  readonly description: string;
  readonly caseIndex: number;
  constructor(message: string, input: Buffer, description: string, caseIndex: number, cause?: unknown) {
    super(
      `${message}\n  case ${caseIndex}: ${description}\n  input (${input.length} bytes, base64): ${input.toString('base64')}`,
      cause === undefined ? undefined : { cause },
    );
    this.input = input;
    this.description = description;
    this.caseIndex = caseIndex;
  }
}

const RDB_ERROR_CODES = new Set([
  'ERR_RDB_TRUNCATED',
  'ERR_RDB_CORRUPT',
  'ERR_RDB_VERSION',
  'ERR_RDB_UNKNOWN_TYPE',
  'ERR_RDB_UNKNOWN_OPCODE',
  'ERR_RDB_UNSUPPORTED',
  'ERR_RDB_CHECKSUM',
  'ERR_RDB_LIMIT',
]);

/** Heap growth allowed per case beyond the input's share: the events of a case are kept until it ends. */
const HEAP_SLACK = 48 * 1024 * 1024;
/** Heap bytes an input byte may cost while its events are held (a 2-byte element becomes a Buffer object). */
const HEAP_PER_INPUT_BYTE = 400;
const LZF_EXPANSION = 88;

// ---------------------------------------------------------------- randomness

/** mulberry32: small, fast, and the same sequence on every platform for a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---------------------------------------------------------------- mutations

const INTERESTING_BYTES = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0xbf, 0xc0, 0xc3, 0xf6, 0xfe, 0xff];
const INFLATED = [
  0x3fff,
  0x7fffffff,
  0x20000000, // 512 MiB: maxBlobBytes' default
  0xffffffff,
  2 ** 32,
  2 ** 40,
  2 ** 53 - 1,
  2 ** 53,
];

/**
 * A length encoding of an inflated value, as RDB writes lengths: a value just within the limit
 * that bounds it (what a careless reader allocates), a multiple of the input, or a classic.
 */
function inflatedLength(random: Random, inputLength: number, limit: number): Buffer {
  const value = random.chance(0.3)
    ? limit - random.int(2)
    : random.chance(0.3)
      ? inputLength * (2 + random.int(100))
      : random.pick(INFLATED);
  if (value < 0x4000 && random.chance(0.5)) return Buffer.from([0x40 | (value >> 8), value & 0xff]);
  if (value <= 0xffffffff) {
    const b = Buffer.alloc(5);
    b[0] = 0x80;
    b.writeUInt32BE(value, 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0x81;
  b.writeBigUInt64BE(BigInt(value), 1);
  return b;
}

function overwrite(input: Buffer, at: number, bytes: Buffer): Buffer {
  const out = Buffer.from(input);
  bytes.copy(out, at, 0, Math.min(bytes.length, out.length - at));
  return out;
}

function splice(input: Buffer, at: number, remove: number, insert: Buffer): Buffer {
  return Buffer.concat([input.subarray(0, at), insert, input.subarray(at + remove)]);
}

/** One mutation of `input`; returns the result and what was done. */
function mutate(random: Random, input: Buffer, others: readonly Seed[], limit: number): [Buffer, string] {
  if (input.length === 0) return [Buffer.from([random.int(256)]), 'one random byte'];
  const at = random.int(input.length);
  switch (random.int(9)) {
    case 0: {
      const bit = random.int(8);
      const out = Buffer.from(input);
      out[at] = (out[at] as number) ^ (1 << bit);
      return [out, `flip bit ${bit} at ${at}`];
    }
    case 1: {
      const byte = random.chance(0.7) ? random.pick(INTERESTING_BYTES) : random.int(256);
      const out = Buffer.from(input);
      out[at] = byte;
      return [out, `byte ${byte} at ${at}`];
    }
    case 2: {
      const length = inflatedLength(random, input.length, limit);
      return [overwrite(input, at, length), `inflated length ${length.toString('hex')} over ${at}`];
    }
    case 3: {
      const length = inflatedLength(random, input.length, limit);
      return [splice(input, at, 1, length), `inflated length ${length.toString('hex')} instead of byte ${at}`];
    }
    case 4:
      return [input.subarray(0, at), `cut at ${at}`];
    case 5: {
      const n = 1 + random.int(Math.min(64, input.length - at));
      return [splice(input, at, n, Buffer.alloc(0)), `delete ${n} at ${at}`];
    }
    case 6: {
      const n = 1 + random.int(Math.min(64, input.length - at));
      return [splice(input, at, 0, Buffer.from(input.subarray(at, at + n))), `repeat ${n} at ${at}`];
    }
    case 7: {
      const n = 1 + random.int(16);
      const bytes = Buffer.from(Array.from({ length: n }, () => random.int(256)));
      return [splice(input, at, 0, bytes), `insert ${n} random bytes at ${at}`];
    }
    default: {
      const other = random.pick(others).bytes;
      const from = random.int(other.length);
      const n = 1 + random.int(Math.min(128, other.length - from));
      return [overwrite(input, at, other.subarray(from, from + n)), `${n} bytes of another seed over ${at}`];
    }
  }
}

/** The length limit a reader applies with these options (maxBlobBytes). */
function limitOf(options: RdbParserOptions): number {
  return options.maxBlobBytes ?? 512 * 1024 * 1024;
}

function randomOptions(random: Random): RdbParserOptions {
  if (random.chance(0.3)) return {};
  return {
    batchSize: 1 + random.int(64),
    maxPartBytes: 256 + random.int(16 * 1024),
    maxBlobBytes: random.pick([64 * 1024, 1024 * 1024, 512 * 1024 * 1024]),
    maxStreamGroupRecords: random.pick([3, 1000, 1_000_000]),
    verifyChecksum: random.chance(0.3),
  };
}

// ---------------------------------------------------------------- running one case

interface Outcome {
  events: string[];
  error: ReplicationError | undefined;
}

/** A comparable line per event (Buffers as hex, bigints with `n`). */
function describeEvent(event: RdbEvent): string {
  return JSON.stringify(event, (_key, value: unknown) => {
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
    if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer')
      return Buffer.from((value as { data: number[] }).data).toString('hex');
    return value;
  });
}

/** Feeds `input` cut at `cuts` (sorted), collecting every event even when a write fails. */
function feed(input: Buffer, options: RdbParserOptions, cuts: readonly number[]): Outcome {
  const parser = new RdbParser(options);
  const events: RdbEvent[] = [];
  let error: ReplicationError | undefined;
  try {
    let at = 0;
    for (const cut of [...cuts, input.length]) {
      if (cut <= at) continue;
      parser.write(input.subarray(at, cut), events);
      at = cut;
      if (parser.done) break;
    }
    for (const e of parser.end()) events.push(e);
  } catch (err) {
    error = err as ReplicationError;
    if (!(err instanceof ReplicationError)) throw new TypeError(`an untyped exception: ${String(err)}`, { cause: err });
  }
  return { events: events.map(describeEvent), error };
}

function randomCuts(random: Random, length: number): number[] {
  if (length < 4096 && random.chance(0.15)) return Array.from({ length }, (_, i) => i); // byte by byte
  const n = 1 + random.int(12);
  return Array.from({ length: n }, () => random.int(length + 1)).sort((a, b) => a - b);
}

/** Records the largest Buffer the code under test asks for while `fn` runs. */
function largestAllocation<T>(fn: () => T): [T, number] {
  const methods = ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const;
  const saved = methods.map((m) => Buffer[m]);
  let largest = 0;
  methods.forEach((m, i) => {
    const original = saved[i] as (size: number, ...rest: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[m] = function (this: unknown, size: number, ...rest: unknown[]) {
      if (size > largest) largest = size;
      return original.call(this, size, ...rest);
    };
  });
  try {
    return [fn(), largest];
  } finally {
    methods.forEach((m, i) => {
      (Buffer as unknown as Record<string, unknown>)[m] = saved[i];
    });
  }
}

class Checker {
  readonly #random: Random;
  readonly #onCase: RdbFuzzOptions['onCase'];
  cases = 0;
  parsed = 0;
  readonly errors: Record<string, number> = {};
  largestAllocationRatio = 0;
  largestHeapGrowth = 0;

  constructor(random: Random, onCase: RdbFuzzOptions['onCase']) {
    this.#random = random;
    this.#onCase = onCase;
  }

  /** Runs one RDB case: whole, then chunked, and checks every promise. */
  rdb(input: Buffer, options: RdbParserOptions, description: string): void {
    const index = this.cases++;
    this.#onCase?.(index, input, description);
    const fail = (message: string, cause?: unknown): never => {
      throw new RdbFuzzFinding(message, input, `${description}; options ${JSON.stringify(options)}`, index, cause);
    };
    const before = process.memoryUsage();
    const cuts = randomCuts(this.#random, input.length);
    let whole: Outcome;
    let chunked: Outcome;
    let largest: number;
    try {
      [[whole, chunked], largest] = largestAllocation(() => [feed(input, options, []), feed(input, options, cuts)]);
    } catch (err) {
      fail('the parser threw something other than a ReplicationError', err);
      return;
    }
    const after = process.memoryUsage();
    this.#checkOutcome(whole, input, fail);
    if (whole.events.length !== chunked.events.length || whole.events.some((e, i) => e !== chunked.events[i])) {
      const at = whole.events.findIndex((e, i) => e !== chunked.events[i]);
      fail(
        `chunked at ${cuts.length > 50 ? 'every byte' : cuts.join(',')}, the events differ from event ${at}: ${whole.events[at]?.slice(0, 300)} / ${chunked.events[at]?.slice(0, 300)}`,
      );
    }
    if (whole.error?.code !== chunked.error?.code || offsetOf(whole.error) !== offsetOf(chunked.error))
      fail(
        `chunked at ${cuts.length > 50 ? 'every byte' : cuts.join(',')}, the error differs: ${whole.error?.code} at ${offsetOf(whole.error)} whole, ${chunked.error?.code} at ${offsetOf(chunked.error)} chunked (${chunked.error?.message})`,
      );
    const part = options.maxPartBytes ?? 1024 * 1024;
    const allowed = LZF_EXPANSION * input.length + part + 64 * 1024;
    this.largestAllocationRatio = Math.max(this.largestAllocationRatio, largest / allowed);
    if (largest > allowed)
      fail(`a Buffer of ${largest} bytes was allocated for ${input.length} input bytes (at most ${allowed} expected)`);
    const growth = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    this.largestHeapGrowth = Math.max(this.largestHeapGrowth, growth);
    if (growth > HEAP_PER_INPUT_BYTE * input.length + 4 * part + HEAP_SLACK)
      fail(`the heap grew by ${growth} bytes for ${input.length} input bytes`);
    if (whole.error) this.errors[whole.error.code] = (this.errors[whole.error.code] ?? 0) + 1;
    else this.parsed++;
  }

  /** The same bytes framed as a replica receives them: the same events, typed errors. */
  transfer(input: Buffer, options: RdbParserOptions, description: string): void {
    const index = this.cases++;
    const diskless = this.#random.chance(0.5);
    const mark = Buffer.from('0123456789abcdefghij0123456789abcdefghij');
    const framed = diskless
      ? Buffer.concat([Buffer.from(`$EOF:${mark}\r\n`), input, mark])
      : Buffer.concat([Buffer.from(`$${input.length}\r\n`), input]);
    this.#onCase?.(index, framed, description);
    const fail = (message: string, cause?: unknown): never => {
      throw new RdbFuzzFinding(
        message,
        framed,
        `${description}; framed, options ${JSON.stringify(options)}`,
        index,
        cause,
      );
    };
    const parsed = feed(input, options, []);
    const transfer = new RdbTransfer(options);
    const events: RdbEvent[] = [];
    let error: unknown;
    try {
      for (const cut of [0, ...randomCuts(this.#random, framed.length)].map((c, i, all) => [
        c,
        all[i + 1] ?? framed.length,
      ])) {
        if ((cut[1] as number) > (cut[0] as number)) transfer.write(framed.subarray(cut[0], cut[1]), events);
        if (transfer.done) break;
      }
      if (!transfer.done) transfer.end();
    } catch (err) {
      error = err;
    }
    if (error !== undefined && !(error instanceof ReplicationError))
      fail('the transfer threw something other than a ReplicationError', error);
    // A complete RDB, nothing after it: the transfer gives exactly the parser's events. Otherwise
    // the framing's own bytes (the end mark) may be read as RDB, so only the error's type counts.
    const exact = parsed.error === undefined && parsed.events.at(-1)?.includes(`"size":${input.length},`) === true;
    if (!exact) return;
    const seen = events.map(describeEvent);
    if (seen.length !== parsed.events.length || seen.some((e, i) => e !== parsed.events[i]))
      fail('the transfer delivered other events than the parser gives for the same bytes');
    if (error !== undefined) fail(`the parser reads the bytes whole, the transfer fails: ${(error as Error).message}`);
  }

  /** A DUMP payload: typed errors only, memory bounded. */
  dump(payload: Buffer, options: RdbParserOptions, description: string): void {
    const index = this.cases++;
    this.#onCase?.(index, payload, description);
    try {
      const [, largest] = largestAllocation(() => {
        try {
          parseDumpPayload(payload, options);
        } catch (err) {
          if (!(err instanceof ReplicationError)) throw err;
          if (!RDB_ERROR_CODES.has(err.code)) throw new Error(`unexpected code ${err.code}`, { cause: err });
        }
      });
      const allowed = LZF_EXPANSION * payload.length + (options.maxPartBytes ?? 1024 * 1024) + 64 * 1024;
      if (largest > allowed) throw new Error(`a Buffer of ${largest} bytes for a ${payload.length}-byte payload`);
    } catch (err) {
      throw new RdbFuzzFinding(`DUMP payload: ${(err as Error).message}`, payload, description, index, err);
    }
  }

  #checkOutcome(outcome: Outcome, input: Buffer, fail: (message: string, cause?: unknown) => never): void {
    const error = outcome.error;
    if (!error) {
      if (!outcome.events.at(-1)?.startsWith('{"kind":"end"')) fail('the parse ended without an end event or an error');
      return;
    }
    if (!RDB_ERROR_CODES.has(error.code)) fail(`unexpected error code ${error.code}`, error);
    const offset = offsetOf(error);
    if (!Number.isSafeInteger(offset) || (offset as number) < 0 || (offset as number) > input.length)
      fail(`error offset ${offset} is outside the ${input.length}-byte input`, error);
    // "unreadable bytes" is the parser's wrapper for an exception it did not expect: a missing check.
    if (error.message.startsWith('unreadable bytes')) fail('an unexpected exception inside the parser', error);
  }
}

function offsetOf(error: ReplicationError | undefined): number | undefined {
  return (error as { offset?: number } | undefined)?.offset;
}

// ---------------------------------------------------------------- DUMP seeds

/** DUMP payloads of a few values: the bytes after a one-letter key in a writer's output, framed. */
function dumpSeeds(): Buffer[] {
  const values = [
    new RdbWriter(11).hashListpack('h', [['f', 'v']]),
    new RdbWriter(11).quicklist2('l', [['a', 1], { plain: 'P'.repeat(50) }]),
    new RdbWriter(11).stringValue('s', 'hello hello hello hello hello hello', 'lzf'),
    new RdbWriter(11).zsetBinary('z', [['m', 1.5]]),
  ];
  return values.map((w) => {
    const bytes = w.bytes().subarray(9); // after the magic
    const body = Buffer.concat([bytes.subarray(0, 1), bytes.subarray(3)]); // type, then the value
    const footer = Buffer.alloc(10);
    footer.writeUInt16LE(11, 0);
    const withVersion = Buffer.concat([body, footer.subarray(0, 2)]);
    footer.writeBigUInt64LE(crc64(withVersion), 2);
    return Buffer.concat([body, footer]);
  });
}

// ---------------------------------------------------------------- the run

/** Checks one input (a saved finding) with every promise, fed whole and in chunks. */
export function checkRdbInput(input: Buffer, options: RdbParserOptions = {}, seed = 1): void {
  new Checker(new Random(seed), undefined).rdb(input, options, 'a saved input');
}

/**
 * Runs the fuzzer: first every seed cut at every offset, then random mutations. Throws an
 * {@link RdbFuzzFinding} at the first broken promise.
 */
export function runRdbFuzz(options: RdbFuzzOptions = {}): RdbFuzzReport {
  const seed = options.seed ?? 1;
  const random = new Random(seed);
  const checker = new Checker(random, options.onCase);
  const seeds = rdbSeeds();
  const dumps = dumpSeeds();
  const deadline = options.seconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.seconds * 1000;
  const runs = options.runs ?? (options.seconds === undefined ? 1000 : Number.POSITIVE_INFINITY);

  // Every seed must parse whole first: a seed that fails says nothing about its mutations.
  for (const s of seeds) checker.rdb(s.bytes, {}, `seed ${s.name}`);
  for (const s of seeds) {
    const every = s.bytes.length <= (options.everyTruncationUpTo ?? Number.POSITIVE_INFINITY);
    const step = every ? 1 : Math.max(1, Math.floor(s.bytes.length / 500));
    for (let cut = 0; cut < s.bytes.length; cut += step) {
      checker.rdb(s.bytes.subarray(0, cut), randomOptions(random), `seed ${s.name} cut at ${cut}`);
      if (Date.now() > deadline) break;
    }
  }
  for (let i = 0; i < runs && Date.now() < deadline; i++) {
    if (random.chance(0.05)) {
      let payload = random.pick(dumps);
      let description = 'DUMP payload';
      const dumpOptions = randomOptions(random);
      for (let m = 1 + random.int(2); m > 0; m--) {
        const [next, what] = mutate(random, payload, seeds, limitOf(dumpOptions));
        payload = next;
        description += `; ${what}`;
      }
      checker.dump(payload, dumpOptions, description);
      continue;
    }
    const source = random.pick(seeds);
    let input = source.bytes;
    let description = `seed ${source.name}`;
    const parserOptions = randomOptions(random);
    const limit = limitOf(parserOptions);
    if (source.lengths.length > 0 && random.chance(0.4)) {
      // A length the file really has, inflated (first, while the recorded offsets still hold).
      const [at, size] = random.pick(source.lengths);
      const length = inflatedLength(random, input.length, limit);
      input = splice(input, at, size, length);
      description += `; the length at ${at} inflated to ${length.toString('hex')}`;
    }
    for (let m = random.int(4); m > 0; m--) {
      const [next, what] = mutate(random, input, seeds, limit);
      input = next;
      description += `; ${what}`;
    }
    if (random.chance(0.1)) checker.transfer(input, parserOptions, description);
    else checker.rdb(input, parserOptions, description);
  }
  return {
    cases: checker.cases,
    parsed: checker.parsed,
    errors: checker.errors,
    largestAllocationRatio: checker.largestAllocationRatio,
    largestHeapGrowth: checker.largestHeapGrowth,
  };
}
