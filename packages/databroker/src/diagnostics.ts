// node:diagnostics_channel publications, for tracers and metrics (such as
// @redis-events/opentelemetry). Nothing is built or published unless someone subscribes: every
// call site checks `hasSubscribers` first. The payloads are documented in the README
// ("Diagnostics channels"); their fields are a stable interface.
import { type Channel, channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { DataBrokerError } from './errors.ts';

/**
 * The context of a put, on the `redis-events:databroker:put` tracing channel (events
 * `tracing:redis-events:databroker:put:start`, `:end`, `:asyncStart`, `:asyncEnd`, `:error`).
 * The fields after `records` are filled in once the put committed; `error` is set on failure.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * tracingChannel<object, PutTrace>('redis-events:databroker:put').subscribe({
 *   asyncEnd: (put) => console.log(put.backend, put.records, put.firstVersion, put.lastVersion),
 * });
 * ```
 */
export interface PutTrace {
  /** The backend's name. */
  readonly backend: string;
  /** Records in this put. */
  readonly records: number;
  /** The host (or unix socket path) of the node the backend writes to, once it connected. */
  readonly serverAddress: string | undefined;
  /** Its port (0 for a unix socket). */
  readonly serverPort: number | undefined;
  /** The database index. */
  readonly database: number | undefined;
  /** The server version the put committed under. */
  serverVersion?: number | undefined;
  /** The version of its first record. */
  firstVersion?: number | undefined;
  /** The version of its last record. */
  lastVersion?: number | undefined;
  /** How it committed: `script` or `watch` (WATCH/MULTI). */
  mode?: 'script' | 'watch' | undefined;
  /** Set by the tracing channel: the put's result. */
  result?: unknown;
  /** Set by the tracing channel: the error it failed with (a DataBrokerError). */
  error?: unknown;
}

/**
 * The context of a lease call, on the `redis-events:databroker:lease` tracing channel.
 *
 * @example
 * ```ts
 * tracingChannel<object, LeaseTrace>('redis-events:databroker:lease').subscribe({
 *   asyncEnd: (lease) => console.log(lease.lease, lease.id, lease.outcome),
 * });
 * ```
 */
export interface LeaseTrace {
  readonly backend: string;
  /** The lease's name. */
  readonly lease: string;
  /** The id asking. */
  readonly id: string;
  /** The time to live asked for (<= 0 releases). */
  readonly ttlMs: number;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  readonly database: number | undefined;
  /**
   * What happened: `acquired`, `renewed`, `released`, `refused` (another id holds it) or
   * `not-held` (a release of a lease nobody held).
   */
  outcome?: 'acquired' | 'renewed' | 'released' | 'refused' | 'not-held' | undefined;
  /** Set by the tracing channel: what `lease()` resolved to (true when the id holds the lease). */
  result?: unknown;
  /** Set by the tracing channel on failure. */
  error?: unknown;
}

/**
 * Published on `redis-events:databroker:sync` each time a `sync` stream takes a batch of changes:
 * from a read of the change log, or straight from a commit's notification.
 *
 * Lag, for a metric: `receivedAt - lastModifiedAt` is how long after its commit the newest change
 * arrived (both in ms since the epoch; `lastModifiedAt` comes from the Redis server's clock, so
 * clock skew between the hosts adds to it).
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe('redis-events:databroker:sync', (message) => {
 *   const batch = message as SyncEvent;
 *   lag.record(batch.receivedAt - batch.lastModifiedAt, { backend: batch.backend });
 * });
 * ```
 */
export interface SyncEvent {
  readonly backend: string;
  /** The stream's type (`''` for every type). */
  readonly type: string;
  readonly serverVersion: number;
  /** `read`: a page of the change log; `push`: the changes a commit published, taken without a read. */
  readonly source: 'read' | 'push';
  /**
   * Why the stream woke before this batch: `push` or `version` (another backend's commit),
   * `local` (a commit of this process), `resubscribed` (Pub/Sub came back), `disconnected`
   * (Pub/Sub was lost: the stream reads rather than wait for a message), `server-version`
   * (another server version: the next read fails), `poll` (the poll interval); undefined when it
   * did not wait (catching up).
   */
  readonly wake: 'push' | 'version' | 'local' | 'resubscribed' | 'disconnected' | 'server-version' | 'poll' | undefined;
  /** How long it waited before this batch, in ms (0 when catching up). */
  readonly waitedMs: number;
  /** Changes in the batch (of every type; a typed stream delivers its own). */
  readonly count: number;
  readonly firstVersion: number;
  readonly lastVersion: number;
  /** When the newest change of the batch was committed (ms since the epoch, server clock). */
  readonly lastModifiedAt: number;
  /** When the batch arrived (`Date.now()`). */
  readonly receivedAt: number;
  /**
   * Whether the stream had read everything the log held when it read this batch (always true for
   * `push`): `false` means it is catching up, and more follows at once.
   */
  readonly caughtUp: boolean;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  readonly database: number | undefined;
}

/**
 * Published on `redis-events:databroker:corrupt` when `sync` or `syncLatest` skips a damaged
 * stored entry.
 *
 * @example
 * ```ts
 * subscribe('redis-events:databroker:corrupt', (message) => alert((message as CorruptEvent).error.message));
 * ```
 */
export interface CorruptEvent {
  readonly backend: string;
  /** What met the damage: `sync`, `syncLatest`, or `put` (the stored options of a type, then ignored). */
  readonly where: 'sync' | 'syncLatest' | 'put';
  /** `ERR_DATABROKER_CORRUPT` or `ERR_DATABROKER_TAMPERED`, saying which entry. */
  readonly error: DataBrokerError;
}

/** Names of the channels, for subscribers. */
export const DIAGNOSTICS_CHANNELS: {
  readonly put: 'redis-events:databroker:put';
  readonly lease: 'redis-events:databroker:lease';
  readonly sync: 'redis-events:databroker:sync';
  readonly corrupt: 'redis-events:databroker:corrupt';
} = {
  put: 'redis-events:databroker:put',
  lease: 'redis-events:databroker:lease',
  sync: 'redis-events:databroker:sync',
  corrupt: 'redis-events:databroker:corrupt',
};

export const putChannel: TracingChannel<unknown, PutTrace> = tracingChannel(DIAGNOSTICS_CHANNELS.put);
export const leaseChannel: TracingChannel<unknown, LeaseTrace> = tracingChannel(DIAGNOSTICS_CHANNELS.lease);
export const syncChannel: Channel<unknown, SyncEvent> = channel(DIAGNOSTICS_CHANNELS.sync) as Channel<
  unknown,
  SyncEvent
>;
export const corruptChannel: Channel<unknown, CorruptEvent> = channel(DIAGNOSTICS_CHANNELS.corrupt) as Channel<
  unknown,
  CorruptEvent
>;
