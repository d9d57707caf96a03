// The lifecycle contract on the store: a bounded wait for a client that cannot connect (from a
// URL or passed in), { signal } on every call, close() that says what it gave up, a logger, and
// unknown fields refused.
import { freePort, type SpawnedRedis, spawnRedis, startProxy } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStoreError } from '../src/errors.ts';
import { Mediator } from '../src/mediator.ts';
import { RedisEventStore } from '../src/redis-event-store.ts';
import { freshPrefix, succeeds } from './helpers.ts';

let server: SpawnedRedis;
let client: Redis;
beforeAll(async () => {
  server = await spawnRedis();
  client = server.createClient();
});
afterAll(() => server?.stop());

const event = { name: 'order.paid', payload: { id: 1 } };

describe('a client that cannot connect', () => {
  it('from a URL with nothing listening: the first call fails within connectTimeoutMs, naming the address and the cause', async () => {
    const port = await freePort();
    const store = new RedisEventStore(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 500 });
    const err = await store.storeEvent(event).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventStoreError);
    expect(err).toMatchObject({ code: 'ERR_EVENT_STORE_CONNECT', package: '@redis-events/event-store' });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    await store.close();
  });

  it('a client passed in that gets no answer (a black hole): reads fail within the bound too', async () => {
    await using proxy = await startProxy({ target: server });
    proxy.pause();
    const silent = server.createClient({ port: proxy.port, lazyConnect: true });
    silent.on('error', () => {});
    const store = new RedisEventStore(silent, { connectTimeoutMs: 300 });
    await expect(store.getEvents('x')).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_CONNECT' });
    await store.close();
    silent.disconnect();
  });

  it('a wrong password fails at once, not at the bound', async () => {
    const secured = await spawnRedis({ password: 'right' });
    try {
      const store = new RedisEventStore(`redis://:wrong@127.0.0.1:${secured.port}`, { connectTimeoutMs: 60_000 });
      const err = await store.count('x').catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'ERR_EVENT_STORE_CONNECT',
        message: expect.stringMatching(/WRONGPASS|password/),
      });
      await store.close();
    } finally {
      await secured.stop();
    }
  });
});

describe('signals and close', () => {
  it('a tail ends on its signal, and on close(), also while its start is waiting for Redis', async () => {
    // Scripts count as writes: CLIENT PAUSE WRITE holds the tail's start (and every append).
    const store = new RedisEventStore(client, { prefix: freshPrefix() });
    await store.read('x'); // the scripts are loaded
    await server.command('CLIENT', 'PAUSE', '30000', 'WRITE'); // from another connection: UNPAUSE must not queue behind the held scripts
    try {
      const controller = new AbortController();
      const aborted = store.tail('x', { signal: controller.signal });
      const waiting = aborted.next();
      const closed = store.tail('x');
      const alsoWaiting = closed.next();
      controller.abort();
      expect(await waiting).toEqual({ done: true, value: undefined });
      await closed.close();
      expect(await alsoWaiting).toEqual({ done: true, value: undefined });
    } finally {
      await server.command('CLIENT', 'UNPAUSE');
    }
    await store.close();
  });

  it('every call takes { signal }: it rejects with an AbortError, the store goes on', async () => {
    await using proxy = await startProxy({ target: server });
    const slow = server.createClient({ port: proxy.port });
    slow.on('error', () => {});
    const store = new RedisEventStore(slow, { prefix: freshPrefix() });
    await store.storeEvent(event);
    proxy.pause();
    const controller = new AbortController();
    const calls = [
      store.storeEvent(event, { signal: controller.signal }),
      store.getEvents('order.paid', 10, { signal: controller.signal }),
      store.read('order.paid', { signal: controller.signal }),
      store.count('order.paid', { signal: controller.signal }),
      store.clearEvents('nothing', { signal: controller.signal }),
    ];
    controller.abort(new Error('the caller gave up'));
    for (const call of calls) {
      await expect(call).rejects.toMatchObject({ name: 'AbortError', code: 'ERR_EVENT_STORE_ABORTED' });
    }
    proxy.resume();
    expect(await store.count('order.paid')).toBeGreaterThanOrEqual(1);
    await store.close();
    slow.disconnect();
  });

  it('Mediator.publish passes its signal to the stores', async () => {
    await using proxy = await startProxy({ target: server });
    const slow = server.createClient({ port: proxy.port });
    slow.on('error', () => {});
    const store = new RedisEventStore(slow, { prefix: freshPrefix() });
    await store.count('x');
    const mediator = new Mediator();
    mediator.registerEventStore(store);
    proxy.pause();
    const err = await mediator.publish(event, { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_EVENT_STORE_PUBLISH' });
    expect((err as { storeErrors: unknown[] }).storeErrors[0]).toMatchObject({ name: 'AbortError' });
    proxy.resume();
    await store.close();
    slow.disconnect();
  });

  it('close({ timeoutMs }) with an append in flight rejects with what it gave up; with nothing in flight it resolves', async () => {
    await using proxy = await startProxy({ target: server });
    const slow = server.createClient({ port: proxy.port });
    slow.on('error', () => {});
    const store = new RedisEventStore(slow, { prefix: freshPrefix() });
    await store.storeEvent(event);
    proxy.pause();
    const append = store.storeEvent(event);
    append.catch(() => {});
    await expect(store.close({ timeoutMs: 200 })).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_ABANDONED',
      abandoned: { appends: 1 },
    });
    await expect(store.storeEvent(event)).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_CLOSED' });
    proxy.resume();
    await append; // the append went on: it was stored (a client passed in is not closed)
    slow.disconnect();

    const idle = new RedisEventStore(client, { prefix: freshPrefix() });
    await idle.storeEvent(event);
    await idle.close({ timeoutMs: 0 });
  });

  it('a store made from a URL closes its client at close(), also when calls were given up', async () => {
    await using proxy = await startProxy({ target: server });
    const store = new RedisEventStore(`redis://127.0.0.1:${proxy.port}`, { prefix: freshPrefix() });
    await store.storeEvent(event);
    proxy.pause();
    const append = store.storeEvent(event);
    const controller = new AbortController();
    const closing = store.close({ signal: controller.signal });
    controller.abort();
    await expect(closing).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_ABANDONED', abandoned: { appends: 1 } });
    // The client is gone: the given-up append fails instead of waiting forever.
    await expect(append).rejects.toBeInstanceOf(EventStoreError);
  });
});

