import { randomBytes } from 'node:crypto';
import type { RecordCodec } from './codec.ts';
import { jsonCodec } from './codec.ts';
import {
  type DedicatedConnection as Connection,
  DedicatedConnection,
  isCluster,
  keyPrefixOf,
  type RedisClient,
} from './connection.ts';
import { createDataCipher, type DataCipher, type EncryptionKey } from './encryption.ts';
import {
  decodeEntry,
  type Entry,
  type EntryBody,
  encodeBody,
  encodeEntry,
  entryFlags,
  MAX_NAME_BYTES,
  readHeader,
  recordField,
  tombstoneOf,
} from './entry.ts';
import { argumentError, corruptError, DataBrokerError } from './errors.ts';
import { type CompiledFilter, compileFilter, type FilterExpression } from './filter.ts';
import { type KeySpace, keySpace } from './keys.ts';
import { type ChangeNotifier, LocalNotifier, PubSubNotifier, pushMessage } from './notifier.ts';
import type { DataRecord, JsonValue, PutResult, RecordInput, TypeOptions, Versions } from './records.ts';
import {
  arrayReply,
  bytesArrayReply,
  bytesReply,
  integerReply,
  scoredMembersReply,
  scoreReply,
  textReply,
  timeReply,
} from './replies.ts';
import { PUT_SCRIPT, putScriptCall, type ScriptRecord } from './script.ts';
import { type BaseStream, LatestStream, type RecordStream, SyncStream } from './streams.ts';
import {
  type Command,
  classifyError,
  type RetryOptions,
  redisError,
  type TransactionJob,
  TransactionRunner,
  type WritePlan,
} from './transaction.ts';

type Execute = <R>(job: TransactionJob<R>) => Promise<R>;

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
  /** Conflict retries of the optimistic transactions. */
  readonly retry?: RetryOptions | undefined;
  /** How long to wait for Redis to (re)connect before failing an operation, in ms. Default 10 000. */
  readonly timeoutMs?: number | undefined;
  /** Changes read per round trip by `sync`, records by `syncLatest`. Default 1 000. */
  readonly batchSize?: number | undefined;
  /** How often a waiting `sync` reads even without a notification, in ms. Default 5 000. */
  readonly pollIntervalMs?: number | undefined;
  /**
   * `pubsub` (default) wakes waiting streams with a Pub/Sub notification from every commit, on a
   * connection duplicated from the client. `poll` uses no Pub/Sub: streams of other processes see
   * changes at the next poll.
   */
  readonly wakeUp?: 'pubsub' | 'poll' | undefined;
  /**
   * What filters see of a record's data (`$index` and indexable fields). Default: the data itself.
   * Give one for codecs whose data is not a plain object.
   */
  readonly index?: ((data: T) => unknown) | undefined;
  /** Most records in one transaction when concurrent puts are committed together. Default 1 000. */
  readonly maxBatchRecords?: number | undefined;
  /** Called with errors of the background change-log cleanup. Default: a process warning. */
  readonly onBackgroundError?: ((err: Error) => void) | undefined;
  /**
   * Commit puts with a Lua script instead of WATCH/MULTI: one atomic call, never a conflict, so
   * many writers in many processes do not retry. Needs `EVALSHA`/`EVAL` (and `LPUSH`, `LTRIM`,
   * `LRANGE`) in the ACL. Default false.
   */
  readonly scripting?: boolean | undefined;
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

interface PendingPut<T> {
  readonly inputs: readonly RecordInput<T>[];
  readonly bodies: readonly EntryBody[];
  readonly resolve: (result: PutResult<T>) => void;
  readonly reject: (err: unknown) => void;
}

interface Write {
  readonly body: EntryBody;
  readonly deletedAt: number | undefined;
  readonly version: number;
  readonly entry: Buffer;
  readonly field: string;
}

const DEFAULT_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** How many recently written types a put prepares the options of, for the next put. */
const HOT_TYPES = 32;
const MAX_SERVER_VERSION = 2 ** 53 - 1;

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
  if (Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES)
    throw argumentError(`${what} is longer than ${MAX_NAME_BYTES} bytes`);
  return value;
}

