import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { delay, isLogger, type Logger, noopLogger } from '@redis-events/resp';
import { waitUntilReady } from '@redis-events/resp/ioredis';
import { abortable, abortError } from './abort.ts';
import { rejectUnknownFields } from './arguments.ts';
import { Backoff, type RetryOptions } from './backoff.ts';
import {
  isClusterClient,
  OWNS_CLIENT,
  openBlockingConnection,
  type RedisClient,
  runScript,
  withTimeout,
} from './client.ts';
import { type CodecLimits, DEFAULT_LIMITS, decodeEntry } from './codec.ts';
import {
  ackChannel,
  carrierOf,
  deadLetterChannel,
  nackChannel,
  type ReceiveTrace,
  receiveChannel,
  redeliveryChannel,
  serverOf,
} from './diagnostics.ts';
import { classifyFailure, connectError, StreamsError, toStreamsError } from './errors.ts';
import { detectFeatures, type ServerFeatures } from './features.ts';
import { joinGroupCensus } from './group-census.ts';
import { defaultDeadLetterKey, keySlot } from './key-slot.ts';
import { Message, type Settlement, type Settler } from './message.ts';
import { asCount, asText, parseEntry, protocolError, type RawEntry, streamEntries, toList } from './replies.ts';
import { ACK_DELETE, CLAIM, DEAD_LETTER, RELEASE, RELEASE_CONSUMER, RENEW, START_GROUP } from './scripts.ts';
import { isStreamId } from './stream-id.ts';
import { checkName, quit, type RetryEvent } from './topic.ts';

/** What to do with an entry this package cannot decode (no `body` field, bad `headers`). */
export type MalformedAction = 'dead-letter' | 'ack';

/** Options of {@link Subscription}. */
export interface SubscriptionOptions {
  /** The stream key to read. */
  readonly topic: string;
  /** The consumer group: every group gets every message; consumers of one group share them. */
  readonly group: string;
  /**
   * This consumer's name, unique among the live consumers of the group. Give a stable name (a pod
   * name) to pick up this consumer's own pending messages right after a restart. Default:
   * `<hostname>:<pid>:<random>`.
   */
  readonly consumer?: string | undefined;
  /** Create the group (and the stream) when missing. Default true. With false, a missing group fails with ERR_STREAMS_NOT_FOUND. */
  readonly create?: boolean | undefined;
  /** Where a new group starts: `$` (only messages sent from now on, the default), `0` (all retained) or an entry ID. */
  readonly from?: string | undefined;
  /**
   * A message whose lease is not renewed for this long is taken over by another consumer of the
   * group: its consumer is presumed dead. A live subscription renews the lease of every message it
   * holds (see `maxLeaseMs`), so this is the time to detect a dead consumer. Default 60 s.
   */
  readonly ackDeadlineMs?: number | undefined;
  /**
   * How long a live subscription keeps renewing the lease of a message it holds (read ahead or
   * handed out, not yet settled), every `ackDeadlineMs / 3`. After that the message can be taken
   * over like the message of a dead consumer: a handler stuck for good does not hold it forever.
   * 0 turns renewal off: then `ackDeadlineMs` must exceed the time a message waits in the
   * prefetch buffer plus its handling. Default 1 hour.
   */
  readonly maxLeaseMs?: number | undefined;
  /** How often idle messages of dead consumers are looked for (Redis < 8.4). Default min(ackDeadline / 2, 5 s). */
  readonly claimIntervalMs?: number | undefined;
  /** Most messages received and not yet settled (buffered plus handed out); reading pauses there. Default 1000. */
  readonly maxInFlight?: number | undefined;
  /** Most messages read ahead and buffered before the application asks. Default 200. */
  readonly prefetch?: number | undefined;
  /** Longest server-side wait of one read, in ms. Shutdown never waits longer than this for the reader. Default 1000. */
  readonly blockMs?: number | undefined;
  /** A message delivered more often than this goes to the dead-letter stream. Default 10; `Infinity` turns it off. */
  readonly maxDeliveries?: number | undefined;
  /** The dead-letter stream. Default `{<topic>}:dead` (or `<topic>:dead` when the topic has a hash tag): same cluster slot. */
  readonly deadLetterKey?: string | undefined;
  /** Trim the dead-letter stream to about this many entries. Default: never trimmed. */
  readonly deadLetterMaxLen?: number | undefined;
  /** Entries that cannot be decoded: moved to the dead-letter stream (default) or acknowledged and dropped. Both emit `malformed`. */
  readonly onMalformed?: MalformedAction | undefined;
  /**
   * Delete entries from the stream once every group has acknowledged them (XACKDEL ... ACKED on
   * Redis 8.2+, a script on older servers). Default false: retention is the topic's trimming.
   */
  readonly deleteAcked?: boolean | undefined;
  /** At shutdown, delete this consumer from the group when nothing is pending on it. Default true. */
  readonly deleteConsumerOnShutdown?: boolean | undefined;
  /** Read with NOACK: at-most-once, nothing is ever redelivered. `ack()` does nothing, `nack()` fails. Default false. */
  readonly noAck?: boolean | undefined;
  /** Force optional server features on or off instead of detecting them. */
  readonly features?: Partial<ServerFeatures> | undefined;
  /** Longest wait for one non-blocking command before it is retried. Default 10 s. */
  readonly commandTimeoutMs?: number | undefined;
  /**
   * How long past its BLOCK time a read may go unanswered before the reader's connection counts
   * as dead (a silent network failure) and is reconnected. Default 5 s.
   */
  readonly readTimeoutMs?: number | undefined;
  /** Pauses between retries of transient failures. */
  readonly retry?: RetryOptions | undefined;
  /** Size limits for decoding. */
  readonly limits?: Partial<CodecLimits> | undefined;
  /**
   * How long the subscription waits for a client that is not connected when it starts, before it
   * fails with `ERR_STREAMS_CONNECT` (naming the address and the cause): `ready()` and
   * `receive()` reject with it. A wrong password or a missing permission fails at once. Once
   * started, outages are retried without end. Default 10 000 ms.
   */
  readonly connectTimeoutMs?: number | undefined;
  /** Where background events go: retries, failures, malformed entries. Default: nowhere. */
  readonly logger?: Logger | undefined;
}

