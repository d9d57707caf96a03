// Live full sync: how long our listener takes to receive and deliver a master's whole snapshot,
// against a plain redis-server replica (C) syncing the same data from the same master, in the
// same run. Each timed run is a fresh full sync: the replica is told REPLICAOF (then NO ONE,
// which gives it a new replication ID, so the next run cannot resume), and is done when its link
// is up and its offset has caught up with the master's; ours is done when `snapshot-done` has been
// delivered, every entry counted. The master serves disk-based and diskless syncs in turn.
//
// No JavaScript replica library is on the registry this project installs from, so the peer is
// Redis itself. BENCH_SYNC_KEYS sets the dataset size (default 200,000 keys of the realistic mix).
//
// The diagnostics channels cost nothing when nobody listens: each group also runs ours with a
// no-op subscriber on every channel of the listener (the lag channel then reads the master's
// offset with INFO on a second connection). The command-stream group times BENCH_STREAM_COMMANDS
// (default 100,000) pipelined INCRs from the first write until the listener has delivered the
// last, with and without subscribers.

import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { REPLICATION_CHANNELS, ReplicaListener, type ReplicationEvent } from '@redis-events/replication';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';
import { writeMix } from './mix.ts';

const KEYS = Number(process.env.BENCH_SYNC_KEYS ?? 200_000);
const STREAM_COMMANDS = Number(process.env.BENCH_STREAM_COMMANDS ?? (process.env.BENCH_DRY_RUN ? 1000 : 100_000));

const noop = (): void => {};
const traceHandlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };

/** A no-op subscriber on every channel of the listener; returns the unsubscription. */
function subscribeAll(): () => void {
  tracingChannel(REPLICATION_CHANNELS.handshake).subscribe(traceHandlers);
  tracingChannel(REPLICATION_CHANNELS.sync).subscribe(traceHandlers);
  const plain = [REPLICATION_CHANNELS.syncProgress, REPLICATION_CHANNELS.command, REPLICATION_CHANNELS.lag];
  for (const name of plain) subscribe(name, noop);
  return () => {
    tracingChannel(REPLICATION_CHANNELS.handshake).unsubscribe(traceHandlers);
    tracingChannel(REPLICATION_CHANNELS.sync).unsubscribe(traceHandlers);
    for (const name of plain) unsubscribe(name, noop);
  };
}

interface Context {
  master: Redis;
  host: string;
  port: number;
  keys: number;
  /** Size of the master's RDB, for MiB/s (a diskless transfer does not announce it). */
  rdbBytes: number;
  replica?: SpawnedRedis;
  replicaClient?: Redis;
  unsubscribe?: () => void;
}

function setup(diskless: boolean, replica?: Record<string, string>, subscribed = false) {
  return async (): Promise<Context> => {
    const url = new URL(benchRedisUrl());
    const master = new Redis({ host: url.hostname, port: Number(url.port), protocol: 2 });
    await master.config('SET', 'repl-diskless-sync', diskless ? 'yes' : 'no');
    await master.config('SET', 'repl-diskless-sync-delay', '0');
    if ((await master.dbsize()) === 0) await writeMix(master, KEYS);
    await master.call('SAVE');
    const [, dir] = (await master.config('GET', 'dir')) as [string, string];
    const [, file] = (await master.config('GET', 'dbfilename')) as [string, string];
    const context: Context = {
      master,
      host: url.hostname,
      port: Number(url.port),
      keys: await master.dbsize(),
      rdbBytes: statSync(join(dir, file)).size,
    };
    if (subscribed) context.unsubscribe = subscribeAll();
    if (replica) {
      // The replica frees its old dataset in the background, as a production replica would.
      context.replica = await spawnRedis({ config: { 'replica-lazy-flush': 'yes', ...replica } });
      context.replicaClient = context.replica.createClient({ protocol: 2 });
    }
    return context;
  };
}

async function ours(context: Context, discardRdb: boolean): Promise<{ ops: number; bytes: number }> {
  const listener = new ReplicaListener({ host: context.host, port: context.port, discardRdb });
  let keys = 0;
  for await (const event of listener) {
    if (event.kind === 'entry' && event.last) keys++;
    else if (event.kind === 'snapshot-done') break;
  }
  if (!discardRdb && keys !== context.keys) throw new Error(`received ${keys} keys, expected ${context.keys}`);
  return { ops: context.keys, bytes: context.rdbBytes };
}

