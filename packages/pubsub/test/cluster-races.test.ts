// Overlapping ssubscribe / sunsubscribe calls on a real Redis Cluster: whatever the interleaving,
// once the calls settled, what the server has = what the client says it confirmed = what was
// asked last. Also while the slot of some of the channels moves to another master.
import { setImmediate as tick } from 'node:timers/promises';
import { exponentialBackoff, ReplyError } from '@redis-events/resp';
import { type RedisCluster, type SpawnedRedis, startCluster, startProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPubSubClient } from '../src/client.ts';
import { keySlot } from '../src/key-slot.ts';
import { SubscriberConnection, type SubscriberHost } from '../src/subscriber-connection.ts';
import type { Subscription } from '../src/subscription.ts';
import { channelOn, readUntilGap, trackedClients, until } from './helpers.ts';

/** Shard channels with a subscriber, as the servers see them (every master, summed). */
async function serverView(cluster: RedisCluster, names: readonly string[]): Promise<string[]> {
  const total = new Map<string, number>(names.map((n) => [n, 0]));
  for (const master of cluster.masters) {
    const reply = (await master.command('PUBSUB', 'SHARDNUMSUB', ...names)) as (string | number)[];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const name = String(reply[i]);
      total.set(name, (total.get(name) ?? 0) + Number(reply[i + 1]));
    }
  }
  for (const [name, n] of total) expect(n, `subscribers of ${name} on the servers`).toBeLessThanOrEqual(1);
  return [...total]
    .filter(([, n]) => n > 0)
    .map(([name]) => name)
    .sort();
}

type Settled = { ok: true } | { ok: false; error: unknown };

/** A small deterministic PRNG (mulberry32), so that a failing interleaving can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'channel' | 'pattern' | 'shard';

const METHODS = {
  channel: { on: 'subscribe', off: 'unsubscribe', asked: 'channels' },
  pattern: { on: 'psubscribe', off: 'punsubscribe', asked: 'patterns' },
  shard: { on: 'ssubscribe', off: 'sunsubscribe', asked: 'shardChannels' },
} as const;

/**
 * Issues `count` (un)subscribe calls of one kind on random subsets of `names` (now and then an
 * argument-less unsubscribe), some in the same tick, some a few microtasks or ticks apart,
 * without waiting for one before the next; returns what is asked once they are all made (the
 * last call for each name wins) and the calls' settlements.
 */
async function interleave(
  subscription: Subscription,
  names: readonly string[],
  count: number,
  seed: number,
  kind: Kind = 'shard',
): Promise<{ expected: string[]; calls: Promise<Settled>[] }> {
  const next = random(seed);
  const { on, off } = METHODS[kind];
  const asked = new Set<string>();
  const calls: Promise<Settled>[] = [];
  // Each call's outcome is taken at once (a rejection is a result here, not an unhandled one).
  const settle = (call: Promise<void>): Promise<Settled> =>
    call.then(
      () => ({ ok: true }),
      (error: unknown) => ({ ok: false, error }),
    );
  for (let i = 0; i < count; i++) {
    const subset = names.filter(() => next() < 0.5);
    const pick = subset.length > 0 ? subset : [names[Math.floor(next() * names.length)] as string];
    const roll = next();
    if (roll < 0.5) {
      for (const n of pick) asked.add(n);
      calls.push(settle(subscription[on](...pick)));
    } else if (roll < 0.95) {
      for (const n of pick) asked.delete(n);
      calls.push(settle(subscription[off](...pick)));
    } else {
      asked.clear();
      calls.push(settle(subscription[off]()));
    }
    const pause = next();
    if (pause < 0.2) {
      for (let n = Math.floor(next() * 8); n >= 0; n--) await Promise.resolve();
    } else if (pause < 0.35) await tick();
    else if (pause < 0.4) await new Promise<void>((resolve) => setTimeout(resolve, 1));
  }
  return { expected: [...asked].sort(), calls };
}

