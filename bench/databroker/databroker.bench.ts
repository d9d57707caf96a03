// @redis-events/databroker against what a user would write instead with ioredis alone: one key
// per record with a version counter (puts, gets, a SCAN snapshot), and a Redis Stream as the
// change feed (sync throughput, wake-up latency). The naive designs do less: no per-record
// versions in the data, no consistent snapshot point, no deletes in the feed, no capacity. The
// ratios show what those guarantees cost.
//
// Shapes follow Pomerium's storage benchmarks: puts in chunks of 8 records of 128-byte data over
// 16 types; gets of one record among 1,024.
import { subscribe, tracingChannel } from 'node:diagnostics_channel';
import { DataBroker, DIAGNOSTICS_CHANNELS } from '@redis-events/databroker';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';

const PAYLOAD = 'x'.repeat(128);
const TYPES = 16;
const CHUNK = 8;

/** Chunk `c` of the put workload: records c*8 .. c*8+7, types t-(i % 16). */
function chunk(c: number): { type: string; id: string; data: string }[] {
  return Array.from({ length: CHUNK }, (_, k) => {
    const i = c * CHUNK + k;
    return { type: `t-${i % TYPES}`, id: `i-${i}`, data: PAYLOAD };
  });
}

function client(): Redis {
  return new Redis(benchRedisUrl());
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

/** Runs `work` for every chunk below `count`, `lanes` at a time. */
function inLanes(lanes: number, count: number, work: (c: number) => Promise<unknown>): Promise<unknown> {
  return Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let c = lane; c < count; c += lanes) await work(c);
    }),
  );
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`wrong result: ${what}`);
}

// ------------------------------------------------------------------------------------------- puts

const PUT_CHUNKS = 512; // 4,096 records per run

interface PutContext {
  redis: Redis;
  broker?: DataBroker<string>;
}

async function putSetup(): Promise<PutContext> {
  const redis = client();
  return { redis, broker: new DataBroker<string>(redis, { name: 'bench-put', expiryMs: 0 }) };
}

function modeSetup(scripting: boolean): () => Promise<PutContext> {
  return async () => {
    const redis = client();
    return { redis, broker: new DataBroker<string>(redis, { name: `bench-put-${scripting}`, expiryMs: 0, scripting }) };
  };
}

/** Subscribers on every channel the backend publishes, doing what a tracer would: read the context. */
let observed = 0;
async function tracedSetup(): Promise<PutContext> {
  const count = (context: unknown) => {
    if (context) observed++;
  };
  tracingChannel(DIAGNOSTICS_CHANNELS.put).subscribe({
    start: count,
    end: count,
    asyncStart: count,
    asyncEnd: count,
    error: count,
  });
  subscribe(DIAGNOSTICS_CHANNELS.sync, count);
  const redis = client();
  return { redis, broker: new DataBroker<string>(redis, { name: 'bench-put-traced', expiryMs: 0 }) };
}

async function naiveSetup(): Promise<PutContext> {
  return { redis: client() };
}

/** What a quick one-key-per-record design does: a counter and one SET per record, in MULTI. */
function naivePut(redis: Redis, records: { type: string; id: string; data: string }[]): Promise<unknown> {
  const multi = redis.multi().incrby('naive:version', records.length);
  for (const r of records) multi.set(`naive:record:${r.type}:${r.id}`, JSON.stringify(r.data));
  return multi.exec();
}

async function teardown({ redis, broker }: PutContext): Promise<void> {
  await broker?.close();
  redis.disconnect();
}

const sequentialGroup = `put: ${PUT_CHUNKS * CHUNK} records in puts of ${CHUNK}, one put at a time`;

/** Our puts one at a time, checking that the last one got its eight versions. */
async function sequentialPuts({ broker }: PutContext): Promise<{ ops: number }> {
  let last = 0;
  for (let c = 0; c < PUT_CHUNKS; c++)
    last = (await (broker as DataBroker<string>).put(chunk(c))).records[7]?.version ?? 0;
  check(last >= PUT_CHUNKS * CHUNK, 'versions');
  return { ops: PUT_CHUNKS * CHUNK };
}

