import { randomBytes } from 'node:crypto';
import { type RedisCluster, type SpawnedRedis, spawnRedis, startCluster } from '@redis-events/testkit';
import type { RedisOptions } from 'ioredis';
import { expect } from 'vitest';
import {
  DataBroker,
  DataBrokerError,
  type DataBrokerOptions,
  type DataRecord,
  type RecordStream,
} from '../src/index.ts';
import type { RedisClient } from '../src/link.ts';

/** A Redis to run the backend on: standalone with a client flavour, or a cluster. */
export interface Topology {
  readonly label: string;
  /** Backend options this topology runs with (the Lua puts). */
  readonly options: { readonly scripting?: boolean };
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A new client of the flavour under test, optionally with a connection name. */
  client(connectionName?: string): RedisClient;
  /** How many connections named `name` the servers have (every node of a cluster). */
  connectionsNamed(name: string): Promise<number>;
  /** A plain RESP2 client for raw checks. */
  raw(): RedisClient;
}

async function namedConnections(servers: readonly SpawnedRedis[], name: string): Promise<number> {
  let count = 0;
  for (const server of servers) {
    const list = String(await server.command('CLIENT', 'LIST'));
    count += list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
  }
  return count;
}

function standalone(
  label: string,
  options: RedisOptions,
  brokerOptions: { readonly scripting?: boolean } = {},
): Topology {
  let server: SpawnedRedis | undefined;
  return {
    label,
    options: brokerOptions,
    async start() {
      server = await spawnRedis();
    },
    async stop() {
      await server?.stop();
    },
    client: (connectionName) =>
      (server as SpawnedRedis).createClient(connectionName === undefined ? options : { ...options, connectionName }),
    connectionsNamed: async (name) => namedConnections([server as SpawnedRedis], name),
    raw: () => (server as SpawnedRedis).createClient({ protocol: 2 }),
  };
}

function cluster(label = 'cluster (3 masters)', brokerOptions: { readonly scripting?: boolean } = {}): Topology {
  let nodes: RedisCluster | undefined;
  return {
    label,
    options: brokerOptions,
    async start() {
      nodes = await startCluster({ masters: 3 });
    },
    async stop() {
      await nodes?.stop();
    },
    client: (connectionName) =>
      (nodes as RedisCluster).createClient(connectionName === undefined ? {} : { redisOptions: { connectionName } }),
    connectionsNamed: async (name) => namedConnections((nodes as RedisCluster).nodes, name),
    raw: () => (nodes as RedisCluster).createClient({ redisOptions: { protocol: 2 } }),
  };
}

/**
 * Standalone and cluster, each with scripts (the default where the ACL allows them) and with
 * WATCH/MULTI transactions (the mode without scripting); the standalone WATCH/MULTI one in RESP2
 * (the backend's connections speak the protocol the client asks for).
 */
export function topologies(): Topology[] {
  return [
    standalone('standalone, scripts', {}),
    standalone('standalone, WATCH/MULTI, RESP2', { protocol: 2 }, { scripting: false }),
    cluster('cluster (3 masters), scripts'),
    cluster('cluster (3 masters), WATCH/MULTI', { scripting: false }),
  ];
}

/** A backend name nobody else uses, so tests sharing a server never see each other's keys. */
export function uniqueName(label = 'db'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

/** A backend on a fresh name, with fast polling and no background cleanup unless asked. */
export function broker<T = unknown>(client: RedisClient, options: DataBrokerOptions<T> = {}): DataBroker<T> {
  client.on('error', () => {}); // tests cut and restart servers: the client reconnects
  return new DataBroker<T>(client, { name: uniqueName(), expiryMs: 0, pollIntervalMs: 200, ...options });
}

/** Reads `count` records from a stream, failing after `timeoutMs`. */
export async function take<T>(stream: RecordStream<T>, count: number, timeoutMs = 10_000): Promise<DataRecord<T>[]> {
  const out: DataRecord<T>[] = [];
  if (count === 0) return out;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`took ${out.length} of ${count} records in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        while (out.length < count) {
          const next = await stream.next();
          if (next.done) throw new Error(`the stream ended after ${out.length} of ${count} records`);
          out.push(next.value);
        }
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** Waits until `check` is true, polling. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every record of a stream, in order. */
export async function collect<T>(stream: AsyncIterable<DataRecord<T>>): Promise<DataRecord<T>[]> {
  const out: DataRecord<T>[] = [];
  for await (const record of stream) out.push(record);
  return out;
}

/** The code of the DataBrokerError a call throws (anything else fails the test), or undefined when it returns. */
export function thrownCode(call: () => unknown): string | undefined {
  try {
    call();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(DataBrokerError);
    return (err as DataBrokerError).code;
  }
}
