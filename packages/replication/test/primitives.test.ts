// CRC64, LZF and the compact encodings, against known vectors and as round-trip properties
// with the encoders written from the format descriptions (test/encoders.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeIntset,
  decodeListpack,
  decodeZiplist,
  decodeZipmap,
  EncodingError,
  parseScore,
  valueBytes,
} from '../src/compact-encodings.ts';
import { Crc64, crc64 } from '../src/crc64.ts';
import { LzfError, LzfStreamDecoder, lzfDecompress } from '../src/lzf.ts';
import { keyMetaClassFromSpec, moduleTypeFromId } from '../src/rdb-format.ts';
import { type Element, intset, listpack, lzfCompress, ziplist, zipmap } from './encoders.ts';
import { keyMetaSpec, moduleId } from './rdb-writer.ts';

describe('CRC-64/Jones', () => {
  it('matches the check value of the Redis implementation', () => {
    // Redis src/crc64.c test: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca
    expect(crc64(Buffer.from('123456789'))).toBe(0xe9c6d914c4b8d9can);
    expect(crc64(Buffer.alloc(0))).toBe(0n);
  });

  it('gives the same digest however the input is split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300)), (data, cuts) => {
        const crc = new Crc64();
        let at = 0;
        for (const cut of [...cuts.map((c) => Math.min(c, data.length)).sort((a, b) => a - b), data.length]) {
          crc.update(data, at, cut);
          at = Math.max(at, cut);
        }
        expect(crc.digest()).toBe(crc64(data));
      }),
    );
  });

  it('agrees with a bit-by-bit reference', () => {
    const reference = (data: Uint8Array): bigint => {
      let crc = 0n;
      for (const byte of data) {
        crc ^= BigInt(byte);
        for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ 0x95ac9329ac4bc9b5n : crc >> 1n;
      }
      return crc;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (data) => {
        expect(crc64(data)).toBe(reference(data));
      }),
    );
    // Long inputs are read a word at a time from wherever they start in their ArrayBuffer.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 600 }), fc.nat(7), fc.nat(7), (data, shift, cut) => {
        const holder = new Uint8Array(data.length + 8);
        holder.set(data, shift);
        const view = holder.subarray(shift, shift + data.length);
        expect(crc64(view)).toBe(reference(data));
        const crc = new Crc64();
        crc.update(view, 0, cut);
        crc.update(view, cut);
        expect(crc.digest()).toBe(reference(data));
      }),
    );
  });
});

describe('LZF', () => {
  const compressible = fc
    .array(fc.constantFrom('abc', 'hello ', 'x', '0123456789', '\u0000\u0001'), { minLength: 10, maxLength: 3000 })
    .map((p) => Buffer.from(p.join(''), 'latin1'));

  it('decompresses what the reference-format compressor produced', () => {
    fc.assert(
      fc.property(compressible, (input) => {
        const packed = lzfCompress(input);
        if (packed) expect(lzfDecompress(packed, input.length).equals(input)).toBe(true);
      }),
    );
  });

  it('decompresses in pieces, fed in any split, to the same bytes in bounded chunks', () => {
    fc.assert(
      fc.property(compressible, fc.array(fc.nat(5000), { maxLength: 20 }), (input, cuts) => {
        const packed = lzfCompress(input);
        if (!packed) return;
        const decoder = new LzfStreamDecoder(input.length, 8192, packed.length);
        const out: Buffer[] = [];
        let at = 0;
        for (const cut of [...cuts.map((c) => Math.min(c, packed.length)).sort((a, b) => a - b), packed.length]) {
          decoder.write(packed.subarray(at, Math.max(at, cut)), (c) => out.push(c));
          at = Math.max(at, cut);
        }
        decoder.finish((c) => out.push(c));
        for (const c of out.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(8192);
        expect(Buffer.concat(out).equals(input)).toBe(true);
      }),
    );
  });

  it('refuses a declared length no compressed input of that size can produce, before allocating it', () => {
    expect(() => lzfDecompress(Buffer.from([0x00, 0x61]), 512 * 1024 * 1024)).toThrow(/cannot hold/);
    expect(() => new LzfStreamDecoder(512 * 1024 * 1024, 8192, 2)).toThrow(/cannot hold/);
    expect(lzfDecompress(Buffer.from([0x00, 0x61, 0xe0, 0xff, 0x00]), 265).equals(Buffer.alloc(265, 'a'))).toBe(true);
  });

  it('reports corrupt data instead of reading out of bounds', () => {
    expect(() => lzfDecompress(Buffer.from([0x20, 0x00]), 10)).toThrow(LzfError); // reference before start
    expect(() => lzfDecompress(Buffer.from([0x05, 0x61]), 6)).toThrow(LzfError); // literal past input
    expect(() => lzfDecompress(Buffer.from([0x00, 0x61]), 5)).toThrow(LzfError); // too short
    expect(() => lzfDecompress(Buffer.from([0x01, 0x61, 0x62]), 1)).toThrow(LzfError); // too long
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.nat(200), (data, length) => {
        try {
          lzfDecompress(data, length);
        } catch (err) {
          expect(err).toBeInstanceOf(LzfError);
        }
      }),
    );
  });
});

