// Portable DUMP payloads: what encodeDumpPayload builds reads back through parseDumpPayload as
// the same value (property), and a real server RESTOREs it as that value, whatever its version;
// compact encodings kept as stored (the parser's keepEncoded) RESTORE as they were.

import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeDumpPayload,
  encodeStoredPayload,
  PORTABLE_DUMP_VERSION,
  parseDumpPayload,
  parseRdbFile,
  type RdbEntryEvent,
} from '../src/index.ts';
import { storedEncodingsFor } from '../src/sink/dump-encoder.ts';
import { plain } from './event-helpers.ts';

const bytes = fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a));

function entry(type: RdbEntryEvent['type'], value: unknown): RdbEntryEvent {
  return {
    kind: 'entry',
    db: 0,
    key: Buffer.alloc(0),
    rdbType: 0,
    rdbTypeName: '',
    part: 0,
    last: true,
    offset: 0,
    type,
    value,
  } as RdbEntryEvent;
}

const entries = fc.oneof(
  bytes.map((v) => entry('string', v)),
  fc.array(bytes, { minLength: 1, maxLength: 30 }).map((v) => entry('list', v)),
  fc
    .uniqueArray(bytes, { minLength: 1, maxLength: 30, selector: (b) => b.toString('hex') })
    .map((v) => entry('set', v)),
  fc
    .uniqueArray(fc.tuple(bytes, bytes), { minLength: 1, maxLength: 30, selector: ([f]) => f.toString('hex') })
    .map((v) =>
      entry(
        'hash',
        v.map(([field, value]) => ({ field, value })),
      ),
    ),
  fc
    .uniqueArray(fc.tuple(bytes, fc.double({ noNaN: true })), {
      minLength: 1,
      maxLength: 30,
      selector: ([m]) => m.toString('hex'),
    })
    .map((v) =>
      entry(
        'zset',
        v.map(([member, score]) => ({ member, score })),
      ),
    ),
);

/** The value of a parsed part, order-free for sets and hashes (compact encodings keep their own order). */
function comparable(e: RdbEntryEvent): unknown {
  const v = plain(e.value);
  if (e.type === 'set') return (v as string[]).slice().sort();
  if (e.type === 'hash') return (v as { field: string }[]).slice().sort((a, b) => (a.field < b.field ? -1 : 1));
  if (e.type === 'zset') return (v as { member: string }[]).slice().sort((a, b) => (a.member < b.member ? -1 : 1));
  return v;
}

describe('encodeDumpPayload', () => {
  it('reads back through parseDumpPayload as the same value, checksum verified (property)', () => {
    fc.assert(
      fc.property(entries, (e) => {
        const payload = encodeDumpPayload(e);
        expect(payload.readUInt16LE(payload.length - 10)).toBe(PORTABLE_DUMP_VERSION);
        const parsed = parseDumpPayload(payload);
        expect(parsed.checksumVerified).toBe(true);
        expect(parsed.parts).toHaveLength(1);
        const part = parsed.parts[0] as RdbEntryEvent;
        expect(part.type).toBe(e.type);
        expect(comparable(part)).toEqual(comparable(e));
      }),
      { numRuns: 400 },
    );
  });

  it('keeps module values item for item', () => {
    const module = { id: 0x1234567890abcn, name: 'mymodule1', version: 3 };
    const e = {
      ...entry('module', [
        { kind: 'sint', value: -5n },
        { kind: 'uint', value: 2n ** 63n },
        { kind: 'float', value: 1.5 },
        { kind: 'double', value: -0.25 },
        { kind: 'string', value: Buffer.from('hello') },
      ]),
      module,
    } as RdbEntryEvent;
    const part = parseDumpPayload(encodeDumpPayload(e)).parts[0] as RdbEntryEvent & { type: 'module' };
    expect(part.type).toBe('module');
    expect(plain(part.value)).toEqual(plain(e.value));
  });

  it('refuses streams, which have no portable payload', () => {
    expect(() => encodeDumpPayload(entry('stream', { entries: [] }))).toThrow(/streams have no plain DUMP encoding/);
  });
});

