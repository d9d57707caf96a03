// The semantics of the issue, rule by rule, on a standalone server (the conformance file runs the
// shared cases on every topology).
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesCodec, DataBroker, DataBrokerError, type DataRecord, type RecordCodec } from '../src/index.ts';
import { broker, collect, eventually, rejection, take, uniqueName } from './helpers.ts';

let server: SpawnedRedis;
let raw: Redis;
beforeAll(async () => {
  server = await spawnRedis();
  raw = server.createClient({ protocol: 2 });
});
afterAll(() => server.stop());

const ids = (records: readonly DataRecord<unknown>[]) => records.map((r) => r.id);
/** The heap in use after a full collection: what is really held, not garbage yet to collect. */
const liveHeap = (() => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    gc();
    return process.memoryUsage().heapUsed;
  };
})();
const latestIds = async (db: DataBroker<unknown>, type: string) =>
  ids(await collect((await db.syncLatest(type)).stream));
const log = async (db: DataBroker<unknown>) => {
  const { serverVersion } = await db.versions();
  return collect(db.sync('', serverVersion, 0, { wait: false }));
};

describe('versions', () => {
  it('gives N records N consecutive, increasing versions in input order', async () => {
    const db = broker(server.createClient());
    const first = await db.put(Array.from({ length: 5 }, (_, i) => ({ type: 't', id: `r${i}`, data: i })));
    const second = await db.put([{ type: 't', id: 'x', data: 'x' }]);
    expect(first.records.map((r) => r.version)).toEqual([1, 2, 3, 4, 5]);
    expect(second.records[0]?.version).toBe(6); // the Go original reused 2 here
    expect((await db.versions()).latestRecordVersion).toBe(6);
    await db.close();
  });

  it('commits concurrent puts of one backend together, each put contiguous and all unique', async () => {
    const db = broker(server.createClient(), { maxBatchRecords: 64 });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, p) =>
        db.put(Array.from({ length: 8 }, (_, i) => ({ type: `t${p % 16}`, id: `${p}-${i}`, data: p }))),
      ),
    );
    const all = results.flatMap((r) => r.records.map((x) => x.version));
    expect(new Set(all).size).toBe(800);
    expect(Math.max(...all)).toBe(800);
    for (const { records } of results) {
      const versions = records.map((r) => r.version);
      expect(versions).toEqual(versions.map((_, i) => (versions[0] as number) + i));
    }
    const changes = await log(db);
    expect(changes.map((r) => r.version)).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
    await db.close();
  });

  it('logs both writes of one id in a batch; the last one decides', async () => {
    const db = broker(server.createClient());
    await db.put([
      { type: 't', id: 'a', data: 1 },
      { type: 't', id: 'a', data: 2 },
      { type: 't', id: 'b', data: 1 },
      { type: 't', id: 'b', deletedAt: new Date() },
      { type: 't', id: 'c', deletedAt: new Date() },
      { type: 't', id: 'c', data: 3 },
    ]);
    expect((await db.get('t', 'a'))?.data).toBe(2);
    expect(await db.get('t', 'b')).toBeUndefined();
    expect((await db.get('t', 'c'))?.data).toBe(3);
    expect((await log(db)).map((r) => [r.id, r.version])).toEqual([
      ['a', 1],
      ['a', 2],
      ['b', 3],
      ['b', 4],
      ['c', 5],
      ['c', 6],
    ]);
    expect((await latestIds(db, 't')).sort()).toEqual(['a', 'c']);
    await db.close();
  });

  it('an empty put returns the server version and uses no version', async () => {
    const db = broker(server.createClient());
    const { serverVersion, records } = await db.put([]);
    expect(records).toEqual([]);
    expect(serverVersion).toBe((await db.versions()).serverVersion);
    expect((await db.versions()).latestRecordVersion).toBe(0);
    await db.close();
  });
});

