// End-to-end throughput of at-least-once messaging on Redis Streams: one run sends N messages of
// 1 KiB and ends when every one of them was received and acknowledged (the ack confirmed by
// Redis), with 1 and with 4 consumers of one group, all on the same server. Contenders:
// - ours: Topic + Subscription(s) of @redis-events/streams-driver, default options, and with
//   sendMode 'script' (one EVALSHA per batch instead of a pipeline of XADDs);
// - ioredis loop: the straightforward code, XADD per message (awaited), and per consumer
//   XREADGROUP COUNT 1 then XACK per message;
// - redispubsub port: the algorithm of the Go driver github.com/covrom/redispubsub with go-cloud's
//   batchers (see redispubsub-port.ts).
// The producer makes the same calls for ours and the port: up to 1000 sends in flight.
// Each case also prints, for its last run, the CPU time of redis-server and of this process as a
// share of the wall time, Redis commands per message, and the ack latency p50/p99 under that
// full load; then the ack latency at a steady 2,000 messages/s, where no queue builds up.
// A send-only group shows where the time goes on the producer side. 'ours, observed' is ours with
// a do-nothing listener on every diagnostics channel: what observing costs.
import { CHANNELS, Subscription, Topic } from '@redis-events/streams-driver';
import { Redis } from 'ioredis';
import { observeChannels } from '../lib/diagnostics.ts';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';
import { type BenchTelemetry, instrumentForBench } from '../lib/opentelemetry.ts';
import { PortSubscription, PortTopic } from './redispubsub-port.ts';

const N = Number(process.env.BENCH_MESSAGES ?? 10_000);
const PACED = 1000; // messages for the ack latency at a steady, unsaturated rate
const PACED_RATE = 2000; // per second
const WINDOW = 1000;
const PAYLOAD = Buffer.alloc(1024, 0x61);

interface Contender {
  /** Sends N messages. */
  produce(run: number): Promise<void>;
  /** Sends message `i` of `run`. */
  sendOne(run: number, i: number): Promise<void>;
  /** Resolves when `target` distinct messages of `run` were acknowledged. */
  acked(run: number, target: number): Promise<void>;
  readonly latencies: number[];
  readonly tally: Tally;
  close(): Promise<void>;
}

interface Context {
  contender: Contender;
  admin: Redis;
  key: string;
  run: number;
  last?: CpuShare & { calls: number };
}

/** Tracks acknowledged messages per run and wakes the waiting run. */
class Tally {
  readonly #seen = new Map<number, Set<number>>();
  readonly #waiters = new Map<number, { target: number; resolve: () => void }>();
  duplicates = 0;

  add(body: Buffer): void {
    const [run, i] = body.subarray(0, 24).toString().split(':').map(Number) as [number, number];
    let set = this.#seen.get(run);
    if (!set) {
      set = new Set();
      this.#seen.set(run, set);
    }
    if (set.has(i)) this.duplicates++;
    set.add(i);
    const waiter = this.#waiters.get(run);
    if (waiter && set.size >= waiter.target) {
      this.#waiters.delete(run);
      waiter.resolve();
    }
  }

  wait(run: number, target: number): Promise<void> {
    if ((this.#seen.get(run)?.size ?? 0) >= target) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.set(run, { target, resolve }));
  }
}

function body(run: number, i: number): Buffer {
  const b = Buffer.from(PAYLOAD);
  b.write(`${run}:${i}:`.padEnd(24, ' '));
  return b;
}

async function inWindows(n: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(WINDOW, n) }, async () => {
      while (next < n) await send(next++);
    }),
  );
}

