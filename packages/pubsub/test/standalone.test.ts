// Subscriptions against a real standalone server, in RESP2 and RESP3.
import { setTimeout as sleep } from 'node:timers/promises';
import { type SpawnedRedis, spawnRedis, startProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPubSubClient } from '../src/client.ts';
import { PubSubError } from '../src/errors.ts';
import { nextEvent, readMessages, trackedClients, until } from './helpers.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

/** Subscriber connections of this server, from CLIENT LIST. */
async function clientList(): Promise<Record<string, string>[]> {
  const text = (await server.command('CLIENT', 'LIST')) as string;
  return text
    .trim()
    .split('\n')
    .map((line) => Object.fromEntries(line.split(' ').map((kv) => kv.split('=', 2) as [string, string])));
}

async function numsub(channel: string): Promise<number> {
  const reply = (await server.command('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

describe.each([2, 3] as const)('RESP%i on a standalone server', (protocol) => {
  const clients = trackedClients(() => ({ url: server.url, protocol }));
  const client = clients.client;

  it('receives what is published to channels, patterns and shard channels, in order', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = await c.subscribe(`${p}a`, `${p}b`);
    await subscription.psubscribe(`${p}p:*`);
    await subscription.ssubscribe(`${p}s`);
    expect(await c.publish(`${p}a`, 'one')).toBe(1);
    expect(await c.publish(`${p}p:x`, 'two')).toBe(1);
    expect(await c.publish(`${p}b`, 'three')).toBe(1);
    expect(await c.spublish(`${p}s`, 'four')).toBe(1);
    const { messages, gaps } = await readMessages(subscription, 4);
    expect(gaps).toEqual([]);
    expect(messages).toEqual([
      { kind: 'message', channel: `${p}a`, pattern: undefined, payload: 'one' },
      { kind: 'pmessage', channel: `${p}p:x`, pattern: `${p}p:*`, payload: 'two' },
      { kind: 'message', channel: `${p}b`, pattern: undefined, payload: 'three' },
      { kind: 'smessage', channel: `${p}s`, pattern: undefined, payload: 'four' },
    ]);
  });

  it('keeps 10 000 messages in order, and delivers payloads as Buffers on request, binary safe', async () => {
    const p = server.keyPrefix();
    const c = clients.buffers();
    const subscription = await c.subscribe(`${p}bin`);
    const binary = Buffer.from([0, 255, 13, 10, 36, 42, 0xc3]);
    await c.publish(`${p}bin`, binary);
    const first = await nextEvent(subscription);
    expect(first.value).toMatchObject({ kind: 'message', channel: `${p}bin` });
    expect(Buffer.isBuffer((first.value as { payload: Buffer }).payload)).toBe(true);
    expect((first.value as { payload: Buffer }).payload.equals(binary)).toBe(true);
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => c.publish(`${p}bin`, `m${i}`)));
    const { messages } = await readMessages(subscription, 10_000);
    expect(messages.map((m) => m.payload.toString())).toEqual(Array.from({ length: 10_000 }, (_, i) => `m${i}`));
  });

  it('holds each subscription on its own connection, with the client name', async () => {
    const p = server.keyPrefix();
    const name = `pubsub-test-${protocol}-${p.slice(2, 8)}`;
    const c = client({ name });
    const one = await c.subscribe(`${p}x`);
    const two = await c.psubscribe(`${p}y*`);
    await c.publish(`${p}x`, 'hi');
    const mine = (await clientList()).filter((entry) => entry.name === name);
    // Two subscriber connections and the command connection, each named.
    expect(mine).toHaveLength(3);
    expect(mine.filter((e) => e.sub === '1' && e.psub === '0')).toHaveLength(1);
    expect(mine.filter((e) => e.psub === '1' && e.sub === '0')).toHaveLength(1);
    expect(mine.filter((e) => e.sub === '0' && e.psub === '0' && e.cmd === 'publish')).toHaveLength(1);
    expect(mine.every((e) => e.resp === undefined || e.resp === String(protocol))).toBe(true);
    await one.close();
    await two.close();
  });

  it('tracks what was asked apart from what the server confirmed', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = c.createSubscription();
    const pending = subscription.subscribe(`${p}a`, `${p}b`);
    expect(subscription.channels).toEqual([`${p}a`, `${p}b`]);
    expect(subscription.confirmed().channels).toEqual([]);
    await pending;
    expect(subscription.confirmed().channels.sort()).toEqual([`${p}a`, `${p}b`]);
    const leaving = subscription.unsubscribe(`${p}a`);
    expect(subscription.channels).toEqual([`${p}b`]);
    expect(subscription.confirmed().channels.sort()).toEqual([`${p}a`, `${p}b`]);
    await leaving;
    expect(subscription.confirmed().channels).toEqual([`${p}b`]);
    expect(await numsub(`${p}a`)).toBe(0);
    expect(await numsub(`${p}b`)).toBe(1);
  });

  it('settles 100 concurrent subscribe and unsubscribe tasks, each once the server confirmed it', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = c.createSubscription();
    const shared = `${p}shared`;
    const settled: string[] = [];
    const tasks = Array.from({ length: 100 }, async (_, i) => {
      const own = `${p}own:${i}`;
      // Channels of this task alone: each step's effect is visible the moment it resolves.
      await subscription.subscribe(own);
      expect(subscription.confirmed().channels).toContain(own);
      await subscription.psubscribe(`${own}:*`);
      expect(subscription.confirmed().patterns).toContain(`${own}:*`);
      await subscription.unsubscribe(own);
      expect(subscription.confirmed().channels).not.toContain(own);
      await subscription.punsubscribe(`${own}:*`);
      expect(subscription.confirmed().patterns).not.toContain(`${own}:*`);
      // A channel every task fights over: the calls settle, the last one wins.
      if (i % 2 === 0) await subscription.subscribe(shared);
      else await subscription.unsubscribe(shared);
      if (i % 3 === 0) await subscription.subscribe(own);
      settled.push(own);
    });
    await Promise.all(tasks);
    expect(settled).toHaveLength(100);
    const kept = Array.from({ length: 100 }, (_, i) => i)
      .filter((i) => i % 3 === 0)
      .map((i) => `${p}own:${i}`);
    // What was asked is what the server has.
    expect(subscription.channels.filter((ch) => ch !== shared).sort()).toEqual([...kept].sort());
    const confirmed = subscription.confirmed();
    expect(confirmed.channels.sort()).toEqual(subscription.channels.sort());
    expect(confirmed.patterns).toEqual([]);
    for (const channel of kept.slice(0, 5)) expect(await numsub(channel)).toBe(1);
    expect(await numsub(shared)).toBe(subscription.channels.includes(shared) ? 1 : 0);
    await c.publish(kept[0] as string, 'still here');
    expect((await nextEvent(subscription)).value).toMatchObject({ channel: kept[0], payload: 'still here' });
  });

  it('settles an argument-less unsubscribe against the count the server reports', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = await c.subscribe(`${p}a`, `${p}b`, `${p}c`);
    await subscription.psubscribe(`${p}p1:*`, `${p}p2:*`);
    // Patterns remain: the last confirmation reports 2, not 0.
    await subscription.unsubscribe();
    expect(subscription.confirmed().channels).toEqual([]);
    expect(subscription.confirmed().patterns.sort()).toEqual([`${p}p1:*`, `${p}p2:*`]);
    // Nothing left to unsubscribe: one confirmation with a null channel.
    await subscription.unsubscribe();
    // Pipelined with the next command, whose confirmation must not be taken for this one's.
    await Promise.all([subscription.punsubscribe(), subscription.subscribe(`${p}after`)]);
    expect(subscription.confirmed()).toMatchObject({ channels: [`${p}after`], patterns: [] });
    await Promise.all([subscription.unsubscribe(), subscription.unsubscribe(), subscription.punsubscribe()]);
    expect(subscription.confirmed()).toMatchObject({ channels: [], patterns: [] });
    await subscription.ssubscribe(`${p}s1`, `${p}s2`);
    await subscription.subscribe(`${p}d`);
    await subscription.sunsubscribe();
    expect(subscription.confirmed()).toMatchObject({ channels: [`${p}d`], shardChannels: [] });
    await subscription.sunsubscribe();
    await subscription.unsubscribe();
    expect(subscription.confirmed()).toMatchObject({ channels: [], patterns: [], shardChannels: [] });
    // Out of subscriber mode, an argument-less unsubscribe still settles (Valkey 8.0 answers NOSUB).
    await subscription.unsubscribe();
    await subscription.punsubscribe();
    await subscription.sunsubscribe(`${p}never`);
  });

  it('stops delivering a channel once unsubscribe resolved while messages flow', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = await c.subscribe(`${p}flow`, `${p}other`);
    let published = 0;
    let running = true;
    const publisher = (async () => {
      while (running) {
        await Promise.all(Array.from({ length: 20 }, () => c.publish(`${p}flow`, String(published++))));
        await sleep(1);
      }
    })();
    const { messages } = await readMessages(subscription, 200);
    await subscription.unsubscribe(`${p}flow`);
    expect(await numsub(`${p}flow`)).toBe(0);
    // Drain what arrived before the confirmation, in order and without holes.
    const seen = messages.map((m) => Number(m.payload));
    while (subscription.buffered > 0) {
      const event = await nextEvent(subscription);
      if (!event.done && event.value.kind !== 'gap') seen.push(Number(event.value.payload));
    }
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i));
    await sleep(100);
    expect(subscription.buffered).toBe(0);
    running = false;
    await publisher;
    expect(published).toBeGreaterThan(seen.length);
    await c.publish(`${p}other`, 'still subscribed');
    expect((await nextEvent(subscription)).value).toMatchObject({ channel: `${p}other`, payload: 'still subscribed' });
  });

  it('ends a waiting consumer at close(), and closes the subscription when a for-await loop breaks', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = await c.subscribe(`${p}w`);
    const waiting = subscription.next();
    await subscription.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(await subscription.next()).toEqual({ done: true, value: undefined });
    expect(await numsub(`${p}w`)).toBe(0);
    await expect(subscription.subscribe(`${p}x`)).rejects.toMatchObject({ code: 'ERR_PUBSUB_CLOSED' });

    const looped = await c.subscribe(`${p}loop`);
    await c.publish(`${p}loop`, 'one');
    const received: string[] = [];
    for await (const event of looped) {
      if (event.kind !== 'gap') received.push(event.payload as string);
      break;
    }
    expect(received).toEqual(['one']);
    expect(looped.closed).toBe(true);
    expect(await numsub(`${p}loop`)).toBe(0);
    expect(c.subscriptions).toEqual([]);
  });

  it('closes every subscription with the client', async () => {
    const p = server.keyPrefix();
    const c = client();
    const a = await c.subscribe(`${p}a`);
    const b = await c.psubscribe(`${p}b*`);
    const waiting = [a.next(), b.next()];
    await c.close();
    expect(await Promise.all(waiting)).toEqual([
      { done: true, value: undefined },
      { done: true, value: undefined },
    ]);
    expect(await numsub(`${p}a`)).toBe(0);
    await expect(c.publish(`${p}a`, 'x')).rejects.toMatchObject({ code: 'ERR_PUBSUB_CLOSED' });
    await expect(c.subscribe(`${p}a`)).rejects.toMatchObject({ code: 'ERR_PUBSUB_CLOSED' });
  });

  it('answers PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS and SHARDNUMSUB', async () => {
    const p = server.keyPrefix();
    const c = client();
    const subscription = await c.subscribe(`${p}one`, `${p}two`);
    const other = await c.subscribe(`${p}two`);
    await subscription.psubscribe(`${p}pat*`);
    expect((await c.pubSubChannels(`${p}*`)).sort()).toEqual([`${p}one`, `${p}two`]);
    expect(await c.pubSubNumSub(`${p}one`, `${p}two`, `${p}none`)).toEqual(
      new Map([
        [`${p}one`, 1],
        [`${p}two`, 2],
        [`${p}none`, 0],
      ]),
    );
    expect(await c.pubSubNumPat()).toBeGreaterThanOrEqual(1);
    await other.close();
    await subscription.ssubscribe(`${p}shard`);
    expect(await c.pubSubShardChannels(`${p}*`)).toEqual([`${p}shard`]);
    expect(await c.pubSubShardNumSub(`${p}shard`, `${p}none`)).toEqual(
      new Map([
        [`${p}shard`, 1],
        [`${p}none`, 0],
      ]),
    );
  });

  it('health-checks an idle connection with PING', async () => {
    const p = server.keyPrefix();
    const name = `health-${protocol}-${p.slice(2, 8)}`;
    const c = client({ name, healthCheckInterval: 50, healthCheckTimeout: 1000 });
    const subscription = await c.subscribe(`${p}quiet`);
    await until(
      async () => (await clientList()).some((e) => e.name === name && e.sub === '1' && e.cmd === 'ping'),
      'a PING on the idle subscriber connection',
    );
    // PONG never reaches the iterator; messages still flow.
    await c.publish(`${p}quiet`, 'after pings');
    expect((await nextEvent(subscription)).value).toMatchObject({ kind: 'message', payload: 'after pings' });
  });

  it('refuses bad arguments with ERR_PUBSUB_ARGUMENT', async () => {
    const c = client();
    const subscription = c.createSubscription();
    await expect(subscription.subscribe()).rejects.toMatchObject({ code: 'ERR_PUBSUB_ARGUMENT' });
    await expect(subscription.subscribe(42 as unknown as string)).rejects.toMatchObject({
      code: 'ERR_PUBSUB_ARGUMENT',
    });
    await expect(c.publish('ch', { a: 1 } as unknown as string)).rejects.toThrow(/JSON.stringify/);
    await expect(c.publish(undefined as unknown as string, 'x')).rejects.toBeInstanceOf(PubSubError);
    expect(() => c.createSubscription({ highWaterMark: 0 })).toThrow(PubSubError);
    expect(() => c.createSubscription({ overflow: 'block' as never })).toThrow(/overflow must be/);
    expect(() => createPubSubClient({ url: 'http://nope' })).toThrow(PubSubError);
    expect(() => createPubSubClient({ url: 'redis://u:hunter2@host:x' })).toThrow(/\*\*\*/);
    expect(() => createPubSubClient({ protocol: 4 as never })).toThrow(/protocol must be 2 or 3/);
    expect(() => createPubSubClient({ reconnect: { factor: 0 } })).toThrow(PubSubError);
  });
});

describe('connection failures', () => {
  it('withdraws what a call asked when its connection could never be opened', async () => {
    await using proxy = await startProxy({ target: server });
    await using c = createPubSubClient({ port: proxy.port, connectTimeout: 2000 });
    const subscription = c.createSubscription();
    proxy.refuse(true);
    await expect(subscription.subscribe('never')).rejects.toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    await expect(subscription.ssubscribe('never:shard')).rejects.toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    expect(subscription.channels).toEqual([]);
    expect(subscription.shardChannels).toEqual([]);
    proxy.refuse(false);
    await subscription.subscribe('later');
    expect(subscription.confirmed()).toEqual({ channels: ['later'], patterns: [], shardChannels: [] });
    expect(await numsub('never')).toBe(0);
  });

  it('rejects the first subscribe with ERR_PUBSUB_CONNECTION when nothing listens, and publish too', async () => {
    const c = createPubSubClient({ url: 'redis://127.0.0.1:1', connectTimeout: 2000 });
    const error = await c.subscribe('x').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PubSubError);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    expect((error as Error).message).toMatch(/127\.0\.0\.1:1/);
    expect(c.subscriptions).toEqual([]);
    await expect(c.publish('x', 'y')).rejects.toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    await c.close();
  });
});