describe('deletes', () => {
  it('leave get and syncLatest, and show in sync with their time and optional data', async () => {
    const db = broker(server.createClient());
    await db.put([
      { type: 't', id: 'a', data: { v: 1 } },
      { type: 't', id: 'b', data: { v: 2 } },
    ]);
    const when = new Date('2030-01-02T03:04:05.678Z');
    await db.put([
      { type: 't', id: 'a', deletedAt: when },
      { type: 't', id: 'b', deletedAt: when, data: { v: 2, why: 'gone' } },
      { type: 't', id: 'never', deletedAt: when },
    ]);
    expect(await db.get('t', 'a')).toBeUndefined();
    expect(await latestIds(db, 't')).toEqual([]);
    const tombstones = (await log(db)).slice(2);
    expect(tombstones.map((r) => [r.id, r.deletedAt?.toISOString(), r.data])).toEqual([
      ['a', when.toISOString(), undefined],
      ['b', when.toISOString(), { v: 2, why: 'gone' }],
      ['never', when.toISOString(), undefined],
    ]);
    expect(await db.listTypes()).toEqual(['t']);
    await db.close();
  });
});

describe('capacity', () => {
  it('counts live records only (the original counted deleted ones)', async () => {
    const db = broker(server.createClient());
    await db.setOptions('t', { capacity: 3 });
    for (const id of ['a', 'b', 'c']) await db.put([{ type: 't', id, data: id }]);
    await db.put([{ type: 't', id: 'c', deletedAt: new Date() }]);
    await db.put([{ type: 't', id: 'd', data: 'd' }]);
    expect(await latestIds(db, 't')).toEqual(['a', 'b', 'd']);
    await db.close();
  });

  it('evicts exactly the least recently modified, as tombstones that carry the data', async () => {
    const db = broker(server.createClient());
    await db.setOptions('t', { capacity: 3 });
    for (const id of ['a', 'b', 'c']) await db.put([{ type: 't', id, data: `${id}0` }]);
    await db.put([{ type: 't', id: 'a', data: 'a1' }]); // a is now the most recent
    const { records } = await db.put([{ type: 't', id: 'd', data: 'd0' }]);
    expect(await latestIds(db, 't')).toEqual(['a', 'c', 'd']); // snapshots come in id order
    const changes = await log(db);
    const eviction = changes[changes.length - 1];
    expect(eviction).toMatchObject({ id: 'b', data: 'b0', version: (records[0]?.version ?? 0) + 1 });
    expect(eviction?.deletedAt).toBeInstanceOf(Date);
    await db.close();
  });

  it.each([
    ['scripts', 'auto'],
    ['WATCH/MULTI', false],
  ] as const)(
    'set on a type that already holds records, keeps exactly the most recently modified (%s)',
    async (_, scripting) => {
      const db = broker(server.createClient(), { scripting });
      // More records than one step of filling the recency index, written before any capacity.
      for (let c = 0; c < 25; c++) {
        await db.put(Array.from({ length: 100 }, (_, i) => ({ type: 't', id: `r${c * 100 + i}`, data: i })));
      }
      await db.put([{ type: 't', id: 'r0', data: 'rewritten' }]); // the oldest, now among the newest
      const writing = db.put([{ type: 't', id: 'zz', data: 1 }]); // sent before setOptions: the newest
      await db.setOptions('t', { capacity: 3 });
      await writing;
      expect((await latestIds(db, 't')).sort()).toEqual(['r0', 'r2499', 'zz']);
      const changes = await log(db);
      expect(changes.filter((c) => c.deletedAt)).toHaveLength(2500 + 1 - 3);
      await db.close();
    },
  );

  it('applies to a batch larger than the capacity, to 0, and at once when lowered', async () => {
    const db = broker(server.createClient());
    await db.setOptions('t', { capacity: 2 });
    await db.put(Array.from({ length: 5 }, (_, i) => ({ type: 't', id: `r${i}`, data: i })));
    expect(await latestIds(db, 't')).toEqual(['r3', 'r4']);
    await db.setOptions('u', { capacity: 10 });
    await db.put(Array.from({ length: 6 }, (_, i) => ({ type: 'u', id: `r${i}`, data: i })));
    await db.setOptions('u', { capacity: 4 });
    expect(await latestIds(db, 'u')).toEqual(['r2', 'r3', 'r4', 'r5']);
    await db.setOptions('u', { capacity: 0 });
    expect(await latestIds(db, 'u')).toEqual([]);
    expect(await latestIds(db, 't')).toEqual(['r3', 'r4']); // other types untouched
    await db.close();
  });
});

