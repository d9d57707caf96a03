// The lifecycle rows of @redis-events/streams-driver: Topic and Subscription, on an ioredis
// client of the application's, under each fault of the matrix.
import { setTimeout as sleep } from 'node:timers/promises';
import { type StreamsError, Subscription, Topic } from '@redis-events/streams-driver';
import type { SpawnedRedis } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv, type Target } from './harness.ts';

const CONNECT_TIMEOUT = 1000;
let keys = 0;

/** A client of `target` (the application's: the driver never closes it), disconnected after the row. */
function client(env: ScenarioEnv, target: Target): Redis {
  const redis = new Redis(target.url, { lazyConnect: true, retryStrategy: () => 50 });
  redis.on('error', () => {}); // the driver's errors say what went wrong
  env.defer(() => redis.disconnect());
  return redis;
}

function topic(env: ScenarioEnv, redis: Redis, key: string, options: { sendTimeoutMs?: number } = {}): Topic {
  const t = new Topic(redis, key, { create: true, connectTimeoutMs: CONNECT_TIMEOUT, ...options });
  env.defer(() => t.shutdown({ timeoutMs: 0 }).catch(() => {}));
  return t;
}

function subscription(env: ScenarioEnv, redis: Redis, key: string): Subscription {
  const s = new Subscription(redis, { topic: key, group: 'g', connectTimeoutMs: CONNECT_TIMEOUT });
  env.defer(() => s.shutdown({ timeoutMs: 0 }).catch(() => {}));
  return s;
}

/** Resolves once the server shows a client blocked in `command`: the call is in flight. */
async function blockedOn(target: { redis: SpawnedRedis }, command: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!String(await target.redis.command('CLIENT', 'LIST')).includes(`cmd=${command}`)) {
    if (performance.now() > deadline) throw new Error(`no client is blocked in ${command}`);
    await sleep(10);
  }
}

const key = (): string => `lifecycle:streams:${process.pid}:${++keys}`;

lifecycleMatrix('streams-driver', {
  'nothing listening': {
    operation: 'topic.send() (connectTimeoutMs 1000)',
    code: 'ERR_STREAMS_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.nothingListening();
      env.trigger();
      await topic(env, client(env, target), key()).send({ body: 'x' });
    },
    check: (err) => expect(err.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+ within 1000 ms: .*ECONNREFUSED/),
  },
  'black hole': {
    operation: 'subscription.ready() (connectTimeoutMs 1000)',
    code: 'ERR_STREAMS_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      env.trigger();
      await subscription(env, client(env, target), key()).ready();
    },
    check: (err) => expect(err.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+ within 1000 ms/),
  },
  'wrong password': {
    operation: 'subscription.receive()',
    code: 'ERR_STREAMS_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.wrongPassword();
      env.trigger();
      await subscription(env, client(env, target), key()).receive();
    },
    check: (err) => expect(err.message).toMatch(/refused the connection: .*WRONGPASS/),
  },
  'ACL user missing a command': {
    operation: 'subscription.receive(), user without XREADGROUP',
    code: 'ERR_STREAMS_REDIS',
    withinMs: 3000,
    run: async (env) => {
      const target = await env.aclUserWithout('xreadgroup');
      env.trigger();
      await subscription(env, client(env, target), key()).receive();
    },
    check: (err) => expect(err.message).toMatch(/NOPERM/),
  },
  'abort mid-call': {
    operation: 'subscription.receive({ signal }) waiting for a message',
    code: 'ERR_STREAMS_ABORTED',
    withinMs: 1000,
    run: async (env) => {
      const target = await env.server();
      const sub = subscription(env, client(env, target), key());
      await sub.ready();
      const controller = new AbortController();
      const waiting = sub.receive({ signal: controller.signal });
      waiting.catch(() => {}); // awaited below
      await blockedOn(target, 'xreadgroup');
      env.trigger();
      controller.abort(new Error('the caller gave up'));
      await waiting;
    },
  },
  'close with work in flight': {
    operation: 'subscription.shutdown({ timeoutMs: 300 }) holding an unacked message',
    code: 'ERR_STREAMS_ABANDONED',
    withinMs: 300 + 2000,
    run: async (env) => {
      const target = await env.server();
      const redis = client(env, target);
      const k = key();
      const sub = subscription(env, redis, k);
      await sub.ready();
      await topic(env, redis, k).send({ body: 'held' });
      const message = await sub.receive();
      expect(message.body.toString()).toBe('held');
      env.trigger();
      await sub.shutdown({ timeoutMs: 300 });
    },
    check: (err) => expect((err as StreamsError).abandoned).toEqual({ held: 1 }),
  },
  'server killed mid-call': {
    operation: 'topic.send() when the server gets SIGKILL (sendTimeoutMs 1000)',
    code: 'ERR_STREAMS_UNAVAILABLE',
    withinMs: 1000 + 2000,
    run: async (env) => {
      const target = await env.ownServer();
      const redis = client(env, target);
      const t = topic(env, redis, key(), { sendTimeoutMs: 1000 });
      await t.send({ body: 'before' });
      env.trigger();
      await target.redis.kill();
      await t.send({ body: 'after' });
    },
    check: (err) => expect((err as StreamsError).retryable).toBe(true),
  },
});
