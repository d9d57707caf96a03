// The live replica listener: connects to a master as a replica, turns the snapshot of a full
// sync and then every replicated command into events, and keeps following the master across
// disconnects (PSYNC resumes where it stopped). Events go through one queue, delivered either
// to an async iterator or to event-emitter listeners; when the queue fills up (a slow
// consumer), the socket is no longer read, so backpressure reaches the master.

import { EventEmitter } from 'node:events';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import {
  type BackoffOptions,
  delay,
  exponentialBackoff,
  isLogger,
  type Logger,
  noopLogger,
  parseRedisUrl,
  type ReconnectStrategy,
} from '@redis-events/resp';
import {
  commandChannel,
  finishTrace,
  handshakeChannel,
  lagChannel,
  type ReplicationHandshakeContext,
  type ReplicationLagMessage,
  startTrace,
} from './diagnostics.ts';
import { ReplicationError, ReplicationLinkError } from './errors.ts';
import { type HandshakeSettings, type MasterTarget, replicaHandshake } from './master-handshake.ts';
import { type LinkOwner, type LinkSettings, type LinkStart, MasterLink } from './master-link.ts';
import { MasterOffsetProbe } from './master-offset.ts';
import { PARSER_OPTIONS, rejectUnknownOptions } from './options.ts';
import type { RdbEntryEvent, RdbEvent } from './rdb-events.ts';
import type { RdbParserOptions } from './rdb-parser.ts';
import type { CommandEvent, LifecycleEvent, ReplicationEvent } from './replication-events.ts';

/**
 * TLS options of {@link ReplicaListenerOptions}: Node's `tls.connect` options (`ca`, `cert`,
 * `key`, `servername`...) plus `insecure`.
 *
 * @example
 * ```ts
 * const tls: ReplicaTlsOptions = { ca: readFileSync('ca.crt'), cert: readFileSync('client.crt'), key: readFileSync('client.key') };
 * ```
 */
export interface ReplicaTlsOptions extends TlsConnectionOptions {
  /** Accept any server certificate and name (tests, self-signed setups): no protection against a man in the middle. */
  readonly insecure?: boolean | undefined;
}

/**
 * Options of {@link ReplicaListener}. Explicit options override what the URL says.
 *
 * @example
 * ```ts
 * const options: ReplicaListenerOptions = {
 *   url: 'rediss://replicator:secret@redis.internal:6380',
 *   tls: { ca: readFileSync('ca.crt') },
 *   ...savedCheckpoint, // { replId, replOffset, db }: resume without a full sync
 * };
 * ```
 */
