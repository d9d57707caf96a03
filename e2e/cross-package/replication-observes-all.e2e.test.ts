// The replication listener observes everything event-store, streams-driver and databroker write,
// each in its own database: replaying the observed commands, in order, on an empty server gives
// the dataset a real replica of the same master holds (every key's content and expiry), so no
// write was missed, reordered, or put in the wrong database.
import { DataBroker } from '@redis-events/databroker';
import { Mediator, RedisEventStore } from '@redis-events/event-store';
import { type CommandEvent, ReplicaListener } from '@redis-events/replication';
import { Subscription, Topic } from '@redis-events/streams-driver';
import { type ReplicaSet, type SpawnedRedis, spawnRedis, startReplicaSet } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A key's content: DUMP for most types; for a stream its entries, groups and pending entries
 * without the times a server keeps locally (a consumer's seen-time is the applying server's clock,
 * on a real replica too).
 */
async function snapshotOf(client: Redis, key: string): Promise<unknown> {
  if ((await client.type(key)) !== 'stream') return client.dumpBuffer(key);
  const groups = (await client.call('XINFO', 'GROUPS', key)) as unknown[][];
  const pending: unknown[] = [];
  for (const group of groups) {
    const name = group[1] as string;
    const entries = (await client.call('XPENDING', key, name, '-', '+', 10_000)) as [string, string, number, number][];
    pending.push(
      name,
      entries.map(([id, consumer, , deliveries]) => [id, consumer, deliveries]),
    );
  }
  return { entries: await client.xrange(key, '-', '+'), groups, pending };
}

describe('the replication listener sees every write of the other packages', () => {
  let set: ReplicaSet;
  let master: SpawnedRedis;
  let replica: SpawnedRedis;
  let replay: SpawnedRedis;
  beforeAll(async () => {
    set = await startReplicaSet({ replicas: 1 });
    master = set.master;
    replica = set.replicas[0] as SpawnedRedis;
    replay = await spawnRedis();
  });
  afterAll(async () => {
    await set.stop();
    await replay.stop();
  });

  it('replays to the same dataset, database by database', async () => {
    const listener = new ReplicaListener({ url: master.url, discardRdb: true });
    const observed: CommandEvent[] = [];
    let ready: () => void = () => {};
    const streaming = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const listening = (async () => {
      for await (const event of listener) {
        if (event.kind === 'snapshot-done') ready();
        if (event.kind === 'command' && event.name !== 'PING' && event.name !== 'REPLCONF') observed.push(event);
      }
    })();
    await streaming;

    // event-store in db 2, streams-driver in db 0, databroker in db 5, all at once.
    const store = new RedisEventStore(master.createClient({ db: 2 }), { prefix: 'app:events' });
    const mediator = new Mediator<{ 'order.created': { id: number } }>();
    mediator.registerEventStore(store);
    const streamsClient = master.createClient({ db: 0 });
    const topic = new Topic(streamsClient, 'orders', { create: true });
    const subscription = new Subscription(master.createClient({ db: 0 }), {
      topic: 'orders',
      group: 'billing',
      consumer: 'c1',
    });
    await subscription.ready();
    const broker = new DataBroker(master.createClient({ db: 5 }), { name: 'sessions' });
    await Promise.all([
      (async () => {
        for (let i = 0; i < 40; i++) await mediator.publish({ name: 'order.created', payload: { id: i } });
        await store.clearEvents('order.created');
        for (let i = 40; i < 50; i++) await mediator.publish({ name: 'order.created', payload: { id: i } });
      })(),
      (async () => {
        for (let i = 0; i < 40; i++) await topic.send({ body: `order ${i}` });
      })(),
      (async () => {
        for (let got = 0; got < 40; got++) {
          const message = await subscription.receive();
          if (got % 3 === 0) await message.nack();
          else await message.ack();
        }
      })(),
      (async () => {
        for (let i = 0; i < 30; i++) await broker.put([{ type: 'session', id: `s${i % 7}`, data: { i } }]);
        await broker.put([{ type: 'session', id: 's1', deletedAt: new Date() }]);
        await broker.setOptions('session', { capacity: 4 });
        await broker.put([{ type: 'session', id: 's99', data: { last: true } }]);
      })(),
    ]);
    await subscription.shutdown();
    await topic.shutdown();
    await store.close();
    await broker.close();

    // Wait until the listener has everything the master wrote.
    const target = Number((await master.info('replication')).master_repl_offset);
    for (let i = 0; i < 200 && (observed.at(-1)?.offset ?? 0) < target; i++) {
      await master.command('SET', '__sync_marker__', String(i));
      await new Promise((r) => setTimeout(r, 25));
    }
    await master.command('DEL', '__sync_marker__');
    const last = Number((await master.info('replication')).master_repl_offset);
    for (let i = 0; i < 200 && (observed.at(-1)?.offset ?? 0) < last; i++) await new Promise((r) => setTimeout(r, 25));
    await listener.close();
    await listening;

    // Every package's writes were seen, in its own database.
    const dbsOf = (match: (e: CommandEvent) => boolean) => new Set(observed.filter(match).map((e) => e.db));
    expect(dbsOf((e) => e.args[0]?.toString().startsWith('app:events') ?? false)).toEqual(new Set([2]));
    expect(dbsOf((e) => e.args[0]?.toString() === 'orders')).toEqual(new Set([0]));
    expect(dbsOf((e) => e.args[0]?.toString().startsWith('{sessions}') ?? false)).toEqual(new Set([5]));
    for (const name of ['XADD', 'XACK', 'XCLAIM', 'HSET', 'ZADD', 'PEXPIREAT', 'MULTI', 'EXEC', 'SELECT']) {
      expect(observed.some((e) => e.name === name)).toBe(true);
    }

    // Replay on an empty server, on one connection, in order (SELECTs included).
    const replayer = replay.createClient();
    for (const event of observed) await replayer.call(event.name, ...event.args);
    // The replay must equal what a real replica of the master holds. DEBUG DIGEST ignores
    // consumer groups, so also compare every key (a stream with its groups and pending entries)
    // and its absolute expiry, database by database.
    await set.waitForSync();
    expect(await replay.command('DEBUG', 'DIGEST')).toBe(await master.command('DEBUG', 'DIGEST'));
    for (const db of [0, 2, 5]) {
      const a = replica.createClient({ db });
      const b = replay.createClient({ db });
      const keys = (await a.keys('*')).sort();
      expect(keys.length).toBeGreaterThan(0);
      expect((await b.keys('*')).sort()).toEqual(keys);
      for (const key of keys) {
        expect(await snapshotOf(b, key), `${key} in db ${db}`).toEqual(await snapshotOf(a, key));
        expect(await b.call('PEXPIRETIME', key)).toBe(await a.call('PEXPIRETIME', key));
      }
    }
  });
});