describe('encodeDumpPayload on a real server', () => {
  let server: SpawnedRedis;
  let client: Redis;
  beforeAll(async () => {
    server = await spawnRedis();
    client = server.createClient();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('RESTOREs every type with its content, whatever the server version', async () => {
    const big = Buffer.alloc(300_000, 7);
    const cases: [string, RdbEntryEvent][] = [
      ['s', entry('string', Buffer.from('hello'))],
      ['s-int', entry('string', Buffer.from('12345'))],
      ['s-big', entry('string', big)],
      [
        'l',
        entry(
          'list',
          ['a', 'b', 'c', 'a'].map((x) => Buffer.from(x)),
        ),
      ],
      [
        'set',
        entry(
          'set',
          ['x', '1', '2'].map((x) => Buffer.from(x)),
        ),
      ],
      [
        'h',
        entry('hash', [
          { field: Buffer.from('f'), value: Buffer.from('v') },
          { field: Buffer.from('n'), value: Buffer.from('1') },
        ]),
      ],
      [
        'z',
        entry('zset', [
          { member: Buffer.from('a'), score: 1.5 },
          { member: Buffer.from('b'), score: Number.NEGATIVE_INFINITY },
          { member: Buffer.from('c'), score: 0.1 + 0.2 },
        ]),
      ],
      [
        'many',
        entry(
          'hash',
          Array.from({ length: 2000 }, (_, i) => ({ field: Buffer.from(`f${i}`), value: Buffer.from(`v${i}`) })),
        ),
      ],
    ];
    for (const [key, e] of cases) await client.restore(key, 0, encodeDumpPayload(e));
    expect(await client.get('s')).toBe('hello');
    expect(await client.object('ENCODING', 's-int')).toBe('int');
    expect(await client.getBuffer('s-big')).toEqual(big);
    expect(await client.lrange('l', 0, -1)).toEqual(['a', 'b', 'c', 'a']);
    expect((await client.smembers('set')).sort()).toEqual(['1', '2', 'x']);
    expect(await client.hgetall('h')).toEqual({ f: 'v', n: '1' });
    // RESP2 replies flat, RESP3 in pairs.
    expect(((await client.call('ZRANGE', 'z', '0', '-1', 'WITHSCORES')) as unknown[]).flat()).toEqual([
      'b',
      '-inf',
      'c',
      String(0.1 + 0.2),
      'a',
      '1.5',
    ]);
    expect(await client.hlen('many')).toBe(2000);
    // The server re-encodes small collections compactly, as it does for its own writes.
    expect(await client.object('ENCODING', 'h')).toMatch(/listpack|ziplist/);
    expect(await client.object('ENCODING', 'many')).toBe('hashtable');
  });

  it('passes compact encodings through as stored (keepEncoded): RESTORE loads them as they were', async () => {
    await client.flushall();
    await client.hset('c:hash', 'f', 'v', 'n', '1');
    await client.zadd('c:zset', 1, 'a', 2.5, 'b');
    await client.sadd('c:intset', 1, 2, 3);
    await client.sadd('c:set', 'x', 'y');
    await client.call('SAVE');
    const [, dir] = (await client.config('GET', 'dir')) as [string, string];
    const info = await server.info('server');
    const [major = 0, minor = 0] = (info.valkey_version ?? info.redis_version ?? '0.0').split('.').map(Number);
    const keep = storedEncodingsFor({ flavor: info.valkey_version ? 'valkey' : 'redis', major, minor });
    const stored: RdbEntryEvent[] = [];
    for await (const event of parseRdbFile(join(dir, 'dump.rdb'), { keepEncoded: keep }))
      if (event.kind === 'entry') stored.push(event);
    expect(stored.filter((e) => e.encoded !== undefined).length).toBeGreaterThanOrEqual(3);
    for (const e of stored) {
      if (e.encoded === undefined) continue;
      expect(e.value).toEqual([]);
      await client.restore(`copy:${e.key}`, 0, encodeStoredPayload(e.rdbType, e.encoded));
    }
    expect(await client.hgetall('copy:c:hash')).toEqual({ f: 'v', n: '1' });
    expect(((await client.call('ZRANGE', 'copy:c:zset', '0', '-1', 'WITHSCORES')) as unknown[]).flat()).toEqual([
      'a',
      '1',
      'b',
      '2.5',
    ]);
    expect((await client.smembers('copy:c:intset')).sort()).toEqual(['1', '2', '3']);
    expect(await client.object('ENCODING', 'copy:c:intset')).toBe('intset');
  });
});