export interface ReplicaListenerOptions {
  /** `redis://[[user]:password@]host[:port]`, `rediss://...` (TLS) or `unix:///path`. */
  readonly url?: string | undefined;
  /** Default `127.0.0.1` (when neither `url` nor `path` is given). */
  readonly host?: string | undefined;
  /** Default 6379. */
  readonly port?: number | undefined;
  /** A unix socket path. */
  readonly path?: string | undefined;
  /** ACL user; `default` when only a password is given. */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** TLS: `true` (the platform's CAs), or options. `rediss://` URLs turn it on. */
  readonly tls?: boolean | ReplicaTlsOptions | undefined;
  /** Connection name shown by `CLIENT LIST` on the master. */
  readonly name?: string | undefined;
  /**
   * The replication ID to resume from (a saved {@link ReplicationCheckpoint}); `?` (the
   * default) asks for a full sync.
   */
  readonly replId?: string | undefined;
  /** The offset saved with `replId` (the last byte processed); -1 (the default) with `?`. */
  readonly replOffset?: number | undefined;
  /** The database the stream was in at `replOffset` (saved in the checkpoint). Default 0. */
  readonly db?: number | undefined;
  /** Read the snapshot without emitting its events (no parsing of its content). Default false. */
  readonly discardRdb?: boolean | undefined;
  /** Follow the command stream after the snapshot (default true); `false` ends after the snapshot. */
  readonly aof?: boolean | undefined;
  /**
   * How long the listener may take to reach its master the first time, in ms: TCP, TLS, the
   * handshake and the PSYNC reply, with failures that a retry can fix retried (per `reconnect`)
   * within it. When it runs out, the listener fails with the last failure's code
   * (`ERR_REPLICATION_CONNECT`, `ERR_REPLICATION_TIMEOUT`...), naming the master and the cause.
   * Once a sync has started, it bounds each reconnection attempt. Default 10 000.
   */
  readonly connectTimeout?: number | undefined;
  /**
   * The longest silence from the master, in ms, before the link counts as dead and is
   * reconnected. Not counted while reading is paused for a slow consumer. 0 disables it.
   * Default 60 000 (the master PINGs every `repl-ping-replica-period`, 10 s by default).
   */
  readonly readTimeout?: number | undefined;
  /** The longest time a write (an ACK) may wait for the socket, in ms; 0 disables it. Default 60 000. */
  readonly writeTimeout?: number | undefined;
  /**
   * After a failure that a retry can fix (connection lost, timeout, `-LOADING`...): `true`
   * (default: backoff from 100 ms to 5 s with jitter, forever), backoff options, your own
   * strategy `(attempt, cause) => delay | false`, or `false` to end with the error.
   */
  readonly reconnect?: boolean | BackoffOptions | ReconnectStrategy | undefined;
  /** How often `REPLCONF ACK` is sent, in ms. Default 1000, as Redis replicas do. */
  readonly ackInterval?: number | undefined;
  /** Least time between two `sync-progress` events of a snapshot transfer, in ms. Default 1000. */
  readonly progressInterval?: number | undefined;
  /** Events waiting for the consumer before the socket stops being read. Default 4096. */
  readonly maxQueuedEvents?: number | undefined;
  /** Input bytes behind the waiting events before the socket stops being read. Default 16 MiB. */
  readonly maxQueuedBytes?: number | undefined;
  /** `REPLCONF listening-port`, shown by the master's `INFO replication`. Default 0. */
  readonly announcePort?: number | undefined;
  /** `REPLCONF ip-address`, shown by the master instead of the connection's address. */
  readonly announceIp?: string | undefined;
  /**
   * `REPLCONF version` (Valkey reads it, Redis ignores it): Valkey 9 sends its own `VALKEY080`
   * snapshot format only to replicas of 9.0.0 or later. Default `9.0.0`; `false` omits it.
   */
  readonly announceVersion?: string | false | undefined;
  /** Options of the snapshot's parser: `batchSize`, `maxPartBytes`, `maxBlobBytes`, `verifyChecksum`... */
  readonly rdb?: RdbParserOptions | undefined;
  /** The largest command argument accepted, in bytes. Default 512 MiB (the server's `proto-max-bulk-len`). */
  readonly maxArgumentBytes?: number | undefined;
  /** Closes the listener when aborted (like {@link ReplicaListener.close} with its default bound). */
  readonly signal?: AbortSignal | undefined;
  /**
   * Where the listener reports what happens in the background (`warn`: a failure it retries;
   * `debug`: connections, syncs): `console`, pino, or any object with `debug`, `warn` and
   * `error` methods. Default: nothing is reported.
   */
  readonly logger?: Logger | undefined;
}

/** The names {@link ReplicaListenerOptions} has, for rejecting a typo. */
export const LISTENER_OPTIONS: readonly string[] = [
  'url',
  'host',
  'port',
  'path',
  'username',
  'password',
  'tls',
  'name',
  'replId',
  'replOffset',
  'db',
  'discardRdb',
  'aof',
  'connectTimeout',
  'readTimeout',
  'writeTimeout',
  'reconnect',
  'ackInterval',
  'progressInterval',
  'maxQueuedEvents',
  'maxQueuedBytes',
  'announcePort',
  'announceIp',
  'announceVersion',
  'rdb',
  'maxArgumentBytes',
  'signal',
  'logger',
];

/**
 * Options of {@link ReplicaListener.close}: how long to let the consumer take the events already
 * received before the rest is given up.
 *
 * @example
 * ```ts
 * await listener.close({ timeoutMs: 2000 });
 * ```
 */
export interface ReplicaListenerCloseOptions {
  /** The bound, in ms. Default 5000. */
  readonly timeoutMs?: number | undefined;
  /** Ends the wait when aborted (the events not delivered by then are given up). */
  readonly signal?: AbortSignal | undefined;
}

/** How long `close()` lets the consumer take what was received, by default. */
const CLOSE_TIMEOUT = 5000;

/**
 * Where a listener stands in the master's replication stream: save it, and pass it back in the
 * options (`new ReplicaListener({ url, ...checkpoint })`) to resume without a full sync.
 *
 * @example
 * ```ts
 * const saved: ReplicationCheckpoint = JSON.parse(readFileSync('checkpoint.json', 'utf8'));
 * const listener = new ReplicaListener({ url, ...saved });
 * ```
 */
export interface ReplicationCheckpoint {
  readonly replId: string;
  /** The offset of the last byte of the stream delivered to you. */
  readonly replOffset: number;
  /** The database the stream is in at that offset. */
  readonly db: number;
}

/**
 * Where a {@link ReplicaListener} is in its life: `idle` until started, `connecting` (handshake),
 * `syncing` (PSYNC sent, snapshot being received), `streaming`, `reconnecting`, `closed`.
 *
 * @example
 * ```ts
 * setInterval(() => console.log(listener.status, listener.progress), 1000).unref();
 * ```
 */
export type ReplicaListenerStatus = 'idle' | 'connecting' | 'syncing' | 'streaming' | 'reconnecting' | 'closed';

/**
 * Counters of a {@link ReplicaListener}.
 *
 * @example
 * ```ts
 * const { fullSyncs, partialSyncs, commands, readingPaused } = listener.stats;
 * ```
 */
export interface ReplicaListenerStats {
  /** Handshakes completed. */
  readonly connections: number;
  /** Snapshots received whole. */
  readonly fullSyncs: number;
  /** PSYNCs answered with `+CONTINUE`. */
  readonly partialSyncs: number;
  /** Bytes received after the handshakes (snapshots and streams). */
  readonly bytesReceived: number;
  /** Commands delivered. */
  readonly commands: number;
  /** Events waiting for the consumer. */
  readonly queuedEvents: number;
  /** True while the socket is not read because the queue is full. */
  readonly readingPaused: boolean;
}

/**
 * Events of {@link ReplicaListener}: `event` carries every {@link ReplicationEvent}; `rdb`,
 * `entry`, `command` and `lifecycle` carry their share of them. `error` is the final error;
 * `close` comes last.
 *
 * @example
 * ```ts
 * listener.on('command', (command) => console.log(command.db, command.name));
 * listener.on('lifecycle', (event) => event.kind === 'reconnecting' && console.warn(event.error?.message));
 * ```
 */
export interface ReplicaListenerEvents {
  event: [event: ReplicationEvent];
  rdb: [event: RdbEvent];
  entry: [event: RdbEntryEvent];
  command: [event: CommandEvent];
  lifecycle: [event: LifecycleEvent];
  error: [error: ReplicationError];
  close: [];
}

const LIFECYCLE = new Set<string>([
  'connected',
  'full-sync-start',
  'sync-progress',
  'snapshot-done',
  'continued',
  'reconnecting',
]);

const M_NONE = 0;
const M_FLOWING = 1;
const M_ITERATING = 2;

const RETRIED = new Set<string>([
  'ERR_REPLICATION_CONNECT',
  'ERR_REPLICATION_UNAVAILABLE',
  'ERR_REPLICATION_TIMEOUT',
  'ERR_REPLICATION_CONNECTION_LOST',
]);

/** The end of the queue: the listener failed (`error`) or finished its snapshot-only sync. */
class Terminal {
  readonly error: ReplicationError | undefined;
  constructor(error: ReplicationError | undefined) {
    this.error = error;
  }
}

/** Queue items: events, the input bytes behind the events before them, and the end. */
type Item = ReplicationEvent | number | Terminal;

interface Waiter {
  resolve: (result: IteratorResult<ReplicationEvent>) => void;
  reject: (err: Error) => void;
}

function argument(message: string, cause?: unknown): ReplicationError {
  return new ReplicationError('ERR_REPLICATION_ARGUMENT', message, cause === undefined ? undefined : { cause });
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0)
    throw argument(`${name} must be a non-negative integer (ms or a count), got ${String(value)}`);
  return value;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const n = nonNegative(name, value, fallback);
  if (n === 0) throw argument(`${name} must be at least 1, got 0`);
  return n;
}

