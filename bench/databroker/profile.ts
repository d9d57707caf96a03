// Client CPU of the hot paths, for profiling (`node --cpu-prof`) and for the per-operation CPU
// figure: puts of 8 one at a time, gets, and a snapshot. Not a side-by-side benchmark; run it as
// `node --conditions=@redis-events/source bench/databroker/profile.ts [put|get|latest] [count]`.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { DataBroker } from '@redis-events/databroker';
import { spawnRedis } from '@redis-events/testkit';
import { Redis } from 'ioredis';

const what = process.argv[2] ?? 'put';
const count = Number(process.argv[3] ?? 20_000);
const scripting = process.env.SCRIPTING === undefined ? undefined : process.env.SCRIPTING === '1';
// REDIS_URL: an external server (for example one under valgrind, to count its instructions).
const server = process.env.REDIS_URL ? undefined : await spawnRedis();
const redis = new Redis(process.env.REDIS_URL ?? (server?.url as string));
const broker = new DataBroker<string>(redis, {
  name: `profile-${what}`,
  expiryMs: 0,
  ...(scripting === undefined ? {} : { scripting }),
});
const payload = 'x'.repeat(128);
const chunk = (c: number) =>
  Array.from({ length: 8 }, (_, k) => ({ type: `t-${(c * 8 + k) % 16}`, id: `i-${c * 8 + k}`, data: payload }));

// 16 writers on 16 connections (the contention row): their backends, or their plain clients.
const writers = what.includes('contend')
  ? Array.from({ length: 16 }, () => new Redis(process.env.REDIS_URL ?? (server?.url as string)))
  : [];
const writerBrokers =
  what === 'contend'
    ? writers.map(
        (c) =>
          new DataBroker<string>(c, {
            name: 'profile-contend',
            expiryMs: 0,
            ...(scripting === undefined ? {} : { scripting }),
          }),
      )
    : [];
let contended = 0;

async function run(n: number): Promise<void> {
  if (what === 'contend' || what === 'naive-contend') {
    // n puts in all, spread over the 16 writers.
    await Promise.all(
      writers.map(async (c, w) => {
        for (let i = 0; i < n / 16; i++) {
          const id = `${w}-${contended++}`;
          if (what === 'contend')
            await (writerBrokers[w] as DataBroker<string>).put([{ type: 't', id, data: payload }]);
          else await c.multi().incrby('naive:version', 1).set(`naive:record:t:${id}`, JSON.stringify(payload)).exec();
        }
      }),
    );
    return;
  }
  if (what === 'naive-put') {
    // The naive design's put of 8, for comparison: a counter and one SET per record in a MULTI.
    for (let c = 0; c < n; c++) {
      const multi = redis.multi().incrby('naive:version', 8);
      for (const r of chunk(c)) multi.set(`naive:record:${r.type}:${r.id}`, JSON.stringify(r.data));
      await multi.exec();
    }
  } else if (what === 'naive-get') {
    for (let i = 0; i < n; i++) {
      const text = await redis.get('naive:record:t-4:i-500');
      if (text !== null) JSON.parse(text);
    }
  } else if (what === 'inflight' || what === 'naive-inflight') {
    // 16 puts of 8 in flight at a time, as the bench's second row.
    await Promise.all(
      Array.from({ length: 16 }, async (_, lane) => {
        for (let c = lane; c < n; c += 16) {
          if (what === 'inflight') await broker.put(chunk(c));
          else {
            const multi = redis.multi().incrby('naive:version', 8);
            for (const r of chunk(c)) multi.set(`naive:record:${r.type}:${r.id}`, JSON.stringify(r.data));
            await multi.exec();
          }
        }
      }),
    );
  } else if (what === 'naive-latest') {
    // SCAN + MGET over 100,000 keys, as the bench's naive snapshot.
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'naive:latest:*', 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) for (const value of await redis.mget(keys)) if (value !== null) JSON.parse(value);
    } while (cursor !== '0');
  } else if (what === 'put1') {
    for (let c = 0; c < n; c++) await broker.put([{ type: 't', id: `one-${c}`, data: payload }]);
  } else if (what === 'put') for (let c = 0; c < n; c++) await broker.put(chunk(c));
  else if (what === 'get') for (let i = 0; i < n; i++) await broker.get('t-4', 'i-500');
  else {
    const { stream } = await broker.syncLatest();
    for await (const _ of stream);
  }
}

if (what === 'naive-get') await redis.set('naive:record:t-4:i-500', JSON.stringify(payload));
if (what === 'naive-latest' && (await redis.exists('naive:latest:t-15:i-99999')) === 0) {
  for (let c = 0; c < 100; c++) {
    const pipeline = redis.pipeline();
    for (let k = 0; k < 1000; k++) {
      const i = c * 1000 + k;
      pipeline.set(`naive:latest:t-${i % 16}:i-${i}`, JSON.stringify(payload));
    }
    await pipeline.exec();
  }
}
if (what === 'get' || what === 'latest')
  for (let c = 0; c < (what === 'latest' ? 12_500 : 128); c++) await broker.put(chunk(c));
await run(Math.min(count, 2000)); // warm-up
// PROFILE=file.cpuprofile: a CPU profile of the measured part only (not start-up, not warm-up).
const session = process.env.PROFILE ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
// SERVER_PID: the server runs under callgrind; zero its counters here and dump them at the end.
const serverPid = process.env.SERVER_PID;
if (serverPid) execFileSync('callgrind_control', ['-z', serverPid]);
// SELF_CALLGRIND=1: this process runs under `valgrind --tool=callgrind --instr-atstart=no`; count
// the instructions of the measured part only.
if (process.env.SELF_CALLGRIND) execFileSync('callgrind_control', ['-i', 'on', String(process.pid)]);
const cpu = process.cpuUsage();
const start = performance.now();
await run(count);
const used = process.cpuUsage(cpu);
const ms = performance.now() - start;
if (serverPid) execFileSync('callgrind_control', ['-d', serverPid]);
if (process.env.SELF_CALLGRIND) execFileSync('callgrind_control', ['-d', String(process.pid)]);
if (session) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(process.env.PROFILE as string, JSON.stringify(profile));
  session.disconnect();
}
const ops = what.endsWith('latest') ? 1 : count;
console.log(
  `${what}: ${ops} ops in ${ms.toFixed(0)} ms; client CPU ${((used.user + used.system) / ops).toFixed(1)} µs/op (user ${(used.user / ops).toFixed(1)}, system ${(used.system / ops).toFixed(1)})`,
);
await broker.close();
await Promise.all(writerBrokers.map((b) => b.close()));
for (const c of writers) c.disconnect();
redis.disconnect();
await server?.stop();
