import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RespDecoder } from '../src/decoder.ts';
import { encodeCommand, encodeNode, encodeValue } from '../src/encoder.ts';
import { ReplyError, RespProtocolError } from '../src/errors.ts';
import type { RespNode } from '../src/values.ts';
import { cutAt, normalize, recorder } from './helpers.ts';

const runs = Number(process.env.RESP_FUZZ_RUNS ?? 300);

const text = fc.string({ unit: 'grapheme', maxLength: 20 });
const line = text.filter((s) => !s.includes('\r') && !s.includes('\n'));
const safeInt = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const int64 = fc
  .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
  .map((n) => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n));
const double = fc.oneof(fc.double(), fc.constantFrom(0.1, -0, Number.NaN, Infinity, -Infinity, 1e21, 5e-324));

/** Typed nodes of every kind; `depth` bounds nesting. */
const node: (depth: number) => fc.Arbitrary<RespNode> = fc.memo((depth: number) => {
  const leaves: fc.Arbitrary<RespNode>[] = [
    line.map((value) => ({ type: 'simple-string', value })),
    line.map((message) => ({ type: 'simple-error', value: new ReplyError(message) })),
    fc.oneof(safeInt, int64).map((value) => ({ type: 'integer', value })),
    fc.record({ type: fc.constant('bulk-string' as const), value: fc.option(text, { nil: null }) }),
    fc.record({ type: fc.constant('bulk-string' as const), value: text, streamed: fc.constant(true) }),
    fc.constant({ type: 'null', value: null } as const),
    fc.boolean().map((value) => ({ type: 'boolean', value })),
    double.map((value) => ({ type: 'double', value })),
    fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map((value) => ({ type: 'big-number', value })),
    text.map((message) => ({ type: 'bulk-error', value: new ReplyError(message, true) })),
    fc.record({ type: fc.constant('verbatim-string' as const), format: fc.constantFrom('txt', 'mkd'), value: text }),
  ];
  if (depth <= 0) return fc.oneof(...leaves);
  const child = node(depth - 1);
  const streamed = fc.option(fc.constant(true), { nil: undefined });
  const aggregates: fc.Arbitrary<RespNode>[] = [
    fc.record(
      { type: fc.constant('array' as const), value: fc.array(child, { maxLength: 4 }), streamed },
      { requiredKeys: ['type', 'value'] },
    ),
    fc.constant({ type: 'array', value: null } as const),
    fc.record(
      { type: fc.constant('set' as const), value: fc.array(child, { maxLength: 4 }), streamed },
      { requiredKeys: ['type', 'value'] },
    ),
    fc.record(
      { type: fc.constant('map' as const), value: fc.array(fc.tuple(child, child), { maxLength: 3 }), streamed },
      { requiredKeys: ['type', 'value'] },
    ),
  ];
  const plain = fc.oneof(
    { weight: 3, arbitrary: fc.oneof(...leaves) },
    { weight: 2, arbitrary: fc.oneof(...aggregates) },
  );
  return fc.oneof(
    { weight: 5, arbitrary: plain },
    {
      weight: 1,
      arbitrary: fc
        .tuple(plain, fc.array(fc.tuple(child, child), { minLength: 1, maxLength: 2 }))
        .map(([n, attributes]) => ({ ...n, attributes })),
    },
  );
});

/** Top-level values: any node, or a push of nodes. */
const topLevel = fc.oneof(
  { weight: 5, arbitrary: node(3) },
  { weight: 1, arbitrary: fc.array(node(2), { maxLength: 4 }).map((value): RespNode => ({ type: 'push', value })) },
);

/** Cut points for a buffer of `length` bytes. */
function splits(length: number) {
  return fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 12 })
    .map((cuts) => cuts.filter((c) => c < length).sort((a, b) => a - b));
}