function tlsOptions(tls: boolean | ReplicaTlsOptions | undefined, fromUrl: boolean): TlsConnectionOptions | undefined {
  if (tls === false || (tls === undefined && !fromUrl)) return undefined;
  if (tls === true || tls === undefined) return {};
  const { insecure, ...rest } = tls;
  return insecure ? { ...rest, rejectUnauthorized: false, checkServerIdentity: () => undefined } : rest;
}

/**
 * Listens to a Redis or Valkey master as a replica: a full sync's snapshot arrives as RDB events
 * (or, when resuming, `+CONTINUE` skips it), then every replicated write command arrives as a
 * {@link CommandEvent} with its database, arguments, exact replication offset and typed view.
 * The listener sends `REPLCONF ACK` every second and on `GETACK`, survives long idle periods,
 * and after a disconnect resumes with `PSYNC <replid> <offset+1>`: only the missed commands
 * come, no new snapshot. A slow consumer stops the socket from being read.
 *
 * Consume it with `for await` (the loop's pace is the listener's) or start it and listen to
 * its events; {@link checkpoint} is what to save to resume after a restart.
 *
 * @example
 * ```ts
 * import { ReplicaListener } from '@redis-events/replication';
 *
 * const listener = new ReplicaListener({ url: 'redis://127.0.0.1:6379', discardRdb: true });
 * for await (const event of listener) {
 *   if (event.kind === 'command') console.log(event.db, event.name, event.args.map(String).join(' '));
 * }
 * ```
 */
export class ReplicaListener extends EventEmitter<ReplicaListenerEvents> implements AsyncDisposable {
  readonly #handshake: HandshakeSettings;
  readonly #link: LinkSettings;
  readonly #target: MasterTarget;
  readonly #strategy: ReconnectStrategy | undefined;
  readonly #maxQueuedEvents: number;
  readonly #maxQueuedBytes: number;
  readonly #signal: AbortSignal | undefined;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  /** A sync has started once (the first connection's bound no longer applies). */
  #syncedOnce = false;
  /** Resolves a `close()` waiting for the consumer to take the queued events. */
  #drained: (() => void) | undefined;
  /** The master's offset for the lag diagnostics, read only while someone subscribes. */
  #probe: MasterOffsetProbe | undefined;
  /** [time, offset] when the master's (or received) offset was seen to pass each value. */
  #lagSamples: [number, number][] = [];

  #status: ReplicaListenerStatus = 'idle';
  #mode = M_NONE;
  /** No more connections: closed, failed, or the snapshot-only sync is complete. */
  #stopped = false;
  /** The end was delivered (or close() was called): nothing more comes out. */
  #finished = false;
  #closing: Promise<void> | undefined;
  #running: Promise<void> | undefined;
  #current: MasterLink | undefined;
  #resume: LinkStart;
  /** A sync milestone since the last failure: the backoff starts over. */
  #progressed = false;

  // The queue between the socket and the consumer.
  #items: (Item | undefined)[] = [];
  #head = 0;
  #queuedEvents = 0;
  #queuedBytes = 0;
  #delivering = false;
  #userPaused = false;
  #waiter: Waiter | undefined;

  // What the consumer has been given: the checkpoint, and the offset for REPLCONF ACK. A full
  // sync starts a new offset space; until the consumer reaches it, ACKs report its base.
  #cpValid: boolean;
  #cpReplId: string;
  #cpOffset: number;
  #cpDb: number;
  #parsedSpace = 0;
  #deliveredSpace = 0;
  #parsedBase: number;
  #deliveredOffset: number | undefined;

  #stats = { connections: 0, fullSyncs: 0, partialSyncs: 0, bytesEnded: 0, commands: 0 };