const element: fc.Arbitrary<Element> = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ minLength: 4000, maxLength: 4200 }),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.integer({ min: -200, max: 200 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const asText = (e: Element) =>
  valueBytes(
    typeof e === 'string' ? Buffer.from(e, 'latin1') : Buffer.isBuffer(e) ? e : typeof e === 'bigint' ? e : e,
  ).toString('latin1');

describe('compact encodings', () => {
  it('decodes listpacks of every entry encoding', () => {
    fc.assert(
      fc.property(fc.array(element, { maxLength: 40 }), (items) => {
        const decoded = decodeListpack(listpack(items)).map((v) => valueBytes(v).toString('latin1'));
        expect(decoded).toEqual(items.map((e) => (typeof e === 'string' ? e : asText(e))));
      }),
    );
  });

  it('decodes ziplists of every entry encoding, including 5-byte previous lengths', () => {
    fc.assert(
      fc.property(fc.array(element, { maxLength: 40 }), (items) => {
        const decoded = decodeZiplist(ziplist(items)).map((v) => valueBytes(v).toString('latin1'));
        expect(decoded).toEqual(items.map((e) => (typeof e === 'string' ? e : asText(e))));
      }),
    );
  });

  it('decodes intsets of 16, 32 and 64-bit integers', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 30 }),
        (values) => {
          const sorted = [...values].sort((a, b) => (a < b ? -1 : 1)).map(String);
          expect(decodeIntset(intset(values)).map(String)).toEqual(sorted);
        },
      ),
    );
  });

  it('decodes zipmaps with short and long lengths and free space', () => {
    const pairs: [string, string][] = [
      ['a', 'b'],
      ['long', 'z'.repeat(300)],
    ];
    expect(decodeZipmap(zipmap(pairs, 2)).map((b) => b.toString())).toEqual(pairs.flat());
  });

  it('rejects damaged blobs with an EncodingError, never a RangeError', () => {
    const blobs = [
      listpack(['abc', 12345, 'x'.repeat(100)]),
      ziplist(['abc', 12345, 'x'.repeat(100)]),
      intset([1, 2, 70000]),
      zipmap([['f', 'v']]),
    ];
    const decoders = [decodeListpack, decodeZiplist, decodeIntset, decodeZipmap];
    fc.assert(
      fc.property(
        fc.nat(3),
        fc.array(fc.record({ at: fc.nat(200), byte: fc.nat(255) }), { minLength: 1, maxLength: 4 }),
        fc.nat(200),
        (which, changes, cut) => {
          const blob = Buffer.from(blobs[which] as Buffer);
          for (const { at, byte } of changes) blob[at % blob.length] = byte;
          const input = blob.subarray(0, Math.min(blob.length, cut + 1));
          try {
            (decoders[which] as (b: Buffer) => unknown)(input);
          } catch (err) {
            expect(err).toBeInstanceOf(EncodingError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reads scores the way Redis prints them', () => {
    expect(parseScore(Buffer.from('inf'))).toBe(Number.POSITIVE_INFINITY);
    expect(parseScore(Buffer.from('-inf'))).toBe(Number.NEGATIVE_INFINITY);
    expect(parseScore(Buffer.from('nan'))).toBeNaN();
    expect(parseScore(Buffer.from('1.5e-7'))).toBe(1.5e-7);
    expect(() => parseScore(Buffer.from('abc'))).toThrow(EncodingError);
    expect(Object.is(parseScore(Buffer.from('-0')), -0)).toBe(true);
    for (const text of ['1.', '.5', '-.5', '007.50', '123456789012345', '1234567890123456', '0.1', '-'])
      expect(Object.is(tryScore(text), tryNumber(text)), text).toBe(true);
  });

  it('reads every decimal text to the same double as Number() does', () => {
    const decimal = fc
      .tuple(fc.boolean(), fc.stringMatching(/^[0-9]{1,17}$/), fc.option(fc.stringMatching(/^[0-9]{0,17}$/)))
      .map(([negative, whole, fraction]) => `${negative ? '-' : ''}${whole}${fraction === null ? '' : `.${fraction}`}`);
    fc.assert(
      fc.property(fc.oneof(decimal, fc.double({ noNaN: true }).map(String)), (text) => {
        expect(Object.is(tryScore(text), tryNumber(text)), text).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });
});

/** The score of a text, or 'error'. */
function tryScore(text: string): number | string {
  try {
    return parseScore(Buffer.from(text, 'latin1'));
  } catch {
    return 'error';
  }
}

/** What Number() makes of a score text ('error' where parseScore must refuse it). */
function tryNumber(text: string): number | string {
  const n = Number(text);
  return text === '' || text === '-' || Number.isNaN(n) ? 'error' : n;
}

describe('names packed in integers', () => {
  it('decodes module type ids and key-metadata class specs', () => {
    expect(moduleTypeFromId(moduleId('ReJSON-RL', 3))).toEqual({ name: 'ReJSON-RL', version: 3 });
    expect(moduleTypeFromId(moduleId('MBbloom--', 1023))).toEqual({ name: 'MBbloom--', version: 1023 });
    expect(keyMetaClassFromSpec(keyMetaSpec('KMT1', 31, 7) >>> 0)).toEqual({ name: 'KMT1', version: 31, flags: 7 });
  });
});
