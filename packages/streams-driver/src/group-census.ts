// The consumer groups this process reads, for lag metrics taken only when a metrics reader asks.
// A reader (@redis-events/opentelemetry's gauges) publishes a census on the channel; every live
// subscription answers by adding a probe that reads its group's state on demand. Nothing runs
// while nobody publishes: a subscription only subscribes one function when it starts.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { isClusterClient, type RedisClient, withTimeout } from './client.ts';
import { toStreamsError } from './errors.ts';
import { asCount, asText, toList, toRecord } from './replies.ts';

/** The plain channel a metrics reader publishes a {@link GroupCensus} on. */
export const GROUPS_CHANNEL = 'redis-events:streams-driver:groups';

/**
 * The message a metrics reader publishes on `redis-events:streams-driver:groups`: every live
 * subscription adds a {@link GroupProbe} to `groups`, synchronously.
 *
 * @example
 * ```ts
 * import { channel } from 'node:diagnostics_channel';
 *
 * const census: GroupCensus = { groups: [] };
 * channel('redis-events:streams-driver:groups').publish(census);
 * for (const probe of census.groups) console.log(probe.topic, probe.group, await probe.read());
 * ```
 */
export interface GroupCensus {
  readonly groups: GroupProbe[];
}

/** A live subscription's consumer group, readable on demand. */
export interface GroupProbe {
  readonly topic: string;
  readonly group: string;
  readonly consumer: string;
  /** The server's host (or unix socket path); undefined for a Cluster client. */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Subscriptions of one group through one client share a key: read one of them. */
  readonly key: string;
  /** Reads the group's state (three commands); undefined when the group or stream is gone. */
  read(options?: { readonly timeoutMs?: number | undefined }): Promise<GroupState | undefined>;
}

/** A consumer group's backlog, from `XINFO GROUPS`, `XPENDING` and `XRANGE`. */
export interface GroupState {
  /** Entries not yet delivered to the group (`XINFO GROUPS` lag); undefined when the server cannot tell (XDEL holes). */
  readonly lag: number | undefined;
  /** Entries delivered and not acknowledged. */
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** The smallest pending entry ID (its millisecond part is when it was added), if any. */
  readonly oldestPendingId: string | undefined;
  /** The first entry after the last delivered one, if any: the oldest the group has not seen. */
  readonly nextUndeliveredId: string | undefined;
}

function serverOf(client: RedisClient): { address: string | undefined; port: number | undefined } {
  if (isClusterClient(client)) return { address: undefined, port: undefined };
  const options = (client as { options?: { host?: unknown; port?: unknown; path?: unknown } }).options;
  const address = typeof options?.path === 'string' ? options.path : options?.host;
  return {
    address: typeof address === 'string' ? address : undefined,
    port: typeof options?.path === 'string' ? undefined : typeof options?.port === 'number' ? options.port : undefined,
  };
}

const clientIds = new WeakMap<RedisClient, number>();
let nextClientId = 0;

/**
 * Adds this subscription's group to every census published from now on; returns the function
 * that removes it (at shutdown or failure).
 */
export function joinGroupCensus(client: RedisClient, topic: string, group: string, consumer: string): () => void {
  const server = serverOf(client);
  let clientId = clientIds.get(client);
  if (clientId === undefined) {
    clientId = ++nextClientId;
    clientIds.set(client, clientId);
  }
  const probe: GroupProbe = {
    topic,
    group,
    consumer,
    serverAddress: server.address,
    serverPort: server.port,
    key: `${clientId}\u0000${topic}\u0000${group}`,
    read: (options) => readGroupState(client, topic, group, options?.timeoutMs ?? 5000),
  };
  const answer = (message: unknown) => {
    const groups = (message as Partial<GroupCensus> | undefined)?.groups;
    if (Array.isArray(groups)) groups.push(probe);
  };
  subscribe(GROUPS_CHANNEL, answer);
  let joined = true;
  return () => {
    if (!joined) return;
    joined = false;
    unsubscribe(GROUPS_CHANNEL, answer);
  };
}

async function readGroupState(
  client: RedisClient,
  topic: string,
  group: string,
  timeoutMs: number,
): Promise<GroupState | undefined> {
  const call = (what: string, command: string, ...args: string[]) =>
    withTimeout(client.call(command, ...args), timeoutMs, what).catch((err: unknown) => {
      throw toStreamsError(err, { what: 'reading the group state', topic, group, command: what });
    });
  let rows: unknown;
  try {
    rows = await call('XINFO', 'xinfo', 'GROUPS', topic);
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return undefined;
    throw err;
  }
  const row = toList(rows, 'XINFO GROUPS')
    .map((r) => toRecord(r, 'an XINFO GROUPS row'))
    .find((r) => asText(r.name, 'the group name') === group);
  if (row === undefined) return undefined;
  const lastDeliveredId = asText(row['last-delivered-id'], 'the last delivered ID');
  const [summary, next] = await Promise.all([
    call('XPENDING', 'xpending', topic, group),
    call('XRANGE', 'xrange', topic, `(${lastDeliveredId}`, '+', 'COUNT', '1'),
  ]);
  const pending = toList(summary, 'XPENDING');
  const first = toList(next, 'XRANGE')[0];
  return {
    lag: row.lag === null || row.lag === undefined ? undefined : asCount(row.lag, 'the lag'),
    pending: asCount(row.pending, 'the pending count'),
    lastDeliveredId,
    oldestPendingId:
      pending[1] === null || pending[1] === undefined ? undefined : asText(pending[1], 'the smallest pending ID'),
    nextUndeliveredId: first === undefined ? undefined : asText(toList(first, 'an XRANGE entry')[0], 'an entry ID'),
  };
}
