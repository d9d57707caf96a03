// Where a subscription starts, against a real server and with the racy interleavings: a send on
// another connection while the subscription's own connection is still connecting, while its
// group creation is being retried, a send on the same client right after the constructor, the
// URL flow, and what an existing group, `from` and `create: false` do.
import { type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createGroup,
  createTopic,
  openSubscription,
  openTopic,
  StreamsError,
  Subscription,
  Topic,
} from '../src/index.ts';
import { eventually, receiveN } from './helpers.ts';

let server: SpawnedRedis;
let redis: Redis;
let proxy: TcpProxy;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  server = await spawnRedis();
  redis = server.createClient();
  proxy = await startProxy({ target: server });
});
afterAll(async () => {
  await proxy.close();
  await server.stop();
});
afterEach(async () => {
  proxy.resume();
  proxy.refuse(false);
  for (const step of cleanup.splice(0).reverse()) await step();
});

function open(client: Redis, options: ConstructorParameters<typeof Subscription>[1]): Subscription {
  const sub = new Subscription(client, options);
  cleanup.push(() => sub.shutdown({ timeoutMs: 0 }).catch(() => {}));
  return sub;
}

/** A client whose bytes go through the proxy, so that the test decides when it can talk. */
function proxied(options: Parameters<SpawnedRedis['createClient']>[0] = {}): Redis {
  const client = server.createClient({ port: proxy.port, ...options });
  client.on('error', () => {});
  cleanup.push(() => client.disconnect());
  return client;
}

/** Appends an entry with an ID far in the past: certainly stored before anything in the test. */
async function storeOld(key: string, body: string): Promise<void> {
  await redis.xadd(key, '1000-1', 'headers', '{}', 'body', body);
}

describe('where a subscription starts (from: "$", the default)', () => {
  it('receives a send made on another connection while its own connection is still connecting', async () => {
    const key = server.keyPrefix();
    await storeOld(key, 'before');
    proxy.pause(); // the subscription's client connects, but nothing reaches Redis yet
    const client = proxied();
    const sub = open(client, { topic: key, group: 'g', consumer: 'c' });
    // Sent after the constructor returned, on a connection that works, while the group does not exist yet.
    await new Topic(redis, key).send({ body: 'during' });
    proxy.resume();
    await sub.ready();
    await new Topic(redis, key).send({ body: 'after' });
    const got = await receiveN(sub, 2);
    expect(got.map((m) => m.body.toString())).toEqual(['during', 'after']); // not 'before'
  });

  it('receives what was sent while its group creation failed and was retried', async () => {
    const key = server.keyPrefix();
    await storeOld(key, 'before');
    proxy.refuse(true); // every connection attempt is reset: commands fail, the subscription retries
    const client = proxied({ maxRetriesPerRequest: 0, retryStrategy: () => 20 });
    const sub = open(client, { topic: key, group: 'g', consumer: 'c', retry: { initialDelayMs: 20, maxDelayMs: 50 } });
    const retries: string[] = [];
    sub.on('retry', (event) => retries.push(event.operation));
    await eventually('a failed attempt to create the group', () => retries.length > 0);
    await new Topic(redis, key).send({ body: 'during' });
    proxy.refuse(false);
    await sub.ready();
    const [got] = await receiveN(sub, 1);
    expect(got?.body.toString()).toBe('during');
  });

  it('receives a send made through the same client right after the constructor, without awaiting ready()', async () => {
    const key = server.keyPrefix();
    const client = server.createClient(); // not connected yet: the worst case
    cleanup.push(() => client.disconnect());
    const sub = open(client, { topic: key, group: 'g', consumer: 'c' });
    // A topic that never creates streams: the subscription's stream exists by the time the send runs.
    const id = await new Topic(client, key).send({ body: 'right away' });
    const [got] = await receiveN(sub, 1);
    expect(got?.id).toBe(id);
  });

  it('opens by URL, sends and receives at once, each on its own connection, even while the subscription connects', async () => {
    const key = server.keyPrefix();
    proxy.pause();
    const sub = openSubscription(`redis://g?topic=${encodeURIComponent(key)}&consumer=c`, {
      redisUrl: `redis://127.0.0.1:${proxy.port}`,
    });
    cleanup.push(() => sub.shutdown({ timeoutMs: 0 }).catch(() => {}));
    const topic = openTopic(`redis://${encodeURIComponent(key)}`, { redisUrl: server.url });
    cleanup.push(() => topic.shutdown().catch(() => {}));
    await topic.send({ body: 'hello' });
    proxy.resume();
    const [got] = await receiveN(sub, 1);
    expect(got?.body.toString()).toBe('hello');
  });

  it('does not replay what was stored before it was opened', async () => {
    const key = server.keyPrefix();
    await storeOld(key, 'old');
    const sub = open(redis, { topic: key, group: 'g', consumer: 'c' });
    await sub.ready();
    await new Topic(redis, key).send({ body: 'new' });
    const [got] = await receiveN(sub, 1);
    expect(got?.body.toString()).toBe('new');
    expect(sub.stats.delivered).toBe(1);
  });

  it('creates the stream when it does not exist, so that a topic that never creates streams can send', async () => {
    const key = server.keyPrefix();
    const sub = open(redis, { topic: key, group: 'g', consumer: 'c' });
    await sub.ready();
    expect(await redis.type(key)).toBe('stream');
    await new Topic(redis, key).send({ body: 'x' });
    expect((await receiveN(sub, 1))[0]?.body.toString()).toBe('x');
  });
});