/** Records how long an ack took to be confirmed, and counts the message then. */
function timeAck(ack: Promise<void>, message: Buffer, latencies: number[], tally: Tally): void {
  const start = performance.now();
  void ack.then(() => {
    latencies.push(performance.now() - start);
    tally.add(message);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function ours(consumers: number, key: string, sendMode: 'pipeline' | 'script' = 'pipeline'): Contender {
  const url = benchRedisUrl();
  const client = new Redis(url);
  const topic = new Topic(client, key, { create: true, sendMode });
  const tally = new Tally();
  const latencies: number[] = [];
  const subs = Array.from(
    { length: consumers },
    (_, c) => new Subscription(client, { topic: key, group: 'g', consumer: `c${c}` }),
  );
  for (const sub of subs) {
    void (async () => {
      for await (const m of sub) timeAck(m.ack(), m.body, latencies, tally);
    })();
  }
  return {
    latencies,
    tally,
    async produce(run) {
      await Promise.all(subs.map((s) => s.ready()));
      await inWindows(N, (i) => topic.send({ body: body(run, i) }));
    },
    async sendOne(run, i) {
      await topic.send({ body: body(run, i) });
    },
    acked: (run, target) => tally.wait(run, target),
    async close() {
      await Promise.all(subs.map((s) => s.shutdown({ timeoutMs: 1000 })));
      await topic.shutdown();
      client.disconnect();
    },
  };
}

function ioredisLoop(consumers: number, key: string): Contender {
  const url = benchRedisUrl();
  const producer = new Redis(url);
  const tally = new Tally();
  const latencies: number[] = [];
  let stopped = false;
  const connections = Array.from({ length: consumers }, () => new Redis(url));
  const ready = producer.call('xgroup', 'CREATE', key, 'g', '$', 'MKSTREAM').catch(() => {});
  for (const [c, conn] of connections.entries()) {
    void (async () => {
      await ready;
      while (!stopped) {
        const reply = (await conn
          .xreadgroupBuffer('GROUP', 'g', `c${c}`, 'COUNT', 1, 'BLOCK', 1000, 'STREAMS', key, '>')
          .catch(() => null)) as [Buffer, [Buffer, Buffer[]][]][] | null;
        const entry = reply?.[0]?.[1]?.[0];
        if (!entry) continue;
        const start = performance.now();
        await conn.xack(key, 'g', entry[0]);
        latencies.push(performance.now() - start);
        tally.add(entry[1][1] as Buffer);
      }
    })();
  }
  return {
    latencies,
    tally,
    async produce(run) {
      await ready;
      for (let i = 0; i < N; i++) await producer.xadd(key, '*', 'body', body(run, i));
    },
    async sendOne(run, i) {
      await producer.xadd(key, '*', 'body', body(run, i));
    },
    acked: (run, target) => tally.wait(run, target),
    async close() {
      stopped = true;
      for (const c of [producer, ...connections]) c.disconnect();
    },
  };
}

function port(consumers: number, key: string): Contender {
  const url = benchRedisUrl();
  const producer = new Redis(url);
  const topic = new PortTopic(producer, key);
  const tally = new Tally();
  const latencies: number[] = [];
  const connections: Redis[] = [producer];
  let stopped = false;
  const ready = producer.call('xgroup', 'CREATE', key, 'g', '$', 'MKSTREAM').catch(() => {});
  for (let c = 0; c < consumers; c++) {
    const reads = new Redis(url);
    const acks = new Redis(url);
    connections.push(reads, acks);
    const sub = new PortSubscription(reads, acks, key, 'g', `c${c}`);
    void (async () => {
      await ready;
      while (!stopped) {
        const m = await sub.receive().catch(() => undefined);
        if (m) timeAck(sub.ack(m.id), m.body, latencies, tally);
      }
    })();
  }
  return {
    latencies,
    tally,
    async produce(run) {
      await ready;
      await inWindows(N, (i) => topic.send(body(run, i)));
    },
    async sendOne(run, i) {
      await topic.send(body(run, i));
    },
    acked: (run, target) => tally.wait(run, target),
    async close() {
      stopped = true;
      for (const c of connections) c.disconnect();
    },
  };
}

/** Sends PACED messages at PACED_RATE per second and returns the sorted ack latencies. */
async function pacedLatency(ctx: Context): Promise<number[]> {
  const run = ++ctx.run;
  ctx.contender.latencies.length = 0;
  const perTick = 10;
  const sent: Promise<void>[] = [];
  for (let i = 0; i < PACED; i += perTick) {
    const tick = Promise.all(Array.from({ length: perTick }, (_, j) => ctx.contender.sendOne(run, i + j))).then(
      () => {},
    );
    sent.push(tick);
    await new Promise((resolve) => setTimeout(resolve, (1000 * perTick) / PACED_RATE));
  }
  await Promise.all(sent);
  await ctx.contender.acked(run, PACED);
  return [...ctx.contender.latencies].sort((a, b) => a - b);
}

async function redisCpuMs(admin: Redis): Promise<number> {
  const info = (await admin.info('cpu')).split('\r\n');
  const get = (name: string) => Number(info.find((l) => l.startsWith(`${name}:`))?.split(':')[1] ?? 0);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
}

interface CpuShare {
  wallMs: number;
  nodeCpuMs: number;
  redisCpuMs: number;
}

/** Runs `work` and measures the wall time, this process' CPU time and redis-server's. */
async function measureCpu(admin: Redis, work: () => Promise<unknown>): Promise<CpuShare> {
  const redisBefore = await redisCpuMs(admin);
  const nodeBefore = process.cpuUsage();
  const start = performance.now();
  await work();
  const wallMs = performance.now() - start;
  const node = process.cpuUsage(nodeBefore);
  return { wallMs, nodeCpuMs: (node.user + node.system) / 1000, redisCpuMs: (await redisCpuMs(admin)) - redisBefore };
}

async function totalCalls(admin: Redis): Promise<number> {
  const info = (await admin.info('commandstats')).split('\r\n');
  let calls = 0;
  for (const line of info) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line);
    if (match && match[1] !== 'info' && match[1] !== 'config') calls += Number(match[2]);
  }
  return calls;
}

/**
 * The same contender in a process where the OpenTelemetry SDK and @redis-events/opentelemetry are
 * installed (each case runs in its own process): what instrumentation costs.
 */
function instrumented(
  make: (consumers: number, key: string) => Contender,
): (consumers: number, key: string) => Contender {
  return (consumers, key) => {
    const telemetry: BenchTelemetry = instrumentForBench();
    const contender = make(consumers, key);
    return {
      ...contender,
      async close() {
        await contender.close();
        const { spans } = await telemetry.close();
        process.stderr.write(`    with the OpenTelemetry instrumentation: ${spans} spans exported\n`);
      },
    };
  };
}

function makeCase(
  group: string,
  subject: string,
  consumers: number,
  make: (consumers: number, key: string) => Contender,
): BenchCase<Context> {
  return {
    group,
    subject,
    setup: () => {
      const key = `bench:streams-driver:${subject.replace(/\W+/g, '-')}:${consumers}:${process.pid}`;
      return { contender: make(consumers, key), admin: new Redis(benchRedisUrl()), key, run: 0 };
    },
    run: async (ctx) => {
      const run = ++ctx.run;
      await ctx.admin.call('config', 'RESETSTAT');
      ctx.contender.latencies.length = 0;
      const cpu = await measureCpu(ctx.admin, () =>
        Promise.all([ctx.contender.produce(run), ctx.contender.acked(run, N)]),
      );
      ctx.last = { ...cpu, calls: await totalCalls(ctx.admin) };
      return { ops: N, bytes: N * PAYLOAD.length };
    },
    teardown: async (ctx) => {
      const sorted = [...ctx.contender.latencies].sort((a, b) => a - b);
      const l = ctx.last;
      const paced = await pacedLatency(ctx);
      if (l) {
        process.stderr.write(
          `    ${group} / ${subject}: redis-server CPU ${((100 * l.redisCpuMs) / l.wallMs).toFixed(0)}% of wall, ` +
            `this process ${((100 * l.nodeCpuMs) / l.wallMs).toFixed(0)}%; ${(l.calls / N).toFixed(3)} Redis commands per message; ` +
            `ack latency p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms; ` +
            `duplicate deliveries ${ctx.contender.tally.duplicates}; ` +
            `at ${PACED_RATE}/s: ack latency p50 ${percentile(paced, 50).toFixed(2)} ms, p99 ${percentile(paced, 99).toFixed(2)} ms\n`,
        );
      }
      await ctx.contender.close();
      await ctx.admin.unlink(ctx.key, `{${ctx.key}}:dead`);
      ctx.admin.disconnect();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: cases of one suite have different context types
const cases: BenchCase<any>[] = [];
for (const consumers of [1, 4]) {
  const group = `${N} messages of 1 KiB, send + receive + ack, ${consumers} consumer${consumers > 1 ? 's' : ''}`;
  cases.push(makeCase(group, 'ours', consumers, ours));
  cases.push(makeCase(group, 'ours, sendMode script', consumers, (c, key) => ours(c, key, 'script')));
  cases.push(makeCase(group, 'ours, with the OpenTelemetry instrumentation', consumers, instrumented(ours)));
  cases.push(
    makeCase(group, 'ours, observed (a listener on each diagnostics channel)', consumers, (c, key) => {
      observeChannels(
        [CHANNELS.send, CHANNELS.receive, CHANNELS.ack, CHANNELS.nack],
        [CHANNELS.redelivery, CHANNELS.deadLetter],
      );
      return ours(c, key);
    }),
  );
  cases.push(makeCase(group, 'ioredis loop', consumers, ioredisLoop));
  cases.push(makeCase(group, 'redispubsub port', consumers, port));
}

interface SendContext {
  send: (i: number) => Promise<unknown>;
  sequential: boolean;
  admin: Redis;
  key: string;
  close: () => Promise<void>;
  last?: CpuShare;
}

function sendCase(
  subject: string,
  make: (redis: Redis, key: string) => Pick<SendContext, 'send' | 'sequential' | 'close'>,
): BenchCase<SendContext> {
  return {
    group: `send only: ${N} messages of 1 KiB`,
    subject,
    setup: () => {
      const key = `bench:streams-driver:send:${subject.replace(/\W+/g, '-')}:${process.pid}`;
      const redis = new Redis(benchRedisUrl());
      return { ...make(redis, key), admin: new Redis(benchRedisUrl()), key };
    },
    run: async (ctx) => {
      await ctx.admin.unlink(ctx.key);
      ctx.last = await measureCpu(ctx.admin, async () => {
        if (ctx.sequential) for (let i = 0; i < N; i++) await ctx.send(i);
        else await inWindows(N, ctx.send);
      });
      if ((await ctx.admin.xlen(ctx.key)) !== N)
        throw new Error(`${subject} stored ${await ctx.admin.xlen(ctx.key)} of ${N}`);
      return { ops: N, bytes: N * PAYLOAD.length };
    },
    teardown: async (ctx) => {
      const l = ctx.last;
      if (l) {
        process.stderr.write(
          `    send only / ${subject}: redis-server CPU ${((100 * l.redisCpuMs) / l.wallMs).toFixed(0)}% of wall, ` +
            `this process ${((100 * l.nodeCpuMs) / l.wallMs).toFixed(0)}%; ` +
            `per message: redis-server ${((1000 * l.redisCpuMs) / N).toFixed(2)} µs, this process ${((1000 * l.nodeCpuMs) / N).toFixed(2)} µs\n`,
        );
      }
      await ctx.close();
      await ctx.admin.unlink(ctx.key);
      ctx.admin.disconnect();
    },
  };
}

const message = Buffer.from(PAYLOAD);
for (const variant of ['pipeline', 'script', 'instrumented'] as const) {
  const subject = {
    pipeline: 'ours',
    script: 'ours, sendMode script',
    instrumented: 'ours, with the OpenTelemetry instrumentation',
  }[variant];
  cases.push(
    sendCase(subject, (redis, key) => {
      const telemetry = variant === 'instrumented' ? instrumentForBench() : undefined;
      const topic = new Topic(redis, key, { create: true, sendMode: variant === 'script' ? 'script' : 'pipeline' });
      return {
        sequential: false,
        send: () => topic.send({ body: message }),
        close: async () => {
          await topic.shutdown();
          redis.disconnect();
          if (telemetry === undefined) return;
          const { spans } = await telemetry.close();
          process.stderr.write(`    send only, with the OpenTelemetry instrumentation: ${spans} spans exported\n`);
        },
      };
    }),
  );
}
cases.push(
  sendCase('ioredis loop', (redis, key) => ({
    sequential: true,
    send: () => redis.xadd(key, '*', 'body', message),
    close: async () => redis.disconnect(),
  })),
);
cases.push(
  sendCase('redispubsub port', (redis, key) => {
    const topic = new PortTopic(redis, key);
    return { sequential: false, send: () => topic.send(message), close: async () => redis.disconnect() };
  }),
);

await runSuite(import.meta.url, 'streams-driver: end-to-end throughput', cases, { redis: true });