function randomServerVersion(): number {
  // 53 random bits, never 0: any value a JavaScript number holds exactly.
  const bytes = randomBytes(8);
  const value = (bytes.readUInt32BE(0) & 0x1fffff) * 2 ** 32 + bytes.readUInt32BE(4);
  return value === 0 || value > MAX_SERVER_VERSION ? 1 : value;
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

/**
 * A store of versioned records on Redis whose every change is logged, so that clients can take a
 * consistent snapshot (`syncLatest`) and then follow every change after it (`sync`), in order,
 * without missing one. A TypeScript port of the Redis backend of Pomerium's databroker, with its
 * known defects fixed (see the README).
 *
 * Give it an ioredis 6 `Redis` (standalone or Sentinel) or `Cluster`; it reads through that client
 * and opens two connections of its own, duplicated from it: one for transactions, one for Pub/Sub
 * wake-ups (when a stream first waits). `close()` ends those, never your client.
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
export class DataBroker<T = JsonValue> {
  readonly #client: RedisClient;
  readonly #keys: KeySpace;
  readonly #codec: RecordCodec<T>;
  readonly #cipher: DataCipher | undefined;
  readonly #index: (data: T) => unknown;
  readonly #expiryMs: number;
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #pollIntervalMs: number;
  readonly #maxBatchRecords: number;
  readonly #scripting: boolean;
  readonly #onBackgroundError: (err: Error) => void;
  readonly #connection: Connection;
  readonly #runner: TransactionRunner;
  /** Cluster reads go to the slot's master on a connection of their own (see #pipeline). */
  readonly #clusterReads: { connection: Connection; runner: TransactionRunner } | undefined;
  readonly #notifier: ChangeNotifier;
  readonly #streams = new Set<BaseStream<T>>();
  #pending: PendingPut<T>[] = [];
  /** Types written lately, most recent first. */
  #hotTypes: string[] = [];
  #flushQueued = false;
  #cleanupTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(client: RedisClient, options: DataBrokerOptions<T> = {}) {
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof (client as { pipeline?: unknown }).pipeline !== 'function'
    ) {
      throw argumentError('DataBroker needs an ioredis 6 Redis or Cluster client as its first argument');
    }
    const prefix = keyPrefixOf(client);
    if (prefix.includes('{') && isCluster(client)) {
      throw argumentError(
        `the client's keyPrefix "${prefix}" holds a "{": it would replace the backend's hash tag and spread its keys over several cluster slots`,
      );
    }
    this.#client = client;
    this.#keys = keySpace(options.name ?? 'databroker', prefix);
    this.#codec = options.codec ?? (jsonCodec as unknown as RecordCodec<T>);
    if (typeof this.#codec?.encode !== 'function' || typeof this.#codec.decode !== 'function') {
      throw argumentError('codec must have encode(data) and decode(bytes) functions');
    }
    this.#cipher =
      options.encryptionKey === undefined ? undefined : createDataCipher(options.encryptionKey, options.decryptionKeys);
    if (options.encryptionKey === undefined && options.decryptionKeys?.length) {
      throw argumentError('decryptionKeys need an encryptionKey: give the current key as encryptionKey');
    }
    this.#index = options.index ?? ((data: T) => data);
    this.#expiryMs = positiveInteger(options.expiryMs, 'expiryMs', DEFAULT_EXPIRY_MS, 0);
    this.#timeoutMs = positiveInteger(options.timeoutMs, 'timeoutMs', 10_000);
    this.#batchSize = positiveInteger(options.batchSize, 'batchSize', 1_000);
    this.#pollIntervalMs = positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 5_000);
    this.#maxBatchRecords = positiveInteger(options.maxBatchRecords, 'maxBatchRecords', 1_000);
    if (options.scripting !== undefined && typeof options.scripting !== 'boolean') {
      throw argumentError(`scripting must be true or false, not ${String(options.scripting)}`);
    }
    this.#scripting = options.scripting ?? false;
    const retry = options.retry ?? {};
    positiveInteger(retry.maxAttempts, 'retry.maxAttempts', 100);
    positiveInteger(retry.initialDelayMs, 'retry.initialDelayMs', 1, 0);
    positiveInteger(retry.maxDelayMs, 'retry.maxDelayMs', 50, 0);
    if (options.wakeUp !== undefined && options.wakeUp !== 'pubsub' && options.wakeUp !== 'poll') {
      throw argumentError(`wakeUp must be "pubsub" or "poll", not ${String(options.wakeUp)}`);
    }
    this.#onBackgroundError =
      options.onBackgroundError ??
      ((err) => process.emitWarning(`@redis-events/databroker change-log cleanup failed: ${err.message}`));
    this.#connection = new DedicatedConnection(
      client,
      this.#keys.slot,
      `databroker ${this.#keys.name}`,
      this.#timeoutMs,
    );
    this.#runner = new TransactionRunner(this.#connection, retry, this.#timeoutMs, this.#keys.turn);
    if (isCluster(client)) {
      const connection = new DedicatedConnection(
        client,
        this.#keys.slot,
        `databroker ${this.#keys.name} reads`,
        this.#timeoutMs,
      );
      this.#clusterReads = { connection, runner: new TransactionRunner(connection, retry, this.#timeoutMs) };
    }
    this.#notifier = options.wakeUp === 'poll' ? new LocalNotifier() : new PubSubNotifier(client, this.#keys.channel);
    if (this.#expiryMs > 0) {
      const interval = positiveInteger(options.cleanupIntervalMs, 'cleanupIntervalMs', 60_000);
      this.#cleanupTimer = setInterval(() => {
        this.#removeChanges((now) => now - this.#expiryMs).catch((err: unknown) => {
          if (!this.#closed) this.#onBackgroundError(err instanceof Error ? err : new Error(String(err)));
        });
      }, interval);
      this.#cleanupTimer.unref();
    }
  }

  /** The keys this backend uses, for tools and for the ACL: every one starts with `{name}:`. */
  get keys(): KeySpace {
    return this.#keys;
  }

  // ---------------------------------------------------------------------------------------- writes

  /**
   * Writes records, and deletes those with `deletedAt`, in one atomic transaction. Each gets a new
   * version: unique, increasing in input order, and greater than every version before, also with
   * many writers on many connections. Concurrent puts of this backend are committed together.
   * Deleting a record that does not exist still logs the delete. Then the capacity of the types
   * written is enforced.
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
   * `ERR_DATABROKER_CLOSED`.
   */
  async put(records: readonly RecordInput<T>[]): Promise<PutResult<T>> {
    this.#checkOpen();
    if (!Array.isArray(records)) throw argumentError('put() takes an array of records');
    const bodies = records.map((record, i) => this.#encodeInput(record, i));
    if (bodies.length === 0) return { serverVersion: await this.#serverVersion(), records: [] };
    return new Promise<PutResult<T>>((resolve, reject) => {
      // A copy: the caller may reuse its array before the commit.
      this.#pending.push({ inputs: [...records], bodies, resolve, reject });
      this.#scheduleFlush();
    });
  }

  #encodeInput(record: RecordInput<T>, index: number): EntryBody {
    const where = `records[${index}]`;
    if (typeof record !== 'object' || record === null) throw argumentError(`${where} must be an object`);
    const type = checkName(record.type, `${where}.type`);
    const id = checkName(record.id, `${where}.id`);
    const { deletedAt, data } = record;
    if (deletedAt !== undefined && (!(deletedAt instanceof Date) || !Number.isFinite(deletedAt.getTime()))) {
      throw argumentError(`${where}.deletedAt must be a valid Date (or left out to write the record)`);
    }
    if (deletedAt === undefined && data === undefined) {
      throw argumentError(`${where} has no data: give data, or deletedAt to delete the record`);
    }
    let bytes: Uint8Array | undefined;
    if (data !== undefined) {
      try {
        bytes = this.#codec.encode(data);
      } catch (err) {
        throw new DataBrokerError(
          'ERR_DATABROKER_CODEC',
          `${where} (${type}/${id}): the codec could not encode its data: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (!(bytes instanceof Uint8Array)) {
        throw new DataBrokerError('ERR_DATABROKER_CODEC', `${where}: the codec's encode() must return a Uint8Array`);
      }
      if (this.#cipher) bytes = this.#cipher.seal(bytes, Buffer.from(recordField(type, id), 'utf8'));
    }
    return encodeBody(type, id, bytes, this.#cipher !== undefined);
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    this.#runner
      .exclusive(async (execute) => {
        this.#flushQueued = false;
        await this.#flush(execute);
      })
      .catch(() => {}); // every put of the batch got the error
  }

  async #flush(execute: Execute): Promise<void> {
    const batch: PendingPut<T>[] = [];
    let count = 0;
    while (this.#pending.length > 0) {
      const next = this.#pending[0] as PendingPut<T>;
      if (batch.length > 0 && count + next.bodies.length > this.#maxBatchRecords) break;
      batch.push(next);
      count += next.bodies.length;
      this.#pending.shift();
    }
    if (this.#pending.length > 0) this.#scheduleFlush();
    if (batch.length === 0) return;
    if (this.#closed) {
      for (const put of batch) put.reject(this.#closedError());
      return;
    }
    try {
      const results = await this.#commitPuts(batch, execute);
      for (const [i, put] of batch.entries()) put.resolve(results[i] as PutResult<T>);
    } catch (err) {
      for (const put of batch) put.reject(err);
    }
  }

  /** One transaction for several puts; then capacity enforcement for the types that have one. */
  async #commitPuts(batch: readonly PendingPut<T>[], execute: Execute): Promise<PutResult<T>[]> {
    const keys = this.#keys;
    const bodies = batch.flatMap((put) => put.bodies);
    const deletedAts = batch.flatMap((put) => put.inputs.map((input) => input.deletedAt?.getTime()));
    const types = [...new Set(bodies.map((b) => b.type))];
    let capped: string[] = [];
    const label = `put of ${bodies.length} record${bodies.length === 1 ? '' : 's'}`;
    if (this.#scripting) {
      const scripted = await this.#commitScripted(label, bodies, deletedAts, types);
      return this.#afterCommit(batch, scripted, scripted.capped, execute);
    }
    const watch = [keys.serverVersion, keys.lastVersion, keys.options];
    // The next put is likely to write the types written lately: read their options in advance.
    this.#hotTypes = [...new Set([...types, ...this.#hotTypes])].slice(0, HOT_TYPES);
    const hot = this.#hotTypes;
    const committed = await execute({
      label,
      contended: true,
      watch,
      reads: [['GET', keys.serverVersion], ['GET', keys.lastVersion], ['TIME'], ['HMGET', keys.options, ...types]],
      prepare: {
        key: `put\n${hot.join('\n')}`,
        watch,
        reads: [['GET', keys.serverVersion], ['GET', keys.lastVersion], ['TIME'], ['HMGET', keys.options, ...hot]],
      },
      fromPrepared: (prepared) => {
        if (!prepared.key.startsWith('put\n')) return undefined;
        const known = prepared.key.slice(4).split('\n');
        const at = types.map((t) => known.indexOf(t));
        if (at.some((i) => i < 0)) return undefined;
        const options = arrayReply(prepared.replies[3], 'HMGET options');
        return [prepared.replies[0], prepared.replies[1], prepared.replies[2], at.map((i) => options[i])];
      },
      plan: (replies, _read, ageMs): WritePlan<{ serverVersion: number; writes: Write[] }> => {
        const stored = integerReply(replies[0], 'GET server_version');
        const serverVersion = stored ?? randomServerVersion();
        const last = integerReply(replies[1], 'GET last_version') ?? 0;
        // The server's clock when the replies were read, moved on by the time since.
        const now = timeReply(replies[2]) + Math.floor(ageMs);
        const options = arrayReply(replies[3], 'HMGET options');
        capped = types.filter(
          (t, i) => parseOptions(textReply(options[i], 'HMGET options'), t)?.capacity !== undefined,
        );
        const writes: Write[] = bodies.map((body, i) => {
          const version = last + 1 + i;
          const deletedAt = deletedAts[i];
          return {
            body,
            deletedAt,
            version,
            entry: encodeEntry(body, version, now, deletedAt),
            field: recordField(body.type, body.id),
          };
        });
        const lastVersion = last + writes.length;
        const commands: Command[] = [];
        if (stored === undefined) commands.push(['SET', keys.serverVersion, serverVersion]);
        commands.push(...this.#recordCommands(writes));
        commands.push(['SADD', keys.types, ...types]);
        commands.push(['SET', keys.lastVersion, lastVersion]);
        const push = pushMessage(
          serverVersion,
          writes.map((w) => w.entry),
          lastVersion,
        );
        commands.push(['PUBLISH', keys.channel, push]);
        const first = writes[0] as Write;
        return {
          writes: commands,
          committed: () => ({ serverVersion, writes }),
          applied: async (read) => {
            const [found] = await read([['ZRANGEBYSCORE', keys.changes, first.version, first.version]]);
            return bytesArrayReply(found, 'ZRANGEBYSCORE changes').some((member) => member.equals(first.entry));
          },
        };
      },
    });
    return this.#afterCommit(batch, committed, capped, execute);
  }

  /** The Lua put (`scripting: true`): one atomic script per batch, no WATCH, no conflicts. */
  async #commitScripted(
    label: string,
    bodies: readonly EntryBody[],
    deletedAts: readonly (number | undefined)[],
    types: readonly string[],
  ): Promise<{ serverVersion: number; writes: Write[]; capped: string[] }> {
    const keys = this.#keys;
    const records: ScriptRecord[] = bodies.map((body, i) => ({
      body,
      field: recordField(body.type, body.id),
      flags: entryFlags(body, deletedAts[i] !== undefined),
      deletedAt: deletedAts[i],
    }));
    const token = randomBytes(12).toString('hex');
    const call = putScriptCall(keys, records, randomServerVersion(), token);
    // The script packs the same header as encodeEntry: rebuilding the entries here gives the bytes it stored.
    const writesOf = (last: number, now: number): Write[] =>
      records.map((r, i) => {
        const version = last + 1 + i;
        return {
          body: r.body,
          deletedAt: r.deletedAt,
          version,
          entry: encodeEntry(r.body, version, now, r.deletedAt),
          field: r.field,
        };
      });
    const cappedOf = (options: unknown): string[] => {
      const list = arrayReply(options, 'HMGET options');
      return types.filter((t, i) => parseOptions(textReply(list[i], 'HMGET options'), t)?.capacity !== undefined);
    };
    return this.#runner.script({
      label,
      script: PUT_SCRIPT,
      keys: call.keys,
      args: call.args,
      done: (reply) => {
        const [server, last, now, options] = arrayReply(reply, 'put script');
        const serverVersion = integerReply(server, 'put script') as number;
        return {
          serverVersion,
          writes: writesOf(integerReply(last, 'put script') ?? 0, integerReply(now, 'put script') ?? 0),
          capped: cappedOf(options),
        };
      },
      applied: async (read) => {
        const [commits, server, options] = await read([
          ['LRANGE', keys.commits, 0, -1],
          ['GET', keys.serverVersion],
          ['HMGET', keys.options, ...types],
        ]);
        for (const item of bytesArrayReply(commits, 'LRANGE commits')) {
          const [mine, last, now] = item.toString().split(' ');
          if (mine !== token) continue;
          return {
            serverVersion: integerReply(server, 'GET server_version') as number,
            writes: writesOf(Number(last), Number(now)),
            capped: cappedOf(options),
          };
        }
        return undefined;
      },
    });
  }

  /** After a commit: local wake-ups, capacity enforcement, and the results of each put. */
  async #afterCommit(
    batch: readonly PendingPut<T>[],
    committed: { serverVersion: number; writes: readonly Write[] },
    capped: readonly string[],
    execute: Execute,
  ): Promise<PutResult<T>[]> {
    const lastVersion = (committed.writes[committed.writes.length - 1] as Write).version;
    this.#notifier.notify(lastVersion, {
      serverVersion: committed.serverVersion,
      entries: committed.writes.map((w) => w.entry),
    });
    if (capped.length > 0) await this.#enforceCapacity(capped, execute);
    const results: PutResult<T>[] = [];
    let at = 0;
    for (const put of batch) {
      const records = put.inputs.map((input, i) => {
        const write = committed.writes[at + i] as Write;
        return this.#recordOf(input, write);
      });
      at += put.inputs.length;
      results.push({ serverVersion: committed.serverVersion, records });
    }
    return results;
  }

  #recordOf(input: RecordInput<T>, write: Write): DataRecord<T> {
    const base = {
      type: input.type,
      id: input.id,
      version: write.version,
      modifiedAt: new Date(readHeader(write.entry).modifiedAt),
    };
    if (input.deletedAt !== undefined) {
      return input.data === undefined
        ? { ...base, deletedAt: new Date(input.deletedAt.getTime()) }
        : { ...base, deletedAt: new Date(input.deletedAt.getTime()), data: input.data };
    }
    return { ...base, data: input.data };
  }

  /**
   * The commands that apply writes to the records hash, the type indexes and the change log. The
   * final state of each record decides the hash and the indexes; the log gets every change.
   */
  #recordCommands(writes: readonly Write[]): Command[] {
    const keys = this.#keys;
    const final = new Map<string, Write>();
    for (const write of writes) final.set(write.field, write);
    const live: (string | Buffer)[] = [];
    const gone: string[] = [];
    const byType = new Map<string, { add: (string | number)[]; remove: string[] }>();
    for (const write of final.values()) {
      let index = byType.get(write.body.type);
      if (!index) {
        index = { add: [], remove: [] };
        byType.set(write.body.type, index);
      }
      if (write.deletedAt === undefined) {
        live.push(write.field, write.entry);
        index.add.push(write.version, write.body.id);
      } else {
        gone.push(write.field);
        index.remove.push(write.body.id);
      }
    }
    const commands: Command[] = [];
    if (live.length > 0) commands.push(['HSET', keys.records, ...live]);
    if (gone.length > 0) commands.push(['HDEL', keys.records, ...gone]);
    for (const [type, index] of byType) {
      if (index.add.length > 0) commands.push(['ZADD', keys.typeKey(type), ...index.add]);
      if (index.remove.length > 0) commands.push(['ZREM', keys.typeKey(type), ...index.remove]);
    }
    const log: (string | number | Buffer)[] = [];
    for (const write of writes) log.push(write.version, write.entry);
    commands.push(['ZADD', keys.changes, ...log]);
    return commands;
  }

  /** Deletes the least recently modified records of types over their capacity, as tombstones. */
  async #enforceCapacity(types: readonly string[], execute: Execute): Promise<void> {
    const keys = this.#keys;
    const result = await execute({
      label: `capacity of ${types.join(', ')}`,
      contended: true,
      watch: [keys.serverVersion, keys.lastVersion, keys.options],
      reads: [
        ['GET', keys.serverVersion],
        ['GET', keys.lastVersion],
        ['TIME'],
        ['HMGET', keys.options, ...types],
        ...types.map((t): Command => ['ZCARD', keys.typeKey(t)]),
      ],
      plan: async (replies, read) => {
        if (integerReply(replies[0], 'GET server_version') === undefined) return { result: 0 }; // flushed
        const last = integerReply(replies[1], 'GET last_version') ?? 0;
        const now = timeReply(replies[2]);
        const options = arrayReply(replies[3], 'HMGET options');
        const over: { type: string; excess: number }[] = [];
        types.forEach((type, i) => {
          const capacity = parseOptions(textReply(options[i], 'HMGET options'), type)?.capacity;
          const count = integerReply(replies[4 + i], 'ZCARD') ?? 0;
          if (capacity !== undefined && count > capacity) over.push({ type, excess: count - capacity });
        });
        if (over.length === 0) return { result: 0 };
        const victims = await read(
          over.map(({ type, excess }): Command => ['ZRANGE', keys.typeKey(type), 0, excess - 1]),
        );
        const ids = over.map(({ type }, i) => ({ type, ids: bytesArrayReply(victims[i], 'ZRANGE').map(String) }));
        const fields = ids.flatMap(({ type, ids }) => ids.map((id) => recordField(type, id)));
        const [storedReply] = await read([['HMGET', keys.records, ...fields]]);
        const stored = arrayReply(storedReply, 'HMGET records').map((r) => bytesReply(r, 'HMGET records'));
        const commands: Command[] = [['HDEL', keys.records, ...fields]];
        for (const { type, ids: list } of ids) commands.push(['ZREM', keys.typeKey(type), ...list]);
        const log: (string | number | Buffer)[] = [];
        let version = last;
        for (const entry of stored) {
          if (!entry) continue; // indexed but not stored: only the index entry goes
          version++;
          log.push(version, tombstoneOf(entry, version, now));
        }
        if (log.length > 0) {
          commands.push(['ZADD', keys.changes, ...log]);
          commands.push(['SET', keys.lastVersion, version]);
          commands.push(['PUBLISH', keys.channel, version]);
        }
        return { writes: commands, committed: () => version };
      },
    });
    if (result > 0) this.#notifier.notify(result);
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
  async setOptions(type: string, options: TypeOptions): Promise<void> {
    this.#checkOpen();
    checkName(type, 'type');
    const normalized = normalizeOptions(options, 'options');
    const empty = normalized.capacity === undefined && normalized.indexableFields === undefined;
    await this.#call(
      `setOptions of ${type}`,
      empty ? ['HDEL', this.#keys.options, type] : ['HSET', this.#keys.options, type, JSON.stringify(normalized)],
    );
    if (normalized.capacity !== undefined) {
      await this.#runner.exclusive((execute) => this.#enforceCapacity([type], execute));
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
  async getOptions(type: string): Promise<TypeOptions | undefined> {
    this.#checkOpen();
    checkName(type, 'type');
    return parseOptions(
      textReply(await this.#call('getOptions', ['HGET', this.#keys.options, type]), 'HGET options'),
      type,
    );
  }

  /**
   * Acquires, renews or releases a lease: a named lock held by one `id` for `ttlMs`. With
   * `ttlMs > 0` it acquires a free (or expired) lease or renews one `id` already holds, and
   * resolves true; it resolves false when another id holds it. With `ttlMs <= 0` the holder
   * releases it (resolves false: the lease is no longer held). Acquisition is one atomic
   * `SET NX PX`; renewal and release check the holder in a transaction, so two ids never both hold
   * a lease.
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
  async lease(name: string, id: string, ttlMs: number): Promise<boolean> {
    this.#checkOpen();
    checkName(name, 'lease name');
    checkName(id, 'lease id');
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs))
      throw argumentError(`ttlMs must be a number of ms, not ${String(ttlMs)}`);
    const key = this.#keys.leaseKey(name);
    const ms = Math.ceil(Math.min(ttlMs, 2 ** 47));
    if (ms > 0) {
      const reply = await this.#call(`lease ${name}`, ['SET', key, id, 'NX', 'PX', ms]);
      if (reply !== null && reply !== undefined) return true;
    }
    return this.#runner.run({
      label: `lease ${name}`,
      watch: [key],
      reads: [['GET', key]],
      plan: (replies) => {
        const holder = textReply(replies[0], 'GET lease');
        if (holder !== undefined && holder !== id) return { result: false };
        if (ms <= 0) {
          if (holder === undefined) return { result: false };
          return { writes: [['DEL', key]], committed: () => false };
        }
        return { writes: [['SET', key, id, 'PX', ms]], committed: () => true };
      },
    });
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
  async get(type: string, id: string): Promise<DataRecord<T> | undefined> {
    this.#checkOpen();
    checkName(type, 'type');
    checkName(id, 'id');
    const reply = await this.#call('get', ['HGET', this.#keys.records, recordField(type, id)]);
    const bytes = bytesReply(reply, 'HGET records');
    if (!bytes) return undefined;
    const entry = decodeEntry(bytes);
    if (entry.type !== type || entry.id !== id) {
      throw corruptError(`the record stored for ${type}/${id} says it is ${entry.type}/${entry.id}`);
    }
    return this.#toRecord(entry);
  }

  /**
   * Every type ever written (deletes included), in ascending byte order.
   *
   * @example
   * ```ts
   * for (const type of await broker.listTypes()) console.log(type);
   * ```
   */
  async listTypes(): Promise<string[]> {
    this.#checkOpen();
    const reply = await this.#call('listTypes', ['SMEMBERS', this.#keys.types]);
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
  async versions(): Promise<Versions> {
    this.#checkOpen();
    const keys = this.#keys;
    for (;;) {
      const [last, trimmed, server] = await this.#pipeline('versions', [
        ['GET', keys.lastVersion],
        ['ZSCORE', keys.marks, 'trimmed'],
        ['GET', keys.serverVersion],
      ]);
      const serverVersion = integerReply(server, 'GET server_version');
      if (serverVersion === undefined) {
        await this.#serverVersion();
        continue;
      }
      return {
        serverVersion,
        latestRecordVersion: integerReply(last, 'GET last_version') ?? 0,
        earliestRecordVersion: scoreReply(trimmed, 'ZSCORE marks') ?? 0,
      };
    }
  }

  /**
   * Every change after `recordVersion`, of one type (or of all types when `type` is empty), in
   * version order: puts, deletes and evictions (tombstones, with `deletedAt`). Once caught up, it
   * waits for new changes (unless `wait: false`) and streams each as it commits. It fails with
   * `ERR_DATABROKER_INVALID_SERVER_VERSION` when the server version is not `serverVersion` (Redis
   * was flushed or replaced, or `clear()` ran), and with `ERR_DATABROKER_INVALID_RECORD_VERSION`
   * when changes after `recordVersion` were already removed by expiry: take a new snapshot with
   * `syncLatest` then.
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
    const stream: SyncStream<T> = new SyncStream<T>({
      type: type || undefined,
      serverVersion,
      after: recordVersion,
      wait: options.wait ?? true,
      batchSize: this.#batchSize,
      pollIntervalMs: this.#pollIntervalMs,
      read: (cursor, limit) => this.#readChanges(serverVersion, cursor, limit),
      decode: (entry) => this.#toRecord(entry),
      notifier: this.#notifier,
      onEnd: (s) => this.#streams.delete(s),
    });
    this.#streams.add(stream);
    return stream;
  }

  /** A page of the change log after `cursor`, read before the versions that validate it. */
  async #readChanges(serverVersion: number, cursor: number, limit: number): Promise<Entry[]> {
    const keys = this.#keys;
    const [page, trimmed, server] = await this.#pipeline('sync', [
      ['ZRANGEBYSCORE', keys.changes, `(${cursor}`, '+inf', 'LIMIT', 0, limit],
      ['ZSCORE', keys.marks, 'trimmed'],
      ['GET', keys.serverVersion],
    ]);
    // Checked after the page: had Redis been flushed or trimmed before the page was read, these
    // replies, read later on the same connection, would show it.
    const current = integerReply(server, 'GET server_version');
    if (current !== serverVersion) {
      throw new DataBrokerError(
        'ERR_DATABROKER_INVALID_SERVER_VERSION',
        `invalid server version: this sync started at server version ${serverVersion}, and the server version is now ${current ?? 'gone'} (Redis was flushed, replaced, or clear() ran); take a new snapshot with syncLatest()`,
      );
    }
    const earliest = scoreReply(trimmed, 'ZSCORE marks') ?? 0;
    if (cursor < earliest) {
      throw new DataBrokerError(
        'ERR_DATABROKER_INVALID_RECORD_VERSION',
        `invalid record version: changes after ${cursor} were removed from the change log (everything up to ${earliest} expired); take a new snapshot with syncLatest()`,
      );
    }
    const entries = bytesArrayReply(page, 'ZRANGEBYSCORE changes').map(decodeEntry);
    let previous = cursor;
    for (const entry of entries) {
      if (entry.version <= previous)
        throw corruptError(`the change log holds version ${entry.version} after ${previous}`);
      previous = entry.version;
    }
    return entries;
  }

  /**
   * A consistent starting point and the live records: `recordVersion` is read before the records,
   * so `sync(type, serverVersion, recordVersion)` afterwards delivers every change the snapshot
   * may have missed (a record changed during the scan can show up in both). Records come by type
   * (ascending), then from the least to the most recently modified; memory stays bounded by the
   * batch size. `filter` narrows them (see {@link FilterExpression}); a filter that pins ids reads
   * only those records.
   *
   * @example
   * ```ts
   * const { serverVersion, recordVersion, stream } = await broker.syncLatest('session', {
   *   $or: [{ id: 's1' }, { $index: '10.0.0.1' }],
   * });
   * for await (const session of stream) console.log(session.id, session.data);
   * ```
   */
  async syncLatest(type = '', filter?: FilterExpression): Promise<LatestSnapshot<T>> {
    this.#checkOpen();
    if (typeof type !== 'string') throw argumentError('type must be a string (empty for every type)');
    if (type) checkName(type, 'type');
    const compiled = compileFilter(filter);
    const keys = this.#keys;
    let serverVersion: number | undefined;
    let recordVersion = 0;
    while (serverVersion === undefined) {
      const [last, server] = await this.#pipeline('syncLatest', [
        ['GET', keys.lastVersion],
        ['GET', keys.serverVersion],
      ]);
      recordVersion = integerReply(last, 'GET last_version') ?? 0;
      serverVersion = integerReply(server, 'GET server_version');
      if (serverVersion === undefined) await this.#serverVersion();
    }
    let types = type ? [type] : await this.listTypes();
    if (compiled.types) types = types.filter((t) => compiled.types?.has(t));
    const indexable = new Map<string, ReadonlySet<string>>();
    if (types.length > 0 && compiled.needsData) {
      const [options] = await this.#pipeline('syncLatest', [['HMGET', keys.options, ...types]]);
      arrayReply(options, 'HMGET options').forEach((raw, i) => {
        const t = types[i] as string;
        indexable.set(t, new Set(parseOptions(textReply(raw, 'HMGET options'), t)?.indexableFields ?? []));
      });
    }
    const pages = compiled.ids
      ? this.#lookupPages(types, [...compiled.ids], compiled, indexable, serverVersion)
      : this.#scanPages(types, compiled, indexable, serverVersion);
    const stream = new LatestStream<T>(recordVersion, pages, (s) => this.#streams.delete(s));
    this.#streams.add(stream);
    return { serverVersion, recordVersion, stream };
  }

  /** Pages of a type-by-type scan of the type indexes, one page read ahead. */
  #scanPages(
    types: readonly string[],
    filter: CompiledFilter,
    indexable: ReadonlyMap<string, ReadonlySet<string>>,
    serverVersion: number,
  ): () => Promise<DataRecord<T>[] | undefined> {
    const keys = this.#keys;
    const limit = this.#batchSize;
    let typeIndex = 0;
    let cursor = Number.NEGATIVE_INFINITY;
    let ahead: Promise<{ member: Buffer; score: number }[]> | undefined;
    const ids = (type: string, after: number) =>
      this.#pipeline('syncLatest', [
        [
          'ZRANGEBYSCORE',
          keys.typeKey(type),
          after === Number.NEGATIVE_INFINITY ? '-inf' : `(${after}`,
          '+inf',
          'WITHSCORES',
          'LIMIT',
          0,
          limit,
        ],
      ]).then(([reply]) => scoredMembersReply(reply, 'ZRANGEBYSCORE type index'));
    return async () => {
      for (;;) {
        const type = types[typeIndex];
        if (type === undefined) return undefined;
        const members = await (ahead ?? ids(type, cursor));
        ahead = undefined;
        if (members.length === 0) {
          typeIndex++;
          cursor = Number.NEGATIVE_INFINITY;
          continue;
        }
        cursor = (members[members.length - 1] as { score: number }).score;
        if (members.length === limit) ahead = ids(type, cursor);
        ahead?.catch(() => {}); // awaited on the next page; a failure surfaces there
        const fields = members.map(({ member }) => recordField(type, member.toString('utf8')));
        const [stored, server] = await this.#pipeline('syncLatest', [
          ['HMGET', keys.records, ...fields],
          ['GET', keys.serverVersion],
        ]);
        this.#checkServerVersion(serverVersion, server);
        const page: DataRecord<T>[] = [];
        arrayReply(stored, 'HMGET records').forEach((raw, i) => {
          const bytes = bytesReply(raw, 'HMGET records');
          if (!bytes) return; // deleted since the index was read
          const entry = decodeEntry(bytes);
          // Changed since the index was read: its newer version comes later in this scan.
          if (entry.version !== members[i]?.score) return;
          const record = this.#filtered(entry, filter, indexable);
          if (record) page.push(record);
        });
        if (members.length < limit) {
          typeIndex++;
          cursor = Number.NEGATIVE_INFINITY;
        }
        if (page.length > 0) return page;
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
  ): () => Promise<DataRecord<T>[] | undefined> {
    let typeIndex = 0;
    return async () => {
      while (typeIndex < types.length) {
        const type = types[typeIndex++] as string;
        const found: DataRecord<T>[] = [];
        for (let at = 0; at < ids.length; at += this.#batchSize) {
          const chunk = ids.slice(at, at + this.#batchSize);
          const [stored, server] = await this.#pipeline('syncLatest', [
            ['HMGET', this.#keys.records, ...chunk.map((id) => recordField(type, id))],
            ['GET', this.#keys.serverVersion],
          ]);
          this.#checkServerVersion(serverVersion, server);
          for (const raw of arrayReply(stored, 'HMGET records')) {
            const bytes = bytesReply(raw, 'HMGET records');
            if (!bytes) continue;
            const record = this.#filtered(decodeEntry(bytes), filter, indexable);
            if (record) found.push(record);
          }
        }
        if (found.length > 0) return found.sort((a, b) => a.version - b.version);
      }
      return undefined;
    };
  }

  #checkServerVersion(expected: number, reply: unknown): void {
    const current = integerReply(reply, 'GET server_version');
    if (current !== expected) {
      throw new DataBrokerError(
        'ERR_DATABROKER_INVALID_SERVER_VERSION',
        `invalid server version: the snapshot was taken at server version ${expected}, and it is now ${current ?? 'gone'} (Redis was flushed, replaced, or clear() ran); take a new snapshot`,
      );
    }
  }

  /** The record when it passes the filter; the data is decoded once, and only when needed. */
  #filtered(
    entry: Entry,
    filter: CompiledFilter,
    indexable: ReadonlyMap<string, ReadonlySet<string>>,
  ): DataRecord<T> | undefined {
    if (!filter.node) return this.#toRecord(entry);
    let record: DataRecord<T> | undefined;
    const fields = indexable.get(entry.type);
    const pass = filter.test({
      type: entry.type,
      id: entry.id,
      view: () => {
        record ??= this.#toRecord(entry);
        return record.data === undefined ? undefined : this.#index(record.data);
      },
      indexable: (field) => fields?.has(field) ?? false,
    });
    return pass ? (record ?? this.#toRecord(entry)) : undefined;
  }

  #toRecord(entry: Entry): DataRecord<T> {
    const where = `${entry.type}/${entry.id} at version ${entry.version}`;
    let data: T | undefined;
    if (entry.data) {
      let bytes = entry.data;
      if (entry.encrypted) {
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
        data = this.#codec.decode(bytes);
      } catch (err) {
        throw new DataBrokerError(
          'ERR_DATABROKER_CODEC',
          `the codec could not decode the data of ${where}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    const base = { type: entry.type, id: entry.id, version: entry.version, modifiedAt: new Date(entry.modifiedAt) };
    if (entry.deletedAt !== undefined) {
      const deletedAt = new Date(entry.deletedAt);
      return data === undefined ? { ...base, deletedAt } : { ...base, deletedAt, data };
    }
    if (data === undefined) throw corruptError(`the live record ${where} has no data`);
    return { ...base, data };
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
  async removeChangesBefore(cutoff: Date): Promise<number> {
    this.#checkOpen();
    if (!(cutoff instanceof Date) || !Number.isFinite(cutoff.getTime()))
      throw argumentError('cutoff must be a valid Date');
    return this.#removeChanges(() => cutoff.getTime());
  }

  async #removeChanges(cutoffOf: (serverNow: number) => number): Promise<number> {
    const keys = this.#keys;
    const page = 256;
    const modifiedAt = (member: Buffer) => {
      try {
        return readHeader(member).modifiedAt;
      } catch {
        return Number.NEGATIVE_INFINITY; // unreadable: no reader can use it, let it go
      }
    };
    let total = 0;
    for (;;) {
      const removed = await this.#runner.run({
        label: 'change-log cleanup',
        watch: [keys.serverVersion],
        // The oldest change first: when it has not expired, the pass is one small read.
        reads: [['GET', keys.serverVersion], ['TIME'], ['ZRANGE', keys.changes, 0, 0, 'WITHSCORES']],
        plan: async (replies, read) => {
          if (integerReply(replies[0], 'GET server_version') === undefined) return { result: 0 };
          const cutoff = cutoffOf(timeReply(replies[1]));
          const [oldest] = scoredMembersReply(replies[2], 'ZRANGE changes');
          if (!oldest || modifiedAt(oldest.member) > cutoff) return { result: 0 };
          const [more] = await read([['ZRANGE', keys.changes, 0, page - 1, 'WITHSCORES']]);
          let count = 0;
          let upTo = 0;
          for (const { member, score } of scoredMembersReply(more, 'ZRANGE changes')) {
            if (modifiedAt(member) > cutoff) break;
            count++;
            upTo = score;
          }
          if (count === 0) return { result: 0 };
          return {
            writes: [
              ['ZADD', keys.marks, 'GT', upTo, 'trimmed'],
              ['ZREMRANGEBYSCORE', keys.changes, '-inf', upTo],
            ],
            committed: () => count,
          };
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
  async clear(): Promise<void> {
    this.#checkOpen();
    const keys = this.#keys;
    await this.#runner.run({
      label: 'clear',
      watch: [keys.serverVersion, keys.lastVersion, keys.types],
      reads: [
        ['SMEMBERS', keys.types],
        ['GET', keys.lastVersion],
      ],
      plan: (replies) => {
        const types = bytesArrayReply(replies[0], 'SMEMBERS types').map(String);
        const lastVersion = integerReply(replies[1], 'GET last_version') ?? 0;
        return {
          writes: [
            [
              'DEL',
              keys.records,
              keys.changes,
              keys.types,
              keys.options,
              keys.marks,
              keys.commits,
              ...types.map((t) => keys.typeKey(t)),
            ],
            ['SET', keys.serverVersion, randomServerVersion()],
            ['PUBLISH', keys.channel, lastVersion],
          ],
          committed: () => lastVersion,
        };
      },
    });
    this.#notifier.notify(Number.POSITIVE_INFINITY);
  }

  /**
   * Stops the background cleanup, ends open streams (`ERR_DATABROKER_CLOSED`), fails puts not yet
   * started, waits for the transaction in progress, and closes the backend's own connections. The
   * client given to the constructor stays open. Calling it again does nothing.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', () => broker.close().then(() => redis.quit()));
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#cleanupTimer);
    const pending = this.#pending;
    this.#pending = [];
    for (const put of pending) put.reject(this.#closedError());
    for (const stream of [...this.#streams]) stream.fail(this.#closedError());
    this.#notifier.close();
    await this.#runner.exclusive(async () => undefined);
    this.#connection.close();
    this.#clusterReads?.connection.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------------------------- plumbing

  #closedError(): DataBrokerError {
    return new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  /** The server version, created when missing (a first use, or after a flush). */
  async #serverVersion(): Promise<number> {
    const key = this.#keys.serverVersion;
    for (;;) {
      const current = integerReply(await this.#call('server version', ['GET', key]), 'GET server_version');
      if (current !== undefined) return current;
      await this.#call('server version', ['SET', key, randomServerVersion(), 'NX']);
    }
  }

  /** One command on the user's client. */
  async #call(what: string, command: Command): Promise<unknown> {
    const [reply] = await this.#pipeline(what, [command]);
    return reply;
  }

  /**
   * Commands in one pipeline on the user's client; connection trouble is retried until the
   * timeout, error replies become `ERR_DATABROKER_REDIS`.
   *
   * On a cluster they go to the slot's master on a dedicated connection instead: while a slot
   * migrates, ioredis replays a pipeline whose keys are split between two nodes on the target
   * alone, where the keys not moved yet read as missing. Here such a read waits for the
   * migration to finish, so every read sees all of the backend's keys on one node.
   */
  async #pipeline(what: string, commands: readonly Command[]): Promise<unknown[]> {
    if (this.#clusterReads) {
      if (this.#closed) throw this.#closedError();
      try {
        return await this.#clusterReads.runner.read(commands);
      } catch (err) {
        if (classifyError(err) === 'fatal') throw redisError(what, err);
        throw new DataBrokerError(
          'ERR_DATABROKER_CONNECTION',
          `${what}: Redis did not answer within ${this.#timeoutMs} ms (${(err as Error).message}); check that the cluster is up and reachable`,
          { cause: err },
        );
      }
    }
    const deadline = Date.now() + this.#timeoutMs;
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw this.#closedError();
      let replies: [Error | null, unknown][];
      try {
        if (commands.length === 1) {
          // One command needs no pipeline (cheaper in ioredis).
          const [name, ...args] = commands[0] as Command;
          replies = [[null, await this.#client.callBuffer(name, ...args)]];
        } else {
          const pipeline = this.#client.pipeline();
          for (const [name, ...args] of commands) pipeline.callBuffer(name, ...args);
          replies = ((await pipeline.exec()) ?? []) as [Error | null, unknown][];
        }
      } catch (err) {
        replies = commands.map(() => [err as Error, undefined]);
      }
      const failed = replies.find(([err]) => err)?.[0];
      if (!failed) return replies.map(([, reply]) => reply);
      const kind = classifyError(failed);
      if (kind === 'fatal') throw redisError(what, failed);
      if (this.#client.status === 'end') {
        throw new DataBrokerError(
          'ERR_DATABROKER_CONNECTION',
          `${what}: the client given to DataBroker was closed (quit or disconnect); close the DataBroker before its client`,
          { cause: failed },
        );
      }
      if (Date.now() >= deadline) {
        throw new DataBrokerError(
          'ERR_DATABROKER_CONNECTION',
          `${what}: Redis did not answer within ${this.#timeoutMs} ms (${failed.message}); check that the server is up and reachable`,
          { cause: failed },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 2 ** attempt)));
    }
  }
}
