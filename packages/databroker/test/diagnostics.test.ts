// node:diagnostics_channel: what the README documents under "Diagnostics channels", field by
// field, against a real server.
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CorruptEvent,
  DataBrokerError,
  DIAGNOSTICS_CHANNELS,
  type LeaseTrace,
  type PutTrace,
  type SyncEvent,
} from '../src/index.ts';
import { broker, collect, rejection, take, uniqueName } from './helpers.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function traced<C extends object>(name: string): { events: [string, C][] } {
  const events: [string, C][] = [];
  const handlers = {
    start: (c: unknown) => events.push(['start', { ...(c as C) }]),
    end: (c: unknown) => events.push(['end', { ...(c as C) }]),
    asyncStart: (c: unknown) => events.push(['asyncStart', { ...(c as C) }]),
    asyncEnd: (c: unknown) => events.push(['asyncEnd', { ...(c as C) }]),
    error: (c: unknown) => events.push(['error', { ...(c as C) }]),
  };
  const channel = tracingChannel(name);
  channel.subscribe(handlers);
  cleanups.push(() => channel.unsubscribe(handlers));
  return { events };
}

function listen<M>(name: string): M[] {
  const messages: M[] = [];
  const handler = (message: unknown) => messages.push(message as M);
  subscribe(name, handler);
  cleanups.push(() => unsubscribe(name, handler));
  return messages;
}

describe('redis-events:databroker:put', () => {
  it('traces each put: the records, then the versions, server version and mode it committed with', async () => {
    const { events } = traced<PutTrace>(DIAGNOSTICS_CHANNELS.put);
    const db = broker(server.createClient());
    await db.versions(); // connected: the context names the server
    const { serverVersion, records } = await db.put([
      { type: 't', id: 'a', data: 1 },
      { type: 't', id: 'b', data: 2 },
    ]);
    expect(events.map(([event]) => event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const [, start] = events[0] as [string, PutTrace];
    expect(start).toMatchObject({
      backend: db.keys.name,
      records: 2,
      serverAddress: '127.0.0.1',
      serverPort: server.port,
    });
    expect(start.database).toBe(0);
    const [, done] = events[3] as [string, PutTrace];
    expect(done).toMatchObject({
      serverVersion,
      firstVersion: records[0]?.version,
      lastVersion: records[1]?.version,
      mode: 'script',
    });
    await db.close();
  });

  it('reports a failed put on the error event, with the package error', async () => {
    const { events } = traced<PutTrace>(DIAGNOSTICS_CHANNELS.put);
    const db = broker(server.createClient());
    await rejection(db.put([{ type: '', id: 'a', data: 1 }]));
    const error = events.find(([event]) => event === 'error')?.[1].error;
    expect(error).toBeInstanceOf(DataBrokerError);
    expect((error as DataBrokerError).code).toBe('ERR_DATABROKER_ARGUMENT');
    await db.close();
  });
});

describe('redis-events:databroker:lease', () => {
  it('traces each lease call with what happened', async () => {
    const { events } = traced<LeaseTrace>(DIAGNOSTICS_CHANNELS.lease);
    const db = broker(server.createClient());
    await db.lease('job', 'a', 10_000);
    await db.lease('job', 'b', 10_000);
    await db.lease('job', 'a', 20_000);
    await db.lease('job', 'a', 0);
    await db.lease('job', 'a', 0);
    const results = events
      .filter(([event]) => event === 'asyncEnd')
      .map(([, c]) => [c.id, c.ttlMs, c.outcome, c.result]);
    expect(results).toEqual([
      ['a', 10_000, 'acquired', true],
      ['b', 10_000, 'refused', false],
      ['a', 20_000, 'renewed', true],
      ['a', 0, 'released', false],
      ['a', 0, 'not-held', false],
    ]);
    await db.close();
  });
});

describe('redis-events:databroker:sync', () => {
  it('publishes each batch a stream takes: catching up by reads, then woken by pushes, with the lag', async () => {
    const messages = listen<SyncEvent>(DIAGNOSTICS_CHANNELS.sync);
    const name = uniqueName();
    const writer = broker(server.createClient(), { name });
    const reader = broker(server.createClient(), { name, batchSize: 2, pollIntervalMs: 60_000 });
    const { serverVersion } = await writer.put(
      Array.from({ length: 3 }, (_, i) => ({ type: 't', id: `${i}`, data: i })),
    );
    const stream = reader.sync('t', serverVersion, 0);
    await take(stream, 3);
    const caughtUp = messages.length;
    const next = take(stream, 1);
    await new Promise((resolve) => setTimeout(resolve, 100)); // waiting now
    await writer.put([{ type: 't', id: 'late', data: 4 }]);
    await next;
    await stream.close();
    const reads = messages.slice(0, caughtUp);
    expect(reads.every((m) => m.source === 'read' && m.wake === undefined && m.waitedMs === 0)).toBe(true);
    expect(reads.map((m) => [m.firstVersion, m.lastVersion])).toEqual([
      [1, 2],
      [3, 3],
    ]);
    expect(reads.map((m) => m.caughtUp)).toEqual([false, true]);
    const woken = messages[caughtUp] as SyncEvent;
    expect(woken).toMatchObject({
      backend: name,
      type: 't',
      serverVersion,
      source: 'push',
      wake: 'push',
      count: 1,
      firstVersion: 4,
      lastVersion: 4,
      caughtUp: true,
      serverPort: server.port,
    });
    expect(woken.waitedMs).toBeGreaterThan(50);
    // The lag a metric would record: from the commit (server clock) to the delivery.
    const lag = woken.receivedAt - woken.lastModifiedAt;
    expect(lag).toBeGreaterThanOrEqual(-1000); // clocks of one host: about the time of one hop
    expect(lag).toBeLessThan(60_000);
    await Promise.all([writer.close(), reader.close()]);
  });
});

describe('redis-events:databroker:corrupt', () => {
  it('publishes every damaged entry skipped', async () => {
    const messages = listen<CorruptEvent>(DIAGNOSTICS_CHANNELS.corrupt);
    const db = broker(server.createClient());
    const { serverVersion } = await db.put([{ type: 't', id: 'a', data: 1 }]);
    const raw = server.createClient();
    await raw.zadd(db.keys.changes, 2, 'garbage');
    await raw.hset(db.keys.meta, 'last', 2);
    expect(await collect(db.sync('', serverVersion, 0, { wait: false }))).toHaveLength(1);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ backend: db.keys.name, where: 'sync' });
    expect(messages[0]?.error.code).toBe('ERR_DATABROKER_CORRUPT');
    raw.disconnect();
    await db.close();
  });
});
