// A full sync into a target, side by side: our RedisSync (replica of the source, portable RESTORE
// payloads, pipelined) against a straightforward Node copier (SCAN, then DUMP and PTTL, then
// RESTORE, each batch pipelined with ioredis), and a plain redis-server replica (C) syncing the
// same master as the speed of light. Each timed run copies the whole dataset into an emptied
// target; the target is flushed (ASYNC) after the run has been checked.
//
// A second group measures the live lag under a steady write load: a writer process writes
// BENCH_LAG_RATE commands per second (20,000 by default) and a probe key with its send time
// every 5 ms; the target's keyspace notifications say when each probe arrives. The same load is
// measured through a redis-server replica for reference.
//
// BENCH_SYNC_KEYS sets the dataset (default 1,000,000 keys of the realistic mix).
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RedisSync } from '@redis-events/replication';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';
import { writeMix } from './mix.ts';

const KEYS = Number(process.env.BENCH_SYNC_KEYS ?? 1_000_000);
const LAG_RATE = Number(process.env.BENCH_LAG_RATE ?? 20_000);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 5);

interface Context {
  url: string;
  source: Redis;
  keys: number;
  target: SpawnedRedis;
  targetClient: Redis;
}

async function prepared(): Promise<Omit<Context, 'target' | 'targetClient'>> {
  const url = benchRedisUrl();
  const source = new Redis(url, { protocol: 2 } as never);
  await source.config('SET', 'repl-diskless-sync-delay', '0');
  await source.config('SET', 'repl-backlog-size', '256mb');
  if ((await source.dbsize()) === 0) await writeMix(source, KEYS);
  return { url, source, keys: await source.dbsize() };
}

function setup(config: Record<string, string> = {}) {
  return async (): Promise<Context> => {
    const base = await prepared();
    const target = await spawnRedis({ config: { 'lazyfree-lazy-user-flush': 'yes', ...config } });
    return { ...base, target, targetClient: target.createClient({ protocol: 2 } as never) };
  };
}

async function emptied(context: Context): Promise<void> {
  const keys = await context.targetClient.dbsize();
  if (keys !== context.keys) throw new Error(`the target has ${keys} keys, expected ${context.keys}`);
  await context.targetClient.flushall('ASYNC');
}

async function ours(context: Context) {
  const sync = new RedisSync({ source: context.url, target: context.target.url });
  const running = sync.run();
  await sync.caughtUp({ timeoutMs: 600_000 });
  await sync.close();
  await running;
  await emptied(context);
  return { ops: context.keys };
}

/** What a user writes without a replication library: SCAN, DUMP + PTTL, RESTORE, batch by batch. */
async function copier(context: Context) {
  const source = context.source;
  const target = context.targetClient;
  let cursor = '0';
  do {
    const [next, keys] = await source.scan(cursor, 'COUNT', 1000);
    cursor = next;
    if (keys.length === 0) continue;
    const read = source.pipeline();
    for (const key of keys) read.dumpBuffer(key).pttl(key);
    const replies = (await read.exec()) ?? [];
    const write = target.pipeline();
    for (let i = 0; i < keys.length; i++) {
      const payload = replies[2 * i]?.[1] as Buffer | null;
      const ttl = replies[2 * i + 1]?.[1] as number;
      if (payload) write.restore(keys[i] as string, Math.max(ttl, 0), payload, 'REPLACE');
    }
    await write.exec();
  } while (cursor !== '0');
  await emptied(context);
  return { ops: context.keys };
}

