// The lifecycle contract (root README, "One lifecycle") against real servers: bounded connect
// naming the address and the cause, { signal } on every waiting call, close() with a bound that
// reports what it abandoned, one wrapping per failure, unknown options refused, a logger.
import { type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPubSubClient } from '../src/client.ts';
import { PubSubError } from '../src/errors.ts';
import type { PubSubClientOptions } from '../src/options.ts';
import { nextEvent, trackedClients, until } from './helpers.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
async function proxy(): Promise<TcpProxy> {
  const p = await startProxy({ target: server });
  proxies.push(p);
  return p;
}

/** The chain of causes holds at most one PubSubError: a failure is wrapped once. */
function pubSubErrorsIn(err: unknown): number {
  let n = 0;
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof PubSubError) n++;
  return n;
}

/** A logger that records what it is told. */
function recordingLogger() {
  const lines: { level: string; context: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (context: object, message: string) =>
    lines.push({ level, context: context as Record<string, unknown>, message });
  return { lines, logger: { debug: at('debug'), warn: at('warn'), error: at('error') } };
}

describe('options', () => {
  it('refuses unknown fields, naming the one it guesses was meant', async () => {
    expect(() => createPubSubClient({ url: server.url, highWatermark: 10 } as PubSubClientOptions)).toThrow(
      expect.objectContaining({
        code: 'ERR_PUBSUB_ARGUMENT',
        message: expect.stringMatching(/no field "highWatermark" \(did you mean "highWaterMark"\?\)/),
      }),
    );
    expect(() => createPubSubClient({ url: server.url, reconnect: { maxDelays: 1 } } as PubSubClientOptions)).toThrow(
      /reconnect option has no field "maxDelays" \(did you mean "maxDelay"\?\)/,
    );
    expect(() => createPubSubClient({ url: server.url, logger: {} } as PubSubClientOptions)).toThrow(/logger needs/);
    await using client = createPubSubClient(server.url);
    expect(() => client.createSubscription({ overflw: 'error' } as never)).toThrow(/did you mean "overflow"/);
    const subscription = client.createSubscription();
    await expect(subscription.subscribe('a', { sigal: AbortSignal.timeout(1) } as never)).rejects.toMatchObject({
      code: 'ERR_PUBSUB_ARGUMENT',
      message: expect.stringMatching(/did you mean "signal"/),
    });
    await expect(client.publish('a', 'b', { timeout: 1 } as never)).rejects.toMatchObject({
      code: 'ERR_PUBSUB_ARGUMENT',
    });
    await expect(client.close({ timeout: 10 } as never)).rejects.toThrow(/did you mean "timeoutMs"/);
  });
});

describe.each([2, 3] as const)('RESP%i: the lifecycle', (protocol) => {
  const clients = trackedClients(() => ({ url: server.url, protocol }));

  describe('connect', () => {
    it('fails within connectTimeout when the server does not answer, naming the address', async () => {
      const black = await proxy();
      black.pause();
      const c = clients.client({ url: `redis://127.0.0.1:${black.port}`, connectTimeout: 300 });
      const subscribing = await c.subscribe('x').catch((e: unknown) => e);
      expect(subscribing).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
      expect((subscribing as Error).message).toContain(`127.0.0.1:${black.port}`);
      expect((subscribing as Error).message).toMatch(/connectTimeout 300 ms/);
      const publishing = await c.publish('x', 'y').catch((e: unknown) => e);
      expect(publishing).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
      expect((publishing as Error).message).toContain(`127.0.0.1:${black.port}`);
      expect(pubSubErrorsIn(subscribing)).toBe(1);
      expect(pubSubErrorsIn(publishing)).toBe(1);
    });

    it('fails at once with a wrong password, saying so', async () => {
      const guarded = await spawnRedis({ password: 'right' });
      try {
        const c = clients.client({ url: `redis://:wrong@127.0.0.1:${guarded.port}` });
        const error = await c.subscribe('x').catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION', cause: { code: 'ERR_RESP_HANDSHAKE' } });
        expect((error as Error).message).toMatch(/WRONGPASS/);
        expect((error as Error).message).toContain(`127.0.0.1:${guarded.port}`);
      } finally {
        await guarded.stop();
      }
    });

    it('names the command an ACL user lacks', async () => {
      const user = await server.createUser({
        username: `nosub${protocol}`,
        password: 'pw',
        rules: ['~*', '&*', '+@all', '-subscribe'],
      });
      const c = clients.client({ url: user.url });
      const error = await c.subscribe('x').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
      expect((error as Error).message).toMatch(/SUBSCRIBE/);
      expect(c.subscriptions).toEqual([]);
    });
  });

  describe('cancel', () => {
    it('aborts a subscribe that waits, promptly, as an AbortError, and withdraws what it asked', async () => {
      const p = server.keyPrefix();
      const slow = await proxy();
      const c = clients.client({ url: `redis://127.0.0.1:${slow.port}` });
      const subscription = await c.subscribe(`${p}kept`);
      slow.pause();
      const controller = new AbortController();
      const waiting = subscription.subscribe(`${p}a`, { signal: controller.signal });
      expect(subscription.channels.sort()).toEqual([`${p}a`, `${p}kept`]);
      const reason = new Error('the caller gave up');
      controller.abort(reason);
      const error = await waiting.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PubSubError);
      expect(error).toMatchObject({ name: 'AbortError', code: 'ERR_PUBSUB_ABORTED', cause: reason });
      expect(subscription.channels).toEqual([`${p}kept`]);
      slow.resume();
      // Once the server answers again, what it has is what is asked.
      await until(
        () => JSON.stringify(subscription.confirmed().channels) === JSON.stringify([`${p}kept`]),
        'the withdrawn channel to be unsubscribed',
      );
      expect(await c.pubSubNumSub(`${p}a`)).toEqual(new Map([[`${p}a`, 0]]));
    });

    it('rejects at once with a signal that already fired, and asks nothing', async () => {
      const subscription = clients.client().createSubscription();
      const error = await subscription.subscribe('x', { signal: AbortSignal.abort('no') }).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'AbortError', code: 'ERR_PUBSUB_ABORTED', cause: 'no' });
      expect(subscription.channels).toEqual([]);
      expect(() => clients.client().createSubscription({ signal: AbortSignal.abort() })).toThrow(
        expect.objectContaining({ name: 'AbortError' }),
      );
    });

    it('aborts publish and the PUBSUB commands that wait', async () => {
      const slow = await proxy();
      const c = clients.client({ url: `redis://127.0.0.1:${slow.port}` });
      await c.publish('warm', 'up');
      slow.pause();
      const calls = [
        c.publish('x', 'y', { signal: AbortSignal.timeout(50) }),
        c.pubSubNumSub('x', { signal: AbortSignal.timeout(50) }),
        c.pubSubChannels(undefined, { signal: AbortSignal.timeout(50) }),
        c.pubSubNumPat({ signal: AbortSignal.timeout(50) }),
      ];
      for (const result of await Promise.allSettled(calls)) {
        expect(result).toMatchObject({
          status: 'rejected',
          reason: { name: 'AbortError', code: 'ERR_PUBSUB_ABORTED' },
        });
        expect(pubSubErrorsIn((result as PromiseRejectedResult).reason)).toBe(1);
      }
      slow.resume();
    });

    it('aborts a read that waits; the next read goes on', async () => {
      const p = server.keyPrefix();
      const c = clients.client();
      const subscription = await c.subscribe(`${p}a`);
      const controller = new AbortController();
      const read = subscription.next({ signal: controller.signal });
      controller.abort();
      await expect(read).rejects.toMatchObject({ name: 'AbortError', code: 'ERR_PUBSUB_ABORTED' });
      await c.publish(`${p}a`, 'after');
      expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'after' });
    });

    it('ends the iterator of a subscription made with a signal when it fires', async () => {
      const p = server.keyPrefix();
      const c = clients.client();
      const controller = new AbortController();
      const subscription = await c.subscribe(`${p}a`, { signal: controller.signal, highWaterMark: 10 });
      const seen: string[] = [];
      const loop = (async () => {
        for await (const event of subscription) if (event.kind !== 'gap') seen.push(event.payload);
      })();
      await c.publish(`${p}a`, 'one');
      await until(() => seen.length === 1, 'the first message');
      controller.abort();
      await loop;
      expect(subscription.closed).toBe(true);
      await until(() => c.subscriptions.length === 0, 'the client to forget it');
      await until(async () => (await c.pubSubNumSub(`${p}a`)).get(`${p}a`) === 0, 'the unsubscribe');
    });
  });

  describe('close', () => {
    it('resolves when nothing was in flight; later calls fail with ERR_PUBSUB_CLOSED', async () => {
      const c = createPubSubClient({ url: server.url, protocol });
      const subscription = await c.subscribe('x');
      await c.publish('x', 'y');
      await c.close({ timeoutMs: 1000 });
      expect(subscription.closed).toBe(true);
      await expect(c.publish('x', 'y')).rejects.toMatchObject({ code: 'ERR_PUBSUB_CLOSED' });
      expect(() => c.createSubscription()).toThrow(expect.objectContaining({ code: 'ERR_PUBSUB_CLOSED' }));
    });

    it('gives commands in flight until the bound, then abandons them and says how many', async () => {
      const slow = await proxy();
      const c = createPubSubClient({ url: `redis://127.0.0.1:${slow.port}`, protocol });
      await c.publish('warm', 'up');
      slow.pause();
      const stuck = [c.publish('x', '1'), c.publish('x', '2')].map((p) => p.catch((e: unknown) => e));
      const error = await c.close({ timeoutMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PubSubError);
      expect(error).toMatchObject({ code: 'ERR_PUBSUB_ABANDONED', abandoned: { commands: 2 } });
      for (const failed of await Promise.all(stuck)) expect(failed).toBeInstanceOf(PubSubError);
      // The same promise for a second call.
      await expect(c.close()).rejects.toBe(error);
    });

    it('closes a subscription within its bound even when the server does not answer', async () => {
      const slow = await proxy();
      const c = createPubSubClient({ url: `redis://127.0.0.1:${slow.port}`, protocol });
      const subscription = await c.subscribe('x');
      slow.pause();
      await subscription.close({ signal: AbortSignal.timeout(50) });
      expect(subscription.closed).toBe(true);
      await c.close({ timeoutMs: 50 });
    });
  });

  describe('failures', () => {
    it('reports a killed server: typed events with PubSubError causes wrapped once, a logger told', async () => {
      const victim = await spawnRedis();
      const { lines, logger } = recordingLogger();
      const c = clients.client({ url: victim.url, reconnect: false, logger });
      const subscription = await c.subscribe('x');
      const causes: Error[] = [];
      subscription.on('disconnect', ({ cause }) => causes.push(cause));
      const ended = new Promise<Error | undefined>((resolve) =>
        subscription.once('end', ({ error }) => resolve(error)),
      );
      await victim.kill();
      const error = await ended;
      expect(error).toBeInstanceOf(PubSubError);
      expect(error).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
      expect(causes[0]).toBeInstanceOf(PubSubError);
      expect(pubSubErrorsIn(causes[0])).toBe(1);
      await expect(subscription.next()).rejects.toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
      const publishing = await c.publish('x', 'y').catch((e: unknown) => e);
      expect(publishing).toBeInstanceOf(PubSubError);
      expect(pubSubErrorsIn(publishing)).toBe(1);
      expect(lines.find((l) => l.level === 'warn')).toMatchObject({
        context: {
          package: '@redis-events/pubsub',
          subscriptionId: subscription.id,
          address: `127.0.0.1:${victim.port}`,
        },
      });
      expect(lines.find((l) => l.level === 'error')?.message).toMatch(/subscription ended/);
      await victim.stop();
    });

    it('logs drops at the 1st, 10th and 100th, not at each one', async () => {
      const p = server.keyPrefix();
      const { lines, logger } = recordingLogger();
      const c = clients.client({ logger, highWaterMark: 1 });
      const subscription = await c.subscribe(`${p}flood`);
      for (let i = 0; i < 102; i++) await c.publish(`${p}flood`, String(i));
      await until(() => subscription.dropped === 101, 'the drops');
      const drops = lines.filter((l) => /dropped so far/.test(l.message)).map((l) => l.context.dropped);
      expect(drops).toEqual([1, 10, 100]);
    });
  });

  it('leaves no socket or timer behind once closed', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const c = createPubSubClient({ url: server.url, protocol });
    const subscription = await c.subscribe('x');
    await c.publish('x', 'y');
    await nextEvent(subscription);
    await c.close();
    await until(
      () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length <= before.length,
      'the sockets and timers to be gone',
    );
  });
});
