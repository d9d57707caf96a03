// A consumer that never reads: memory stays within the high-water mark under each overflow
// policy, on our side and on the server's (the connection keeps reading), and every drop is
// counted and marked where it happened.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PubSubMessage } from '../src/subscription.ts';
import { nextEvent, trackedClients, until } from './helpers.ts';

const COUNT = 5000;
const SIZE = 1024;

describe.each([2, 3] as const)('RESP%i: a consumer that never reads', (protocol) => {
  let server: SpawnedRedis;
  let publisher: Redis;
  beforeAll(async () => {
    server = await spawnRedis();
    publisher = server.createClient();
  });
  afterAll(() => server.stop());
  const clients = trackedClients(() => ({ url: server.url, protocol }));
  const client = clients.client;

  /** Publishes COUNT numbered messages of SIZE bytes, pipelined. */
  async function flood(channel: string): Promise<void> {
    const pipeline = publisher.pipeline();
    for (let i = 0; i < COUNT; i++) pipeline.publish(channel, String(i).padEnd(SIZE, '.'));
    await pipeline.exec();
  }

  /** What the server holds in its output buffer for our subscriber connection. */
  async function serverOutputMemory(name: string): Promise<number> {
    const list = (await server.command('CLIENT', 'LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=${name} `) && / sub=1 /.test(l));
    return Number(/ omem=(\d+)/.exec(line ?? '')?.[1] ?? Number.NaN);
  }

  const id = (m: PubSubMessage) => Number(m.payload.slice(0, m.payload.indexOf('.')));

  it.each(['drop-oldest', 'drop-newest'] as const)(
    '%s: holds at most the high-water mark, counts and marks the drops',
    async (overflow) => {
      const p = server.keyPrefix();
      const name = `overflow-${overflow}-${protocol}`;
      const c = client({ name, highWaterMark: 100, maxBufferedBytes: 64 * SIZE, overflow });
      const subscription = await c.subscribe(`${p}flood`);
      await flood(`${p}flood`);
      await until(
        () => subscription.buffered + subscription.dropped === COUNT,
        'every message to be received or dropped',
      );
      // The byte limit binds first: 64 messages of 1 KiB.
      expect(subscription.buffered).toBe(64);
      expect(subscription.bufferedBytes).toBe(64 * SIZE);
      expect(subscription.dropped).toBe(COUNT - 64);
      // The server holds nothing for us either: the connection kept reading.
      expect(await serverOutputMemory(name)).toBe(0);

      const events = [];
      while (subscription.buffered > 0) events.push((await nextEvent(subscription)).value);
      const kept = events.filter((e): e is PubSubMessage => e?.kind === 'message').map(id);
      const gaps = events.filter((e) => e?.kind === 'gap');
      if (overflow === 'drop-oldest') {
        expect(events[0]).toMatchObject({ kind: 'gap', reason: 'overflow', dropped: COUNT - 64 });
        expect(kept).toEqual(Array.from({ length: 64 }, (_, i) => COUNT - 64 + i));
      } else {
        expect(kept).toEqual(Array.from({ length: 64 }, (_, i) => i));
        expect(await nextEvent(subscription)).toMatchObject({
          value: { kind: 'gap', reason: 'overflow', dropped: COUNT - 64 },
        });
      }
      expect(gaps.length).toBeLessThanOrEqual(1);
      // Still subscribed and delivering.
      await publisher.publish(`${p}flood`, 'fresh.');
      expect((await nextEvent(subscription)).value).toMatchObject({ kind: 'message', payload: 'fresh.' });
    },
  );

  it('error: ends the subscription, delivers what it held, then throws ERR_PUBSUB_OVERFLOW', async () => {
    const p = server.keyPrefix();
    const c = client({ highWaterMark: 100, overflow: 'error' });
    const subscription = await c.subscribe(`${p}flood`);
    const ended = new Promise<unknown>((resolve) => subscription.once('end', ({ error }) => resolve(error)));
    await flood(`${p}flood`);
    expect(await ended).toMatchObject({ code: 'ERR_PUBSUB_OVERFLOW' });
    expect(subscription.closed).toBe(true);
    expect(subscription.buffered).toBe(100);
    const kept: number[] = [];
    let error: unknown;
    try {
      for await (const event of subscription) if (event.kind === 'message') kept.push(id(event));
    } catch (err) {
      error = err;
    }
    expect(kept).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_OVERFLOW' });
    expect((error as Error).message).toMatch(/highWaterMark/);
    await until(
      async () => Number(((await server.command('PUBSUB', 'NUMSUB', `${p}flood`)) as [string, number])[1]) === 0,
      'the unsubscribe',
    );
  });

  it.each(['string', 'buffer'] as const)(
    '1 MiB %s payloads: keeps draining the socket into the bounded buffer while nobody reads, so the server keeps it',
    async (payloads) => {
      const p = server.keyPrefix();
      const name = `big-${payloads}-${protocol}`;
      const c = client({ name, payloads });
      const subscription = await c.subscribe(`${p}big`);
      let disconnects = 0;
      subscription.on('disconnect', () => disconnects++);
      const stats = async () => Number((await server.info('stats')).client_output_buffer_limit_disconnections ?? 0);
      const before = await stats();
      // Each message once the server holds less than 2 MiB for us: a connection that stopped
      // reading while its buffer is full would hold the publisher here, not pass by luck.
      for (let i = 0; i < 60; i++) {
        await until(async () => (await serverOutputMemory(name)) < 2 << 20, `the server to send message ${i - 1}`);
        await publisher.publish(`${p}big`, `${i}.`.padEnd(1 << 20, 'x'));
      }
      await until(() => subscription.buffered + subscription.dropped === 60, 'every message to be received or dropped');
      // The default policy held (16 MiB: the newest 16 messages), the server never dropped us.
      expect(subscription.buffered).toBe(16);
      expect(subscription.dropped).toBe(44);
      expect(disconnects).toBe(0);
      expect(await stats()).toBe(before);
      const first = await nextEvent(subscription);
      expect(first.value).toMatchObject({ kind: 'gap', reason: 'overflow', dropped: 44 });
      const next = (await nextEvent(subscription)).value as PubSubMessage<string | Buffer>;
      expect(next.payload.slice(0, 3).toString()).toBe('44.');
    },
  );

  it('counts Buffer payloads by their length too', async () => {
    const p = server.keyPrefix();
    const c = clients.buffers({ maxBufferedBytes: 10 * SIZE });
    const subscription = await c.subscribe(`${p}flood`);
    await flood(`${p}flood`);
    await until(
      () => subscription.buffered + subscription.dropped === COUNT,
      'every message to be received or dropped',
    );
    expect(subscription.buffered).toBe(10);
    expect(subscription.bufferedBytes).toBe(10 * SIZE);
    const first = (await nextEvent(subscription)).value;
    expect(first).toMatchObject({ kind: 'gap', dropped: COUNT - 10 });
    const message = (await nextEvent(subscription)).value as PubSubMessage<Buffer>;
    expect(Buffer.isBuffer(message.payload)).toBe(true);
    expect(message.payload.toString().startsWith(String(COUNT - 10))).toBe(true);
  });
});