function state(subscription: Subscription, kind: Kind = 'shard') {
  const key = METHODS[kind].asked;
  return { asked: subscription[key].sort(), confirmed: subscription.confirmed()[key].sort() };
}

/** Channels with a subscriber on the servers (every master, summed). */
async function channelView(cluster: RedisCluster, names: readonly string[]): Promise<string[]> {
  const seen: string[] = [];
  for (const name of names) {
    let n = 0;
    for (const master of cluster.masters)
      n += Number(((await master.command('PUBSUB', 'NUMSUB', name)) as [string, number])[1]);
    expect(n, `subscribers of ${name} on the servers`).toBeLessThanOrEqual(1);
    if (n > 0) seen.push(name);
  }
  return seen.sort();
}

/** Patterns (`<prefix>:*`) with a subscriber: a message published on every master reaches it. */
async function patternView(cluster: RedisCluster, patterns: readonly string[]): Promise<string[]> {
  const seen: string[] = [];
  for (const pattern of patterns) {
    let n = 0;
    for (const master of cluster.masters)
      n += Number(await master.command('PUBLISH', pattern.replace('*', 'x'), 'probe'));
    expect(n, `subscribers of ${pattern} on the servers`).toBeLessThanOrEqual(1);
    if (n > 0) seen.push(pattern);
  }
  return seen.sort();
}

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3 });
});
afterAll(() => cluster.stop());

describe.each([2, 3] as const)('RESP%i: overlapping shard (un)subscribes on a Redis Cluster', (protocol) => {
  const clients = trackedClients(() => ({
    cluster: { nodes: [`127.0.0.1:${(cluster.masters[0] as SpawnedRedis).port}`] },
    protocol,
    reconnect: { initialDelay: 20, maxDelay: 200 },
  }));

  it('an ssubscribe and an sunsubscribe of the same channel in one tick leave nothing subscribed', async () => {
    const c = clients.client();
    const name = await channelOn(cluster, cluster.masters[1] as SpawnedRedis, `r${protocol}a`);
    const subscription = c.createSubscription();
    await Promise.all([subscription.ssubscribe(name), subscription.sunsubscribe(name)]);
    expect(state(subscription)).toEqual({ asked: [], confirmed: [] });
    expect(await serverView(cluster, [name])).toEqual([]);
    expect(await c.spublish(name, 'nobody listens')).toBe(0);

    // Once the slot map is loaded and the node's connection exists, the same again.
    await subscription.ssubscribe(name);
    await Promise.all([subscription.sunsubscribe(name), subscription.ssubscribe(name), subscription.sunsubscribe()]);
    expect(state(subscription)).toEqual({ asked: [], confirmed: [] });
    expect(await serverView(cluster, [name])).toEqual([]);
    expect(await c.spublish(name, 'nobody listens')).toBe(0);
  });

  it.each([1, 2, 3])(
    '100 interleaved calls on 5 channels over 3 masters end with server = confirmed = asked (seed %i)',
    async (seed) => {
      const c = clients.client();
      const p = `r${protocol}b${seed}`;
      const [a, b, d] = await Promise.all(cluster.masters.map((m, i) => channelOn(cluster, m, `${p}${i}`)));
      const names = [`${a}:x`, `${a}:y`, `${b}:x`, `${d}:x`, `${d}:y`];
      const subscription = c.createSubscription();
      const { expected, calls } = await interleave(subscription, names, 100, seed * 7919 + protocol);
      const settled = await Promise.all(calls);
      expect(settled.filter((r) => !r.ok)).toEqual([]);
      expect(state(subscription)).toEqual({ asked: expected, confirmed: expected });
      expect(await serverView(cluster, names)).toEqual(expected);
      for (const name of names) expect(await c.spublish(name, 'hello')).toBe(expected.includes(name) ? 1 : 0);
    },
  );

  it.each([
    ['channel', 11],
    ['pattern', 12],
    ['channel', 13],
    ['pattern', 14],
  ] as const)(
    'interleaved %s calls on a new subscription, a few microtasks apart, end with server = confirmed = asked (seed %i)',
    async (kind, seed) => {
      const c = clients.client();
      const p = `r${protocol}e${seed}`;
      const names = kind === 'channel' ? [`${p}:a`, `${p}:b`, `${p}:c`] : [`${p}:a:*`, `${p}:b:*`, `${p}:c:*`];
      // The first calls of a cluster subscription wait for the slot map and the connection: the
      // window where a later call could overtake an earlier one.
      for (let round = 0; round < 5; round++) {
        const subscription = c.createSubscription();
        const { expected, calls } = await interleave(subscription, names, 12, seed * 100 + round, kind);
        const settled = await Promise.all(calls);
        expect(settled.filter((r) => !r.ok)).toEqual([]);
        expect(state(subscription, kind)).toEqual({ asked: expected, confirmed: expected });
        const view = kind === 'channel' ? channelView : patternView;
        expect(await view(cluster, names)).toEqual(expected);
        await subscription.close();
      }
    },
  );

  it('interleaved calls while the slot of two of the channels moves to another master end consistent', async () => {
    const c = clients.client();
    const source = cluster.masters[protocol === 2 ? 0 : 1] as SpawnedRedis;
    const target = cluster.masters[2] as SpawnedRedis;
    const tag = await channelOn(cluster, source, `r${protocol}c`);
    const other = await channelOn(cluster, target, `r${protocol}c-`);
    const names = [`${tag}:x`, `${tag}:y`, `${other}:x`];
    const subscription = c.createSubscription();
    await subscription.ssubscribe(...names);
    let expected: string[] = [];
    const calls: Promise<Settled>[] = [];
    let moving = true;
    const churn = (async () => {
      for (let round = 0; moving || round < 3; round++) {
        const batch = await interleave(subscription, names, 20, 1000 * protocol + round);
        expected = batch.expected;
        calls.push(...batch.calls);
        await Promise.all(batch.calls);
      }
    })();
    await cluster.moveSlot(keySlot(tag), target);
    moving = false;
    await churn;
    const settled = await Promise.all(calls);
    expect(settled.filter((r) => !r.ok)).toEqual([]);
    // The server's own unsubscribe and the move to the new owner happen after the calls settled.
    const want = { ...{ asked: expected, confirmed: expected }, server: expected };
    let last: unknown;
    await until(async () => {
      last = { ...state(subscription), server: await serverView(cluster, names) };
      return JSON.stringify(last) === JSON.stringify(want);
    }, 'server = confirmed = asked').catch(() => expect(last).toEqual(want));
    for (const name of names) expect(await c.spublish(name, 'hello')).toBe(expected.includes(name) ? 1 : 0);
  });
});

