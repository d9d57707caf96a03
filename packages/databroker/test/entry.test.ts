import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEntry,
  encodeBody,
  encodeEntry,
  HEADER_SIZE,
  MAX_NAME_BYTES,
  readHeader,
  recordField,
  tombstoneOf,
} from '../src/entry.ts';
import { DataBrokerError } from '../src/errors.ts';

const name = fc.string({ unit: 'grapheme', maxLength: 40 });
const entryArb = fc.record({
  type: name,
  id: name,
  data: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
  encrypted: fc.boolean(),
  version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  modifiedAt: fc.integer({ min: -8.64e15, max: 8.64e15 }),
  deletedAt: fc.option(fc.integer({ min: -8.64e15, max: 8.64e15 }), { nil: undefined }),
});

describe('stored entries', () => {
  it('round-trip every field', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const body = encodeBody(e.type, e.id, e.data, e.encrypted);
        const bytes = encodeEntry(body, e.version, e.modifiedAt, e.deletedAt);
        const back = decodeEntry(bytes);
        expect(back.type).toBe(e.type);
        expect(back.id).toBe(e.id);
        expect(back.version).toBe(e.version);
        expect(back.modifiedAt).toBe(e.modifiedAt);
        expect(back.deletedAt).toBe(e.deletedAt);
        expect(back.encrypted).toBe(e.data !== undefined && e.encrypted);
        if (e.data === undefined) expect(back.data).toBeUndefined();
        else expect(Buffer.from(back.data ?? []).equals(Buffer.from(e.data))).toBe(true);
        expect(readHeader(bytes).version).toBe(e.version);
      }),
    );
  });

  it('rewrites only the header between attempts', () => {
    const body = encodeBody('t', 'i', Buffer.from('{"a":1}'), false);
    const first = encodeEntry(body, 1, 10, undefined);
    const second = encodeEntry(body, 99, 20, undefined);
    expect(first.subarray(HEADER_SIZE).equals(second.subarray(HEADER_SIZE))).toBe(true);
    expect(decodeEntry(second).version).toBe(99);
  });

  it('turns a stored record into a tombstone that keeps its data', () => {
    const stored = encodeEntry(encodeBody('t', 'i', Buffer.from('kept'), false), 5, 100, undefined);
    const tombstone = decodeEntry(tombstoneOf(stored, 9, 200));
    expect(tombstone).toMatchObject({ type: 't', id: 'i', version: 9, modifiedAt: 200, deletedAt: 200 });
    expect(tombstone.data?.toString()).toBe('kept');
    expect(decodeEntry(stored).version).toBe(5); // the original is untouched
  });

  it('rejects every truncation with a typed error, never a crash', () => {
    fc.assert(
      fc.property(entryArb, fc.nat(), (e, cut) => {
        const bytes = encodeEntry(encodeBody(e.type, e.id, e.data, e.encrypted), e.version, e.modifiedAt, e.deletedAt);
        const end = cut % bytes.length;
        const truncated = bytes.subarray(0, end);
        try {
          const back = decodeEntry(truncated);
          // A cut inside the data still decodes when the entry has data: only the data is shorter.
          expect(e.data).toBeDefined();
          expect(back.id).toBe(e.id);
        } catch (err) {
          expect(err).toBeInstanceOf(DataBrokerError);
          expect((err as DataBrokerError).code).toBe('ERR_DATABROKER_CORRUPT');
        }
      }),
    );
  });

  it('never throws anything but a typed error on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (random, valid) => {
        const bytes = Buffer.from(random);
        if (valid && bytes.length > 1) {
          bytes[0] = 1; // a known format, so that decoding goes past the first check
          bytes[1] = (bytes[1] ?? 0) & 7;
        }
        try {
          decodeEntry(bytes);
        } catch (err) {
          expect((err as DataBrokerError).code).toBe('ERR_DATABROKER_CORRUPT');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('explains an unknown format, flags, versions and oversized lengths', () => {
    const good = encodeEntry(encodeBody('t', 'i', undefined, false), 1, 0, undefined);
    const format = Buffer.from(good);
    format[0] = 2;
    expect(() => decodeEntry(format)).toThrow(/format 2.*newer/);
    const flags = Buffer.from(good);
    flags[1] = 0x80;
    expect(() => decodeEntry(flags)).toThrow(/unknown flags/);
    const zero = Buffer.from(good);
    zero.fill(0, 2, 10);
    expect(() => decodeEntry(zero)).toThrow(/version 0/);
    const huge = Buffer.from(good);
    huge.writeUInt32BE(MAX_NAME_BYTES + 1, HEADER_SIZE);
    expect(() => decodeEntry(huge)).toThrow(/declares a type of/);
    const trailing = Buffer.concat([good, Buffer.from('x')]);
    expect(() => decodeEntry(trailing)).toThrow(/after its id/);
  });

  it('gives every (type, id) pair its own field', () => {
    expect(recordField('a/b', 'c')).not.toBe(recordField('a', 'b/c'));
    fc.assert(
      fc.property(name, name, name, name, (t1, i1, t2, i2) => {
        fc.pre(t1 !== t2 || i1 !== i2);
        expect(recordField(t1, i1)).not.toBe(recordField(t2, i2));
      }),
    );
  });
});