const putCases: BenchCase<PutContext>[] = [
  { group: sequentialGroup, subject: 'ours', setup: putSetup, run: sequentialPuts, teardown },
  {
    group: sequentialGroup,
    subject: 'ours, scripts only (scripting: true)',
    setup: modeSetup(true),
    run: sequentialPuts,
    teardown,
  },
  {
    group: sequentialGroup,
    subject: 'ours, without scripting (scripting: false)',
    setup: modeSetup(false),
    run: sequentialPuts,
    teardown,
  },
  {
    group: sequentialGroup,
    subject: 'ours, with diagnostics_channel subscribers',
    setup: tracedSetup,
    async run(context) {
      const before = observed;
      const result = await sequentialPuts(context);
      check(observed - before === PUT_CHUNKS * 4, 'traced');
      return result;
    },
    teardown,
  },
  {
    group: sequentialGroup,
    subject: 'naive key per record (ioredis MULTI)',
    setup: naiveSetup,
    async run({ redis }) {
      for (let c = 0; c < PUT_CHUNKS; c++) await naivePut(redis, chunk(c));
      check((await redis.exists(`naive:record:t-0:i-0`)) === 1, 'stored');
      return { ops: PUT_CHUNKS * CHUNK };
    },
    teardown,
  },
  {
    group: `put: ${PUT_CHUNKS * CHUNK} records in puts of ${CHUNK}, 16 puts in flight`,
    subject: 'ours',
    setup: putSetup,
    async run({ broker }) {
      await inLanes(16, PUT_CHUNKS, (c) => (broker as DataBroker<string>).put(chunk(c)));
      return { ops: PUT_CHUNKS * CHUNK };
    },
    teardown,
  },
  {
    group: `put: ${PUT_CHUNKS * CHUNK} records in puts of ${CHUNK}, 16 puts in flight`,
    subject: 'naive key per record (ioredis MULTI)',
    setup: naiveSetup,
    async run({ redis }) {
      await inLanes(16, PUT_CHUNKS, (c) => naivePut(redis, chunk(c)));
      return { ops: PUT_CHUNKS * CHUNK };
    },
    teardown,
  },
];

// -------------------------------------------------------------------------- contending writers

const CONTENDERS = 16;
const CONTENDED_PUTS = 100; // per writer

interface ContendContext {
  clients: Redis[];
  brokers: DataBroker<string>[];
}

async function contendTeardown({ clients, brokers }: ContendContext): Promise<void> {
  await Promise.all(brokers.map((b) => b.close()));
  for (const c of clients) c.disconnect();
}

const contendGroup = `put: ${CONTENDERS} writers on ${CONTENDERS} connections, ${CONTENDED_PUTS} single-record puts each`;

/** Every writer puts its records one at a time, all writers at once. */
async function contend(
  put: (writer: number, i: number) => Promise<unknown>,
  writers: number,
): Promise<{ ops: number }> {
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < CONTENDED_PUTS; i++) await put(w, i);
    }),
  );
  return { ops: writers * CONTENDED_PUTS };
}

function contendSetup(name: string, scripting: boolean | 'auto'): () => ContendContext {
  return () => {
    const clients = Array.from({ length: CONTENDERS }, client);
    return { clients, brokers: clients.map((c) => new DataBroker<string>(c, { name, expiryMs: 0, scripting })) };
  };
}

const contendOurs = ({ brokers }: ContendContext) =>
  contend(
    (w, i) => (brokers[w] as DataBroker<string>).put([{ type: 't', id: `${w}-${i}`, data: PAYLOAD }]),
    brokers.length,
  );

