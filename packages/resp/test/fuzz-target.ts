// The RESP decoder as a fuzz target (scripts/fuzz): what must hold for any bytes a server sends.
// - Only a RespProtocolError (ERR_RESP_PROTOCOL or ERR_RESP_LIMIT) comes out of feed(); after it
//   the decoder refuses input with ERR_RESP_DECODER_FAILED until reset().
// - Whole, in random pieces and byte by byte: the same values, the same error (code, offset,
//   reason), the same bytes consumed.
// - A prefix of the input decodes to a prefix of the values, and fails only as the whole fails.
// - The offsets add up: the values' lengths sum to bytesConsumed, and the decoder is between
//   values exactly when nothing is buffered.
// - Typed values re-encode to bytes that decode to the same values.
// - Memory held while decoding stays within a constant factor of the input, plus the frames
//   maxDepth allows.
import { FuzzFinding, type FuzzTarget, memoryInUse, type Rng } from '../../../scripts/fuzz/engine.ts';
import { RespDecoder, type RespDecoderOptions } from '../src/decoder.ts';
import { encodeCommand, encodeNode } from '../src/encoder.ts';
import { RespError, RespProtocolError } from '../src/errors.ts';
import type { RespNode } from '../src/values.ts';
import { cutAt, normalize } from './helpers.ts';
import { bytes, INCOMPLETE, MALFORMED, VALID } from './vectors.ts';

type Options = Omit<RespDecoderOptions, 'onReply' | 'onPush'>;

/** What the target decodes with: the real decoder, or (in the fuzzer's own tests) one with a planted bug. */
export type DecoderFactory = (options: RespDecoderOptions) => RespDecoder;

/** Bytes of memory a check may hold per input byte, and in total on top. */
const HELD_PER_BYTE = 512;
const HELD_BASE = 8 * 1024 * 1024;

interface Outcome {
  values: unknown[];
  error: { code: string; offset: number; reason: string } | undefined;
  consumed: number;
  held: number;
}

function options(rng: Rng): Options {
  switch (rng.below(7)) {
    case 0:
      return {};
    case 1:
      return { strings: 'buffer' };
    case 2:
      return { typed: true };
    case 3:
      return { maps: 'object', sets: 'set' };
    case 4:
      return { maps: 'array', verbatim: 'text', bigIntegers: 'string', attributes: 'drop' };
    case 5:
      return { typed: true, strings: 'buffer', bigIntegers: 'string' };
    default:
      return {
        typed: rng.chance(0.5),
        maxDepth: rng.between(0, 40),
        maxLineLength: rng.between(0, 64),
        maxBulkLength: rng.between(0, 100_000),
        maxAggregateLength: rng.between(0, 100_000),
      };
  }
}

function fail(kind: string, message: string): never {
  throw new FuzzFinding(kind, message);
}