describe('sync', () => {
  it('ends when caught up without wait, and resumes from recordVersion across other types', async () => {
    const db = broker(server.createClient());
    const { serverVersion } = await db.put([
      { type: 'a', id: '1', data: 1 },
      { type: 'b', id: '1', data: 1 },
      { type: 'b', id: '2', data: 2 },
    ]);
    const stream = db.sync('a', serverVersion, 0, { wait: false });
    expect(ids(await collect(stream))).toEqual(['1']);
    expect(stream.recordVersion).toBe(3); // the b changes were read past: no need to read them again
    await db.put([{ type: 'a', id: '2', data: 2 }]);
    const next = db.sync('a', serverVersion, stream.recordVersion, { wait: false });
    expect((await collect(next)).map((r) => [r.id, r.version])).toEqual([['2', 4]]);
    await db.close();
  });

  it('positions recordVersion at the last record delivered, when stopped in the middle of a page', async () => {
    const db = broker(server.createClient());
    const { serverVersion } = await db.put(Array.from({ length: 10 }, (_, i) => ({ type: 't', id: `${i}`, data: i })));
    const stream = db.sync('t', serverVersion, 0);
    await take(stream, 4);
    expect(stream.recordVersion).toBe(4);
    await stream.close();
    expect(ids(await collect(db.sync('t', serverVersion, 4, { wait: false })))).toEqual(['4', '5', '6', '7', '8', '9']);
    await db.close();
  });

  it('reads a long log in pages, and waits from a version still in the future', async () => {
    const db = broker(server.createClient(), { batchSize: 7 });
    const { serverVersion } = await db.put(Array.from({ length: 50 }, (_, i) => ({ type: 't', id: `${i}`, data: i })));
    expect(await collect(db.sync('', serverVersion, 0, { wait: false }))).toHaveLength(50);
    const future = db.sync('', serverVersion, 52);
    const got = take(future, 1);
    await db.put([{ type: 't', id: 'x', data: 1 }]);
    await db.put([{ type: 't', id: 'y', data: 1 }]);
    await db.put([{ type: 't', id: 'z', data: 1 }]);
    expect((await got).map((r) => [r.id, r.version])).toEqual([['z', 53]]);
    await future.close();
    await db.close();
  });

  it('serves next() calls made without waiting for each other in order', async () => {
    const db = broker(server.createClient());
    const { serverVersion } = await db.put(Array.from({ length: 5 }, (_, i) => ({ type: 't', id: `${i}`, data: i })));
    const stream = db.sync('t', serverVersion, 0, { wait: false });
    const results = await Promise.all(Array.from({ length: 7 }, () => stream.next()));
    expect(results.map((r) => (r.done ? 'done' : r.value.id))).toEqual(['0', '1', '2', '3', '4', 'done', 'done']);
    await db.close();
  });

  it('wakes by polling when Pub/Sub is off', async () => {
    const name = uniqueName();
    const reader = new DataBroker(server.createClient(), { name, wakeUp: 'poll', pollIntervalMs: 50, expiryMs: 0 });
    const writer = new DataBroker(server.createClient(), { name, wakeUp: 'poll', expiryMs: 0 });
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const stream = reader.sync('', serverVersion, recordVersion);
    const got = take(stream, 2);
    await writer.put([{ type: 't', id: '1', data: 1 }]);
    await writer.put([{ type: 't', id: '2', data: 2 }]);
    expect(ids(await got)).toEqual(['1', '2']);
    await Promise.all([reader.close(), writer.close()]);
  });

  it('holds no more memory however often a waiting sync wakes up', async () => {
    // A server of its own: its command count is this stream's reads alone.
    await using own = await spawnRedis();
    const db = new DataBroker(own.createClient(), { wakeUp: 'poll', pollIntervalMs: 1, expiryMs: 0 });
    const { serverVersion, recordVersion } = await db.syncLatest();
    const stream = db.sync('', serverVersion, recordVersion);
    const next = stream.next(); // caught up: it reads, waits 1 ms, reads again...
    const admin = own.createClient();
    const reads = async () => Number(/cmdstat_zrangebyscore:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1]);
    const afterReads = async (count: number) => {
      const until = (await reads()) + count;
      await eventually(async () => (await reads()) >= until, 60_000);
    };
    await afterReads(300);
    const before = liveHeap();
    await afterReads(3000);
    const grown = liveHeap() - before;
    await stream.close();
    expect(await next).toEqual({ done: true, value: undefined });
    await db.close();
    // Each wake-up used to leave about 650 bytes behind (2 MiB over these 3000).
    expect(grown).toBeLessThan(1024 * 1024);
  });

  it('still delivers when the Pub/Sub connection is killed (resubscribes, then reads again)', async () => {
    const name = uniqueName();
    const reader = new DataBroker(server.createClient(), { name, pollIntervalMs: 60_000, expiryMs: 0 });
    const writer = new DataBroker(server.createClient(), { name, expiryMs: 0 });
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const stream = reader.sync('', serverVersion, recordVersion);
    const first = take(stream, 1);
    const subscribed = async () =>
      ((await raw.call('PUBSUB', 'NUMSUB', `{${name}}:changed`)) as [string, number])[1] === 1;
    await eventually(subscribed);
    await writer.put([{ type: 't', id: '1', data: 1 }]);
    expect(ids(await first)).toEqual(['1']);
    await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    // Written while the subscriber is away: its message is lost, the resubscription wakes the reader.
    await writer.put([{ type: 't', id: '2', data: 2 }]);
    expect(ids(await take(stream, 1))).toEqual(['2']);
    await Promise.all([reader.close(), writer.close()]);
  });
});

