import { abortable, type Logger, noopLogger } from '@redis-events/resp';
import { type ConnectFailure, describeAddress, waitUntilReady } from '@redis-events/resp/ioredis';
import { Redis } from 'ioredis';
import { type EventStoreOptions, type ResolvedConfig, resolveConfig } from './config.ts';
import { type AppendTrace, appendChannel, readChannel, serverOf, tailChannel, traceRead } from './diagnostics.ts';
import { describeError, EventStoreError } from './errors.ts';
import type { Event, EventStore, EventTail, ReadOptions, StoredEvent, TailOptions, TimeInput } from './event.ts';
import { checkName } from './keys.ts';
import type { Layout, Query, RawEvent } from './layout.ts';
import { isClient, isCluster, type RedisClient, redisError } from './redis-client.ts';
import { StreamLayout } from './stream-layout.ts';
import { Tail } from './tail.ts';
import { TimelineLayout } from './timeline-layout.ts';

const MAX_REMEMBERED_NAMES = 10_000;

/**
 * Options of the store's calls.
 *
 * @example
 * ```ts
 * await store.storeEvent({ name: 'order.paid', payload }, { signal: AbortSignal.timeout(2000) });
 * ```
 */
export interface CallOptions {
  /** Stops waiting: the call rejects with an `AbortError` (`ERR_EVENT_STORE_ABORTED`); a command already sent may still run. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options of {@link RedisEventStore.close}.
 *
 * @example
 * ```ts
 * await store.close({ timeoutMs: 2000 });
 * ```
 */
export interface CloseOptions {
  /** How long to wait for calls still waiting for Redis. Default 10 000 ms. */
  readonly timeoutMs?: number | undefined;
  /** Ends the wait early, as if `timeoutMs` had passed. */
  readonly signal?: AbortSignal | undefined;
}

const READ_OPTIONS = ['limit', 'order', 'after', 'since', 'until', 'signal'];
const TAIL_OPTIONS = ['after', 'signal', 'batchSize', 'blockMs', 'pollIntervalMs'];
const EVENT_FIELDS = ['name', 'payload', 'id', 'timestamp'];

/** Throws ERR_EVENT_STORE_ARGUMENT for a field `options` should not have (a typo, most often). */
function rejectUnknown(options: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        `${what} have an unknown field "${key}"; known: ${known.join(', ')}`,
      );
    }
  }
}

/** The signal of a call's options, after checking them. */
function callSignal(options: CallOptions, what: string): AbortSignal | undefined {
  if (typeof options !== 'object' || options === null) {
    throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', `${what} takes an options object: { signal }`);
  }
  for (const key in options) {
    if (key !== 'signal') rejectUnknown(options, ['signal'], `${what} options`);
  }
  return options.signal;
}

function aborted(reason: unknown): EventStoreError {
  return new EventStoreError(
    'ERR_EVENT_STORE_ABORTED',
    `the call was aborted by its AbortSignal${reason instanceof Error && reason.message ? `: ${reason.message}` : ''}`,
    { cause: reason, name: 'AbortError' },
  );
}

function connectError(failure: ConnectFailure): EventStoreError {
  if (failure.reason === 'aborted') return aborted(failure.cause);
  return new EventStoreError('ERR_EVENT_STORE_CONNECT', failure.message, { cause: failure.cause });
}

function timeOf(what: string, value: TimeInput | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_ARGUMENT',
      `${what} must be a valid Date or a number of milliseconds, not ${String(value)}`,
    );
  }
  return Math.max(0, Math.floor(ms));
}

function positiveOption(what: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_ARGUMENT',
      `${what} must be an integer from 1 to ${max}, not ${String(value)}`,
    );
  }
  return value;
}

/**
 * An event store on Redis, for a {@link Mediator} or on its own. Two layouts behind one API:
 * `stream` (default; one Redis Stream per event name) and `timeline` (the Go extension's keys and
 * JSON, shared with Go services). Every append, trim and clear is atomic and takes one round trip;
 * events expire after `eventTtl`, at most `maxEventsPerType` are kept per name, reads return the
 * newest first in exact storage order. Works with a `Redis` or a `Cluster` client of ioredis 6,
 * RESP2 or RESP3.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisEventStore } from '@redis-events/event-store';
 *
 * const redis = new Redis();
 * const store = new RedisEventStore(redis, { eventTtl: 3_600_000, maxEventsPerType: 500 });
 * await store.storeEvent({ name: 'user.created', payload: { id: 1 } });
 * const latest = await store.getEvents('user.created', 10); // newest first
 * await store.close(); // leaves `redis` open: the store did not create it
 * ```
 */
