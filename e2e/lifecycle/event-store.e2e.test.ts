// The lifecycle rows of @redis-events/event-store: a RedisEventStore made from a URL (its own
// client) under each fault of the matrix.
import { type EventStoreError, RedisEventStore } from '@redis-events/event-store';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv, type Target } from './harness.ts';

const CONNECT_TIMEOUT = 1000;

/** A store of its own client (`close()` ends it), closed after the row. */
function store(env: ScenarioEnv, target: Target): RedisEventStore {
  const s = new RedisEventStore(target.url, { connectTimeoutMs: CONNECT_TIMEOUT });
  env.defer(() => s.close({ timeoutMs: 0 }).catch(() => {}));
  return s;
}

/** Holds every write of `target` (CLIENT PAUSE WRITE) until the row's cleanups run. */
async function pauseWrites(env: ScenarioEnv, target: Target): Promise<void> {
  // Bounded: the server may be killed before the cleanup runs.
  const admin = new Redis(target.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  admin.on('error', () => {});
  env.defer(() => admin.disconnect());
  await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE');
  env.defer(() => admin.call('CLIENT', 'UNPAUSE'));
}

lifecycleMatrix('event-store', {
  'nothing listening': {
    operation: 'storeEvent() (connectTimeoutMs 1000)',
    code: 'ERR_EVENT_STORE_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.nothingListening();
      env.trigger();
      await store(env, target).storeEvent({ name: 'e', payload: 1 });
    },
    check: (err) => expect(err.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+ within 1000 ms: .*ECONNREFUSED/),
  },
  'black hole': {
    operation: 'read() (connectTimeoutMs 1000)',
    code: 'ERR_EVENT_STORE_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      env.trigger();
      await store(env, target).read('e');
    },
    check: (err) => expect(err.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+ within 1000 ms/),
  },
  'wrong password': {
    operation: 'storeEvent()',
    code: 'ERR_EVENT_STORE_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.wrongPassword();
      env.trigger();
      await store(env, target).storeEvent({ name: 'e', payload: 1 });
    },
    check: (err) => expect(err.message).toMatch(/refused the connection: .*WRONGPASS/),
  },
  'ACL user missing a command': {
    operation: 'storeEvent(), user without XADD',
    code: 'ERR_EVENT_STORE_REDIS',
    withinMs: 3000,
    run: async (env) => {
      const target = await env.aclUserWithout('xadd');
      env.trigger();
      await store(env, target).storeEvent({ name: 'e', payload: 1 });
    },
    check: (err) => expect(err.message).toMatch(/can't run this command/),
  },
  'abort mid-call': {
    operation: 'storeEvent({ signal }) on a server holding writes; a tail on the signal ends',
    code: 'ERR_EVENT_STORE_ABORTED',
    withinMs: 1000,
    run: async (env) => {
      const target = await env.ownServer();
      const s = store(env, target);
      await s.read('e'); // connected
      await pauseWrites(env, target);
      const controller = new AbortController();
      const tail = s.tail('e', { signal: controller.signal });
      const next = tail.next();
      const storing = s.storeEvent({ name: 'e', payload: 1 }, { signal: controller.signal });
      storing.catch(() => {}); // awaited below
      env.trigger();
      controller.abort(new Error('the caller gave up'));
      expect(await next).toEqual({ done: true, value: undefined });
      await storing;
    },
  },
  'close with work in flight': {
    operation: 'close({ timeoutMs: 300 }) with an append waiting for Redis',
    code: 'ERR_EVENT_STORE_ABANDONED',
    withinMs: 300 + 2000,
    run: async (env) => {
      const target = await env.ownServer();
      const s = store(env, target);
      await s.read('e'); // connected
      await pauseWrites(env, target);
      const storing = s.storeEvent({ name: 'e', payload: 1 });
      storing.catch(() => {}); // told once the client is gone
      env.trigger();
      await s.close({ timeoutMs: 300 });
    },
    check: (err) => expect((err as EventStoreError).abandoned).toEqual({ appends: 1 }),
  },
  'server killed mid-call': {
    operation: 'storeEvent() when the server gets SIGKILL',
    code: 'ERR_EVENT_STORE_REDIS',
    withinMs: 5000,
    run: async (env) => {
      const target = await env.ownServer();
      const s = store(env, target);
      await s.read('e'); // connected
      await pauseWrites(env, target);
      const storing = s.storeEvent({ name: 'e', payload: 1 });
      storing.catch(() => {}); // awaited below
      env.trigger();
      await target.redis.kill();
      await storing;
    },
    check: (err) => expect(err.message).toMatch(/max retries per request/),
  },
});
