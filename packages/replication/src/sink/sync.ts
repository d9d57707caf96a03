// RedisSync: a source (a master, a Cluster, an RDB file, AOF files) copied into a target Redis
// or Cluster, then kept in step with every write. One loop takes the source's events in order:
// snapshot entries become RESTOREs (or typed commands), replicated commands are filtered, mapped
// and forwarded, and every write is pipelined. The position of the last write the target
// acknowledged is the checkpoint: saved every second and on close, it lets the next run resume
// with PSYNC instead of a new full sync.
//
// Backpressure: when the target has too much in flight, or a step must wait for a reply (a key
// fetched again, a FLUSHDB on a filtered target), the loop stops and the source is paused; the
// listener then queues and stops reading, and the master holds the rest in its backlog.

import { EventEmitter } from 'node:events';
import type { Logger } from '@redis-events/resp';
import type { ReadAofOptions } from '../aof/read-aof.ts';
import type { ClusterCheckpoint, ClusterTopologyEvent } from '../cluster-source.ts';
import { parseDumpPayload } from '../dump-payload.ts';
import { abortError, ReplicationError, type ReplicationErrorCode } from '../errors.ts';
import { rejectUnknownOptions } from '../options.ts';
import type { RdbEntryEvent } from '../rdb-events.ts';
import type { RdbParserOptions } from '../rdb-parser.ts';
import type { CommandEvent } from '../replication-events.ts';
import { commandKeys } from './command-keys.ts';
import { commandBytes, type ExistingKeyPolicy, type ReplyHandler, type WriteContext } from './context.ts';
import { storedEncodingsFor } from './dump-encoder.ts';
import { type RedisEndpoint, type ResolvedEndpoint, resolveEndpoint } from './endpoint.ts';
import { compileFilter, type KeyFilter, type SyncFilter } from './filter.ts';
import { type LiveAction, liveActions } from './live-writes.ts';
import { inRanges, slotOf } from './slots.ts';
import { printable, SnapshotWriter } from './snapshot-writes.ts';
import {
  AofSource,
  ClusterSource,
  type FetchedKey,
  type ListenerSettings,
  MasterSource,
  RdbFileSource,
  type SourceEvent,
  type SourceShard,
  type SyncSource,
} from './sources.ts';
import { fileStateStore, type SyncShardState, type SyncState, type SyncStateStore } from './sync-state.ts';
import { SyncTarget, type TargetArg, type TargetNode } from './target.ts';

/**
 * Where a sync reads from: a Redis URL or endpoint (a master, or any node of a Cluster, found
 * out by itself), `{ rdb: path }` for an RDB file, or `{ aof: path }` for AOF files (a Redis 7
 * `appendonlydir`, its manifest, or a single `appendonly.aof`).
 *
 * @example
 * ```ts
 * const sources: SyncSourceSpec[] = ['redis://old:6379', { rdb: 'dump.rdb' }, { aof: '/var/lib/redis/appendonlydir' }];
 * ```
 */
export type SyncSourceSpec =
  | string
  | (RedisEndpoint & { readonly cluster?: boolean | undefined })
  | { readonly rdb: string }
  | { readonly aof: string };

/**
 * Options of {@link RedisSync}.
 *
 * @example
 * ```ts
 * const options: RedisSyncOptions = {
 *   source: 'redis://old.internal:6379',
 *   target: 'redis://new.internal:6379',
 *   filter: { prefixes: ['user:'] },
 *   existing: 'replace',
 *   stateFile: 'sync-state.json',
 * };
 * ```
 */
export interface RedisSyncOptions {
  readonly source: SyncSourceSpec;
  /** The target: a standalone server, or any node of a Cluster (detected). */
  readonly target: RedisEndpoint | string;
  readonly filter?: SyncFilter | undefined;
  /**
   * Source database → target database; unmapped databases keep their number. A Cluster target
   * has database 0 only: map every kept database to 0.
   */
  readonly dbMap?: Readonly<Record<number, number>> | ((db: number) => number) | undefined;
  /**
   * A snapshot key that exists on the target: `replace` it (default), `skip` it (keep the
   * target's), or `fail` the sync. Applies to the first full sync into a target; later full
   * syncs of the same state (after a lost backlog) replace, since the target then holds the
   * sync's own earlier writes.
   */
  readonly existing?: ExistingKeyPolicy | undefined;
  /** Saves the position there (JSON) every `saveInterval` and on close; the next run resumes from it. */
  readonly stateFile?: string | undefined;
  /** Or keep the position in a store of yours. */
  readonly stateStore?: SyncStateStore | undefined;
  /** Forward PUBLISH and SPUBLISH (subscribers of the target get the messages again). Default false. */
  readonly publish?: boolean | undefined;
  /** Copy functions (snapshot libraries, FUNCTION LOAD/DELETE/FLUSH) and SCRIPT commands. Default true. */
  readonly functions?: boolean | undefined;
  /**
   * A replicated command the target refuses (WRONGTYPE on a key the target holds differently...):
   * `warn` (default, as a replica does: counted, logged, a `warning` event) or `fail`. Snapshot
   * writes that fail always fail the sync.
   */
  readonly errors?: 'warn' | 'fail' | undefined;
  /** Commands in flight to the target before the source is paused. Default 10,000. */
  readonly maxInflightCommands?: number | undefined;
  /** Bytes in flight to the target before the source is paused. Default 16 MiB. */
  readonly maxInflightBytes?: number | undefined;
  /** How often the position is saved, in ms. Default 1000. */
  readonly saveInterval?: number | undefined;
  /** How often a `progress` event comes, in ms. Default 1000. */
  readonly progressInterval?: number | undefined;
  /** Connecting to the source and the target, per attempt, in ms. Default 10,000. */
  readonly connectTimeout?: number | undefined;
  /** How long a target write may keep failing (a failover, redirections) before the sync fails, in ms. Default 60,000. */
  readonly retryTimeout?: number | undefined;
  /** Options of the source's replica listeners (timeouts, reconnect, queue sizes, announce). */
  readonly replica?: ListenerSettings | undefined;
  /** RDB parser options (snapshots, RDB files, AOF bases). */
  readonly rdb?: RdbParserOptions | undefined;
  /** AOF reading options (`untilTimestamp`, `truncated`). */
  readonly aof?: Omit<ReadAofOptions, 'signal' | 'rdb'> | undefined;
  /** Stops the sync (as {@link RedisSync.close}); `run()` then rejects with an `AbortError`. */
  readonly signal?: AbortSignal | undefined;
  /** Where retries, warnings and failures are logged (console and pino fit). */
  readonly logger?: Logger | undefined;
}

/** Where a sync is. */
export type SyncPhase = 'connecting' | 'snapshot' | 'live' | 'done' | 'closed' | 'failed';

/**
 * Progress and counters of a sync, in every `progress` event and from {@link RedisSync.stats}.
 *
 * @example
 * ```ts
 * sync.on('progress', (p) => console.log(p.phase, p.snapshot.keys, p.live.lagBytes, p.live.lagMs));
 * ```
 */
export interface SyncProgress {
  readonly phase: SyncPhase;
  readonly snapshot: {
    /** Snapshot bytes received, and the total when the transfer announced it. */
    readonly bytes: number;
    readonly total?: number | undefined;
    /** Keys written (kept by the filter), keys the filter left out, kept by `skip`, already expired. */
    readonly keys: number;
    readonly filtered: number;
    readonly skipped: number;
    readonly expired: number;
  };
  readonly live: {
    /** Replicated commands applied (acknowledged by the target). */
    readonly commands: number;
    /** Commands left out by the filter (and the masters' PING and REPLCONF). */
    readonly filtered: number;
    /** Keys taken from the source again (commands that could not be split). */
    readonly refetched: number;
    /** Bytes of the source's stream not applied yet (its master offset minus the applied one). */
    readonly lagBytes: number;
    /** How long the oldest command not yet applied has been waiting, in ms (0 when none). */
    readonly lagMs: number;
  };
  readonly target: { readonly inflight: number; readonly redirections: number; readonly resent: number };
  /** Full syncs received, and resumes without one (PSYNC `+CONTINUE`). */
  readonly fullSyncs: number;
  readonly partialSyncs: number;
  readonly warnings: number;
}

/** What `run()` resolves with. */
export interface SyncResult extends SyncProgress {
  /** The position saved last (live sources). */
  readonly state: SyncState | undefined;
}

/** A problem that did not stop the sync. */
export interface SyncWarning {
  readonly code: string;
  readonly message: string;
}

/** Events of {@link RedisSync}. */
export interface RedisSyncEvents {
  progress: [progress: SyncProgress];
  phase: [phase: SyncPhase];
  warning: [warning: SyncWarning];
  topology: [event: ClusterTopologyEvent];
  error: [error: ReplicationError];
}