describe.each([2, 3] as const)('RESP%i: a subscriber connection at a node that loses a slot', (protocol) => {
  it('drops the MOVED answer of an SUNSUBSCRIBE the server settled with its own unsubscribe', async () => {
    const source = cluster.masters[0] as SpawnedRedis;
    const target = cluster.masters[1] as SpawnedRedis;
    const name = await channelOn(cluster, source, `r${protocol}d`);
    await using proxy = await startProxy({ target: source });
    const heard: string[] = [];
    const host: SubscriberHost<string> = {
      message: () => heard.push('message'),
      disconnected: (_, cause) => heard.push(`disconnected: ${cause.message}`),
      reconnecting: () => heard.push('reconnecting'),
      resyncing: () => heard.push('resyncing'),
      restored: () => heard.push('restored'),
      lost: (_, kind, names) => heard.push(`lost ${kind} ${names.join(',')}`),
      ended: () => heard.push('ended'),
    };
    const connection = new SubscriberConnection<string>(host, {
      connection: { host: '127.0.0.1', port: proxy.port, protocol, reconnect: exponentialBackoff() },
      buffers: false,
      maxPayloadLength: undefined,
      healthCheckInterval: 0,
      healthCheckTimeout: 1000,
      closeTimeout: 1000,
      where: `127.0.0.1:${proxy.port}`,
    });
    let moved = 0;
    connection.connection.on('push', (value) => {
      if (value instanceof ReplyError && value.prefix === 'MOVED') moved++;
    });
    try {
      await connection.change('shard', true, [name]);
      // The server's own SUNSUBSCRIBE (the slot leaves) waits in the proxy; ours goes after it,
      // reaches the server once the slot is gone, and is answered with MOVED.
      proxy.pause();
      await cluster.moveSlot(keySlot(name), target);
      const unsubscribed = connection.change('shard', false, [name]);
      proxy.resume();
      await unsubscribed;
      // The MOVED comes with no command waiting: it is dropped (routed as a push), never taken
      // for a reply with no command, which would replace the connection.
      await until(() => moved > 0 || heard.length > 0, 'the MOVED answer to be read');
      expect(heard).toEqual([]);
      expect(moved).toBe(1);
      await connection.change('channel', true, [`r${protocol}d-barrier`]);
      expect(heard).toEqual([]);
      expect(connection.status).toBe('ready');
      expect([...connection.confirmed.shard]).toEqual([]);
      expect([...connection.confirmed.channel]).toEqual([`r${protocol}d-barrier`]);
    } finally {
      connection.destroy();
      await cluster.moveSlot(keySlot(name), source);
    }
  });
});