describe('syncLatest', () => {
  it('pages through a type in id order, each record once; updates during the scan are not lost', async () => {
    const db = broker(server.createClient(), { batchSize: 7 });
    await db.put(Array.from({ length: 100 }, (_, i) => ({ type: 't', id: `${i}`.padStart(3, '0'), data: 0 })));
    await db.put([{ type: 'u', id: '000', data: 0 }]); // another type right after: not in t's pages
    const { stream } = await db.syncLatest('t');
    const seen: string[] = [];
    let n = 0;
    for await (const r of stream) {
      seen.push(r.id);
      // Rewrite records not read yet and records already read while scanning.
      if (n++ % 10 === 0) await db.put([{ type: 't', id: `${(n * 7) % 100}`.padStart(3, '0'), data: n }]);
    }
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => `${i}`.padStart(3, '0')));
    const all = await collect((await db.syncLatest()).stream);
    expect(all.map((r) => `${r.type}${r.id}`)).toEqual([...seen.map((id) => `t${id}`), 'u000']);
    await db.close();
  });

  it('looks up pinned ids directly, in chunks, across every type', async () => {
    const db = broker(server.createClient(), { batchSize: 3 });
    await db.put(['x', 'y'].flatMap((type) => Array.from({ length: 10 }, (_, i) => ({ type, id: `${i}`, data: i }))));
    const { stream } = await db.syncLatest('', { id: ['9', '1', '5', '7', 'missing'] });
    expect((await collect(stream)).map((r) => `${r.type}${r.id}`)).toEqual([
      'x1',
      'x5',
      'x7',
      'x9',
      'y1',
      'y5',
      'y7',
      'y9',
    ]);
    await db.close();
  });

  it('with sync from its recordVersion, rebuilds the exact state under concurrent writes', async () => {
    const db = broker(server.createClient(), { batchSize: 5 });
    const truth = new Map<string, unknown>();
    const write = async (i: number) => {
      const id = `${i % 30}`;
      if (i % 7 === 3) {
        await db.put([{ type: 't', id, deletedAt: new Date() }]);
        truth.delete(id);
      } else {
        await db.put([{ type: 't', id, data: i }]);
        truth.set(id, i);
      }
    };
    for (let i = 0; i < 60; i++) await write(i);
    const { serverVersion, recordVersion, stream } = await db.syncLatest('t');
    const state = new Map<string, unknown>();
    const writing = (async () => {
      for (let i = 60; i < 160; i++) await write(i);
    })();
    for await (const r of stream) state.set(r.id, r.data);
    await writing;
    for await (const r of db.sync('t', serverVersion, recordVersion, { wait: false })) {
      if (r.deletedAt) state.delete(r.id);
      else state.set(r.id, r.data);
    }
    expect(new Map([...state].sort())).toEqual(new Map([...truth].sort()));
    await db.close();
  });
});

