// @redis-events/event-store against a straight port of the Go extension it replaces
// (SET then RPUSH per append; LRANGE then one GET per key per read), both layouts:
// - appends one at a time (each awaited) and 64 at a time;
// - getEvents(name, 100) with a small and a large number of stored events (BENCH_EVENTS,
//   default 100 000; the report gives a run at 1 000 000), to show read latency does not grow.
// The filling is pipelined and happens in setup, outside the timed region.
import { randomBytes } from 'node:crypto';
import { CHANNELS, RedisEventStore } from '@redis-events/event-store';
import { Redis } from 'ioredis';
import { GoExtension } from '../../packages/event-store/test/go-extension.ts';
import { observeChannels } from '../lib/diagnostics.ts';
import { type BenchCase, benchRedisUrl, type RunResult, runSuite } from '../lib/harness.ts';

const LARGE = Number(process.env.BENCH_EVENTS ?? 100_000);
const SMALL = 1_000;
const SEQUENTIAL = 1_000; // appends per timed run, one at a time
const CONCURRENT = 64;
const BURST = 4_000; // appends per timed run, 64 in flight
const READS = 200; // getEvents(name, 100) per timed run
const PAYLOAD = { orderId: 'ord_7f3a9c', customer: 'cus_1842', amount: 129.95, currency: 'EUR', lines: 3 };

type Layout = 'stream' | 'timeline';

interface Context {
  readonly client: Redis;
  readonly prefix: string;
  readonly name: string;
  readonly store?: RedisEventStore;
  readonly go?: GoExtension;
}

function connect(): Redis {
  return new Redis(benchRedisUrl());
}

function ours(layout: Layout, maxEventsPerType: number) {
  return (): Context => {
    const client = connect();
    const prefix = `bench:es:${randomBytes(4).toString('hex')}`;
    const store = new RedisEventStore(client, { layout, prefix, maxEventsPerType });
    return { client, prefix, name: 'order.paid', store };
  };
}

/** Ours with a do-nothing listener on every diagnostics channel: what observing costs. */
function observed(layout: Layout, maxEventsPerType: number) {
  return (): Context => {
    observeChannels([CHANNELS.append, CHANNELS.read, CHANNELS.tail]);
    return ours(layout, maxEventsPerType)();
  };
}

function port(): Context {
  const client = connect();
  const prefix = `bench:es:${randomBytes(4).toString('hex')}`;
  return { client, prefix, name: 'order.paid', go: new GoExtension(client, prefix) };
}

function append(c: Context, n: number): Promise<unknown> {
  const event = { name: c.name, payload: { ...PAYLOAD, n } };
  return c.store ? c.store.storeEvent(event) : (c.go as GoExtension).storeEvent(event);
}

async function sequential(c: Context): Promise<RunResult> {
  for (let n = 0; n < SEQUENTIAL; n++) await append(c, n);
  return { ops: SEQUENTIAL };
}

async function concurrent(c: Context): Promise<RunResult> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < BURST) await append(c, next++);
  };
  await Promise.all(Array.from({ length: CONCURRENT }, worker));
  return { ops: BURST };
}

/** Stores `count` events, 512 in flight at a time. */
async function fill(c: Context, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await append(c, next++);
  };
  await Promise.all(Array.from({ length: 512 }, worker));
}

function filled(make: () => Context, count: number) {
  return async (): Promise<Context> => {
    const c = make();
    await fill(c, count);
    return c;
  };
}

async function reads(c: Context): Promise<RunResult> {
  for (let i = 0; i < READS; i++) {
    const events = c.store ? await c.store.getEvents(c.name, 100) : await (c.go as GoExtension).getEvents(c.name, 100);
    if (events.length !== 100) throw new Error(`read ${events.length} events instead of 100`);
  }
  return { ops: READS };
}

async function teardown(c: Context): Promise<void> {
  // Delete what the case stored (the server may be a REDIS_URL that is not ours to flush).
  if (c.store) await c.store.clearEvents(c.name);
  else await (c.go as GoExtension).clearEvents(c.name);
  await c.store?.close();
  c.client.disconnect();
}

/** The floor of a one-at-a-time append: one PING round trip. */
async function pings(c: Context): Promise<RunResult> {
  for (let n = 0; n < SEQUENTIAL; n++) await c.client.ping();
  return { ops: SEQUENTIAL };
}

const cases: BenchCase<Context>[] = [];
for (const layout of ['stream', 'timeline'] as const) {
  const seq = `${SEQUENTIAL} appends one at a time, ${layout} layout`;
  cases.push({ group: seq, subject: 'ours', setup: ours(layout, 1000), run: sequential, teardown });
  cases.push({ group: seq, subject: 'ours, observed', setup: observed(layout, 1000), run: sequential, teardown });
  cases.push({ group: seq, subject: 'Go extension port', setup: port, run: sequential, teardown });
  cases.push({ group: seq, subject: 'one PING each (round-trip floor)', setup: port, run: pings, teardown });
  const burst = `${BURST} appends, ${CONCURRENT} in flight, ${layout} layout`;
  cases.push({ group: burst, subject: 'ours', setup: ours(layout, 1000), run: concurrent, teardown });
  cases.push({ group: burst, subject: 'ours, observed', setup: observed(layout, 1000), run: concurrent, teardown });
  cases.push({ group: burst, subject: 'Go extension port', setup: port, run: concurrent, teardown });
  for (const size of [SMALL, LARGE]) {
    const group = `${READS} x getEvents(name, 100) with ${size.toLocaleString('en')} stored, ${layout} layout`;
    cases.push({ group, subject: 'ours', setup: filled(ours(layout, size), size), run: reads, teardown });
    cases.push({ group, subject: 'Go extension port', setup: filled(port, size), run: reads, teardown });
  }
}

await runSuite(import.meta.url, 'event-store: appends and reads against the Go extension', cases, { redis: true });
