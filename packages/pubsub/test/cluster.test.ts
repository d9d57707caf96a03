// Against a real Redis Cluster: shard channels at the master of their slot, classic channels
// from any node, slot migrations (the server's own SUNSUBSCRIBE, and MOVED), failover.
import { type RedisCluster, type SpawnedRedis, startCluster } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPubSubClient } from '../src/client.ts';
import { keySlot } from '../src/key-slot.ts';
import type { PubSubGap } from '../src/message-buffer.ts';
import type { PubSubMessage } from '../src/subscription.ts';
import { channelOn, nextEvent, readMessages, readUntilGap, trackedClients, until } from './helpers.ts';

async function shardSubscribers(node: SpawnedRedis, channel: string): Promise<number> {
  const reply = (await node.command('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3 });
});
afterAll(() => cluster.stop());

describe.each([2, 3] as const)('RESP%i on a Redis Cluster', (protocol) => {
  const clients = trackedClients(() => ({
    cluster: { nodes: [`127.0.0.1:${(cluster.masters[0] as SpawnedRedis).port}`] },
    protocol,
    reconnect: { initialDelay: 20, maxDelay: 200 },
  }));
  const client = clients.client;

  it('subscribes each shard channel at the master of its slot and receives what is published there', async () => {
    const p = `p${protocol}a`;
    const names = await Promise.all(cluster.masters.map((m) => channelOn(cluster, m, p)));
    const c = client();
    const subscription = await c.ssubscribe(...names);
    for (const [i, master] of cluster.masters.entries()) {
      for (const [j, name] of names.entries()) expect(await shardSubscribers(master, name)).toBe(i === j ? 1 : 0);
    }
    for (const name of names) expect(await c.spublish(name, `to ${name}`)).toBe(1);
    const { messages } = await readMessages(subscription, 3);
    expect(messages.map((m) => [m.kind, m.channel, m.payload])).toEqual(names.map((n) => ['smessage', n, `to ${n}`]));
    expect(subscription.confirmed().shardChannels.sort()).toEqual([...names].sort());
    expect(await c.pubSubShardNumSub(...names)).toEqual(new Map(names.map((n) => [n, 1])));
    expect((await c.pubSubShardChannels(`{${p}*`)).sort()).toEqual([...names].sort());
    await subscription.sunsubscribe(names[0] as string);
    expect(await shardSubscribers(cluster.masters[0] as SpawnedRedis, names[0] as string)).toBe(0);
    await subscription.sunsubscribe();
    expect(subscription.confirmed().shardChannels).toEqual([]);
  });

  it('receives channels and patterns published on any node', async () => {
    const p = `p${protocol}b:`;
    const c = client();
    const subscription = await c.subscribe(`${p}news`);
    await subscription.psubscribe(`${p}n*`);
    for (const [i, master] of cluster.masters.entries()) await master.createClient().publish(`${p}news`, `from ${i}`);
    await c.publish(`${p}news`, 'from the client');
    const { messages } = await readMessages(subscription, 8);
    // Messages from different nodes cross the cluster bus separately: their order is not kept.
    const byKind = (kind: string) =>
      messages
        .filter((m) => m.kind === kind)
        .map((m) => m.payload)
        .sort();
    expect(byKind('message')).toEqual(['from 0', 'from 1', 'from 2', 'from the client']);
    expect(byKind('pmessage')).toEqual(['from 0', 'from 1', 'from 2', 'from the client']);
    expect((await c.pubSubNumSub(`${p}news`)).get(`${p}news`)).toBe(1);
    expect(await c.pubSubChannels(`${p}*`)).toEqual([`${p}news`]);
    expect(await c.pubSubNumPat()).toBeGreaterThanOrEqual(1);
  });

  it('follows a slot migration: the server unsubscribes, the channels are subscribed at the new owner, a moved gap marks it', async () => {
    const source = cluster.masters[1] as SpawnedRedis;
    const target = cluster.masters[2] as SpawnedRedis;
    const tag = await channelOn(cluster, source, `p${protocol}c`);
    const names = [`${tag}:a`, `${tag}:b`];
    const c = client();
    const subscription = await c.ssubscribe(...names);
    const gaps: PubSubGap[] = [];
    subscription.on('gap', (gap) => gaps.push(gap));
    await c.spublish(names[0] as string, 'before');
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'before' });

    await cluster.moveSlot(keySlot(tag), target);
    const { gap, before } = await readUntilGap(subscription);
    expect(before).toEqual([]);
    expect(gap).toMatchObject({ kind: 'gap', reason: 'moved', channels: [], patterns: [] });
    expect([...gap.shardChannels].sort()).toEqual(names);
    expect(gap.cause?.message).toMatch(/slot moved/);
    expect(gaps).toEqual([expect.objectContaining({ reason: 'moved' })]);
    for (const name of names) {
      expect(await shardSubscribers(target, name)).toBe(1);
      expect(await shardSubscribers(source, name)).toBe(0);
    }
    expect(subscription.confirmed().shardChannels.sort()).toEqual(names);
    expect(await c.spublish(names[1] as string, 'after')).toBe(1);
    expect((await nextEvent(subscription)).value).toMatchObject({
      kind: 'smessage',
      channel: names[1],
      payload: 'after',
    });
  });

  it('follows MOVED when its slot map is stale, for SSUBSCRIBE and SPUBLISH', async () => {
    const source = cluster.masters[0] as SpawnedRedis;
    const target = cluster.masters[1] as SpawnedRedis;
    const c = client();
    const tag = await channelOn(cluster, source, `p${protocol}d`);
    const warm = await c.ssubscribe(await channelOn(cluster, target, `p${protocol}w`)); // loads the slot map
    await cluster.moveSlot(keySlot(tag), target); // unseen by the client: nothing of it was subscribed
    await warm.ssubscribe(tag);
    expect(await shardSubscribers(target, tag)).toBe(1);
    expect(await shardSubscribers(source, tag)).toBe(0);
    const stale = client(); // a second client with the old map for SPUBLISH
    expect(await stale.spublish(tag, 'redirected')).toBe(1);
    const events: unknown[] = [];
    for (;;) {
      const event = (await nextEvent(warm)).value as PubSubMessage;
      events.push(event);
      if (event.kind === 'smessage') break;
    }
    expect(events.at(-1)).toMatchObject({ channel: tag, payload: 'redirected' });
  });

  it('refuses a standalone client on a cluster node shard channels it does not own, saying what to do', async () => {
    const node = cluster.masters[0] as SpawnedRedis;
    const elsewhere = await channelOn(cluster, cluster.masters[1] as SpawnedRedis, `p${protocol}e`);
    const c = client({ cluster: undefined, url: `redis://127.0.0.1:${node.port}` });
    const subscription = await c.subscribe('classic-ok');
    const error = await subscription.ssubscribe(elsewhere).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_CLUSTER' });
    expect((error as Error).message).toMatch(/cluster: true/);
    expect(subscription.shardChannels).toEqual([]);
  });
});

