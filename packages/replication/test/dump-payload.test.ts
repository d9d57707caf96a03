// DUMP payloads: hand-built for every encoding family, and checked on the errors they can carry.
// The payloads real servers return for every key of the dataset are checked in rdb-servers.test.ts.
import { describe, expect, it } from 'vitest';
import { crc64 } from '../src/crc64.ts';
import { parseDumpPayload, RdbError } from '../src/index.ts';
import { entries, plain, thrown } from './event-helpers.ts';
import { RdbWriter } from './rdb-writer.ts';

/** A DUMP payload of the value `write` puts under an empty key. */
function dumpOf(version: number, write: (w: RdbWriter) => RdbWriter, magic: 'REDIS' | 'VALKEY' = 'REDIS'): Buffer {
  const body = write(new RdbWriter(version, magic)).bytes().subarray(9);
  const keyAt = body[0] === 243 ? body.indexOf(0, 1) : 1; // the empty key's length byte
  const value = Buffer.concat([body.subarray(0, keyAt), body.subarray(keyAt + 1)]);
  const footer = Buffer.alloc(2);
  footer.writeUInt16LE(version);
  const head = Buffer.concat([value, footer]);
  const crc = Buffer.alloc(8);
  crc.writeBigUInt64LE(crc64(head));
  return Buffer.concat([head, crc]);
}

const value = (payload: Buffer) =>
  entries(parseDumpPayload(payload).parts).map(({ type, value: v, rdbType }) => ({ type, rdbType, value: v }));

describe('parseDumpPayload', () => {
  it('decodes values of every family', () => {
    expect(value(dumpOf(11, (w) => w.stringValue('', 'hello')))).toEqual([
      { type: 'string', rdbType: 0, value: 'hello' },
    ]);
    expect(value(dumpOf(9, (w) => w.stringValue('', '-7', 'int')))).toEqual([
      { type: 'string', rdbType: 0, value: '-7' },
    ]);
    expect(value(dumpOf(10, (w) => w.quicklist2('', [['a', 1]])))).toEqual([
      { type: 'list', rdbType: 18, value: ['a', '1'] },
    ]);
    expect(value(dumpOf(11, (w) => w.setListpack('', ['x'])))).toEqual([{ type: 'set', rdbType: 20, value: ['x'] }]);
    expect(value(dumpOf(12, (w) => w.hashListpackEx('', [['f', 'v', 1_900_000_000_000]])))).toEqual([
      { type: 'hash', rdbType: 25, value: [{ field: 'f', value: 'v', expireAt: 1_900_000_000_000 }] },
    ]);
    expect(value(dumpOf(80, (w) => w.valkeyHash2('', [['f', 'v', undefined]]), 'VALKEY'))).toEqual([
      { type: 'hash', rdbType: 22, value: [{ field: 'f', value: 'v' }] },
    ]);
    const payload = parseDumpPayload(dumpOf(11, (w) => w.stringValue('', 'x')));
    expect(payload).toMatchObject({ version: 11, checksumVerified: true });
    expect(plain(payload.parts[0]?.key)).toBe('');
  });

  it('reads Redis 8.6 key metadata before the type', () => {
    const payload = dumpOf(13, (w) =>
      w.keyMeta([{ name: 'META', version: 1, flags: 2, items: [{ kind: 'uint', value: 5n }] }]).stringValue('', 'v'),
    );
    const [part] = parseDumpPayload(payload).parts;
    expect(plain(part)).toMatchObject({
      type: 'string',
      value: 'v',
      meta: [{ name: 'META', version: 1, flags: 2, items: [{ kind: 'uint', value: '5n' }] }],
    });
  });

  it('delivers a large value in parts', () => {
    const list = Array.from({ length: 50 }, (_, i) => `e${i}`);
    const { parts } = parseDumpPayload(
      dumpOf(11, (w) => w.linkedList('', list)),
      { batchSize: 20 },
    );
    expect(parts.map((p) => p.last)).toEqual([false, false, true]);
  });

  it('rejects damaged, short, cut and unknown payloads with typed errors', () => {
    const good = dumpOf(11, (w) => w.stringValue('', 'hello'));
    const damaged = Buffer.from(good);
    damaged[2] = 0x41;
    expect(thrown(() => parseDumpPayload(damaged))).toMatchObject({ code: 'ERR_RDB_CHECKSUM' });
    expect(value(Buffer.concat([damaged.subarray(0, -8), Buffer.alloc(8)]))).toEqual([
      { type: 'string', rdbType: 0, value: 'Aello' },
    ]);
    expect(thrown(() => parseDumpPayload(good.subarray(0, 5)))).toMatchObject({ code: 'ERR_RDB_CORRUPT' });
    const cut = Buffer.concat([good.subarray(0, 3), good.subarray(-10)]);
    expect(thrown(() => parseDumpPayload(cut, { verifyChecksum: false }))).toMatchObject({ code: 'ERR_RDB_TRUNCATED' });
    const extra = Buffer.concat([good.subarray(0, -10), Buffer.from('zz'), good.subarray(-10)]);
    expect(thrown(() => parseDumpPayload(extra, { verifyChecksum: false }))).toMatchObject({ code: 'ERR_RDB_CORRUPT' });
    const future = Buffer.from(good);
    future.writeUInt16LE(14, future.length - 10);
    expect(thrown(() => parseDumpPayload(future))).toMatchObject({ code: 'ERR_RDB_VERSION' });
    const unknown = dumpOf(11, (w) => w.raw(30).string(''));
    const err = thrown(() => parseDumpPayload(unknown)) as RdbError;
    expect(err).toBeInstanceOf(RdbError);
    expect(err).toMatchObject({ code: 'ERR_RDB_UNKNOWN_TYPE', offset: 0, rdbType: 30 });
  });
});
