// Live full sync: how long our listener takes to receive and deliver a master's whole snapshot,
// against a plain redis-server replica (C) syncing the same data from the same master, in the
// same run. Each timed run is a fresh full sync: the replica is told REPLICAOF (then NO ONE,
// which gives it a new replication ID, so the next run cannot resume), and is done when its link
// is up and its offset has caught up with the master's; ours is done when `snapshot-done` has been
// delivered, every entry counted. The master serves disk-based and diskless syncs in turn.
//
// No JavaScript replica library is on the registry this project installs from, so the peer is
// Redis itself. BENCH_SYNC_KEYS sets the dataset size (default 200,000 keys of the realistic mix).

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ReplicaListener } from '@redis-events/replication';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';
import { writeMix } from './mix.ts';

const KEYS = Number(process.env.BENCH_SYNC_KEYS ?? 200_000);

interface Context {
  master: Redis;
  host: string;
  port: number;
  keys: number;
  /** Size of the master's RDB, for MiB/s (a diskless transfer does not announce it). */
  rdbBytes: number;
  replica?: SpawnedRedis;
  replicaClient?: Redis;
}

function setup(diskless: boolean, replica?: Record<string, string>) {
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
  context.master.disconnect();
  await context.replica?.stop();
}

const cases: BenchCase<Context>[] = [];
for (const diskless of [false, true]) {
  const group = `${KEYS.toLocaleString('en')} keys (realistic mix), ${diskless ? 'diskless' : 'disk-based'} full sync`;
  cases.push({ group, subject: 'ours', setup: setup(diskless), run: (c) => ours(c, false), teardown });
  cases.push({
    group,
    subject: 'ours, discardRdb (framing only)',
    setup: setup(diskless),
    run: (c) => ours(c, true),
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

await runSuite(import.meta.url, 'replication: live full sync', cases, { redis: true });
