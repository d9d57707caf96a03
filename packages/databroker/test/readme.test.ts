// The README's examples, run as written (the server address aside).
import { randomUUID } from 'node:crypto';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  bytesCodec,
  DataBroker,
  DataBrokerError,
  type DataRecord,
  type JsonValue,
  type RecordCodec,
} from '../src/index.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

it('quick start', async () => {
  const log: unknown[] = [];
  const redis = new Redis(server.url);
  const broker = new DataBroker(redis); // keys {databroker}:*

  // Write: each record gets a version; a record with deletedAt is a delete.
  const { records } = await broker.put([
    { type: 'session', id: 's1', data: { user: 'ada' } },
    { type: 'session', id: 's2', data: { user: 'grace' } },
  ]);
  log.push(records.map((r) => r.version)); // [1, 2]

  // Read one record.
  log.push((await broker.get('session', 's1'))?.data); // { user: 'ada' }

  // A consumer: the snapshot, then every change after it, as it happens.
  const cache = new Map<string, unknown>();
  const { serverVersion, recordVersion, stream } = await broker.syncLatest('session');
  for await (const record of stream) cache.set(record.id, record.data);
  const changes = broker.sync('session', serverVersion, recordVersion);
  setTimeout(() => broker.put([{ type: 'session', id: 's1', deletedAt: new Date() }]), 100);
  for await (const change of changes) {
    if (change.deletedAt) cache.delete(change.id);
    else cache.set(change.id, change.data);
    log.push([change.id, change.version, change.deletedAt ? 'deleted' : 'written']); // s1 3 deleted
    break; // leaving the loop closes the stream
  }

  await broker.close(); // ends the backend's own connections, not yours
  redis.disconnect();
  expect(log).toEqual([[1, 2], { user: 'ada' }, ['s1', 3, 'deleted']]);
  expect([...cache.keys()]).toEqual(['s2']);
});

it('capacity and leases', async () => {
  const redis = new Redis(server.url);
  const broker = new DataBroker(redis, { name: 'readme-writing' });
  let reports = 0;
  const makeReport = async () => {
    reports++;
  };
  await broker.setOptions('audit', { capacity: 10_000 }); // keeps the 10,000 most recently modified
  const me = randomUUID();
  if (await broker.lease('nightly-report', me, 30_000)) {
    try {
      await makeReport();
    } finally {
      await broker.lease('nightly-report', me, 0);
    }
  }
  expect(reports).toBe(1);
  expect(await broker.lease('nightly-report', randomUUID(), 30_000)).toBe(true); // released
  await broker.close();
  redis.disconnect();
});

it('a consumer that survives flushes and expiry', async () => {
  const redis = new Redis(server.url);
  const broker = new DataBroker(redis, { name: 'readme-follow', expiryMs: 0 });
  const applied: string[] = [];
  let snapshots = 0;
  // As in the README, with a way out for the test.
  async function follow(apply: (r: DataRecord<JsonValue>) => void, until: () => boolean): Promise<void> {
    while (!until()) {
      const { serverVersion, recordVersion, stream } = await broker.syncLatest('route');
      snapshots++;
      for await (const record of stream) apply(record);
      if (until()) return;
      try {
        for await (const change of broker.sync('route', serverVersion, recordVersion)) {
          apply(change);
          if (until()) return;
        }
      } catch (err) {
        const code = err instanceof DataBrokerError ? err.code : undefined;
        if (code !== 'ERR_DATABROKER_INVALID_SERVER_VERSION' && code !== 'ERR_DATABROKER_INVALID_RECORD_VERSION')
          throw err;
      }
    }
  }
  await broker.put([{ type: 'route', id: 'a', data: 1 }]);
  const following = follow(
    (r) => applied.push(`${r.id}${r.deletedAt ? '-' : '+'}`),
    () => applied.includes('c+'),
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  await broker.put([{ type: 'route', id: 'b', data: 2 }]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await broker.clear(); // like a flush: the consumer starts again from a snapshot
  await broker.put([{ type: 'route', id: 'c', data: 3 }]);
  await following;
  expect(snapshots).toBe(2);
  expect(applied.slice(0, 2)).toEqual(['a+', 'b+']);
  expect(applied.at(-1)).toBe('c+');
  await broker.close();
  redis.disconnect();
});

it('filters, codecs and encryption', async () => {
  const redis = new Redis(server.url);
  const broker = new DataBroker(redis, { name: 'readme-filters' });
  await broker.put([
    { type: 'route', id: 'admin', data: { team: 'dev' } },
    { type: 'route', id: 'r1', data: { team: 'ops', $index: { cidr: '10.0.0.0/24' } } },
    { type: 'route', id: 'r2', data: { team: 'dev', $index: { cidr: '10.0.0.0/24' } } },
  ]);
  await broker.setOptions('route', { indexableFields: ['team'] });
  const { stream } = await broker.syncLatest('route', {
    $or: [{ id: 'admin' }, { $and: [{ $index: '10.0.0.7' }, { team: 'ops' }] }],
  });
  const found: string[] = [];
  for await (const record of stream) found.push(record.id);
  expect(found).toEqual(['admin', 'r1']);

  const blobs = new DataBroker<Uint8Array>(redis, { name: 'blobs', codec: bytesCodec });
  const text: RecordCodec<string> = { encode: (s) => Buffer.from(s), decode: (b) => b.toString() };
  const notes = new DataBroker<string>(redis, { name: 'notes', codec: text, index: (s) => ({ length: s.length }) });
  await blobs.put([{ type: 'b', id: '1', data: Buffer.from([1, 2]) }]);
  await notes.setOptions('n', { indexableFields: ['length'] });
  await notes.put([
    { type: 'n', id: 'short', data: 'hi' },
    { type: 'n', id: 'long', data: 'hello' },
  ]);
  const { stream: five } = await notes.syncLatest('n', { length: 5 });
  const notesFound: string[] = [];
  for await (const note of five) notesFound.push(note.id);
  expect(notesFound).toEqual(['long']);
  expect([...((await blobs.get('b', '1'))?.data ?? [])]).toEqual([1, 2]);
  await Promise.all([broker.close(), blobs.close(), notes.close()]);
  redis.disconnect();
});
