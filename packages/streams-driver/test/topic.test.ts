// Topic behaviour on a real Redis, and the admin functions.
import { describe, expect, it } from 'vitest';
import {
  createGroup,
  createTopic,
  deleteGroup,
  deleteTopic,
  groupInfo,
  StreamsError,
  Subscription,
  Topic,
  topicInfo,
  trimTopic,
} from '../src/index.ts';
import { codeOf, useServer } from './helpers.ts';

const ctx = useServer();

describe('Topic', () => {
  it('trims to about maxLen by default, and exactly on request', async () => {
    const approx = ctx.server.keyPrefix();
    const exact = ctx.server.keyPrefix();
    const a = new Topic(ctx.redis, approx, { create: true, retention: { maxLen: 10 } });
    const e = new Topic(ctx.redis, exact, { create: true, retention: { maxLen: 10, exact: true } });
    for (let i = 0; i < 300; i++) await Promise.all([a.send({ body: `${i}` }), e.send({ body: `${i}` })]);
    expect(await ctx.redis.xlen(exact)).toBe(10);
    const length = await ctx.redis.xlen(approx);
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThan(300); // whole macro nodes go at once
  });

  it('trims by age, with MINID from the entry time, and both ways at once', async () => {
    const key = ctx.server.keyPrefix();
    await ctx.redis.xadd(key, '1000-0', 'body', 'ancient');
    await ctx.redis.xadd(key, `${Date.now() - 60_000}-0`, 'body', 'a minute old');
    const byAge = new Topic(ctx.redis, key, { retention: { maxAgeMs: 30_000, exact: true } });
    await byAge.send({ body: 'new' });
    const left = (await ctx.redis.xrange(key, '-', '+')).map(([, fields]) => fields[fields.indexOf('body') + 1]);
    expect(left).toEqual(['new']);

    const both = ctx.server.keyPrefix();
    await ctx.redis.xadd(both, '1000-0', 'body', 'ancient');
    const combined = new Topic(ctx.redis, both, { retention: { maxLen: 5, maxAgeMs: 30_000, exact: true } });
    await combined.send({ body: 'new' });
    expect(await ctx.redis.xlen(both)).toBe(1);
    for (let i = 0; i < 10; i++) await combined.send({ body: `${i}` });
    expect(await ctx.redis.xlen(both)).toBe(5);
  });

  it('does not send a message whose signal fires while it waits for its batch', async () => {
    const key = ctx.server.keyPrefix();
    const topic = new Topic(ctx.redis, key, { create: true });
    const controller = new AbortController();
    const cancelled = topic.send({ body: 'never' }, { signal: controller.signal });
    const kept = topic.send({ body: 'kept' });
    controller.abort();
    expect(await codeOf(cancelled)).toBe('ERR_STREAMS_ABORTED');
    await kept;
    await topic.flush();
    expect(await ctx.redis.xlen(key)).toBe(1);
  });

  it('flushes and resolves every pending send at shutdown, then refuses new ones', async () => {
    const key = ctx.server.keyPrefix();
    const topic = new Topic(ctx.redis, key, { create: true, maxBatchSize: 7 });
    const sends = Array.from({ length: 100 }, (_, i) => topic.send({ body: `${i}` }));
    await topic.shutdown();
    const ids = await Promise.all(sends);
    expect(new Set(ids).size).toBe(100);
    expect(await ctx.redis.xlen(key)).toBe(100);
    expect(topic.stats).toMatchObject({ sent: 100, failed: 0, queued: 0 });
    expect(topic.stats.batches).toBeGreaterThanOrEqual(15);
    expect(await codeOf(topic.send({ body: 'late' }))).toBe('ERR_STREAMS_CLOSED');
  });

  it('fails sends to a key of another type with ERR_STREAMS_WRONG_TYPE, and bad messages and options before any I/O', async () => {
    const key = ctx.server.keyPrefix();
    await ctx.redis.set(key, 'a string');
    const topic = new Topic(ctx.redis, key, { create: true });
    const err = await topic.send({ body: 'x' }).catch((e: StreamsError) => e);
    expect(err).toMatchObject({ code: 'ERR_STREAMS_WRONG_TYPE', topic: key, command: 'XADD' });
    expect((err as Error).message).toMatch(/WRONGTYPE/);
    expect(await codeOf(topic.send({ body: 5 as never }))).toBe('ERR_STREAMS_ARGUMENT');
    // A typo in a message field would send the message without what was meant.
    const typo = { body: 'x', metdata: { type: 'created' } } as never;
    await expect(topic.send(typo)).rejects.toMatchObject({
      code: 'ERR_STREAMS_ARGUMENT',
      message: expect.stringMatching(/unknown field "metdata"/),
    });
    expect(() => new Topic(ctx.redis, 'k', { creat: true } as never)).toThrow(/unknown field "creat"/);
    expect(() => new Subscription(ctx.redis, { topic: 'k', group: 'g', ackDeadline: 5 } as never)).toThrow(
      /unknown field "ackDeadline"/,
    );
    expect(() => new Topic(ctx.redis, '')).toThrow(StreamsError);
    expect(() => new Topic(ctx.redis, 'k', { maxBatchSize: 0 })).toThrow(StreamsError);
    expect(() => new Topic(ctx.redis, 'k', { retention: { maxLen: -1 } })).toThrow(StreamsError);
  });
});

