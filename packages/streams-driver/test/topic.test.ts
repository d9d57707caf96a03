// Topic behaviour on a real Redis, and the admin functions.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createGroup,
  createTopic,
  deleteGroup,
  deleteTopic,
  groupInfo,
  StreamsError,
  Topic,
  topicInfo,
  trimTopic,
} from '../src/index.ts';

let server: SpawnedRedis;
let redis: Redis;

beforeAll(async () => {
  server = await spawnRedis();
  redis = server.createClient();
});
afterAll(() => server.stop());

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return err instanceof StreamsError ? err.code : `not a StreamsError: ${String(err)}`;
  }
  return undefined;
}

describe('Topic', () => {
  it('trims to about maxLen by default, and exactly on request', async () => {
    const approx = server.keyPrefix();
    const exact = server.keyPrefix();
    const a = new Topic(redis, approx, { create: true, retention: { maxLen: 10 } });
    const e = new Topic(redis, exact, { create: true, retention: { maxLen: 10, exact: true } });
    for (let i = 0; i < 300; i++) await Promise.all([a.send({ body: `${i}` }), e.send({ body: `${i}` })]);
    expect(await redis.xlen(exact)).toBe(10);
    const length = await redis.xlen(approx);
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThan(300); // whole macro nodes go at once
  });

  it('trims by age, with MINID from the entry time, and both ways at once', async () => {
    const key = server.keyPrefix();
    await redis.xadd(key, '1000-0', 'body', 'ancient');
    await redis.xadd(key, `${Date.now() - 60_000}-0`, 'body', 'a minute old');
    const byAge = new Topic(redis, key, { retention: { maxAgeMs: 30_000, exact: true } });
    await byAge.send({ body: 'new' });
    const left = (await redis.xrange(key, '-', '+')).map(([, fields]) => fields[fields.indexOf('body') + 1]);
    expect(left).toEqual(['new']);

    const both = server.keyPrefix();
    await redis.xadd(both, '1000-0', 'body', 'ancient');
    const combined = new Topic(redis, both, { retention: { maxLen: 5, maxAgeMs: 30_000, exact: true } });
    await combined.send({ body: 'new' });
    expect(await redis.xlen(both)).toBe(1);
    for (let i = 0; i < 10; i++) await combined.send({ body: `${i}` });
    expect(await redis.xlen(both)).toBe(5);
  });

  it('does not send a message whose signal fires while it waits for its batch', async () => {
    const key = server.keyPrefix();
    const topic = new Topic(redis, key, { create: true });
    const controller = new AbortController();
    const cancelled = topic.send({ body: 'never' }, { signal: controller.signal });
    const kept = topic.send({ body: 'kept' });
    controller.abort();
    expect(await codeOf(cancelled)).toBe('ERR_STREAMS_CANCELLED');
    await kept;
    await topic.flush();
    expect(await redis.xlen(key)).toBe(1);
  });

  it('flushes and resolves every pending send at shutdown, then refuses new ones', async () => {
    const key = server.keyPrefix();
    const topic = new Topic(redis, key, { create: true, maxBatchSize: 7 });
    const sends = Array.from({ length: 100 }, (_, i) => topic.send({ body: `${i}` }));
    await topic.shutdown();
    const ids = await Promise.all(sends);
    expect(new Set(ids).size).toBe(100);
    expect(await redis.xlen(key)).toBe(100);
    expect(topic.stats).toMatchObject({ sent: 100, failed: 0, queued: 0 });
    expect(topic.stats.batches).toBeGreaterThanOrEqual(15);
    expect(await codeOf(topic.send({ body: 'late' }))).toBe('ERR_STREAMS_CLOSED');
  });

  it('fails sends to a key of another type with ERR_STREAMS_REDIS, and bad messages before any I/O', async () => {
    const key = server.keyPrefix();
    await redis.set(key, 'a string');
    const topic = new Topic(redis, key, { create: true });
    const err = await topic.send({ body: 'x' }).catch((e: StreamsError) => e);
    expect(err).toMatchObject({ code: 'ERR_STREAMS_REDIS', topic: key, command: 'XADD' });
    expect((err as Error).message).toMatch(/WRONGTYPE/);
    expect(await codeOf(topic.send({ body: 5 as never }))).toBe('ERR_STREAMS_ARGUMENT');
    expect(() => new Topic(redis, '')).toThrow(StreamsError);
    expect(() => new Topic(redis, 'k', { maxBatchSize: 0 })).toThrow(StreamsError);
    expect(() => new Topic(redis, 'k', { retention: { maxLen: -1 } })).toThrow(StreamsError);
  });
});

describe('admin', () => {
  it('creates topics and groups where they should start, and reports them', async () => {
    const key = server.keyPrefix();
    expect(await topicInfo(redis, key)).toBeUndefined();
    expect(await groupInfo(redis, key)).toEqual([]);
    expect(await createTopic(redis, key)).toBe(true);
    expect(await createTopic(redis, key)).toBe(false);
    expect(await topicInfo(redis, key)).toMatchObject({ length: 0, firstId: undefined, groups: 0 });
    const topic = new Topic(redis, key);
    const first = await topic.send({ body: 'one' });
    await createGroup(redis, key, 'new-only'); // from $
    await createGroup(redis, key, 'history', { from: '0' });
    await createGroup(redis, key, 'after-first', { from: first });
    expect(await createGroup(redis, key, 'history', { from: '0' })).toBe(false);
    await topic.send({ body: 'two' });
    const groups = Object.fromEntries((await groupInfo(redis, key)).map((g) => [g.name, g]));
    expect(groups['new-only']?.lag).toBe(1);
    expect(groups.history?.lag).toBe(2);
    expect(groups['after-first']?.lag).toBe(1);
    expect(await topicInfo(redis, key)).toMatchObject({ length: 2, firstId: first, groups: 3 });
    expect(await deleteGroup(redis, key, 'history')).toBe(true);
    expect(await deleteGroup(redis, key, 'history')).toBe(false);
    expect(await deleteTopic(redis, key)).toBe(true);
    expect(await deleteGroup(redis, key, 'new-only')).toBe(false);
  });

  it('says what is wrong: a missing topic, a bad start, a key of another type', async () => {
    const key = server.keyPrefix();
    expect(await codeOf(createGroup(redis, key, 'g', { createTopic: false }))).toBe('ERR_STREAMS_NOT_FOUND');
    expect(await codeOf(createGroup(redis, key, 'g', { from: 'latest' }))).toBe('ERR_STREAMS_ARGUMENT');
    await redis.set(key, 'x');
    expect(await codeOf(createTopic(redis, key))).toBe('ERR_STREAMS_REDIS');
    expect(await codeOf(topicInfo(redis, key))).toBe('ERR_STREAMS_REDIS');
  });

  it('trims on request by length and by age', async () => {
    const key = server.keyPrefix();
    await redis.xadd(key, '1000-0', 'body', 'old');
    const topic = new Topic(redis, key);
    for (let i = 0; i < 20; i++) await topic.send({ body: `${i}` });
    expect(await trimTopic(redis, key, { maxAgeMs: 60_000, exact: true })).toBe(1);
    expect(await trimTopic(redis, key, { maxLen: 5, exact: true })).toBe(15);
    expect(await redis.xlen(key)).toBe(5);
    expect(await codeOf(trimTopic(redis, key, {}))).toBe('ERR_STREAMS_ARGUMENT');
  });
});