const contendCases: BenchCase<ContendContext>[] = [
  {
    group: contendGroup,
    subject: 'ours',
    setup: contendSetup('bench-contend', 'auto'),
    run: contendOurs,
    teardown: contendTeardown,
  },
  {
    group: contendGroup,
    subject: 'ours, scripts only (scripting: true)',
    setup: contendSetup('bench-contend-scripts', true),
    run: contendOurs,
    teardown: contendTeardown,
  },
  {
    group: contendGroup,
    subject: 'ours, without scripting (scripting: false)',
    setup: contendSetup('bench-contend-watch', false),
    run: contendOurs,
    teardown: contendTeardown,
  },
  {
    group: contendGroup,
    subject: 'naive key per record (ioredis MULTI)',
    setup: () => ({ clients: Array.from({ length: CONTENDERS }, client), brokers: [] }),
    run: ({ clients }) =>
      contend((w, i) => naivePut(clients[w] as Redis, [{ type: 't', id: `${w}-${i}`, data: PAYLOAD }]), clients.length),
    teardown: contendTeardown,
  },
];

// ------------------------------------------------------------------------------------------- gets

const GETS = 2000;

const getCases: BenchCase<PutContext>[] = [
  {
    group: `get: ${GETS} gets of one record among 1,024, one at a time (latency = 1 / ops)`,
    subject: 'ours',
    async setup() {
      const context = await putSetup();
      for (let c = 0; c < 128; c++) await context.broker?.put(chunk(c));
      return context;
    },
    async run({ broker }) {
      for (let i = 0; i < GETS; i++) {
        const record = await (broker as DataBroker<string>).get('t-4', 'i-500');
        if (i === 0) check(record?.data === PAYLOAD, 'get');
      }
      return { ops: GETS };
    },
    teardown,
  },
  {
    group: `get: ${GETS} gets of one record among 1,024, one at a time (latency = 1 / ops)`,
    subject: 'naive key per record (GET + JSON.parse)',
    async setup() {
      const context = await naiveSetup();
      for (let c = 0; c < 128; c++) await naivePut(context.redis, chunk(c));
      return context;
    },
    async run({ redis }) {
      for (let i = 0; i < GETS; i++) {
        const text = await redis.get('naive:record:t-4:i-500');
        const data = text === null ? undefined : JSON.parse(text);
        if (i === 0) check(data === PAYLOAD, 'get');
      }
      return { ops: GETS };
    },
    teardown,
  },
];

// ------------------------------------------------------------------------------------------- sync

const SYNC_CHUNKS = 256; // 2,048 changes per run

interface SyncContext {
  writerRedis: Redis;
  readerRedis: Redis;
  writer?: DataBroker<string>;
  reader?: DataBroker<string>;
  latencies: number[];
  peakHeap: number[];
}

async function syncSetup(): Promise<SyncContext> {
  const writerRedis = client();
  const readerRedis = client();
  const name = 'bench-sync';
  return {
    writerRedis,
    readerRedis,
    writer: new DataBroker<string>(writerRedis, { name, expiryMs: 0 }),
    reader: new DataBroker<string>(readerRedis, { name, expiryMs: 0 }),
    latencies: [],
    peakHeap: [],
  };
}

async function streamSetup(): Promise<SyncContext> {
  const writerRedis = client();
  await writerRedis.del('naive:feed');
  return { writerRedis, readerRedis: client(), latencies: [], peakHeap: [] };
}

async function syncTeardown(context: SyncContext): Promise<void> {
  await context.writer?.close();
  await context.reader?.close();
  context.writerRedis.disconnect();
  context.readerRedis.disconnect();
  if (context.latencies.length > 0) {
    const sorted = [...context.latencies].sort((a, b) => a - b);
    process.stderr.write(
      `    wake-up latency: p50 ${percentile(sorted, 0.5).toFixed(3)} ms, p99 ${percentile(sorted, 0.99).toFixed(3)} ms over ${sorted.length} changes\n`,
    );
  }
  if (context.peakHeap.length > 0) {
    const sorted = [...context.peakHeap].sort((a, b) => a - b);
    process.stderr.write(
      `    peak heap growth: median ${(percentile(sorted, 0.5) / 1048576).toFixed(1)} MiB over ${sorted.length} runs\n`,
    );
  }
}