describe('a cluster subscription whose channel connection is moved away from an unresponsive node', () => {
  let frozen: RedisCluster;
  beforeAll(async () => {
    // A long node timeout: the frozen node is not failed over (nor the cluster marked down).
    frozen = await startCluster({ masters: 3, nodeTimeoutMs: 60_000 });
  });
  afterAll(() => frozen.stop());

  /** The masters holding a subscriber connection named `name` with channels. */
  async function holders(name: string): Promise<SpawnedRedis[]> {
    const found: SpawnedRedis[] = [];
    for (const master of frozen.masters) {
      const list = (await master.command('CLIENT', 'LIST')) as string;
      if (list.split('\n').some((line) => line.includes(` name=${name} `) && !/ sub=0 /.test(line))) found.push(master);
    }
    return found;
  }

  it.each([2, 3] as const)(
    'settles the calls that waited on the old connection and ends with server = confirmed = asked (RESP%i)',
    async (protocol) => {
      const name = `frozen${protocol}`;
      const p = `f${protocol}:`;
      await using c = createPubSubClient({
        cluster: { nodes: frozen.startupNodes },
        protocol,
        name,
        healthCheckInterval: 100,
        healthCheckTimeout: 200,
        connectTimeout: 300,
        reconnect: { initialDelay: 20, maxDelay: 100 },
      });
      const subscription = await c.subscribe(`${p}a`, `${p}b`);
      const [node] = await holders(name);
      if (node === undefined) throw new Error('no subscriber connection found');
      const down = new Promise((resolve) => subscription.once('disconnect', resolve));
      process.kill(node.pid as number, 'SIGSTOP');
      try {
        await down;
        // Both wait on the old connection, which is given up and replaced on another master.
        const calls = Promise.allSettled([subscription.subscribe(`${p}c`), subscription.unsubscribe(`${p}a`)]);
        const { gap } = await readUntilGap(subscription, 20_000);
        expect(gap).toMatchObject({ reason: 'reconnect' });
        expect(await calls).toEqual([
          { status: 'fulfilled', value: undefined },
          { status: 'fulfilled', value: undefined },
        ]);
        expect(subscription.channels.sort()).toEqual([`${p}b`, `${p}c`]);
        expect(subscription.confirmed().channels.sort()).toEqual([`${p}b`, `${p}c`]);
      } finally {
        process.kill(node.pid as number, 'SIGCONT');
      }
      // The frozen node drops the old connection once it runs again; one connection is left, elsewhere.
      await until(async () => {
        const now = await holders(name);
        return now.length === 1 && now[0] !== node;
      }, 'the old subscriber connection to be gone');
      expect(await channelView(frozen, [`${p}a`, `${p}b`, `${p}c`])).toEqual([`${p}b`, `${p}c`]);
    },
  );
});
