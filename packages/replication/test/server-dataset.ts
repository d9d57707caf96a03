// A dataset that makes a real server write every type and encoding it knows, and the exact
// content the parser must find for it. The spawn configuration forces the encodings with the
// size thresholds, so small and large keys of one type land in different RDB types.
import type { ServerBinary } from '@redis-events/testkit';
import { versionAtLeast } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';

export interface ExpectedEntry {
  db: number;
  key: string;
  type: string;
  /** The value in `plain()` form (Buffers as latin1 text). */
  value: unknown;
  /** Compare values as sorted lists (hash tables, skiplists: no defined order). */
  unordered?: boolean;
  expireAt?: number;
  /** Exact field expiries of a hash (Unix ms), checked separately. */
  fieldExpiry?: Record<string, number>;
}

export function spawnConfig(binary: ServerBinary): Record<string, string | number> {
  const config: Record<string, string | number> = {
    'hash-max-listpack-entries': 16,
    'hash-max-listpack-value': 64,
    'zset-max-listpack-entries': 16,
    'zset-max-listpack-value': 64,
    'set-max-intset-entries': 32,
    'list-max-listpack-size': 4,
    'list-compress-depth': 1,
    'stream-node-max-entries': 4,
    'maxmemory-policy': 'allkeys-lru',
  };
  if (versionAtLeast(binary.version, '7.2')) config['set-max-listpack-entries'] = 16;
  return config;
}

/** Deterministic bytes that do not compress (so they stay raw in the RDB). */
export function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface Dataset {
  expected: ExpectedEntry[];
  /** RDB type bytes this server must use for this dataset. */
  types: number[];
  functionCode: string;
}