describe('leases', () => {
  it('renew by the holder extends the time to live; others can neither renew nor release', async () => {
    const db = broker(server.createClient());
    const key = db.keys.leaseKey('job');
    expect(await db.lease('job', 'a', 1000)).toBe(true);
    expect(await db.lease('job', 'a', 60_000)).toBe(true);
    expect(Number(await raw.pttl(key))).toBeGreaterThan(50_000);
    expect(await db.lease('job', 'b', 60_000)).toBe(false);
    expect(await db.lease('job', 'b', 0)).toBe(false);
    expect(await raw.get(key)).toBe('a');
    expect(await db.lease('job', 'a', -1)).toBe(false);
    expect(await raw.exists(key)).toBe(0);
    expect(await db.lease('other', 'x', 0)).toBe(false); // releasing a free lease
    await db.close();
  });

  it('is free again once its time to live passed', async () => {
    const db = broker(server.createClient());
    expect(await db.lease('short', 'a', 30)).toBe(true);
    expect(await db.lease('short', 'b', 30)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await db.lease('short', 'b', 1000)).toBe(true);
    await db.close();
  });

  it('is held by exactly one of many clients racing for it', async () => {
    const name = uniqueName();
    const dbs = Array.from({ length: 20 }, () => new DataBroker(server.createClient(), { name, expiryMs: 0 }));
    for (let round = 0; round < 5; round++) {
      const won = await Promise.all(dbs.map((db, i) => db.lease(`race-${round}`, `c${i}`, 10_000)));
      expect(won.filter(Boolean)).toHaveLength(1);
      const renewed = await Promise.all(dbs.map((db, i) => db.lease(`race-${round}`, `c${i}`, 10_000)));
      expect(renewed).toEqual(won);
    }
    await Promise.all(dbs.map((db) => db.close()));
  });
});

describe('expiry', () => {
  it('removes changes up to and including the cutoff, in the background too', async () => {
    const db = broker(server.createClient(), { expiryMs: 150, cleanupIntervalMs: 50 });
    const { serverVersion } = await db.put([{ type: 't', id: 'a', data: 1 }]);
    await eventually(async () => (await db.versions()).earliestRecordVersion === 1);
    expect((await rejection(collect(db.sync('', serverVersion, 0, { wait: false })))).code).toBe(
      'ERR_DATABROKER_INVALID_RECORD_VERSION',
    );
    expect(await db.get('t', 'a')).toBeDefined();
    await db.close();
  });

  it('fails a reader that falls behind the retained window while it reads', async () => {
    const db = broker(server.createClient(), { batchSize: 2 });
    const { serverVersion } = await db.put(Array.from({ length: 10 }, (_, i) => ({ type: 't', id: `${i}`, data: i })));
    const stream = db.sync('', serverVersion, 0);
    await take(stream, 2);
    await db.removeChangesBefore(new Date(Date.now() + 1000));
    const err = await rejection(take(stream, 8));
    expect(err.code).toBe('ERR_DATABROKER_INVALID_RECORD_VERSION');
    await db.close();
  });
});

