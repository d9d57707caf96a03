// The census of consumer groups (redis-events:streams-driver:groups): live subscriptions answer
// with a probe that reads their group's backlog on demand, and leave at shutdown.
import { channel } from 'node:diagnostics_channel';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUPS_CHANNEL, type GroupCensus, type GroupProbe, Subscription, Topic } from '../src/index.ts';
import { receiveN } from './helpers.ts';

let server: SpawnedRedis;
let redis: Redis;

beforeAll(async () => {
  server = await spawnRedis();
  redis = server.createClient();
});
afterAll(() => server.stop());

function census(topic: string): GroupProbe[] {
  const message: GroupCensus = { groups: [] };
  channel(GROUPS_CHANNEL).publish(message);
  return message.groups.filter((probe) => probe.topic === topic);
}

describe('the consumer-group census', () => {
  it('a live subscription answers with a probe reading what XINFO and XPENDING say; it leaves at shutdown', async () => {
    const topic = 'census:orders';
    const subscription = new Subscription(redis, { topic, group: 'billing', consumer: 'c1', prefetch: 1 });
    await subscription.ready();
    const [probe] = census(topic);
    expect(probe).toMatchObject({
      topic,
      group: 'billing',
      consumer: 'c1',
      serverAddress: '127.0.0.1',
      serverPort: server.port,
    });
    expect(await probe?.read()).toMatchObject({
      lag: 0,
      pending: 0,
      oldestPendingId: undefined,
      nextUndeliveredId: undefined,
    });

    const sender = new Topic(redis, topic);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await sender.send({ body: `m${i}` }));
    const [held] = await receiveN(subscription, 1);
    const state = await probe?.read();
    const [row] = (await redis.call('XINFO', 'GROUPS', topic)) as unknown[][];
    const info = Object.fromEntries(
      Array.from({ length: (row?.length ?? 0) / 2 }, (_, i) => [row?.[2 * i], row?.[2 * i + 1]]),
    );
    expect(state?.lag).toBe(info.lag);
    expect(state?.pending).toBe(info.pending);
    expect(state?.lastDeliveredId).toBe(info['last-delivered-id']);
    expect(state?.oldestPendingId).toBe(held?.id);
    // The first entry the group has not seen follows the last delivered one.
    expect(state?.nextUndeliveredId).toBe(ids[ids.indexOf(info['last-delivered-id'] as string) + 1]);

    // The held message is abandoned (handed back to the group): shutdown says so.
    await expect(subscription.shutdown({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_STREAMS_ABANDONED' });
    await sender.shutdown();
    expect(census(topic)).toEqual([]);
  });

  it('a probe reads undefined once the stream or the group is gone', async () => {
    const topic = 'census:gone';
    const subscription = new Subscription(redis, { topic, group: 'g', consumer: 'c1' });
    await subscription.ready();
    const [probe] = census(topic);
    // Shut down first: a live subscription would create the group again.
    await subscription.shutdown({ timeoutMs: 0 });
    await redis.xgroup('CREATE', topic, 'other', '$');
    await redis.xgroup('DESTROY', topic, 'g');
    expect(await probe?.read()).toBeUndefined();
    await redis.del(topic);
    expect(await probe?.read()).toBeUndefined();
  });
});
