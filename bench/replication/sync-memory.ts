// Peak memory of a sync, by dataset size: a source holding SYNC_MEMORY_SIZES MiB of data
// (default 256 and 1024) of the realistic mix scaled up (strings written by DEBUG POPULATE, plus
// a 2 M-field hash, a 2 M-element list and a 1.5 M-member sorted set, so that single keys are far
// larger than one part), copied into an empty target by RedisSync in a process of its own. The
// child reports its peak RSS (getrusage) and V8 heap; the goal is a flat line: memory that does
// not grow with the dataset.
//
//   node --conditions=@redis-events/source bench/replication/sync-memory.ts
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RedisSync } from '@redis-events/replication';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';

const MiB = 1024 * 1024;

if (process.argv[2] === '--child') {
  const [source, target] = process.argv.slice(3) as [string, string];
  let peakHeap = 0;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 50);
  const started = performance.now();
  const sync = new RedisSync({ source, target });
  const running = sync.run();
  await sync.caughtUp({ timeoutMs: 3_600_000 });
  const ms = performance.now() - started;
  const keys = sync.stats.snapshot.keys;
  await sync.close();
  await running;
  clearInterval(sampler);
  process.send?.({ ms, keys, maxRssMiB: process.resourceUsage().maxRSS / 1024, peakHeapMiB: peakHeap / MiB });
  process.exit(0);
}

async function fill(server: SpawnedRedis, mib: number): Promise<number> {
  const client = server.createClient({ protocol: 2 } as never);
  await client.flushall();
  // Big keys first: each one far above a part (1 MiB / 1024 elements).
  await client.eval(
    "for i = 1, 2000000, 1000 do local a = {} for j = i, i + 999 do a[#a + 1] = 'f' .. j a[#a + 1] = 'value-' .. j end redis.call('HSET', KEYS[1], unpack(a)) end",
    1,
    'big:hash',
  );
  await client.eval(
    "for i = 1, 2000000, 1000 do local a = {} for j = i, i + 999 do a[#a + 1] = 'item-' .. j end redis.call('RPUSH', KEYS[1], unpack(a)) end",
    1,
    'big:list',
  );
  await client.eval(
    "for i = 1, 1500000, 1000 do local a = {} for j = i, i + 999 do a[#a + 1] = j a[#a + 1] = 'm' .. j end redis.call('ZADD', KEYS[1], unpack(a)) end",
    1,
    'big:zset',
  );
  const used = Number((await client.info('memory')).match(/used_memory:(\d+)/)?.[1]);
  const rest = Math.max(0, mib * MiB - used);
  // Strings of 400 bytes, about 500 bytes each in memory.
  const count = Math.floor(rest / 500);
  if (count > 0) await client.call('DEBUG', 'POPULATE', count, 'str', 400);
  const keys = await client.dbsize();
  client.disconnect();
  return keys;
}

const sizes = (process.env.SYNC_MEMORY_SIZES ?? '256,1024').split(',').map(Number);
const source = await spawnRedis({ config: { 'repl-diskless-sync-delay': '0' } });
const rows: string[] = [];
try {
  for (const mib of sizes) {
    const keys = await fill(source, mib);
    const rdb = Number((await source.info('memory')).used_memory) / MiB;
    const target = await spawnRedis();
    try {
      const child = fork(fileURLToPath(import.meta.url), ['--child', source.url, target.url], {
        execArgv: process.execArgv,
      });
      const result = await new Promise<{ ms: number; keys: number; maxRssMiB: number; peakHeapMiB: number }>(
        (resolve, reject) => {
          child.once('message', (m) => resolve(m as never));
          child.once('exit', (code) => code !== 0 && reject(new Error(`the sync process exited with ${code}`)));
        },
      );
      if (result.keys !== keys) throw new Error(`synced ${result.keys} keys, expected ${keys}`);
      rows.push(
        `| ${mib} MiB (${rdb.toFixed(0)} MiB used) | ${keys.toLocaleString('en')} | ${(result.ms / 1000).toFixed(1)} s | ${result.maxRssMiB.toFixed(0)} MiB | ${result.peakHeapMiB.toFixed(0)} MiB |`,
      );
      process.stderr.write(`  ${rows.at(-1)}\n`);
    } finally {
      await target.stop();
    }
  }
} finally {
  await source.stop();
}
console.log(
  [
    '| dataset | keys | sync time | peak RSS of the sync process | peak V8 heap |',
    '|---|---:|---:|---:|---:|',
    ...rows,
  ].join('\n'),
);