export async function writeDataset(client: Redis, binary: ServerBinary): Promise<Dataset> {
  const v = binary.version;
  const valkey = v.flavor === 'valkey';
  const expected: ExpectedEntry[] = [];
  const add = (e: ExpectedEntry) => expected.push(e);
  const call = (...args: (string | number | Buffer)[]) =>
    client.call(String(args[0]), ...args.slice(1)) as Promise<unknown>;

  await call('SELECT', 0);
  // Strings: raw, the three integer encodings, a 64-bit number kept as text, LZF, binary, empty, big.
  const strings: [string | Buffer, string | Buffer][] = [
    ['str:raw', 'hello world'],
    ['str:int8', '-7'],
    ['str:int16', '12345'],
    ['str:int32', '2000000000'],
    ['str:int64', '12345678901234'],
    ['str:lzf', 'compressible-'.repeat(100)],
    ['str:binary', noise(300, 7)],
    ['str:empty', ''],
    ['str:big-lzf', 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(6000)],
    ['str:big-raw', noise(300_000, 11)],
    [Buffer.from('str:bin-\xe9\xff\x00', 'latin1'), Buffer.from([0, 1, 2, 255])],
  ];
  for (const [k, val] of strings) {
    await call('SET', k, val);
    const key = Buffer.isBuffer(k) ? k.toString('latin1') : k;
    add({ db: 0, key, type: 'string', value: Buffer.isBuffer(val) ? val.toString('latin1') : val });
  }
  await call('SET', 'str:ttl', 'expiring', 'PX', 1_000_000_000);
  const expireAt = Number(await call('PEXPIRETIME', 'str:ttl'));
  add({ db: 0, key: 'str:ttl', type: 'string', value: 'expiring', expireAt });

  // Lists: one small listpack node; many nodes, some compressed (depth 1); a plain node.
  await call('RPUSH', 'list:small', 'a', 'b', 1);
  add({ db: 0, key: 'list:small', type: 'list', value: ['a', 'b', '1'] });
  const bigList = Array.from({ length: 60 }, (_, i) =>
    i % 3 === 0 ? String(i * 1000) : `element-${String(i).padStart(4, '0')}-padding-padding`,
  );
  await call('RPUSH', 'list:nodes', ...bigList);
  add({ db: 0, key: 'list:nodes', type: 'list', value: bigList });
  // Elements above this threshold go to plain (unpacked) quicklist nodes (Redis 7.0+, Valkey).
  await call('DEBUG', 'QUICKLIST-PACKED-THRESHOLD', 100);
  const plainList = ['x', 'P'.repeat(500), 'y'];
  await call('RPUSH', 'list:plain', ...plainList);
  add({ db: 0, key: 'list:plain', type: 'list', value: plainList });

  // Sets: intset (16, 32 and 64-bit), listpack (7.2+), hash table.
  const ints = ['1', '2', '3', '-5', '70000'];
  await call('SADD', 'set:intset', ...ints);
  add({ db: 0, key: 'set:intset', type: 'set', value: ints, unordered: true });
  await call('SADD', 'set:intset64', '1', String(2 ** 40));
  add({ db: 0, key: 'set:intset64', type: 'set', value: ['1', String(2 ** 40)], unordered: true });
  await call('SADD', 'set:small', 'a', 'b', 'c');
  add({ db: 0, key: 'set:small', type: 'set', value: ['a', 'b', 'c'], unordered: true });
  const bigSet = Array.from({ length: 40 }, (_, i) => `member-${i}`);
  await call('SADD', 'set:big', ...bigSet);
  add({ db: 0, key: 'set:big', type: 'set', value: bigSet, unordered: true });

  // Sorted sets: listpack and skiplist, with infinities and fractions.
  const smallZ: [string, number][] = [
    ['a', Number.NEGATIVE_INFINITY],
    ['b', 1.5],
    ['c', 3],
    ['d', 1e-9],
    ['e', Number.POSITIVE_INFINITY],
  ];
  await call('ZADD', 'zset:small', ...smallZ.flatMap(([m, s]) => [String(s).replace('Infinity', 'inf'), m]));
  add({
    db: 0,
    key: 'zset:small',
    type: 'zset',
    value: smallZ.map(([member, score]) => ({ member, score: Number.isFinite(score) ? score : String(score) })),
    unordered: true,
  });
  const bigZ: [string, number][] = Array.from({ length: 40 }, (_, i) => [
    `m${i}`,
    i === 0 ? Number.NEGATIVE_INFINITY : i / 7,
  ]);
  await call('ZADD', 'zset:big', ...bigZ.flatMap(([m, s]) => [Number.isFinite(s) ? String(s) : '-inf', m]));
  add({
    db: 0,
    key: 'zset:big',
    type: 'zset',
    value: bigZ.map(([member, score]) => ({ member, score: Number.isFinite(score) ? score : String(score) })),
    unordered: true,
  });

  // Hashes: listpack, hash table (many fields), hash table (one long value).
  const smallH: [string, string][] = [
    ['f1', 'v1'],
    ['n', '42'],
    ['neg', '-3000000000'],
  ];
  await call('HSET', 'hash:small', ...smallH.flat());
  add({
    db: 0,
    key: 'hash:small',
    type: 'hash',
    value: smallH.map(([field, value]) => ({ field, value })),
    unordered: true,
  });
  const bigH: [string, string][] = Array.from({ length: 40 }, (_, i) => [`field-${i}`, `value-${i}`]);
  await call('HSET', 'hash:big', ...bigH.flat());
  add({
    db: 0,
    key: 'hash:big',
    type: 'hash',
    value: bigH.map(([field, value]) => ({ field, value })),
    unordered: true,
  });
  await call('HSET', 'hash:long', 'f', 'L'.repeat(200));
  add({ db: 0, key: 'hash:long', type: 'hash', value: [{ field: 'f', value: 'L'.repeat(200) }], unordered: true });

  // Hash field expiry: Redis 7.4+ (listpack-ex and metadata types), Valkey 9 (HASH_2).
  const hfe = valkey ? versionAtLeast(v, 'valkey 9') : versionAtLeast(v, '7.4');
  if (hfe) {
    for (const [key, count] of [
      ['hash:hfe-small', 3],
      ['hash:hfe-big', 30],
    ] as const) {
      const fields = Array.from({ length: count }, (_, i) => [`f${i}`, `v${i}`] as [string, string]);
      await call('HSET', key, ...fields.flat());
      await call('HPEXPIRE', key, 1_000_000_000, 'FIELDS', 2, 'f0', 'f1');
      const times = (await call('HPEXPIRETIME', key, 'FIELDS', 2, 'f0', 'f1')) as number[];
      add({
        db: 0,
        key,
        type: 'hash',
        value: fields.map(([field, value]) => ({ field, value })),
        unordered: true,
        fieldExpiry: { f0: Number(times[0]), f1: Number(times[1]) },
      });
    }
  }

  // A stream over several nodes, a deleted entry, entries with other fields, two groups.
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const fields = i % 4 === 3 ? ['other', `o${i}`] : ['a', String(i), 'b', `b${i}`];
    ids.push(String(await call('XADD', 'stream', `${1000 + i}-${i}`, ...fields)));
  }
  await call('XDEL', 'stream', ids[5] as string);
  await call('XGROUP', 'CREATE', 'stream', 'g1', '0');
  await call('XREADGROUP', 'GROUP', 'g1', 'alice', 'COUNT', 3, 'STREAMS', 'stream', '>');
  await call('XREADGROUP', 'GROUP', 'g1', 'bob', 'COUNT', 2, 'STREAMS', 'stream', '>');
  await call('XACK', 'stream', 'g1', ids[1] as string);
  await call('XGROUP', 'CREATE', 'stream', 'g2', '$');
  await call('XGROUP', 'CREATECONSUMER', 'stream', 'g2', 'carol');
  const streamEntries = ids
    .map((id, i) => ({
      id,
      fields:
        i % 4 === 3
          ? [['other', `o${i}`]]
          : [
              ['a', String(i)],
              ['b', `b${i}`],
            ],
    }))
    .filter((_, i) => i !== 5);
  add({ db: 0, key: 'stream', type: 'stream', value: streamEntries });

  // Redis 8.6: idempotent producers in the stream (type 26).
  if (!valkey && versionAtLeast(v, '8.6')) {
    const id = String(await call('XADD', 'stream:idmp', 'IDMP', 'producer-1', 'msg-1', '*', 'f', 'v'));
    await call('XADD', 'stream:idmp', 'IDMP', 'producer-1', 'msg-1', '*', 'f', 'v'); // a duplicate
    add({ db: 0, key: 'stream:idmp', type: 'stream', value: [{ id, fields: [['f', 'v']] }] });
  }

  // Another database.
  await call('SELECT', 2);
  await call('SET', 'db2:key', 'in db 2');
  add({ db: 2, key: 'db2:key', type: 'string', value: 'in db 2' });
  await call('SELECT', 0);

  const functionCode = "#!lua name=testlib\nredis.register_function('testfn', function(keys, args) return 1 end)";
  await call('FUNCTION', 'LOAD', functionCode);

  const types = [0, 2, 4, 5, 11, 16, 17, 18];
  if (versionAtLeast(v, '7.2') || valkey) types.push(20);
  types.push(!valkey && versionAtLeast(v, '8.6') ? 26 : versionAtLeast(v, '7.2') || valkey ? 21 : 19);
  if (hfe) types.push(...(valkey ? [22] : [24, 25]));
  return { expected, types, functionCode };
}