/** A shard's bookkeeping in the sync. */
interface Shard {
  readonly ref: SourceShard;
  replId: string | undefined;
  phase: 'waiting' | 'snapshot' | 'live';
  /** Applied (acknowledged) position. */
  applied: SyncShardState | undefined;
  /** Received offset (of the last command seen). */
  received: number;
  /** Commands of an open MULTI. */
  tx: CommandEvent[] | undefined;
  txBytes: number;
  /** A MULTI too large to hold: its commands go out one by one. */
  txStreaming: boolean;
  /** A checkpoint was saved for it before this run, so a full sync means the backlog was lost. */
  resumed: boolean;
  masterOffset: number | undefined;
}

/** One step of acknowledgement: writes of one or more source events, and where they leave the shard. */
interface Ack {
  pending: number;
  shard: Shard | undefined;
  /** The checkpoint when this step's writes are in. */
  position: SyncShardState | undefined;
  aof: { file: string; offset: number } | undefined;
  received: number;
  commands: number;
  sealed: boolean;
}

const TX_LIMIT_COMMANDS = 10_000;
const TX_LIMIT_BYTES = 64 * 1024 * 1024;
/** Source events queued in the sync (a large key's parts hold about a megabyte each) before the source pauses. */
const HIGH_WATER = 1024;
/** The same, in the memory the queued events hold (estimated): parts of large keys fill it long before the count. */
const HIGH_WATER_BYTES = 16 * 1024 * 1024;

/**
 * About the memory a source event holds: its Buffers' bytes plus a per-object cost. Exactness
 * does not matter; what does is that a queue of large parts is seen as large.
 */
function eventBytes(event: SourceEvent): number {
  if (event.kind === 'command') {
    let n = 64;
    for (const a of event.args) n += a.length + 100;
    return n;
  }
  if (event.kind !== 'entry') return 64;
  let n = 200 + event.key.length;
  if (event.encoded) return n + event.encoded.length;
  const value: unknown = event.value;
  if (Buffer.isBuffer(value)) return n + value.length;
  if (event.type === 'stream') {
    for (const item of event.value.entries) {
      n += 100;
      for (const [f, v] of item.fields) n += f.length + v.length + 200;
    }
    return n;
  }
  if (Array.isArray(value))
    for (const item of value as unknown[]) {
      if (Buffer.isBuffer(item)) n += item.length + 100;
      else if (item !== null && typeof item === 'object') {
        const o = item as { field?: Buffer; member?: Buffer; value?: unknown };
        n += 150 + (o.field?.length ?? 0) + (o.member?.length ?? 0) + (Buffer.isBuffer(o.value) ? o.value.length : 0);
      } else n += 50;
    }
  return n;
}

const OPTION_KEYS: readonly string[] = [
  'source',
  'target',
  'filter',
  'dbMap',
  'existing',
  'stateFile',
  'stateStore',
  'publish',
  'functions',
  'errors',
  'maxInflightCommands',
  'maxInflightBytes',
  'saveInterval',
  'progressInterval',
  'connectTimeout',
  'retryTimeout',
  'replica',
  'rdb',
  'aof',
  'signal',
  'logger',
];

