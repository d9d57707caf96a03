import { EventEmitter } from 'node:events';
import { delay, isLogger, type Logger, noopLogger, ReplyError } from '@redis-events/resp';
import type { RecordCodec } from './codec.ts';
import { jsonCodec } from './codec.ts';
import { type CommitHost, type CommitMode, Committer, capacityOf, randomServerVersion } from './commit.ts';
import {
  corruptChannel,
  type LeaseTrace,
  leaseChannel,
  type PutTrace,
  putChannel,
  syncChannel,
} from './diagnostics.ts';
import { createDataCipher, type DataCipher, type EncryptionKey } from './encryption.ts';
import {
  decodeEntry,
  type Entry,
  type EntryBody,
  encodeBody,
  fieldPrefix,
  MAX_NAME_BYTES,
  recordField,
} from './entry.ts';
import { argumentError, corruptError, DataBrokerError } from './errors.ts';
import { type CompiledFilter, compileFilter, type FilterExpression } from './filter.ts';
import { type KeySpace, keySpace } from './keys.ts';
import { isCluster, keyPrefixOf, Link, type RedisClient } from './link.ts';
import { type ChangeNotifier, LocalNotifier, PubSubNotifier, versionMessage } from './notifier.ts';
import { PageSizer } from './pages.ts';
import type { DataRecord, JsonValue, PutResult, RecordInput, TypeOptions, Versions } from './records.ts';
import { arrayReply, bytesArrayReply, bytesReply, integerReply, scoreReply, textReply, timeReply } from './replies.ts';
import { LEASE_SCRIPT, PROBE_SCRIPT, PUT_SCRIPT } from './script.ts';
import { type BaseStream, type ChangePage, LatestStream, type RecordStream, SyncStream } from './streams.ts';
import { abortError, type Command, type RetryOptions, TransactionRunner } from './transaction.ts';

/**
 * Options of {@link DataBroker}.
 *
 * @example
 * ```ts
 * const options: DataBrokerOptions<JsonValue> = {
 *   name: 'sessions',
 *   expiryMs: 60 * 60 * 1000, // keep one hour of changes
 *   encryptionKey: process.env.DATABROKER_KEY, // base64 of 32 random bytes
 * };
 * const broker = new DataBroker(redis, options);
 * ```
 */
export interface DataBrokerOptions<T> {
  /**
   * The backend's name: every key is `{name}:...`, so backends with different names share a Redis
   * without seeing each other, and all keys of one backend share a cluster slot. Default
   * `databroker`.
   */
  readonly name?: string | undefined;
  /** Turns data into bytes and back. Default {@link jsonCodec}. */
  readonly codec?: RecordCodec<T> | undefined;
  /** Encrypts record data at rest (AES-256-GCM) with this 32-byte key. Type, id and times stay readable. */
  readonly encryptionKey?: EncryptionKey | undefined;
  /** Older keys that data may still be encrypted with, during a key rotation. */
  readonly decryptionKeys?: readonly EncryptionKey[] | undefined;
  /**
   * How long changes stay in the change log, in ms. Older ones are removed every
   * `cleanupIntervalMs`; a `sync` that starts before what remains fails with
   * `ERR_DATABROKER_INVALID_RECORD_VERSION`. `0` keeps every change. Default 24 hours.
   */
  readonly expiryMs?: number | undefined;
  /** How often the change log is trimmed, in ms. Default 60 000. */
  readonly cleanupIntervalMs?: number | undefined;
  /** Conflict retries of the WATCH/MULTI transactions (the mode without scripting). */
  readonly retry?: RetryOptions | undefined;
  /**
   * Bound on reaching Redis, in ms: connecting (or reconnecting) and each round trip. An
   * operation that cannot complete within it fails with `ERR_DATABROKER_CONNECTION`. Default
   * 10 000.
   */
  readonly timeoutMs?: number | undefined;
  /** Most changes read per round trip by `sync`, records by `syncLatest` (pages are also sized by bytes). Default 1 000. */
  readonly batchSize?: number | undefined;
  /** How often a waiting `sync` reads even without a notification, in ms. Default 5 000. */
  readonly pollIntervalMs?: number | undefined;
  /**
   * `pubsub` (default) wakes waiting streams with a Pub/Sub notification from every commit, on a
   * connection of the backend's own. `poll` uses no Pub/Sub: streams of other processes see
   * changes at the next poll.
   */
  readonly wakeUp?: 'pubsub' | 'poll' | undefined;
  /**
   * What filters see of a record's data (`$index` and indexable fields). Default: the data itself.
   * Give one for codecs whose data is not a plain object.
   */
  readonly index?: ((data: T) => unknown) | undefined;
  /** Most records in one commit when concurrent puts are committed together. Default 1 000. */
  readonly maxBatchRecords?: number | undefined;
  /**
   * How puts commit. `auto` (default): one Lua script per commit where the ACL allows scripting
   * (checked once on the first write), else WATCH/MULTI transactions. `true`: scripts only (an
   * ACL without scripting fails with `ERR_DATABROKER_REDIS`). `false`: WATCH/MULTI only.
   */
  readonly scripting?: 'auto' | boolean | undefined;
  /** Where the backend reports what it cannot throw: damaged entries skipped, background cleanup failures. */
  readonly logger?: Logger | undefined;
  /**
   * What `sync` and `syncLatest` do with a stored entry whose bytes are damaged
   * (`ERR_DATABROKER_CORRUPT`, `ERR_DATABROKER_TAMPERED`): `skip` (default) delivers the others
   * and reports it (logger, the `corrupt` event, `stats.corruptSkipped`, the
   * `redis-events:databroker:corrupt` channel); `fail` ends the stream with the error.
   */
  readonly onCorruptEntry?: 'skip' | 'fail' | undefined;
}

/** Every option name {@link DataBroker} knows: anything else is a mistake. */
const OPTION_NAMES = new Set([
  'name',
  'codec',
  'encryptionKey',
  'decryptionKeys',
  'expiryMs',
  'cleanupIntervalMs',
  'retry',
  'timeoutMs',
  'batchSize',
  'pollIntervalMs',
  'wakeUp',
  'index',
  'maxBatchRecords',
  'scripting',
  'logger',
  'onCorruptEntry',
]);

/**
 * Options of the calls that wait for Redis.
 *
 * @example
 * ```ts
 * await broker.get('session', 's1', { signal: AbortSignal.timeout(500) });
 * ```
 */
export interface CallOptions {
  /** Stops waiting when it fires: the call rejects with `ERR_DATABROKER_ABORTED` (`name` `AbortError`). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options of {@link DataBroker.close}.
 *
 * @example
 * ```ts
 * await broker.close({ timeoutMs: 2000 });
 * ```
 */
export interface CloseOptions {
  /** How long puts queued and calls in flight may take to finish, in ms. Default 5 000. */
  readonly timeoutMs?: number | undefined;
  /** Stops waiting for them when it fires. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options of {@link DataBroker.sync}.
 *
 * @example
 * ```ts
 * // Catch up, then stop instead of waiting for more.
 * for await (const change of broker.sync('', serverVersion, recordVersion, { wait: false })) apply(change);
 * ```
 */
export interface SyncOptions {
  /** Wait for new changes once caught up (default), or end the stream. */
  readonly wait?: boolean | undefined;
  /** Ends the stream when it fires (a `for await` then leaves the loop normally). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * What {@link DataBroker.syncLatest} resolves to.
 *
 * @example
 * ```ts
 * const { serverVersion, recordVersion, stream }: LatestSnapshot<JsonValue> = await broker.syncLatest('user');
 * ```
 */
export interface LatestSnapshot<T> {
  /** The server version: pass it to `sync`. */
  readonly serverVersion: number;
  /** The version of the last change before the snapshot: `sync` from it follows every later change. */
  readonly recordVersion: number;
  /** The live records. */
  readonly stream: RecordStream<T>;
}

/**
 * Counters of a backend, from {@link DataBroker.stats}.
 *
 * @example
 * ```ts
 * const { commitMode, corruptSkipped } = broker.stats;
 * ```
 */
export interface DataBrokerStats {
  /** How puts commit, once the first write found out: `script` or `watch` (WATCH/MULTI). */
  readonly commitMode: CommitMode | undefined;
  /** Commits made (each may hold several concurrent puts). */
  readonly commits: number;
  /** Of those, commits made by script (the others by WATCH/MULTI). */
  readonly scriptedCommits: number;
  /** WATCH/MULTI commits that a concurrent writer made retry. */
  readonly conflicts: number;
  /** Damaged stored entries that `sync` or `syncLatest` skipped. */
  readonly corruptSkipped: number;
}

/**
 * Events of {@link DataBroker}.
 *
 * @example
 * ```ts
 * broker.on('corrupt', (err) => alert(`skipped a damaged entry: ${err.message}`));
 * ```
 */
export interface DataBrokerEvents {
  /** A damaged stored entry was skipped by `sync` or `syncLatest` (`onCorruptEntry: 'skip'`). */
  corrupt: [err: DataBrokerError];
}

const DEFAULT_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** How long `close()` lets work in flight finish, by default. */
const DEFAULT_CLOSE_MS = 5000;
/** Codes of damaged stored bytes, which `onCorruptEntry: 'skip'` skips. */
const DAMAGED = new Set(['ERR_DATABROKER_CORRUPT', 'ERR_DATABROKER_TAMPERED']);
/** Pinned ids read per round trip by a filtered `syncLatest`. */
const LOOKUP_CHUNK = 1000;

function positiveInteger(value: unknown, what: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw argumentError(`${what} must be an integer of at least ${min}, not ${String(value)}`);
  }
  return value;
}

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw argumentError(`${what} must be a non-empty string, not ${value === '' ? 'an empty string' : typeof value}`);
  }
  if (!value.isWellFormed()) throw argumentError(`${what} holds a lone UTF-16 surrogate, which UTF-8 cannot store`);
  if (value.length > MAX_NAME_BYTES / 3 && Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES)
    throw argumentError(`${what} is longer than ${MAX_NAME_BYTES} bytes`);
  return value;
}