export class RedisEventStore implements EventStore {
  /** The configuration in force, defaults applied. */
  readonly config: ResolvedConfig;
  readonly #client: RedisClient;
  readonly #ownsClient: boolean;
  readonly #layout: Layout;
  readonly #tails = new Set<Tail<unknown>>();
  // The newest id this store has stored per name (the most recently used names): a tail started
  // after that append was answered leaves it, and everything stored before it, out exactly.
  readonly #newestStored = new Map<string, string>();
  readonly #logger: Logger;
  // Calls waiting for Redis, by kind, for close(): appends (they may be stored) and the others.
  readonly #inFlight = { appends: 0, calls: 0 };
  #drained: (() => void)[] = [];
  #closed = false;

  /**
   * @param client An ioredis `Redis` or `Cluster` (never closed by the store), or a Redis URL
   *   for a client the store creates and closes in {@link close}.
   * @param options Any part of {@link EventStoreConfig}; see {@link defaultConfig}.
   * @throws {EventStoreError} `ERR_EVENT_STORE_CONFIG` for a bad option or client.
   */
  constructor(client: RedisClient | string, options: EventStoreOptions = {}) {
    // Checked first: a URL's client is only made once the options are known to be right.
    this.config = resolveConfig(options, typeof client !== 'string' && isCluster(client));
    this.#logger = options.logger ?? noopLogger;
    if (typeof client === 'string') {
      // A call waits through at most three reconnects (about a second) when the connection is
      // lost, not ioredis's default twenty (over a minute): a server that is gone fails calls soon.
      const own = new Redis(client, { lazyConnect: true, maxRetriesPerRequest: 3 });
      // Failures reach the callers through their calls (bounded by connectTimeoutMs); ioredis
      // reports each failed reconnect attempt here.
      own.on('error', (err: Error) =>
        this.#logger.debug(
          { package: '@redis-events/event-store', err, address: describeAddress(own) },
          'connection error; reconnecting',
        ),
      );
      this.#client = own;
      this.#ownsClient = true;
    } else if (isClient(client)) {
      this.#client = client;
      this.#ownsClient = false;
    } else {
      throw new EventStoreError(
        'ERR_EVENT_STORE_CONFIG',
        'the first argument must be an ioredis Redis or Cluster client, or a redis:// URL',
      );
    }
    const context = {
      client: this.#client,
      prefix: this.config.prefix,
      ttl: this.config.eventTtl,
      max: this.config.maxEventsPerType,
      serializer: this.config.serializer,
    };
    this.#layout =
      this.config.layout === 'stream'
        ? new StreamLayout(context)
        : new TimelineLayout(context, this.config.timelineKeys);
  }

  #open(): void {
    if (this.#closed) {
      throw new EventStoreError('ERR_EVENT_STORE_CLOSED', 'this event store was closed; create a new one');
    }
  }

  /**
   * Undefined when the client is ready (the hot path); else a wait for it, bounded by
   * `connectTimeoutMs`, that rejects with ERR_EVENT_STORE_CONNECT naming the address and cause.
   */
  #untilReady(signal: AbortSignal | undefined): Promise<void> | undefined {
    if (this.#client.status === 'ready') return undefined;
    return waitUntilReady(this.#client, {
      timeoutMs: this.config.connectTimeoutMs,
      signal,
      error: (failure) => connectError(failure),
    });
  }

  /** Runs a call on Redis: waits for the client if needed, counts it for close(), wraps its failure once. */
  #call<T>(
    kind: 'appends' | 'calls',
    signal: AbortSignal | undefined,
    work: () => Promise<T>,
    fail: (err: unknown) => EventStoreError,
  ): Promise<T> {
    const ready = this.#untilReady(signal);
    const running = ready === undefined ? work() : ready.then(work);
    this.#inFlight[kind]++;
    const done = running.then(
      (value) => {
        this.#settled(kind);
        return value;
      },
      (err: unknown) => {
        this.#settled(kind);
        throw err instanceof EventStoreError ? err : fail(err);
      },
    );
    return signal === undefined ? done : abortable(done, signal, aborted);
  }

  #settled(kind: 'appends' | 'calls'): void {
    this.#inFlight[kind]--;
    if (this.#inFlight.appends + this.#inFlight.calls === 0 && this.#drained.length > 0) {
      for (const resolve of this.#drained.splice(0)) resolve();
    }
  }

  #serialize(event: Event): string {
    if (typeof event !== 'object' || event === null) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'an event must be an object { name, payload }');
    }
    // A typo (`paylod`) would store a null payload without a word. The id and timestamp of a
    // stored event passed back in are allowed (and ignored).
    for (const key in event) {
      if (!EVENT_FIELDS.includes(key)) {
        throw new EventStoreError(
          'ERR_EVENT_STORE_ARGUMENT',
          `an event has an unknown field "${key}"; an event is { name, payload }`,
        );
      }
    }
    checkName(event.name);
    const { serializer, maxEventBytes } = this.config;
    let text: unknown;
    try {
      text = serializer.serialize(event.payload);
    } catch (err) {
      if (err instanceof EventStoreError) {
        throw new EventStoreError(err.code, `event "${event.name}": ${err.message}`, { cause: err.cause ?? err });
      }
      throw new EventStoreError(
        'ERR_EVENT_STORE_PAYLOAD',
        `event "${event.name}": the serializer refused the payload: ${describeError(err)}`,
        { cause: err },
      );
    }
    if (typeof text !== 'string') {
      throw new EventStoreError(
        'ERR_EVENT_STORE_PAYLOAD',
        `event "${event.name}": serializer.serialize() returned ${typeof text}; it must return a string`,
      );
    }
    // UTF-8 takes at least one byte per UTF-16 unit and at most three.
    if (text.length > maxEventBytes || (text.length * 3 > maxEventBytes && Buffer.byteLength(text) > maxEventBytes)) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_PAYLOAD',
        `event "${event.name}": the payload takes ${Buffer.byteLength(text)} bytes, more than maxEventBytes (${maxEventBytes}); store a reference to large data instead, or raise maxEventBytes`,
      );
    }
    return text;
  }

  #rememberStored(name: string, id: string): void {
    // Replies come in the order the appends ran (one connection, or one node for a name's keys).
    this.#newestStored.delete(name); // re-inserted last: the map drops its least recently used names first
    this.#newestStored.set(name, id);
    if (this.#newestStored.size > MAX_REMEMBERED_NAMES) {
      this.#newestStored.delete(this.#newestStored.keys().next().value as string);
    }
  }

  /**
   * Throws when the store would refuse the event: a bad name, or a payload the serializer refuses.
   * The mediator calls it before running handlers.
   *
   * @example
   * ```ts
   * store.checkEvent({ name: 'order.paid', payload: { amount: 1n } }); // throws ERR_EVENT_STORE_PAYLOAD
   * ```
   */
  checkEvent(event: Event): void {
    this.#serialize(event);
  }

  /**
   * Stores one event atomically, in one round trip: appends it, trims the name to
   * `maxEventsPerType`, drops expired entries and refreshes the TTL. Resolves with the event as
   * stored: its id and the server's time (the payload is the object you passed).
   *
   * @example
   * ```ts
   * const stored = await store.storeEvent({ name: 'user.created', payload: { id: 1, at: new Date() } });
   * console.log(stored.id, stored.timestamp);
   * ```
   * @throws {EventStoreError} `ERR_EVENT_STORE_ARGUMENT` (name), `ERR_EVENT_STORE_PAYLOAD`,
   *   `ERR_EVENT_STORE_REDIS`, `ERR_EVENT_STORE_CLOSED`.
   */
  storeEvent<Payload>(event: Event<Payload>, options: CallOptions = {}): Promise<StoredEvent<Payload>> {
    // No async frames on this path: it runs once per event, and each frame costs a promise.
    try {
      this.#open();
      const signal = callSignal(options, 'storeEvent()');
      const text = this.#serialize(event); // checks the event first: it may not be an object
      const { name, payload } = event;
      if (!appendChannel.hasSubscribers) return this.#append(name, payload, text, signal, undefined);
      const context: AppendTrace = {
        destination: name,
        layout: this.config.layout,
        bodySize: Buffer.byteLength(text),
        ...serverOf(this.#client),
      };
      return appendChannel.tracePromise(() => this.#append(name, payload, text, signal, context), context);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #append<Payload>(
    name: string,
    payload: Payload,
    text: string,
    signal: AbortSignal | undefined,
    context: AppendTrace | undefined,
  ): Promise<StoredEvent<Payload>> {
    return this.#call(
      'appends',
      signal,
      () => this.#layout.append(name, text),
      (err) => redisError(err, `storing an event "${name}"`, this.#keyText(name)),
    ).then((appended): StoredEvent<Payload> => {
      this.#rememberStored(name, appended.id);
      if (context !== undefined) context.messageId = appended.id;
      return { name, payload, id: appended.id, timestamp: new Date(appended.timestampMs) };
    });
  }

  /**
   * The newest events of a name, newest first. A `limit` of 0 or none means `maxEventsPerType`.
   * Never returns an expired event, and never fewer than `limit` when more live events exist.
   * An unknown name gives an empty list.
   *
   * @example
   * ```ts
   * const last10 = await store.getEvents<{ id: number }>('user.created', 10);
   * ```
   */
  getEvents<Payload = unknown>(
    name: string,
    limit?: number,
    options: CallOptions = {},
  ): Promise<StoredEvent<Payload>[]> {
    const signal = callSignal(options, 'getEvents()');
    return this.read<Payload>(name, {
      ...(limit === undefined ? {} : { limit }),
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /**
   * Reads events of a name: newest or oldest first, within a time range, after a cursor id
   * (pagination), at most `limit`.
   *
   * @example
   * ```ts
   * // page through everything, 100 at a time, newest first
   * let page = await store.read('order.paid', { limit: 100 });
   * while (page.length > 0) {
   *   for (const event of page) console.log(event.id);
   *   page = await store.read('order.paid', { limit: 100, after: page.at(-1)?.id });
   * }
   * // the last hour, oldest first
   * const hour = await store.read('order.paid', { since: Date.now() - 3_600_000, order: 'oldest' });
   * ```
   * @throws {EventStoreError} `ERR_EVENT_STORE_ARGUMENT` for a bad name, limit, cursor or time.
   */
  async read<Payload = unknown>(name: string, options: ReadOptions = {}): Promise<StoredEvent<Payload>[]> {
    this.#open();
    checkName(name);
    const query = this.#query(options);
    if (!readChannel.hasSubscribers) return this.#read(name, query, options.signal);
    const base = { destination: name, layout: this.config.layout, ...serverOf(this.#client) };
    return traceRead(readChannel, base, () => this.#read<Payload>(name, query, options.signal));
  }

  async #read<Payload>(name: string, query: Query, signal: AbortSignal | undefined): Promise<StoredEvent<Payload>[]> {
    const raw = await this.#call(
      'calls',
      signal,
      () => this.#layout.read(name, query),
      (err) => redisError(err, `reading events "${name}"`, this.#keyText(name)),
    );
    return this.#decode<Payload>(name, raw);
  }

  #query(options: ReadOptions): Query {
    if (typeof options !== 'object' || options === null) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'read options must be an object');
    }
    rejectUnknown(options, READ_OPTIONS, 'read options');
    const { limit, order = 'newest' } = options;
    if (
      limit !== undefined &&
      (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > Number.MAX_SAFE_INTEGER)
    ) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        `limit must be a whole number >= 0 (0 means maxEventsPerType), not ${String(limit)}`,
      );
    }
    if (order !== 'newest' && order !== 'oldest') {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', `order must be "newest" or "oldest", not ${String(order)}`);
    }
    const max = this.config.maxEventsPerType;
    return {
      order,
      limit: limit === undefined || limit === 0 || limit > max ? max : limit,
      after: options.after === undefined ? undefined : this.#layout.parseId(options.after),
      since: timeOf('since', options.since),
      until: timeOf('until', options.until),
    };
  }

  #decode<Payload>(name: string, raw: readonly RawEvent[]): StoredEvent<Payload>[] {
    const out: StoredEvent<Payload>[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const entry = raw[i] as RawEvent;
      let payload: unknown;
      try {
        payload = this.#layout.decode(name, entry);
      } catch (err) {
        if (err instanceof EventStoreError) throw err;
        throw new EventStoreError(
          'ERR_EVENT_STORE_DECODE',
          `event "${name}" ${entry.id}: the stored payload cannot be read: ${describeError(err)}`,
          { cause: err },
        );
      }
      out[i] = { name, payload: payload as Payload, id: entry.id, timestamp: new Date(entry.timestampMs) };
    }
    return out;
  }

  /**
   * How many live (unexpired) events a name has, at most `maxEventsPerType`.
   *
   * @example
   * ```ts
   * const pending = await store.count('order.paid');
   * ```
   */
  async count(name: string, options: CallOptions = {}): Promise<number> {
    this.#open();
    checkName(name);
    return this.#call(
      'calls',
      callSignal(options, 'count()'),
      () => this.#layout.count(name),
      (err) => redisError(err, `counting events "${name}"`, this.#keyText(name)),
    );
  }

  /**
   * Removes every event of a name, atomically: an append racing with the clear lands wholly
   * before it (and is removed) or wholly after it (and stays). Event ids keep growing across a
   * clear, so cursors and tails stay valid.
   *
   * @example
   * ```ts
   * await store.clearEvents('user.created');
   * ```
   */
  async clearEvents(name: string, options: CallOptions = {}): Promise<void> {
    this.#open();
    checkName(name);
    await this.#call(
      'calls',
      callSignal(options, 'clearEvents()'),
      () => this.#layout.clear(name),
      (err) => redisError(err, `clearing events "${name}"`, this.#keyText(name)),
    );
  }

  /**
   * A live tail: an async iterator of the events of a name stored after this call (or after
   * `options.after`), in storage order. The `stream` layout waits with a blocking XREAD on a
   * connection of its own; the `timeline` layout polls. Lost connections are waited out.
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * setTimeout(() => controller.abort(), 60_000);
   * for await (const event of store.tail('order.paid', { signal: controller.signal })) {
   *   console.log(event.id, event.payload);
   * }
   * ```
   */
  tail<Payload = unknown>(name: string, options: TailOptions = {}): EventTail<Payload> {
    this.#open();
    checkName(name);
    if (typeof options !== 'object' || options === null) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'tail options must be an object');
    }
    rejectUnknown(options, TAIL_OPTIONS, 'tail options');
    const batchSize = positiveOption('batchSize', options.batchSize, 100, 100_000);
    const blockMs = positiveOption('blockMs', options.blockMs, 5000, 3_600_000);
    const pollIntervalMs = positiveOption('pollIntervalMs', options.pollIntervalMs, 100, 3_600_000);
    const after = options.after === undefined ? undefined : this.#layout.parseId(options.after);
    const keyText = this.#keyText(name);
    // Where the tail starts: what is stored from this moment on. See #startCursor.
    const calledAt = performance.now();
    const ownNewest = this.#newestStored.get(name);
    const readBatch = async (cursor: string, limit: number): Promise<StoredEvent<Payload>[]> => {
      let raw: RawEvent[];
      try {
        raw = await this.#layout.read(name, {
          order: 'oldest',
          limit,
          after: cursor,
          since: undefined,
          until: undefined,
        });
      } catch (err) {
        throw redisError(err, `tailing events "${name}"`, keyText);
      }
      return this.#decode<Payload>(name, raw);
    };
    const tail: Tail<Payload> = new Tail<Payload>(
      {
        start: async () => {
          if (after !== undefined) return after;
          try {
            const last = await this.#layout.lastId(name);
            return this.#startCursor(last, performance.now() - calledAt, ownNewest);
          } catch (err) {
            throw redisError(err, `starting a tail of "${name}"`, keyText);
          }
        },
        read: (cursor, limit) => {
          if (!tailChannel.hasSubscribers) return readBatch(cursor, limit);
          const base = { destination: name, layout: this.config.layout, ...serverOf(this.#client) };
          return traceRead(tailChannel, base, () => readBatch(cursor, limit));
        },
        waiter: this.#layout.waiter(name, { blockMs, pollIntervalMs }),
        clientEnded: () => this.#client.status === 'end',
        onEnd: () => this.#tails.delete(tail as Tail<unknown>),
        onRetry: (err, delayMs) =>
          this.#logger.warn(
            { package: '@redis-events/event-store', err, name, delayMs },
            `the tail of "${name}" waits out a failure and tries again`,
          ),
      },
      batchSize,
      options.signal,
    );
    this.#tails.add(tail as Tail<unknown>);
    return tail;
  }

  /**
   * The cursor a tail starts after: every event stored since `tail()` was called is yielded, also
   * when its start could not be asked at once (a client still connecting, a start retried after
   * a failure). `last` is the newest id when the start was answered, `ago` how long before that
   * answer `tail()` was called (monotonic clock), so the server's time of the call is at least
   * `last.serverMs - ago`; the tail starts before that time, or after `last` if it is older. Events
   * this store had stored (answered) before the call are left out exactly (`ownNewest`: it was stored
   * before the call, so is everything before it); another writer's event stored within about a
   * millisecond before the call may be yielded, and so is an append of this store still unanswered
   * at the call (Redis stores it after the call). Ids ahead of the
   * server's clock (a Go writer's clock, a clock that went back) say nothing about time: then the
   * start is `last`.
   */
  #startCursor(last: { id: string; serverMs: number }, ago: number, ownNewest: string | undefined): string {
    const layout = this.#layout;
    let cursor = last.id;
    if (layout.msOf(last.id) <= last.serverMs) {
      const before = layout.idBefore(Math.floor(last.serverMs - ago));
      if (layout.compareIds(before, cursor) < 0) cursor = before;
    }
    if (
      ownNewest !== undefined &&
      layout.compareIds(ownNewest, cursor) > 0 &&
      layout.compareIds(ownNewest, last.id) <= 0
    ) {
      cursor = ownNewest;
    }
    return cursor;
  }

  /**
   * The Redis keys that hold a name's events, for inspection and operations.
   *
   * @example
   * ```ts
   * store.keysOf('user.created'); // { keys: ['mediator:events:{user.created}'] } with the stream layout
   * ```
   */
  keysOf(name: string): { readonly keys: readonly string[]; readonly pattern?: string | undefined } {
    checkName(name);
    return this.#layout.keysOf(name);
  }

  #keyText(name: string): string {
    try {
      return this.#layout.keysOf(name).keys[0] ?? name;
    } catch {
      return name;
    }
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Ends every tail and refuses further calls, waits up to `timeoutMs` (or until `signal`) for the
   * calls still waiting for Redis, and closes the Redis client only when the store made it from a
   * URL (a client you passed in stays open). Resolves only when nothing was given up; otherwise
   * rejects with `ERR_EVENT_STORE_ABANDONED`, `abandoned` saying how many appends (they may or may
   * not be stored) and other calls were still waiting. A second call resolves at once.
   *
   * @example
   * ```ts
   * await store.close({ timeoutMs: 2000 });
   * ```
   * @throws {EventStoreError} `ERR_EVENT_STORE_ABANDONED`.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'close() takes an options object: { timeoutMs, signal }');
    }
    rejectUnknown(options, ['timeoutMs', 'signal'], 'close() options');
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        `timeoutMs must be an integer >= 0, not ${String(timeoutMs)}`,
      );
    }
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#tails].map((tail) => tail.close()));
    if (this.#inFlight.appends + this.#inFlight.calls > 0) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const { signal } = options;
      await new Promise<void>((resolve) => {
        this.#drained.push(resolve);
        timer = setTimeout(resolve, timeoutMs);
        onAbort = resolve;
        if (signal?.aborted) resolve();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    const { appends, calls } = this.#inFlight;
    if (this.#ownsClient) {
      // Calls given up fail with "Connection is closed" once the client is gone.
      if (appends + calls > 0) this.#client.disconnect();
      else {
        try {
          await this.#client.quit();
        } catch {
          this.#client.disconnect();
        }
      }
    }
    if (appends + calls > 0) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ABANDONED',
        `the event store closed with ${appends} append(s) (they may or may not be stored) and ${calls} other call(s) still waiting for Redis`,
        { abandoned: { ...(appends > 0 ? { appends } : {}), ...(calls > 0 ? { calls } : {}) } },
      );
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