/** Decodes `pieces` with `opts`; checks the per-run invariants. */
function run(create: DecoderFactory, pieces: readonly Buffer[], opts: Options, measure: boolean): Outcome {
  const values: unknown[] = [];
  let lengths = 0;
  const decoder: RespDecoder = create({
    ...opts,
    onReply: (value) => {
      values.push(value);
      lengths += decoder.lastValueLength;
    },
    onPush: (value) => {
      values.push({ push: value });
      lengths += decoder.lastValueLength;
    },
  });
  const before = measure ? memoryInUse() : 0;
  let error: Outcome['error'];
  let held = 0;
  let received = 0;
  try {
    for (const piece of pieces) {
      received += piece.length;
      decoder.feed(piece);
    }
  } catch (err) {
    if (!(err instanceof RespProtocolError)) {
      fail('untyped-error', `feed threw ${(err as Error)?.name}: ${(err as Error)?.message}\n${(err as Error)?.stack}`);
    }
    if (err.code !== 'ERR_RESP_PROTOCOL' && err.code !== 'ERR_RESP_LIMIT') fail('bad-code', `code ${err.code}`);
    error = { code: err.code, offset: err.offset, reason: err.reason };
  }
  if (measure) held = memoryInUse() - before;
  const delivered = values.map((v) => normalize(v));
  if (decoder.bytesReceived !== received) fail('offsets', `bytesReceived ${decoder.bytesReceived} of ${received}`);
  if (lengths !== decoder.bytesConsumed)
    fail('offsets', `value lengths sum to ${lengths}, bytesConsumed ${decoder.bytesConsumed}`);
  const consumed = decoder.bytesConsumed;
  if (error !== undefined) {
    if (!decoder.failed) fail('state', 'a protocol error left the decoder usable');
    // At most `received`: a verbatim string too short for its format fails where its payload would be.
    if (error.offset < decoder.bytesConsumed || error.offset > received) {
      fail('offsets', `error offset ${error.offset} outside [${decoder.bytesConsumed}, ${received}]`);
    }
    try {
      decoder.feed(Buffer.from('+OK\r\n'));
      fail('state', 'a failed decoder took more input');
    } catch (err) {
      if (!(err instanceof RespError) || err.code !== 'ERR_RESP_DECODER_FAILED') {
        fail('state', `feeding a failed decoder threw ${(err as Error)?.message}`);
      }
    }
    decoder.reset();
    decoder.feed(Buffer.from(':1\r\n'));
    if (decoder.bytesConsumed !== 4) fail('state', 'reset() did not start a new stream');
  } else if (decoder.atBoundary !== (decoder.bytesBuffered === 0)) {
    fail('state', `atBoundary ${decoder.atBoundary} with ${decoder.bytesBuffered} bytes buffered`);
  }
  return { values: delivered, error, consumed: error === undefined ? decoder.bytesConsumed : consumed, held };
}

function same(a: Outcome, b: Outcome, how: string): void {
  const ja = JSON.stringify([a.values, a.error, a.consumed]);
  const jb = JSON.stringify([b.values, b.error, b.consumed]);
  if (ja !== jb)
    fail('chunking', `${how} differs from whole:\n whole: ${ja.slice(0, 600)}\n ${how}: ${jb.slice(0, 600)}`);
}

/** The seeds: every test vector, and some larger shapes that the vectors do not reach. */
function seeds(): Buffer[] {
  const out = [...VALID.map((v) => bytes(v.input)), ...MALFORMED.map((v) => bytes(v.input)), ...INCOMPLETE.map(bytes)];
  const leaf = (i: number): RespNode => {
    switch (i % 6) {
      case 0:
        return { type: 'bulk-string', value: `v${i}` };
      case 1:
        return { type: 'integer', value: i * 1000 };
      case 2:
        return { type: 'double', value: i / 7 };
      case 3:
        return { type: 'simple-string', value: 'OK' };
      case 4:
        return { type: 'null', value: null };
      default:
        return { type: 'big-number', value: 10n ** 30n + BigInt(i) };
    }
  };
  const list = (n: number) => Array.from({ length: n }, (_, i) => leaf(i));
  out.push(
    encodeNode({ type: 'array', value: list(40) }),
    encodeNode({ type: 'map', value: list(20).map((k, i) => [k, leaf(i + 1)] as [RespNode, RespNode]) }),
    encodeNode({ type: 'set', value: list(20), streamed: true }),
    encodeNode({ type: 'push', value: [{ type: 'bulk-string', value: 'message' }, ...list(3)] }),
    encodeNode({ type: 'array', value: [{ ...leaf(0), attributes: [[leaf(1), leaf(2)]] }, ...list(5)] }),
    encodeNode({ type: 'bulk-string', value: 'x'.repeat(300), streamed: true }),
    encodeNode({ type: 'verbatim-string', format: 'txt', value: 'some text' }),
    encodeNode({ type: 'bulk-string', value: 'y'.repeat(70_000) }),
    encodeCommand(['HSET', 'key', 'f1', 'v1', 'f2', 'v2']),
  );
  let nested: RespNode = leaf(1);
  for (let i = 0; i < 50; i++)
    nested = { type: i % 2 ? 'array' : 'map', value: i % 2 ? [nested, leaf(i)] : [[leaf(i), nested]] } as RespNode;
  out.push(encodeNode(nested));
  return out;
}

