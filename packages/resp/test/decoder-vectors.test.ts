import { describe, expect, it } from 'vitest';
import { RespDecoder } from '../src/decoder.ts';
import { RespError, RespProtocolError } from '../src/errors.ts';
import { bytewise, cutAt, decodeIn, normalize, recorder } from './helpers.ts';
import { bytes, INCOMPLETE, MALFORMED, VALID } from './vectors.ts';

function expected(vector: (typeof VALID)[number]): unknown[] {
  return vector.values.map((v) => ({ push: v.push === true, value: normalize(v.node) }));
}

function protocolError(feed: () => void): RespProtocolError {
  try {
    feed();
  } catch (err) {
    expect(err).toBeInstanceOf(RespProtocolError);
    return err as RespProtocolError;
  }
  throw new Error('no protocol error');
}

describe('decoder vectors', () => {
  it('covers every RESP type and form', () => {
    const types = new Set(VALID.flatMap((v) => v.values.map((x) => x.node.type)));
    expect([...types].sort()).toEqual(
      [
        'array',
        'big-number',
        'boolean',
        'bulk-error',
        'bulk-string',
        'double',
        'integer',
        'map',
        'null',
        'push',
        'set',
        'simple-error',
        'simple-string',
        'verbatim-string',
      ].sort(),
    );
    expect(VALID.length + MALFORMED.length + INCOMPLETE.length).toBeGreaterThan(170);
  });

  describe.each(VALID.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const input = bytes(vector.input);

    it('decodes whole', () => {
      const { decoder, out } = recorder({ typed: true });
      decoder.feed(input);
      expect(out.map((e) => ({ push: e.push, value: normalize(e.value) }))).toEqual(expected(vector));
      expect(decoder.bytesConsumed).toBe(input.length);
      expect(decoder.bytesBuffered).toBe(0);
      expect(decoder.atBoundary).toBe(true);
    });

    it('decodes identically at every split point and byte by byte', () => {
      const want = expected(vector);
      for (let at = 1; at < input.length; at++) expect(decodeIn(cutAt(input, at), { typed: true })).toEqual(want);
      for (let at = 1; at + 2 < input.length; at += 3) {
        expect(decodeIn(cutAt(input, at, at + 2), { typed: true })).toEqual(want);
      }
      expect(decodeIn(bytewise(input), { typed: true })).toEqual(want);
    });

    it('never fails on a proper prefix', () => {
      for (let at = 0; at < input.length; at++) {
        const { decoder } = recorder({ typed: true });
        decoder.feed(input.subarray(0, at));
        expect(decoder.failed).toBe(false);
      }
    });

    it('decodes the same in Buffer mode, with Buffers for bulk payloads', () => {
      const asText = (value: unknown): unknown =>
        JSON.parse(JSON.stringify(value), (_k, v) =>
          v && typeof v === 'object' && 'buffer' in v && Object.keys(v).length === 1
            ? Buffer.from(v.buffer, 'latin1').toString('utf8')
            : v,
        );
      expect(asText(decodeIn([input], { typed: true, strings: 'buffer' }))).toEqual(asText(expected(vector)));
    });
  });
});

describe('malformed vectors', () => {
  describe.each(MALFORMED.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const input = bytes(vector.input);
    const options = vector.options ?? {};
    const want = { code: vector.code ?? 'ERR_RESP_PROTOCOL', offset: vector.offset };

    /** The error of `input` fed in these pieces, as what must not depend on the pieces. */
    function failureOf(pieces: readonly Buffer[]) {
      const { decoder } = recorder(options);
      const err = protocolError(() => {
        for (const piece of pieces) decoder.feed(piece);
      });
      expect(decoder.failed).toBe(true);
      return { code: err.code, offset: err.offset, reason: err.reason };
    }

    it('raises a protocol error with the offset and reason', () => {
      const { decoder } = recorder(options);
      const err = protocolError(() => decoder.feed(input));
      expect(err.code).toBe(want.code);
      expect(err.reason).toMatch(vector.reason);
      expect(err.offset).toBe(vector.offset);
      expect(err.message).toContain(`at byte ${vector.offset}`);
      expect(decoder.failed).toBe(true);
    });

    it('raises the same error (code, offset, reason) at every split, every pair of splits and byte by byte', () => {
      const whole = failureOf([input]);
      expect(whole).toMatchObject(want);
      for (let at = 1; at < input.length; at++)
        expect({ at, ...failureOf(cutAt(input, at)) }).toEqual({ at, ...whole });
      // Every pair of cuts for short inputs; a sample of them for long ones.
      const step = input.length <= 64 ? 1 : Math.ceil(input.length / 48);
      for (let a = 1; a < input.length; a += step) {
        for (let b = a + 1; b < input.length; b += step) {
          expect({ a, b, ...failureOf(cutAt(input, a, b)) }).toEqual({ a, b, ...whole });
        }
      }
      expect(failureOf(bytewise(input))).toEqual(whole);
    });
  });

  it('refuses input after a failure until reset, then decodes a new stream from offset 0', () => {
    const { decoder, out } = recorder();
    expect(() => decoder.feed(bytes(':1\r\n:x\r\n'))).toThrow(RespProtocolError);
    expect(out).toHaveLength(1);
    let refused: unknown;
    try {
      decoder.feed(bytes('+OK\r\n'));
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(RespError);
    expect(refused).toMatchObject({ code: 'ERR_RESP_DECODER_FAILED' });
    expect((refused as Error).cause).toBeInstanceOf(RespProtocolError);
    decoder.reset();
    decoder.feed(bytes('+OK\r\n'));
    expect(out.map((e) => e.value)).toEqual([1, 'OK']);
    expect(decoder.bytesConsumed).toBe(5);
  });
});

describe('incomplete input', () => {
  it.each(INCOMPLETE.map((i) => [JSON.stringify(i), i] as const))('%s emits nothing and waits', (_name, input) => {
    const { decoder, out } = recorder();
    decoder.feed(bytes(input));
    expect(out).toEqual([]);
    expect(decoder.failed).toBe(false);
    expect(decoder.bytesBuffered).toBe(bytes(input).length);
    expect(decoder.atBoundary).toBe(false);
  });

  it('rejects an empty onReply', () => {
    expect(() => new RespDecoder({} as never)).toThrow(/onReply/);
  });
});
