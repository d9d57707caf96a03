// The lifecycle rows of @redis-events/replication: a replica listener (and a cluster listener's
// start) under each fault of the matrix.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ClusterReplicaListener,
  ReplicaListener,
  type ReplicaListenerOptions,
  type ReplicationEvent,
  ReplicationLinkError,
} from '@redis-events/replication';
import type { RedisEventsError } from '@redis-events/resp';
import { expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv, type Target } from './harness.ts';

const CONNECT_TIMEOUT = 1000;

/** What the row that ran last saw, for its `check`. */
const seen = { master: '', queued: 0 };

/** A listener of `target`, closed by the harness after the row. */
function open(env: ScenarioEnv, target: Target, options: ReplicaListenerOptions = {}): ReplicaListener {
  seen.master = `${target.host}:${target.port}`;
  const listener = new ReplicaListener({ url: target.url, connectTimeout: CONNECT_TIMEOUT, ...options });
  env.defer(() => listener.close({ timeoutMs: 0 }).catch(() => {}));
  return listener;
}

/** Iterates `listener` to its end, calling `onEvent` for each event; its final error is thrown. */
async function consume(
  listener: ReplicaListener,
  onEvent: (event: ReplicationEvent) => Promise<void> | void = () => {},
): Promise<void> {
  for await (const event of listener) await onEvent(event);
}

/** Waits for `condition` (polled), or throws after 10 s naming what was awaited. */
async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

/** The error is a link error of the row's master, in `phase`, and its message matches `message`. */
function linkError(err: RedisEventsError, phase: string, message: RegExp): void {
  expect(err).toBeInstanceOf(ReplicationLinkError);
  expect(err).toMatchObject({ master: seen.master, phase });
  expect(err.message).toMatch(message);
  // The master and phase are said once, at the end.
  expect(err.message.split('(master ').length - 1).toBe(1);
  expect(err.message).toMatch(new RegExp(`\\(master ${seen.master.replace(/\./g, '\\.')}, ${phase}\\)$`));
}

/** A loopback server that accepts connections and never answers; `connected` resolves on the first. */
async function silentServer(env: ScenarioEnv): Promise<{ url: string; connected: Promise<unknown> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const connected = once(server, 'connection');
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  env.defer(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the silent server has no port');
  return { url: `redis://127.0.0.1:${address.port}`, connected };
}

lifecycleMatrix('replication', {
  'nothing listening': {
    operation: 'for await (const event of listener)',
    code: 'ERR_REPLICATION_CONNECT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.nothingListening();
      env.trigger();
      await consume(open(env, target));
    },
    check: (err) => {
      linkError(
        err,
        'connect',
        /^could not reach the master within connectTimeout 1000 ms \(\d+ attempts?\); the last failure: cannot connect: .*connect ECONNREFUSED 127\.0\.0\.1:\d+/,
      );
      expect(err.cause).toMatchObject({ message: expect.stringMatching(/connect ECONNREFUSED/) });
    },
  },
  'black hole': {
    operation: 'for await (const event of listener)',
    code: 'ERR_REPLICATION_TIMEOUT',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.blackHole();
      env.trigger();
      await consume(open(env, target));
    },
    check: (err) =>
      linkError(
        err,
        'handshake',
        /^could not reach the master within connectTimeout 1000 ms \(1 attempt\); the last failure: PING got no reply in time/,
      ),
  },
  'wrong password': {
    operation: 'for await (const event of listener)',
    code: 'ERR_REPLICATION_AUTH',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.wrongPassword();
      env.trigger();
      await consume(open(env, target));
    },
    check: (err) =>
      linkError(
        err,
        'handshake',
        /^the master refused the login: AUTH was refused: wrong user name or password \(WRONGPASS/,
      ),
  },
  'ACL user missing a command': {
    operation: 'for await (const event of listener), user without PSYNC',
    code: 'ERR_REPLICATION_AUTH',
    withinMs: CONNECT_TIMEOUT + 2000,
    run: async (env) => {
      const target = await env.aclUserWithout('psync');
      env.trigger();
      await consume(open(env, target));
    },
    check: (err) =>
      linkError(
        err,
        'psync',
        /^the master answered PSYNC \? -1 with "NOPERM .*'psync'.*": a replica's ACL user needs \+psync and \+replconf/,
      ),
  },
  'abort mid-call': {
    // ReplicaListener takes its signal at construction and ends its iteration when it fires (no
    // rejection); the cluster listener's start() is the call of this package that waits and rejects.
    operation: 'new ClusterReplicaListener({ signal }).start() waiting for a silent node',
    code: 'ERR_REPLICATION_ABORTED',
    withinMs: 1000,
    run: async (env) => {
      const silent = await silentServer(env);
      const controller = new AbortController();
      const cluster = new ClusterReplicaListener({
        url: silent.url,
        connectTimeout: 30_000,
        signal: controller.signal,
      });
      env.defer(() => cluster.close());
      const starting = cluster.start();
      starting.catch(() => {}); // awaited below
      await silent.connected; // the start now waits for a reply that never comes
      env.trigger();
      controller.abort(new Error('the caller gave up'));
      await starting;
    },
    check: (err) => {
      expect(err.message).toBe('starting the cluster listener was aborted: the caller gave up');
      expect(err.cause).toMatchObject({ message: 'the caller gave up' });
    },
  },
  'close with work in flight': {
    operation: 'close({ timeoutMs: 300 }) with received events not delivered',
    code: 'ERR_REPLICATION_ABANDONED',
    withinMs: 300 + 2000,
    run: async (env) => {
      const target = await env.server();
      const listener = open(env, target);
      listener.start();
      await until('the snapshot is delivered', () => listener.checkpoint !== undefined);
      listener.pause();
      for (let i = 0; i < 3; i++) await target.redis.command('SET', `lifecycle:replication:${i}`, 'v');
      await until('the writes are received', () => listener.stats.queuedEvents >= 3);
      seen.queued = listener.stats.queuedEvents; // the SETs, and the SELECT before them
      env.trigger();
      await listener.close({ timeoutMs: 300 });
    },
    check: (err) => {
      expect(err.abandoned).toEqual({ events: seen.queued });
      expect(err.message).toMatch(
        new RegExp(
          `^closed with ${seen.queued} received events not delivered to the consumer; resuming from the checkpoint \\(offset \\d+\\) receives them again$`,
        ),
      );
    },
  },
  'server killed mid-call': {
    operation: 'for await (const event of listener) when the master gets SIGKILL, reconnect maxAttempts 2',
    code: 'ERR_REPLICATION_GAVE_UP',
    withinMs: 3000,
    run: async (env) => {
      const target = await env.ownServer();
      const listener = open(env, target, { reconnect: { initialDelay: 10, maxDelay: 20, maxAttempts: 2 } });
      const retried: (string | undefined)[] = [];
      try {
        await consume(listener, async (event) => {
          if (event.kind === 'reconnecting') retried.push(event.error?.code);
          if (event.kind !== 'snapshot-done') return;
          env.trigger();
          await target.redis.kill();
        });
      } finally {
        // The lost link, then the attempts to reach a master that is gone.
        expect(retried).toEqual(['ERR_REPLICATION_CONNECTION_LOST', 'ERR_REPLICATION_CONNECT']);
      }
    },
    check: (err) => {
      linkError(
        err,
        'connect',
        /^gave up reconnecting after 2 attempts; the last failure \(ERR_REPLICATION_CONNECT\): cannot connect: .*connect ECONNREFUSED/,
      );
      expect(err.cause).toMatchObject({ message: expect.stringMatching(/connect ECONNREFUSED/) });
    },
  },
});
