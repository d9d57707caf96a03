// The conformance cases of Pomerium's Redis backend tests (pkg/storage/redis/redis_test.go at
// v0.23) and of its shared storage tests (pkg/storage/storagetest), on every topology. Where this
// port deliberately behaves otherwise, the case says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataRecord, JsonValue } from '../src/index.ts';
import { broker, collect, eventually, rejection, take, topologies } from './helpers.ts';

const ids = (records: readonly DataRecord<unknown>[]) => records.map((r) => r.id);
const refs = (records: readonly DataRecord<unknown>[]) => records.map((r) => [r.type, r.id]);

describe.each(topologies())('conformance on $label', (topology) => {
  beforeAll(() => topology.start());
  afterAll(() => topology.stop());

  describe('Go backend (redis_test.go)', () => {
    it('gets a missing record, puts one at version 1, deletes it and lists its type', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        const { serverVersion } = await db.versions();
        expect(await db.get('TYPE', 'abcd')).toBeUndefined();
        const data = { some: 'data' };
        const put = await db.put([{ type: 'TYPE', id: 'abcd', data }]);
        expect(put.serverVersion).toBe(serverVersion);
        const record = await db.get('TYPE', 'abcd');
        expect(record).toMatchObject({ type: 'TYPE', id: 'abcd', version: 1, data });
        expect(record?.deletedAt).toBeUndefined();
        expect(record?.modifiedAt).toBeInstanceOf(Date);
        const deleted = await db.put([{ type: 'TYPE', id: 'abcd', deletedAt: new Date() }]);
        expect(deleted.serverVersion).toBe(serverVersion);
        expect(await db.get('TYPE', 'abcd')).toBeUndefined();
        expect(await db.listTypes()).toEqual(['TYPE']);
      } finally {
        await db.close();
      }
    });

    it('signals a change made by another backend to a waiting sync', async () => {
      const name = `signal-${Date.now()}`;
      const reader = broker(topology.client(), { ...topology.options, name, pollIntervalMs: 60_000 });
      const writer = broker(topology.client(), { ...topology.options, name });
      try {
        const { serverVersion, recordVersion } = await reader.versions().then((v) => ({
          serverVersion: v.serverVersion,
          recordVersion: v.latestRecordVersion,
        }));
        const stream = reader.sync('', serverVersion, recordVersion);
        const first = take(stream, 1);
        await new Promise((resolve) => setTimeout(resolve, 100)); // the reader waits now
        await writer.put([{ type: 'TYPE', id: 'ID', data: null }]);
        // Woken by Pub/Sub: the poll interval is a minute, longer than take() waits.
        expect(ids(await first)).toEqual(['ID']);
        await stream.close();
      } finally {
        await Promise.all([reader.close(), writer.close()]);
      }
    });

    it('expires changes: a sync from before what remains fails instead of missing changes', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        const { serverVersion } = await db.versions();
        for (let i = 0; i < 1000; i++) await db.put([{ type: 'TYPE', id: String(i), data: i }]);
        const all = await collect(db.sync('TYPE', serverVersion, 0, { wait: false }));
        expect(all).toHaveLength(1000);
        expect(await db.removeChangesBefore(new Date(Date.now() + 1000))).toBe(1000);
        // The Go backend returned no records here; this port says the log no longer reaches back.
        const err = await rejection(collect(db.sync('TYPE', serverVersion, 0, { wait: false })));
        expect(err.code).toBe('ERR_DATABROKER_INVALID_RECORD_VERSION');
        expect(await collect(db.sync('TYPE', serverVersion, 1000, { wait: false }))).toEqual([]);
        expect((await db.versions()).earliestRecordVersion).toBe(1000);
        expect((await db.get('TYPE', '999'))?.data).toBe(999); // live records stay
      } finally {
        await db.close();
      }
    });

    it('keeps the most recent records of a type with a capacity', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        await db.setOptions('EXAMPLE', { capacity: 3 });
        for (let i = 0; i < 10; i++) await db.put([{ type: 'EXAMPLE', id: String(i), data: {} }]);
        const { stream } = await db.syncLatest('EXAMPLE');
        expect(ids(await collect(stream))).toEqual(['7', '8', '9']);
      } finally {
        await db.close();
      }
    });

    it('leases: acquire, refuse another id, release, acquire by the other', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        expect(await db.lease('test', 'a', 30_000)).toBe(true);
        expect(await db.lease('test', 'b', 30_000)).toBe(false);
        expect(await db.lease('test', 'a', 0)).toBe(false);
        expect(await db.lease('test', 'b', 30_000)).toBe(true);
      } finally {
        await db.close();
      }
    });
  });

  describe('shared storage tests (storagetest)', () => {
    it('puts, deletes a record that never existed, and syncs the delete', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        const put = await db.put([
          { type: 'test-1', id: 'r1', data: { k1: 'v1' } },
          { type: 'test-1', id: 'r2', data: { k2: 'v2' } },
        ]);
        expect(put.serverVersion).not.toBe(0);
        const deleted = await db.put([{ type: 'test-1', id: 'r3', deletedAt: new Date() }]);
        const records = await collect(db.sync('test-1', deleted.serverVersion, 0, { wait: false }));
        expect(records.map((r) => [r.id, r.version, r.deletedAt !== undefined])).toEqual([
          ['r1', 1, false],
          ['r2', 2, false],
          ['r3', 3, true],
        ]);
      } finally {
        await db.close();
      }
    });

    it('capacity, lease, latest, changed, list types', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        await db.setOptions('capacity-test', { capacity: 3 });
        for (let i = 0; i < 10; i++) await db.put([{ type: 'capacity-test', id: String(i), data: {} }]);
        expect(ids(await collect((await db.syncLatest('capacity-test')).stream))).toEqual(['7', '8', '9']);

        expect(await db.lease('lease-test', 'client-1', 1000)).toBe(true);
        expect(await db.lease('lease-test', 'client-2', 1000)).toBe(false);

        for (let i = 0; i < 100; i++) await db.put([{ type: 'latest-test', id: String(i), data: {} }]);
        const count = new Map<string, number>();
        for await (const r of (await db.syncLatest('latest-test')).stream) count.set(r.id, (count.get(r.id) ?? 0) + 1);
        for (let i = 0; i < 100; i++) expect(count.get(String(i))).toBe(1);

        const latest = await db.syncLatest('sync-test');
        await collect(latest.stream);
        const stream = db.sync('', latest.serverVersion, latest.recordVersion);
        const received = take(stream, 10);
        for (let i = 0; i < 10; i++) {
          await db.put([{ type: 'sync-test', id: String(i), data: {} }]);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const changes = await received;
        expect(ids(changes)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
        expect(changes.every((r) => r.type === 'sync-test')).toBe(true);
        await stream.close();

        expect(await db.listTypes()).toEqual(['capacity-test', 'latest-test', 'sync-test']);
      } finally {
        await db.close();
      }
    });

    it('gets every record of one put', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        const data = { any: ['thing', 1] };
        const { serverVersion } = await db.put(['a', 'b', 'c'].map((id) => ({ type: 'TYPE', id, data })));
        expect(serverVersion).toBeGreaterThan(0);
        for (const id of ['a', 'b', 'c']) {
          expect(await db.get('TYPE', id)).toMatchObject({ type: 'TYPE', id, data });
        }
      } finally {
        await db.close();
      }
    });

    it('serves gets, puts and listTypes concurrently', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        await Promise.all([
          (async () => {
            for (let i = 0; i < 300; i++) await db.get('t', String(i));
          })(),
          (async () => {
            for (let i = 0; i < 300; i++) await db.put([{ type: 't', id: String(i), data: i }]);
          })(),
          ...Array.from({ length: 10 }, (_, i) =>
            db.put([{ type: `Type-${String(i).padStart(2, '0')}`, id: '1', data: 1 }]),
          ),
          ...Array.from({ length: 10 }, () => db.listTypes()),
        ]);
        expect(await db.listTypes()).toHaveLength(11);
        const versions = await db.versions();
        expect(versions.serverVersion).toBeGreaterThan(0);
        expect(versions.latestRecordVersion).toBe(310);
      } finally {
        await db.close();
      }
    });

    it('options: unset, set, replaced, removed by empty options', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        const type = 'not-a-real-type';
        expect(await db.getOptions(type)).toBeUndefined();
        for (const options of [
          { capacity: 1 },
          { capacity: 2 },
          { capacity: 2, indexableFields: ['foo'] },
          { capacity: 2, indexableFields: ['foo', 'bar'] },
          { indexableFields: ['foo', 'bar'] },
          { indexableFields: ['bar'] },
          { capacity: 100 },
        ]) {
          await db.setOptions(type, options);
          expect(await db.getOptions(type)).toEqual(options);
        }
        await db.setOptions(type, {});
        expect(await db.getOptions(type)).toBeUndefined();
      } finally {
        await db.close();
      }
    });

    it('closes every connection of its own, also after many first calls at once', async () => {
      const name = `own-${Date.now()}`;
      const client = topology.client(name);
      await client.get('warm-up');
      const before = await topology.connectionsNamed(name); // the client's own
      const db = broker(client, topology.options);
      await Promise.all(Array.from({ length: 20 }, (_, i) => db.get('t', String(i))));
      await Promise.all(Array.from({ length: 5 }, (_, i) => db.put([{ type: 't', id: String(i), data: i }])));
      await db.close();
      await eventually(async () => (await topology.connectionsNamed(name)) === before);
      client.disconnect();
    });

    it('ends a waiting sync when the stream or the backend closes', async () => {
      const db = broker(topology.client(), topology.options);
      const { serverVersion, recordVersion } = await db.syncLatest();
      const byStream = db.sync('', serverVersion, recordVersion);
      const pending = byStream.next();
      await byStream.close();
      expect(await pending).toEqual({ done: true, value: undefined });

      const byBackend = db.sync('', serverVersion, recordVersion);
      const waiting = rejection(collect(byBackend)); // handled now: it may fail while we close
      await new Promise((resolve) => setTimeout(resolve, 50));
      await db.close();
      expect((await waiting).code).toBe('ERR_DATABROKER_CLOSED');
      expect(() => db.sync('', serverVersion, recordVersion)).toThrow(/closed/);
    });

    it('filters (TestFilter): by type, id, $index and combinations', async () => {
      const db = broker<JsonValue>(topology.client(), topology.options);
      try {
        const withCidr = { $index: { cidr: '192.168.0.0/16' } };
        await db.put([
          { type: 'filter-test-1', id: 'id-1', data: withCidr },
          { type: 'filter-test-1', id: 'id-2', data: 'id-2' },
          { type: 'filter-test-1', id: 'id-3', data: 'id-3' },
          { type: 'filter-test-1', id: 'id-4', data: withCidr },
          { type: 'filter-test-2', id: 'id-1', data: withCidr },
          { type: 'filter-test-2', id: 'id-2', data: 'id-2' },
          { type: 'filter-test-2', id: 'id-3', data: 'id-3' },
          { type: 'filter-test-3', id: 'id-1', data: withCidr },
          { type: 'filter-test-3', id: 'id-2', data: 'id-2' },
          { type: 'filter-test-3', id: 'id-3', data: 'id-3' },
        ]);
        const latest = async (type: string, filter?: Parameters<typeof db.syncLatest>[1]) =>
          refs(await collect((await db.syncLatest(type, filter)).stream));
        expect(await latest('')).toEqual([
          ['filter-test-1', 'id-1'],
          ['filter-test-1', 'id-2'],
          ['filter-test-1', 'id-3'],
          ['filter-test-1', 'id-4'],
          ['filter-test-2', 'id-1'],
          ['filter-test-2', 'id-2'],
          ['filter-test-2', 'id-3'],
          ['filter-test-3', 'id-1'],
          ['filter-test-3', 'id-2'],
          ['filter-test-3', 'id-3'],
        ]);
        expect(await latest('filter-test-2')).toEqual([
          ['filter-test-2', 'id-1'],
          ['filter-test-2', 'id-2'],
          ['filter-test-2', 'id-3'],
        ]);
        expect(await latest('', { id: 'id-1' })).toEqual([
          ['filter-test-1', 'id-1'],
          ['filter-test-2', 'id-1'],
          ['filter-test-3', 'id-1'],
        ]);
        expect(await latest('filter-test-2', { id: 'id-1' })).toEqual([['filter-test-2', 'id-1']]);
        expect(await latest('', { $index: '192.168.0.1' })).toEqual([
          ['filter-test-1', 'id-1'],
          ['filter-test-1', 'id-4'],
          ['filter-test-2', 'id-1'],
          ['filter-test-3', 'id-1'],
        ]);
        expect(await latest('filter-test-2', { $index: '192.168.0.1' })).toEqual([['filter-test-2', 'id-1']]);
        expect(
          await latest('filter-test-1', {
            $and: [{ $or: [{ id: 'id-1' }, { id: 'id-2' }, { id: 'id-4' }] }, { $index: '192.168.0.1' }],
          }),
        ).toEqual([
          ['filter-test-1', 'id-1'],
          ['filter-test-1', 'id-4'],
        ]);
        expect(await latest('', { type: 'filter-test-3', id: ['id-2', 'id-3'] })).toEqual([
          ['filter-test-3', 'id-2'],
          ['filter-test-3', 'id-3'],
        ]);
      } finally {
        await db.close();
      }
    });

    it('filters on indexable fields, following updates, deletes and option changes (TestIndexing)', async () => {
      const db = broker<JsonValue>(topology.client(), topology.options);
      try {
        const type = 'testproto.Test';
        const latest = async (filter: Parameters<typeof db.syncLatest>[1]) =>
          ids(await collect((await db.syncLatest(type, filter)).stream)).sort();
        await db.setOptions(type, { indexableFields: ['string_field'] });
        await db.put([
          { type, id: 't1', data: { string_field: 'same', proto_field: { another_string_field: 'ss1' } } },
        ]);
        expect(await latest({ string_field: 'same' })).toEqual(['t1']);
        await db.put([{ type, id: 't1', data: { string_field: 'diff' } }]);
        expect(await latest({ string_field: 'same' })).toEqual([]);
        expect(await latest({ string_field: 'diff' })).toEqual(['t1']);
        await db.put([{ type, id: 't1', deletedAt: new Date() }]);
        expect(await latest({ string_field: 'diff' })).toEqual([]);
        await db.put([{ type, id: 't2', data: { string_field: 'same' } }]);
        expect(await latest({ string_field: 'same' })).toEqual(['t2']);

        await db.put([
          { type, id: 't3', data: { string_field: 's1', proto_field: { another_string_field: 'ss1' } } },
          { type, id: 't4', data: { string_field: 's2', proto_field: { another_string_field: 'ss1' } } },
          { type, id: 't5', data: { string_field: 's1', proto_field: { another_string_field: 'ss2' } } },
        ]);
        // A field that is not indexable is refused, naming the fields that are (it used to match
        // nothing, silently).
        for (const filter of [{ 'proto_field.another_string_field': 'ss1' }, { version: '' }]) {
          const err = await rejection(latest(filter));
          expect(err.code).toBe('ERR_DATABROKER_ARGUMENT');
          expect(err.message).toMatch(/not an indexable field.*id, type, \$index, string_field/);
        }
        await db.setOptions(type, { indexableFields: ['string_field', 'proto_field.another_string_field'] });
        expect(await latest({ string_field: 's1' })).toEqual(['t3', 't5']);
        expect(await latest({ proto_field: { another_string_field: 'ss1' } })).toEqual(['t3', 't4']);
        await db.setOptions(type, { indexableFields: ['proto_field.another_string_field'] });
        expect((await rejection(latest({ string_field: 's1' }))).message).toMatch(/"string_field"/); // no longer indexable
        expect(await latest({ 'proto_field.another_string_field': 'ss2' })).toEqual(['t5']);
      } finally {
        await db.close();
      }
    });

    it('refuses to sync from changes that were cleaned away (TestSyncOldRecords)', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        const empty = await db.syncLatest();
        expect(empty.serverVersion).toBeGreaterThan(0);
        expect(await collect(empty.stream)).toEqual([]);
        expect(await collect(db.sync('', empty.serverVersion, empty.recordVersion, { wait: false }))).toEqual([]);
        const [r1] = (await db.put([{ type: 'example', id: 'r1', data: 'r1' }])).records;
        await new Promise((resolve) => setTimeout(resolve, 5));
        await db.put([{ type: 'example', id: 'r2', data: 'r2' }]);
        await new Promise((resolve) => setTimeout(resolve, 5));
        const tm3 = new Date();
        const [r3] = (await db.put([{ type: 'example', id: 'r3', data: 'r3' }])).records;
        const after = await db.syncLatest();
        expect(after.recordVersion).toBe(r3?.version);
        expect(await collect(after.stream)).toHaveLength(3);
        const since = (v: number) => collect(db.sync('', empty.serverVersion, v, { wait: false }));
        expect(ids(await since(r1?.version ?? 0))).toEqual(['r2', 'r3']);
        // The server clock decides modification times; give the cutoff the same clock's margin.
        await db.removeChangesBefore(new Date(tm3.getTime() - 1));
        expect((await rejection(since(r1?.version ?? 0))).code).toBe('ERR_DATABROKER_INVALID_RECORD_VERSION');
      } finally {
        await db.close();
      }
    });

    it('clears: new server version, aborted syncs, no records, leases kept (TestClear)', async () => {
      const db = broker(topology.client(), topology.options);
      try {
        expect(await db.lease('example', 'example-1', 60_000)).toBe(true);
        await db.setOptions('session', { capacity: 3 });
        await db.put(['s1', 's2', 's3', 's4', 's5'].map((id) => ({ type: 'session', id, data: { id } })));
        const before = await db.versions();
        const stream = db.sync('', before.serverVersion, 1);
        const drained = rejection(collect(stream)); // handled now: it fails while clear() runs
        await db.clear();
        expect((await drained).code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
        const after = await db.versions();
        expect(after.serverVersion).not.toBe(before.serverVersion);
        expect(await collect((await db.syncLatest()).stream)).toEqual([]);
        expect(await db.getOptions('session')).toBeUndefined();
        expect(await db.lease('example', 'example-2', 60_000)).toBe(false);
      } finally {
        await db.close();
      }
    });
  });
});