describe('decoder properties', () => {
  it('decodes what encodeNode wrote, under any chunking (typed mode is the identity)', () => {
    fc.assert(
      fc.property(
        fc.array(topLevel, { minLength: 1, maxLength: 5 }).chain((nodes) => {
          const bytes = Buffer.concat(nodes.map((n) => encodeNode(n)));
          return fc.tuple(fc.constant(nodes), fc.constant(bytes), splits(bytes.length));
        }),
        ([nodes, bytes, cuts]) => {
          const { decoder, out } = recorder({ typed: true });
          for (const piece of cutAt(bytes, ...cuts)) decoder.feed(piece);
          expect(out.map((e) => normalize(e.value))).toEqual(nodes.map((n) => normalize(n)));
          expect(out.map((e) => e.push)).toEqual(nodes.map((n) => n.type === 'push'));
          expect(decoder.bytesConsumed).toBe(bytes.length);
          // Re-encoding the decoded nodes gives the same bytes.
          expect(Buffer.concat(out.map((e) => encodeNode(e.value as RespNode)))).toEqual(bytes);
        },
      ),
      { numRuns: runs },
    );
  });

  it('gives each value its exact byte length', () => {
    fc.assert(
      fc.property(
        fc.array(topLevel, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 64 }),
        (nodes, chunk) => {
          const encoded = nodes.map((n) => encodeNode(n));
          const bytes = Buffer.concat(encoded);
          const lengths: number[] = [];
          const decoder = new RespDecoder({
            typed: true,
            onReply: () => lengths.push(decoder.lastValueLength),
            onPush: () => lengths.push(decoder.lastValueLength),
          });
          for (let i = 0; i < bytes.length; i += chunk) decoder.feed(bytes.subarray(i, i + chunk));
          expect(lengths).toEqual(encoded.map((b) => b.length));
        },
      ),
      { numRuns: runs },
    );
  });

  it('decodes encodeCommand output back to the arguments', () => {
    const arg = fc.oneof(
      text,
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      safeInt,
      fc.bigInt(),
    );
    fc.assert(
      fc.property(fc.array(arg, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 16 }), (args, chunk) => {
        const bytes = Buffer.from(encodeCommand(args));
        const { decoder, out } = recorder({ strings: 'buffer' });
        for (let i = 0; i < bytes.length; i += chunk) decoder.feed(bytes.subarray(i, i + chunk));
        const want = args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8')));
        expect(out).toHaveLength(1);
        expect(out[0]?.value).toEqual(want);
      }),
      { numRuns: runs },
    );
  });

  it('decodes encodeValue output to the same plain value', () => {
    const plain: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        text,
        safeInt,
        fc.boolean(),
        fc.constant(null),
        fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d)),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.array(fc.tuple(text, tie('value')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
      ),
    })).value;
    fc.assert(
      fc.property(plain, (value) => {
        const { decoder, out } = recorder({ maps: 'map' });
        decoder.feed(encodeValue(value as never));
        expect(normalize(out[0]?.value)).toEqual(normalize(value));
      }),
      { numRuns: runs },
    );
  });

  it('meets random garbage with values or a protocol error, never anything else, and identically under any chunking', () => {
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      // Mostly protocol-looking bytes, to get past the first type byte more often.
      fc
        .array(fc.constantFrom(...Buffer.from('+-:$*_#,(!=%~|>;.?\r\n0123456789-aft')), { maxLength: 200 })
        .map((a) => Uint8Array.from(a)),
    );
    fc.assert(
      fc.property(
        garbage.chain((g) => fc.tuple(fc.constant(Buffer.from(g)), splits(g.length))),
        ([bytes, cuts]) => {
          const run = (pieces: Buffer[]) => {
            const { decoder, out } = recorder({ typed: true, maxDepth: 32 });
            let error: { offset: number; code: string } | undefined;
            try {
              for (const piece of pieces) decoder.feed(piece);
            } catch (err) {
              if (!(err instanceof RespProtocolError)) throw err;
              error = { offset: err.offset, code: err.code };
            }
            return { values: out.map((e) => normalize(e.value)), error, consumed: decoder.bytesConsumed };
          };
          const whole = run([bytes]);
          expect(run(cutAt(bytes, ...cuts))).toEqual(whole);
        },
      ),
      { numRuns: runs * 3 },
    );
  });
});
