// Redis Cluster: one stream per topic, the dead-letter stream in the topic's slot, scripts that
// route by key, and a topic whose slot moves to another master while messages flow.
import { type RedisCluster, startCluster } from '@redis-events/testkit';
import fc from 'fast-check';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupInfo, readDeadLetters, Subscription, Topic } from '../src/index.ts';
import { keySlot } from '../src/key-slot.ts';
import { bodies, consumeAll, eventually, receiveN } from './helpers.ts';

let cluster: RedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ masters: 3 });
  client = cluster.createClient();
});
afterAll(() => cluster.stop());

describe('on Redis Cluster', () => {
  it('computes the slots the servers compute, hash tags included', async () => {
    const key = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc
        .tuple(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }))
        .map(([a, b, c]) => `${a}{${b}}${c}`),
      fc.string({ unit: 'grapheme', maxLength: 6 }),
    );
    const keys = fc.sample(key, { numRuns: 300, seed: 42 });
    const node = cluster.masters[0];
    for (const k of keys) expect(keySlot(k)).toBe(Number(await node?.command('CLUSTER', 'KEYSLOT', k)));
  });

  it('sends, receives, nacks and dead-letters, with the dead-letter stream in the topic slot', async () => {
    for (const key of ['orders', '{shop}:orders']) {
      const topic = new Topic(client, key, { create: true });
      const subs = [0, 1].map(
        (i) => new Subscription(client, { topic: key, group: 'g', consumer: `c${i}`, maxDeliveries: 1 }),
      );
      await Promise.all(subs.map((s) => s.ready()));
      expect(await cluster.keySlot(subs[0]?.deadLetterKey as string)).toBe(await cluster.keySlot(key));
      const all = bodies(200);
      await Promise.all(all.map((b) => topic.send({ body: b })));
      expect((await consumeAll(subs, new Set(all))).size).toBe(200);
      await topic.send({ body: 'bad' });
      const [m] = await Promise.race(subs.map((s) => receiveN(s, 1)));
      await m?.nack(); // maxDeliveries 1: the next claim moves it to the dead letters
      await eventually(
        'the dead letter',
        async () => (await readDeadLetters(client, subs[0]?.deadLetterKey as string)).length === 1,
      );
      const [dead] = await readDeadLetters(client, subs[0]?.deadLetterKey as string);
      expect(dead).toMatchObject({ sourceId: m?.id, reason: 'max-deliveries', group: 'g' });
      expect((await groupInfo(client, key))[0]?.pending).toBe(0);
      await Promise.all([...subs.map((s) => s.shutdown({ timeoutMs: 0 })), topic.shutdown()]);
    }
  });

  it('rejects a dead-letter key in another slot, also under a keyPrefix', async () => {
    expect(() => new Subscription(client, { topic: 'orders', group: 'g', deadLetterKey: 'elsewhere' })).toThrow(
      /another cluster slot/,
    );
    const prefixed = cluster.createClient({ keyPrefix: 'app:' });
    expect(() => new Subscription(prefixed, { topic: 'orders', group: 'g' })).toThrow(/give the topic a hash tag/);
    const tagged = new Subscription(prefixed, { topic: '{orders}', group: 'g' });
    expect(tagged.deadLetterKey).toBe('{orders}:dead');
    await tagged.shutdown({ timeoutMs: 0 });
  });

  it('keeps delivering while the topic slot migrates to another master', async () => {
    const key = '{migrating}:orders';
    const topic = new Topic(client, key, { create: true, retry: { maxDelayMs: 100 } });
    const sub = new Subscription(client, { topic: key, group: 'g', blockMs: 100, retry: { maxDelayMs: 100 } });
    const failures: unknown[] = [];
    sub.on('failed', (e) => failures.push(e));
    await sub.ready();
    const all = bodies(600);
    const slot = await cluster.keySlot(key);
    const owner = await cluster.ownerOf(slot);
    const target = cluster.masters.find((m) => m !== owner);
    if (!target) throw new Error('no other master');
    // Consuming and producing run together, both awaited at once: a failure of either is
    // reported as it happens, never as an unhandled rejection of the other.
    const [seen] = await Promise.all([
      consumeAll([sub], new Set(all), 60_000),
      (async () => {
        await Promise.all(all.slice(0, 300).map((b) => topic.send({ body: b })));
        await Promise.all([cluster.moveSlot(slot, target), ...all.slice(300).map((b) => topic.send({ body: b }))]);
      })(),
    ]);
    expect(seen.size).toBe(600);
    expect(await cluster.ownerOf(slot)).toBe(target);
    expect(failures).toEqual([]);
    await sub.shutdown({ timeoutMs: 1000 });
    await topic.shutdown();
  });
});
