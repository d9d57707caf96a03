import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { envelopeHead, formatRfc3339Nano, goEscapeJson, splitEnvelope } from '../src/go-json.ts';
import { goEventJson, goTimeRfc3339Nano } from './go-extension.ts';

describe("Go's JSON for events", () => {
  it("formats times like Go's time.RFC3339Nano in UTC", () => {
    // What Go prints for time.Unix(0, n).UTC().Format(time.RFC3339Nano)
    const fixtures: [string, string][] = [
      ['0', '1970-01-01T00:00:00Z'],
      ['1', '1970-01-01T00:00:00.000000001Z'],
      ['1715595630000000000', '2024-05-13T10:20:30Z'],
      ['1715595630100000000', '2024-05-13T10:20:30.1Z'],
      ['1715595630123456789', '2024-05-13T10:20:30.123456789Z'],
      ['1715595630123450000', '2024-05-13T10:20:30.12345Z'],
      ['951782400000000000', '2000-02-29T00:00:00Z'],
      ['4102444799999999999', '2099-12-31T23:59:59.999999999Z'],
    ];
    for (const [ns, text] of fixtures) {
      expect(formatRfc3339Nano(ns)).toBe(text);
      expect(goTimeRfc3339Nano(BigInt(ns))).toBe(text);
    }
  });

  it('agrees with Date for every millisecond time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), fc.integer({ min: 0, max: 999_999 }), (ms, sub) => {
        const text = formatRfc3339Nano(`${BigInt(ms) * 1_000_000n + BigInt(sub)}`);
        expect(Date.parse(text)).toBe(ms);
        expect(text.slice(0, 19)).toBe(new Date(ms).toISOString().slice(0, 19));
        expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('escapes <, >, &, U+2028 and U+2029 like encoding/json, without changing the value', () => {
    expect(goEscapeJson('{"h":"<a href=\\"x\\">&</a>\u2028\u2029"}')).toBe(
      '{"h":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e\\u2028\\u2029"}',
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const escaped = goEscapeJson(JSON.stringify(value));
        expect(escaped).not.toMatch(/[<>&\u2028\u2029]/);
        expect(JSON.parse(escaped)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 1000 },
    );
  });

  it('writes the envelope Go writes, byte for byte', () => {
    const payload = { amount: 1.5, id: 'a<b>&c', tags: ['x', 'y'] }; // keys in Go's (sorted) order
    const ns = 1715595630123456000n;
    const ours = `${envelopeHead('order:paid', goEscapeJson(JSON.stringify(payload)))}${formatRfc3339Nano(`${ns}`)}"}`;
    expect(ours).toBe(goEventJson('order:paid', payload, ns));
    expect(ours).toBe(
      '{"name":"order:paid","payload":{"amount":1.5,"id":"a\\u003cb\\u003e\\u0026c","tags":["x","y"]},"timestamp":"2024-05-13T10:20:30.123456Z"}',
    );
  });

  it('finds the exact payload text in any envelope of the canonical shape', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.jsonValue(),
        fc.bigInt({ min: 0n, max: 4_102_444_799_999_999_999n }),
        (name, value, ns) => {
          const payloadText = goEscapeJson(JSON.stringify(value) ?? 'null');
          const text = `${envelopeHead(name, payloadText)}${formatRfc3339Nano(`${ns}`)}"}`;
          expect(splitEnvelope(text)?.payloadText).toBe(payloadText);
        },
      ),
      { numRuns: 1000 },
    );
    expect(splitEnvelope('{"payload":1,"name":"x","timestamp":"t"}')).toBeUndefined();
    expect(splitEnvelope('{"name":"x","payload":1}')).toBeUndefined();
    expect(splitEnvelope('{"name":"x')).toBeUndefined();
    expect(splitEnvelope('{"name":"x","payload":{"timestamp":"a"},"timestamp":"t"}')?.payloadText).toBe(
      '{"timestamp":"a"}',
    );
  });
});
