// The replica listener's `node:diagnostics_channel` channels. They are resolved once here; the
// listener builds a context and publishes only when a channel has subscribers, so nobody
// listening costs a property read per operation.
import { type Channel, channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { ReplicationError } from './errors.ts';

/** The names of the listener's diagnostics channels. */
export const REPLICATION_CHANNELS: {
  readonly handshake: 'redis-events:replication:handshake';
  readonly sync: 'redis-events:replication:sync';
  readonly syncProgress: 'redis-events:replication:sync-progress';
  readonly command: 'redis-events:replication:command';
  readonly lag: 'redis-events:replication:lag';
} = Object.freeze({
  handshake: 'redis-events:replication:handshake',
  sync: 'redis-events:replication:sync',
  syncProgress: 'redis-events:replication:sync-progress',
  command: 'redis-events:replication:command',
  lag: 'redis-events:replication:lag',
} as const);

/**
 * The context of `redis-events:replication:handshake` (a TracingChannel): one connection
 * attempt, from opening the socket to the master's answer to `PSYNC`. `start` when the attempt
 * begins; `asyncStart`/`asyncEnd` when `PSYNC` is answered (`result` set); `error` (then
 * `asyncStart`/`asyncEnd`) when the attempt fails.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 *
 * tracingChannel('redis-events:replication:handshake').subscribe({
 *   start: (ctx) => console.log('connecting to', (ctx as ReplicationHandshakeContext).serverAddress),
 *   asyncEnd: (ctx) => console.log('PSYNC answered:', (ctx as ReplicationHandshakeContext).result),
 *   error: (ctx) => console.log('failed:', (ctx as ReplicationHandshakeContext).error?.code),
 * });
 * ```
 */
export interface ReplicationHandshakeContext {
  /** The master's host (or unix socket path). */
  readonly serverAddress: string;
  /** The master's port; undefined for a unix socket. */
  readonly serverPort: number | undefined;
  /** 1 for the first connection, and for the first one after a sync ended; counting up while attempts fail. */
  readonly attempt: number;
  /** The replication ID asked for in `PSYNC`: `?` asks for a full sync. */
  readonly replId: string;
  /** The offset asked from (`PSYNC <replId> <offset + 1>`); -1 with `?`. */
  readonly offset: number;
  /** Set at the end: `full` (`+FULLRESYNC`, a snapshot follows) or `continue` (`+CONTINUE`). */
  result?: 'full' | 'continue' | undefined;
  /** Set on failure: what failed (its `code` says whether it is retried). */
  error?: ReplicationError | undefined;
}

/**
 * The context of `redis-events:replication:sync` (a TracingChannel): one full sync, from the
 * snapshot's header (`$<length>` or `$EOF:<mark>`) to its last byte, parsed (not yet delivered:
 * `snapshot-done` follows the events). Not published for a partial sync (`+CONTINUE`).
 *
 * @example
 * ```ts
 * subscribe('tracing:redis-events:replication:sync:asyncEnd', (message) => {
 *   const sync = message as ReplicationSyncContext;
 *   console.log(`${sync.keys} keys, ${sync.bytes} bytes in ${Date.now() - sync.startedAt} ms`);
 * });
 * ```
 */
export interface ReplicationSyncContext {
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  /** The replication ID of `+FULLRESYNC`. */
  readonly replId: string;
  /** The replication offset the snapshot stands for (`+FULLRESYNC <replId> <offset>`). */
  readonly offset: number;
  /** True for a diskless transfer (`$EOF:`), false for a disk-based one (`$<length>`). */
  readonly diskless: boolean;
  /** The RDB length a disk-based transfer announces; undefined for a diskless one. */
  readonly size: number | undefined;
  /** `Date.now()` when the snapshot started. */
  readonly startedAt: number;
  /** Set at the end: RDB bytes received. */
  bytes?: number | undefined;
  /** Set at the end: keys in the snapshot (0 with `discardRdb`, which does not parse it). */
  keys?: number | undefined;
  /** Set on failure (a lost connection, a damaged snapshot). */
  error?: ReplicationError | undefined;
}

/**
 * A message of `redis-events:replication:sync-progress` (a plain channel): how far a full sync's
 * transfer is, at most every `progressInterval` ms and once at the end, like the `sync-progress`
 * events.
 *
 * @example
 * ```ts
 * subscribe('redis-events:replication:sync-progress', (message) => {
 *   const { bytes, total } = message as ReplicationSyncProgressMessage;
 *   if (total) console.log(`${Math.round((100 * bytes) / total)} %`);
 * });
 * ```
 */
export interface ReplicationSyncProgressMessage {
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly replId: string;
  /** RDB bytes received so far. */
  readonly bytes: number;
  /** The announced RDB length (disk-based transfers). */
  readonly total: number | undefined;
}

/**
 * A message of `redis-events:replication:command` (a plain channel): one replicated command,
 * published when it is delivered to the consumer. Argument values are never in it.
 *
 * @example
 * ```ts
 * subscribe('redis-events:replication:command', (message) => {
 *   const { command, database } = message as ReplicationCommandMessage;
 *   counter.add(1, { command, database });
 * });
 * ```
 */
export interface ReplicationCommandMessage {
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  /** The database the command applies to. */
  readonly database: number;
  /** The command name, upper case (`SET`, `XADD`, and the master's own `PING`, `REPLCONF`). */
  readonly command: string;
  /** How many arguments it has (after the name). */
  readonly argsCount: number;
  /** The replication offset after the command. */
  readonly offset: number;
  /** Its bytes in the stream. */
  readonly size: number;
  /** True inside a replicated `MULTI`/`EXEC`. */
  readonly inTransaction: boolean;
}

/**
 * A message of `redis-events:replication:lag` (a plain channel): how far behind the master the
 * consumer is, every `ackInterval` ms (1 s by default) while the link is up and someone
 * subscribes. The master's own offset is read with `INFO replication` on a second connection,
 * opened only while someone subscribes; when that is refused (an ACL user without `+info`), only
 * what the listener has received counts (`masterOffset` undefined).
 *
 * @example
 * ```ts
 * subscribe('redis-events:replication:lag', (message) => {
 *   const { bytes, seconds } = message as ReplicationLagMessage;
 *   gauge.record(bytes);
 *   if (seconds > 30) console.warn('replication lag', seconds, 's');
 * });
 * ```
 */
export interface ReplicationLagMessage {
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly replId: string;
  /** `snapshot` while a full sync is being received or delivered, `stream` after. */
  readonly phase: 'snapshot' | 'stream';
  /** The offset of the last byte delivered to the consumer (during a snapshot: the offset it stands for). */
  readonly deliveredOffset: number;
  /** The offset of the last byte read from the master. */
  readonly receivedOffset: number;
  /** The master's `master_repl_offset`, when it could be read. */
  readonly masterOffset: number | undefined;
  /** Bytes of the stream not yet delivered: `(masterOffset ?? receivedOffset) - deliveredOffset`. */
  readonly bytes: number;
  /**
   * An estimate of how old the oldest write not yet delivered is, in seconds (0 when caught up):
   * the time since the master's (or, without `INFO`, the listener's) offset first passed the
   * delivered offset, to the resolution of `ackInterval`.
   */
  readonly seconds: number;
  /** Events received and waiting for the consumer. */
  readonly queuedEvents: number;
}

export const handshakeChannel: TracingChannel<ReplicationHandshakeContext, ReplicationHandshakeContext> =
  tracingChannel<ReplicationHandshakeContext>(REPLICATION_CHANNELS.handshake);
export const syncChannel: TracingChannel<ReplicationSyncContext, ReplicationSyncContext> =
  tracingChannel<ReplicationSyncContext>(REPLICATION_CHANNELS.sync);
export const syncProgressChannel: Channel = channel(REPLICATION_CHANNELS.syncProgress);
export const commandChannel: Channel = channel(REPLICATION_CHANNELS.command);
export const lagChannel: Channel = channel(REPLICATION_CHANNELS.lag);

/**
 * Publishes the end of a traced operation the way `tracePromise` does: on failure `error` first,
 * then `asyncStart` and `asyncEnd`.
 */
export function finishTrace<T extends { error?: ReplicationError | undefined }>(
  trace: TracingChannel<T, T>,
  context: T,
  error?: ReplicationError,
): void {
  if (error !== undefined) {
    context.error = error;
    trace.error.publish(context);
  }
  trace.asyncStart.publish(context);
  trace.asyncEnd.publish(context);
}

/** Publishes the start of a traced operation: `start`, then `end` (its synchronous part is over). */
export function startTrace<T extends object>(trace: TracingChannel<T, T>, context: T): void {
  trace.start.publish(context);
  trace.end.publish(context);
}
