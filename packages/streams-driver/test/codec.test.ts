import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, decodeEntry, encodeMessage, type OutgoingMessage } from '../src/codec.ts';
import { StreamsError } from '../src/errors.ts';
import { WEIRD_STRINGS as WEIRD } from './helpers.ts';

/** The field list XREADGROUP hands back for what XADD stored: every item as a Buffer. */
function onTheWire(message: OutgoingMessage): Buffer[] {
  const encoded = encodeMessage(message);
  return [
    Buffer.from('headers'),
    Buffer.from(encoded.headers),
    Buffer.from('body'),
    Buffer.isBuffer(encoded.body) ? encoded.body : Buffer.from(encoded.body),
  ];
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StreamsError);
    expect((err as StreamsError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('encodeMessage / decodeEntry', () => {
  it('round-trips the weird strings as metadata keys and values, ten at a time', () => {
    for (let i = 0; i < WEIRD.length; i += 10) {
      const metadata: Record<string, string> = {};
      for (const s of WEIRD.slice(i, i + 10)) metadata[s] = s;
      const decoded = decodeEntry(onTheWire({ body: 'x', metadata }));
      expect(decoded.metadata).toEqual(metadata);
    }
  });

  it('keeps a body that is not UTF-8 byte for byte, and a JSON body unchanged', () => {
    const body = Buffer.concat([Buffer.from(WEIRD.join('')), Buffer.from([0xbd, 0xb2])]);
    expect(decodeEntry(onTheWire({ body })).body.equals(body)).toBe(true);
    expect(decodeEntry(onTheWire({ body: '{"Foo": "Bar"}' })).body.toString()).toBe('{"Foo": "Bar"}');
  });

  it('takes a Uint8Array view without copying its whole buffer', () => {
    const backing = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const encoded = encodeMessage({ body: backing.subarray(2, 4) });
    expect([...(encoded.body as Buffer)]).toEqual([3, 4]);
    expect((encoded.body as Buffer).buffer).toBe(backing.buffer);
  });

  it('reads the Go driver format: "null" headers, and entries without headers', () => {
    const go = [Buffer.from('body'), Buffer.from('hi'), Buffer.from('headers'), Buffer.from('null')];
    expect(decodeEntry(go).metadata).toEqual({});
    expect(decodeEntry([Buffer.from('body'), Buffer.from('hi')]).body.toString()).toBe('hi');
    expect(Object.isFrozen(decodeEntry(onTheWire({ body: '', metadata: { a: 'b' } })).metadata)).toBe(true);
  });

  it('keeps "__proto__" as an ordinary key both ways', () => {
    const metadata = JSON.parse('{"__proto__": "x", "a": "b"}') as Record<string, string>;
    const decoded = decodeEntry(onTheWire({ body: '', metadata }));
    expect(Object.keys(decoded.metadata)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(decoded.metadata)).toBe(Object.prototype);
  });

  it('rejects metadata that is not well-formed string pairs, and sizes over the limits', () => {
    expectCode(() => encodeMessage({ body: 'x', metadata: { a: 'lone \ud800' } }), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage({ body: 'x', metadata: { '\udc00': 'v' } }), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage({ body: 'x', metadata: { a: 1 } as never }), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage({ body: 'x', metadata: new Map() as never }), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage({ body: 42 as never }), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage(null as never), 'ERR_STREAMS_ARGUMENT');
    const limits = { ...DEFAULT_LIMITS, maxBodyBytes: 3, maxMetadataKeys: 1, maxMetadataBytes: 10 };
    expectCode(() => encodeMessage({ body: 'four' }, limits), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage({ body: '', metadata: { a: '', b: '' } }, limits), 'ERR_STREAMS_ARGUMENT');
    expectCode(() => encodeMessage({ body: '', metadata: { a: 'long value' } }, limits), 'ERR_STREAMS_ARGUMENT');
  });

  it('reports malformed entries of foreign producers with a reason', () => {
    const b = (s: string) => Buffer.from(s);
    const cases: [unknown[], RegExp][] = [
      [[b('type'), b('order')], /no "body" field/],
      [[b('body')], /odd number/],
      [[b('body'), 42], /not a string/],
      [[b('body'), b('x'), b('headers'), b('{nope')], /not JSON/],
      [[b('body'), b('x'), b('headers'), b('[1]')], /not a JSON object/],
      [[b('body'), b('x'), b('headers'), b('{"a":1}')], /"a" is not a string/],
      [[b('body'), b('x'), b('headers'), Buffer.from([0x7b, 0xff, 0x7d])], /not valid UTF-8/],
    ];
    for (const [fields, reason] of cases) {
      try {
        decodeEntry(fields);
        throw new Error('decoded a malformed entry');
      } catch (err) {
        expect((err as StreamsError).code).toBe('ERR_STREAMS_MALFORMED');
        expect((err as Error).message).toMatch(reason);
      }
    }
    const big = Buffer.from(JSON.stringify({ k: 'v'.repeat(DEFAULT_LIMITS.maxMetadataBytes) }));
    expect(() => decodeEntry([b('body'), b(''), b('headers'), big])).toThrow(/over the limit/);
  });

  it('property: any body and any well-formed metadata survive the round trip', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 20 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.dictionary(text, text, { maxKeys: 12 }), (body, metadata) => {
        const decoded = decodeEntry(onTheWire({ body, metadata }));
        expect(Buffer.from(body).equals(decoded.body)).toBe(true);
        expect(decoded.metadata).toEqual(metadata);
      }),
    );
  });

  it('property: decoding arbitrary field lists either works or throws ERR_STREAMS_MALFORMED', () => {
    const item = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      fc.constantFrom(Buffer.from('body'), Buffer.from('headers'), Buffer.from('{"a":"b"}'), Buffer.from('null')),
      fc.constantFrom(null, 7, 'text'),
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 8 }), (fields) => {
        try {
          const decoded = decodeEntry(fields);
          expect(Buffer.isBuffer(decoded.body)).toBe(true);
        } catch (err) {
          expect((err as StreamsError).code).toBe('ERR_STREAMS_MALFORMED');
        }
      }),
    );
  });
});