/** The naive feed: XADD in the writer's MULTI, XREAD BLOCK in the reader. */
function naiveFeedPut(redis: Redis, records: { type: string; id: string; data: string }[]): Promise<unknown> {
  const multi = redis.multi();
  for (const r of records) {
    multi.set(`naive:record:${r.type}:${r.id}`, JSON.stringify(r.data));
    multi.xadd('naive:feed', '*', 'type', r.type, 'id', r.id, 'data', JSON.stringify(r.data));
  }
  return multi.exec();
}

async function naiveFeedRead(redis: Redis, after: string, count: number): Promise<string> {
  let cursor = after;
  let got = 0;
  while (got < count) {
    const reply = (await redis.xread('COUNT', 1000, 'BLOCK', 0, 'STREAMS', 'naive:feed', cursor)) as
      | [string, [string, string[]][]][]
      | null;
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, fields] of entries) {
      cursor = id;
      JSON.parse(fields[5] as string);
      got++;
    }
  }
  return cursor;
}

async function lastFeedId(redis: Redis): Promise<string> {
  const last = (await redis.xrevrange('naive:feed', '+', '-', 'COUNT', 1)) as [string, string[]][];
  return last[0]?.[0] ?? '0-0';
}

const syncCases: BenchCase<SyncContext>[] = [
  {
    group: `sync: ${SYNC_CHUNKS * CHUNK} changes written in puts of ${CHUNK}, one waiting reader draining`,
    subject: 'ours',
    setup: syncSetup,
    async run({ writer, reader }) {
      const w = writer as DataBroker<string>;
      const r = reader as DataBroker<string>;
      const { serverVersion, latestRecordVersion } = await r.versions();
      const total = SYNC_CHUNKS * CHUNK;
      const stream = r.sync('', serverVersion, latestRecordVersion);
      const reading = (async () => {
        let n = 0;
        for await (const record of stream) {
          check(record.version === latestRecordVersion + n + 1, 'order');
          if (++n === total) break;
        }
      })();
      await inLanes(4, SYNC_CHUNKS, (c) => w.put(chunk(c)));
      await reading;
      return { ops: total };
    },
    teardown: syncTeardown,
  },
  {
    group: `sync: ${SYNC_CHUNKS * CHUNK} changes written in puts of ${CHUNK}, one waiting reader draining`,
    subject: 'naive Redis Stream (XADD in MULTI, XREAD BLOCK)',
    setup: streamSetup,
    async run({ writerRedis, readerRedis }) {
      const total = SYNC_CHUNKS * CHUNK;
      const after = await lastFeedId(writerRedis);
      const reading = naiveFeedRead(readerRedis, after, total);
      await inLanes(4, SYNC_CHUNKS, (c) => naiveFeedPut(writerRedis, chunk(c)));
      await reading;
      return { ops: total };
    },
    teardown: syncTeardown,
  },
];

// ---------------------------------------------------------------------------------------- wake-up

const WAKEUPS = 300;

