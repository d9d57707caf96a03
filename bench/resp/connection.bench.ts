// Whole clients side by side on one local Redis: our connection, ioredis 6 (with and without
// auto-pipelining) and @redis/client (node-redis), each sending the same concurrent commands
// (Promise.all of single commands, as application code does) and checking the replies.
// "ours, traced" is ours with a subscriber on the redis-events:resp:command TracingChannel that
// times each command, as a tracer would: the cost of being watched (unwatched, it is "ours").
import { tracingChannel } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { type CommandTraceContext, RESP_COMMAND_CHANNEL, RespConnection } from '@redis-events/resp';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';

const require = createRequire(import.meta.url);

interface Client {
  get(key: string): Promise<unknown>;
  set(key: string, value: string | Buffer): Promise<unknown>;
  close(): Promise<void>;
}

async function ours(url: string): Promise<Client> {
  const connection = new RespConnection(url);
  await connection.connect();
  return {
    get: (key) => connection.send(['GET', key]),
    set: (key, value) => connection.send(['SET', key, value]),
    close: () => connection.close(),
  };
}

/** Ours with a subscriber that keeps a start time on each context and sums the durations. */
async function oursTraced(url: string): Promise<Client> {
  const started = new WeakMap<CommandTraceContext, number>();
  let total = 0;
  let count = 0;
  tracingChannel<unknown, CommandTraceContext>(RESP_COMMAND_CHANNEL).subscribe({
    start: (context) => {
      started.set(context, performance.now());
    },
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (context) => {
      total += performance.now() - (started.get(context) ?? 0);
      count++;
    },
    error: () => {},
  });
  const client = await ours(url);
  return {
    ...client,
    close: async () => {
      await client.close();
      if (count === 0 || !(total >= 0)) throw new Error('the subscriber saw no command');
    },
  };
}

async function ioredis(url: string, enableAutoPipelining: boolean): Promise<Client> {
  const client = new Redis(url, { enableAutoPipelining } as never);
  await new Promise((resolve, reject) => client.once('ready', resolve).once('error', reject));
  return {
    get: (key) => client.get(key),
    set: (key, value) => client.set(key, value),
    close: async () => {
      client.disconnect();
    },
  };
}

interface NodeRedisClient {
  connect(): Promise<unknown>;
  get(key: string): Promise<unknown>;
  set(key: string, value: string | Buffer): Promise<unknown>;
  destroy?(): void;
  disconnect?(): Promise<void>;
  on(event: string, listener: (err: unknown) => void): unknown;
}

async function nodeRedis(url: string): Promise<Client> {
  const { createClient } = require('@redis/client') as { createClient: (o: { url: string }) => NodeRedisClient };
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  return {
    get: (key) => client.get(key),
    set: (key, value) => client.set(key, value),
    close: async () => {
      if (client.destroy) client.destroy();
      else await client.disconnect?.();
    },
  };
}

interface Context {
  client: Client;
  prefix: string;
}

const CONCURRENT = 1000;
const ROUNDS = 10;

function workload(name: string, valueSize: number, op: 'get' | 'set') {
  const value = 'v'.repeat(valueSize);
  return {
    name,
    prepare: async ({ client, prefix }: Context) => {
      await client.set(`${prefix}get`, value);
    },
    run: async ({ client, prefix }: Context) => {
      let last: unknown;
      for (let r = 0; r < ROUNDS; r++) {
        const replies = await Promise.all(
          Array.from({ length: CONCURRENT }, (_, i) =>
            op === 'get' ? client.get(`${prefix}get`) : client.set(`${prefix}set:${i}`, value),
          ),
        );
        last = replies[replies.length - 1];
      }
      const expected = op === 'get' ? value : 'OK';
      if (last !== expected) throw new Error(`wrong reply: ${String(last).slice(0, 40)}`);
      return { ops: ROUNDS * CONCURRENT, bytes: ROUNDS * CONCURRENT * valueSize };
    },
  };
}

const WORKLOADS = [
  workload(`${ROUNDS}× ${CONCURRENT} concurrent GETs of 64 B`, 64, 'get'),
  workload(`${ROUNDS}× ${CONCURRENT} concurrent SETs of 1 KiB`, 1024, 'set'),
  workload(`${ROUNDS}× ${CONCURRENT} concurrent GETs of 16 KiB`, 16 * 1024, 'get'),
];

const SUBJECTS: Record<string, (url: string) => Promise<Client>> = {
  ours,
  'ours, traced': oursTraced,
  'ioredis 6': (url) => ioredis(url, false),
  'ioredis 6, auto-pipelining': (url) => ioredis(url, true),
  '@redis/client': nodeRedis,
};

const cases: BenchCase<Context>[] = [];
for (const w of WORKLOADS) {
  for (const [subject, open] of Object.entries(SUBJECTS)) {
    cases.push({
      group: w.name,
      subject,
      setup: async () => {
        const context = { client: await open(benchRedisUrl()), prefix: `bench:resp:${process.pid}:` };
        await w.prepare(context);
        return context;
      },
      run: w.run,
      teardown: ({ client }) => client.close(),
    });
  }
}

await runSuite(import.meta.url, 'resp: whole connections against one local Redis (ops/s = commands/s)', cases, {
  redis: true,
});