/** Options of {@link Subscription.receive}, {@link Subscription.ready} and {@link Subscription.messages}. */
export interface ReceiveOptions {
  /** Stops waiting: the call rejects with an `AbortError` (ERR_STREAMS_ABORTED); an iterator ends. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link Subscription.shutdown}. */
export interface ShutdownOptions {
  /**
   * How long to wait for messages the application holds to be settled, and for acks to reach
   * Redis. Messages still held then stay pending and are redelivered after the ack deadline, and
   * the shutdown rejects with ERR_STREAMS_ABANDONED saying how many. Default 10 s.
   */
  readonly timeoutMs?: number | undefined;
  /** Ends the wait early, as if `timeoutMs` had passed. */
  readonly signal?: AbortSignal | undefined;
}

/** A message moved to the dead-letter stream. */
export interface DeadLetterEvent {
  readonly id: string;
  readonly reason: string;
  readonly attempts: number;
  readonly deadLetterKey: string;
}

/** An entry that could not be decoded. */
export interface MalformedEvent {
  readonly id: string;
  readonly error: StreamsError;
  readonly action: MalformedAction;
}

/** Events of a {@link Subscription}. */
export interface SubscriptionEvents {
  /** A transient failure; the operation is tried again after `delayMs`. */
  retry: [RetryEvent];
  /** A message went to the dead-letter stream. */
  deadLetter: [DeadLetterEvent];
  /** An entry could not be decoded. */
  malformed: [MalformedEvent];
  /** Pending entries whose data had been deleted or trimmed; they were acknowledged. */
  deleted: [{ readonly ids: readonly string[] }];
  /** The group had disappeared and was created again from `0`. */
  recreated: [{ readonly group: string }];
  /** A permanent failure: `receive()` rejects with it from now on. */
  failed: [StreamsError];
}

/** Counters of a {@link Subscription}. */
export interface SubscriptionStats {
  /** Messages handed to the application or buffered for it. */
  readonly delivered: number;
  /** Of those, deliveries after the first (deliveryAttempt > 1). */
  readonly redelivered: number;
  /** Entries taken over from idle consumers. */
  readonly claimed: number;
  readonly acked: number;
  readonly nacked: number;
  readonly deadLettered: number;
  readonly malformed: number;
  /** Pending entries found deleted or trimmed (acknowledged, nothing to deliver). */
  readonly deletedWhilePending: number;
  /** Redeliveries of a message this subscription still had, not handed out twice. */
  readonly duplicatesSuppressed: number;
  readonly retries: number;
  /** Messages received and not yet settled in Redis. */
  readonly inFlight: number;
  /** Of those, messages waiting in the buffer for the application. */
  readonly buffered: number;
}

const SUBSCRIPTION_FIELDS: readonly (keyof SubscriptionOptions)[] = [
  'topic',
  'group',
  'consumer',
  'create',
  'from',
  'ackDeadlineMs',
  'maxLeaseMs',
  'claimIntervalMs',
  'maxInFlight',
  'prefetch',
  'blockMs',
  'maxDeliveries',
  'deadLetterKey',
  'deadLetterMaxLen',
  'onMalformed',
  'deleteAcked',
  'deleteConsumerOnShutdown',
  'noAck',
  'features',
  'commandTimeoutMs',
  'readTimeoutMs',
  'retry',
  'limits',
  'connectTimeoutMs',
  'logger',
];

type State = 'starting' | 'running' | 'failed' | 'stopping' | 'closed';

interface Waiter {
  resolve(message: Message): void;
  reject(err: StreamsError): void;
  cleanup(): void;
}

interface PendingSettle {
  readonly message: Message;
  readonly reason: string | undefined;
  resolve(): void;
  reject(err: StreamsError): void;
}

/** Settles a pending settlement once: a shutdown may give it up before Redis answers. */
function once(pending: PendingSettle): PendingSettle {
  let done = false;
  return {
    message: pending.message,
    reason: pending.reason,
    resolve: () => {
      if (done) return;
      done = true;
      pending.resolve();
    },
    reject: (err) => {
      if (done) return;
      done = true;
      pending.reject(err);
    },
  };
}

// A released entry gets this idle time, far above any ack deadline, so that the next
// XAUTOCLAIM or XREADGROUP CLAIM takes it. Redis rejects idle times beyond "now" (it resets
// them to 0), so it must stay well below the Unix time in ms.
const RELEASED_IDLE_MS = 365 * 24 * 3600 * 1000;
const MAX_ACK_DEADLINE_MS = 30 * 24 * 3600 * 1000;
const SETTLE_BATCH = 500;
const CLAIM_CALLS_PER_PASS = 50;

const featureCache = new WeakMap<RedisClient, Promise<ServerFeatures>>();

function integer(value: number | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function keyPrefixOf(client: RedisClient): string {
  const options = (client as { options?: { keyPrefix?: unknown } | undefined }).options;
  return typeof options?.keyPrefix === 'string' ? options.keyPrefix : '';
}

/** Reads the group start script's reply: the outcome and the server's TIME. */
function startReply(reply: unknown): ['created' | 'exists' | 'missing', number, number] {
  const parts = toList(reply, 'the group start script reply');
  const state = asText(parts[0], 'the group start outcome');
  if (state !== 'created' && state !== 'exists' && state !== 'missing') {
    throw protocolError(`the group start script answered "${state}"`);
  }
  return [state, asCount(parts[1], 'the server time (seconds)'), asCount(parts[2], 'the server time (microseconds)')];
}

function defaultConsumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/**
 * Receives the messages of a topic as one consumer of a consumer group, at least once: a message
 * is delivered again until it is acknowledged, to this consumer after a restart (its own pending
 * messages first) or to another one once its ack deadline has passed. Reads use a connection of
 * their own with a bounded BLOCK, so `shutdown()` is prompt; the number of unsettled messages is
 * bounded; transient failures are retried with backoff and never end the subscription.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { Subscription } from '@redis-events/streams-driver';
 *
 * const redis = new Redis();
 * const subscription = new Subscription(redis, { topic: 'orders', group: 'billing', consumer: 'billing-1' });
 * subscription.on('deadLetter', ({ id, reason }) => console.warn(`order ${id} dead-lettered: ${reason}`));
 * for await (const message of subscription) {
 *   await bill(JSON.parse(message.body.toString()));
 *   message.ack();
 * }
 * // elsewhere, on SIGTERM:
 * await subscription.shutdown(); // stops reading at once, waits for handlers and acks
 * ```
 */
export class Subscription extends EventEmitter<SubscriptionEvents> implements AsyncIterable<Message>, AsyncDisposable {
  /** The stream key. */
  readonly topic: string;
  /** The consumer group. */
  readonly group: string;
  /** This consumer's name in the group. */
  readonly consumer: string;
  /** Where messages that could not be processed go. */
  readonly deadLetterKey: string;
  readonly #client: RedisClient;
  readonly #owned: boolean;
  readonly #create: boolean;
  readonly #from: string;
  readonly #ackDeadlineMs: number;
  readonly #maxLeaseMs: number;
  readonly #claimIntervalMs: number;
  readonly #maxInFlight: number;
  readonly #prefetch: number;
  readonly #blockMs: number;
  readonly #maxDeliveries: number;
  readonly #deadLetterMaxLen: string;
  readonly #onMalformed: MalformedAction;
  readonly #deleteAcked: boolean;
  readonly #deleteConsumer: boolean;
  readonly #noAck: boolean;
  readonly #featureOverrides: Partial<ServerFeatures>;
  readonly #commandTimeoutMs: number;
  readonly #readTimeoutMs: number;
  readonly #retryOptions: RetryOptions;
  readonly #limits: CodecLimits;
  readonly #settler: Settler;
  readonly #connectTimeoutMs: number;
  readonly #logger: Logger;

  #state: State = 'starting';
  #failure: StreamsError | undefined;
  /** Leaves the census of consumer groups (redis-events:streams-driver:groups) at shutdown or failure. */
  readonly #leaveCensus: () => void;
  #features: ServerFeatures = { readClaim: false, xnack: false, xackdel: false };
  #reader: RedisClient | undefined;
  readonly #stop = new AbortController();
  // When the constructor ran, on this process's monotonic clock: where a `$` group starts.
  readonly #openedAt = performance.now();
  #deadline = Number.POSITIVE_INFINITY;
  readonly #ready: Promise<void>;
  #loop: Promise<void> = Promise.resolve();

  // Every entry received and not yet settled in Redis, by ID: buffered, held by the app, or settling.
  readonly #known = new Map<string, Message>();
  // When each known entry was received, to stop renewing its lease after maxLeaseMs.
  readonly #since = new Map<string, number>();
  #buffer: Message[] = [];
  #bufferHead = 0;
  readonly #waiters: Waiter[] = [];
  #wakeReader: (() => void) | undefined;
  #settledWaiters: (() => void)[] = [];

  readonly #queues: Record<Settlement, PendingSettle[]> = { ack: [], nack: [], 'dead-letter': [] };
  #settleScheduled = false;
  readonly #settling = new Set<Promise<void>>();
  readonly #inFlightSettles = new Set<PendingSettle[]>();
  // Settlements Redis refused or never confirmed: those messages come back. Shutdown reports them.
  #settleFailures = 0;
  // Fires when a shutdown's bound is reached (its timeout or its signal): waits stop.
  readonly #giveUp = new AbortController();
  readonly #background = new Set<Promise<unknown>>();

  #claimTimer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing = false;
  #claimCursor = '0-0';
  #claiming: Promise<void> | undefined;
  #claimSoon = false;
  // A pass stopped for lack of room before it walked the whole pending list: settling resumes it.
  #claimWantsRoom = false;

  #delivered = 0;
  #redelivered = 0;
  #claimed = 0;
  #acked = 0;
  #nacked = 0;
  #deadLettered = 0;
  #malformed = 0;
  #deleted = 0;
  #duplicates = 0;
  #retries = 0;

  /**
   * Starts reading at once (creating the group when `create` is on). Problems surface through
   * {@link ready} and {@link receive}.
   *
   * @param client an ioredis `Redis` or `Cluster` for acks and claims; it stays the caller's. Reads
   * use a duplicate connection that the subscription closes itself.
   */
  constructor(client: RedisClient, options: SubscriptionOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', 'new Subscription(client, { topic, group }) needs options');
    }
    rejectUnknownFields(options, SUBSCRIPTION_FIELDS, 'new Subscription() options');
    this.#client = client;
    this.topic = checkName(options.topic, 'the topic');
    this.group = checkName(options.group, 'the group');
    this.consumer = checkName(options.consumer ?? defaultConsumerName(), 'the consumer name');
    this.#owned = (options as { [OWNS_CLIENT]?: boolean })[OWNS_CLIENT] === true;
    this.#create = options.create ?? true;
    const from = options.from ?? '$';
    if (from !== '$' && !isStreamId(from)) {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        `from must be "$", "0" or an entry ID like 1700000000000-0, got "${from}"`,
      );
    }
    this.#from = from;
    this.#ackDeadlineMs = integer(options.ackDeadlineMs, 60_000, 1, MAX_ACK_DEADLINE_MS, 'ackDeadlineMs');
    this.#maxLeaseMs = integer(options.maxLeaseMs, 3_600_000, 0, Number.MAX_SAFE_INTEGER, 'maxLeaseMs');
    this.#claimIntervalMs = integer(
      options.claimIntervalMs,
      Math.max(10, Math.min(Math.floor(this.#ackDeadlineMs / 2), 5000)),
      1,
      MAX_ACK_DEADLINE_MS,
      'claimIntervalMs',
    );
    this.#maxInFlight = integer(options.maxInFlight, 1000, 1, 1_000_000, 'maxInFlight');
    this.#prefetch = Math.min(integer(options.prefetch, 200, 1, 100_000, 'prefetch'), this.#maxInFlight);
    this.#blockMs = integer(options.blockMs, 1000, 1, 60_000, 'blockMs');
    const maxDeliveries = options.maxDeliveries ?? 10;
    if (maxDeliveries !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(maxDeliveries) && maxDeliveries >= 1)) {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        `maxDeliveries must be a positive integer or Infinity, got ${maxDeliveries}`,
      );
    }
    this.#maxDeliveries = maxDeliveries;
    this.#deadLetterMaxLen = String(
      integer(options.deadLetterMaxLen, 0, 0, Number.MAX_SAFE_INTEGER, 'deadLetterMaxLen'),
    );
    this.#onMalformed = options.onMalformed ?? 'dead-letter';
    if (this.#onMalformed !== 'dead-letter' && this.#onMalformed !== 'ack') {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        `onMalformed must be "dead-letter" or "ack", got "${this.#onMalformed}"`,
      );
    }
    this.#deleteAcked = options.deleteAcked ?? false;
    this.#deleteConsumer = options.deleteConsumerOnShutdown ?? true;
    this.#noAck = options.noAck ?? false;
    this.#featureOverrides = options.features ?? {};
    this.#commandTimeoutMs = integer(options.commandTimeoutMs, 10_000, 1, 600_000, 'commandTimeoutMs');
    this.#readTimeoutMs = integer(options.readTimeoutMs, 5000, 1, 600_000, 'readTimeoutMs');
    this.#retryOptions = options.retry ?? {};
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#connectTimeoutMs = integer(options.connectTimeoutMs, 10_000, 1, 3_600_000, 'connectTimeoutMs');
    if (options.logger !== undefined && !isLogger(options.logger)) {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        'logger needs debug, warn and error methods (console and pino have them)',
      );
    }
    this.#logger = options.logger ?? noopLogger;
    this.deadLetterKey = this.#resolveDeadLetterKey(options.deadLetterKey);
    this.#settler = {
      topic: this.topic,
      group: this.group,
      settle: (message, how, reason) => this.#settle(message, how, reason),
      extend: (message) => this.#extend(message),
    };
    this.#leaveCensus = joinGroupCensus(client, this.topic, this.group, this.consumer);
    this.#ready = this.#startup();
    this.#ready.catch(() => {}); // reported through receive() and ready()
    this.#loop = this.#ready.then(
      () =>
        this.#readLoop().catch((err: unknown) =>
          this.#fail(toStreamsError(err, { what: 'the read loop', topic: this.topic, group: this.group })),
        ),
      () => {},
    );
  }

  #resolveDeadLetterKey(explicit: string | undefined): string {
    // ioredis puts its keyPrefix in front of every key: slots are those of the prefixed names.
    const prefix = keyPrefixOf(this.#client);
    const sameSlot = (key: string) => keySlot(prefix + key) === keySlot(prefix + this.topic);
    const cluster = isClusterClient(this.#client);
    if (explicit !== undefined) {
      const key = checkName(explicit, 'deadLetterKey');
      if (cluster && !sameSlot(key)) {
        throw new StreamsError(
          'ERR_STREAMS_ARGUMENT',
          `deadLetterKey "${key}" is in another cluster slot than topic "${this.topic}"; give both the same hash tag, like {${this.topic}}:dead`,
        );
      }
      return key;
    }
    const key = defaultDeadLetterKey(this.topic);
    if (key === undefined || (cluster && !sameSlot(key))) {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        `no default dead-letter key shares the cluster slot of topic "${prefix}${this.topic}"; give the topic a hash tag (like {orders}) or set deadLetterKey`,
      );
    }
    return key;
  }

  /** Counters since the subscription was opened. */
  get stats(): SubscriptionStats {
    return {
      delivered: this.#delivered,
      redelivered: this.#redelivered,
      claimed: this.#claimed,
      acked: this.#acked,
      nacked: this.#nacked,
      deadLettered: this.#deadLettered,
      malformed: this.#malformed,
      deletedWhilePending: this.#deleted,
      duplicatesSuppressed: this.#duplicates,
      retries: this.#retries,
      inFlight: this.#known.size,
      buffered: this.#buffer.length - this.#bufferHead,
    };
  }

  /** The optional server features in use (known once {@link ready} resolves). */
  get features(): ServerFeatures {
    return this.#features;
  }

  /**
   * Resolves once the group exists (this subscription created it, or found it) and reading has
   * started. Not needed to avoid losing messages (a `$` group starts when the constructor ran);
   * useful to learn early that the group is missing (`create: false`) or the server refuses.
   *
   * @example
   * ```ts
   * const subscription = new Subscription(redis, { topic: 'orders', group: 'billing', create: false });
   * await subscription.ready({ signal: AbortSignal.timeout(5000) }); // ERR_STREAMS_NOT_FOUND if there is no such group
   * ```
   * @throws {StreamsError} the permanent failure that ended the subscription (`ERR_STREAMS_NOT_FOUND`,
   * `ERR_STREAMS_WRONG_TYPE`, `ERR_STREAMS_REDIS`...), `ERR_STREAMS_CLOSED` when shut down before it
   * started, or an `AbortError` (`ERR_STREAMS_ABORTED`) when the signal fires; the subscription goes on.
   */
  ready(options: ReceiveOptions = {}): Promise<void> {
    return abortable(this.#ready, options.signal, `ready() of subscription "${this.group}"`, {
      topic: this.topic,
      group: this.group,
    });
  }

  /**
   * The next message. Waits while there is none; transient failures are retried meanwhile.
   *
   * @throws {StreamsError} `ERR_STREAMS_CLOSED` after shutdown, `ERR_STREAMS_ABORTED` when the
   * signal fires, `ERR_STREAMS_NOT_FOUND` when the group does not exist (and `create` is off),
   * or the permanent failure that ended the subscription.
   */
  receive(options: ReceiveOptions = {}): Promise<Message> {
    if (!receiveChannel.hasSubscribers) return this.#receive(options);
    const context: ReceiveTrace = {
      destination: this.topic,
      group: this.group,
      consumer: this.consumer,
      ...serverOf(this.#client),
    };
    return receiveChannel.tracePromise(
      () =>
        this.#receive(options).then((message) => {
          context.messageId = message.id;
          context.bodySize = message.body.length;
          context.deliveryAttempt = message.deliveryAttempt;
          context.carrier = carrierOf(message.metadata);
          return message;
        }),
      context,
    );
  }

  #receive(options: ReceiveOptions): Promise<Message> {
    const { signal } = options;
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#state === 'stopping' || this.#state === 'closed') return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(this.#cancelled(signal));
    const buffered = this.#takeBuffered();
    if (buffered) return Promise.resolve(buffered);
    return new Promise<Message>((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        reject(this.#cancelled(signal as AbortSignal));
      };
      const waiter: Waiter = {
        resolve: (message) => {
          waiter.cleanup();
          resolve(message);
        },
        reject: (err) => {
          waiter.cleanup();
          reject(err);
        },
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#wake(); // a reader waiting for room to grow may read now
    });
  }

  /**
   * Messages until the subscription shuts down or the signal fires (the loop then ends) or the
   * subscription fails (the loop throws). Leaving the loop early does not shut the subscription
   * down. `for await (const m of subscription)` is the same without a signal.
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * process.once('SIGINT', () => controller.abort());
   * for await (const message of subscription.messages({ signal: controller.signal })) {
   *   await handle(message);
   *   message.ack();
   * }
   * ```
   */
  messages(options: ReceiveOptions = {}): AsyncIterableIterator<Message> {
    const { signal } = options;
    // A plain iterator rather than an async generator: one promise per message, not three.
    const done: IteratorReturnResult<undefined> = { value: undefined, done: true };
    let ended = false;
    const iterator: AsyncIterableIterator<Message> = {
      next: () => {
        if (ended) return Promise.resolve(done);
        return this.receive(signal ? { signal } : {}).then(
          (value): IteratorYieldResult<Message> => ({ value, done: false }),
          (err: unknown) => {
            if (
              err instanceof StreamsError &&
              (err.code === 'ERR_STREAMS_CLOSED' || err.code === 'ERR_STREAMS_ABORTED')
            ) {
              ended = true;
              return done;
            }
            throw err;
          },
        );
      },
      return: async () => {
        ended = true;
        return done;
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The same as {@link messages} without a signal: `for await (const message of subscription)`. */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return this.messages();
  }

  /**
   * Stops reading at once (the reader's connection is closed, never waited on), hands messages
   * read ahead back to the group, waits up to `timeoutMs` (or until `signal`) for messages the
   * application holds to be settled and for acks to reach Redis, releases whatever else is
   * pending on this consumer, deletes the consumer when nothing is left pending on it, and closes
   * the connections it owns. Resolves only when nothing was abandoned.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', async () => {
   *   try {
   *     await subscription.shutdown({ timeoutMs: 5000 });
   *   } catch (err) {
   *     if (err instanceof StreamsError && err.code === 'ERR_STREAMS_ABANDONED') console.warn(err.abandoned); // { held: 2 }
   *   }
   * });
   * ```
   * @throws {StreamsError} `ERR_STREAMS_ABANDONED` when messages were still held unsettled at the
   * bound, or acks, nacks or dead letters did not reach Redis (those messages will be delivered
   * again; `abandoned` says how many); `ERR_STREAMS_CLOSED` on a second call.
   */
  async shutdown(options: ShutdownOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', 'shutdown() takes an options object: { timeoutMs, signal }');
    }
    rejectUnknownFields(options, ['timeoutMs', 'signal'], 'shutdown() options');
    if (this.#state === 'stopping' || this.#state === 'closed') throw this.#closedError();
    const timeoutMs = integer(options.timeoutMs, 10_000, 0, 3_600_000, 'timeoutMs');
    const { signal } = options;
    this.#state = 'stopping';
    this.#leaveCensus();
    this.#deadline = Date.now() + timeoutMs;
    const giveUp = () => {
      this.#deadline = Date.now();
      this.#giveUp.abort();
      this.#signalSettled();
    };
    if (signal?.aborted) giveUp();
    else signal?.addEventListener('abort', giveUp, { once: true });
    let discarded = 0;
    let held = 0;
    try {
      this.#stop.abort();
      clearInterval(this.#claimTimer);
      clearInterval(this.#renewTimer);
      for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#closedError());
      this.#wake();
      this.#reader?.disconnect();
      await this.#loop;
      // A claim on a server that stopped answering waits up to commandTimeoutMs: not beyond the bound.
      await this.#withinBound(this.#claiming);
      const started = await this.#ready.then(
        () => true,
        () => false,
      );
      if (this.#noAck) {
        discarded = this.#buffer.length - this.#bufferHead;
        this.#buffer = [];
        this.#bufferHead = 0;
      } else if (started) {
        const buffered = this.#buffer.slice(this.#bufferHead);
        this.#buffer = [];
        this.#bufferHead = 0;
        for (const message of buffered) this.#forget(message.id);
        this.#signalSettled();
        await this.#untilSettled();
        await this.#drainBackground();
        held = this.#heldCount();
        await this.#releaseConsumer();
      }
    } finally {
      signal?.removeEventListener('abort', giveUp);
    }
    this.#state = 'closed';
    let settlements = this.#settleFailures;
    // Still queued, or on the wire without a reply: given up (a late reply is ignored).
    for (const pending of [...Object.values(this.#queues).flat(), ...[...this.#inFlightSettles].flat()]) {
      settlements++;
      pending.reject(
        new StreamsError(
          'ERR_STREAMS_CLOSED',
          `subscription "${this.group}" shut down before Redis confirmed this settlement of message ${pending.message.id}; it will be delivered again`,
          { topic: this.topic, group: this.group },
        ),
      );
    }
    for (const queue of Object.values(this.#queues)) queue.length = 0;
    // Only if still open: ioredis arms a 2 s timer on every disconnect() and clears it when the
    // socket closes, so a second call on a closed client keeps the process alive for 2 s.
    if (this.#reader !== undefined && this.#reader.status !== 'end') this.#reader.disconnect();
    if (this.#owned) await quit(this.#client, this.#cleanupBudget());
    if (held + settlements + discarded > 0) {
      const parts = [
        held > 0 && `${held} message(s) still held unsettled (they will be delivered again after the ack deadline)`,
        settlements > 0 &&
          `${settlements} ack(s), nack(s) or dead letter(s) not confirmed by Redis (those messages will be delivered again)`,
        discarded > 0 && `${discarded} message(s) read ahead with noAck and never handed out (they are gone)`,
      ].filter(Boolean);
      throw new StreamsError(
        'ERR_STREAMS_ABANDONED',
        `subscription "${this.group}" on topic "${this.topic}" shut down with ${parts.join(', ')}`,
        {
          topic: this.topic,
          group: this.group,
          abandoned: {
            ...(held > 0 ? { held } : {}),
            ...(settlements > 0 ? { settlements } : {}),
            ...(discarded > 0 ? { discarded } : {}),
          },
        },
      );
    }
  }

  /** Waits for `work`, but not past the shutdown's bound. */
  async #withinBound(work: Promise<unknown> | undefined): Promise<void> {
    if (work === undefined) return;
    await this.#untilDeadline(work);
  }

  /** Waits for `work` until the shutdown's deadline or its signal, leaving no timer behind. */
  async #untilDeadline(work: Promise<unknown>): Promise<void> {
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, this.#giveUp.signal]);
    try {
      await Promise.race([work.catch(() => {}), delay(Math.max(0, this.#deadline - Date.now()), { signal })]);
    } finally {
      stop.abort(); // clears the pause's timer
    }
  }

  /** Emits a retry event and logs it. */
  #retried(event: RetryEvent): void {
    this.#logger.warn(
      {
        package: '@redis-events/streams-driver',
        err: event.error,
        topic: this.topic,
        group: this.group,
        operation: event.operation,
        attempt: event.attempt,
        delayMs: event.delayMs,
      },
      `${event.operation} failed (${event.error.message}); trying again in ${event.delayMs} ms`,
    );
    this.emit('retry', event);
  }

  /** Messages the application holds, neither settled nor being settled. */
  #heldCount(): number {
    let settling = 0;
    for (const queue of Object.values(this.#queues)) {
      for (const pending of queue) if (this.#known.get(pending.message.id) === pending.message) settling++;
    }
    for (const batch of this.#inFlightSettles) {
      for (const pending of batch) if (this.#known.get(pending.message.id) === pending.message) settling++;
    }
    return Math.max(0, this.#known.size - settling);
  }

  /** Time left for the last steps of a shutdown: what the bound leaves, and at least a short try. */
  #cleanupBudget(): number {
    return Math.max(this.#deadline - Date.now(), Math.min(this.#commandTimeoutMs, 1000));
  }

  /** Shuts down unless already done, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state !== 'stopping' && this.#state !== 'closed') await this.shutdown();
  }

  // ---------------------------------------------------------------- startup and reading

  async #startup(): Promise<void> {
    const backoff = new Backoff(this.#retryOptions);
    // Sent before the constructor returns, so a command given to this client afterwards (an XADD
    // by a Topic on the same client) runs after it: a stream this subscription creates exists by then.
    let group: Promise<void> | undefined = this.#startGroup();
    group.catch(() => {}); // awaited below
    // A client that is not connected yet gets connectTimeoutMs to connect: then the subscription
    // fails with the address and the cause rather than retrying in silence.
    const connected =
      this.#client.status === 'ready'
        ? undefined
        : waitUntilReady(this.#client, {
            timeoutMs: this.#connectTimeoutMs,
            signal: this.#stop.signal,
            error: (failure) => connectError(failure, { topic: this.topic, group: this.group }),
          });
    connected?.catch(() => {}); // awaited below
    for (;;) {
      try {
        const starting = group ?? this.#startGroup();
        group = undefined;
        let detected = featureCache.get(this.#client);
        if (!detected) {
          detected = detectFeatures(this.#client, this.#commandTimeoutMs);
          featureCache.set(this.#client, detected);
        }
        const [features] = await Promise.all([detected, starting, connected]);
        this.#features = { ...features, ...this.#featureOverrides };
        break;
      } catch (err) {
        if (this.#state !== 'starting') throw this.#closedError();
        if (classifyFailure(err) !== 'transient') {
          const failure = toStreamsError(err, {
            what: this.#create ? 'creating the consumer group' : 'looking for the consumer group',
            topic: this.topic,
            group: this.group,
            command: 'XGROUP',
          });
          this.#fail(failure);
          throw failure;
        }
        await this.#retryPause('group', err, backoff);
        if (this.#state !== 'starting') throw this.#closedError();
      }
    }
    if (this.#state !== 'starting') throw this.#closedError();
    this.#state = 'running';
    this.#reader = openBlockingConnection(
      this.#client,
      `streams-driver:${this.group}:${this.consumer}`.slice(0, 200).replace(/\s/g, '_'),
    );
    this.#reader.on('error', () => {}); // read failures come back through the read loop
  }

  /**
   * Makes sure the group exists (see "Where a subscription starts" in the README). With `from: '$'`
   * the group starts at the moment the subscription was constructed, by the server's clock: the
   * first step asks for the server's time and, if the group is missing and the stream is not, the
   * second creates it just before that moment, which is the server's time at the first reply minus
   * how long ago the constructor ran. So a message stored while this client was still connecting,
   * or while a failed attempt was retried, is delivered; one stored before the constructor is not
   * (except within the millisecond resolution of entry IDs and one network latency).
   */
  async #startGroup(): Promise<void> {
    const mode = !this.#create ? 'check' : this.#from === '$' ? 'probe' : 'create';
    // EVAL, not EVALSHA: a NOSCRIPT retry would let later commands of this client overtake it.
    const first = this.#client.call('eval', START_GROUP.source, 1, this.topic, this.group, mode, this.#from);
    const [reply, repliedAt] = await withTimeout(
      first.then((value) => [value, performance.now()] as const),
      this.#commandTimeoutMs,
      'the group start script',
    );
    const [state, seconds, micros] = startReply(reply);
    if (state !== 'missing') return;
    const serverMs = seconds * 1000 + micros / 1000;
    const since = Math.floor(serverMs - (repliedAt - this.#openedAt));
    const second = await withTimeout(
      runScript(this.#client, START_GROUP, [this.topic], [this.group, 'since', String(since)]),
      this.#commandTimeoutMs,
      'the group start script',
    );
    startReply(second);
  }

  #createGroup(from: string): Promise<boolean> {
    return withTimeout(
      runScript(this.#client, START_GROUP, [this.topic], [this.group, 'create', from]),
      this.#commandTimeoutMs,
      'XGROUP CREATE',
    ).then((reply) => startReply(reply)[0] === 'created');
  }

  async #readLoop(): Promise<void> {
    const backoff = new Backoff(this.#retryOptions);
    // Own pending entries first (left by an earlier run of this consumer), once, by cursor.
    let drainCursor: string | undefined = this.#noAck ? undefined : '0';
    if (!this.#noAck && !this.#features.readClaim) {
      this.#claimTimer = setInterval(() => this.#startClaimPass(), this.#claimIntervalMs);
      this.#claimTimer.unref();
    }
    if (!this.#noAck && this.#maxLeaseMs > 0) {
      this.#renewTimer = setInterval(() => void this.#renewLeases(), Math.max(10, Math.floor(this.#ackDeadlineMs / 3)));
      this.#renewTimer.unref();
    }
    while (this.#state === 'running') {
      const room = await this.#room();
      if (room === 0) break;
      try {
        if (drainCursor !== undefined) {
          drainCursor = await this.#drainOwn(drainCursor, room);
          if (drainCursor === undefined) this.#startClaimPass();
        } else {
          await this.#readNew(room);
        }
        backoff.reset();
      } catch (err) {
        if (this.#state !== 'running') break;
        await this.#onReadFailure(err, backoff);
      }
    }
  }

  async #onReadFailure(err: unknown, backoff: Backoff): Promise<void> {
    const kind = classifyFailure(err);
    if (kind === 'unknown-command' && this.#features.readClaim) {
      // The server refused XREADGROUP ... CLAIM after all (a proxy, a mixed cluster): 7.0 way.
      this.#features = { ...this.#features, readClaim: false };
      this.#claimTimer = setInterval(() => this.#startClaimPass(), this.#claimIntervalMs);
      this.#claimTimer.unref();
      return;
    }
    if (kind === 'no-group' && this.#create) {
      // The group (or the whole stream) was deleted under us. What this subscription holds
      // belongs to the old group: a new stream can even reuse the same entry IDs, so those
      // messages must never be acknowledged in the new one.
      this.#forgetIncarnation();
      try {
        // Start over from the beginning of what is retained: redelivering is safe, skipping is not.
        if (await this.#createGroup('0')) {
          this.#logger.warn(
            { package: '@redis-events/streams-driver', topic: this.topic, group: this.group },
            `the group "${this.group}" had disappeared; created again from 0 (messages are delivered again)`,
          );
          this.emit('recreated', { group: this.group });
        }
        return;
      } catch (again) {
        err = again;
      }
    }
    const kind2 = classifyFailure(err);
    if (kind2 === 'transient' || (kind2 === 'no-group' && this.#create)) {
      await this.#retryPause('read', err, backoff);
      return;
    }
    this.#fail(toStreamsError(err, { what: 'reading', topic: this.topic, group: this.group, command: 'XREADGROUP' }));
  }

  async #retryPause(operation: string, err: unknown, backoff: Backoff): Promise<void> {
    const delayMs = backoff.next();
    this.#retries++;
    const error = toStreamsError(err, { what: operation, topic: this.topic, group: this.group });
    this.#retried({ operation, attempt: backoff.attempt, delayMs, error });
    await delay(delayMs, { signal: this.#state === 'stopping' ? undefined : this.#stop.signal });
  }

  #fail(err: StreamsError): void {
    if (this.#failure || this.#state === 'closed') return;
    this.#failure = err;
    this.#leaveCensus();
    if (this.#state === 'starting' || this.#state === 'running') this.#state = 'failed';
    clearInterval(this.#claimTimer);
    clearInterval(this.#renewTimer);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(err);
    this.#wake();
    this.#logger.error(
      { package: '@redis-events/streams-driver', err, topic: this.topic, group: this.group, code: err.code },
      `subscription "${this.group}" on topic "${this.topic}" failed for good: ${err.message}`,
    );
    if (this.listenerCount('failed') > 0) this.emit('failed', err);
  }

  /** How many entries the reader may take now; waits while none. 0 means stop. */
  async #room(): Promise<number> {
    for (;;) {
      if (this.#state !== 'running') return 0;
      const buffered = this.#buffer.length - this.#bufferHead;
      const room = Math.min(this.#prefetch - buffered, this.#maxInFlight - this.#known.size);
      // Read in sizeable batches, unless the application is waiting with nothing buffered.
      const worth = this.#waiters.length > 0 && buffered === 0 ? 1 : Math.max(1, this.#prefetch >> 2);
      if (room >= worth) return room;
      await new Promise<void>((resolve) => {
        this.#wakeReader = resolve;
      });
    }
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  /**
   * XREADGROUP on the reader's connection, settled by whichever comes first: the reply, the
   * connection closing (ioredis drops an unanswered command on reconnect without settling it, as
   * the reader does not resend), or a watchdog for a connection that died silently (no FIN, no
   * RST) and would otherwise wait for TCP keepalive; the watchdog reconnects.
   */
  async #readerCall(args: (string | number)[], waitMs: number): Promise<unknown> {
    const reader = this.#reader as RedisClient;
    const read = reader.callBuffer('xreadgroup', ...args);
    read.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const stop = this.#stop.signal;
    const interrupted = new Promise<never>((_, reject) => {
      const fail = (message: string) =>
        reject(new StreamsError('ERR_STREAMS_TIMEOUT', message, { retryable: true, command: 'XREADGROUP' }));
      timer = setTimeout(() => {
        reader.disconnect(true);
        fail(`XREADGROUP got no reply within ${waitMs + this.#readTimeoutMs} ms; reconnecting`);
      }, waitMs + this.#readTimeoutMs);
      // 'close' may come late (ioredis waits up to 2 s for a socket that does not answer its FIN);
      // a shutdown does not wait for it.
      onClose = () => fail('the connection closed during XREADGROUP');
      reader.once('close', onClose);
      stop.addEventListener('abort', onClose, { once: true });
    });
    try {
      return await Promise.race([read, interrupted]);
    } finally {
      clearTimeout(timer);
      if (onClose) {
        reader.off('close', onClose);
        stop.removeEventListener('abort', onClose);
      }
    }
  }

  async #drainOwn(cursor: string, room: number): Promise<string | undefined> {
    const reply = await this.#readerCall(
      ['GROUP', this.group, this.consumer, 'COUNT', room, 'STREAMS', this.topic, cursor],
      0, // no BLOCK: only the watchdog's own allowance
    );
    const entries = streamEntries(reply, room);
    if (entries.length === 0) return undefined;
    const first = entries[0] as RawEntry;
    const last = entries[entries.length - 1] as RawEntry;
    const counts = new Map<string, number>();
    const pending = toList(
      await withTimeout(
        this.#client.call('xpending', this.topic, this.group, first.id, last.id, entries.length, this.consumer),
        this.#commandTimeoutMs,
        'XPENDING',
      ),
      'XPENDING',
    );
    for (const row of pending) {
      if (!Array.isArray(row) || row.length < 4)
        throw protocolError('an XPENDING row is not [id, consumer, idle, count]');
      counts.set(asText(row[0], 'an XPENDING ID'), asCount(row[3], 'an XPENDING delivery count'));
    }
    this.#deliver(entries, (entry) => counts.get(entry.id) ?? 1, 'own');
    return last.id;
  }

  async #readNew(room: number): Promise<void> {
    const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', room, 'BLOCK', this.#blockMs];
    const claim = this.#features.readClaim && !this.#noAck;
    if (claim) args.push('CLAIM', this.#ackDeadlineMs);
    if (this.#noAck) args.push('NOACK');
    args.push('STREAMS', this.topic, '>');
    const reply = await this.#readerCall(args, this.#blockMs);
    const entries = streamEntries(reply, room);
    if (entries.length === 0) return;
    if (claim) {
      this.#deliver(entries, (entry) => (entry.previousDeliveries ?? 0) + 1, 'read');
    } else {
      this.#deliver(entries, () => 1, 'read');
    }
  }

  // ---------------------------------------------------------------- delivery

  #deliver(
    entries: readonly RawEntry[],
    attemptOf: (entry: RawEntry) => number,
    source: 'own' | 'read' | 'claim',
  ): void {
    const deleted: string[] = [];
    const dead: [string, number][] = [];
    for (const entry of entries) {
      if (this.#known.has(entry.id)) {
        // Redelivered while this subscription still has it (its deadline passed): one copy is enough.
        this.#duplicates++;
        continue;
      }
      if (entry.fields === null) {
        deleted.push(entry.id);
        continue;
      }
      const attempt = attemptOf(entry);
      if (source === 'claim' || (source === 'read' && attempt > 1)) this.#claimed++;
      if (attempt > this.#maxDeliveries && !this.#noAck) {
        dead.push([entry.id, attempt]);
        continue;
      }
      let message: Message;
      try {
        const decoded = decodeEntry(entry.fields, this.#limits);
        message = new Message(this.#settler, entry.id, decoded.body, decoded.metadata, attempt);
        if (attempt > 1 && redeliveryChannel.hasSubscribers) {
          redeliveryChannel.publish({
            destination: this.topic,
            group: this.group,
            consumer: this.consumer,
            messageId: entry.id,
            deliveryAttempt: attempt,
            count: 1,
          });
        }
      } catch (err) {
        const error = err instanceof StreamsError ? err : protocolError(String(err));
        const detailed = new StreamsError(
          'ERR_STREAMS_MALFORMED',
          `entry ${entry.id} of topic "${this.topic}" cannot be decoded: ${error.message}`,
          { topic: this.topic, group: this.group, cause: error },
        );
        this.#malformed++;
        const action = this.#noAck ? 'ack' : this.#onMalformed;
        this.#logger.warn(
          {
            package: '@redis-events/streams-driver',
            err: detailed,
            topic: this.topic,
            group: this.group,
            id: entry.id,
            action,
          },
          `entry ${entry.id} cannot be decoded; ${action === 'ack' ? 'acknowledged and dropped' : 'moved to the dead-letter stream'}`,
        );
        this.emit('malformed', { id: entry.id, error: detailed, action });
        if (this.#noAck) continue;
        if (this.#onMalformed === 'dead-letter')
          this.#runBackground(this.#deadLetterNow([[entry.id, attempt]], `malformed: ${error.message}`));
        else deleted.push(entry.id);
        continue;
      }
      this.#delivered++;
      if (attempt > 1) this.#redelivered++;
      if (this.#noAck) {
        this.#handOut(message);
        continue;
      }
      this.#known.set(entry.id, message);
      this.#since.set(entry.id, Date.now());
      this.#handOut(message);
    }
    if (deleted.length > 0 && !this.#noAck) {
      this.#deleted += deleted.length;
      this.#runBackground(this.#ackNow(deleted, 'ack').then(() => this.emit('deleted', { ids: deleted })));
    }
    if (dead.length > 0) this.#runBackground(this.#deadLetterNow(dead, 'max-deliveries'));
  }

  #handOut(message: Message): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve(message);
      return;
    }
    this.#buffer.push(message);
  }

  #takeBuffered(): Message | undefined {
    if (this.#bufferHead >= this.#buffer.length) return undefined;
    const message = this.#buffer[this.#bufferHead] as Message;
    this.#buffer[this.#bufferHead++] = undefined as unknown as Message;
    if (this.#bufferHead === this.#buffer.length) {
      this.#buffer = [];
      this.#bufferHead = 0;
    } else if (this.#bufferHead > 1024 && this.#bufferHead * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#bufferHead);
      this.#bufferHead = 0;
    }
    this.#wake();
    return message;
  }

  #runBackground(work: Promise<unknown>): void {
    const tracked = work.catch((err) => {
      if (classifyFailure(err) === 'permanent') {
        this.#fail(toStreamsError(err, { what: 'a background step', topic: this.topic, group: this.group }));
      }
    });
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  // ---------------------------------------------------------------- reclaiming idle entries

  /**
   * Starts a pass over the pending list unless one runs (then another follows it). Servers with
   * XREADGROUP CLAIM need no timer, but a nack still asks for a pass: a blocked read would only
   * see the released entry when its BLOCK ends.
   */
  #startClaimPass(): void {
    if (this.#claiming !== undefined) {
      this.#claimSoon = true;
      return;
    }
    if (this.#state !== 'running' || this.#noAck) return;
    this.#claiming = this.#claimPass().finally(() => {
      this.#claiming = undefined;
      if (this.#claimSoon) {
        this.#claimSoon = false;
        this.#startClaimPass();
      }
    });
  }

  async #claimPass(): Promise<void> {
    this.#claimWantsRoom = false;
    for (let call = 0; call < CLAIM_CALLS_PER_PASS && this.#state === 'running'; call++) {
      const room = Math.min(
        this.#prefetch - (this.#buffer.length - this.#bufferHead),
        this.#maxInFlight - this.#known.size,
      );
      if (room <= 0) {
        this.#claimWantsRoom = true;
        return;
      }
      let reply: unknown;
      try {
        reply = await withTimeout(
          runScript(
            this.#client,
            CLAIM,
            [this.topic, this.deadLetterKey],
            [
              this.group,
              this.consumer,
              this.#ackDeadlineMs,
              this.#claimCursor,
              room,
              Number.isFinite(this.#maxDeliveries) ? this.#maxDeliveries : 0,
              this.#deadLetterMaxLen,
            ],
            { buffers: true },
          ),
          this.#commandTimeoutMs,
          'XAUTOCLAIM script',
        );
      } catch (err) {
        const kind = classifyFailure(err);
        if (kind === 'no-group') return; // the read loop deals with a missing group
        if (kind === 'transient') {
          this.#retries++;
          this.#retried({
            operation: 'claim',
            attempt: 1,
            delayMs: this.#claimIntervalMs,
            error: toStreamsError(err, { what: 'claiming', topic: this.topic, group: this.group }),
          });
          return; // the next pass tries again
        }
        this.#fail(
          toStreamsError(err, {
            what: 'claiming idle messages',
            topic: this.topic,
            group: this.group,
            command: 'XAUTOCLAIM',
          }),
        );
        return;
      }
      const [cursor, claimed, deleted, dead] = this.#parseClaim(reply, room);
      this.#claimCursor = cursor;
      if (deleted.length > 0) {
        this.#deleted += deleted.length;
        this.emit('deleted', { ids: deleted });
      }
      for (const [id, attempts] of dead) this.#movedToDeadLetter(id, 'max-deliveries', attempts);
      // A shutdown began meanwhile: the claimed entries stay pending on this consumer, and its
      // release step (or another consumer, after the ack deadline) hands them on.
      if (this.#state !== 'running') return;
      const attempts = new Map(claimed.map((c) => [c.entry.id, c.attempts]));
      this.#deliver(
        claimed.map((c) => c.entry),
        (entry) => attempts.get(entry.id) ?? 1,
        'claim',
      );
      if (cursor === '0-0') return; // walked the whole pending list
    }
  }

  #parseClaim(
    reply: unknown,
    room: number,
  ): [string, { entry: RawEntry; attempts: number }[], string[], [string, number][]] {
    const parts = toList(reply, 'the claim script reply');
    if (parts.length !== 4) throw protocolError('the claim script reply does not have 4 parts');
    const cursor = asText(parts[0], 'the XAUTOCLAIM cursor');
    const rows = toList(parts[1], 'claimed entries');
    if (rows.length > room)
      throw protocolError(`XAUTOCLAIM returned ${rows.length} entries, more than the COUNT of ${room}`);
    const claimed = rows.map((row) => {
      if (!Array.isArray(row) || row.length !== 3)
        throw protocolError('a claimed entry is not [id, fields, deliveries]');
      return { entry: parseEntry([row[0], row[1]]), attempts: asCount(row[2], 'a delivery count') };
    });
    const deleted = toList(parts[2], 'deleted IDs').map((id) => asText(id, 'a deleted ID'));
    const dead = toList(parts[3], 'dead-lettered IDs').map((id): [string, number] => [
      asText(id, 'a dead-lettered ID'),
      this.#maxDeliveries + 1,
    ]);
    return [cursor, claimed, deleted, dead];
  }

  // ---------------------------------------------------------------- settling

  #settle(message: Message, how: Settlement, reason?: string): Promise<void> {
    const channel = how === 'ack' ? ackChannel : how === 'nack' ? nackChannel : undefined;
    if (channel === undefined || !channel.hasSubscribers) return this.#settleNow(message, how, reason);
    const context = {
      destination: this.topic,
      group: this.group,
      consumer: this.consumer,
      messageId: message.id,
      deliveryAttempt: message.deliveryAttempt,
    };
    return channel.tracePromise(() => this.#settleNow(message, how, reason), context);
  }

  #settleNow(message: Message, how: Settlement, reason?: string): Promise<void> {
    if (this.#noAck) {
      if (how === 'ack') return Promise.resolve();
      return Promise.reject(
        new StreamsError(
          'ERR_STREAMS_UNSUPPORTED',
          `${how}() needs acknowledgements, and subscription "${this.group}" reads with noAck`,
          {
            topic: this.topic,
            group: this.group,
          },
        ),
      );
    }
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    // Delivered by a group that no longer exists (see #forgetIncarnation): nothing to settle.
    if (this.#known.get(message.id) !== message) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#queues[how].push(once({ message, reason, resolve, reject }));
      if (!this.#settleScheduled) {
        this.#settleScheduled = true;
        setImmediate(() => {
          this.#settleScheduled = false;
          this.#flushSettles();
        });
      }
    });
  }

  #flushSettles(): void {
    for (const how of ['ack', 'nack', 'dead-letter'] as const) {
      const queue = this.#queues[how];
      while (queue.length > 0) {
        const batch = queue.splice(0, SETTLE_BATCH);
        this.#inFlightSettles.add(batch);
        const work = this.#sendSettles(how, batch);
        this.#settling.add(work);
        void work.finally(() => this.#settling.delete(work));
      }
    }
  }

  async #sendSettles(how: Settlement, batch: PendingSettle[]): Promise<void> {
    try {
      if (how === 'ack') {
        await this.#ackNow(
          batch.map((p) => p.message.id),
          'ack',
        );
        this.#acked += batch.length;
      } else if (how === 'nack') {
        await this.#withFeature('xnack', (xnack) =>
          this.#retrying('nack', () =>
            runScript(
              this.#client,
              RELEASE,
              [this.topic],
              [
                this.group,
                this.consumer,
                RELEASED_IDLE_MS,
                xnack ? '1' : '0',
                'FAIL',
                ...batch.map((p) => p.message.id),
              ],
            ),
          ),
        );
        this.#nacked += batch.length;
      } else {
        for (const p of batch) {
          await this.#deadLetterNow([[p.message.id, p.message.deliveryAttempt]], p.reason ?? 'rejected');
        }
      }
      for (const p of batch) {
        this.#forget(p.message.id);
        p.resolve();
      }
      if (how === 'nack' || this.#claimWantsRoom) this.#startClaimPass();
    } catch (err) {
      const error = toStreamsError(err, { what: how, topic: this.topic, group: this.group });
      this.#settleFailures += batch.length;
      for (const p of batch) {
        this.#forget(p.message.id); // still pending in Redis: it comes back after the ack deadline
        p.reject(error);
      }
      if (!error.retryable && error.code !== 'ERR_STREAMS_CLOSED') this.#fail(error);
    } finally {
      this.#inFlightSettles.delete(batch);
      this.#signalSettled();
    }
  }

  /** XACK (or XACKDEL / the delete script) with retries. */
  async #ackNow(ids: string[], operation: string): Promise<void> {
    if (!this.#deleteAcked) {
      await this.#retrying(operation, () => this.#client.call('xack', this.topic, this.group, ...ids));
      return;
    }
    await this.#withFeature('xackdel', (xackdel) =>
      this.#retrying(operation, () =>
        xackdel
          ? this.#client.call('xackdel', this.topic, this.group, 'ACKED', 'IDS', ids.length, ...ids)
          : runScript(this.#client, ACK_DELETE, [this.topic], [this.group, ...ids]),
      ),
    );
  }

  /**
   * Runs `work` with an optional feature when the server has it, and for good without it once
   * the server rejects it (a failover to an older server, a proxy that filters commands).
   */
  async #withFeature<T>(feature: 'xnack' | 'xackdel', work: (enabled: boolean) => Promise<T>): Promise<T> {
    if (!this.#features[feature]) return work(false);
    try {
      return await work(true);
    } catch (err) {
      if (classifyFailure(err) !== 'unknown-command') throw err;
      this.#features = { ...this.#features, [feature]: false };
      return work(false);
    }
  }

  async #deadLetterNow(entries: [string, number][], reason: string): Promise<void> {
    const args: (string | number)[] = [this.group, this.consumer, this.#deadLetterMaxLen, reason];
    for (const [id, attempts] of entries) args.push(id, attempts);
    await this.#retrying('dead-letter', () =>
      runScript(this.#client, DEAD_LETTER, [this.topic, this.deadLetterKey], args),
    );
    for (const [id, attempts] of entries) this.#movedToDeadLetter(id, reason, attempts);
  }

  /** Counts, reports and publishes a message Redis moved to the dead-letter stream. */
  #movedToDeadLetter(id: string, reason: string, attempts: number): void {
    this.#deadLettered++;
    this.emit('deadLetter', { id, reason, attempts, deadLetterKey: this.deadLetterKey });
    if (deadLetterChannel.hasSubscribers) {
      deadLetterChannel.publish({
        destination: this.topic,
        group: this.group,
        consumer: this.consumer,
        messageId: id,
        reason,
        deliveryAttempt: attempts,
        deadLetterKey: this.deadLetterKey,
        count: 1,
      });
    }
  }

  async #extend(message: Message): Promise<boolean> {
    if (this.#noAck) return false;
    if (this.#state === 'closed') throw this.#closedError();
    const reply = await this.#retrying('extend', () =>
      runScript(this.#client, RENEW, [this.topic], [this.group, this.consumer, message.id]),
    );
    if (this.#since.has(message.id)) this.#since.set(message.id, Date.now());
    return toList(reply, 'the renew script reply').length === 1;
  }

  /** Renews the lease of every message held for less than maxLeaseMs (see the option). */
  async #renewLeases(): Promise<void> {
    if (this.#renewing || this.#state !== 'running') return;
    this.#renewing = true;
    try {
      const oldest = Date.now() - this.#maxLeaseMs;
      const ids: string[] = [];
      for (const [id, since] of this.#since) if (since > oldest) ids.push(id);
      for (let i = 0; i < ids.length && this.#state === 'running'; i += SETTLE_BATCH) {
        await withTimeout(
          runScript(this.#client, RENEW, [this.topic], [this.group, this.consumer, ...ids.slice(i, i + SETTLE_BATCH)]),
          this.#commandTimeoutMs,
          'renew script',
        );
      }
    } catch (err) {
      // The next tick tries again; a renewal that comes too late only lets another consumer
      // deliver the message a second time, which at-least-once allows.
      if (classifyFailure(err) === 'transient') {
        this.#retries++;
        this.#retried({
          operation: 'renew',
          attempt: 1,
          delayMs: Math.max(10, Math.floor(this.#ackDeadlineMs / 3)),
          error: toStreamsError(err, { what: 'renewing leases', topic: this.topic, group: this.group }),
        });
      }
    } finally {
      this.#renewing = false;
    }
  }

  /** Drops every message of a group that disappeared: read-ahead ones, and the held ones' IDs. */
  #forgetIncarnation(): void {
    this.#buffer = [];
    this.#bufferHead = 0;
    this.#known.clear();
    this.#since.clear();
    this.#claimCursor = '0-0';
    this.#signalSettled();
  }

  #forget(id: string): void {
    this.#known.delete(id);
    this.#since.delete(id);
  }

  /** Runs a command, retrying transient failures until it works or the shutdown deadline passes. */
  async #retrying<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const backoff = new Backoff(this.#retryOptions);
    for (;;) {
      try {
        return await withTimeout(run(), this.#commandTimeoutMs, operation);
      } catch (err) {
        if (classifyFailure(err) !== 'transient') throw err;
        const delayMs = backoff.next();
        if (Date.now() + delayMs > this.#deadline) throw err;
        this.#retries++;
        this.#retried({
          operation,
          attempt: backoff.attempt,
          delayMs,
          error: toStreamsError(err, { what: operation, topic: this.topic, group: this.group }),
        });
        await delay(delayMs, { signal: this.#giveUp.signal });
        if (Date.now() >= this.#deadline) throw err;
      }
    }
  }

  // ---------------------------------------------------------------- shutdown

  #signalSettled(): void {
    this.#wake();
    for (const resolve of this.#settledWaiters.splice(0)) resolve();
  }

  /** Waits until nothing is held by the application or settling, or the deadline. */
  async #untilSettled(): Promise<void> {
    while (this.#known.size > 0 || this.#settling.size > 0 || this.#settleScheduled) {
      const left = this.#deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#settledWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (this.#settling.size > 0) await this.#untilDeadline(Promise.all(this.#settling));
    }
  }

  async #drainBackground(): Promise<void> {
    while (this.#background.size > 0) {
      const left = this.#deadline - Date.now();
      if (left <= 0) return;
      await this.#untilDeadline(Promise.all(this.#background));
    }
  }

  async #releaseConsumer(): Promise<void> {
    const held = [...this.#known.keys()];
    try {
      await this.#withFeature('xnack', (xnack) =>
        withTimeout(
          runScript(
            this.#client,
            RELEASE_CONSUMER,
            [this.topic],
            [this.group, this.consumer, RELEASED_IDLE_MS, xnack ? '1' : '0', this.#deleteConsumer ? '1' : '0', ...held],
          ),
          this.#cleanupBudget(),
          'release script',
        ),
      );
    } catch (err) {
      // Unreleased entries stay pending on this consumer and are reclaimed after the ack
      // deadline: nothing is lost, and shutdown must finish.
      this.#logger.warn(
        { package: '@redis-events/streams-driver', err, topic: this.topic, group: this.group, consumer: this.consumer },
        'could not hand entries back at shutdown; they are taken over after the ack deadline',
      );
    }
  }

  #closedError(): StreamsError {
    return new StreamsError(
      'ERR_STREAMS_CLOSED',
      `subscription "${this.group}" on topic "${this.topic}" was shut down; open a new Subscription to receive more`,
      { topic: this.topic, group: this.group },
    );
  }

  #cancelled(signal: AbortSignal): StreamsError {
    return abortError(`receive() on topic "${this.topic}"`, signal, { topic: this.topic, group: this.group });
  }
}
