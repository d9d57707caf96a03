// Subscribers side by side on one local Redis: ours (async iteration), ioredis 6 ('message'
// events) and @redis/client (node-redis: subscribe listeners), each at its default protocol
// (RESP3), all fed by the same pipelined publisher: a raw socket writing prebuilt PUBLISH
// commands, so that the publisher costs the same (next to nothing) for everyone.
//
// Bottleneck evidence, per run: `client cpu%` is this process's CPU time over the wall time
// (subscriber and publisher together; 100 = one core), `server cpu%` is redis-server's (INFO cpu).
// A "raw socket" subscriber that only counts bytes shows the ceiling set by the server.

import { subscribe as subscribeChannel, tracingChannel } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import { CHANNELS, createPubSubClient } from '@redis-events/pubsub';
import { encodeCommand } from '@redis-events/resp';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, type RunResult, runSuite } from '../lib/harness.ts';

const require = createRequire(import.meta.url);

/** A subscriber under test: counts what arrives on one channel. */
interface Subscriber {
  /** Resolves when `count` more messages arrived; returns the last payload. */
  expect(count: number): Promise<string>;
  close(): Promise<void>;
}

type Open = (url: string, channel: string) => Promise<Subscriber>;

/** Resolves once `count` messages were seen by `tick`. */
function counter() {
  let left = 0;
  let last = '';
  let done: ((last: string) => void) | undefined;
  return {
    tick(payload: string) {
      last = payload;
      if (--left === 0) done?.(last);
    },
    expect(count: number): Promise<string> {
      left = count;
      return new Promise((resolve) => {
        done = resolve;
      });
    },
  };
}

const ours: Open = async (url, channel) => {
  const client = createPubSubClient({ url, healthCheckInterval: 0 });
  const subscription = await client.subscribe(channel);
  const count = counter();
  let running = true;
  const loop = (async () => {
    while (running) {
      const result = await subscription.next();
      if (result.done) return;
      if (result.value.kind !== 'gap') count.tick(result.value.payload);
      else throw new Error(`gap in the benchmark: ${result.value.reason}, ${result.value.dropped} dropped`);
    }
  })();
  return {
    expect: (n) => count.expect(n),
    close: async () => {
      running = false;
      await client.close();
      await loop;
    },
  };
};

/** Ours with a listener on every diagnostics channel of the package: what observing costs. */
const oursObserved: Open = async (url, channel) => {
  const listener = (): void => {};
  for (const name of Object.values(CHANNELS)) {
    if (name === CHANNELS.subscribe || name === CHANNELS.publish) {
      tracingChannel(name).subscribe({
        start: listener,
        end: listener,
        asyncStart: listener,
        asyncEnd: listener,
        error: listener,
      });
    } else subscribeChannel(name, listener);
  }
  return ours(url, channel);
};

const ioredis: Open = async (url, channel) => {
  const client = new Redis(url);
  const count = counter();
  client.on('message', (_channel: string, message: string) => count.tick(message));
  await client.subscribe(channel);
  return { expect: (n) => count.expect(n), close: async () => void client.disconnect() };
};

interface NodeRedisClient {
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  destroy(): void;
  on(event: string, listener: (err: unknown) => void): unknown;
}

const nodeRedis: Open = async (url, channel) => {
  const { createClient } = require('@redis/client') as { createClient: (o: { url: string }) => NodeRedisClient };
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  const count = counter();
  await client.subscribe(channel, (message) => count.tick(message));
  return { expect: (n) => count.expect(n), close: async () => client.destroy() };
};

/** Reads the socket and counts message frames by their bytes only: what any client must at least do. */
const rawSocket =
  (frameLength: number): Open =>
  async (url, channel) => {
    const { hostname, port } = new URL(url);
    const socket = netConnect({ host: hostname, port: Number(port) });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.setNoDelay(true);
    let bytes = 0;
    let target = 0;
    let done: ((last: string) => void) | undefined;
    let subscribed: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (subscribed) {
        subscribed();
        subscribed = undefined;
        return;
      }
      bytes += chunk.length;
      if (bytes >= target && done) {
        const resolve = done;
        done = undefined;
        resolve('');
      }
    });
    await new Promise<void>((resolve) => {
      subscribed = resolve;
      socket.write(encodeCommand(['SUBSCRIBE', channel]));
    });
    return {
      expect(count) {
        target = bytes + count * frameLength;
        return new Promise((resolve) => {
          done = resolve;
        });
      },
      close: async () => void socket.destroy(),
    };
  };

