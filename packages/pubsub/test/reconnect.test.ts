// Faults against a real server: restarts, connections cut or frozen through the testkit proxy,
// the server dropping a subscriber over client-output-buffer-limit. Subscriptions come back
// before anything else, the gap is reported, and messages published after it arrive.
import { setTimeout as sleep } from 'node:timers/promises';
import { type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PubSubError } from '../src/errors.ts';
import type { Subscription, SubscriptionEvents } from '../src/subscription.ts';
import { keepPublishing, nextEvent, readMessages, readUntilGap, trackedClients, until } from './helpers.ts';

/** Records a subscription's events. */
function events(subscription: Subscription<string>) {
  const seen: { [K in keyof SubscriptionEvents]: SubscriptionEvents[K][0][] } = {
    disconnect: [],
    reconnecting: [],
    reconnect: [],
    gap: [],
    lost: [],
    end: [],
  };
  for (const name of Object.keys(seen) as (keyof SubscriptionEvents)[]) {
    (subscription.on as (event: string, listener: (info: unknown) => void) => unknown)(name, (info) => {
      (seen[name] as unknown[]).push(info);
    });
  }
  return seen;
}

describe.each([2, 3] as const)('RESP%i: faults', (protocol) => {
  let server: SpawnedRedis;
  let publisher: Redis;
  const proxies: TcpProxy[] = [];
  beforeAll(async () => {
    server = await spawnRedis();
    publisher = server.createClient();
  });
  afterAll(() => server.stop());
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  const client = trackedClients(() => ({ protocol })).client;

  async function proxy(): Promise<TcpProxy> {
    const p = await startProxy({ target: server });
    proxies.push(p);
    return p;
  }

  it('comes back after a server restart: every subscription restored, the gap reported, later messages received', async () => {
    const p = server.keyPrefix();
    const c = client({ url: server.url, reconnect: { initialDelay: 20, maxDelay: 200 } });
    const subscription = await c.subscribe(`${p}a`, `${p}b`);
    await subscription.psubscribe(`${p}p:*`);
    await subscription.ssubscribe(`${p}{x}1`, `${p}{x}2`, `${p}{y}1`);
    const seen = events(subscription);
    await publisher.publish(`${p}a`, 'before');
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'before' });

    await server.restart();
    const { gap, before } = await readUntilGap(subscription);
    expect(before).toEqual([]);
    expect(gap).toMatchObject({ kind: 'gap', reason: 'reconnect', dropped: 0 });
    expect([...gap.channels].sort()).toEqual([`${p}a`, `${p}b`]);
    expect(gap.patterns).toEqual([`${p}p:*`]);
    expect([...gap.shardChannels].sort()).toEqual([`${p}{x}1`, `${p}{x}2`, `${p}{y}1`]);
    expect(gap.until).toBeGreaterThanOrEqual(gap.since);
    expect(gap.cause).toBeInstanceOf(Error);
    // Restored before the gap was reported.
    const confirmed = subscription.confirmed();
    expect(confirmed.channels.sort()).toEqual([`${p}a`, `${p}b`]);
    expect(confirmed.patterns).toEqual([`${p}p:*`]);
    expect(confirmed.shardChannels.sort()).toEqual([`${p}{x}1`, `${p}{x}2`, `${p}{y}1`]);
    expect(seen.disconnect).toHaveLength(1);
    expect(seen.reconnect).toHaveLength(1);
    expect(seen.reconnect[0]).toMatchObject({ node: `127.0.0.1:${server.port}`, since: gap.since });
    expect(seen.gap).toEqual([expect.objectContaining({ reason: 'reconnect' })]);

    await publisher.publish(`${p}b`, 'after');
    await publisher.publish(`${p}p:1`, 'pattern after');
    await publisher.spublish(`${p}{y}1`, 'shard after');
    const { messages } = await readMessages(subscription, 3);
    expect(messages.map((m) => [m.kind, m.payload])).toEqual([
      ['message', 'after'],
      ['pmessage', 'pattern after'],
      ['smessage', 'shard after'],
    ]);
  });

  it('resubscribes before anything else, one SSUBSCRIBE per slot, then applies what changed during the outage', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const name = `order-${protocol}-${p.slice(2, 10)}`;
    const c = client({ port: px.port, name, reconnect: { initialDelay: 20, maxDelay: 100 } });
    const subscription = await c.subscribe(`${p}keep`, `${p}drop`);
    await subscription.psubscribe(`${p}pat:*`);
    await subscription.ssubscribe(`${p}{s1}a`, `${p}{s1}b`, `${p}{s2}a`);
    const monitor = await server.createClient().monitor();
    const seen: { client: string; args: string[] }[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ client: source, args }));
    await sleep(50);

    px.refuse(true);
    px.cut();
    await until(() => subscription.confirmed().channels.length === 0, 'the loss to be noticed');
    // Changes while disconnected wait for the resubscription.
    const added = subscription.subscribe(`${p}new`);
    const removed = subscription.unsubscribe(`${p}drop`);
    let settled = false;
    void Promise.all([added, removed]).then(() => {
      settled = true;
    });
    await sleep(150);
    expect(settled).toBe(false);
    px.refuse(false);
    await Promise.all([added, removed]);
    expect(subscription.confirmed().channels.sort()).toEqual([`${p}keep`, `${p}new`]);
    await readUntilGap(subscription);
    await until(() => seen.some((s) => s.args[0]?.toLowerCase() === 'subscribe'), 'MONITOR to show the resubscription');
    monitor.disconnect();

    // The new connection's commands after its handshake: channels, patterns, one SSUBSCRIBE per slot.
    const first = seen.find((s) => s.args[0]?.toLowerCase() === 'subscribe')?.client;
    const ours = seen
      .filter((s) => s.client === first && !['hello', 'client', 'auth'].includes(s.args[0]?.toLowerCase() ?? ''))
      .map((s) => [s.args[0]?.toLowerCase(), ...s.args.slice(1).sort()]);
    const restore = ours.slice(0, 4);
    expect(restore).toContainEqual(['subscribe', `${p}keep`, `${p}new`]);
    expect(restore).toContainEqual(['psubscribe', `${p}pat:*`]);
    expect(restore).toContainEqual(['ssubscribe', `${p}{s1}a`, `${p}{s1}b`]);
    expect(restore).toContainEqual(['ssubscribe', `${p}{s2}a`]);
    expect(ours.slice(4).filter((c) => c[0] !== 'ping')).toEqual([]);
  });

  it('times out a subscribe while the server is unreachable; it stays asked and takes effect when the server is back', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const c = client({ port: px.port, commandTimeout: 200, reconnect: { initialDelay: 20, maxDelay: 50 } });
    const subscription = await c.subscribe(`${p}a`);
    px.refuse(true);
    px.cut();
    const error = await subscription.subscribe(`${p}b`).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_TIMEOUT' });
    expect((error as Error).message).toMatch(/stays asked/);
    expect(subscription.channels.sort()).toEqual([`${p}a`, `${p}b`]);
    px.refuse(false);
    await readUntilGap(subscription);
    expect(subscription.confirmed().channels.sort()).toEqual([`${p}a`, `${p}b`]);
    await publisher.publish(`${p}b`, 'late but here');
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'late but here' });
  });

  it('reports a cut connection as a gap; every message published after the gap arrives, in order', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const c = client({ port: px.port, reconnect: { initialDelay: 10, maxDelay: 50 } });
    const subscription = await c.subscribe(`${p}seq`);
    const seen = events(subscription);
    const stream = keepPublishing((n) => publisher.publish(`${p}seq`, String(n)), 2);
    await readMessages(subscription, 20);
    px.cut();
    const { gap } = await readUntilGap(subscription);
    expect(gap.reason).toBe('reconnect');
    expect(gap.channels).toEqual([`${p}seq`]);
    const { messages } = await readMessages(subscription, 20);
    await stream.stop();
    const last = stream.count - 1;
    // After the restore point nothing is lost: the numbers run on to the last one published.
    const after = messages.map((m) => Number(m.payload));
    while (after[after.length - 1] !== last) {
      const event = await nextEvent(subscription);
      if (!event.done && event.value.kind !== 'gap') after.push(Number(event.value.payload));
    }
    expect(after).toEqual(Array.from({ length: after.length }, (_, i) => (after[0] as number) + i));
    expect(seen.disconnect).toHaveLength(1);
    expect(seen.reconnect).toHaveLength(1);
  });

  it('replaces a frozen connection when the health-check PING times out', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const c = client({
      port: px.port,
      healthCheckInterval: 50,
      healthCheckTimeout: 200,
      connectTimeout: 500,
      reconnect: { initialDelay: 20, maxDelay: 100 },
    });
    const subscription = await c.subscribe(`${p}frozen`);
    const seen = events(subscription);
    px.pause();
    await until(() => seen.disconnect.length > 0, 'the health check to give up on the frozen connection');
    const cause = seen.disconnect[0]?.cause;
    expect(cause).toBeInstanceOf(PubSubError);
    expect(cause).toMatchObject({ code: 'ERR_PUBSUB_HEALTH_CHECK' });
    expect(cause?.message).toMatch(/did not answer PING within 200 ms/);
    px.resume();
    const { gap } = await readUntilGap(subscription);
    expect(gap.cause).toMatchObject({ code: 'ERR_PUBSUB_HEALTH_CHECK' });
    await publisher.publish(`${p}frozen`, 'thawed');
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'thawed' });
  });

  it('reconnects with capped exponential backoff and jitter while the server is unreachable', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const c = client({ port: px.port, connectTimeout: 500 });
    const subscription = await c.subscribe(`${p}backoff`);
    const seen = events(subscription);
    px.refuse(true);
    px.cut();
    await until(() => seen.reconnecting.length >= 5, 'five reconnect attempts', 15_000);
    px.refuse(false);
    await readUntilGap(subscription);
    const delays = seen.reconnecting.slice(0, 5).map((r) => [r.attempt, r.delay]);
    // Defaults: 50 ms doubling, capped at 2 s, each delay between half and all of that.
    for (const [attempt, delay] of delays as [number, number][]) {
      const full = Math.min(2000, 50 * 2 ** (attempt - 1));
      expect(delay).toBeGreaterThanOrEqual(full / 2);
      expect(delay).toBeLessThanOrEqual(full);
    }
    expect(delays.map(([attempt]) => attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it('ends the subscription with ERR_PUBSUB_CONNECTION after the buffered messages when reconnect is off', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const c = client({ port: px.port, reconnect: false });
    const subscription = await c.subscribe(`${p}once`);
    const seen = events(subscription);
    await publisher.publish(`${p}once`, 'kept');
    await until(() => subscription.buffered === 1, 'the message to be buffered');
    px.cut();
    await until(() => seen.end.length === 1, 'the end');
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'kept' });
    const error = await subscription.next().catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    expect(await subscription.next()).toEqual({ done: true, value: undefined });
    expect(subscription.closed).toBe(true);
    await expect(subscription.subscribe(`${p}more`)).rejects.toMatchObject({ code: 'ERR_PUBSUB_CLOSED' });
  });

  it('reconnects and reports the gap when the server drops it for client-output-buffer-limit', async () => {
    const p = server.keyPrefix();
    const px = await proxy();
    const previous = ((await server.command('CONFIG', 'GET', 'client-output-buffer-limit')) as string[])[1] as string;
    await server.command('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 64kb 32kb 1');
    try {
      const c = client({ port: px.port, reconnect: { initialDelay: 20, maxDelay: 100 } });
      const subscription = await c.subscribe(`${p}flood`);
      const seen = events(subscription);
      const before = Number((await server.info('stats')).client_output_buffer_limit_disconnections ?? 0);
      // The proxy stops reading: the server's output buffer for us grows past the limit.
      px.pause();
      const payload = 'x'.repeat(1024);
      for (let round = 0; round < 20; round++) {
        const pipeline = publisher.pipeline();
        for (let i = 0; i < 500; i++) pipeline.publish(`${p}flood`, payload);
        await pipeline.exec();
        const info = await server.info('stats');
        if (Number(info.client_output_buffer_limit_disconnections ?? 0) > before) break;
        const numsub = (await server.command('PUBSUB', 'NUMSUB', `${p}flood`)) as [string, number];
        if (Number(numsub[1]) === 0) break;
      }
      const numsub = (await server.command('PUBSUB', 'NUMSUB', `${p}flood`)) as [string, number];
      expect(Number(numsub[1])).toBe(0); // the server dropped us
      px.resume();
      const { gap } = await readUntilGap(subscription, 20_000);
      expect(gap.reason).toBe('reconnect');
      expect(seen.disconnect).toHaveLength(1);
      await publisher.publish(`${p}flood`, 'after the drop');
      for (;;) {
        const event = await nextEvent(subscription);
        if (!event.done && event.value.kind === 'message' && event.value.payload === 'after the drop') break;
      }
    } finally {
      await server.command('CONFIG', 'SET', 'client-output-buffer-limit', previous);
    }
  });
});
