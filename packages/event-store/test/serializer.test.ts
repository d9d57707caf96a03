import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventStoreError } from '../src/errors.ts';
import { jsonSerializer, serializePayload } from '../src/serializer.ts';

function refusal(payload: unknown): string {
  try {
    serializePayload(payload);
  } catch (err) {
    expect(err).toBeInstanceOf(EventStoreError);
    expect(err).toMatchObject({ code: 'ERR_EVENT_STORE_PAYLOAD' });
    return (err as Error).message;
  }
  return expect.fail('the payload was accepted');
}

describe('payload rules of the default serializer', () => {
  it('writes Dates as ISO strings and anything with toJSON as its result', () => {
    expect(serializePayload({ at: new Date(Date.UTC(2024, 4, 13, 10, 20, 30, 123)) })).toBe(
      '{"at":"2024-05-13T10:20:30.123Z"}',
    );
    expect(serializePayload({ money: { toJSON: () => '12.50 EUR' } })).toBe('{"money":"12.50 EUR"}');
    expect(serializePayload(Buffer.from('hi'))).toBe('{"type":"Buffer","data":[104,105]}');
  });

  it('drops undefined properties, writes undefined array items as null, stores an undefined payload as null', () => {
    expect(serializePayload({ a: 1, b: undefined })).toBe('{"a":1}');
    expect(serializePayload([undefined, 1])).toBe('[null,1]');
    expect(serializePayload(undefined)).toBe('null');
  });

  it('refuses BigInt with the path and what to do', () => {
    expect(refusal({ order: { lines: [{ amount: 12n }] } })).toBe(
      'payload.order.lines[0].amount is a BigInt (12n), which JSON cannot hold: convert it to a string (or a number when it is small enough), or pass a serializer that supports BigInt',
    );
    expect(refusal(5n)).toMatch(/^payload is a BigInt \(5n\)/);
    expect(refusal({ 'odd key': 1n })).toMatch(/^payload\["odd key"\] is a BigInt/);
  });

  it('refuses what JSON.stringify would silently change', () => {
    expect(refusal({ n: Number.NaN })).toMatch(/^payload\.n is NaN/);
    expect(refusal([Number.POSITIVE_INFINITY])).toMatch(/^payload\[0\] is Infinity/);
    expect(refusal({ f: () => 1 })).toMatch(/^payload\.f is a function/);
    expect(refusal({ s: Symbol('x') })).toMatch(/^payload\.s is a symbol/);
    expect(refusal({ m: new Map([[1, 2]]) })).toMatch(/^payload\.m is a Map/);
    expect(refusal({ s: new Set([1]) })).toMatch(/^payload\.s is a Set/);
    expect(refusal({ r: /x/ })).toMatch(/^payload\.r is a RegExp/);
    expect(refusal({ bytes: new Uint8Array(2) })).toMatch(/^payload\.bytes is binary data/);
    expect(refusal({ at: new Date(Number.NaN) })).toMatch(/^payload\.at is an invalid Date/);
  });

  it('refuses circular payloads', () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    expect(refusal(loop)).toMatch(/circular/);
  });

  it('refuses a payload too deep for JSON.stringify with a typed error', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(refusal(deep)).toMatch(/cannot be written as JSON/);
  });

  it('round-trips every JSON value exactly', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = jsonSerializer.serialize(value);
        expect(jsonSerializer.deserialize(text)).toEqual(JSON.parse(JSON.stringify(value)));
        expect(text).toBe(JSON.stringify(value));
      }),
      { numRuns: 500 },
    );
  });

  it('accepts class instances and null-prototype objects as their own enumerable properties', () => {
    class Point {
      x = 1;
      y = 2;
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const bare = Object.assign(Object.create(null) as object, { k: 'v' });
    expect(serializePayload({ p: new Point(), bare })).toBe('{"p":{"x":1,"y":2},"bare":{"k":"v"}}');
  });
});