function argument(message: string): ReplicationError {
  return new ReplicationError('ERR_REPLICATION_ARGUMENT', message);
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw argument(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function wrap(err: unknown, code: ReplicationErrorCode, message: string): ReplicationError {
  if (err instanceof ReplicationError) return err;
  return new ReplicationError(code, `${message}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/**
 * Copies a source (a master, a Cluster, an RDB file, AOF files) into a target Redis or Cluster
 * and keeps it in step: the snapshot first (RESTORE with payloads every target version reads;
 * large keys in bounded pieces), then every replicated write in order, pipelined, in bounded
 * memory. Filters by database, key prefix or pattern and type; maps databases; replaces, skips
 * or refuses keys already on the target. With a `stateFile`, the position the target has
 * acknowledged is saved, and a restart resumes with PSYNC, without a new full sync, while the
 * source's backlog still holds the writes in between.
 *
 * @example
 * ```ts
 * import { RedisSync } from '@redis-events/replication';
 *
 * const sync = new RedisSync({ source: 'redis://old:6379', target: 'redis://new:6379', stateFile: 'sync.json' });
 * sync.on('progress', (p) => console.log(p.phase, p.snapshot.keys, `${p.live.lagMs} ms behind`));
 * process.once('SIGINT', () => void sync.close());
 * await sync.run(); // until closed (or, for files, until everything is applied)
 * ```
 */
export class RedisSync extends EventEmitter<RedisSyncEvents> implements AsyncDisposable {
  readonly #options: RedisSyncOptions;
  readonly #filter: KeyFilter;
  readonly #targetEndpoint: ResolvedEndpoint;
  readonly #sourceLabel: string;
  readonly #store: SyncStateStore | undefined;
  readonly #dbMap: (db: number) => number;
  readonly #mergesDbs: boolean;
  readonly #logger: Logger | undefined;
  readonly #maxInflightCommands: number;
  readonly #maxInflightBytes: number;
  readonly #saveInterval: number;
  readonly #progressInterval: number;
  readonly #connectTimeout: number;
  readonly #retryTimeout: number;
  readonly #stop = new AbortController();

  #phase: SyncPhase = 'connecting';
  #running = false;
  #source: SyncSource | undefined;
  #target: SyncTarget | undefined;
  #snapshot: SnapshotWriter | undefined;
  #refetchWriter: SnapshotWriter | undefined;
  #ctx: WriteContext | undefined;
  readonly #shards = new Map<string, Shard>();
  #state: SyncState | undefined;
  #started = false;
  #stateDirty = false;
  #saving: Promise<void> | undefined;

  // The event queue and its processing.
  #queue: { shard: SourceShard; event: SourceEvent; bytes: number }[] = [];
  #queuedBytes = 0;
  #head = 0;
  #step: Promise<void> | undefined;
  #sourcePaused = false;
  #sourceEnded = false;
  #sourceError: Error | undefined;
  #pumping = false;

  // Acknowledgements.
  #acks: Ack[] = [];
  #ackHead = 0;
  #unsealed = 0;
  #sealScheduled = false;
  #open: Ack | undefined;
  /** Keys a Cluster source's master received by RESTORE-ASKING (a slot migration), and from which shard. */
  readonly #migrated = new Map<string, { shard: string; at: number }>();
  /** Keys fetched again: their commands up to the fetch's offset are already in the value. */
  readonly #fetched = new Map<string, number>();
  /** Key specs of commands the built-in table does not know (the target's COMMAND INFO). */
  readonly #keySpecs = new Map<string, { first: number; last: number; step: number } | null>();
  #aofFile: string | undefined;
  #aofPosition: { file: string; offset: number } | undefined;

  // Counters.
  #snapshotBytes = 0;
  #snapshotTotal: number | undefined;
  #commands = 0;
  #filtered = 0;
  #refetched = 0;
  #fullSyncs = 0;
  #partialSyncs = 0;
  #warnings = 0;

  #finish: ((result: SyncResult) => void) | undefined;
  #reject: ((error: ReplicationError) => void) | undefined;
  #fatal: ReplicationError | undefined;
  #closing: Promise<void> | undefined;
  /** close() was called, or the sync is done: no new work. */
  #stopping = false;
  #timers: ReturnType<typeof setInterval>[] = [];

  /** @throws {ReplicationError} `ERR_REPLICATION_ARGUMENT` for options that cannot work. */
  constructor(options: RedisSyncOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw argument('RedisSync takes an options object');
    rejectUnknownOptions(options, OPTION_KEYS, 'RedisSync');
    if (options.source === undefined) throw argument('source is required: a Redis URL, { rdb: path } or { aof: path }');
    if (options.target === undefined) throw argument('target is required: a Redis URL or connection options');
    this.#options = options;
    this.#filter = compileFilter(options.filter);
    this.#targetEndpoint = resolveEndpoint(options.target, 'target');
    const spec = options.source;
    if (typeof spec === 'object' && 'rdb' in spec) {
      if (typeof spec.rdb !== 'string') throw argument('source.rdb must be a file path');
      this.#sourceLabel = `rdb:${spec.rdb}`;
    } else if (typeof spec === 'object' && 'aof' in spec) {
      if (typeof spec.aof !== 'string') throw argument('source.aof must be a path');
      this.#sourceLabel = `aof:${spec.aof}`;
    } else {
      const { cluster: _cluster, ...endpoint } = typeof spec === 'string' ? { url: spec } : spec;
      this.#sourceLabel = resolveEndpoint(endpoint, 'source').label;
    }
    const existing = options.existing ?? 'replace';
    if (existing !== 'replace' && existing !== 'skip' && existing !== 'fail')
      throw argument(`existing must be replace, skip or fail, got ${String(existing)}`);
    if (options.errors !== undefined && options.errors !== 'warn' && options.errors !== 'fail')
      throw argument(`errors must be warn or fail, got ${String(options.errors)}`);
    if (options.stateFile !== undefined && options.stateStore !== undefined)
      throw argument('give stateFile or stateStore, not both');
    this.#store =
      options.stateStore ?? (options.stateFile !== undefined ? fileStateStore(options.stateFile) : undefined);
    const map = options.dbMap;
    if (map === undefined) this.#dbMap = (db) => db;
    else if (typeof map === 'function') this.#dbMap = map;
    else {
      for (const [from, to] of Object.entries(map))
        if (!/^\d+$/.test(from) || !Number.isSafeInteger(to) || to < 0)
          throw argument(`dbMap maps databases to databases (non-negative integers); got ${from} → ${String(to)}`);
      this.#dbMap = (db) => map[db] ?? db;
    }
    // Two source databases may land in one target database: FLUSHDB and SWAPDB cannot be mirrored.
    if (map === undefined) this.#mergesDbs = false;
    else if (typeof map === 'function') this.#mergesDbs = true;
    else {
      const pairs = Object.entries(map).map(([from, to]) => [Number(from), to] as const);
      this.#mergesDbs = pairs.some(
        ([from, to]) => to !== from && (!(to in map) || pairs.some(([other, to2]) => other !== from && to2 === to)),
      );
    }
    this.#logger = options.logger;
    this.#maxInflightCommands = positiveInt('maxInflightCommands', options.maxInflightCommands, 10_000);
    this.#maxInflightBytes = positiveInt('maxInflightBytes', options.maxInflightBytes, 16 * 1024 * 1024);
    this.#saveInterval = positiveInt('saveInterval', options.saveInterval, 1000);
    this.#progressInterval = positiveInt('progressInterval', options.progressInterval, 1000);
    this.#connectTimeout = positiveInt('connectTimeout', options.connectTimeout, 10_000);
    this.#retryTimeout = positiveInt('retryTimeout', options.retryTimeout, 60_000);
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => {
    void this.close().catch(() => {});
  };

  /** Where the sync is. */
  get phase(): SyncPhase {
    return this.#phase;
  }

  /** The last position saved (or to be saved): what a restart resumes from. */
  get state(): SyncState | undefined {
    return this.#state;
  }

  /** Progress and counters now. */
  get stats(): SyncProgress {
    const counters = this.#snapshot?.counters ?? { keys: 0, filtered: 0, skipped: 0, expired: 0, parts: 0 };
    let lagBytes = 0;
    for (const shard of this.#shards.values()) {
      const applied = shard.applied?.replOffset;
      const head = Math.max(shard.masterOffset ?? 0, shard.received);
      if (applied !== undefined && head > applied) lagBytes += head - applied;
    }
    const oldest = this.#oldestPending();
    return {
      phase: this.#phase,
      snapshot: {
        bytes: this.#snapshotBytes,
        ...(this.#snapshotTotal !== undefined ? { total: this.#snapshotTotal } : {}),
        keys: counters.keys,
        filtered: counters.filtered,
        skipped: counters.skipped,
        expired: counters.expired,
      },
      live: {
        commands: this.#commands,
        filtered: this.#filtered,
        refetched: this.#refetched,
        lagBytes,
        lagMs: oldest === undefined ? 0 : Math.max(0, Date.now() - oldest),
      },
      target: {
        inflight: this.#target?.inflight ?? 0,
        redirections: this.#target?.redirections ?? 0,
        resent: this.#target?.resent ?? 0,
      },
      fullSyncs: this.#fullSyncs,
      partialSyncs: this.#partialSyncs,
      warnings: this.#warnings,
    };
  }

  /**
   * Connects, then copies and follows the source. Resolves when a file source is fully applied
   * (with the position saved), or when the sync is closed; rejects with the error that stopped
   * it (an `AbortError` when its signal aborted it).
   *
   * @throws {ReplicationError} `ERR_SYNC_TARGET`, `ERR_SYNC_CONFLICT`, `ERR_SYNC_UNSUPPORTED`, `ERR_SYNC_STATE`, `ERR_REPLICATION_*` of the source, `ERR_REPLICATION_ABORTED` (named `AbortError`).
   */
  run(): Promise<SyncResult> {
    if (this.#running)
      return Promise.reject(new ReplicationError('ERR_REPLICATION_STATE', 'run() was already called on this sync'));
    if (this.#stopping)
      return Promise.reject(new ReplicationError('ERR_REPLICATION_STATE', 'this sync was closed before it ran'));
    this.#running = true;
    return new Promise<SyncResult>((resolve, reject) => {
      this.#finish = resolve;
      this.#reject = reject;
      this.#begin().catch((err: unknown) => this.#failWith(wrap(err, 'ERR_SYNC_TARGET', 'the sync could not start')));
    });
  }

  /**
   * Resolves once the target has applied everything the source had written when this was
   * called: each source master's replication offset is read now, and awaited in the applied
   * position. Before a cutover: stop the writers, `await sync.caughtUp()`, switch. For a file
   * source, waits until it is fully applied.
   *
   * @throws {ReplicationError} `ERR_REPLICATION_ABORTED` (named `AbortError`) when the signal aborts, `ERR_SYNC_CLOSE` when
   * `timeoutMs` passes or the sync stops first.
   */
  async caughtUp(
    options: { readonly timeoutMs?: number | undefined; readonly signal?: AbortSignal | undefined } = {},
  ): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const signal = options.signal;
    const check = (what: string) => {
      if (signal?.aborted) throw abortError(signal.reason, `waiting for ${what}`);
      if (this.#fatal) throw this.#fatal;
      if (this.#phase === 'closed' || this.#phase === 'failed')
        throw new ReplicationError('ERR_SYNC_CLOSE', `the sync stopped before ${what}`);
      if (Date.now() > deadline) throw new ReplicationError('ERR_SYNC_CLOSE', `timed out waiting for ${what}`);
    };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
    while (this.#phase !== 'live' && this.#phase !== 'done') {
      check('the snapshot to be applied');
      await pause();
    }
    if ((this.#phase as SyncPhase) === 'done') return;
    const source = this.#source as SyncSource;
    if (source.kind === 'aof' || source.kind === 'rdb') {
      while ((this.#phase as SyncPhase) !== 'done') {
        check('the file to be applied');
        await pause();
      }
      return;
    }
    const goals = new Map<Shard, number>();
    for (const shard of this.#shards.values()) {
      // A shard's master can be gone for a moment (a failover in progress): ask again, within
      // the bound, until its new master answers.
      for (;;) {
        const master = shard.ref.master;
        try {
          const offset = await source.masterOffset(shard.ref);
          if (offset !== undefined) goals.set(shard, offset);
          break;
        } catch (err) {
          check(`${master} to tell its offset (${(err as Error).message})`);
          await pause();
        }
      }
    }
    for (const [shard, goal] of goals) {
      while ((shard.applied?.replOffset ?? -1) < goal) {
        check(`${shard.ref.master} to reach offset ${goal}`);
        await pause();
      }
    }
  }

  /**
   * Stops: no more source events are taken, the writes in flight are awaited (up to
   * `timeoutMs`, default 10 s), the position is saved, connections close. Resolves when nothing
   * was abandoned; rejects with `ERR_REPLICATION_ABANDONED` (`abandoned: { writes }`) when the bound
   * ran out (the saved position is before them: a restart applies them again).
   */
  close(
    options: { readonly timeoutMs?: number | undefined; readonly signal?: AbortSignal | undefined } = {},
  ): Promise<void> {
    this.#stopping = true;
    this.#closing ??= this.#shutdown(options.timeoutMs ?? 10_000, options.signal);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ------------------------------------------------------------------ starting

  async #begin(): Promise<void> {
    const o = this.#options;
    const signal = this.#stop.signal;
    if (o.signal?.aborted) throw this.#abortError();
    // The saved position, checked against this sync's source, target and filter.
    if (this.#store) {
      const saved = await this.#store.load();
      if (saved) {
        if (
          saved.source !== this.#sourceLabel ||
          saved.target !== this.#targetEndpoint.label ||
          saved.filter !== this.#filter.fingerprint
        )
          throw new ReplicationError(
            'ERR_SYNC_STATE',
            `the saved state is of another sync (source ${saved.source}, target ${saved.target}${saved.filter !== this.#filter.fingerprint ? ', another filter' : ''}); use another state file, or remove it to start over`,
          );
        this.#state = saved;
        this.#started = saved.started;
        this.#aofPosition = saved.aof;
      }
    }
    this.#target = await SyncTarget.open(this.#targetEndpoint, {
      connectTimeout: this.#connectTimeout,
      maxInflightCommands: this.#maxInflightCommands,
      maxInflightBytes: this.#maxInflightBytes,
      retryTimeout: this.#retryTimeout,
      signal,
      onDrain: () => this.#pump(),
      onRetry: (reason) => this.#log('warn', { reason }, `target write retried: ${reason}`),
    });
    if (this.#stopping) return;
    const target = this.#target;
    if (!target.server.cluster && target.server.major < 5 && target.server.flavor === 'redis')
      throw new ReplicationError(
        'ERR_SYNC_UNSUPPORTED',
        `the target runs Redis ${target.server.version}; a sync needs 5.0 or later (RESTORE ABSTTL)`,
      );
    this.#ctx = this.#context(target);
    this.#snapshot = new SnapshotWriter(this.#ctx, this.#started ? 'replace' : (o.existing ?? 'replace'));
    this.#refetchWriter = new SnapshotWriter(this.#ctx, 'replace');
    this.#source = await this.#openSource();
    if (this.#stopping) return;
    await this.#checkDatabases();
    this.#timers.push(setInterval(() => void this.#save(), this.#saveInterval));
    this.#timers.push(
      setInterval(() => {
        void this.#probeLag();
        this.emit('progress', this.stats);
      }, this.#progressInterval),
    );
    for (const t of this.#timers) t.unref?.();
    await this.#source.start({
      event: (shard, event) => this.#enqueue(shard, event),
      topology: (event) => this.#topology(event),
      end: (error) => this.#sourceEnd(error),
    });
    if (this.#source instanceof AofSource && this.#source.resumeLost)
      this.#warn(
        'aof-rewritten',
        'the AOF file of the saved position is gone (the AOF was rewritten): everything is applied again from the new base',
      );
  }

  async #openSource(): Promise<SyncSource> {
    const o = this.#options;
    const spec = o.source;
    // Compact encodings the target loads as stored are passed through, not decoded.
    const rdb = { keepEncoded: storedEncodingsFor((this.#target as SyncTarget).server), ...o.rdb };
    // Parsed parts take several times their input bytes in memory: the listener's queue is kept
    // short, the sync's own queue and write window bound the rest.
    const settings: ListenerSettings = { maxQueuedEvents: 256, maxQueuedBytes: 4 * 1024 * 1024, ...o.replica, rdb };
    if (typeof spec === 'object' && 'rdb' in spec) return new RdbFileSource(spec.rdb, rdb);
    if (typeof spec === 'object' && 'aof' in spec) return new AofSource(spec.aof, { ...o.aof, rdb }, this.#aofPosition);
    const { cluster, ...endpoint } = typeof spec === 'string' ? { url: spec, cluster: undefined } : spec;
    const resolved = resolveEndpoint(endpoint, 'source');
    if (resolved.db !== undefined && resolved.db !== 0)
      throw argument('the source URL selects a database; a sync reads every database: use filter.dbs');
    const saved = this.#state?.shards ?? [];
    const master = new MasterSource(resolved, saved[0], settings, this.#connectTimeout, this.#stop.signal);
    const server = await master.open();
    if (cluster === false && server.cluster)
      throw argument(`the source ${resolved.label} is a Cluster node; leave cluster unset to read every master`);
    if (!server.cluster) {
      if (saved.length > 1)
        throw new ReplicationError(
          'ERR_SYNC_STATE',
          'the saved state is of a Cluster source, but the source is a standalone server',
        );
      if (saved[0]) this.#shard(master.shard).resumed = true;
      return master;
    }
    await master.close();
    const checkpoint: ClusterCheckpoint | undefined =
      saved.length > 0
        ? {
            shards: saved.map((s) => ({
              master: s.master,
              ...(s.nodeId ? { nodeId: s.nodeId } : {}),
              ranges: s.ranges ?? [],
              replId: s.replId,
              replOffset: s.replOffset,
              db: s.db,
            })),
          }
        : undefined;
    return new ClusterSource(resolved, checkpoint, settings, this.#connectTimeout, this.#stop.signal, this.#logger);
  }

  /** Several kept databases cannot land in a Cluster's only database 0: say so before writing. */
  async #checkDatabases(): Promise<void> {
    if (!this.#target?.cluster) return;
    const keyspace = await this.#source?.keyspace().catch(() => undefined);
    if (!keyspace) return;
    for (const [db, keys] of keyspace) {
      if (keys === 0 || !this.#filter.db(db)) continue;
      if (this.#dbMap(db) >= this.#target.databases)
        throw new ReplicationError(
          'ERR_SYNC_UNSUPPORTED',
          `the source has ${keys} keys in database ${db}, but the Cluster target has ${this.#target.databases === 1 ? 'only database 0' : `databases 0 to ${this.#target.databases - 1}`}: map it (dbMap { ${db}: 0 }) or leave it out (filter.dbs)`,
        );
    }
  }

  #context(target: SyncTarget): WriteContext {
    const filter = this.#filter;
    return {
      target,
      filter,
      mergesDbs: this.#mergesDbs,
      mapDb: (db) => {
        const to = this.#dbMap(db);
        if (to >= target.databases)
          throw new ReplicationError(
            'ERR_SYNC_UNSUPPORTED',
            `database ${db} maps to database ${to}, but the Cluster target has ${target.databases === 1 ? 'only database 0' : `databases 0 to ${target.databases - 1}`}: map it (dbMap { ${db}: 0 }) or leave it out (filter.dbs)`,
          );
        return to;
      },
      send: (args, db, key, onReply, node) => this.#send(args, db, key, onReply, node),
      warn: (code, message) => this.#warn(code, message),
      targetAtLeast: (major, minor) => {
        const s = target.server;
        // Valkey 8 and 9 implement what Redis 7.2 does; 9 adds hash field expiry.
        if (s.flavor === 'valkey')
          return s.major >= 9 ? major < 7 || (major === 7 && minor <= 4) : major < 7 || (major === 7 && minor <= 2);
        return s.major > major || (s.major === major && s.minor >= minor);
      },
    };
  }

  // ------------------------------------------------------------------ the event loop

  #shard(ref: SourceShard): Shard {
    let shard = this.#shards.get(ref.id);
    if (shard) {
      // After a failover the shard keeps its name but has a new master.
      if (shard.ref !== ref) (shard as { ref: SourceShard }).ref = ref;
    } else {
      const saved = this.#state?.shards.find((s) => s.master === ref.master);
      shard = {
        ref,
        replId: undefined,
        phase: 'waiting',
        applied: saved,
        received: 0,
        tx: undefined,
        txBytes: 0,
        txStreaming: false,
        resumed: saved !== undefined,
        masterOffset: undefined,
      };
      this.#shards.set(ref.id, shard);
    }
    return shard;
  }

  #enqueue(shard: SourceShard, event: SourceEvent): void {
    if (this.#stopping || this.#fatal) return;
    const target = this.#target;
    if (
      this.#head === this.#queue.length &&
      !this.#pumping &&
      this.#step === undefined &&
      target &&
      !target.congested
    ) {
      // Nothing waits: handle the event at once (no queue entry, one seal per burst of events).
      this.#pumping = true;
      try {
        const step = this.#handle(shard, event);
        if (step !== undefined) this.#await(step);
        else if (++this.#unsealed >= 256) this.#seal();
        else if (!this.#sealScheduled) {
          this.#sealScheduled = true;
          queueMicrotask(this.#sealSoon);
        }
      } catch (err) {
        this.#failWith(wrap(err, 'ERR_SYNC_TARGET', 'the sync failed'));
      } finally {
        this.#pumping = false;
      }
      if (this.#sourceEnded && this.#step === undefined) this.#maybeDone();
      return;
    }
    const bytes = eventBytes(event);
    this.#queue.push({ shard, event, bytes });
    this.#queuedBytes += bytes;
    if (
      !this.#sourcePaused &&
      (this.#queue.length - this.#head >= HIGH_WATER || this.#queuedBytes >= HIGH_WATER_BYTES)
    ) {
      this.#sourcePaused = true;
      this.#source?.pause();
    }
    if (!this.#pumping) this.#pump();
  }

  /** A step that waits (a reply, a fetch, a flush): nothing else is handled until it settles. */
  #await(step: Promise<void>): void {
    this.#seal();
    this.#step = step;
    if (!this.#sourcePaused) {
      this.#sourcePaused = true;
      this.#source?.pause();
    }
    step.then(
      () => {
        this.#step = undefined;
        this.#pump();
      },
      (err: unknown) => {
        this.#step = undefined;
        this.#failWith(wrap(err, 'ERR_SYNC_TARGET', 'a write to the target failed'));
      },
    );
  }

  readonly #sealSoon = (): void => {
    this.#sealScheduled = false;
    this.#seal();
  };

  #pump(): void {
    if (this.#pumping || this.#step || this.#fatal) return;
    const target = this.#target;
    if (!target) return;
    this.#pumping = true;
    try {
      let processed = 0;
      // Resuming the source delivers what its listener queued at once, into this queue (the
      // pump is running): go round again for those, or they would wait for an event that the
      // paused source never sends.
      for (;;) {
        const queue = this.#queue;
        while (this.#head < queue.length && !target.congested && !this.#fatal && !this.#stopping) {
          const item = queue[this.#head] as { shard: SourceShard; event: SourceEvent; bytes: number };
          queue[this.#head++] = undefined as never;
          this.#queuedBytes -= item.bytes;
          const step = this.#handle(item.shard, item.event);
          if (++processed % 256 === 0) this.#seal();
          if (step !== undefined) {
            this.#await(step);
            break;
          }
        }
        this.#seal();
        if (this.#head === queue.length) {
          this.#queue = [];
          this.#head = 0;
          this.#queuedBytes = 0;
        } else if (this.#head > 65536) {
          this.#queue = queue.slice(this.#head);
          this.#head = 0;
        }
        if (
          this.#sourcePaused &&
          !this.#step &&
          !target.congested &&
          this.#queue.length - this.#head < HIGH_WATER / 2 &&
          this.#queuedBytes < HIGH_WATER_BYTES / 2
        ) {
          this.#sourcePaused = false;
          this.#source?.resume();
        }
        if (this.#head === this.#queue.length || this.#step || target.congested || this.#fatal || this.#stopping) break;
      }
      if (this.#sourceEnded && this.#head === this.#queue.length && !this.#step) this.#maybeDone();
    } catch (err) {
      this.#failWith(wrap(err, 'ERR_SYNC_TARGET', 'the sync failed'));
    } finally {
      this.#pumping = false;
    }
  }

  #handle(ref: SourceShard, event: SourceEvent): Promise<void> | undefined {
    const shard = this.#shard(ref);
    switch (event.kind) {
      case 'command':
        return this.#command(shard, event);
      case 'entry':
        return (this.#snapshot as SnapshotWriter).entry(event, undefined, ref.id);
      case 'full-sync-start': {
        this.#fullSyncs++;
        if (shard.resumed || shard.phase === 'live')
          this.#warn(
            'full-resync',
            `${ref.master} sent a new full snapshot (the saved position was no longer in its backlog): keys deleted on it since are not removed from the target`,
          );
        shard.phase = 'snapshot';
        shard.applied = undefined;
        shard.tx = undefined;
        shard.replId = event.replId === '?' ? undefined : event.replId;
        this.#snapshotBytes = 0;
        this.#snapshotTotal = event.size;
        (this.#snapshot as SnapshotWriter).reset(ref.id);
        this.#setPhase('snapshot');
        if (!this.#started) {
          this.#started = true;
          this.#stateDirty = true;
        } else (this.#snapshot as SnapshotWriter).policy = 'replace';
        return undefined;
      }
      case 'sync-progress':
        this.#snapshotBytes = event.bytes;
        if (event.total !== undefined) this.#snapshotTotal = event.total;
        return undefined;
      case 'snapshot-done': {
        shard.replId = event.replId === '?' ? undefined : event.replId;
        shard.phase = 'live';
        shard.received = event.offset;
        this.#ackPosition(shard, event.offset, event.db);
        if (this.#source?.kind !== 'rdb') this.#setPhase('live');
        return undefined;
      }
      case 'continued':
        this.#partialSyncs++;
        shard.replId = event.replId;
        shard.phase = 'live';
        shard.received = event.offset;
        this.#ackPosition(shard, event.offset, shard.applied?.db ?? 0);
        this.#setPhase('live');
        return undefined;
      case 'function':
        if (this.#options.functions ?? true) this.#everyMaster(['FUNCTION', 'LOAD', 'REPLACE', event.code], 'function');
        return undefined;
      case 'aux':
        if (event.name === 'lua' && (this.#options.functions ?? true))
          this.#everyMaster(['SCRIPT', 'LOAD', event.value], 'script');
        return undefined;
      case 'module-aux':
        if (event.part === 0)
          this.#warn('module-aux', `module data of ${event.module.name} outside the keyspace is not copied`);
        return undefined;
      case 'reconnecting':
        this.#log(
          'warn',
          { master: ref.master, attempt: event.attempt },
          `source ${ref.master} lost: ${event.error?.message ?? 'closed'}; reconnecting in ${event.delayMs} ms`,
        );
        return undefined;
      case 'aof-file':
        this.#aofFile = event.name;
        if (this.#phase === 'connecting') this.#setPhase(event.type === 'incr' ? 'live' : 'snapshot');
        else if (event.type === 'incr') this.#setPhase('live');
        if (!this.#started) {
          this.#started = true;
          this.#stateDirty = true;
        }
        return undefined;
      case 'aof-end':
        if (event.truncatedBytes > 0)
          this.#warn(
            'aof-truncated',
            `the last AOF file ends with ${event.truncatedBytes} bytes of an incomplete command, not applied`,
          );
        if (event.discardedCommands > 0)
          this.#warn(
            'aof-open-transaction',
            `a MULTI at the end of the AOF was never closed: its ${event.discardedCommands} commands were not applied`,
          );
        return undefined;
      case 'end':
        if (this.#source?.kind === 'aof') this.#setPhase('live');
        return undefined;
      default:
        return undefined;
    }
  }

  // ------------------------------------------------------------------ live commands

  #command(shard: Shard, cmd: CommandEvent): Promise<void> | undefined {
    shard.received = cmd.offset;
    const name = cmd.name;
    if (name === 'MULTI') {
      if (!shard.tx) {
        shard.tx = [];
        shard.txBytes = 0;
        shard.txStreaming = false;
      }
      return undefined;
    }
    if (shard.tx && !shard.txStreaming) {
      if (name !== 'EXEC') {
        shard.tx.push(cmd);
        shard.txBytes += cmd.size;
        if (shard.tx.length > TX_LIMIT_COMMANDS || shard.txBytes > TX_LIMIT_BYTES) {
          // Too large to hold: what is held goes out one by one, and so does the rest.
          shard.txStreaming = true;
          const held = shard.tx;
          shard.tx = [];
          this.#warn(
            'transaction-split',
            `a MULTI of more than ${TX_LIMIT_COMMANDS} commands or ${TX_LIMIT_BYTES} bytes is applied command by command`,
          );
          return this.#runSequence(held.map((c) => () => this.#single(shard, c, false)));
        }
        return undefined;
      }
      const commands = shard.tx;
      shard.tx = undefined;
      return this.#transaction(shard, commands, cmd);
    }
    if (name === 'EXEC') {
      shard.tx = undefined;
      shard.txStreaming = false;
      this.#position(shard, cmd);
      return undefined;
    }
    if (shard.txStreaming && shard.tx) return this.#single(shard, cmd, false);
    if (this.#source?.kind === 'cluster') {
      const moved = this.#migration(shard, cmd);
      if (moved !== cmd) {
        this.#position(shard, cmd);
        if (moved === undefined) {
          this.#filtered++;
          return undefined;
        }
        return this.#single(shard, moved, false);
      }
    }
    return this.#single(shard, cmd, true);
  }

  /**
   * A slot migration between two masters of a Cluster source shows as RESTORE-ASKING in the
   * receiving master's stream and DEL in the giving one's, in two streams with no order between
   * them. The DEL of a key another master has just restored is the migration's, not a delete:
   * it is dropped (in whichever order the two arrive, the key ends where it belongs).
   */
  #migration(shard: Shard, cmd: CommandEvent): CommandEvent | undefined {
    const name = cmd.name;
    if (name === 'RESTORE-ASKING') {
      const key = cmd.args[0];
      if (key) {
        const now = Date.now();
        this.#migrated.set(fetchId(undefined, cmd.db, key), { shard: shard.ref.id, at: now });
        if (this.#migrated.size > 100_000)
          for (const [id, m] of this.#migrated) if (now - m.at > 60_000) this.#migrated.delete(id);
      }
      return cmd;
    }
    if ((name !== 'DEL' && name !== 'UNLINK') || this.#migrated.size === 0) return cmd;
    const kept: Buffer[] = [];
    for (const key of cmd.args) {
      const id = fetchId(undefined, cmd.db, key);
      const m = this.#migrated.get(id);
      if (m && m.shard !== shard.ref.id && Date.now() - m.at < 60_000) {
        this.#migrated.delete(id);
        continue;
      }
      kept.push(key);
    }
    if (kept.length === cmd.args.length) return cmd;
    if (kept.length === 0) return undefined;
    return { ...cmd, args: kept, kind: 'command', view: cmd.view } as CommandEvent;
  }

  /** The actions of one command, after the fetched-keys check; undefined: look the command up first. */
  #actions(shard: Shard, cmd: CommandEvent): LiveAction[] | undefined | Promise<void> {
    const ctx = this.#ctx as WriteContext;
    if (this.#fetched.size > 0) {
      const skip = this.#afterFetch(shard, cmd);
      if (skip) return skip;
    }
    const actions = liveActions(
      ctx,
      {
        publish: this.#options.publish ?? false,
        functions: this.#options.functions ?? true,
        canRefetch: this.#source?.canFetch ?? false,
        keysOf: (name) => this.#keySpecs.get(name),
      },
      cmd.name,
      cmd.args,
      cmd.db,
    );
    if (actions === undefined) return this.#lookUp(cmd.name);
    return actions;
  }

  /** Commands on keys fetched again, up to the offset of the fetch, are already in the value. */
  #afterFetch(shard: Shard, cmd: CommandEvent): LiveAction[] | undefined {
    const keys = commandKeys(cmd.name, cmd.args);
    if (!keys || keys.shape === 'keyless') return undefined;
    let covered = false;
    for (let i = 0; i < keys.positions.length; i++) {
      const id = fetchId(shard, keys.dbs?.[i] ?? cmd.db, cmd.args[keys.positions[i] as number] as Buffer);
      const upTo = this.#fetched.get(id);
      if (upTo === undefined) continue;
      if (cmd.offset <= upTo) covered = true;
      else this.#fetched.delete(id);
    }
    if (!covered) return undefined;
    // Its other written, kept keys are fetched too: their value may depend on this command.
    const ctx = this.#ctx as WriteContext;
    const out: LiveAction[] = [];
    for (let i = 0; i < keys.positions.length; i++) {
      const db = keys.dbs?.[i] ?? cmd.db;
      const key = cmd.args[keys.positions[i] as number] as Buffer;
      if (!keys.written[i] || !this.#filter.db(db) || !this.#filter.key(key)) continue;
      const upTo = this.#fetched.get(fetchId(shard, db, key));
      if (upTo !== undefined && cmd.offset <= upTo) continue;
      out.push({ kind: 'refetch', sourceDb: db, db: ctx.mapDb(db), key });
    }
    return out;
  }

  async #lookUp(name: string): Promise<void> {
    const target = this.#target as SyncTarget;
    let spec: { first: number; last: number; step: number } | null = null;
    try {
      const reply = (await target.nodes[0]?.send(['COMMAND', 'INFO', name])) as unknown[];
      const info = Array.isArray(reply) ? reply[0] : undefined;
      if (Array.isArray(info) && info.length >= 6)
        spec = { first: Number(info[3]), last: Number(info[4]), step: Number(info[5]) };
    } catch {
      // The target cannot say: the command goes as keyless, and the target answers for it.
    }
    if (spec !== null && spec.first <= 0) spec = null;
    this.#keySpecs.set(name, spec);
    if (spec === null)
      this.#warn(
        'unknown-command',
        `${name} is unknown to this sync and to the target's COMMAND INFO: it is forwarded without filtering or routing`,
      );
  }

  /** One command outside a transaction (or of one applied command by command). */
  #single(shard: Shard, cmd: CommandEvent, position: boolean): Promise<void> | undefined {
    const actions = this.#actions(shard, cmd);
    if (actions === undefined) return undefined;
    if (actions instanceof Promise) return actions.then(() => this.#single(shard, cmd, position));
    const step = this.#apply(shard, actions, cmd.name);
    if (position) {
      if (step !== undefined) return step.then(() => this.#position(shard, cmd));
      this.#position(shard, cmd);
    }
    return step;
  }

  /** Runs the actions; returns a promise when one of them must wait (a fetch, a flush). */
  #apply(shard: Shard, actions: readonly LiveAction[], name: string): Promise<void> | undefined {
    if (actions.length === 0) {
      if (name !== 'PING' && name !== 'REPLCONF' && name !== 'SELECT') this.#filtered++;
      return undefined;
    }
    for (let i = 0; i < actions.length; i++) {
      const action = actions[i] as LiveAction;
      if (action.kind === 'write') {
        this.#writeAction(action);
        continue;
      }
      if (action.kind === 'warn') {
        this.#warn(action.code, action.message);
        continue;
      }
      const rest = actions.slice(i + 1);
      const step =
        action.kind === 'refetch' ? this.#refetch(shard, action) : this.#flush(shard, action.sourceDb, action.async);
      return step.then(() => this.#apply(shard, rest, name));
    }
    return undefined;
  }

  #writeAction(action: Extract<LiveAction, { kind: 'write' }>): void {
    if (action.everyMaster) {
      this.#everyMaster(action.args, 'command');
      return;
    }
    if (action.args[0] === 'RESTORE' && action.key !== undefined) {
      this.#restore(action);
      return;
    }
    this.#send(action.args, action.db, action.key);
  }

  /**
   * A replicated RESTORE (a user's, or RESTORE-ASKING of a slot migration) carries a payload in
   * the source's RDB version, which an older target refuses: it is decoded and written like a
   * snapshot key. It succeeded on the source, so it replaces whatever the target has.
   */
  #restore(action: Extract<LiveAction, { kind: 'write' }>): void {
    const args = action.args as Buffer[];
    const key = action.key as Buffer;
    let ttl = Number(String(args[2]));
    let absolute = false;
    let idle: number | undefined;
    let freq: number | undefined;
    for (let i = 4; i < args.length; i++) {
      const option = String(args[i]).toUpperCase();
      if (option === 'ABSTTL') absolute = true;
      else if (option === 'IDLETIME') idle = Number(String(args[++i]));
      else if (option === 'FREQ') freq = Number(String(args[++i]));
    }
    if (!Number.isSafeInteger(ttl) || ttl < 0) ttl = 0;
    const expireAt = ttl === 0 ? undefined : absolute ? ttl : Date.now() + ttl;
    let parts: readonly RdbEntryEvent[];
    try {
      parts = parseDumpPayload(args[3] as Buffer, this.#options.rdb ?? {}).parts;
    } catch (err) {
      // Not readable here: let the target judge the original.
      this.#log(
        'debug',
        { key: printable(key) },
        `RESTORE payload not decoded (${(err as Error).message}); forwarded as is`,
      );
      this.#send(action.args, action.db, key);
      return;
    }
    const writer = this.#refetchWriter as SnapshotWriter;
    for (const part of parts) {
      const entry = {
        ...part,
        key,
        db: action.db,
        ...(expireAt !== undefined ? { expireAt } : {}),
        ...(idle !== undefined ? { idle } : {}),
        ...(freq !== undefined ? { freq } : {}),
      } as RdbEntryEvent;
      void writer.entry(entry, action.db); // replace policy: never waits
    }
  }

  /** A replicated MULTI ... EXEC: atomic on the target when it all lands on one node. */
  #transaction(shard: Shard, commands: CommandEvent[], exec: CommandEvent): Promise<void> | undefined {
    const planned: LiveAction[][] = [];
    for (let i = 0; i < commands.length; i++) {
      const cmd = commands[i] as CommandEvent;
      const actions = this.#actions(shard, cmd);
      if (actions === undefined) {
        planned.push([]);
        continue;
      }
      if (actions instanceof Promise) {
        // A command to look up first: then the whole transaction again.
        return actions.then(() => this.#transaction(shard, commands, exec));
      }
      planned.push(actions);
    }
    const flat = planned.flat();
    const writes = flat.filter((a): a is Extract<LiveAction, { kind: 'write' }> => a.kind === 'write');
    const atomic =
      writes.length === flat.length &&
      writes.length > 1 &&
      writes.every((w) => !w.everyMaster) &&
      (!this.#target?.cluster || sameSlot(writes));
    if (atomic && writes.every((w) => w.db === (writes[0] as { db: number }).db && w.args[0] !== 'RESTORE')) {
      const first = writes[0] as Extract<LiveAction, { kind: 'write' }>;
      this.#sendTransaction(
        writes.map((w) => w.args),
        first.db,
        first.key,
      );
      this.#position(shard, exec);
      return undefined;
    }
    if (writes.length > 1 && flat.length > 0 && this.#target?.cluster && !sameSlot(writes))
      this.#warn(
        'transaction-split',
        'a MULTI touching several slots of the Cluster target is applied command by command',
      );
    const step = this.#runSequence(
      planned.map((actions, i) => () => this.#apply(shard, actions, (commands[i] as CommandEvent).name)),
    );
    if (step !== undefined) return step.then(() => this.#position(shard, exec));
    this.#position(shard, exec);
    return undefined;
  }

  /** Runs steps in order, waiting for those that return a promise. */
  #runSequence(steps: (() => Promise<void> | undefined)[]): Promise<void> | undefined {
    for (let i = 0; i < steps.length; i++) {
      const step = (steps[i] as () => Promise<void> | undefined)();
      if (step !== undefined) return step.then(() => this.#runSequence(steps.slice(i + 1)));
    }
    return undefined;
  }

  async #refetch(shard: Shard, action: Extract<LiveAction, { kind: 'refetch' }>): Promise<void> {
    const source = this.#source as SyncSource;
    let fetched: FetchedKey;
    try {
      fetched = await source.fetch(shard.ref, action.sourceDb, action.key);
    } catch (err) {
      this.#warn(
        'refetch-failed',
        `cannot read ${printable(action.key)} from the source again: ${(err as Error).message}; the target's copy may differ`,
      );
      return;
    }
    this.#refetched++;
    this.#fetched.set(fetchId(shard, action.sourceDb, action.key), fetched.offset);
    if (this.#fetched.size > 10_000)
      for (const [id, upTo] of this.#fetched) if (upTo < shard.received) this.#fetched.delete(id);
    if (fetched.payload === null) {
      this.#send(['DEL', action.key], action.db, action.key);
      return;
    }
    let parts: readonly RdbEntryEvent[];
    try {
      parts = parseDumpPayload(fetched.payload, this.#options.rdb ?? {}).parts;
    } catch (err) {
      this.#warn('refetch-failed', `cannot read the DUMP of ${printable(action.key)}: ${(err as Error).message}`);
      return;
    }
    const type = parts[0]?.type;
    if (type === undefined || !this.#filter.type(type)) {
      this.#send(['DEL', action.key], action.db, action.key);
      return;
    }
    const writer = this.#refetchWriter as SnapshotWriter;
    for (const part of parts) {
      const entry = {
        ...part,
        key: action.key,
        db: action.sourceDb,
        ...(fetched.expireAt !== undefined ? { expireAt: fetched.expireAt } : {}),
      } as RdbEntryEvent;
      const wait = writer.entry(entry);
      if (wait !== undefined) await wait;
    }
  }

  /** FLUSHALL / FLUSHDB: the whole target when nothing is filtered, else only the kept keys. */
  async #flush(shard: Shard, sourceDb: number | undefined, async: boolean): Promise<void> {
    const target = this.#target as SyncTarget;
    const filter = this.#filter;
    const clusterSource = this.#source?.kind === 'cluster';
    const identity = this.#options.dbMap === undefined;
    if (filter.all && identity && !clusterSource) {
      const args: TargetArg[] = sourceDb === undefined ? ['FLUSHALL'] : ['FLUSHDB'];
      if (async) args.push('ASYNC');
      await Promise.all(target.nodes.map((node) => this.#request(args, sourceDb ?? 0, node)));
      return;
    }
    // Only what this sync owns: the kept keys, and with a Cluster source the slots of that shard.
    await target.idle();
    let dbs: number[];
    if (sourceDb !== undefined) dbs = [this.#dbMap(sourceDb)];
    else {
      const found = new Set<number>();
      for (const node of target.nodes) {
        const info = String(await node.send(['INFO', 'keyspace']));
        for (const m of info.matchAll(/^db(\d+):/gm)) found.add(Number(m[1]));
      }
      dbs = [...found];
    }
    const ranges = clusterSource ? shard.ref.ranges : undefined;
    for (const node of target.nodes) {
      for (const db of dbs) {
        let cursor = '0';
        do {
          const args: TargetArg[] = ['SCAN', cursor, 'COUNT', 1000];
          if (filter.scanPattern !== undefined) args.push('MATCH', filter.scanPattern);
          const reply = (await this.#request(args, db, node)) as [Buffer, Buffer[]];
          cursor = reply[0].toString();
          const doomed = reply[1].filter((k) => filter.key(k) && (ranges === undefined || inRanges(slotOf(k), ranges)));
          let keep = doomed;
          if (filter.byType && doomed.length > 0) {
            const types = await Promise.all(doomed.map((k) => this.#request(['TYPE', k], db, node)));
            keep = doomed.filter((_, i) => filter.type(String(types[i]) as never));
          }
          for (const k of keep) await this.#request(['UNLINK', k], db, node);
        } while (cursor !== '0');
      }
    }
  }

  /** A command whose reply the sync needs, through the pipeline (so the database is right). */
  #request(args: TargetArg[], db: number, node: TargetNode): Promise<unknown> {
    return new Promise((resolve, reject) => {
      (this.#target as SyncTarget).write(
        args,
        db,
        -1,
        commandBytes(args),
        (err, reply) => (err ? reject(err) : resolve(reply)),
        node,
      );
    });
  }

  #everyMaster(args: TargetArg[], what: string): void {
    const target = this.#target as SyncTarget;
    for (const node of target.nodes)
      this.#send(
        args,
        0,
        undefined,
        (err) => {
          if (err)
            this.#warn(
              `${what}-failed`,
              `${String(args[0])} ${String(args[1] ?? '')} failed on ${node.label}: ${err.message}`,
            );
        },
        node,
      );
  }

  // ------------------------------------------------------------------ writes and acknowledgements

  /** The open acknowledgement step, one more write in it, and what to call when that write is done. */
  #track(): () => void {
    let ack = this.#open;
    if (ack === undefined) {
      ack = {
        pending: 0,
        shard: undefined,
        position: undefined,
        aof: undefined,
        received: Date.now(),
        commands: 0,
        sealed: false,
      };
      this.#open = ack;
      this.#acks.push(ack);
    }
    ack.pending++;
    const owner = ack;
    return () => {
      owner.pending--;
      if (owner.pending === 0 && owner.sealed) this.#advance();
    };
  }

  #send(args: TargetArg[], db: number, key: Buffer | undefined, onReply?: ReplyHandler, node?: TargetNode): void {
    const target = this.#target as SyncTarget;
    const done = this.#track();
    const phase = this.#phase;
    target.write(
      args,
      db,
      key !== undefined && target.cluster ? slotOf(key) : -1,
      commandBytes(args),
      (err, reply) => {
        try {
          if (onReply) onReply(err, reply);
          else if (err) {
            if (phase === 'live' || this.#phase === 'live') this.#liveError(err, String(args[0]));
            else throw err;
          }
        } catch (failure) {
          this.#failWith(
            wrap(
              failure,
              'ERR_SYNC_TARGET',
              `${String(args[0])}${key ? ` ${printable(key)}` : ''} failed on the target`,
            ),
          );
        }
        done();
      },
      node,
    );
  }

  /** A transaction through the pipeline, tracked like one write. */
  #sendTransaction(commands: TargetArg[][], db: number, key: Buffer | undefined): void {
    const target = this.#target as SyncTarget;
    const done = this.#track();
    let bytes = 32;
    for (const c of commands) bytes += commandBytes(c);
    target.writeTransaction(
      commands,
      db,
      key !== undefined && target.cluster ? slotOf(key) : -1,
      bytes,
      (err, reply) => {
        try {
          if (err) this.#liveError(err, 'a MULTI ... EXEC');
          else if (Array.isArray(reply))
            for (const r of reply) if (r instanceof Error) this.#liveError(r, 'a command of a MULTI');
        } catch (failure) {
          this.#failWith(wrap(failure, 'ERR_SYNC_TARGET', 'a MULTI ... EXEC failed on the target'));
        }
        done();
      },
    );
  }

  #liveError(err: Error, what: string): void {
    if (this.#options.errors === 'fail') throw err;
    this.#warn('command-failed', `${what} failed on the target: ${err.message}`);
  }

  /** The writes so far form one step; positions recorded after this belong to the next. */
  #seal(): void {
    this.#unsealed = 0;
    const ack = this.#open;
    if (!ack) return;
    this.#open = undefined;
    ack.sealed = true;
    if (ack.pending === 0) this.#advance();
  }

  /** A command is done on the source side: the shard's position moves there once its writes are in. */
  #position(shard: Shard, cmd: CommandEvent): void {
    if (cmd.name !== 'PING' && cmd.name !== 'REPLCONF' && cmd.name !== 'SELECT') this.#commands++;
    if (this.#source?.kind === 'aof') {
      const file = this.#aofFile;
      if (file !== undefined) this.#record(undefined, undefined, { file, offset: cmd.offset });
      return;
    }
    if (shard.replId === undefined) return;
    this.#record(
      shard,
      { ...this.#shardIdentity(shard), replId: shard.replId, replOffset: cmd.offset, db: cmd.db },
      undefined,
    );
  }

  #ackPosition(shard: Shard, offset: number, db: number): void {
    if (shard.replId === undefined) return;
    this.#record(shard, { ...this.#shardIdentity(shard), replId: shard.replId, replOffset: offset, db }, undefined);
  }

  #shardIdentity(shard: Shard): Pick<SyncShardState, 'master' | 'nodeId' | 'ranges'> {
    const ref = shard.ref;
    return this.#source?.kind === 'cluster'
      ? {
          master: ref.master,
          ...(ref.nodeId ? { nodeId: ref.nodeId } : {}),
          ranges: ref.ranges.map((r) => [r[0], r[1]] as const),
        }
      : { master: ref.master };
  }

  #record(
    shard: Shard | undefined,
    position: SyncShardState | undefined,
    aof: { file: string; offset: number } | undefined,
  ): void {
    let ack = this.#open;
    if (ack === undefined || (ack.shard !== undefined && shard !== undefined && ack.shard !== shard)) {
      this.#seal();
      ack = {
        pending: 0,
        shard,
        position: undefined,
        aof: undefined,
        received: Date.now(),
        commands: 0,
        sealed: false,
      };
      this.#open = ack;
      this.#acks.push(ack);
    }
    ack.shard = shard ?? ack.shard;
    if (position) ack.position = position;
    if (aof) ack.aof = aof;
    ack.commands++;
  }

  #advance(): void {
    const acks = this.#acks;
    let changed = false;
    while (this.#ackHead < acks.length) {
      const ack = acks[this.#ackHead] as Ack;
      if (!ack.sealed || ack.pending > 0) break;
      acks[this.#ackHead++] = undefined as never;
      if (ack.shard && ack.position) {
        ack.shard.applied = ack.position;
        changed = true;
      }
      if (ack.aof) {
        this.#aofPosition = ack.aof;
        changed = true;
      }
    }
    if (this.#ackHead === acks.length) {
      this.#acks = [];
      this.#ackHead = 0;
    } else if (this.#ackHead > 4096 && this.#ackHead * 2 > acks.length) {
      this.#acks = acks.slice(this.#ackHead);
      this.#ackHead = 0;
    }
    if (changed) this.#stateDirty = true;
    if (this.#sourceEnded) this.#maybeDone();
  }

  #oldestPending(): number | undefined {
    for (let i = this.#ackHead; i < this.#acks.length; i++) {
      const ack = this.#acks[i];
      if (ack && ack.pending > 0) return ack.received;
    }
    return undefined;
  }

  // ------------------------------------------------------------------ state

  #snapshotState(): SyncState {
    const shards: SyncShardState[] = [];
    for (const shard of this.#shards.values())
      if (shard.applied) shards.push({ ...shard.applied, ...this.#shardIdentity(shard) });
    // Shards not heard from in this run keep their saved position, unless another covers their slots.
    for (const saved of this.#state?.shards ?? []) {
      const covered = shards.some(
        (s) => s.master === saved.master || (s.ranges && saved.ranges && rangesOverlap(s.ranges, saved.ranges)),
      );
      if (!covered) shards.push(saved);
    }
    return {
      format: 'redis-events-sync/1',
      source: this.#sourceLabel,
      target: this.#targetEndpoint.label,
      filter: this.#filter.fingerprint,
      started: this.#started,
      shards,
      ...(this.#aofPosition ? { aof: this.#aofPosition } : {}),
      savedAt: new Date().toISOString(),
    };
  }

  async #save(force = false): Promise<void> {
    if (!this.#store || (!this.#stateDirty && !force)) return;
    if (this.#saving !== undefined) {
      await this.#saving;
      if (!this.#stateDirty && !force) return;
    }
    this.#stateDirty = false;
    const state = this.#snapshotState();
    this.#state = state;
    this.#saving = this.#store.save(state).then(
      () => {
        this.#saving = undefined;
      },
      (err: unknown) => {
        this.#saving = undefined;
        this.#stateDirty = true;
        this.#warn('state-not-saved', (err as Error).message);
      },
    );
    await this.#saving;
  }

  // ------------------------------------------------------------------ lag, topology, end

  async #probeLag(): Promise<void> {
    const source = this.#source;
    if (!source || this.#phase !== 'live') return;
    for (const shard of this.#shards.values()) {
      try {
        shard.masterOffset = await source.masterOffset(shard.ref);
      } catch {
        shard.masterOffset = undefined;
      }
    }
  }

  #topology(event: ClusterTopologyEvent): void {
    // The shard keeps its name; its offset is asked of the new master from now on.
    const known = event.kind === 'failover' ? this.#shards.get(event.shard.id) : undefined;
    if (known) (known as { ref: SourceShard }).ref = event.shard;
    this.#log(
      'warn',
      { kind: event.kind, master: event.shard.master },
      `source cluster: ${event.kind} ${event.shard.master}`,
    );
    this.emit('topology', event);
  }

  #sourceEnd(error?: Error): void {
    if (this.#sourceEnded) return;
    this.#sourceEnded = true;
    if (error && !this.#stopping) {
      this.#sourceError = error;
      this.#failWith(wrap(error, 'ERR_REPLICATION_PROTOCOL', 'the source failed'));
      return;
    }
    this.#pump();
  }

  #maybeDone(): void {
    if (this.#stopping || this.#fatal || !this.#sourceEnded || this.#sourceError) return;
    if (this.#head < this.#queue.length || this.#step || (this.#target?.inflight ?? 0) > 0) return;
    // A file source is fully applied.
    this.#stopping = true;
    this.#setPhase('done');
    this.#closing ??= this.#shutdown(10_000, undefined);
    this.#closing.catch(() => {});
  }

  #setPhase(phase: SyncPhase): void {
    if (this.#phase === phase) return;
    this.#phase = phase;
    this.#log('debug', { phase }, `sync phase: ${phase}`);
    this.emit('phase', phase);
  }

  #warn(code: string, message: string): void {
    this.#warnings++;
    this.#log('warn', { code }, message);
    if (this.listenerCount('warning') > 0) this.emit('warning', { code, message });
  }

  #log(level: 'debug' | 'warn' | 'error', context: object, message: string): void {
    try {
      this.#logger?.[level](context, message);
    } catch {
      // A logger that throws must not stop the sync.
    }
  }

  #abortError(): ReplicationError {
    return abortError(this.#options.signal?.reason, 'the sync');
  }

  #failWith(error: ReplicationError): void {
    if (this.#fatal || this.#stopping) return;
    this.#fatal = error;
    this.#log('error', { code: error.code }, error.message);
    this.#setPhase('failed');
    void this.#teardown(2000).finally(() => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
      this.#reject?.(error);
    });
  }

  async #shutdown(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#running) {
      this.#stop.abort();
      this.#setPhase('closed');
      return;
    }
    const done = this.#phase === 'done';
    const abandoned = await this.#teardown(timeoutMs, signal);
    if (!done) this.#setPhase('closed');
    const result: SyncResult = { ...this.stats, state: this.#state };
    if (this.#fatal) return;
    if (this.#options.signal?.aborted && !done) {
      this.#reject?.(this.#abortError());
    } else this.#finish?.(result);
    if (abandoned > 0)
      throw new ReplicationError(
        'ERR_REPLICATION_ABANDONED',
        `closed with ${abandoned} writes to the target not acknowledged within ${timeoutMs} ms; the saved position is before them, so the next run applies them again`,
        { abandoned: { writes: abandoned } },
      );
  }

  /** Stops the source, waits for the writes in flight (bounded), saves, closes. Returns the writes abandoned. */
  async #teardown(timeoutMs: number, signal?: AbortSignal): Promise<number> {
    this.#stop.abort();
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    await this.#source?.close().catch(() => {});
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#head = 0;
    const target = this.#target;
    let abandoned = 0;
    if (target) {
      if (this.#step && !this.#fatal) await Promise.race([this.#step.catch(() => {}), delay(timeoutMs, signal)]);
      this.#seal();
      if (!this.#fatal) await Promise.race([target.idle(), delay(timeoutMs, signal)]);
      abandoned = target.inflight;
    }
    await this.#save(true).catch(() => {});
    await target?.close();
    return abandoned;
  }
}

function rangesOverlap(a: readonly (readonly [number, number])[], b: readonly (readonly [number, number])[]): boolean {
  return a.some(([a0, a1]) => b.some(([b0, b1]) => a0 <= b1 && b0 <= a1));
}

function fetchId(shard: Shard | undefined, db: number, key: Buffer): string {
  return `${shard?.ref.id ?? ''}\u0000${db}\u0000${key.toString('latin1')}`;
}

function sameSlot(writes: readonly Extract<LiveAction, { kind: 'write' }>[]): boolean {
  let slot = -1;
  for (const w of writes) {
    if (w.key === undefined) return false;
    const s = slotOf(w.key);
    if (slot === -1) slot = s;
    else if (s !== slot) return false;
  }
  return true;
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