/** A collection in a stable order, for comparing hash tables and sets. */
export function sortedValue(value: unknown): unknown {
  return [...(value as unknown[])].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Parsed entries (see `entries` in event-helpers.ts) hold exactly the dataset: keys, types, values, expiries. */
export function expectDataset(parsed: readonly Record<string, unknown>[], dataset: Dataset): void {
  expect(parsed.map((e) => `${e.db}:${e.key}`).sort()).toEqual(dataset.expected.map((e) => `${e.db}:${e.key}`).sort());
  for (const want of dataset.expected) {
    const got = parsed.find((e) => e.db === want.db && e.key === want.key);
    expect(got, want.key).toBeDefined();
    if (!got) continue;
    expect(got.type, want.key).toBe(want.type);
    expect(got.expireAt, want.key).toBe(want.expireAt);
    if (want.type === 'stream') {
      expect((got.value as { entries: unknown }).entries, want.key).toEqual(want.value);
      continue;
    }
    let value = got.value;
    if (want.fieldExpiry) {
      const expiries = Object.fromEntries(
        (value as { field: string; expireAt?: number }[])
          .filter((f) => f.expireAt !== undefined)
          .map((f) => [f.field, f.expireAt]),
      );
      expect(expiries, want.key).toEqual(want.fieldExpiry);
      value = (value as { field: string; value: string }[]).map(({ field, value: v }) => ({ field, value: v }));
    }
    if (want.unordered) expect(sortedValue(value), want.key).toEqual(sortedValue(want.value));
    else expect(value, want.key).toEqual(want.value);
  }
}