async function replica(context: Context) {
  const client = context.targetClient;
  const master = context.source;
  const url = new URL(context.url);
  const goal = Number((await master.info('replication')).match(/master_repl_offset:(\d+)/)?.[1]);
  await client.call('REPLICAOF', url.hostname, url.port);
  for (;;) {
    const info = await client.info('replication');
    const field = (name: string) => info.match(new RegExp(`${name}:([^\\r\\n]*)`))?.[1];
    if (field('master_link_status') === 'up' && field('master_sync_in_progress') === '0')
      if (Number(field('slave_repl_offset')) >= goal) break;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await client.call('REPLICAOF', 'NO', 'ONE');
  await emptied(context);
  return { ops: context.keys };
}

async function teardown(context: Context): Promise<void> {
  context.source.disconnect();
  context.targetClient.disconnect();
  await context.target.stop();
}

// ---------------------------------------------------------------- live lag

/** The writer process: LAG_RATE writes per second for LAG_SECONDS, and a probe every 5 ms. */
async function writer(url: string): Promise<void> {
  const client = new Redis(url, { protocol: 2 } as never);
  const perTick = Math.max(1, Math.round(LAG_RATE / 200)); // 200 ticks per second
  const end = Date.now() + LAG_SECONDS * 1000;
  let n = 0;
  let next = performance.now();
  while (Date.now() < end) {
    const p = client.pipeline();
    for (let i = 0; i < perTick; i++, n++) p.set(`load:${n % 50_000}`, `v${n}`);
    p.set(`probe:${n}`, String(Date.now()), 'PX', 60_000);
    await p.exec();
    next += 5;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  client.disconnect();
  // What a loaded machine let the writer do: the rate is reported beside the lag.
  process.send?.({ writes: n, seconds: LAG_SECONDS });
}

async function lag(context: Context, via: 'ours' | 'replica') {
  const target = context.targetClient;
  await target.config('SET', 'notify-keyspace-events', 'K$');
  const url = new URL(context.url);
  let sync: RedisSync | undefined;
  if (via === 'ours') {
    sync = new RedisSync({
      source: context.url,
      target: context.target.url,
      filter: { prefixes: ['load:', 'probe:'] },
    });
    void sync.run().catch(() => {});
    await sync.caughtUp({ timeoutMs: 600_000 });
  } else {
    await target.call('REPLICAOF', url.hostname, url.port);
    for (;;) {
      const info = await target.info('replication');
      if (/master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  const listener = context.target.createClient({ protocol: 2 } as never);
  const lags: number[] = [];
  listener.on('pmessage', (_p, channel) => {
    const key = channel.slice(channel.indexOf(':') + 1);
    if (!key.startsWith('probe:')) return;
    void target.get(key).then((sent) => {
      if (sent) lags.push(Date.now() - Number(sent));
    });
  });
  await listener.psubscribe('__keyspace@0__:probe:*');
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--writer', context.url], {
    execArgv: process.execArgv,
    stdio: 'inherit',
  });
  let achieved = 0;
  child.on('message', (m: { writes: number; seconds: number }) => {
    achieved = m.writes / m.seconds;
  });
  await new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 500));
  listener.disconnect();
  if (sync) await sync.close();
  else await target.call('REPLICAOF', 'NO', 'ONE');
  await target.flushall();
  if (lags.length < 20) throw new Error(`only ${lags.length} probes arrived`);
  lags.sort((a, b) => a - b);
  const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] as number;
  return {
    ops: lags.length,
    details: {
      'writes/s achieved': Math.round(achieved),
      'lag p50 ms': at(0.5),
      'lag p99 ms': at(0.99),
      'lag max ms': at(1),
    },
  };
}

if (process.argv[2] === '--writer') {
  await writer(process.argv[3] as string);
  process.exit(0);
}

const group = `full sync of ${KEYS.toLocaleString('en')} keys (realistic mix) into an empty target`;
const cases: BenchCase<Context>[] = [
  { group, subject: 'ours', setup: setup(), run: ours, teardown },
  { group, subject: 'SCAN + DUMP + RESTORE copier (ioredis, pipelined)', setup: setup(), run: copier, teardown },
  { group, subject: 'redis-server replica (C)', setup: setup(), run: replica, teardown },
];
const lagGroup = `live lag under ${LAG_RATE.toLocaleString('en')} writes/s for ${LAG_SECONDS} s`;
cases.push(
  { group: lagGroup, subject: 'ours', setup: setup(), run: (c) => lag(c, 'ours'), teardown },
  { group: lagGroup, subject: 'redis-server replica (C)', setup: setup(), run: (c) => lag(c, 'replica'), teardown },
);

await runSuite(import.meta.url, 'Sync into a target', cases, { redis: true });