describe('failover', () => {
  let failing: RedisCluster;
  beforeAll(async () => {
    failing = await startCluster({ masters: 3, replicasPerMaster: 1 });
  });
  afterAll(() => failing.stop());

  it('moves shard channels to the promoted replica and channels to a live node; later messages arrive', async () => {
    const victim = failing.masters[0] as SpawnedRedis;
    const name = await channelOn(failing, victim, 'f');
    const seed = failing.masters[1] as SpawnedRedis;
    await using c = createPubSubClient({
      cluster: { nodes: [`127.0.0.1:${seed.port}`, `127.0.0.1:${victim.port}`] },
      reconnect: { initialDelay: 50, maxDelay: 500 },
      connectTimeout: 1000,
    });
    const subscription = await c.ssubscribe(name);
    await subscription.subscribe('f:classic');
    await victim.kill();
    // The shard channel's gap comes once it is subscribed at the promoted replica.
    const gaps: PubSubGap[] = [];
    await until(
      async () => {
        const event = await nextEvent(subscription, 1000).catch(() => undefined);
        if (event?.value?.kind === 'gap') gaps.push(event.value);
        return gaps.some((g) => g.shardChannels.includes(name));
      },
      'the shard channel to come back after the failover',
      30_000,
    );
    expect(gaps.find((g) => g.shardChannels.includes(name))).toMatchObject({ reason: 'reconnect' });
    const owner = await failing.ownerOf(keySlot(name));
    expect(owner).not.toBe(victim);
    expect(await shardSubscribers(owner, name)).toBe(1);
    expect(await c.spublish(name, 'after failover')).toBe(1);
    // The channel's connection may have been on the dead master too: publish until it is back.
    const live = (failing.masters[2] as SpawnedRedis).createClient();
    const received = new Set<string>();
    await until(
      async () => {
        await live.publish('f:classic', 'classic after failover');
        const event = await nextEvent(subscription, 200).catch(() => undefined);
        if (event?.value?.kind !== 'gap' && event?.value) received.add(event.value.payload);
        return received.has('after failover') && received.has('classic after failover');
      },
      'messages after the failover',
      20_000,
    );
  });
});
