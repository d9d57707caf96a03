// Faults: a server restart (with and without its data), a flush, connections cut by the testkit
// proxy during a waiting sync and during commits, and a cluster slot moving under load.
import { type RedisCluster, type SpawnedRedis, spawnRedis, startCluster, startProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataBroker, type DataRecord } from '../src/index.ts';
import { broker, collect, rejection, take, uniqueName } from './helpers.ts';

const ids = (records: readonly DataRecord<unknown>[]) => records.map((r) => r.id);

describe('server restart', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ persistence: 'aof' });
  });
  afterAll(() => server.stop());

  it('with its data: a waiting sync carries on, the server version stays, a put during the restart lands', async () => {
    const name = uniqueName();
    const reader = broker(server.createClient(), { name });
    const writer = broker(server.createClient(), { name });
    const before = await writer.put([{ type: 't', id: 'before', data: 1 }]);
    const stream = reader.sync('', before.serverVersion, before.records[0]?.version ?? 0);
    const got = take(stream, 2, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const restarting = server.restart();
    const during = writer.put([{ type: 't', id: 'during', data: 2 }]); // waits for the server
    await restarting;
    const after = await writer.put([{ type: 't', id: 'after', data: 3 }]);
    expect((await during).serverVersion).toBe(before.serverVersion);
    expect(after.serverVersion).toBe(before.serverVersion);
    expect(ids(await got)).toEqual(['during', 'after']);
    await Promise.all([reader.close(), writer.close()]);
  }, 30_000);

  it('without its data: the waiting sync ends with ERR_DATABROKER_INVALID_SERVER_VERSION', async () => {
    const name = uniqueName();
    const reader = broker(server.createClient(), { name });
    const { serverVersion } = await reader.put([{ type: 't', id: 'a', data: 1 }]);
    const stream = reader.sync('', serverVersion, 1);
    const ended = rejection(collect(stream)); // handled now: it fails during the restart
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.restart({ keepData: false });
    const err = await ended;
    expect(err.code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
    expect(err.message).toMatch(/flushed|replaced/);
    const fresh = await reader.syncLatest();
    expect(fresh.serverVersion).not.toBe(serverVersion);
    await reader.close();
  }, 30_000);
});