/** The publisher: one socket, prebuilt PUBLISH commands, replies read and ignored. */
async function publisher(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = netConnect({ host: hostname, port: Number(port) });
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('data', () => {});
  return socket;
}

function publishes(channel: string, count: number, size: number): { bytes: Buffer; last: string } {
  const parts: Buffer[] = [];
  let last = '';
  for (let i = 0; i < count; i++) {
    last = String(i).padEnd(size, 'x');
    parts.push(encodeCommand(['PUBLISH', channel, last]));
  }
  return { bytes: Buffer.concat(parts), last };
}

/** One RESP3 push frame of a message on `channel` with a payload of `size` bytes. */
function frameLength(channel: string, size: number): number {
  const bulk = (n: number) => `$${n}\r\n`.length + n + 2;
  return '>3\r\n'.length + bulk(7) + bulk(channel.length) + bulk(size);
}

/** CPU seconds redis-server used so far. */
async function serverCpu(admin: Redis): Promise<number> {
  const text = await admin.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/**
 * redis-server's system-call and scheduling counters (Linux /proc, no tracing overhead), to see
 * how hard a subscriber makes the server work per message; undefined when the server is not
 * a local process we can read.
 */
function serverCounters(pid: number | undefined): Record<string, number> | undefined {
  if (pid === undefined) return undefined;
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (text: string, name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);
    return {
      writes: field(io, 'syscw'),
      written: field(io, 'wchar'),
      reads: field(io, 'syscr'),
      switches: field(status, 'voluntary_ctxt_switches') + field(status, 'nonvoluntary_ctxt_switches'),
    };
  } catch {
    return undefined;
  }
}

interface Context {
  subscribers: Subscriber[];
  publisher: Socket;
  admin: Redis;
  /** redis-server's pid when it runs on this machine. */
  serverPid: number | undefined;
  batch: { bytes: Buffer; last: string };
}

async function serverPid(admin: Redis): Promise<number | undefined> {
  const pid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1]);
  return serverCounters(pid) === undefined ? undefined : pid;
}

/**
 * Runs with CPU figures: this process and redis-server, as % of one core over the wall time;
 * and, per 1000 messages delivered, redis-server's CPU time, write and read system calls, and
 * its average write size.
 */
async function timed(
  admin: Redis,
  pid: number | undefined,
  messages: number,
  body: () => Promise<void>,
): Promise<Record<string, number>> {
  const serverBefore = await serverCpu(admin);
  const countersBefore = serverCounters(pid);
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await body();
  const wall = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const countersAfter = serverCounters(pid);
  const server = (await serverCpu(admin)) - serverBefore;
  const details: Record<string, number> = {
    'client cpu%': (100 * (cpu.user + cpu.system)) / 1e6 / wall,
    'server cpu%': (100 * server) / wall,
    'server ms/kmsg': (1e6 * server) / messages,
  };
  if (countersBefore && countersAfter) {
    const d = (k: string) => (countersAfter[k] as number) - (countersBefore[k] as number);
    details['server writes/kmsg'] = (1000 * d('writes')) / messages;
    details['server B/write'] = d('written') / Math.max(1, d('writes'));
    details['server reads/kmsg'] = (1000 * d('reads')) / messages;
    details['server cswitch/kmsg'] = (1000 * d('switches')) / messages;
  }
  return details;
}