async function redisReplica(context: Context): Promise<{ ops: number; bytes: number }> {
  const client = context.replicaClient as Redis;
  const target = Number((await context.master.info('replication')).match(/master_repl_offset:(\d+)/)?.[1]);
  await client.call('REPLICAOF', context.host, String(context.port));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const info = await client.info('replication');
    if (Date.now() > deadline)
      throw new Error(
        `the replica did not sync in 120 s:\n${info}\nmaster:\n${await context.master.info('replication')}${await context.master.info('persistence')}`,
      );
    const field = (name: string) => info.match(new RegExp(`${name}:([^\\r\\n]*)`))?.[1];
    if (field('master_link_status') === 'up' && field('master_sync_in_progress') === '0')
      if (Number(field('slave_repl_offset')) >= target) break;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await client.call('REPLICAOF', 'NO', 'ONE'); // a new replication ID: the next run syncs in full
  const keys = await client.dbsize();
  if (keys !== context.keys) throw new Error(`the replica has ${keys} keys, expected ${context.keys}`);
  return { ops: context.keys, bytes: context.rdbBytes };
}

async function teardown(context: Context): Promise<void> {
  context.unsubscribe?.();
  context.master.disconnect();
  await context.replica?.stop();
}

const cases: (BenchCase<Context> | BenchCase<StreamContext>)[] = [];
for (const diskless of [false, true]) {
  const group = `${KEYS.toLocaleString('en')} keys (realistic mix), ${diskless ? 'diskless' : 'disk-based'} full sync`;
  cases.push({ group, subject: 'ours', setup: setup(diskless), run: (c: Context) => ours(c, false), teardown });
  cases.push({
    group,
    subject: 'ours, every diagnostics channel subscribed',
    setup: setup(diskless, undefined, true),
    run: (c: Context) => ours(c, false),
    teardown,
  });
  cases.push({
    group,
    subject: 'ours, discardRdb (framing only)',
    setup: setup(diskless),
    run: (c: Context) => ours(c, true),
    teardown,
  });
  cases.push({
    group,
    subject: 'redis-server replica (C), defaults',
    setup: setup(diskless, {}),
    run: redisReplica,
    teardown,
  });
  cases.push({
    group,
    subject: 'redis-server replica (C), repl-diskless-load swapdb',
    setup: setup(diskless, { 'repl-diskless-load': 'swapdb' }),
    run: redisReplica,
    teardown,
  });
}

interface StreamContext {
  master: Redis;
  listener: ReplicaListener;
  events: AsyncIterator<ReplicationEvent>;
  unsubscribe?: () => void;
}

function streamSetup(subscribed: boolean) {
  return async (): Promise<StreamContext> => {
    const url = new URL(benchRedisUrl());
    const master = new Redis({ host: url.hostname, port: Number(url.port), protocol: 2 });
    const unsubscribe = subscribed ? subscribeAll() : undefined;
    const listener = new ReplicaListener({ host: url.hostname, port: Number(url.port), discardRdb: true });
    const events = listener[Symbol.asyncIterator]();
    for (;;) {
      const next = await events.next();
      if (next.done) throw new Error('the listener ended before its snapshot');
      if (next.value.kind === 'snapshot-done') break;
    }
    return unsubscribe ? { master, listener, events, unsubscribe } : { master, listener, events };
  };
}

async function streamRun(context: StreamContext): Promise<{ ops: number }> {
  const writing = (async () => {
    for (let sent = 0; sent < STREAM_COMMANDS; sent += 1000) {
      const p = context.master.pipeline();
      for (let i = sent; i < Math.min(STREAM_COMMANDS, sent + 1000); i++) p.incr('bench:stream:counter');
      await p.exec();
    }
  })();
  let seen = 0;
  while (seen < STREAM_COMMANDS) {
    const next = await context.events.next();
    if (next.done) throw new Error('the listener ended during the stream');
    if (next.value.kind === 'command' && next.value.name === 'INCR') seen++;
  }
  await writing;
  return { ops: STREAM_COMMANDS };
}

async function streamTeardown(context: StreamContext): Promise<void> {
  await context.listener.close();
  context.unsubscribe?.();
  await context.master.del('bench:stream:counter');
  context.master.disconnect();
}

const streamGroup = `${STREAM_COMMANDS.toLocaleString('en')} commands streamed (pipelined INCR), from the first write to the last delivered`;
cases.push({
  group: streamGroup,
  subject: 'ours',
  setup: streamSetup(false),
  run: streamRun,
  teardown: streamTeardown,
});
cases.push({
  group: streamGroup,
  subject: 'ours, every diagnostics channel subscribed',
  setup: streamSetup(true),
  run: streamRun,
  teardown: streamTeardown,
});

await runSuite(import.meta.url, 'replication: live full sync', cases, { redis: true });