describe('encryption', () => {
  const key = randomBytes(32);

  it('stores ciphertext; get, sync and syncLatest (with $index filters) read plaintext', async () => {
    const db = broker(server.createClient(), { encryptionKey: key });
    const data = { secret: 'hunter2', $index: { cidr: '10.0.0.0/8' } };
    const { serverVersion } = await db.put([{ type: 't', id: 'a', data }]);
    const stored = await raw.hgetallBuffer(db.keys.records);
    expect(Object.values(stored).some((v) => v.includes('hunter2'))).toBe(false);
    expect(Object.values(stored).some((v) => v.includes('a'))).toBe(true); // the id stays readable
    expect((await db.get('t', 'a'))?.data).toEqual(data);
    expect((await collect(db.sync('t', serverVersion, 0, { wait: false })))[0]?.data).toEqual(data);
    expect(ids(await collect((await db.syncLatest('t', { $index: '10.1.2.3' })).stream))).toEqual(['a']);
    await db.close();
  });

  it('says so on a wrong key, on missing keys, and on altered bytes; rotates keys', async () => {
    const name = uniqueName();
    const writer = new DataBroker(server.createClient(), { name, encryptionKey: key, expiryMs: 0 });
    await writer.put([{ type: 't', id: 'a', data: 'old secret' }]);
    const other = new DataBroker(server.createClient(), { name, encryptionKey: randomBytes(32), expiryMs: 0 });
    expect((await rejection(other.get('t', 'a'))).code).toBe('ERR_DATABROKER_WRONG_KEY');
    const none = new DataBroker(server.createClient(), { name, expiryMs: 0 });
    expect((await rejection(none.get('t', 'a'))).message).toMatch(/no encryptionKey/);
    const newKey = randomBytes(32);
    const rotating = new DataBroker(server.createClient(), {
      name,
      encryptionKey: newKey,
      decryptionKeys: [key],
      expiryMs: 0,
    });
    expect((await rotating.get('t', 'a'))?.data).toBe('old secret');
    await rotating.put([{ type: 't', id: 'b', data: 'new secret' }]);
    expect((await rejection(writer.get('t', 'b'))).code).toBe('ERR_DATABROKER_WRONG_KEY');

    const field = (await raw.hkeys(writer.keys.records)).find((f) => f.endsWith(':a')) as string;
    const bytes = (await raw.hgetBuffer(writer.keys.records, field)) as Buffer;
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0xff;
    await raw.hset(writer.keys.records, field, bytes);
    const tampered = await rejection(writer.get('t', 'a'));
    expect(tampered.code).toBe('ERR_DATABROKER_TAMPERED');
    expect(tampered.message).toMatch(/t\/a at version 1/);
    await Promise.all([writer.close(), other.close(), none.close(), rotating.close()]);
  });
});

describe('codecs', () => {
  it('stores bytes as given with bytesCodec', async () => {
    const db = broker<Uint8Array>(server.createClient(), { codec: bytesCodec });
    const data = randomBytes(1000);
    await db.put([{ type: 'b', id: '1', data }]);
    expect(Buffer.from((await db.get('b', '1'))?.data ?? []).equals(data)).toBe(true);
    await db.close();
  });

  it('reports codec failures on both sides with ERR_DATABROKER_CODEC', async () => {
    const fussy: RecordCodec<string> = {
      encode: (text) => {
        if (text === 'bad') throw new Error('no bad words');
        return Buffer.from(text);
      },
      decode: (bytes) => {
        if (bytes.toString() === 'unreadable') throw new Error('cannot read');
        return bytes.toString();
      },
    };
    const db = broker<string>(server.createClient(), { codec: fussy });
    expect((await rejection(db.put([{ type: 't', id: '1', data: 'bad' }]))).code).toBe('ERR_DATABROKER_CODEC');
    await db.put([{ type: 't', id: '2', data: 'unreadable' }]);
    const err = await rejection(db.get('t', '2'));
    expect(err.code).toBe('ERR_DATABROKER_CODEC');
    expect(err.message).toMatch(/t\/2 at version 1.*cannot read/);
    expect(
      (await rejection(broker(server.createClient()).put([{ type: 't', id: '1', data: undefined as never }]))).code,
    ).toBe('ERR_DATABROKER_ARGUMENT');
    await db.close();
  });
});