describe('what the store refuses, and what it reports', () => {
  it('refuses unknown fields: options, events, read and tail options, call options', async () => {
    expect(() => new RedisEventStore(client, { eventTTL: 1000 } as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_EVENT_STORE_CONFIG',
        message: expect.stringMatching(/unknown store option "eventTTL"/),
      }),
    );
    const store = new RedisEventStore(client, { prefix: freshPrefix() });
    await expect(store.storeEvent({ name: 'x', paylod: 1 } as never)).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_ARGUMENT',
      message: expect.stringMatching(/unknown field "paylod"/),
    });
    const stored = await store.storeEvent({ name: 'x', payload: 1 });
    await store.storeEvent(stored); // a stored event passed back in: its id and timestamp are ignored
    await expect(store.read('x', { limt: 5 } as never)).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_ARGUMENT' });
    expect(() => store.tail('x', { pollInterval: 5 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_EVENT_STORE_ARGUMENT' }),
    );
    await expect(store.count('x', { signl: undefined } as never)).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_ARGUMENT',
    });
    expect(() => new Mediator({ requireHandler: true } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_EVENT_STORE_ARGUMENT' }),
    );
    expect(() => new RedisEventStore(client, { logger: {} as never })).toThrow(
      expect.objectContaining({ code: 'ERR_EVENT_STORE_CONFIG' }),
    );
    await store.close();
  });

  it('tells the logger when a tail waits out a lost connection', async () => {
    await using proxy = await startProxy({ target: server });
    const cut = server.createClient({ port: proxy.port, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    cut.on('error', () => {});
    const warnings: object[] = [];
    const logger = { debug: () => {}, warn: (context: object) => warnings.push(context), error: () => {} };
    const store = new RedisEventStore(cut, { layout: 'timeline', prefix: freshPrefix(), logger });
    const tail = store.tail('t', { pollIntervalMs: 20 });
    const first = tail.next();
    await expect.poll(() => succeeds(store.count('t'))).toBe(true);
    proxy.refuse(true);
    proxy.cut();
    await expect.poll(() => warnings.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ package: '@redis-events/event-store', name: 't' });
    proxy.refuse(false);
    await expect.poll(() => succeeds(store.storeEvent({ name: 't', payload: 'back' })), { timeout: 10_000 }).toBe(true);
    expect((await first).value?.payload).toBe('back');
    await tail.close();
    await store.close();
    cut.disconnect();
  });
});
