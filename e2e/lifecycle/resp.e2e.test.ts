// The lifecycle rows of @redis-events/resp: RespConnection under each fault of the matrix.
import { setTimeout as sleep } from 'node:timers/promises';
import { RespConnection, type RespError } from '@redis-events/resp';
import type { SpawnedRedis } from '@redis-events/testkit';
import { expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv, type Target } from './harness.ts';

const CONNECT_TIMEOUT = 1000;

/** A connection to `target`, closed (or destroyed) by the harness after the row. */
function open(env: ScenarioEnv, target: Target, options: { db?: number; reconnect?: boolean } = {}): RespConnection {
  const connection = new RespConnection({
    url: target.url,
    connectTimeout: CONNECT_TIMEOUT,
    ...(options.db !== undefined ? { db: options.db } : {}),
    ...(options.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
  });
  env.defer(() => connection.destroy());
  return connection;
}

/** Resolves once the server shows a client blocked in `command`: the call is in flight. */
async function blockedOn(target: { redis: SpawnedRedis }, command: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!String(await target.redis.command('CLIENT', 'LIST')).includes(`cmd=${command}`)) {
    if (performance.now() > deadline) throw new Error(`no client is blocked in ${command}`);
    await sleep(10);
  }
}

lifecycleMatrix('resp', {
  'nothing listening': {
    operation: 'RespConnection.connect()',
    code: 'ERR_RESP_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.nothingListening();
      env.trigger();
      await open(env, target).connect();
    },
    check: (err) => expect(err.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+: connect ECONNREFUSED/),
  },
  'black hole': {
    operation: 'RespConnection.connect()',
    code: 'ERR_RESP_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      env.trigger();
      await open(env, target).connect();
    },
    check: (err) => expect(err.message).toMatch(/took longer than connectTimeout 1000 ms/),
  },
  'wrong password': {
    operation: 'RespConnection.connect()',
    code: 'ERR_RESP_HANDSHAKE',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.wrongPassword();
      env.trigger();
      await open(env, target).connect();
    },
    check: (err) => expect(err.message).toMatch(/HELLO was refused: wrong user name or password \(WRONGPASS/),
  },
  'ACL user missing a command': {
    operation: 'RespConnection.connect() with db 1, user without SELECT',
    code: 'ERR_RESP_HANDSHAKE',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.aclUserWithout('select');
      env.trigger();
      await open(env, target, { db: 1 }).connect();
    },
    check: (err) => expect(err.message).toMatch(/SELECT 1 was refused: the ACL user may not run it \(NOPERM/),
  },
  'abort mid-call': {
    operation: 'send(BLPOP 0, { signal })',
    code: 'ERR_RESP_ABORTED',
    withinMs: 1000,
    run: async (env) => {
      const target = await env.server();
      const connection = open(env, target);
      await connection.connect();
      const controller = new AbortController();
      const waiting = connection.send(['BLPOP', 'lifecycle:resp:nothing', 0], { signal: controller.signal });
      waiting.catch(() => {}); // awaited below
      await blockedOn(target, 'blpop');
      env.trigger();
      controller.abort(new Error('the caller gave up'));
      await waiting;
    },
    check: (err) => expect(err.message).toMatch(/BLPOP was aborted \(its reply will be ignored\)/),
  },
  'close with work in flight': {
    operation: 'close({ timeoutMs: 300 }) with a BLPOP 0 in flight',
    code: 'ERR_RESP_ABANDONED',
    withinMs: 300 + 2000,
    run: async (env) => {
      const target = await env.server();
      const connection = open(env, target);
      await connection.connect();
      const blocked = connection.send(['BLPOP', 'lifecycle:resp:nothing', 0]);
      blocked.catch(() => {}); // settled below
      await blockedOn(target, 'blpop');
      env.trigger();
      const [closed, call] = await Promise.allSettled([connection.close({ timeoutMs: 300 }), blocked]);
      // The abandoned call is told too: it may or may not have run.
      expect(call.status === 'rejected' && (call.reason as RespError).code).toBe('ERR_RESP_CLOSED');
      if (closed.status === 'rejected') throw closed.reason;
    },
    check: (err) => expect(err.abandoned).toEqual({ commands: 1 }),
  },
  'server killed mid-call': {
    operation: 'send(BLPOP 0) when the server gets SIGKILL',
    code: 'ERR_RESP_CONNECTION_LOST',
    withinMs: 2000,
    run: async (env) => {
      const target = await env.ownServer();
      const connection = open(env, target);
      await connection.connect();
      const waiting = connection.send(['BLPOP', 'lifecycle:resp:nothing', 0]);
      waiting.catch(() => {}); // awaited below
      await blockedOn(target, 'blpop');
      env.trigger();
      await target.redis.kill();
      await waiting;
    },
    check: (err) => expect(err.message).toMatch(/connection to 127\.0\.0\.1:\d+ lost/),
  },
});
