// The lifecycle rows of @redis-events/pubsub: a client and its subscriptions under each fault of
// the matrix.
import { createPubSubClient, type PubSubClient, type PubSubClientOptions } from '@redis-events/pubsub';
import type { SpawnedRedis } from '@redis-events/testkit';
import { expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv, type Target } from './harness.ts';

const CONNECT_TIMEOUT = 1000;

/** A client of `target`, closed by the harness after the row. */
function open(env: ScenarioEnv, target: Target, options: PubSubClientOptions = {}): PubSubClient {
  const client = createPubSubClient({ url: target.url, connectTimeout: CONNECT_TIMEOUT, ...options });
  env.defer(() => client.close({ timeoutMs: 0 }).catch(() => {}));
  return client;
}

/** Writes (PUBLISH among them) wait on the server until `unpause()`; undone after the row. */
async function pauseWrites(env: ScenarioEnv, redis: SpawnedRedis): Promise<void> {
  await redis.command('CLIENT', 'PAUSE', 30_000, 'WRITE');
  env.defer(() => redis.command('CLIENT', 'UNPAUSE').catch(() => {}));
}

/** Resolves once the server shows a client paused in PUBLISH: the call is in flight. */
async function publishInFlight(redis: SpawnedRedis): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!String(await redis.command('CLIENT', 'LIST')).includes('cmd=publish')) {
    if (performance.now() > deadline) throw new Error('no PUBLISH is in flight');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

lifecycleMatrix('pubsub', {
  'nothing listening': {
    operation: 'client.subscribe()',
    code: 'ERR_PUBSUB_CONNECTION',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.nothingListening();
      env.trigger();
      await open(env, target).subscribe('lifecycle:pubsub');
    },
    check: (err) =>
      expect(err.message).toMatch(/to 127\.0\.0\.1:\d+: cannot connect to 127\.0\.0\.1:\d+: connect ECONNREFUSED/),
  },
  'black hole': {
    operation: 'client.subscribe()',
    code: 'ERR_PUBSUB_CONNECTION',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      env.trigger();
      await open(env, target).subscribe('lifecycle:pubsub');
    },
    check: (err) => expect(err.message).toMatch(/127\.0\.0\.1:\d+ took longer than connectTimeout 1000 ms/),
  },
  'wrong password': {
    operation: 'client.subscribe()',
    code: 'ERR_PUBSUB_CONNECTION',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.wrongPassword();
      env.trigger();
      await open(env, target).subscribe('lifecycle:pubsub');
    },
    check: (err) =>
      expect(err.message).toMatch(/127\.0\.0\.1:\d+: HELLO was refused: wrong user name or password \(WRONGPASS/),
  },
  'ACL user missing a command': {
    operation: 'client.subscribe(), user without SUBSCRIBE',
    code: 'ERR_PUBSUB_NOPERM',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.aclUserWithout('subscribe');
      env.trigger();
      await open(env, target).subscribe('lifecycle:pubsub');
    },
    check: (err) =>
      expect(err.message).toMatch(/SUBSCRIBE channel "lifecycle:pubsub" was refused: the ACL user may not use it/),
  },
  'abort mid-call': {
    operation: 'subscription.next({ signal }) waiting for a message',
    code: 'ERR_PUBSUB_ABORTED',
    withinMs: 1000,
    run: async (env) => {
      const target = await env.server();
      const subscription = await open(env, target).subscribe('lifecycle:pubsub:quiet');
      const controller = new AbortController();
      const waiting = subscription.next({ signal: controller.signal });
      waiting.catch(() => {}); // awaited below
      env.trigger();
      controller.abort(new Error('the caller gave up'));
      await waiting;
    },
    check: (err) => expect(err.cause).toMatchObject({ message: 'the caller gave up' }),
  },
  'close with work in flight': {
    operation: 'close({ timeoutMs: 300 }) with a PUBLISH in flight',
    code: 'ERR_PUBSUB_ABANDONED',
    withinMs: 300 + 2000,
    run: async (env) => {
      const target = await env.server();
      const client = open(env, target);
      await client.publish('lifecycle:pubsub', 'warm up');
      await pauseWrites(env, target.redis);
      const publishing = client.publish('lifecycle:pubsub', 'stuck');
      publishing.catch(() => {}); // settled below
      await publishInFlight(target.redis);
      env.trigger();
      const [closed, call] = await Promise.allSettled([client.close({ timeoutMs: 300 }), publishing]);
      // The abandoned publish is told too: the server may or may not have run it.
      expect(call.status === 'rejected' && call.reason).toMatchObject({ code: 'ERR_PUBSUB_COMMAND' });
      if (closed.status === 'rejected') throw closed.reason;
    },
    check: (err) => expect(err.abandoned).toEqual({ commands: 1 }),
  },
  'server killed mid-call': {
    operation: 'publish() when the server gets SIGKILL',
    code: 'ERR_PUBSUB_COMMAND',
    withinMs: 2000,
    run: async (env) => {
      const target = await env.ownServer();
      const client = open(env, target);
      const subscription = await client.subscribe('lifecycle:pubsub');
      await pauseWrites(env, target.redis);
      const publishing = client.publish('lifecycle:pubsub', 'lost');
      publishing.catch(() => {}); // awaited below
      await publishInFlight(target.redis);
      const disconnected = new Promise((resolve) => subscription.once('disconnect', resolve));
      env.trigger();
      await target.redis.kill();
      await disconnected;
      await publishing;
    },
    check: (err) => expect(err.message).toMatch(/PUBLISH to "lifecycle:pubsub" failed: .*127\.0\.0\.1:\d+/),
  },
});