describe('from, an existing group, and create: false', () => {
  it('from: "0" delivers everything retained; an entry ID starts after that entry', async () => {
    const key = server.keyPrefix();
    await createTopic(redis, key);
    const topic = new Topic(redis, key);
    const ids = [await topic.send({ body: 'a' }), await topic.send({ body: 'b' }), await topic.send({ body: 'c' })];
    const all = open(redis, { topic: key, group: 'all', consumer: 'c', from: '0' });
    expect((await receiveN(all, 3)).map((m) => m.body.toString())).toEqual(['a', 'b', 'c']);
    const after = open(redis, { topic: key, group: 'after', consumer: 'c', from: ids[0] });
    expect((await receiveN(after, 2)).map((m) => m.body.toString())).toEqual(['b', 'c']);
  });

  it('leaves an existing group where it is, whatever `from` says', async () => {
    const key = server.keyPrefix();
    await storeOld(key, 'before the group');
    await createGroup(redis, key, 'g', { from: '$' });
    await new Topic(redis, key).send({ body: 'after the group' });
    const sub = open(redis, { topic: key, group: 'g', consumer: 'c', from: '0' });
    await sub.ready();
    const got = await receiveN(sub, 1);
    expect(got.map((m) => m.body.toString())).toEqual(['after the group']);
    expect(sub.stats.delivered).toBe(1);
  });

  it('with create: false, ready() rejects with ERR_STREAMS_NOT_FOUND for a missing group and resolves for an existing one', async () => {
    const key = server.keyPrefix();
    const missing = open(redis, { topic: key, group: 'nope', consumer: 'c', create: false });
    await expect(missing.ready()).rejects.toMatchObject({ code: 'ERR_STREAMS_NOT_FOUND' });
    expect(await redis.exists(key)).toBe(0); // nothing was created
    await createGroup(redis, key, 'g');
    const existing = open(redis, { topic: key, group: 'g', consumer: 'c', create: false });
    await existing.ready();
    await new Topic(redis, key).send({ body: 'x' });
    expect((await receiveN(existing, 1))[0]?.body.toString()).toBe('x');
  });

  it('ready() takes a signal: it rejects with an AbortError and the subscription goes on', async () => {
    const key = server.keyPrefix();
    proxy.pause();
    const sub = open(proxied(), { topic: key, group: 'g', consumer: 'c' });
    const controller = new AbortController();
    const waiting = sub.ready({ signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError', code: 'ERR_STREAMS_ABORTED' });
    proxy.resume();
    await sub.ready();
  });
});

describe('a client that cannot connect, and the logger', () => {
  it('ready() and receive() fail with ERR_STREAMS_CONNECT within connectTimeoutMs, naming the address and the cause', async () => {
    proxy.refuse(true);
    const sub = open(proxied({ retryStrategy: () => 20 }), { topic: 't', group: 'g', connectTimeoutMs: 300 });
    const err = await sub.ready().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STREAMS_CONNECT', package: '@redis-events/streams-driver' });
    expect((err as Error).message).toContain(`127.0.0.1:${proxy.port}`);
    await expect(sub.receive()).rejects.toMatchObject({ code: 'ERR_STREAMS_CONNECT' });
  });

  it('a wrong password fails at once, whatever connectTimeoutMs says', async () => {
    const secured = await spawnRedis({ password: 'right' });
    cleanup.push(() => secured.stop());
    const client = secured.createClient({ password: 'wrong' });
    client.on('error', () => {});
    cleanup.push(() => client.disconnect());
    const sub = open(client, { topic: 't', group: 'g', connectTimeoutMs: 60_000 });
    await expect(sub.ready()).rejects.toMatchObject({
      code: 'ERR_STREAMS_CONNECT',
      message: expect.stringMatching(/WRONGPASS|password/),
    });
  });

  it('tells the logger about retries and permanent failures, with the package error', async () => {
    const entries: { level: string; context: Record<string, unknown> }[] = [];
    const log = (level: string) => (context: object) =>
      entries.push({ level, context: context as Record<string, unknown> });
    const logger = { debug: log('debug'), warn: log('warn'), error: log('error') };
    const key = server.keyPrefix();
    const client = proxied({ maxRetriesPerRequest: 0, retryStrategy: () => 20 });
    await client.ping();
    const sub = open(client, { topic: key, group: 'g', logger, retry: { initialDelayMs: 20, maxDelayMs: 50 } });
    await sub.ready();
    proxy.refuse(true);
    proxy.cut();
    await eventually('a logged retry', () => entries.some((e) => e.level === 'warn'));
    expect(entries.find((e) => e.level === 'warn')?.context).toMatchObject({
      package: '@redis-events/streams-driver',
      topic: key,
      group: 'g',
      err: expect.any(StreamsError),
    });
    proxy.refuse(false);
    await redis.del(key);
    await redis.set(key, 'not a stream'); // the next read fails for good: WRONGTYPE
    await eventually('a logged failure', () => entries.some((e) => e.level === 'error'));
    expect(entries.find((e) => e.level === 'error')?.context).toMatchObject({ code: 'ERR_STREAMS_WRONG_TYPE' });
  });
});
