// A streams-driver consumer group across a failover: the master dies, its replica is promoted
// (REPLICAOF NO ONE) and clients are redirected to it (the testkit proxy retargets and resets
// their connections). No message acknowledged before the failover is delivered again; no message
// sent and left unacknowledged is lost.
import { type Message, Subscription, Topic } from '@redis-events/streams-driver';
import { type ReplicaSet, startProxy, startReplicaSet, type TcpProxy } from '@redis-events/testkit';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('streams-driver across a failover', () => {
  let set: ReplicaSet;
  let proxy: TcpProxy;
  beforeAll(async () => {
    set = await startReplicaSet({ replicas: 1 });
    proxy = await startProxy({ target: set.master });
  });
  afterAll(async () => {
    await proxy.close();
    await set.stop();
  });

  it('keeps acked messages acked and unacked ones pending on the promoted replica', async () => {
    const options = { host: proxy.host, port: proxy.port, maxRetriesPerRequest: null } as RedisOptions;
    const producerClient = new Redis(options as never);
    const consumerClient = new Redis(options as never);
    for (const c of [producerClient, consumerClient]) c.on('error', () => {});
    const topic = new Topic(producerClient, 'orders', { create: true });
    const subscription = new Subscription(consumerClient, {
      topic: 'orders',
      group: 'billing',
      consumer: 'billing-1',
      ackDeadlineMs: 2_000,
      prefetch: 20,
    });
    await subscription.ready();

    const sent: string[] = [];
    for (let i = 0; i < 200; i++) sent.push(await topic.send({ body: `order ${i}` }));

    // Acknowledge the first 100 deliveries; hold 20 more without settling them.
    const deliveries = new Map<string, number>();
    const held: Message[] = [];
    const ackedBefore = new Set<string>();
    while (ackedBefore.size < 100) {
      const message = await subscription.receive();
      deliveries.set(message.id, (deliveries.get(message.id) ?? 0) + 1);
      await message.ack();
      ackedBefore.add(message.id);
    }
    while (held.length < 20) {
      const message = await subscription.receive();
      deliveries.set(message.id, (deliveries.get(message.id) ?? 0) + 1);
      held.push(message);
    }

    // The replica has everything the master acknowledged (as WAIT would ensure), then the
    // master dies and the replica takes over.
    await set.waitForSync();
    const oldMaster = set.master;
    const [replica] = set.replicas;
    if (!replica) throw new Error('no replica');
    const acceptedBefore = proxy.stats.accepted;
    await oldMaster.kill();
    await set.promote(replica, { demoteOldMaster: false });
    proxy.retarget(replica);

    // The held messages are settled on the new master; the rest keep flowing.
    for (const message of held) await message.ack();
    const ackedAfter = new Set(held.map((m) => m.id));
    const remaining = new Set(sent.filter((id) => !ackedBefore.has(id) && !ackedAfter.has(id)));
    while (remaining.size > 0) {
      const message = await subscription.receive({ signal: AbortSignal.timeout(20_000) });
      deliveries.set(message.id, (deliveries.get(message.id) ?? 0) + 1);
      expect(ackedBefore.has(message.id)).toBe(false); // never redelivered after its ack
      await message.ack();
      remaining.delete(message.id);
    }

    expect(proxy.stats.accepted).toBeGreaterThan(acceptedBefore); // the clients reconnected to the new master
    expect(new Set(deliveries.keys())).toEqual(new Set(sent)); // nothing lost
    for (const id of ackedBefore) expect(deliveries.get(id)).toBe(1);
    const pending = (await replica.command('XPENDING', 'orders', 'billing')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    expect((await replica.info('replication')).role).toBe('master');

    await subscription.shutdown();
    await topic.shutdown();
    producerClient.disconnect();
    consumerClient.disconnect();
  });
});