describe('bad input and damaged data', () => {
  it('rejects wrong arguments with ERR_DATABROKER_ARGUMENT, saying what is wrong', async () => {
    const db = broker(server.createClient());
    const cases: [() => unknown, RegExp][] = [
      [() => db.put('x' as never), /array/],
      [() => db.put([null as never]), /records\[0\] must be an object/],
      [() => db.put([{ type: '', id: 'a', data: 1 }]), /records\[0\]\.type must be a non-empty string/],
      [() => db.put([{ type: 't', id: 5 as never, data: 1 }]), /records\[0\]\.id/],
      [() => db.put([{ type: 't', id: 'a' } as never]), /no data/],
      [() => db.put([{ type: 't', id: 'a', deletedAt: new Date(Number.NaN) }]), /deletedAt/],
      [() => db.put([{ type: 't', id: '\ud800', data: 1 }]), /surrogate/],
      [() => db.put([{ type: 't', id: 'x'.repeat(70_000), data: 1 }]), /longer than/],
      [() => db.sync('t', 0, 0), /serverVersion/],
      [() => db.sync('t', 1, -1), /recordVersion/],
      [() => db.sync(5 as never, 1, 0), /type must be a string/],
      [() => db.lease('l', 'a', Number.NaN), /ttlMs/],
      [() => db.setOptions('t', { capacity: -1 }), /capacity/],
      [() => db.setOptions('t', { indexableFields: [''] }), /indexableFields/],
      [() => db.syncLatest('t', { $gt: 1 } as never), /unknown operator/],
      [() => new DataBroker({} as never), /ioredis/],
      [() => new DataBroker(server.createClient(), { name: 'a{b}' }), /hash tag/],
      [() => new DataBroker(server.createClient(), { batchSize: 0 }), /batchSize/],
      [() => new DataBroker(server.createClient(), { encryptionKey: 'short' }), /32 bytes/],
      [() => new DataBroker(server.createClient(), { wakeUp: 'push' as never }), /wakeUp/],
    ];
    for (const [call, message] of cases) {
      let err: unknown;
      try {
        await call();
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).toBeInstanceOf(DataBrokerError);
      expect(
        (err as DataBrokerError).code === 'ERR_DATABROKER_ARGUMENT' ||
          (err as DataBrokerError).code === 'ERR_DATABROKER_FILTER',
      ).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
    await db.close();
  });

  it('reports damaged stored bytes with ERR_DATABROKER_CORRUPT, never a crash', async () => {
    const db = broker(server.createClient());
    const { serverVersion } = await db.put([{ type: 't', id: 'a', data: 1 }]);
    await raw.hset(db.keys.records, '1:t:a', 'garbage');
    expect((await rejection(db.get('t', 'a'))).code).toBe('ERR_DATABROKER_CORRUPT');
    await raw.zadd(db.keys.changes, 2, Buffer.from([1, 0, 0, 0]));
    const strict = broker(server.createClient(), { name: db.keys.name, onCorruptEntry: 'fail' });
    const err = await rejection(collect(strict.sync('', serverVersion, 0, { wait: false })));
    expect(err.code).toBe('ERR_DATABROKER_CORRUPT');
    await strict.close();
    await raw.hset(db.keys.meta, 'last', 'not a number');
    expect((await rejection(db.put([{ type: 't', id: 'b', data: 1 }]))).code).toBe('ERR_DATABROKER_CORRUPT');
    await db.close();
  });

  it('reports a key of the wrong type written by another program, saying what happened', async () => {
    const db = broker(server.createClient());
    await raw.set(db.keys.types, 'not a set');
    const err = await rejection(db.put([{ type: 't', id: 'a', data: 1 }]));
    expect(err.code).toBe('ERR_DATABROKER_REDIS');
    expect(err.message).toMatch(/WRONGTYPE.*another program/);
    await db.close();
  });

  it('works through a client with a keyPrefix', async () => {
    const client = server.createClient({ keyPrefix: 'app:' });
    const db = broker(client);
    const { serverVersion } = await db.put([{ type: 't', id: 'a', data: 1 }]);
    expect(db.keys.records).toBe(`app:{${db.keys.name}}:records`);
    expect(await raw.exists(db.keys.records)).toBe(1);
    const stream = db.sync('', serverVersion, 1);
    const got = take(stream, 1);
    await db.put([{ type: 't', id: 'b', data: 2 }]);
    expect(ids(await got)).toEqual(['b']);
    await db.close();
  });

  it('says so at once when the client it was given is closed', async () => {
    const client = server.createClient();
    const db = broker(client, { timeoutMs: 60_000 }); // a wait would outlast the test's timeout
    await db.put([{ type: 't', id: 'a', data: 1 }]);
    client.disconnect();
    const err = await rejection(db.get('t', 'a'));
    expect(err.code).toBe('ERR_DATABROKER_CONNECTION');
    expect(err.message).toMatch(/client given to DataBroker was closed/);
    await db.close();
  });

  it('fails every operation after close with ERR_DATABROKER_CLOSED', async () => {
    const db = broker(server.createClient());
    await db.close();
    await db.close();
    const calls: (() => Promise<unknown>)[] = [
      () => db.put([]),
      () => db.get('t', 'a'),
      () => db.listTypes(),
      () => db.lease('l', 'a', 1),
      () => db.syncLatest(),
    ];
    for (const call of calls) {
      expect((await rejection(Promise.resolve().then(call))).code).toBe('ERR_DATABROKER_CLOSED');
    }
  });
});
