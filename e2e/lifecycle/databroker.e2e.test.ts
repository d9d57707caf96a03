// The lifecycle rows of @redis-events/databroker: a DataBroker (given an ioredis client) under
// each fault of the matrix. The backend opens connections of its own from the client's options,
// so every row also closes the client it was given.
import { DataBroker, type DataBrokerError } from '@redis-events/databroker';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv, type Target } from './harness.ts';

/** The backend's bound on reaching Redis (connect, and each reply), for these rows. */
const TIMEOUT = 1000;

/** A backend on `target`, closed (with its client) by the harness after the row. */
function open(
  env: ScenarioEnv,
  target: Target,
  options: { pollIntervalMs?: number; timeoutMs?: number } = {},
): DataBroker {
  // lazyConnect: the backend connects on its own; the client only lends its options.
  const client = new Redis(target.url, { lazyConnect: true, enableReadyCheck: false });
  client.on('error', () => {});
  const broker = new DataBroker(client, {
    name: `lifecycle-${Math.random().toString(36).slice(2)}`,
    expiryMs: 0,
    timeoutMs: TIMEOUT,
    ...options,
  });
  env.defer(async () => {
    await broker.close({ timeoutMs: 0 }).catch(() => {});
    client.disconnect();
  });
  return broker;
}

const record = { type: 'lifecycle', id: 'r1', data: { n: 1 } };

lifecycleMatrix('databroker', {
  'nothing listening': {
    operation: 'put()',
    code: 'ERR_DATABROKER_CONNECTION',
    withinMs: TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.nothingListening();
      env.trigger();
      await open(env, target).put([record]);
    },
    check: (err) => expect(err.message).toMatch(/127\.0\.0\.1:\d+.*ECONNREFUSED/),
  },
  'black hole': {
    operation: 'put()',
    code: 'ERR_DATABROKER_CONNECTION',
    withinMs: TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      env.trigger();
      await open(env, target).put([record]);
    },
    check: (err) => expect(err.message).toMatch(/127\.0\.0\.1:\d+/),
  },
  'wrong password': {
    operation: 'put()',
    code: 'ERR_DATABROKER_CONNECTION',
    withinMs: TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.wrongPassword();
      env.trigger();
      await open(env, target).put([record]);
    },
    check: (err) => expect(err.message).toMatch(/wrong user name or password|WRONGPASS/),
  },
  'ACL user missing a command': {
    operation: 'get() by a user without HGET',
    code: 'ERR_DATABROKER_REDIS',
    withinMs: TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.aclUserWithout('hget');
      env.trigger();
      await open(env, target).get('lifecycle', 'r1');
    },
    check: (err) => expect(err.message).toMatch(/NOPERM.*Minimal ACL/),
  },
  'abort mid-call': {
    operation: 'put([...], { signal }) waiting for Redis',
    code: 'ERR_DATABROKER_ABORTED',
    withinMs: 1000,
    run: async (env) => {
      const target = await env.blackHole();
      const controller = new AbortController();
      const waiting = open(env, target).put([record], { signal: controller.signal });
      waiting.catch(() => {}); // awaited below
      await new Promise((resolve) => setTimeout(resolve, 100)); // connecting: the put waits
      env.trigger();
      controller.abort(new Error('the caller gave up'));
      await waiting;
    },
    check: (err) => expect(err.cause).toEqual(new Error('the caller gave up')),
  },
  'close with work in flight': {
    operation: 'close({ timeoutMs: 300 }) with a put in flight',
    code: 'ERR_DATABROKER_ABANDONED',
    withinMs: 300 + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      const broker = open(env, target, { timeoutMs: 60_000 }); // only close() ends the wait
      const put = broker.put([record, { ...record, id: 'r2' }]);
      put.catch(() => {}); // settled below
      await new Promise((resolve) => setTimeout(resolve, 100)); // in flight: waiting for Redis
      env.trigger();
      const [closed, call] = await Promise.allSettled([broker.close({ timeoutMs: 300 }), put]);
      // The abandoned put is told too.
      expect(call.status === 'rejected' && (call.reason as DataBrokerError).code).toBe('ERR_DATABROKER_CLOSED');
      if (closed.status === 'rejected') throw closed.reason;
    },
    check: (err) => expect(err.abandoned).toEqual({ puts: 1, records: 2, calls: 0 }),
  },
  'server killed mid-call': {
    operation: 'a sync waiting for changes when the server gets SIGKILL',
    code: 'ERR_DATABROKER_CONNECTION',
    withinMs: TIMEOUT + 3000,
    run: async (env) => {
      const target = await env.ownServer();
      const broker = open(env, target, { pollIntervalMs: 60_000 });
      const { serverVersion, recordVersion } = await broker.syncLatest();
      const stream = broker.sync('', serverVersion, recordVersion);
      const waiting = stream.next();
      waiting.catch(() => {}); // awaited below
      // Waiting: subscribed (only the notification or the minute's poll would wake it).
      for (let i = 0; i < 200 && !String(await target.redis.command('CLIENT', 'LIST')).includes('cmd=subscribe'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      env.trigger();
      await target.redis.kill();
      await waiting;
    },
    check: (err) => expect(err.message).toMatch(/127\.0\.0\.1:\d+/),
  },
});