  /**
   * @throws {ReplicationError} `ERR_REPLICATION_ARGUMENT` for options that cannot work.
   */
  constructor(options: ReplicaListenerOptions | string = {}) {
    super();
    const o: ReplicaListenerOptions = typeof options === 'string' ? { url: options } : options;
    rejectUnknownOptions(o, LISTENER_OPTIONS, 'ReplicaListener');
    rejectUnknownOptions(o.rdb, PARSER_OPTIONS, 'ReplicaListener option rdb');
    if (o.logger !== undefined && !isLogger(o.logger))
      throw argument('logger must have debug, warn and error methods (console and pino have them)');
    this.#logger = o.logger ?? noopLogger;
    let fromUrl: ReturnType<typeof parseRedisUrl> | undefined;
    if (o.url !== undefined) {
      try {
        fromUrl = parseRedisUrl(o.url);
      } catch (err) {
        throw argument((err as Error).message, err);
      }
      if (fromUrl.db !== undefined && fromUrl.db !== 0)
        throw argument(
          `the URL selects database ${fromUrl.db}, but a replica receives every database: filter on event.db instead`,
        );
    }
    const path = o.path ?? (o.host === undefined && o.port === undefined ? fromUrl?.path : undefined);
    const host = o.host ?? fromUrl?.host ?? '127.0.0.1';
    const port = o.port ?? fromUrl?.port ?? 6379;
    if (path === undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
      throw argument(`port must be 1 to 65535, got ${String(port)}`);
    this.#target = {
      host,
      port,
      path,
      tls: tlsOptions(o.tls, fromUrl?.tls ?? false),
      username: o.username ?? fromUrl?.username,
      password: o.password ?? fromUrl?.password,
      name: o.name ?? fromUrl?.name,
      label: path ?? `${host.includes(':') ? `[${host}]` : host}:${port}`,
    };

    const replId = o.replId ?? '?';
    const replOffset = o.replOffset ?? -1;
    const db = o.db ?? 0;
    if (replId !== '?' && !/^[^\s]{40}$/.test(replId))
      throw argument(
        `replId must be a 40-character replication ID (or "?" for a full sync), got ${JSON.stringify(replId)}`,
      );
    if (!Number.isSafeInteger(replOffset) || replOffset < -1)
      throw argument(`replOffset must be an integer >= -1, got ${String(replOffset)}`);
    if ((replId === '?') !== (replOffset === -1))
      throw argument(
        replId === '?'
          ? `replOffset ${replOffset} needs the replId it belongs to`
          : `replId ${replId} needs the replOffset saved with it`,
      );
    if (!Number.isSafeInteger(db) || db < 0) throw argument(`db must be a non-negative integer, got ${String(db)}`);
    const aof = o.aof ?? true;
    const discardRdb = o.discardRdb ?? false;
    if (!aof && discardRdb)
      throw argument('discardRdb with aof: false would receive a snapshot and deliver nothing; drop one of them');
    if (o.maxArgumentBytes !== undefined) positive('maxArgumentBytes', o.maxArgumentBytes, 1);
    const announceVersion = o.announceVersion ?? '9.0.0';
    if (announceVersion !== false && !/^\d+\.\d+\.\d+$/.test(announceVersion))
      throw argument(`announceVersion must look like 9.0.0 (or be false), got ${JSON.stringify(announceVersion)}`);
    const announcePort = nonNegative('announcePort', o.announcePort, 0);
    if (announcePort > 65535) throw argument(`announcePort must be 0 to 65535, got ${announcePort}`);

    this.#handshake = {
      target: this.#target,
      connectTimeout: positive('connectTimeout', o.connectTimeout, 10_000),
      announcePort,
      announceIp: o.announceIp,
      announceVersion: announceVersion === false ? undefined : announceVersion,
      rdbOnly: !aof,
    };
    this.#link = {
      master: this.#target.label,
      serverAddress: this.#target.path ?? this.#target.host,
      serverPort: this.#target.path === undefined ? this.#target.port : undefined,
      readTimeout: nonNegative('readTimeout', o.readTimeout, 60_000),
      writeTimeout: nonNegative('writeTimeout', o.writeTimeout, 60_000),
      ackInterval: positive('ackInterval', o.ackInterval, 1000),
      progressInterval: nonNegative('progressInterval', o.progressInterval, 1000),
      discardRdb,
      aof,
      rdb: o.rdb ?? {},
      maxArgumentBytes: o.maxArgumentBytes,
    };
    const reconnect = o.reconnect ?? true;
    this.#strategy =
      reconnect === false
        ? undefined
        : reconnect === true
          ? exponentialBackoff({ initialDelay: 100, maxDelay: 5000 })
          : typeof reconnect === 'function'
            ? reconnect
            : exponentialBackoff(reconnect);
    this.#maxQueuedEvents = positive('maxQueuedEvents', o.maxQueuedEvents, 4096);
    this.#maxQueuedBytes = positive('maxQueuedBytes', o.maxQueuedBytes, 16 * 1024 * 1024);

    this.#resume = { replId, offset: replOffset, db, inTransaction: false };
    this.#cpValid = replId !== '?';
    this.#cpReplId = replId;
    this.#cpOffset = replOffset;
    this.#cpDb = db;
    this.#parsedBase = replOffset;
    this.#deliveredOffset = replId === '?' ? undefined : replOffset;

    this.#signal = o.signal;
    o.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => {
    this.close().catch((err: unknown) =>
      this.#logger.warn(
        { package: '@redis-events/replication', master: this.master, err },
        'the listener was closed by its signal with events not delivered',
      ),
    );
  };

  /** Where the listener is: `idle` until started, then `connecting`, `syncing`, `streaming`, `reconnecting`, `closed`. */
  get status(): ReplicaListenerStatus {
    return this.#status;
  }

  /** `host:port` (or the socket path) of the master. */
  get master(): string {
    return this.#target.label;
  }

  /**
   * Where the delivered events leave you in the master's stream, to save and resume from; it
   * moves as events are delivered. `undefined` while a snapshot is being delivered (resuming
   * from the middle of one would miss the rest of it) and before the first sync.
   */
  get checkpoint(): ReplicationCheckpoint | undefined {
    return this.#cpValid ? { replId: this.#cpReplId, replOffset: this.#cpOffset, db: this.#cpDb } : undefined;
  }

  /** The snapshot transfer in progress: RDB bytes received, and the announced total (disk-based syncs). */
  get progress(): { readonly bytes: number; readonly total?: number | undefined } | undefined {
    return this.#current?.progress;
  }

  /** Counters since construction. */
  get stats(): ReplicaListenerStats {
    return {
      connections: this.#stats.connections,
      fullSyncs: this.#stats.fullSyncs,
      partialSyncs: this.#stats.partialSyncs,
      bytesReceived: this.#stats.bytesEnded + (this.#current?.bytesReceived ?? 0),
      commands: this.#stats.commands,
      queuedEvents: this.#queuedEvents,
      readingPaused: this.#current?.readingPaused ?? false,
    };
  }

  /** True between {@link pause} and {@link resume}. */
  get isPaused(): boolean {
    return this.#userPaused;
  }

  // ---------------------------------------------------------------- consuming

  /**
   * Starts the listener and delivers events to its listeners (`event`, `rdb`, `entry`,
   * `command`, `lifecycle`) as they arrive; `error` carries the final error, `close` comes last.
   * Use either this or `for await`, not both.
   *
   * @example
   * ```ts
   * const listener = new ReplicaListener({ url });
   * listener.on('command', (command) => console.log(command.name, command.offset));
   * listener.on('error', (err) => console.error(err));
   * listener.start();
   * await once(listener, 'close');
   * ```
   * @throws {ReplicationError} `ERR_REPLICATION_STATE` when already started or iterated.
   */
  start(): this {
    this.#claim(M_FLOWING);
    return this;
  }

  /**
   * Stops delivering events: the one being delivered is the last until {@link resume}. The
   * socket is still read until the queue is full (`maxQueuedEvents`, `maxQueuedBytes`).
   */
  pause(): void {
    this.#userPaused = true;
  }

  /** Delivers what waited since {@link pause}, then events as they come. */
  resume(): void {
    if (!this.#userPaused) return;
    this.#userPaused = false;
    this.#deliver();
  }

  /**
   * Iterates the events, starting the listener. The loop's pace is the listener's: while the
   * body runs, events wait in the queue, and a full queue stops the socket. Leaving the loop
   * (`break`, `return`, an exception) closes the listener. A final error is thrown after the
   * events before it.
   *
   * @throws {ReplicationError} `ERR_REPLICATION_STATE` when already started or iterated.
   */
  [Symbol.asyncIterator](): AsyncIterator<ReplicationEvent> {
    this.#claim(M_ITERATING);
    return {
      next: () => this.#next(),
      return: async () => {
        // Leaving the loop is the consumer declining the rest: nothing to drain, nothing to report.
        this.#closing ??= this.#shutdown(undefined, false);
        await this.#closing.catch(() => {});
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Stops for good. Nothing more is read from the master and no reconnection is made; the events
   * already received are still delivered to the consumer for up to `timeoutMs` (default 5000) or
   * until `signal` fires; then the master is told what was delivered (`REPLCONF ACK`), the
   * connection closes, the iteration ends and `close` is emitted.
   *
   * Resolves when every received event was delivered. Otherwise rejects with
   * `ERR_REPLICATION_ABANDONED`, `abandoned: { events: n }`: those events were not delivered, and
   * the {@link checkpoint} is where they start (resuming from it sends them again). A consumer that
   * calls `close()` from inside its own loop cannot take them: leave the loop (`break`) instead,
   * which closes without waiting. A second call returns the first one's promise.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => {
   *   listener.close({ timeoutMs: 2000 }).catch((err) => console.warn(err.message, err.abandoned));
   * });
   * ```
   * @throws {ReplicationError} `ERR_REPLICATION_ARGUMENT` for options it does not take (the listener stays open).
   */
  close(options?: ReplicaListenerCloseOptions): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    try {
      rejectUnknownOptions(options, ['timeoutMs', 'signal'], 'close()');
      if (options?.timeoutMs !== undefined) nonNegative('timeoutMs', options.timeoutMs, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#closing = this.#shutdown(options, true);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #claim(mode: number): void {
    if (this.#mode !== M_NONE)
      throw new ReplicationError(
        'ERR_REPLICATION_STATE',
        'this listener is already consumed (started or iterated); use one listener per consumer',
      );
    this.#mode = mode;
    if (this.#stopped) return;
    if (this.#signal?.aborted) {
      this.#onAbort();
      return;
    }
    this.#running = this.#run();
  }

  #next(): Promise<IteratorResult<ReplicationEvent>> {
    if (this.#waiter)
      return Promise.reject(
        new ReplicationError('ERR_REPLICATION_STATE', 'next() was called before the previous one settled'),
      );
    if (this.#finished) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#deliver();
    });
  }

  // ---------------------------------------------------------------- connecting and reconnecting

  async #run(): Promise<void> {
    let attempt = 0;
    let tries = 0; // connections tried since the last sync started, for the handshake trace
    const started = Date.now();
    for (;;) {
      if (this.#stopped) return;
      // Until a sync has started, the attempts share one bound: the first connection's.
      const left = this.#syncedOnce
        ? this.#handshake.connectTimeout
        : started + this.#handshake.connectTimeout - Date.now();
      let error: ReplicationError | undefined;
      try {
        error = asReplicationError(await this.#session(Math.max(1, left), ++tries));
      } catch (err) {
        error = asReplicationError(err);
      }
      if (this.#stopped) return;
      if (error === undefined) {
        this.#end(new Terminal(undefined)); // the snapshot-only sync is complete
        return;
      }
      if (!RETRIED.has(error.code)) {
        this.#end(new Terminal(error));
        return;
      }
      if (this.#progressed) attempt = tries = 0;
      this.#progressed = false;
      attempt++;
      let wait: number | false = false;
      if (this.#strategy) {
        try {
          wait = this.#strategy(attempt, error);
        } catch (err) {
          this.#end(
            new Terminal(
              new ReplicationError('ERR_REPLICATION_ARGUMENT', `the reconnect strategy threw: ${describe(err)}`, {
                cause: err,
              }),
            ),
          );
          return;
        }
      }
      const giveUp = wait === false || !(wait >= 0);
      if (!this.#strategy) {
        this.#end(new Terminal(error)); // reconnect: false, the failure as it is
        return;
      }
      if (!this.#syncedOnce) {
        const remaining = started + this.#handshake.connectTimeout - Date.now();
        if (giveUp || remaining <= 0) {
          this.#end(new Terminal(this.#firstConnectFailure(error, attempt)));
          return;
        }
        wait = Math.min(wait as number, remaining);
      } else if (giveUp) {
        this.#end(new Terminal(this.#gaveUp(error, attempt - 1)));
        return;
      }
      const delayMs = wait as number;
      this.#status = 'reconnecting';
      const resume = this.#resume;
      this.#logger.warn(
        { package: '@redis-events/replication', master: this.master, attempt, delayMs, code: error.code, err: error },
        `replication link failed (${error.code}); reconnecting in ${delayMs} ms`,
      );
      this.#push([{ kind: 'reconnecting', attempt, delayMs, replId: resume.replId, offset: resume.offset, error }], 0);
      await delay(delayMs, { signal: this.#stop.signal });
    }
  }

  /**
   * The end of a first connection that never reached a sync: the last failure, with the bound and
   * the attempts in the message (not wrapped: its code says what kind of failure it was).
   */
  #firstConnectFailure(last: ReplicationError, attempts: number): ReplicationError {
    const message = `could not reach the master within connectTimeout ${this.#handshake.connectTimeout} ms (${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}); the last failure: ${ownWords(last)}`;
    return last instanceof ReplicationLinkError
      ? new ReplicationLinkError(last.code, message, last.master, last.phase, { cause: last.cause })
      : new ReplicationError(last.code, message, { cause: last.cause });
  }

  /** The reconnect strategy gave up: `ERR_REPLICATION_GAVE_UP`, caused by what caused the last failure. */
  #gaveUp(last: ReplicationError, attempts: number): ReplicationError {
    return new ReplicationLinkError(
      'ERR_REPLICATION_GAVE_UP',
      `gave up reconnecting after ${attempts} attempts; the last failure (${last.code}): ${ownWords(last)}`,
      this.master,
      last instanceof ReplicationLinkError ? last.phase : 'connect',
      { cause: last.cause },
    );
  }

  /** One connection: resolves with the reason it ended (undefined: a snapshot-only sync is done). */
  async #session(timeout: number, attempt: number): Promise<Error | undefined> {
    this.#status = 'connecting';
    // Traced from the socket's opening to the answer to PSYNC, when someone subscribes.
    let trace: ReplicationHandshakeContext | undefined;
    if (handshakeChannel.hasSubscribers) {
      trace = {
        serverAddress: this.#link.serverAddress,
        serverPort: this.#link.serverPort,
        attempt,
        replId: this.#resume.replId,
        offset: this.#resume.offset,
      };
      startTrace(handshakeChannel, trace);
    }
    const finish = (error?: ReplicationError, result?: 'full' | 'continue'): void => {
      if (trace === undefined) return;
      trace.result = result;
      finishTrace(handshakeChannel, trace, error);
      trace = undefined;
    };
    let handshake: Awaited<ReturnType<typeof replicaHandshake>>;
    try {
      handshake = await replicaHandshake(
        { ...this.#handshake, connectTimeout: Math.min(timeout, this.#handshake.connectTimeout) },
        this.#stop.signal,
      );
    } catch (err) {
      finish(asReplicationError(err) ?? new ReplicationError('ERR_REPLICATION_STATE', 'the listener was closed'));
      throw err;
    }
    const { socket, head } = handshake;
    this.#logger.debug({ package: '@redis-events/replication', master: this.master }, 'connected to the master');
    this.#stats.connections++;
    this.#status = 'syncing';
    this.#push([{ kind: 'connected', host: this.#target.path ?? this.#target.host, port: this.#target.port }], 0);
    if (this.#stopped) {
      socket.destroy();
      finish(new ReplicationError('ERR_REPLICATION_STATE', 'the listener was closed'));
      return undefined;
    }
    return new Promise<Error | undefined>((resolve) => {
      const owner: LinkOwner = {
        push: (events, bytes) => this.#push(events, bytes),
        milestone: (kind, offset) => this.#milestone(kind, offset),
        ackOffset: () => this.#ackOffset(),
        answered: (result) => finish(undefined, result),
        tick: (link) => this.#publishLag(link),
        ended: (link, error) => {
          finish(asReplicationError(error) ?? new ReplicationError('ERR_REPLICATION_STATE', 'the link ended'));
          this.#resume = link.resumeState;
          this.#stats.bytesEnded += link.bytesReceived;
          if (this.#current === link) this.#current = undefined;
          resolve(error);
        },
      };
      const link = new MasterLink(socket, head, this.#resume, this.#link, owner);
      this.#current = link;
      if (this.#overHighWater()) link.pauseReading();
      link.begin();
    });
  }

  #milestone(kind: 'full' | 'continue' | 'snapshot', offset: number): void {
    this.#progressed = true;
    this.#syncedOnce = true;
    this.#logger.debug(
      { package: '@redis-events/replication', master: this.master, offset },
      kind === 'full' ? 'full sync started' : kind === 'continue' ? 'partial sync (+CONTINUE)' : 'snapshot received',
    );
    if (kind === 'full') {
      this.#parsedSpace++;
      this.#parsedBase = offset;
      return;
    }
    if (kind === 'continue') {
      this.#stats.partialSyncs++;
      this.#parsedBase = offset;
    } else this.#stats.fullSyncs++;
    this.#status = 'streaming';
  }

  /**
   * Publishes on `redis-events:replication:lag` (only while someone subscribes): what was
   * delivered against what the master has written, in bytes and, estimated, in seconds.
   */
  #publishLag(link: MasterLink): void {
    if (!lagChannel.hasSubscribers) {
      if (this.#lagSamples.length > 0) this.#lagSamples = [];
      return;
    }
    this.#probe ??= new MasterOffsetProbe(this.#target, this.#handshake.connectTimeout, this.#logger);
    const masterOffset = this.#probe.sample();
    const receivedOffset = link.receivedOffset;
    const stream = link.streaming && this.#deliveredSpace === this.#parsedSpace && this.#deliveredOffset !== undefined;
    const deliveredOffset = stream ? (this.#deliveredOffset as number) : this.#parsedBase;
    const produced = Math.max(masterOffset ?? 0, receivedOffset);
    const now = Date.now();
    // When the master's offset passed each value: the oldest undelivered write's age comes from it.
    const samples = this.#lagSamples;
    if (samples.length === 0 || (samples[samples.length - 1] as [number, number])[1] < produced)
      samples.push([now, produced]);
    while (samples.length > 1 && (samples[1] as [number, number])[1] <= deliveredOffset) samples.shift();
    if (samples.length > 3600) samples.shift();
    const first = samples.find(([, offset]) => offset > deliveredOffset);
    const message: ReplicationLagMessage = {
      serverAddress: this.#link.serverAddress,
      serverPort: this.#link.serverPort,
      replId: link.replId,
      phase: stream ? 'stream' : 'snapshot',
      deliveredOffset,
      receivedOffset,
      masterOffset,
      bytes: Math.max(0, produced - deliveredOffset),
      seconds: first && produced > deliveredOffset ? (now - first[0]) / 1000 : 0,
      queuedEvents: this.#queuedEvents,
    };
    lagChannel.publish(message);
  }

  /** The offset for REPLCONF ACK: what was delivered, when the consumer is in the current offset space. */
  #ackOffset(): number {
    const delivered = this.#deliveredOffset;
    return this.#deliveredSpace === this.#parsedSpace && delivered !== undefined ? delivered : this.#parsedBase;
  }

  // ---------------------------------------------------------------- the queue

  #overHighWater(): boolean {
    return this.#queuedEvents >= this.#maxQueuedEvents || this.#queuedBytes >= this.#maxQueuedBytes;
  }

  /** Queues parsed events (delivering at once when the consumer is ready) and applies backpressure. */
  #push(events: readonly ReplicationEvent[], bytes: number): void {
    if (this.#stopped) return;
    let from = 0;
    // Fast path: a flowing consumer with nothing waiting gets the events at once.
    if (this.#mode === M_FLOWING && this.#head === this.#items.length && !this.#delivering) {
      this.#delivering = true;
      try {
        while (from < events.length && !this.#userPaused && !this.#finished)
          this.#dispatch(events[from++] as ReplicationEvent);
      } finally {
        this.#delivering = false;
      }
      if (from === events.length || this.#finished) return;
    }
    const items = this.#items;
    for (let i = from; i < events.length; i++) items.push(events[i] as ReplicationEvent);
    this.#queuedEvents += events.length - from;
    if (bytes > 0 && from < events.length) {
      items.push(bytes);
      this.#queuedBytes += bytes;
    }
    this.#deliver();
    if (this.#overHighWater()) this.#current?.pauseReading();
  }

  /** Queues the end: everything queued before it is delivered first. */
  #end(terminal: Terminal): void {
    this.#probe?.close();
    this.#stopped = true;
    this.#status = 'closed';
    this.#stop.abort();
    this.#items.push(terminal);
    this.#deliver();
  }

  #deliver(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      const items = this.#items;
      while (this.#head < items.length && !this.#finished && !this.#userPaused) {
        if (this.#mode === M_NONE || (this.#mode === M_ITERATING && !this.#waiter)) break;
        const item = items[this.#head] as Item;
        items[this.#head++] = undefined;
        if (typeof item === 'number') this.#queuedBytes -= item;
        else if (item instanceof Terminal) this.#terminate(item);
        else {
          this.#queuedEvents--;
          this.#dispatch(item);
        }
      }
      if (this.#head === items.length) {
        this.#items = [];
        this.#head = 0;
      } else if (this.#head > 4096 && this.#head * 2 > items.length) {
        this.#items = items.slice(this.#head);
        this.#head = 0;
      }
    } finally {
      this.#delivering = false;
    }
    if (this.#stopped) {
      if (this.#queuedEvents === 0) this.#drained?.();
      return; // a closing listener reads nothing more
    }
    if (!this.#overHighWater()) {
      const low = this.#queuedEvents <= this.#maxQueuedEvents / 2 && this.#queuedBytes <= this.#maxQueuedBytes / 2;
      if (low) this.#current?.resumeReading();
    }
  }

  /** Hands one event to the consumer, after the bookkeeping its delivery implies. */
  #dispatch(event: ReplicationEvent): void {
    switch (event.kind) {
      case 'command':
        this.#stats.commands++;
        if (commandChannel.hasSubscribers)
          commandChannel.publish({
            serverAddress: this.#link.serverAddress,
            serverPort: this.#link.serverPort,
            database: event.db,
            command: event.name,
            argsCount: event.args.length,
            offset: event.offset,
            size: event.size,
            inTransaction: event.inTransaction,
          });
        this.#deliveredOffset = event.offset;
        this.#cpOffset = event.offset;
        this.#cpDb = event.db;
        if (event.name === 'REPLCONF' && isGetAck(event.args) && this.#deliveredSpace === this.#parsedSpace) {
          // Like a Redis replica: the offset before the GETACK itself.
          this.#current?.ack(event.offset - event.size);
        }
        break;
      case 'full-sync-start':
        this.#deliveredSpace++;
        this.#deliveredOffset = undefined;
        this.#cpValid = false;
        break;
      case 'snapshot-done':
        this.#deliveredOffset = event.offset;
        this.#cpValid = true;
        this.#cpReplId = event.replId;
        this.#cpOffset = event.offset;
        this.#cpDb = event.db;
        break;
      case 'continued':
        this.#deliveredOffset = event.offset;
        this.#cpValid = true;
        this.#cpReplId = event.replId;
        this.#cpOffset = event.offset;
        break;
      default:
        break;
    }
    const waiter = this.#waiter;
    this.#waiter = undefined;
    this.#emitEvent(event);
    waiter?.resolve({ done: false, value: event });
  }

  #emitEvent(event: ReplicationEvent): void {
    try {
      this.emit('event', event);
      if (event.kind === 'command') this.emit('command', event);
      else if (LIFECYCLE.has(event.kind)) this.emit('lifecycle', event as LifecycleEvent);
      else {
        this.emit('rdb', event as RdbEvent);
        if (event.kind === 'entry') this.emit('entry', event);
      }
    } catch (err) {
      rethrow(err);
    }
  }

  /** Delivers the end: the final error (to the iterator, or to `error` listeners), then `close`. */
  #terminate(terminal: Terminal): void {
    this.#finished = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#status = 'closed';
    const waiter = this.#waiter;
    this.#waiter = undefined;
    const error = terminal.error;
    if (error && waiter) waiter.reject(error);
    else waiter?.resolve({ done: true, value: undefined });
    if (error && (this.#mode === M_FLOWING || this.listenerCount('error') > 0)) {
      try {
        this.emit('error', error);
      } catch (err) {
        rethrow(err); // no error listener in flowing mode: like any emitter, the error is thrown
      }
    }
    this.#emitClose();
  }

  #emitClose(): void {
    try {
      this.emit('close');
    } catch (err) {
      rethrow(err);
    }
  }

  async #shutdown(options: ReplicaListenerCloseOptions | undefined, drain: boolean): Promise<void> {
    this.#probe?.close();
    this.#stopped = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#stop.abort(); // no more handshakes, reconnections or waits between them
    const link = this.#current;
    link?.pauseReading(); // nothing more from the master
    if (drain && !this.#finished && this.#queuedEvents > 0) await this.#waitDrained(options);
    // The master learns what was delivered before the link goes (WAIT, INFO replication).
    if (link?.streaming) link.ack(this.#ackOffset());
    link?.destroy(new ReplicationError('ERR_REPLICATION_STATE', 'the listener was closed'));
    const abandoned = this.#finished ? 0 : this.#queuedEvents;
    this.#items = [];
    this.#head = 0;
    this.#queuedEvents = 0;
    this.#queuedBytes = 0;
    if (!this.#finished) {
      this.#finished = true;
      this.#status = 'closed';
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter?.resolve({ done: true, value: undefined });
      if (this.#mode !== M_NONE) this.#emitClose();
    }
    await this.#running;
    if (abandoned > 0) {
      const where = this.checkpoint;
      throw new ReplicationError(
        'ERR_REPLICATION_ABANDONED',
        `closed with ${abandoned} received ${abandoned === 1 ? 'event' : 'events'} not delivered to the consumer${where ? `; resuming from the checkpoint (offset ${where.replOffset}) receives them again` : ''}`,
        { abandoned: { events: abandoned } },
      );
    }
  }

  /** Waits until the consumer took every queued event, or the close bound. */
  #waitDrained(options: ReplicaListenerCloseOptions | undefined): Promise<void> {
    const signal = options?.signal;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#drained = undefined;
        resolve();
      };
      const timer = setTimeout(done, options?.timeoutMs ?? CLOSE_TIMEOUT);
      this.#drained = done;
      if (signal?.aborted) done();
      else signal?.addEventListener('abort', done, { once: true });
    });
  }
}

function isGetAck(args: readonly Buffer[]): boolean {
  const sub = args[0];
  return sub !== undefined && sub.length === 6 && sub.toString('latin1').toUpperCase() === 'GETACK';
}

/** A listener threw: the listener's state stays intact, and the error surfaces on its own. */
function rethrow(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every failure a listener reports is a ReplicationError: anything else is wrapped once. */
function asReplicationError(err: unknown): ReplicationError | undefined {
  if (err === undefined || err instanceof ReplicationError) return err;
  return new ReplicationError('ERR_REPLICATION_PROTOCOL', `unexpected failure: ${describe(err)}`, { cause: err });
}

/** An error's message without the `(master …, phase)` that a link error adds, for a new link error that adds its own. */
function ownWords(err: ReplicationError): string {
  if (!(err instanceof ReplicationLinkError)) return err.message;
  const suffix = ` (master ${err.master}, ${err.phase})`;
  return err.message.endsWith(suffix) ? err.message.slice(0, -suffix.length) : err.message;
}