/** `$12`, `*3`, `%2`, `;4`, `:-1`... : the digits after a type byte at the start of a line. */
function lengthFields(input: Buffer): [number, number][] {
  const fields: [number, number][] = [];
  const text = input.toString('latin1');
  const pattern = /(?:^|\n)[$*%~|>=!;:(](-?[0-9]+|\?)/g;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    const end = m.index + m[0].length;
    fields.push([end - (m[1] as string).length, end]);
    if (fields.length >= 256) break;
  }
  return fields;
}

/** The RESP decoder target, decoding with `create` (the real decoder by default). */
export function respTarget(create: DecoderFactory = (o) => new RespDecoder(o)): FuzzTarget {
  return {
    name: 'resp',
    seeds,
    lengthFields,
    interestingBytes: [...Buffer.from('+-:$*_#,(!=%~|>;.?\r\n0123456789tfe'), 0, 255],
    check(input, rng) {
      const opts = options(rng);
      const whole = run(create, [input], opts, true);
      const bound = HELD_PER_BYTE * input.length + HELD_BASE + (opts.maxDepth ?? 1024) * 512;
      if (whole.held > bound) {
        fail('memory', `held ${whole.held} bytes for ${input.length} input bytes (bound ${bound})`);
      }
      same(whole, run(create, cutAt(input, ...rng.cuts(input.length, 8)), opts, false), 'random pieces');
      if (input.length <= 4096 && rng.chance(0.25)) {
        const single = [...input].map((b) => Buffer.from([b]));
        same(whole, run(create, single, opts, false), 'byte by byte');
      }
      // A prefix decodes to a prefix of the values and fails only with the whole's error.
      const at = rng.below(input.length + 1);
      const prefix = run(create, [input.subarray(0, at)], opts, false);
      if (prefix.error !== undefined && JSON.stringify(prefix.error) !== JSON.stringify(whole.error)) {
        fail(
          'prefix',
          `the first ${at} bytes fail with ${JSON.stringify(prefix.error)}, the whole with ${JSON.stringify(whole.error)}`,
        );
      }
      const head = JSON.stringify(whole.values.slice(0, prefix.values.length));
      if (JSON.stringify(prefix.values) !== head) fail('prefix', `the first ${at} bytes decode to other values`);
      // Typed values survive a round trip through the encoder.
      if (opts.typed === true && whole.values.length > 0 && opts.maxDepth === undefined) {
        const again = run(create, [Buffer.concat(reencode(input, opts))], opts, false);
        if (JSON.stringify(again.values) !== JSON.stringify(whole.values)) {
          fail(
            'round-trip',
            `decoded values re-encoded with encodeNode decode to other values:\n ${JSON.stringify(whole.values).slice(0, 400)}\n ${JSON.stringify(again.values).slice(0, 400)}`,
          );
        }
      }
      return { heldBytes: whole.held, interesting: whole.values.length > 0 || (whole.error?.offset ?? 0) > 8 };
    },
  };
}

export const respDecoderTarget: FuzzTarget = respTarget();

/** The complete values of `input`, re-encoded. */
function reencode(input: Buffer, opts: Options): Buffer[] {
  const out: Buffer[] = [];
  const decoder = new RespDecoder<RespNode>({
    ...opts,
    typed: true,
    onReply: (node) => out.push(encodeNode(node)),
    onPush: (node) => out.push(encodeNode(node)),
  });
  try {
    decoder.feed(input);
  } catch {
    // the values before the error were re-encoded; that is what is compared
  }
  return out;
}
