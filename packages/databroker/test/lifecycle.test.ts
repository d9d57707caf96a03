// The lifecycle contract (root README, "One lifecycle"), for this package: a bounded connect that
// names the address and the cause, `{ signal }` on every call that waits, `close()` with a bound
// that reports what it abandoned, errors wrapped once, and a logger for what happens in the
// background.

import { RedisEventsError } from '@redis-events/resp';
import { freePort, type SpawnedRedis, spawnRedis, startProxy } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataBroker, DataBrokerError } from '../src/index.ts';
import { broker, collect, rejection, take, uniqueName } from './helpers.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

/** Milliseconds a promise takes to settle (for the report; tests assert outcomes, not durations). */
async function timed<T>(promise: Promise<T>): Promise<{ ms: number; value?: T; error?: Error & { code?: string } }> {
  const start = performance.now();
  try {
    const value = await promise;
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error: error as Error & { code?: string } };
  }
}

function abortedBy(controller: AbortController, afterMs: number): void {
  setTimeout(() => controller.abort(new Error('the caller gave up')), afterMs);
}

describe('connect', () => {
  it('with nothing listening: fails within timeoutMs, naming the address and the cause', async () => {
    const port = await freePort();
    const client = new Redis({ port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    const db = new DataBroker(client, { name: uniqueName(), expiryMs: 0, timeoutMs: 500 });
    const { error } = await timed(db.put([{ type: 't', id: 'a', data: 1 }]));
    expect(error?.code).toBe('ERR_DATABROKER_CONNECTION');
    expect(error?.message).toContain(`127.0.0.1:${port}`);
    expect(error?.message).toMatch(/ECONNREFUSED/);
    expect(error).toBeInstanceOf(RedisEventsError);
    await db.close();
    client.disconnect();
  });

  it('with a wrong password: fails at once (retrying cannot fix it), saying so', async () => {
    const user = await server.createUser({ username: 'lifecycle', password: 'right', rules: ['~*', '+@all'] });
    const client = new Redis({ ...user.connection, password: 'wrong', lazyConnect: true });
    client.on('error', () => {});
    const db = new DataBroker(client, { name: uniqueName(), expiryMs: 0, timeoutMs: 60_000 });
    const { error } = await timed(db.get('t', 'a'));
    expect(error?.code).toBe('ERR_DATABROKER_CONNECTION');
    expect(error?.message).toMatch(/WRONGPASS|wrong user name or password/);
    await db.close();
    client.disconnect();
  });

  it('with a server that stops answering: a put fails within the bound, its outcome unknown', async () => {
    await using proxy = await startProxy({ target: server });
    const db = broker(server.createClient({ port: proxy.port }), { timeoutMs: 400 });
    await db.put([{ type: 't', id: 'a', data: 1 }]);
    proxy.pause();
    const { error } = await timed(db.put([{ type: 't', id: 'b', data: 2 }]));
    expect(['ERR_DATABROKER_COMMIT_UNKNOWN', 'ERR_DATABROKER_CONNECTION']).toContain(error?.code);
    proxy.resume();
    await db.close();
  });
});

describe('signal', () => {
  it('a put that waits for Redis stops when its caller gives up, and is never written', async () => {
    await using proxy = await startProxy({ target: server });
    const name = uniqueName();
    const db = broker(server.createClient({ port: proxy.port }), { name, timeoutMs: 10_000 });
    await db.versions(); // connected
    proxy.refuse();
    proxy.cut(); // every connection gone, new ones refused: the put waits for one
    const controller = new AbortController();
    abortedBy(controller, 100);
    const { error } = await timed(db.put([{ type: 't', id: 'late', data: 1 }], { signal: controller.signal }));
    expect(error?.name).toBe('AbortError');
    expect(error?.code).toBe('ERR_DATABROKER_ABORTED');
    expect(error).toBeInstanceOf(DataBrokerError);
    expect(error?.cause).toEqual(new Error('the caller gave up'));
    proxy.refuse(false);
    const direct = broker(server.createClient(), { name });
    expect(await direct.get('t', 'late')).toBeUndefined();
    await Promise.all([db.close(), direct.close()]);
  });

  it('rejects at once when the signal has fired already, for every call', async () => {
    const db = broker(server.createClient());
    const signal = AbortSignal.abort(new Error('no'));
    const calls: (() => Promise<unknown>)[] = [
      () => db.put([{ type: 't', id: 'a', data: 1 }], { signal }),
      () => db.get('t', 'a', { signal }),
      () => db.lease('l', 'me', 1000, { signal }),
      () => db.versions({ signal }),
      () => db.listTypes({ signal }),
      () => db.syncLatest('', undefined, { signal }),
      () => db.setOptions('t', { capacity: 3 }, { signal }),
      () => db.getOptions('t', { signal }),
      () => db.removeChangesBefore(new Date(), { signal }),
      () => db.clear({ signal }),
    ];
    for (const call of calls) {
      const err = await rejection(call());
      expect(err.name, String(call)).toBe('AbortError');
      expect(err.code).toBe('ERR_DATABROKER_ABORTED');
    }
    expect((await db.versions()).latestRecordVersion).toBe(0); // nothing was written
    await db.close();
  });

  it('ends a waiting sync stream: the for await leaves its loop, nothing is thrown', async () => {
    const db = broker(server.createClient(), { pollIntervalMs: 60_000 });
    const { serverVersion, recordVersion } = await db.syncLatest();
    const controller = new AbortController();
    const stream = db.sync('', serverVersion, recordVersion, { signal: controller.signal });
    const reading = collect(stream);
    await db.put([{ type: 't', id: 'a', data: 1 }]);
    abortedBy(controller, 100);
    const { value, error } = await timed(reading);
    expect(error).toBeUndefined();
    expect(value?.map((r) => r.id)).toEqual(['a']);
    await db.close();
  });

  it('ends a snapshot stream', async () => {
    const db = broker(server.createClient(), { batchSize: 2 });
    await db.put(Array.from({ length: 10 }, (_, i) => ({ type: 't', id: `${i}`, data: i })));
    const controller = new AbortController();
    const { stream } = await db.syncLatest('t', undefined, { signal: controller.signal });
    await take(stream, 3);
    controller.abort();
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    await db.close();
  });
});

describe('close', () => {
  it('drains queued puts within the bound, then resolves; a second call gives the same outcome', async () => {
    const db = broker(server.createClient());
    const puts = Array.from({ length: 20 }, (_, i) => db.put([{ type: 't', id: `${i}`, data: i }]));
    const closing = db.close({ timeoutMs: 5000 });
    expect((await Promise.all(puts)).map((p) => p.records[0]?.version)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    await closing;
    await db.close();
    expect((await rejection(db.get('t', '1'))).code).toBe('ERR_DATABROKER_CLOSED');
  });

  it('with work that cannot finish: rejects at the bound with what it abandoned', async () => {
    await using proxy = await startProxy({ target: server });
    const db = broker(server.createClient({ port: proxy.port }), { timeoutMs: 60_000 });
    await db.versions();
    proxy.pause(); // nothing answers any more
    const put = db.put([
      { type: 't', id: 'a', data: 1 },
      { type: 't', id: 'b', data: 2 },
    ]);
    const get = db.get('t', 'a');
    const { error, ms } = await timed(db.close({ timeoutMs: 200 }));
    expect(error?.code).toBe('ERR_DATABROKER_ABANDONED');
    expect((error as DataBrokerError).abandoned).toEqual({ puts: 1, records: 2, calls: 1 });
    expect(error?.message).toMatch(/1 put \(2 records\).*1 call/);
    expect((await rejection(put)).code).toBe('ERR_DATABROKER_CLOSED');
    expect(['ERR_DATABROKER_CLOSED', 'ERR_DATABROKER_CONNECTION']).toContain((await rejection(get)).code);
    expect(ms).toBeGreaterThanOrEqual(150);
    proxy.resume();
  });

  it('stops waiting when its signal fires', async () => {
    await using proxy = await startProxy({ target: server });
    const db = broker(server.createClient({ port: proxy.port }), { timeoutMs: 60_000 });
    await db.versions();
    proxy.pause();
    const put = db.put([{ type: 't', id: 'a', data: 1 }]);
    const controller = new AbortController();
    abortedBy(controller, 100);
    const err = await rejection(db.close({ timeoutMs: 60_000, signal: controller.signal }));
    expect(err.code).toBe('ERR_DATABROKER_ABANDONED');
    await rejection(put);
    proxy.resume();
  });

  it('with await using: closes with the default bound', async () => {
    const name = uniqueName();
    {
      await using db = new DataBroker(server.createClient(), { name, expiryMs: 0 });
      await db.put([{ type: 't', id: 'a', data: 1 }]);
    }
    const after = broker(server.createClient(), { name });
    expect((await after.get('t', 'a'))?.data).toBe(1);
    await after.close();
  });
});

describe('logger', () => {
  it('gets the failures of the background cleanup, never process warnings', async () => {
    const errors: { context: object; message: string }[] = [];
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on('warning', onWarning);
    const name = uniqueName();
    const raw = server.createClient();
    const db = new DataBroker(server.createClient(), {
      name,
      expiryMs: 10,
      cleanupIntervalMs: 20,
      logger: { debug() {}, warn() {}, error: (context, message) => errors.push({ context, message }) },
    });
    await db.put([{ type: 't', id: 'a', data: 1 }]);
    await raw.del(db.keys.changes);
    await raw.set(db.keys.changes, 'not a sorted set'); // the cleanup now meets WRONGTYPE
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const [first] = errors;
    expect(first?.message).toMatch(/change-log cleanup.*failed.*WRONGTYPE/);
    expect((first?.context as { err?: unknown } | undefined)?.err).toBeInstanceOf(DataBrokerError);
    expect(warnings).toEqual([]);
    process.off('warning', onWarning);
    await db.close();
    raw.disconnect();
  });
});