describe('flush', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('ends waiting syncs with ERR_DATABROKER_INVALID_SERVER_VERSION; versions start again under a new server version', async () => {
    const name = uniqueName();
    const reader = broker(server.createClient(), { name });
    const writer = broker(server.createClient(), { name });
    const { serverVersion } = await writer.put([{ type: 't', id: 'a', data: 1 }]);
    const ended = rejection(collect(reader.sync('', serverVersion, 1)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.flushAll();
    const after = await writer.put([{ type: 't', id: 'b', data: 2 }]); // wakes the reader
    expect((await ended).code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
    expect(after.serverVersion).not.toBe(serverVersion);
    expect(after.records[0]?.version).toBe(1);
    const err = await rejection(collect(reader.sync('', serverVersion, 0, { wait: false })));
    expect(err.code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
    await Promise.all([reader.close(), writer.close()]);
  });

  it('ends a snapshot scan that a flush cuts in two', async () => {
    const db = broker(server.createClient(), { batchSize: 5 });
    await db.put(Array.from({ length: 20 }, (_, i) => ({ type: 't', id: `${i}`, data: i })));
    const { stream } = await db.syncLatest('t');
    await take(stream, 5);
    await server.flushAll();
    await db.put([{ type: 't', id: 'new', data: 1 }]);
    expect((await rejection(collect(stream))).code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
    await db.close();
  });
});

describe('connections cut by the proxy', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('during a waiting sync: it reconnects and delivers every later change once, in order', async () => {
    await using proxy = await startProxy({ target: server });
    const name = uniqueName();
    const client = server.createClient({ port: proxy.port });
    client.on('error', () => {}); // ECONNRESET when cut: it reconnects
    const reader = broker(client, { name, pollIntervalMs: 500 });
    const writer = broker(server.createClient(), { name });
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const stream = reader.sync('', serverVersion, recordVersion);
    const first = take(stream, 1);
    await writer.put([{ type: 't', id: 'before', data: 0 }]);
    expect(ids(await first)).toEqual(['before']);
    const rest = take(stream, 6, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 50)); // waiting again, subscriber connected
    expect(proxy.stats.open).toBeGreaterThanOrEqual(2); // the reads and the subscription
    proxy.cut();
    for (let i = 0; i < 3; i++) await writer.put([{ type: 't', id: `cut1-${i}`, data: i }]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    proxy.cut(); // again, while it reconnects or reads
    for (let i = 0; i < 3; i++) await writer.put([{ type: 't', id: `cut2-${i}`, data: i }]);
    expect(ids(await rest)).toEqual(['cut1-0', 'cut1-1', 'cut1-2', 'cut2-0', 'cut2-1', 'cut2-2']);
    expect(proxy.stats.cut).toBeGreaterThanOrEqual(2);
    await stream.close();
    await Promise.all([reader.close(), writer.close()]);
  }, 30_000);

  it.each([
    ['WATCH/MULTI', false],
    ['Lua', true],
  ])(
    'during %s commits: every put that resolves is in the log exactly once, and none twice',
    async (_, scripting) => {
      await using proxy = await startProxy({ target: server });
      const client = server.createClient({ port: proxy.port });
      client.on('error', () => {}); // ECONNRESET when cut: it reconnects
      const db = broker(client, { timeoutMs: 5_000, scripting });
      const outcomes: { id: string; ok: boolean; code?: string }[] = [];
      for (let i = 0; i < 60; i++) {
        const put = db.put([{ type: 't', id: `p${i}`, data: i }]);
        // Cut at a random point of the round trips: before WATCH, between reads and EXEC, or with
        // EXEC in flight.
        setTimeout(() => proxy.cut(), Math.random() * 2);
        try {
          await put;
          outcomes.push({ id: `p${i}`, ok: true });
        } catch (err) {
          outcomes.push({ id: `p${i}`, ok: false, code: (err as { code?: string }).code as string });
        }
      }
      const failures = outcomes.filter((o) => !o.ok);
      for (const f of failures)
        expect(['ERR_DATABROKER_COMMIT_UNKNOWN', 'ERR_DATABROKER_CONNECTION']).toContain(f.code);
      const { serverVersion } = await db.versions();
      const log = await collect(db.sync('', serverVersion, 0, { wait: false }));
      const count = new Map<string, number>();
      for (const r of log) count.set(r.id, (count.get(r.id) ?? 0) + 1);
      for (const o of outcomes) {
        if (o.ok) expect(count.get(o.id), o.id).toBe(1);
        else expect(count.get(o.id) ?? 0).toBeLessThanOrEqual(1);
      }
      expect([...count.values()].every((n) => n === 1)).toBe(true);
      expect(log.map((r) => r.version)).toEqual(log.map((_, i) => i + 1));
      expect(outcomes.filter((o) => o.ok).length).toBeGreaterThan(30);
      await db.close();
    },
    60_000,
  );
});

describe('cluster slot moving under load', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
  });
  afterAll(() => cluster.stop());

  it('puts keep landing once, and a sync reader sees every change in order', async () => {
    const name = uniqueName();
    const reader = new DataBroker(cluster.createClient(), { name, expiryMs: 0, pollIntervalMs: 200 });
    const writer = new DataBroker(cluster.createClient(), { name, expiryMs: 0 });
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const total = 300;
    const stream = reader.sync('', serverVersion, recordVersion);
    const reading = take(stream, total, 60_000);
    reading.catch(() => {}); // awaited below; a failure must not surface as unhandled first
    const writing = (async () => {
      for (let i = 0; i < total; i++) await writer.put([{ type: 't', id: `${i}`, data: i }]);
    })();
    const slot = await cluster.keySlot(writer.keys.records);
    const owner = await cluster.ownerOf(slot);
    const target = cluster.masters.find((m) => m !== owner) as (typeof cluster.masters)[number];
    await new Promise((resolve) => setTimeout(resolve, 100));
    await cluster.moveSlot(slot, target);
    await writing;
    expect(await cluster.ownerOf(slot)).toBe(target);
    const seen = await reading;
    expect(ids(seen)).toEqual(Array.from({ length: total }, (_, i) => `${i}`));
    expect(seen.map((r) => r.version)).toEqual(seen.map((_, i) => recordVersion + i + 1));
    await Promise.all([reader.close(), writer.close()]);
  }, 90_000);
});