function throughput(subject: string, open: Open, count: number, size: number, fanOut = 1): BenchCase<Context> {
  const channel = `bench:pubsub:${process.pid}:${size}`;
  return {
    group:
      fanOut === 1
        ? `1 subscriber, ${count / 1000}k messages of ${size} B, pipelined publisher`
        : `fan-out: ${fanOut} subscribers, ${count / 1000}k messages of ${size} B each`,
    subject,
    setup: async () => {
      const url = benchRedisUrl();
      const admin = new Redis(url);
      // The subscriber may lag the publisher: the server must not drop it for that.
      await admin.config('SET', 'client-output-buffer-limit', 'pubsub 0 0 0');
      const subscribers: Subscriber[] = [];
      for (let i = 0; i < fanOut; i++) subscribers.push(await open(url, channel));
      return {
        subscribers,
        publisher: await publisher(url),
        admin,
        serverPid: await serverPid(admin),
        batch: publishes(channel, count, size),
      };
    },
    run: async ({ subscribers, publisher, admin, serverPid, batch }): Promise<RunResult> => {
      let lasts: string[] = [];
      const details = await timed(admin, serverPid, count * fanOut, async () => {
        const received = Promise.all(subscribers.map((s) => s.expect(count)));
        publisher.write(batch.bytes);
        lasts = await received;
      });
      if (lasts.some((last) => last !== '' && last !== batch.last)) throw new Error('wrong last message');
      return { ops: count * fanOut, bytes: count * fanOut * size, details };
    },
    teardown: async ({ subscribers, publisher, admin }) => {
      publisher.destroy();
      await Promise.all(subscribers.map((s) => s.close()));
      admin.disconnect();
    },
  };
}

/** Publish-to-receive latency: one message at a time, the next once the previous arrived. */
function latency(subject: string, open: Open, count: number): BenchCase<Context> {
  const channel = `bench:pubsub:latency:${process.pid}`;
  const commands = Array.from({ length: count }, (_, i) =>
    encodeCommand(['PUBLISH', channel, String(i).padEnd(64, 'x')]),
  );
  return {
    group: `latency: ${count} messages of 64 B one at a time (µs)`,
    subject,
    setup: async () => {
      const url = benchRedisUrl();
      const admin = new Redis(url);
      return {
        subscribers: [await open(url, channel)],
        publisher: await publisher(url),
        admin,
        serverPid: undefined,
        batch: { bytes: Buffer.alloc(0), last: '' },
      };
    },
    run: async ({ subscribers, publisher }): Promise<RunResult> => {
      const subscriber = subscribers[0] as Subscriber;
      const samples = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const arrived = subscriber.expect(1);
        const start = performance.now();
        publisher.write(commands[i] as Buffer);
        await arrived;
        samples[i] = (performance.now() - start) * 1000;
      }
      samples.sort();
      const at = (q: number) => samples[Math.min(count - 1, Math.floor(q * count))] as number;
      return { ops: count, details: { 'p50 µs': at(0.5), 'p99 µs': at(0.99) } };
    },
    teardown: async ({ subscribers, publisher, admin }) => {
      publisher.destroy();
      await Promise.all(subscribers.map((s) => s.close()));
      admin.disconnect();
    },
  };
}

const SUBJECTS: [string, Open][] = [
  ['ours', ours],
  ['ioredis 6', ioredis],
  ['@redis/client', nodeRedis],
];

const cases: BenchCase<Context>[] = [];
for (const [count, size] of [
  [200_000, 64],
  [50_000, 1024],
] as const) {
  for (const [subject, open] of SUBJECTS) cases.push(throughput(subject, open, count, size));
  cases.push(throughput('ours, observed (a listener on each diagnostics channel)', oursObserved, count, size));
  const channel = `bench:pubsub:${process.pid}:${size}`;
  cases.push(throughput('raw socket, no parsing (ceiling)', rawSocket(frameLength(channel, size)), count, size));
}
for (const [subject, open] of SUBJECTS) cases.push(throughput(subject, open, 20_000, 64, 50));
for (const [subject, open] of SUBJECTS) cases.push(latency(subject, open, 2000));

await runSuite(import.meta.url, 'pubsub: subscribers against one local Redis (ops/s = messages delivered/s)', cases, {
  redis: true,
});
