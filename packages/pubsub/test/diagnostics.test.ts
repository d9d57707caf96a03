// The diagnostics channels against a real server: what each one publishes, field by field.
import { subscribe as listen, tracingChannel, unsubscribe as unlisten } from 'node:diagnostics_channel';
import { type SpawnedRedis, spawnRedis, startProxy } from '@redis-events/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type DropEvent,
  type GapEvent,
  type MessageEvent,
  type PublishTrace,
  type SubscribeTrace,
} from '../src/diagnostics.ts';
import { PubSubError } from '../src/errors.ts';
import { nextEvent, readUntilGap, trackedClients, until } from './helpers.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

/** Records what a plain channel publishes until the end of the test. */
const listening: (() => void)[] = [];
afterEach(() => {
  for (const stop of listening.splice(0)) stop();
});
function record<T>(name: string): T[] {
  const seen: T[] = [];
  const listener = (message: unknown) => seen.push(message as T);
  listen(name, listener);
  listening.push(() => unlisten(name, listener));
  return seen;
}

/** Records the events of a tracing channel, as [event, a copy of the context]. */
function trace<T extends object>(name: string): [string, T][] {
  const seen: [string, T][] = [];
  const on = (event: string) => (context: T) => {
    seen.push([event, { ...context }]);
  };
  const handlers = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  };
  const channel = tracingChannel<object, T>(name);
  channel.subscribe(handlers);
  listening.push(() => channel.unsubscribe(handlers));
  return seen;
}

describe.each([2, 3] as const)('RESP%i: diagnostics channels', (protocol) => {
  const clients = trackedClients(() => ({ url: server.url, protocol }));

  it('traces each (un)subscribe call from the call to the confirmation', async () => {
    const p = server.keyPrefix();
    const seen = trace<SubscribeTrace>(CHANNELS.subscribe);
    const subscription = clients.client().createSubscription();
    await subscription.subscribe(`${p}a`, `${p}b`);
    await subscription.punsubscribe();
    const base = { subscriptionId: subscription.id, serverAddress: '127.0.0.1', serverPort: server.port };
    expect(seen.map(([event]) => event)).toEqual([
      'start',
      'end',
      'asyncStart',
      'asyncEnd',
      'start',
      'end',
      'asyncStart',
      'asyncEnd',
    ]);
    expect(seen[3]?.[1]).toEqual({
      ...base,
      command: 'SUBSCRIBE',
      kind: 'channel',
      destinations: [`${p}a`, `${p}b`],
      result: undefined,
    });
    expect(seen[7]?.[1]).toMatchObject({ ...base, command: 'PUNSUBSCRIBE', kind: 'pattern', destinations: [] });
  });

  it('reports a refused subscribe on the error event, with the PubSubError', async () => {
    const user = await server.createUser({
      username: `traced${protocol}`,
      password: 'pw',
      rules: ['~*', '&allowed:*', '+@all'],
    });
    const seen = trace<SubscribeTrace>(CHANNELS.subscribe);
    const c = clients.client({ url: user.url });
    const subscription = c.createSubscription();
    await expect(subscription.ssubscribe('secret')).rejects.toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    const error = seen.find(([event]) => event === 'error')?.[1];
    expect(error).toMatchObject({ command: 'SSUBSCRIBE', kind: 'shard', destinations: ['secret'] });
    expect(error?.error).toBeInstanceOf(PubSubError);
    expect(error?.error).toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
  });

  it('traces publish and spublish with their receivers, and publishes each message received', async () => {
    const p = server.keyPrefix();
    const published = trace<PublishTrace>(CHANNELS.publish);
    const messages = record<MessageEvent>(CHANNELS.message);
    const c = clients.client();
    const subscription = await c.subscribe(`${p}news`);
    await subscription.psubscribe(`${p}n*`);
    expect(await c.publish(`${p}news`, 'héllo')).toBe(2);
    expect(await c.spublish(`${p}{s}`, Buffer.from([1, 2, 3]))).toBe(0);
    const ends = published.filter(([event]) => event === 'asyncEnd').map(([, context]) => context);
    expect(ends).toEqual([
      {
        command: 'PUBLISH',
        destination: `${p}news`,
        bodySize: 6,
        serverAddress: '127.0.0.1',
        serverPort: server.port,
        result: 2,
      },
      {
        command: 'SPUBLISH',
        destination: `${p}{s}`,
        bodySize: 3,
        serverAddress: '127.0.0.1',
        serverPort: server.port,
        result: 0,
      },
    ]);
    await nextEvent(subscription);
    await nextEvent(subscription);
    const from = { subscriptionId: subscription.id, serverAddress: '127.0.0.1', serverPort: server.port };
    expect(messages).toEqual([
      { ...from, kind: 'message', destination: `${p}news`, pattern: undefined, bodySize: 6 },
      { ...from, kind: 'pmessage', destination: `${p}news`, pattern: `${p}n*`, bodySize: 6 },
    ]);
  });

  it.each(['drop-oldest', 'drop-newest', 'error'] as const)(
    '%s: publishes each message the overflow policy drops, with the running total',
    async (overflow) => {
      const p = server.keyPrefix();
      const drops = record<DropEvent>(CHANNELS.drop);
      const c = clients.client({ highWaterMark: 2, overflow });
      const subscription = await c.subscribe(`${p}flood`);
      for (let i = 0; i < 5; i++) await c.publish(`${p}flood`, `m${i}`);
      await until(() => drops.length === (overflow === 'error' ? 1 : 3), 'the drops');
      const limits = { highWaterMark: 2, maxBufferedBytes: 16 * 1024 * 1024 };
      const drop = { subscriptionId: subscription.id, policy: overflow, count: 1, kind: 'message', bodySize: 2 };
      if (overflow === 'error') {
        expect(drops).toEqual([
          { ...drop, ...limits, dropped: 1, destination: `${p}flood`, buffered: 2, bufferedBytes: 4 },
        ]);
        return;
      }
      expect(drops).toEqual(
        [1, 2, 3].map((dropped) => ({
          ...drop,
          ...limits,
          dropped,
          destination: `${p}flood`,
          buffered: overflow === 'drop-oldest' ? 1 : 2,
          bufferedBytes: overflow === 'drop-oldest' ? 2 : 4,
        })),
      );
      expect(subscription.dropped).toBe(3);
    },
  );

  it('publishes each reconnect gap once the subscriptions are back', async () => {
    const p = server.keyPrefix();
    const gaps = record<GapEvent>(CHANNELS.gap);
    await using proxy = await startProxy({ target: server });
    const c = clients.client({ url: `redis://127.0.0.1:${proxy.port}`, reconnect: { initialDelay: 10, maxDelay: 50 } });
    const subscription = await c.subscribe(`${p}a`);
    proxy.cut();
    const { gap } = await readUntilGap(subscription);
    expect(gaps).toEqual([
      {
        subscriptionId: subscription.id,
        reason: 'reconnect',
        channels: [`${p}a`],
        patterns: [],
        shardChannels: [],
        cause: gap.cause,
        since: gap.since,
        until: gap.until,
      },
    ]);
    expect(gap.cause).toBeInstanceOf(Error);
  });
});
