// Shutdown: never stuck on a BLOCK, waits for handlers and acks, hands back what was read
// ahead, releases the consumer, and closes what it opened.
import { startProxy } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { openSubscription, openTopic, RELEASED_CONSUMER, StreamsError, Subscription, Topic } from '../src/index.ts';
import { eventually, receiveN, sleep, trackTimers, useServer } from './helpers.ts';

const ctx = useServer();

async function send(key: string, n: number): Promise<void> {
  const topic = new Topic(ctx.redis, key, { create: true });
  await Promise.all(Array.from({ length: n }, (_, i) => topic.send({ body: `m${i}` })));
  await topic.shutdown();
}

async function consumers(key: string, group: string): Promise<string[]> {
  const rows = (await ctx.redis.call('xinfo', 'CONSUMERS', key, group)) as unknown[][];
  return rows.map((row) => String(row[1]));
}

describe('Subscription.shutdown', () => {
  it('does not wait for a blocked read, even with a one-minute BLOCK', async () => {
    const key = ctx.server.keyPrefix();
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g', consumer: 'c', blockMs: 60_000 });
    await sub.ready();
    const waiting = expect(sub.receive()).rejects.toSatisfy((e) => (e as StreamsError).code === 'ERR_STREAMS_CLOSED');
    await eventually('the reader to block in XREADGROUP BLOCK 60000', async () =>
      ((await ctx.redis.call('client', 'list')) as string).includes('cmd=xreadgroup'),
    );
    await sub.shutdown(); // within the test timeout, far below the BLOCK
    await waiting;
    await eventually(
      'the reader connection to be gone',
      async () => !((await ctx.redis.call('client', 'list')) as string).includes('cmd=xreadgroup'),
    );
  });

  it('leaves no timer running, so that the process can exit as soon as it is shut down', async () => {
    const key = ctx.server.keyPrefix();
    const redis = ctx.server.createClient();
    let reader: Redis | undefined;
    const duplicate = redis.duplicate.bind(redis);
    vi.spyOn(redis, 'duplicate').mockImplementation((...args: Parameters<Redis['duplicate']>) => {
      reader = duplicate(...args);
      return reader;
    });
    const timers = trackTimers();
    try {
      const sub = new Subscription(redis, { topic: key, group: 'g', consumer: 'c', blockMs: 100 });
      await sub.ready();
      await send(key, 1);
      const [m] = await receiveN(sub, 1);
      await m?.ack();
      await sub.shutdown();
      await redis.quit();
      await eventually('the reader connection to end', () => reader?.status === 'end');
      await new Promise((resolve) => setImmediate(resolve));
      expect(timers.pending()).toEqual([]);
    } finally {
      timers.stop();
    }
  });

  it('leaves no timer running after a shutdown that waited for a slow claim pass', async () => {
    const key = ctx.server.keyPrefix();
    await using proxy = await startProxy({ target: ctx.server });
    const client = ctx.server.createClient({ port: proxy.port });
    client.on('error', () => {});
    const timers = trackTimers();
    try {
      const sub = new Subscription(client, { topic: key, group: 'g', consumer: 'c', claimIntervalMs: 20, blockMs: 50 });
      await sub.ready();
      proxy.setLatency(150); // a claim pass (every 20 ms) is on the wire when the shutdown starts
      await new Promise((resolve) => setTimeout(resolve, 200));
      await sub.shutdown(); // the default bound: 10 s, far longer than the claim pass
      client.disconnect();
      await new Promise((resolve) => setImmediate(resolve));
      // ioredis' own disconnect timers are not ours; every timer the package made is gone.
      const ours = (stack: string) => /setTimeout \(node:timers[^\n]*\n[^\n]*streams-driver\/src/.test(stack);
      expect(timers.pending().filter(ours)).toEqual([]);
    } finally {
      timers.stop();
    }
  });

  it('waits for a message the application still handles, and for its ack, then deletes the consumer', async () => {
    const key = ctx.server.keyPrefix();
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g', consumer: 'worker' });
    await sub.ready(); // the group starts at $: it must exist before the send
    await send(key, 1);
    const [m] = await receiveN(sub, 1);
    let acked = false;
    const stopping = sub.shutdown();
    await sleep(150);
    const ack = m?.ack().then(() => {
      acked = true;
    });
    await stopping;
    expect(acked).toBe(true);
    await ack;
    expect(await ctx.redis.call('xpending', key, 'g', '-', '+', 10)).toEqual([]);
    expect(await consumers(key, 'g')).not.toContain('worker');
  });

  it('completes acks issued just before shutdown', async () => {
    const key = ctx.server.keyPrefix();
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g' });
    await sub.ready();
    await send(key, 100);
    const got = await receiveN(sub, 100);
    const acks = got.map((m) => m.ack()); // not awaited
    await sub.shutdown();
    await Promise.all(acks);
    expect(sub.stats.acked).toBe(100);
    expect(await ctx.redis.call('xpending', key, 'g', '-', '+', 10)).toEqual([]);
  });

  it('after the grace period leaves an unsettled message pending on the consumer, which stays', async () => {
    const key = ctx.server.keyPrefix();
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g', consumer: 'stuck' });
    await sub.ready();
    await send(key, 3);
    const [m] = await receiveN(sub, 1); // two more were read ahead
    await expect(sub.shutdown({ timeoutMs: 100 })).rejects.toMatchObject({
      name: 'StreamsError',
      code: 'ERR_STREAMS_ABANDONED',
      abandoned: { held: 1 },
    });
    const pending = (await ctx.redis.call('xpending', key, 'g', '-', '+', 10)) as unknown[][];
    expect(pending.map((row) => row[1]).sort()).toEqual([RELEASED_CONSUMER, RELEASED_CONSUMER, 'stuck']);
    expect(pending.find((row) => row[1] === 'stuck')?.[0]).toBe(m?.id);
    expect(await consumers(key, 'g')).toContain('stuck'); // never deleted with pending entries
    await expect(m?.ack()).rejects.toSatisfy((e) => (e as StreamsError).code === 'ERR_STREAMS_CLOSED');
  });

  it('ends for-await loops, and refuses a second shutdown', async () => {
    const key = ctx.server.keyPrefix();
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g' });
    await sub.ready();
    const loop = (async () => {
      let n = 0;
      for await (const m of sub) {
        n++;
        await m.ack();
      }
      return n;
    })();
    await send(key, 3);
    await eventually('three acks', () => sub.stats.acked === 3);
    await sub.shutdown();
    expect(await loop).toBe(3);
    await expect(sub.shutdown()).rejects.toSatisfy((e) => (e as StreamsError).code === 'ERR_STREAMS_CLOSED');
    await sub[Symbol.asyncDispose](); // disposing after shutdown is fine
  });

  it('stops a subscription that never reached its server', async () => {
    const unreachable = ctx.server.createClient({
      port: 1,
      lazyConnect: true,
      retryStrategy: () => 50,
      maxRetriesPerRequest: 1,
    });
    unreachable.on('error', () => {});
    const sub = new Subscription(unreachable, { topic: 't', group: 'g', commandTimeoutMs: 200 });
    const retried = new Promise((resolve) => sub.once('retry', resolve));
    await retried;
    await sub.shutdown();
    await expect(sub.ready()).rejects.toSatisfy((e) => (e as StreamsError).code === 'ERR_STREAMS_CLOSED');
    unreachable.disconnect();
  });

  it('closes the connections a URL opener made, and only those', async () => {
    const key = ctx.server.keyPrefix();
    const saved = process.env.REDIS_URL;
    process.env.REDIS_URL = ctx.server.url;
    try {
      const topic = openTopic(`redis://${encodeURIComponent(key)}?maxlen=100`);
      const sub = openSubscription(`redis://g?topic=${encodeURIComponent(key)}&consumer=c1&from=0`);
      await topic.send({ body: 'via URL' });
      const [m] = await receiveN(sub, 1);
      await m?.ack();
      const before = ((await ctx.redis.call('client', 'list')) as string).split('\n').length;
      await sub.shutdown();
      await topic.shutdown();
      await eventually(
        'the opened connections to close',
        async () => ((await ctx.redis.call('client', 'list')) as string).split('\n').length <= before - 3,
      );
      expect(await ctx.redis.ping()).toBe('PONG'); // the test's own client is untouched
      const shared = openTopic(`redis://${encodeURIComponent(key)}`, { client: ctx.redis });
      await shared.shutdown();
      expect(await ctx.redis.ping()).toBe('PONG');
    } finally {
      if (saved === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = saved;
    }
  });
});

describe('shutdown within a bound, saying what it abandoned', () => {
  it('Topic: gives up a send without a reply and one never written at timeoutMs, not at sendTimeoutMs', async () => {
    const key = ctx.server.keyPrefix();
    await using proxy = await startProxy({ target: ctx.server });
    const client = ctx.server.createClient({ port: proxy.port });
    client.on('error', () => {});
    await client.ping();
    const topic = new Topic(client, key, { create: true, maxBatchesInFlight: 1 }); // sendTimeoutMs: 30 s
    proxy.pause();
    const written = topic.send({ body: 'on the wire' });
    await eventually('the first batch to be on the wire', () => topic.stats.batches === 1);
    const queued = topic.send({ body: 'waiting its turn' });
    await expect(topic.shutdown({ timeoutMs: 200 })).rejects.toMatchObject({
      code: 'ERR_STREAMS_ABANDONED',
      abandoned: { unsent: 1, unconfirmed: 1 },
    });
    await expect(written).rejects.toMatchObject({
      code: 'ERR_STREAMS_CLOSED',
      message: expect.stringMatching(/may be stored/),
    });
    await expect(queued).rejects.toMatchObject({
      code: 'ERR_STREAMS_CLOSED',
      message: expect.stringMatching(/not stored/),
    });
    proxy.resume();
    client.disconnect();
  });

  it('Topic: a signal ends the wait too; a shutdown with nothing pending resolves', async () => {
    const key = ctx.server.keyPrefix();
    await using proxy = await startProxy({ target: ctx.server });
    const client = ctx.server.createClient({ port: proxy.port });
    client.on('error', () => {});
    await client.ping();
    const idle = new Topic(client, key, { create: true });
    await idle.send({ body: 'stored' });
    await idle.shutdown({ timeoutMs: 0 });
    const topic = new Topic(client, key);
    proxy.pause();
    const sent = topic.send({ body: 'x' });
    sent.catch(() => {});
    const controller = new AbortController();
    const stopping = topic.shutdown({ signal: controller.signal });
    controller.abort();
    await expect(stopping).rejects.toMatchObject({ code: 'ERR_STREAMS_ABANDONED', abandoned: { unsent: 1 } });
    proxy.resume();
    client.disconnect();
  });

  it('Topic: a client that never connects fails sends within connectTimeoutMs, naming the address and the cause', async () => {
    await using proxy = await startProxy({ target: ctx.server });
    proxy.refuse(true);
    const client = ctx.server.createClient({ port: proxy.port, retryStrategy: () => 20 });
    client.on('error', () => {});
    const topic = new Topic(client, ctx.server.keyPrefix(), { create: true, connectTimeoutMs: 300 });
    const err = await topic.send({ body: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STREAMS_CONNECT', package: '@redis-events/streams-driver' });
    expect((err as Error).message).toContain(`127.0.0.1:${proxy.port}`);
    await topic.shutdown({ timeoutMs: 0 });
    client.disconnect();
  });

  it('Topic: an outage error is wrapped once, its cause is what the connection reported', async () => {
    await using proxy = await startProxy({ target: ctx.server });
    const client = ctx.server.createClient({ port: proxy.port, maxRetriesPerRequest: 0, retryStrategy: () => 20 });
    client.on('error', () => {});
    await client.ping();
    const topic = new Topic(client, ctx.server.keyPrefix(), { create: true, sendTimeoutMs: 300 });
    await topic.send({ body: 'connected' });
    proxy.refuse(true);
    proxy.cut();
    const err = await topic.send({ body: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STREAMS_UNAVAILABLE', retryable: true });
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect((err as Error).cause).not.toBeInstanceOf(StreamsError);
    await topic.shutdown({ timeoutMs: 0 });
    client.disconnect();
  });

  it('Subscription: rejects when acks could not reach Redis before the bound', async () => {
    const key = ctx.server.keyPrefix();
    await using proxy = await startProxy({ target: ctx.server });
    const client = ctx.server.createClient({ port: proxy.port });
    client.on('error', () => {});
    const sub = new Subscription(client, { topic: key, group: 'g', consumer: 'c' });
    await sub.ready();
    await send(key, 2);
    const got = await receiveN(sub, 2);
    proxy.pause();
    const acks = got.map((m) => m.ack()); // not awaited by the application
    await expect(sub.shutdown({ timeoutMs: 200 })).rejects.toMatchObject({
      code: 'ERR_STREAMS_ABANDONED',
      abandoned: { settlements: 2 },
    });
    for (const ack of acks) await expect(ack).rejects.toBeInstanceOf(StreamsError);
    proxy.resume();
    client.disconnect();
    // Nothing was acknowledged: both messages are still pending, to be delivered again.
    expect(await ctx.redis.call('xpending', key, 'g', '-', '+', 10)).toHaveLength(2);
  });

  it('Subscription: rejects when Redis refuses the acks for good (NOPERM)', async () => {
    const key = ctx.server.keyPrefix();
    const user = await ctx.server.createUser({
      username: `noack-${key.replace(/\W/g, '')}`,
      password: 'pw',
      rules: ['~*', '+@all', '-xack'],
    });
    const client = ctx.server.createClient({ username: user.username, password: 'pw' });
    const sub = new Subscription(client, { topic: key, group: 'g', consumer: 'c' });
    await sub.ready();
    await send(key, 1);
    const [m] = await receiveN(sub, 1);
    const ack = m?.ack();
    await expect(ack).rejects.toMatchObject({ code: 'ERR_STREAMS_REDIS', message: expect.stringMatching(/NOPERM/) });
    await expect(sub.shutdown()).rejects.toMatchObject({
      code: 'ERR_STREAMS_ABANDONED',
      abandoned: { settlements: 1 },
    });
    client.disconnect();
  });

  it('Subscription: messages({ signal }) ends the loop when the signal fires, without shutting down', async () => {
    const key = ctx.server.keyPrefix();
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g' });
    await sub.ready();
    await send(key, 1);
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const m of sub.messages({ signal: controller.signal })) {
      seen.push(m.body.toString());
      await m.ack();
      controller.abort(); // the next wait ends the loop
    }
    expect(seen).toEqual(['m0']);
    await send(key, 1);
    const [again] = await receiveN(sub, 1);
    expect(again?.body.toString()).toBe('m0'); // still running
    await again?.ack();
    await sub.shutdown();
  });
});