function checkKnown(options: object, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw argumentError(
        `${what} has no option "${key}"${key === 'onBackgroundError' ? ' (give a logger instead)' : ''}; the options are ${[...known].join(', ')}`,
      );
    }
  }
}

function checkCallOptions(options: unknown, what: string, extra: readonly string[] = []): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw argumentError(`${what}: options must be an object`);
  checkKnown(options, new Set(['signal', ...extra]), what);
  const { signal } = options as CallOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw argumentError(`${what}: signal must be an AbortSignal`);
  }
  return signal;
}

function parseOptions(raw: string | undefined, type: string): TypeOptions | undefined {
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (typeof parsed !== 'object' || parsed === null) throw new TypeError('not an object');
    return normalizeOptions(parsed as TypeOptions, `stored options of type ${type}`);
  } catch (err) {
    throw corruptError(`the stored options of type "${type}" are not valid: ${(err as Error).message}`, err);
  }
}

function normalizeOptions(options: TypeOptions, what: string): TypeOptions {
  if (typeof options !== 'object' || options === null) throw argumentError(`${what} must be an object`);
  checkKnown(options, new Set(['capacity', 'indexableFields']), what);
  const out: { capacity?: number | undefined; indexableFields?: string[] | undefined } = {};
  if (options.capacity !== undefined) {
    if (!Number.isSafeInteger(options.capacity) || options.capacity < 0) {
      throw argumentError(`${what}: capacity must be a non-negative integer, not ${String(options.capacity)}`);
    }
    out.capacity = options.capacity;
  }
  if (options.indexableFields !== undefined) {
    if (!Array.isArray(options.indexableFields) || options.indexableFields.some((f) => typeof f !== 'string' || !f)) {
      throw argumentError(`${what}: indexableFields must be an array of non-empty field paths`);
    }
    out.indexableFields = [...new Set(options.indexableFields)];
  }
  return out;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Pairs of a WITHSCORES reply, RESP2 (flat) or RESP3 (nested), as alternating member, score. */
function scoredPairs(reply: unknown, what: string): unknown[] {
  const items = arrayReply(reply, what);
  if (items.length === 0 || !Array.isArray(items[0])) {
    if (items.length % 2 !== 0) throw corruptError(`${what}: a WITHSCORES reply of odd length ${items.length}`);
    return items;
  }
  const flat: unknown[] = [];
  for (const pair of items) {
    const [member, score] = arrayReply(pair, what);
    flat.push(member, score);
  }
  return flat;
}

function invalidServerVersion(expected: number, current: number | undefined, what: string): DataBrokerError {
  return new DataBrokerError(
    'ERR_DATABROKER_INVALID_SERVER_VERSION',
    `invalid server version: ${what} started at server version ${expected}, and it is now ${current ?? 'gone'} (Redis was flushed, replaced, or clear() ran); take a new snapshot with syncLatest()`,
  );
}

/**
 * A store of versioned records on Redis whose every change is logged, so that clients can take a
 * consistent snapshot (`syncLatest`) and then follow every change after it (`sync`), in order,
 * without missing one. A TypeScript port of the Redis backend of Pomerium's databroker, with its
 * known defects fixed (see the README).
 *
 * Give it an ioredis 6 `Redis` (standalone or Sentinel) or `Cluster`: the backend reads its
 * options and opens connections of its own to the master of its slot, one for commands and, when
 * a stream first waits, one for Pub/Sub wake-ups. `close()` ends those, never your client.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { DataBroker } from '@redis-events/databroker';
 *
 * const broker = new DataBroker(new Redis());
 * await broker.put([{ type: 'session', id: 's1', data: { user: 'ada' } }]);
 * const { serverVersion, recordVersion, stream } = await broker.syncLatest('session');
 * for await (const record of stream) console.log('have', record.id);
 * for await (const change of broker.sync('session', serverVersion, recordVersion)) {
 *   console.log(change.deletedAt ? 'deleted' : 'changed', change.id, change.version);
 * }
 * ```
 */
export class DataBroker<T = JsonValue> extends EventEmitter<DataBrokerEvents> {
  readonly #keys: KeySpace;
  readonly #codec: RecordCodec<T>;
  readonly #json: boolean;
  readonly #cipher: DataCipher | undefined;
  readonly #index: (data: T) => unknown;
  readonly #expiryMs: number;
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #pollIntervalMs: number;
  readonly #scripting: 'auto' | boolean;
  readonly #logger: Logger;
  readonly #skipCorrupt: boolean;
  readonly #link: Link;
  readonly #runner: TransactionRunner;
  readonly #committer: Committer;
  readonly #notifier: ChangeNotifier;
  readonly #streams = new Set<BaseStream<T>>();
  #mode: CommitMode | undefined;
  /** Whether the ACL allows WATCH/MULTI (as the probe found). */
  #watchAllowed = true;
  #probing: Promise<CommitMode> | undefined;
  #cleanupTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Calls in flight (puts are counted by the committer), and who waits for none. */
  #calls = 0;
  #idleWaiters: (() => void)[] = [];
  #commits = 0;
  #corruptSkipped = 0;
  #subscriberTrouble = 0;

  constructor(client: RedisClient, options: DataBrokerOptions<T> = {}) {
    super();
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof (client as { duplicate?: unknown }).duplicate !== 'function' ||
      typeof (client as { options?: unknown }).options !== 'object'
    ) {
      throw argumentError('DataBroker needs an ioredis 6 Redis or Cluster client as its first argument');
    }
    if (typeof options !== 'object' || options === null) throw argumentError('DataBroker options must be an object');
    checkKnown(options, OPTION_NAMES, 'DataBroker');
    const prefix = keyPrefixOf(client);
    if (prefix.includes('{') && isCluster(client)) {
      throw argumentError(
        `the client's keyPrefix "${prefix}" holds a "{": it would replace the backend's hash tag and spread its keys over several cluster slots`,
      );
    }
    this.#keys = keySpace(options.name ?? 'databroker', prefix);
    this.#codec = options.codec ?? (jsonCodec as unknown as RecordCodec<T>);
    if (typeof this.#codec?.encode !== 'function' || typeof this.#codec.decode !== 'function') {
      throw argumentError('codec must have encode(data) and decode(bytes) functions');
    }
    this.#json = this.#codec === (jsonCodec as unknown);
    if (options.encryptionKey === undefined && options.decryptionKeys?.length) {
      throw argumentError('decryptionKeys need an encryptionKey: give the current key as encryptionKey');
    }
    this.#cipher =
      options.encryptionKey === undefined ? undefined : createDataCipher(options.encryptionKey, options.decryptionKeys);
    if (options.index !== undefined && typeof options.index !== 'function') {
      throw argumentError('index must be a function of the data');
    }
    this.#index = options.index ?? ((data: T) => data);
    this.#expiryMs = positiveInteger(options.expiryMs, 'expiryMs', DEFAULT_EXPIRY_MS, 0);
    this.#timeoutMs = positiveInteger(options.timeoutMs, 'timeoutMs', 10_000);
    this.#batchSize = positiveInteger(options.batchSize, 'batchSize', 1_000);
    this.#pollIntervalMs = positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 5_000);
    const maxBatchRecords = positiveInteger(options.maxBatchRecords, 'maxBatchRecords', 1_000);
    const scripting = options.scripting ?? 'auto';
    if (scripting !== 'auto' && scripting !== true && scripting !== false) {
      throw argumentError(`scripting must be "auto", true or false, not ${String(scripting)}`);
    }
    this.#scripting = scripting;
    if (
      options.onCorruptEntry !== undefined &&
      options.onCorruptEntry !== 'skip' &&
      options.onCorruptEntry !== 'fail'
    ) {
      throw argumentError(`onCorruptEntry must be "skip" or "fail", not ${String(options.onCorruptEntry)}`);
    }
    this.#skipCorrupt = options.onCorruptEntry !== 'fail';
    const logger = options.logger;
    if (logger !== undefined && !isLogger(logger)) {
      throw argumentError('logger must have debug, warn and error methods (console and pino have them)');
    }
    this.#logger = logger ?? noopLogger;
    const retry = options.retry ?? {};
    if (typeof retry !== 'object' || retry === null) throw argumentError('retry must be an object');
    checkKnown(retry, new Set(['maxAttempts', 'initialDelayMs', 'maxDelayMs']), 'retry');
    positiveInteger(retry.maxAttempts, 'retry.maxAttempts', 100);
    positiveInteger(retry.initialDelayMs, 'retry.initialDelayMs', 1, 0);
    positiveInteger(retry.maxDelayMs, 'retry.maxDelayMs', 50, 0);
    if (options.wakeUp !== undefined && options.wakeUp !== 'pubsub' && options.wakeUp !== 'poll') {
      throw argumentError(`wakeUp must be "pubsub" or "poll", not ${String(options.wakeUp)}`);
    }
    const cleanupInterval =
      this.#expiryMs > 0 ? positiveInteger(options.cleanupIntervalMs, 'cleanupIntervalMs', 60_000) : 0;
    this.#link = new Link({
      client,
      slot: this.#keys.slot,
      label: `databroker ${this.#keys.name}`,
      timeoutMs: this.#timeoutMs,
    });
    this.#runner = new TransactionRunner(this.#link, retry, this.#timeoutMs, this.#keys.turn);
    this.#notifier =
      options.wakeUp === 'poll'
        ? new LocalNotifier()
        : new PubSubNotifier(client, this.#keys.slot, this.#keys.channel, this.#timeoutMs, (err) =>
            this.#subscriberFailed(err),
          );
    const self = this;
    const host: CommitHost = {
      keys: this.#keys,
      runner: this.#runner,
      notifier: this.#notifier,
      maxBatchRecords,
      get adaptive() {
        return self.#scripting === 'auto' && self.#watchAllowed;
      },
      mode: () => this.#commitMode(),
      scriptingRefused: (err) => this.#scriptingRefused(err),
      committed: () => {
        this.#commits++;
      },
      capacityDamaged: (type) =>
        this.#report(corruptError(`the stored capacity of type "${type}" is not a number; it was ignored`), 'put'),
    };
    this.#committer = new Committer(host);
    if (cleanupInterval > 0) {
      this.#cleanupTimer = setInterval(() => {
        this.#removeChanges({ age: this.#expiryMs }).catch((err: unknown) => {
          if (this.#closed) return;
          this.#logger.error(
            { err, backend: this.#keys.name },
            `@redis-events/databroker: the change-log cleanup of "${this.#keys.name}" failed: ${(err as Error).message}`,
          );
        });
      }, cleanupInterval);
      this.#cleanupTimer.unref();
    }
  }

  /** The keys this backend uses, for tools and for the ACL: every one holds `{name}`. */
  get keys(): KeySpace {
    return this.#keys;
  }

  /** Counters: the commit mode found, commits, conflicts, damaged entries skipped. */
  get stats(): DataBrokerStats {
    return {
      commitMode: this.#mode,
      commits: this.#commits,
      scriptedCommits: this.#committer.scriptCommits,
      conflicts: this.#runner.conflicts,
      corruptSkipped: this.#corruptSkipped,
    };
  }

  // ---------------------------------------------------------------------------------------- writes

  /**
   * Writes records, and deletes those with `deletedAt`, in one atomic commit. Each gets a new
   * version: unique, increasing in input order, and greater than every version before, also with
   * many writers on many connections. Concurrent puts of this backend are committed together.
   * Deleting a record that does not exist still logs the delete. The capacity of the types
   * written is enforced.
   *
   * With a `signal`, a put not yet sent leaves the queue when it fires; one already sent stops
   * retrying and rejects at once (it may still be applied; the error says so).
   *
   * @example
   * ```ts
   * const { serverVersion, records } = await broker.put([
   *   { type: 'user', id: 'u1', data: { name: 'Ada' } },
   *   { type: 'user', id: 'u2', deletedAt: new Date() },
   * ]);
   * console.log(records.map((r) => r.version)); // [41, 42]
   * ```
   * @throws {DataBrokerError} `ERR_DATABROKER_ARGUMENT` for a bad record, `ERR_DATABROKER_CODEC`,
   * `ERR_DATABROKER_RETRIES_EXHAUSTED`, `ERR_DATABROKER_CONNECTION`, `ERR_DATABROKER_COMMIT_UNKNOWN`,
   * `ERR_DATABROKER_ABORTED`, `ERR_DATABROKER_CLOSED`.
   */
  put(records: readonly RecordInput<T>[], options?: CallOptions): Promise<PutResult<T>> {
    if (!putChannel.hasSubscribers) return this.#put(records, options);
    const target = this.#link.target;
    const context: PutTrace = {
      backend: this.#keys.name,
      records: Array.isArray(records) ? records.length : 0,
      serverAddress: target?.host,
      serverPort: target?.port,
      database: target?.db,
    };
    return putChannel.tracePromise(() => this.#put(records, options, context), context);
  }

  async #put(records: readonly RecordInput<T>[], options?: CallOptions, trace?: PutTrace): Promise<PutResult<T>> {
    this.#checkOpen();
    const signal = checkCallOptions(options, 'put');
    if (!Array.isArray(records)) throw argumentError('put() takes an array of records');
    if (signal?.aborted) throw abortError('put', signal);
    const count = records.length;
    const bodies = new Array<EntryBody>(count);
    const deletedAts = new Array<number | undefined>(count);
    for (let i = 0; i < count; i++) {
      const record = records[i] as RecordInput<T>;
      bodies[i] = this.#encodeInput(record, i);
      deletedAts[i] = record.deletedAt?.getTime();
    }
    if (count === 0) return { serverVersion: await this.#serverVersion(signal), records: [] };
    // A copy: the caller may change its array before the commit.
    const inputs = records.slice();
    const committed = await new Promise<{ serverVersion: number; base: number; now: number }>((resolve, reject) => {
      this.#committer.enqueue({ bodies, deletedAts, resolve, reject, signal, sent: false, settled: false });
    });
    const out = new Array<DataRecord<T>>(count);
    const modifiedAt = committed.now;
    for (let i = 0; i < count; i++) {
      const input = inputs[i] as RecordInput<T>;
      const version = committed.base + 1 + i;
      if (input.deletedAt !== undefined) {
        const deletedAt = new Date(input.deletedAt.getTime());
        out[i] =
          input.data === undefined
            ? { type: input.type, id: input.id, version, modifiedAt: new Date(modifiedAt), deletedAt }
            : {
                type: input.type,
                id: input.id,
                version,
                modifiedAt: new Date(modifiedAt),
                deletedAt,
                data: input.data,
              };
      } else {
        out[i] = { type: input.type, id: input.id, version, modifiedAt: new Date(modifiedAt), data: input.data };
      }
    }
    if (trace) {
      trace.serverVersion = committed.serverVersion;
      trace.firstVersion = committed.base + 1;
      trace.lastVersion = committed.base + count;
      trace.mode = this.#mode;
    }
    return { serverVersion: committed.serverVersion, records: out };
  }

  #encodeInput(record: RecordInput<T>, index: number): EntryBody {
    if (typeof record !== 'object' || record === null) throw argumentError(`records[${index}] must be an object`);
    const type = checkName(record.type, `records[${index}].type`);
    const id = checkName(record.id, `records[${index}].id`);
    const { deletedAt, data } = record;
    if (deletedAt !== undefined && (!(deletedAt instanceof Date) || !Number.isFinite(deletedAt.getTime()))) {
      throw argumentError(`records[${index}].deletedAt must be a valid Date (or left out to write the record)`);
    }
    if (deletedAt === undefined && data === undefined) {
      throw argumentError(`records[${index}] has no data: give data, or deletedAt to delete the record`);
    }
    let bytes: Uint8Array | undefined;
    if (data !== undefined) {
      if (this.#json && !this.#cipher) {
        // The default codec, written straight into the entry: no intermediate buffer.
        let text: string | undefined;
        try {
          text = JSON.stringify(data);
        } catch (err) {
          throw this.#encodeError(index, type, id, err);
        }
        if (text === undefined)
          throw this.#encodeError(index, type, id, new TypeError(`${typeof data} is not a JSON value`));
        return encodeBody(type, id, text, false);
      }
      try {
        bytes = this.#codec.encode(data);
      } catch (err) {
        throw this.#encodeError(index, type, id, err);
      }
      if (!(bytes instanceof Uint8Array)) {
        throw new DataBrokerError(
          'ERR_DATABROKER_CODEC',
          `records[${index}]: the codec's encode() must return a Uint8Array`,
        );
      }
      if (this.#cipher) bytes = this.#cipher.seal(bytes, Buffer.from(recordField(type, id), 'utf8'));
    }
    return encodeBody(type, id, bytes, this.#cipher !== undefined);
  }

  #encodeError(index: number, type: string, id: string, err: unknown): DataBrokerError {
    return new DataBrokerError(
      'ERR_DATABROKER_CODEC',
      `records[${index}] (${type}/${id}): the codec could not encode its data: ${(err as Error).message}`,
      { cause: err },
    );
  }

  /** The commit mode: found out once, by asking the server what the ACL allows. */
  #commitMode(): Promise<CommitMode> {
    if (this.#mode) return Promise.resolve(this.#mode);
    if (this.#scripting === false) {
      this.#mode = 'watch';
      return Promise.resolve('watch');
    }
    this.#probing ??= this.#probe().then(
      (mode) => {
        this.#probing = undefined;
        this.#mode = mode;
        return mode;
      },
      (err: unknown) => {
        this.#probing = undefined;
        throw err;
      },
    );
    return this.#probing;
  }

  /** Asks the server whether this user may run the scripts and every command in them. */
  async #probe(): Promise<CommitMode> {
    const k = this.#keys;
    const recent = k.recentKey('probe');
    const lease = k.leaseKey('probe');
    const checks: (string | number)[][] = [
      ['EVALSHA', PUT_SCRIPT.sha, 1, k.meta],
      ['EVAL', 'return 1', 1, k.meta],
      ['HMGET', k.meta, 'server'],
      ['HGET', k.meta, 'server'],
      ['HSET', k.meta, 'last', '1'],
      ['HSET', k.records, 'f', 'v'],
      ['HDEL', k.records, 'f'],
      ['HMGET', k.records, 'f'],
      ['ZADD', k.index, '0', 'f'],
      ['ZREM', k.index, 'f'],
      ['ZRANGEBYLEX', k.index, '-', '+'],
      ['ZADD', k.changes, '1', 'm'],
      ['ZADD', recent, 'GT', '1', 'm'],
      ['ZREM', recent, 'm'],
      ['ZCARD', recent],
      ['ZRANGE', recent, '0', '1'],
      ['SADD', k.types, 't'],
      ['LPUSH', k.commits, 'x'],
      ['LTRIM', k.commits, '0', '1'],
      ['PUBLISH', k.channel, 'x'],
      ['TIME'],
      ['GET', lease],
      ['SET', lease, 'x', 'PX', '1'],
      ['DEL', lease],
      ['WATCH', k.meta],
      ['MULTI'],
      ['EXEC'],
    ];
    const args = checks.flatMap((check) => [check.length, ...check]);
    let refused: string[];
    try {
      const [reply] = await this.#runner.read('scripting check', [['EVAL', PROBE_SCRIPT.body, 0, ...args]]);
      refused = bytesArrayReply(reply, 'scripting check').map((b) => b.toString().toUpperCase());
    } catch (err) {
      const cause = err instanceof DataBrokerError ? err.cause : err;
      if (!(cause instanceof ReplyError) || !this.#refusal(cause)) throw err;
      refused = ['EVAL'];
    }
    const transactions = new Set(['WATCH', 'MULTI', 'EXEC']);
    this.#watchAllowed = !refused.some((command) => transactions.has(command));
    refused = refused.filter((command) => !transactions.has(command));
    if (refused.length === 0) return 'script';
    const message = `@redis-events/databroker: the ACL user may not run ${refused.join(', ')} on the keys of "${this.#keys.name}"`;
    if (this.#scripting === true) {
      throw new DataBrokerError(
        'ERR_DATABROKER_REDIS',
        `${message}, which scripting: true needs; allow EVALSHA, EVAL and the commands of "Minimal ACL" in the README, or use scripting: "auto"`,
      );
    }
    this.#logger.debug(
      { backend: this.#keys.name, refused },
      `${message}: commits use WATCH/MULTI transactions instead of scripts`,
    );
    return 'watch';
  }

  /** Whether an error reply means scripting is not available (not allowed, or not there). */
  #refusal(err: ReplyError): boolean {
    return (
      err.prefix === 'NOPERM' ||
      err.prefix === 'NOSCRIPT' ||
      /^ERR (unknown command|.*scripting is disabled|Error compiling script|.*attempt to call field 'acl_check_cmd')/i.test(
        err.message,
      )
    );
  }

  /** A script was refused before it ran: in `auto` mode, switch to WATCH/MULTI and say so. */
  #scriptingRefused(err: unknown): boolean {
    const cause = err instanceof DataBrokerError ? err.cause : err;
    if (!(cause instanceof ReplyError) || this.#scripting !== 'auto') return false;
    if (
      !(cause.prefix === 'NOPERM' && /'(evalsha|eval)' command/i.test(cause.message)) &&
      !/^ERR unknown command/i.test(cause.message)
    )
      return false;
    this.#mode = 'watch';
    this.#logger.warn(
      { backend: this.#keys.name, err: cause },
      `@redis-events/databroker: scripting was refused (${cause.message}); "${this.#keys.name}" commits with WATCH/MULTI from now on`,
    );
    return true;
  }

  /**
   * Sets the options of a type and enforces them at once: lowering the capacity evicts the least
   * recently modified records. Options without `capacity` and `indexableFields` remove the entry.
   *
   * @example
   * ```ts
   * await broker.setOptions('session', { capacity: 10_000, indexableFields: ['user'] });
   * ```
   */
  async setOptions(type: string, options: TypeOptions, callOptions?: CallOptions): Promise<void> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(callOptions, 'setOptions');
      checkName(type, 'type');
      const normalized = normalizeOptions(options, 'options');
      const empty = normalized.capacity === undefined && normalized.indexableFields === undefined;
      const keys = this.#keys;
      const capField = `cap:${type}`;
      const capacity = normalized.capacity;
      // The options, and the capacity where commits read it. A type that gets its first capacity is
      // only tracked at first ('track'): commits keep its recency index, which is filled from its
      // records, then the capacity takes effect.
      const fill = await this.#runner.run({
        label: `setOptions of ${type}`,
        contended: true,
        signal,
        watch: [keys.meta],
        reads: [['HGET', keys.meta, capField]],
        plan: (replies) => {
          const had = capacityOf(bytesReply(replies[0], 'HGET meta'));
          const writes: Command[] = [
            empty ? ['HDEL', keys.options, type] : ['HSET', keys.options, type, JSON.stringify(normalized)],
          ];
          let fill = false;
          if (capacity !== undefined) {
            fill = had === undefined || had === null || had === 'track';
            writes.push(['HSET', keys.meta, capField, fill ? 'track' : capacity]);
            if (had === undefined) writes.push(['HINCRBY', keys.meta, 'capped', 1]);
          } else if (had !== undefined) {
            writes.push(
              ['HDEL', keys.meta, capField],
              ['HINCRBY', keys.meta, 'capped', -1],
              ['DEL', keys.recentKey(type)],
            );
          }
          return { writes, committed: () => fill };
        },
      });
      if (capacity === undefined) return;
      if (fill) {
        await this.#committer.backfill(type, signal);
        await this.#runner.run({
          label: `setOptions of ${type}`,
          contended: true,
          signal,
          watch: [keys.meta],
          reads: [['HGET', keys.meta, capField]],
          plan: (replies) =>
            // Another setOptions removed it meanwhile: leave it removed.
            capacityOf(bytesReply(replies[0], 'HGET meta')) === 'track'
              ? { writes: [['HSET', keys.meta, capField, capacity]], committed: () => undefined }
              : { result: undefined },
        });
      }
      await this.#committer.enforce([type], signal);
    } finally {
      leave();
    }
  }

  /**
   * The options of a type, or undefined when none were set.
   *
   * @example
   * ```ts
   * const capacity = (await broker.getOptions('session'))?.capacity ?? Infinity;
   * ```
   */
  async getOptions(type: string, options?: CallOptions): Promise<TypeOptions | undefined> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'getOptions');
      checkName(type, 'type');
      const [reply] = await this.#read('getOptions', [['HGET', this.#keys.options, type]], signal);
      return parseOptions(textReply(reply, 'HGET options'), type);
    } finally {
      leave();
    }
  }

  /**
   * Acquires, renews or releases a lease: a named lock held by one `id` for `ttlMs`. With
   * `ttlMs > 0` it acquires a free (or expired) lease or renews one `id` already holds, and
   * resolves true; it resolves false when another id holds it. With `ttlMs <= 0` the holder
   * releases it (resolves false: the lease is no longer held). Each call is atomic (one script,
   * or `SET NX PX` then a WATCH/MULTI check without scripting), so two ids never both hold a lease.
   *
   * @example
   * ```ts
   * const me = crypto.randomUUID();
   * if (await broker.lease('cleanup-job', me, 30_000)) {
   *   await runCleanup();
   *   await broker.lease('cleanup-job', me, 0); // release
   * }
   * ```
   */
  lease(name: string, id: string, ttlMs: number, options?: CallOptions): Promise<boolean> {
    if (!leaseChannel.hasSubscribers) return this.#lease(name, id, ttlMs, options);
    const target = this.#link.target;
    const context: LeaseTrace = {
      backend: this.#keys.name,
      lease: name,
      id,
      ttlMs,
      serverAddress: target?.host,
      serverPort: target?.port,
      database: target?.db,
    };
    return leaseChannel.tracePromise(() => this.#lease(name, id, ttlMs, options, context), context);
  }

  async #lease(name: string, id: string, ttlMs: number, options?: CallOptions, trace?: LeaseTrace): Promise<boolean> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'lease');
      checkName(name, 'lease name');
      checkName(id, 'lease id');
      if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs))
        throw argumentError(`ttlMs must be a number of ms, not ${String(ttlMs)}`);
      const key = this.#keys.leaseKey(name);
      const ms = Math.ceil(Math.min(ttlMs, 2 ** 47));
      const outcome = (result: LeaseTrace['outcome']): boolean => {
        if (trace) trace.outcome = result;
        return result === 'acquired' || result === 'renewed';
      };
      if ((await this.#commitMode()) === 'script') {
        try {
          const code = await this.#runner.script({
            label: `lease ${name}`,
            script: LEASE_SCRIPT,
            keys: [key],
            args: [id, ms],
            signal,
            done: (reply) => integerReply(reply, 'lease script') ?? 0,
          });
          return outcome((['refused', 'acquired', 'renewed', 'released', 'not-held'] as const)[code] ?? 'refused');
        } catch (err) {
          if (!this.#scriptingRefused(err)) throw err;
        }
      }
      if (ms > 0) {
        const [reply] = await this.#read(`lease ${name}`, [['SET', key, id, 'NX', 'PX', ms]], signal);
        if (reply !== null && reply !== undefined) return outcome('acquired');
      }
      const result = await this.#runner.run({
        label: `lease ${name}`,
        signal,
        watch: [key],
        reads: [['GET', key]],
        plan: (replies) => {
          const holder = textReply(replies[0], 'GET lease');
          if (holder !== undefined && holder !== id) return { result: 'refused' as const };
          if (ms <= 0) {
            if (holder === undefined) return { result: 'not-held' as const };
            return { writes: [['DEL', key]], committed: () => 'released' as const };
          }
          return {
            writes: [['SET', key, id, 'PX', ms]],
            committed: () => (holder === undefined ? ('acquired' as const) : ('renewed' as const)),
          };
        },
      });
      return outcome(result);
    } finally {
      leave();
    }
  }

  // ----------------------------------------------------------------------------------------- reads

  /**
   * The live record of a type and id, or undefined when there is none (never written, deleted,
   * or evicted).
   *
   * @example
   * ```ts
   * const session = await broker.get('session', 's1');
   * if (session) console.log(session.version, session.data);
   * ```
   */
  async get(type: string, id: string, options?: CallOptions): Promise<DataRecord<T> | undefined> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'get');
      checkName(type, 'type');
      checkName(id, 'id');
      const [reply] = await this.#read('get', [['HGET', this.#keys.records, recordField(type, id)]], signal);
      const bytes = bytesReply(reply, 'HGET records');
      if (!bytes) return undefined;
      const entry = decodeEntry(bytes);
      if (entry.type !== type || entry.id !== id) {
        throw corruptError(`the record stored for ${type}/${id} says it is ${entry.type}/${entry.id}`);
      }
      return this.#toRecord(entry);
    } finally {
      leave();
    }
  }

  /**
   * Every type ever written (deletes included), in ascending byte order.
   *
   * @example
   * ```ts
   * for (const type of await broker.listTypes()) console.log(type);
   * ```
   */
  async listTypes(options?: CallOptions): Promise<string[]> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'listTypes');
      return this.#listTypes(signal);
    } finally {
      leave();
    }
  }

  async #listTypes(signal: AbortSignal | undefined): Promise<string[]> {
    const [reply] = await this.#read('listTypes', [['SMEMBERS', this.#keys.types]], signal);
    return bytesArrayReply(reply, 'SMEMBERS types')
      .map((b) => b.toString('utf8'))
      .sort(compareUtf8);
  }

  /**
   * The server version, the latest record version and the earliest version `sync` accepts.
   *
   * @example
   * ```ts
   * const { serverVersion, latestRecordVersion } = await broker.versions();
   * ```
   */
  async versions(options?: CallOptions): Promise<Versions> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'versions');
      for (;;) {
        const [reply] = await this.#read('versions', [['HMGET', this.#keys.meta, 'server', 'last', 'trimmed']], signal);
        const [server, last, trimmed] = arrayReply(reply, 'HMGET meta');
        const serverVersion = integerReply(server, 'the stored server version');
        if (serverVersion === undefined) {
          await this.#serverVersion(signal);
          continue;
        }
        return {
          serverVersion,
          latestRecordVersion: integerReply(last, 'the stored last version') ?? 0,
          earliestRecordVersion: integerReply(trimmed, 'the stored trimmed version') ?? 0,
        };
      }
    } finally {
      leave();
    }
  }

  /**
   * Every change after `recordVersion`, of one type (or of all types when `type` is empty), in
   * version order: puts, deletes and evictions (tombstones, with `deletedAt`). Once caught up, it
   * waits for new changes (unless `wait: false`) and streams each as it commits. It fails with
   * `ERR_DATABROKER_INVALID_SERVER_VERSION` when the server version is not `serverVersion` (Redis
   * was flushed or replaced, or `clear()` ran), and with `ERR_DATABROKER_INVALID_RECORD_VERSION`
   * when changes after `recordVersion` were already removed by expiry: take a new snapshot with
   * `syncLatest` then. A `signal` ends the stream.
   *
   * @example
   * ```ts
   * let { serverVersion, recordVersion, stream } = await broker.syncLatest('route');
   * for await (const record of stream) routes.set(record.id, record.data);
   * for await (const change of broker.sync('route', serverVersion, recordVersion)) {
   *   if (change.deletedAt) routes.delete(change.id);
   *   else routes.set(change.id, change.data);
   * }
   * ```
   */
  sync(type: string, serverVersion: number, recordVersion: number, options: SyncOptions = {}): RecordStream<T> {
    this.#checkOpen();
    const signal = checkCallOptions(options, 'sync', ['wait']);
    if (typeof type !== 'string') throw argumentError('type must be a string (empty for every type)');
    if (type) checkName(type, 'type');
    if (!Number.isSafeInteger(serverVersion) || serverVersion <= 0) {
      throw argumentError(
        `serverVersion must be a positive integer from put(), syncLatest() or versions(), not ${String(serverVersion)}`,
      );
    }
    if (!Number.isSafeInteger(recordVersion) || recordVersion < 0) {
      throw argumentError(`recordVersion must be a non-negative integer, not ${String(recordVersion)}`);
    }
    if (options.wait !== undefined && typeof options.wait !== 'boolean') {
      throw argumentError(`sync: wait must be true or false, not ${String(options.wait)}`);
    }
    const sizer = new PageSizer(this.#batchSize);
    const stream: SyncStream<T> = new SyncStream<T>({
      type: type || undefined,
      serverVersion,
      after: recordVersion,
      wait: options.wait ?? true,
      pollIntervalMs: this.#pollIntervalMs,
      read: (cursor) => this.#readChanges(serverVersion, cursor, sizer, signal),
      decode: (entry) => this.#decodeSkipping(entry, 'sync'),
      decodePushed: decodeEntry,
      notifier: this.#notifier,
      onEnd: (s) => this.#streams.delete(s),
      onBatch: (batch) => {
        if (!syncChannel.hasSubscribers) return;
        const first = batch.entries[0] as Entry;
        const last = batch.entries[batch.entries.length - 1] as Entry;
        const target = this.#link.target;
        syncChannel.publish({
          backend: this.#keys.name,
          type,
          serverVersion,
          source: batch.source,
          wake: batch.wake,
          waitedMs: batch.waitedMs,
          count: batch.entries.length,
          firstVersion: first.version,
          lastVersion: last.version,
          lastModifiedAt: last.modifiedAt,
          receivedAt: Date.now(),
          caughtUp: batch.caughtUp,
          serverAddress: target?.host,
          serverPort: target?.port,
          database: target?.db,
        });
      },
      signal,
    });
    this.#streams.add(stream);
    return stream;
  }

  /** A page of the change log after `cursor`, checked against the server version and expiry. */
  async #readChanges(
    serverVersion: number,
    cursor: number,
    sizer: PageSizer,
    signal: AbortSignal | undefined,
  ): Promise<ChangePage> {
    const keys = this.#keys;
    const limit = sizer.next();
    const [page, metaReply] = await this.#read(
      'sync',
      [
        ['ZRANGEBYSCORE', keys.changes, `(${cursor}`, '+inf', 'WITHSCORES', 'LIMIT', 0, limit],
        ['HMGET', keys.meta, 'server', 'trimmed'],
      ],
      signal,
    );
    // Checked after the page: had Redis been flushed or trimmed before the page was read, these
    // replies, read later on the same connection, would show it.
    const [server, trimmed] = arrayReply(metaReply, 'HMGET meta');
    const current = integerReply(server, 'the stored server version');
    if (current !== serverVersion) throw invalidServerVersion(serverVersion, current, 'this sync');
    const earliest = integerReply(trimmed, 'the stored trimmed version') ?? 0;
    if (cursor < earliest) {
      throw new DataBrokerError(
        'ERR_DATABROKER_INVALID_RECORD_VERSION',
        `invalid record version: changes after ${cursor} were removed from the change log (everything up to ${earliest} expired); take a new snapshot with syncLatest()`,
      );
    }
    const pairs = scoredPairs(page, 'ZRANGEBYSCORE changes');
    const entries: Entry[] = [];
    let last = cursor;
    let previous = cursor;
    let bytes = 0;
    for (let i = 0; i < pairs.length; i += 2) {
      const score = scoreReply(pairs[i + 1], 'ZRANGEBYSCORE changes');
      if (score === undefined || !Number.isSafeInteger(score) || score <= last) {
        throw corruptError(`the change log holds a score of ${String(score)} after ${last}`);
      }
      last = score;
      const member = pairs[i];
      let entry: Entry;
      try {
        const raw = bytesReply(member, 'ZRANGEBYSCORE changes');
        if (!raw) throw corruptError(`the change at version ${score} is empty`);
        bytes += raw.length;
        entry = decodeEntry(raw);
        if (entry.version !== score) {
          throw corruptError(`the change stored at version ${score} says it is version ${entry.version}`);
        }
      } catch (err) {
        // Failing on damage: deliver what precedes it first; the next read starts with it.
        if (!this.#skipCorrupt && entries.length > 0)
          return { entries, last: last === score ? previous : last, full: true };
        this.#damaged(err, 'sync', `the change at version ${score}`);
        continue;
      }
      entries.push(entry);
      previous = score;
    }
    sizer.observe(bytes, pairs.length / 2);
    return { entries, last, full: pairs.length / 2 >= limit };
  }

  /**
   * The stored options of a type, or undefined when there are none, or when they are damaged:
   * then they are reported and ignored (a put keeps working, a snapshot sees no indexable fields).
   */
  #optionsOf(raw: string | undefined, type: string, where: 'put' | 'syncLatest'): TypeOptions | undefined {
    try {
      return parseOptions(raw, type);
    } catch (err) {
      if (!this.#skipCorrupt && where === 'syncLatest') throw err;
      this.#report(err as DataBrokerError, where);
      return undefined;
    }
  }

  /**
   * Reports damaged stored bytes: skipped (logger, event, counter, channel) by default, or thrown
   * with `onCorruptEntry: 'fail'`.
   */
  #damaged(err: unknown, where: 'sync' | 'syncLatest', what: string): void {
    if (!(err instanceof DataBrokerError) || !DAMAGED.has(err.code) || !this.#skipCorrupt) throw err;
    const error = err.message.includes(what)
      ? err
      : new DataBrokerError(err.code, `${what} of "${this.#keys.name}": ${err.message}`, { cause: err });
    this.#report(error, where);
  }

  #report(error: DataBrokerError, where: 'sync' | 'syncLatest' | 'put'): void {
    this.#corruptSkipped++;
    this.#logger.warn(
      { backend: this.#keys.name, where, code: error.code, err: error },
      where === 'put'
        ? `@redis-events/databroker: a put ignored damaged stored data: ${error.message}`
        : `@redis-events/databroker: ${where} skipped a damaged entry: ${error.message}`,
    );
    if (corruptChannel.hasSubscribers) {
      corruptChannel.publish({ backend: this.#keys.name, where, error });
    }
    if (this.listenerCount('corrupt') > 0) this.emit('corrupt', error);
  }

  /** The record of an entry, or undefined when its data is damaged and skipping is on. */
  #decodeSkipping(entry: Entry, where: 'sync' | 'syncLatest'): DataRecord<T> | undefined {
    try {
      return this.#toRecord(entry);
    } catch (err) {
      this.#damaged(err, where, `${entry.type}/${entry.id} at version ${entry.version}`);
      return undefined;
    }
  }

  /**
   * A consistent starting point and the live records: `recordVersion` is read before the records,
   * so `sync(type, serverVersion, recordVersion)` afterwards delivers every change the snapshot
   * may have missed (a record changed during the scan can show up in both, the snapshot's copy
   * being the same or newer). Records come once each, by type, then by id (both in byte order);
   * memory stays bounded by the page size. `filter` narrows them (see {@link FilterExpression}); a filter that pins ids reads
   * only those records. A filter on a field that no type scanned can be filtered on is refused
   * with `ERR_DATABROKER_ARGUMENT`, which lists the fields that can.
   *
   * @example
   * ```ts
   * const { serverVersion, recordVersion, stream } = await broker.syncLatest('session', {
   *   $or: [{ id: 's1' }, { $index: '10.0.0.1' }],
   * });
   * for await (const session of stream) console.log(session.id, session.data);
   * ```
   */
  async syncLatest(type = '', filter?: FilterExpression, options?: CallOptions): Promise<LatestSnapshot<T>> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'syncLatest');
      if (typeof type !== 'string') throw argumentError('type must be a string (empty for every type)');
      if (type) checkName(type, 'type');
      const compiled = compileFilter(filter);
      const keys = this.#keys;
      let serverVersion: number | undefined;
      let recordVersion = 0;
      while (serverVersion === undefined) {
        const [reply] = await this.#read('syncLatest', [['HMGET', keys.meta, 'server', 'last']], signal);
        const [server, last] = arrayReply(reply, 'HMGET meta');
        recordVersion = integerReply(last, 'the stored last version') ?? 0;
        serverVersion = integerReply(server, 'the stored server version');
        if (serverVersion === undefined) await this.#serverVersion(signal);
      }
      let types = type ? [type] : await this.#listTypes(signal);
      if (compiled.types) types = types.filter((t) => compiled.types?.has(t));
      const indexable = new Map<string, ReadonlySet<string>>();
      if (compiled.dataFields.size > 0) {
        if (types.length > 0) {
          const [options] = await this.#read('syncLatest', [['HMGET', keys.options, ...types]], signal);
          arrayReply(options, 'HMGET options').forEach((raw, i) => {
            const t = types[i] as string;
            const parsed = this.#optionsOf(textReply(raw, 'HMGET options'), t, 'syncLatest');
            indexable.set(t, new Set(parsed?.indexableFields ?? []));
          });
        }
        const known = new Set<string>();
        for (const fields of indexable.values()) for (const field of fields) known.add(field);
        const unknown = [...compiled.dataFields].filter((field) => !known.has(field));
        if (unknown.length > 0 && types.length > 0) {
          throw argumentError(
            `the filter compares ${unknown.map((f) => `"${f}"`).join(', ')}, which ${unknown.length === 1 ? 'is' : 'are'} not an indexable field of ${type ? `type "${type}"` : 'any type scanned'}; the fields a filter can use are id, type, $index${known.size > 0 ? `, ${[...known].sort().join(', ')}` : ''} (add fields with setOptions(type, { indexableFields }))`,
          );
        }
      }
      const pages = compiled.ids
        ? this.#lookupPages(types, [...compiled.ids], compiled, indexable, serverVersion, signal)
        : this.#scanPages(types, compiled, indexable, serverVersion, signal);
      const stream = new LatestStream<T>(recordVersion, pages, (s) => this.#streams.delete(s), signal);
      this.#streams.add(stream);
      return { serverVersion, recordVersion, stream };
    } finally {
      leave();
    }
  }

  /**
   * Pages of a type-by-type scan of the index, in (type, id) order. Each round trip reads a page's
   * records and the next page's fields at once.
   */
  #scanPages(
    types: readonly string[],
    filter: CompiledFilter,
    indexable: ReadonlyMap<string, ReadonlySet<string>>,
    serverVersion: number,
    signal: AbortSignal | undefined,
  ): () => Promise<DataRecord<T>[] | undefined> {
    const keys = this.#keys;
    const sizer = new PageSizer(this.#batchSize);
    let typeIndex = 0;
    /** The fields of the next page, read ahead. */
    let ahead: Promise<{ type: string; fields: string[]; full: boolean }> | undefined;
    const fieldsAfter = (type: string, min: string, limit: number) => {
      const prefix = fieldPrefix(type);
      const max = `(${prefix.slice(0, -1)};`; // just after every field of the type (';' follows ':')
      const read = this.#read('syncLatest', [['ZRANGEBYLEX', keys.index, min, max, 'LIMIT', 0, limit]], signal).then(
        ([reply]) => {
          const fields = bytesArrayReply(reply, 'ZRANGEBYLEX index').map((b) => b.toString('utf8'));
          return { type, fields, full: fields.length >= limit };
        },
      );
      read.catch(() => {}); // awaited when its turn comes; a failure surfaces there
      return read;
    };
    const first = (type: string) => fieldsAfter(type, `[${fieldPrefix(type)}`, sizer.next());
    return async () => {
      for (;;) {
        if (!ahead) {
          const type = types[typeIndex];
          if (type === undefined) return undefined;
          ahead = first(type);
        }
        const { type, fields, full } = await ahead;
        ahead = undefined;
        if (fields.length === 0) {
          typeIndex++;
          continue;
        }
        // The records of this page, and (same round trip) the fields of the next.
        const entries = this.#read(
          'syncLatest',
          [
            ['HMGET', keys.records, ...fields],
            ['HGET', keys.meta, 'server'],
          ],
          signal,
        );
        if (full) ahead = fieldsAfter(type, `(${fields[fields.length - 1]}`, sizer.next());
        else {
          typeIndex++;
          const following = types[typeIndex];
          if (following !== undefined) ahead = first(following);
        }
        const [stored, server] = await entries;
        const current = integerReply(server, 'the stored server version');
        if (current !== serverVersion) throw invalidServerVersion(serverVersion, current, 'this snapshot');
        const records: DataRecord<T>[] = [];
        let bytes = 0;
        const list = arrayReply(stored, 'HMGET records');
        for (let i = 0; i < list.length; i++) {
          const raw = bytesReply(list[i], 'HMGET records');
          if (!raw) continue; // deleted since the index was read
          bytes += raw.length;
          let entry: Entry;
          try {
            entry = decodeEntry(raw);
          } catch (err) {
            this.#damaged(
              err,
              'syncLatest',
              `the record ${type}/${(fields[i] as string).slice(fieldPrefix(type).length)}`,
            );
            continue;
          }
          const record = this.#filtered(entry, filter, indexable);
          if (record) records.push(record);
        }
        sizer.observe(bytes, list.length);
        if (records.length > 0) return records;
      }
    };
  }

  /** Pages of point lookups, when the filter pins the ids. */
  #lookupPages(
    types: readonly string[],
    ids: readonly string[],
    filter: CompiledFilter,
    indexable: ReadonlyMap<string, ReadonlySet<string>>,
    serverVersion: number,
    signal: AbortSignal | undefined,
  ): () => Promise<DataRecord<T>[] | undefined> {
    let typeIndex = 0;
    return async () => {
      while (typeIndex < types.length) {
        const type = types[typeIndex++] as string;
        const found: DataRecord<T>[] = [];
        for (let at = 0; at < ids.length; at += LOOKUP_CHUNK) {
          const chunk = ids.slice(at, at + LOOKUP_CHUNK);
          const [stored, server] = await this.#read(
            'syncLatest',
            [
              ['HMGET', this.#keys.records, ...chunk.map((id) => recordField(type, id))],
              ['HGET', this.#keys.meta, 'server'],
            ],
            signal,
          );
          const current = integerReply(server, 'the stored server version');
          if (current !== serverVersion) throw invalidServerVersion(serverVersion, current, 'this snapshot');
          arrayReply(stored, 'HMGET records').forEach((raw, i) => {
            const bytes = bytesReply(raw, 'HMGET records');
            if (!bytes) return;
            let entry: Entry;
            try {
              entry = decodeEntry(bytes);
            } catch (err) {
              this.#damaged(err, 'syncLatest', `the record ${type}/${chunk[i]}`);
              return;
            }
            const record = this.#filtered(entry, filter, indexable);
            if (record) found.push(record);
          });
        }
        if (found.length > 0) return found.sort((a, b) => a.version - b.version);
      }
      return undefined;
    };
  }

  /** The record when it passes the filter; the data is decoded once, and only when needed. */
  #filtered(
    entry: Entry,
    filter: CompiledFilter,
    indexable: ReadonlyMap<string, ReadonlySet<string>>,
  ): DataRecord<T> | undefined {
    if (!filter.node) return this.#decodeSkipping(entry, 'syncLatest');
    let record: DataRecord<T> | undefined;
    let damaged = false;
    const fields = indexable.get(entry.type);
    let pass: boolean;
    try {
      pass = filter.test({
        type: entry.type,
        id: entry.id,
        view: () => {
          record ??= this.#toRecord(entry);
          return record.data === undefined ? undefined : this.#index(record.data);
        },
        indexable: (field) => fields?.has(field) ?? false,
      });
    } catch (err) {
      this.#damaged(err, 'syncLatest', `${entry.type}/${entry.id} at version ${entry.version}`);
      damaged = true;
      pass = false;
    }
    if (!pass || damaged) return undefined;
    return record ?? this.#decodeSkipping(entry, 'syncLatest');
  }

  #toRecord(entry: Entry): DataRecord<T> {
    let data: T | undefined;
    if (entry.data) {
      let bytes = entry.data;
      if (entry.encrypted) {
        const where = `${entry.type}/${entry.id} at version ${entry.version}`;
        if (!this.#cipher) {
          throw new DataBrokerError(
            'ERR_DATABROKER_WRONG_KEY',
            `the data of ${where} is encrypted, and this backend has no encryptionKey; give the key it was written with`,
          );
        }
        try {
          bytes = this.#cipher.open(bytes, Buffer.from(recordField(entry.type, entry.id), 'utf8'));
        } catch (err) {
          const e = err as DataBrokerError;
          throw new DataBrokerError(e.code, `${where}: ${e.message}`, { cause: err });
        }
      }
      try {
        data = this.#json ? (JSON.parse(bytes.toString('utf8')) as T) : this.#codec.decode(bytes);
      } catch (err) {
        throw new DataBrokerError(
          'ERR_DATABROKER_CODEC',
          `the codec could not decode the data of ${entry.type}/${entry.id} at version ${entry.version}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    const modifiedAt = new Date(entry.modifiedAt);
    if (entry.deletedAt !== undefined) {
      const deletedAt = new Date(entry.deletedAt);
      return data === undefined
        ? { type: entry.type, id: entry.id, version: entry.version, modifiedAt, deletedAt }
        : { type: entry.type, id: entry.id, version: entry.version, modifiedAt, deletedAt, data };
    }
    if (data === undefined) {
      throw corruptError(`the live record ${entry.type}/${entry.id} at version ${entry.version} has no data`);
    }
    return { type: entry.type, id: entry.id, version: entry.version, modifiedAt, data };
  }

  // ----------------------------------------------------------------------------------- maintenance

  /**
   * Removes changes written at or before `cutoff` from the change log (the background cleanup
   * does this with `now - expiryMs`). A later `sync` from a version whose changes were removed
   * fails with `ERR_DATABROKER_INVALID_RECORD_VERSION`. Live records stay. Resolves to the number
   * of changes removed.
   *
   * @example
   * ```ts
   * await broker.removeChangesBefore(new Date(Date.now() - 3_600_000)); // keep one hour
   * ```
   */
  async removeChangesBefore(cutoff: Date, options?: CallOptions): Promise<number> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'removeChangesBefore');
      if (!(cutoff instanceof Date) || !Number.isFinite(cutoff.getTime()))
        throw argumentError('cutoff must be a valid Date');
      return this.#removeChanges({ at: cutoff.getTime() }, signal);
    } finally {
      leave();
    }
  }

  async #removeChanges(cutoff: { at: number } | { age: number }, signal?: AbortSignal): Promise<number> {
    const keys = this.#keys;
    const page = 256;
    const modifiedAt = (member: Buffer) =>
      // Unreadable: no reader can use it, let it go.
      member.length >= 18 && member[0] === 1 ? member.readDoubleBE(10) : Number.NEGATIVE_INFINITY;
    let total = 0;
    for (;;) {
      const removed = await this.#runner.run({
        label: 'change-log cleanup',
        contended: true,
        signal,
        watch: [keys.meta],
        // The oldest change first: when it has not expired, the pass is one small read.
        reads: [['HMGET', keys.meta, 'server', 'trimmed'], ['TIME'], ['ZRANGE', keys.changes, 0, 0]],
        plan: async (replies, read) => {
          const [server, trimmedReply] = arrayReply(replies[0], 'HMGET meta');
          if (integerReply(server, 'the stored server version') === undefined) return { result: 0 };
          const now = timeReply(replies[1]);
          const limit = 'at' in cutoff ? cutoff.at : now - cutoff.age;
          const [oldest] = bytesArrayReply(replies[2], 'ZRANGE changes');
          if (!oldest || modifiedAt(oldest) > limit) return { result: 0 };
          const [more] = await read([['ZRANGE', keys.changes, 0, page - 1, 'WITHSCORES']]);
          const pairs = scoredPairs(more, 'ZRANGE changes');
          let count = 0;
          let upTo = 0;
          for (let i = 0; i < pairs.length; i += 2) {
            const member = bytesReply(pairs[i], 'ZRANGE changes') ?? Buffer.alloc(0);
            if (modifiedAt(member) > limit) break;
            count++;
            upTo = scoreReply(pairs[i + 1], 'ZRANGE changes') ?? upTo;
          }
          if (count === 0) return { result: 0 };
          const trimmed = integerReply(trimmedReply, 'the stored trimmed version') ?? 0;
          const writes: Command[] = [['ZREMRANGEBYSCORE', keys.changes, '-inf', upTo]];
          if (upTo > trimmed) writes.unshift(['HSET', keys.meta, 'trimmed', upTo]);
          return { writes, committed: () => count };
        },
      });
      total += removed;
      if (removed < page) return total;
    }
  }

  /**
   * Deletes every record, change, type and option of the backend and gives it a new server
   * version, so that every `sync` fails with `ERR_DATABROKER_INVALID_SERVER_VERSION` and clients
   * take a new snapshot. Leases stay.
   *
   * @example
   * ```ts
   * await broker.clear();
   * ```
   */
  async clear(options?: CallOptions): Promise<void> {
    this.#checkOpen();
    const leave = this.#enter();
    try {
      const signal = checkCallOptions(options, 'clear');
      const keys = this.#keys;
      const serverVersion = randomServerVersion();
      const lastVersion = await this.#runner.run({
        label: 'clear',
        contended: true,
        signal,
        watch: [keys.meta, keys.types],
        reads: [
          ['SMEMBERS', keys.types],
          ['HGET', keys.meta, 'last'],
        ],
        plan: (replies) => {
          const types = bytesArrayReply(replies[0], 'SMEMBERS types').map(String);
          const last = integerReply(replies[1], 'the stored last version') ?? 0;
          return {
            writes: [
              ['DEL', keys.records, keys.index, keys.changes, keys.types, keys.options, keys.meta, keys.commits],
              ...types.map((t): Command => ['DEL', keys.recentKey(t)]),
              ['HSET', keys.meta, 'server', serverVersion, 'last', last],
              ['PUBLISH', keys.channel, versionMessage(serverVersion, last)],
            ],
            committed: () => last,
          };
        },
      });
      this.#notifier.notify(lastVersion, serverVersion);
    } finally {
      leave();
    }
  }

  /**
   * Closes the backend: it stops taking work (new calls fail with `ERR_DATABROKER_CLOSED`), ends
   * open streams (a waiting `for await` throws `ERR_DATABROKER_CLOSED`), stops the background
   * cleanup, then lets the puts already queued commit and the calls in flight finish, within the
   * bound (`timeoutMs`, 5 000 by default, or until `signal` fires). What is still unfinished then
   * is abandoned: its callers get `ERR_DATABROKER_CLOSED`, and `close()` rejects with
   * `ERR_DATABROKER_ABANDONED`, whose `abandoned` counts it (`{ puts, records, calls }`; a put
   * that was committing may still have been applied). It closes the backend's own connections;
   * the client given to the constructor stays open. Calling it again returns the same outcome.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', async () => {
   *   await broker.close({ timeoutMs: 2000 }).catch((err) => console.error(err.abandoned, err.message));
   *   await redis.quit();
   * });
   * ```
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      return Promise.reject(argumentError('close() takes { timeoutMs } or { signal }'));
    }
    try {
      if (options) checkKnown(options, new Set(['timeoutMs', 'signal']), 'close');
      positiveInteger(options?.timeoutMs, 'close: timeoutMs', 0, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#closing = this.#close(options?.timeoutMs ?? DEFAULT_CLOSE_MS, options?.signal);
    return this.#closing;
  }

  async #close(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    this.#closed = true;
    clearInterval(this.#cleanupTimer);
    for (const stream of [...this.#streams]) stream.fail(this.#closedError());
    this.#notifier.close();
    // Drain: the queued puts commit, the calls in flight finish, within the bound.
    const drained = Promise.all([this.#committer.idle(), this.#idle()]);
    const drainedOrNot = new AbortController();
    const bound = signal ? AbortSignal.any([signal, drainedOrNot.signal]) : drainedOrNot.signal;
    await Promise.race([drained, delay(timeoutMs, { signal: bound })]);
    drainedOrNot.abort(); // clears the bound's timer when the drain won
    const calls = this.#calls;
    const abandoned = this.#committer.abandon(this.#closedError(), true);
    this.#link.close();
    if (abandoned.puts === 0 && calls === 0) return;
    const parts: string[] = [];
    if (abandoned.puts > 0) {
      parts.push(
        `${abandoned.puts} put${abandoned.puts === 1 ? '' : 's'} (${abandoned.records} record${abandoned.records === 1 ? '' : 's'}) not known to be committed`,
      );
    }
    if (calls > 0) parts.push(`${calls} call${calls === 1 ? '' : 's'} still waiting for Redis`);
    throw new DataBrokerError(
      'ERR_DATABROKER_ABANDONED',
      `close() gave up after ${signal?.aborted ? 'its signal fired' : `${timeoutMs} ms`}: ${parts.join(' and ')}; their callers got ERR_DATABROKER_CLOSED (a put that was committing may have been applied: read it to find out)`,
      { abandoned: { puts: abandoned.puts, records: abandoned.records, calls } },
    );
  }

  /** Closes with the default bound. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Counts a call in flight until the returned function is called. */
  #enter(): () => void {
    this.#calls++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.#calls === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    };
  }

  /** Resolves when no call is in flight. */
  #idle(): Promise<void> {
    if (this.#calls === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // ------------------------------------------------------------------------------------- plumbing

  #closedError(): DataBrokerError {
    return new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  #subscriberFailed(err: unknown): void {
    const message = `@redis-events/databroker: the Pub/Sub wake-ups of "${this.#keys.name}" are not available (${(err as Error)?.message ?? String(err)}); waiting syncs poll every ${this.#pollIntervalMs} ms meanwhile`;
    if (this.#subscriberTrouble++ === 0) this.#logger.warn({ backend: this.#keys.name, err }, message);
    else this.#logger.debug({ backend: this.#keys.name, err }, message);
  }

  /** The server version, created when missing (a first use, or after a flush). */
  async #serverVersion(signal: AbortSignal | undefined): Promise<number> {
    const key = this.#keys.meta;
    for (;;) {
      const [reply] = await this.#read('server version', [['HGET', key, 'server']], signal);
      const current = integerReply(reply, 'the stored server version');
      if (current !== undefined) return current;
      await this.#read('server version', [['HSETNX', key, 'server', randomServerVersion()]], signal);
    }
  }

  /** Commands in one pipeline on the backend's connection, retried through connection trouble. */
  #read(what: string, commands: readonly Command[], signal: AbortSignal | undefined): Promise<unknown[]> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return this.#runner.read(what, commands, signal);
  }
}