const wakeCases: BenchCase<SyncContext>[] = [
  {
    group: `wake-up: ${WAKEUPS} single-record puts, each awaited by a reader in another backend (end-to-end)`,
    subject: 'ours',
    setup: syncSetup,
    async run(context) {
      const w = context.writer as DataBroker<string>;
      const r = context.reader as DataBroker<string>;
      const { serverVersion, latestRecordVersion } = await r.versions();
      const stream = r.sync('', serverVersion, latestRecordVersion);
      for (let i = 0; i < WAKEUPS; i++) {
        const start = performance.now();
        const next = stream.next();
        await w.put([{ type: 'wake', id: `w-${i}`, data: PAYLOAD }]);
        const got = await next;
        context.latencies.push(performance.now() - start);
        check(!got.done && got.value.id === `w-${i}`, 'wake-up');
      }
      await stream.close();
      return { ops: WAKEUPS };
    },
    teardown: syncTeardown,
  },
  {
    group: `wake-up: ${WAKEUPS} single-record puts, each awaited by a reader in another backend (end-to-end)`,
    subject: 'naive Redis Stream (XADD in MULTI, XREAD BLOCK)',
    setup: streamSetup,
    async run(context) {
      let cursor = await lastFeedId(context.writerRedis);
      for (let i = 0; i < WAKEUPS; i++) {
        const start = performance.now();
        const reading = naiveFeedRead(context.readerRedis, cursor, 1);
        await naiveFeedPut(context.writerRedis, [{ type: 'wake', id: `w-${i}`, data: PAYLOAD }]);
        cursor = await reading;
        context.latencies.push(performance.now() - start);
      }
      return { ops: WAKEUPS };
    },
    teardown: syncTeardown,
  },
];

// ------------------------------------------------------------------------------------ syncLatest

const LATEST = 100_000;

function heapSampler(): () => number {
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 5);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage().heapUsed) - base;
  };
}

const latestCases: BenchCase<SyncContext>[] = [
  {
    group: `syncLatest: a snapshot of ${LATEST.toLocaleString('en')} records over 16 types`,
    subject: 'ours',
    async setup() {
      const context = await syncSetup();
      const r = context.reader as DataBroker<string>;
      const w = new DataBroker<string>(context.writerRedis, { name: 'bench-latest', expiryMs: 0 });
      if ((await w.versions()).latestRecordVersion < LATEST) {
        for (let c = 0; c < LATEST / 1000; c++) {
          await w.put(
            Array.from({ length: 1000 }, (_, k) => {
              const i = c * 1000 + k;
              return { type: `t-${i % TYPES}`, id: `i-${i}`, data: PAYLOAD };
            }),
          );
        }
      }
      await w.close();
      await r.close();
      context.reader = new DataBroker<string>(context.readerRedis, { name: 'bench-latest', expiryMs: 0 });
      return context;
    },
    async run(context) {
      const peak = heapSampler();
      const { stream } = await (context.reader as DataBroker<string>).syncLatest();
      let n = 0;
      for await (const record of stream) if (record.data?.length === 128) n++;
      context.peakHeap.push(peak());
      check(n === LATEST, `${n} records`);
      return { ops: LATEST };
    },
    teardown: syncTeardown,
  },
  {
    group: `syncLatest: a snapshot of ${LATEST.toLocaleString('en')} records over 16 types`,
    subject: 'naive key per record (SCAN + MGET)',
    async setup() {
      const context = await streamSetup();
      const redis = context.writerRedis;
      if ((await redis.exists(`naive:latest:t-${(LATEST - 1) % TYPES}:i-${LATEST - 1}`)) === 0) {
        for (let c = 0; c < LATEST / 1000; c++) {
          const pipeline = redis.pipeline();
          for (let k = 0; k < 1000; k++) {
            const i = c * 1000 + k;
            pipeline.set(`naive:latest:t-${i % TYPES}:i-${i}`, JSON.stringify(PAYLOAD));
          }
          await pipeline.exec();
        }
      }
      return context;
    },
    async run(context) {
      const peak = heapSampler();
      const redis = context.readerRedis;
      let cursor = '0';
      let n = 0;
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', 'naive:latest:*', 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        for (const value of await redis.mget(keys))
          if (value !== null && (JSON.parse(value) as string).length === 128) n++;
      } while (cursor !== '0');
      context.peakHeap.push(peak());
      check(n === LATEST, `${n} records`);
      return { ops: LATEST };
    },
    teardown: syncTeardown,
  },
];

await runSuite(
  import.meta.url,
  'databroker: versioned records with change sync',
  [...putCases, ...contendCases, ...getCases, ...syncCases, ...wakeCases, ...latestCases],
  { redis: true },
);