describe.each(['pipeline', 'script'] as const)('Topic with sendMode %s', (sendMode) => {
  it('stores every message in order, with its ID, trimming as asked', async () => {
    const key = ctx.server.keyPrefix();
    const topic = new Topic(ctx.redis, key, { create: true, sendMode, retention: { maxLen: 300, exact: true } });
    const ids = await Promise.all(
      Array.from({ length: 500 }, (_, i) => topic.send({ body: `${i}`, metadata: { i: `${i}` } })),
    );
    const stored = await ctx.redis.xrange(key, '-', '+');
    expect(stored.map(([id]) => id)).toEqual(ids.slice(200));
    expect(stored.map(([, fields]) => fields)).toEqual(
      Array.from({ length: 300 }, (_, j) => ['headers', JSON.stringify({ i: `${j + 200}` }), 'body', `${j + 200}`]),
    );
    if (sendMode === 'script') expect(topic.stats.batches).toBeGreaterThanOrEqual(2); // 256 per script call
  });

  it('reports a missing stream and a key of another type per message', async () => {
    const missing = new Topic(ctx.redis, ctx.server.keyPrefix(), { sendMode });
    expect(await codeOf(missing.send({ body: 'x' }))).toBe('ERR_STREAMS_NOT_FOUND');
    const key = ctx.server.keyPrefix();
    await ctx.redis.set(key, 'a string');
    const wrong = new Topic(ctx.redis, key, { create: true, sendMode });
    const results = await Promise.allSettled([wrong.send({ body: 'a' }), wrong.send({ body: 'b' })]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_STREAMS_WRONG_TYPE' });
      expect(String((r as PromiseRejectedResult).reason.message)).toMatch(/WRONGTYPE/);
    }
  });
});

describe('admin', () => {
  it('creates topics and groups where they should start, and reports them', async () => {
    const key = ctx.server.keyPrefix();
    expect(await topicInfo(ctx.redis, key)).toBeUndefined();
    expect(await groupInfo(ctx.redis, key)).toEqual([]);
    expect(await createTopic(ctx.redis, key)).toBe(true);
    expect(await createTopic(ctx.redis, key)).toBe(false);
    expect(await topicInfo(ctx.redis, key)).toMatchObject({ length: 0, firstId: undefined, groups: 0 });
    const topic = new Topic(ctx.redis, key);
    const first = await topic.send({ body: 'one' });
    await createGroup(ctx.redis, key, 'new-only'); // from $
    await createGroup(ctx.redis, key, 'history', { from: '0' });
    await createGroup(ctx.redis, key, 'after-first', { from: first });
    expect(await createGroup(ctx.redis, key, 'history', { from: '0' })).toBe(false);
    await topic.send({ body: 'two' });
    const groups = Object.fromEntries((await groupInfo(ctx.redis, key)).map((g) => [g.name, g]));
    expect(groups['new-only']?.lag).toBe(1);
    expect(groups.history?.lag).toBe(2);
    expect(groups['after-first']?.lag).toBe(1);
    expect(await topicInfo(ctx.redis, key)).toMatchObject({ length: 2, firstId: first, groups: 3 });
    expect(await deleteGroup(ctx.redis, key, 'history')).toBe(true);
    expect(await deleteGroup(ctx.redis, key, 'history')).toBe(false);
    expect(await deleteTopic(ctx.redis, key)).toBe(true);
    expect(await deleteGroup(ctx.redis, key, 'new-only')).toBe(false);
  });

  it('says what is wrong: a missing topic, a bad start, a key of another type', async () => {
    const key = ctx.server.keyPrefix();
    expect(await codeOf(createGroup(ctx.redis, key, 'g', { createTopic: false }))).toBe('ERR_STREAMS_NOT_FOUND');
    expect(await codeOf(createGroup(ctx.redis, key, 'g', { from: 'latest' }))).toBe('ERR_STREAMS_ARGUMENT');
    await ctx.redis.set(key, 'x');
    expect(await codeOf(createTopic(ctx.redis, key))).toBe('ERR_STREAMS_WRONG_TYPE');
    expect(await codeOf(topicInfo(ctx.redis, key))).toBe('ERR_STREAMS_WRONG_TYPE');
  });

  it('trims on request by length and by age', async () => {
    const key = ctx.server.keyPrefix();
    await ctx.redis.xadd(key, '1000-0', 'body', 'old');
    const topic = new Topic(ctx.redis, key);
    for (let i = 0; i < 20; i++) await topic.send({ body: `${i}` });
    expect(await trimTopic(ctx.redis, key, { maxAgeMs: 60_000, exact: true })).toBe(1);
    expect(await trimTopic(ctx.redis, key, { maxLen: 5, exact: true })).toBe(15);
    expect(await ctx.redis.xlen(key)).toBe(5);
    expect(await codeOf(trimTopic(ctx.redis, key, {}))).toBe('ERR_STREAMS_ARGUMENT');
  });
});
