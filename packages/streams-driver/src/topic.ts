import { EventEmitter } from 'node:events';
import { isLogger, type Logger, noopLogger } from '@redis-events/resp';
import { waitUntilReady } from '@redis-events/resp/ioredis';
import { abortable, abortError } from './abort.ts';
import { rejectUnknownFields } from './arguments.ts';
import { Backoff, type RetryOptions } from './backoff.ts';
import { OWNS_CLIENT, type RedisClient, runScript, withTimeout } from './client.ts';
import { type CodecLimits, DEFAULT_LIMITS, type EncodedMessage, encodeMessage, type OutgoingMessage } from './codec.ts';
import { bodySizeOf, CARRIER_FIELDS, type SendTrace, sendChannel, serverOf } from './diagnostics.ts';
import { classifyFailure, connectError, StreamsError, toStreamsError } from './errors.ts';
import { SEND } from './scripts.ts';
import { minIdForAge } from './stream-id.ts';

/** How a topic trims its stream as it writes. MAXLEN and age may be combined. */
export interface Retention {
  /** Keep about this many entries (`XADD ... MAXLEN ~ n`). */
  readonly maxLen?: number | undefined;
  /** Drop entries older than this, by the time in their ID (`MINID ~ now-age`). */
  readonly maxAgeMs?: number | undefined;
  /** Trim exactly (`=`) instead of approximately (`~`, whole macro nodes, much cheaper). Default false. */
  readonly exact?: boolean | undefined;
}

/** Options of {@link Topic}. */
export interface TopicOptions {
  /**
   * Create the stream on the first send when it does not exist. Default false: sending to a
   * missing stream fails with ERR_STREAMS_NOT_FOUND (`XADD NOMKSTREAM`), so that a typo in a
   * topic name does not create a stream nobody reads. Create topics with {@link createTopic}
   * or by opening a subscription with `create: true`.
   */
  readonly create?: boolean | undefined;
  /** Trimming on every write. Default: none, the stream keeps everything. */
  readonly retention?: Retention | undefined;
  /** Most messages in one pipeline of XADDs. Default 1000. */
  readonly maxBatchSize?: number | undefined;
  /** Most bytes (bodies and metadata) in one pipeline. Default 4 MiB. */
  readonly maxBatchBytes?: number | undefined;
  /** Batches on the wire at once; more sends wait and join the next batch. Default 2. */
  readonly maxBatchesInFlight?: number | undefined;
  /**
   * How a batch reaches Redis. `pipeline` (the default): one XADD command per message, pipelined.
   * `script`: one EVALSHA per batch that runs the XADDs on the server; it costs the client about
   * a third of the CPU and raises throughput when the client is the bottleneck, but the server
   * runs each batch without interleaving other clients' commands, and producers need permission
   * to run scripts. Script batches are capped at 256 messages.
   */
  readonly sendMode?: 'pipeline' | 'script' | undefined;
  /**
   * How long a send keeps retrying transient failures (connection lost, LOADING, TRYAGAIN,
   * CLUSTERDOWN, timeouts) before it fails with ERR_STREAMS_UNAVAILABLE. Default 30 s.
   */
  readonly sendTimeoutMs?: number | undefined;
  /** Longest wait for one pipeline's replies before it counts as failed (and is retried). Default 10 s. */
  readonly commandTimeoutMs?: number | undefined;
  /** Pauses between retries. */
  readonly retry?: RetryOptions | undefined;
  /** Size limits checked before sending. */
  readonly limits?: Partial<CodecLimits> | undefined;
  /**
   * How long sends wait for a client that has not connected yet before they fail with
   * `ERR_STREAMS_CONNECT` (naming the address and the cause). A wrong password or a missing
   * permission fails at once. Once the client was connected, an outage is retried for
   * `sendTimeoutMs`. Default 10 000 ms.
   */
  readonly connectTimeoutMs?: number | undefined;
  /** Where background events go: retried sends. Default: nowhere. */
  readonly logger?: Logger | undefined;
}

/** Options of {@link Topic.send}. */
export interface SendOptions {
  /**
   * Gives up waiting. A message not yet written is not sent; one already on the wire may still
   * be stored (at-least-once: the caller cannot tell).
   */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link Topic.shutdown}. */
export interface TopicShutdownOptions {
  /**
   * How long to wait for pending sends to be stored. Then those not yet written are given up
   * (their `send()` rejects with ERR_STREAMS_CLOSED), and so are those without a reply (they may
   * still be stored), and the shutdown rejects with ERR_STREAMS_ABANDONED. Default 10 s.
   */
  readonly timeoutMs?: number | undefined;
  /** Ends the wait early, as if `timeoutMs` had passed. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link Topic.flush}. */
export interface FlushOptions {
  /** Stops waiting (an `AbortError`); the sends go on. */
  readonly signal?: AbortSignal | undefined;
}

const TOPIC_FIELDS: readonly (keyof TopicOptions)[] = [
  'create',
  'retention',
  'maxBatchSize',
  'maxBatchBytes',
  'maxBatchesInFlight',
  'sendMode',
  'sendTimeoutMs',
  'commandTimeoutMs',
  'retry',
  'limits',
  'connectTimeoutMs',
  'logger',
];

/** A transient failure that a topic or subscription retries. */
export interface RetryEvent {
  /** What failed: `send`, `read`, `claim`, `ack`, `nack`, `dead-letter`, `group`... */
  readonly operation: string;
  /** Consecutive failures so far. */
  readonly attempt: number;
  /** Pause before the next try. */
  readonly delayMs: number;
  readonly error: StreamsError;
}

/** Events of a {@link Topic}. */
export interface TopicEvents {
  retry: [RetryEvent];
}

/** Counters of a {@link Topic}. */
export interface TopicStats {
  /** Messages stored. */
  readonly sent: number;
  /** Messages that failed for good. */
  readonly failed: number;
  /** Pipelines sent (including retries). */
  readonly batches: number;
  /** Messages sent again after a transient failure. */
  readonly retried: number;
  /** Messages waiting to be written. */
  readonly queued: number;
}

type SendState = 'queued' | 'sending' | 'done';

// A script batch runs without interleaving other clients' commands: keep it short.
const SCRIPT_BATCH = 256;

interface PendingSend {
  readonly encoded: EncodedMessage;
  readonly deadline: number;
  readonly resolve: (id: string) => void;
  readonly reject: (err: StreamsError) => void;
  readonly cleanup: () => void;
  state: SendState;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Checks a stream key, topic or group name given by the caller. */
export function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `${what} must be a non-empty string`);
  }
  if (value.length > 65_536) throw new StreamsError('ERR_STREAMS_ARGUMENT', `${what} is longer than 64 KiB`);
  return value;
}

/** Checks retention options and returns them with defaults. */
export function checkRetention(retention: Retention | undefined): Retention | undefined {
  if (retention === undefined) return undefined;
  const { maxLen, maxAgeMs } = retention;
  if (maxLen !== undefined && (!Number.isSafeInteger(maxLen) || maxLen < 0)) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `retention.maxLen must be an integer >= 0, got ${maxLen}`);
  }
  if (maxAgeMs !== undefined && (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 1)) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `retention.maxAgeMs must be a positive integer, got ${maxAgeMs}`);
  }
  if (maxLen === undefined && maxAgeMs === undefined) return undefined;
  return retention;
}

/** The trimming arguments of XADD or XTRIM for a retention, and an XTRIM by age for the combination. */
export function trimArguments(
  retention: Retention | undefined,
  now: number,
): { add: string[]; extraMinId?: string | undefined } {
  if (!retention) return { add: [] };
  const mode = retention.exact ? '=' : '~';
  if (retention.maxLen !== undefined) {
    const add = ['MAXLEN', mode, String(retention.maxLen)];
    return retention.maxAgeMs === undefined ? { add } : { add, extraMinId: minIdForAge(now, retention.maxAgeMs) };
  }
  return { add: ['MINID', mode, minIdForAge(now, retention.maxAgeMs ?? 0)] };
}

/**
 * Publishes messages to one stream. Concurrent sends are batched transparently: every send made
 * while a pipeline is on the wire joins the next pipeline of XADDs, so throughput grows with
 * concurrency while a lone send still goes out at once.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { Topic } from '@redis-events/streams-driver';
 *
 * const redis = new Redis();
 * const topic = new Topic(redis, 'orders', { create: true, retention: { maxLen: 100_000 } });
 * const id = await topic.send({ body: JSON.stringify({ order: 42 }), metadata: { type: 'created' } });
 * await Promise.all(items.map((item) => topic.send({ body: item }))); // one pipeline, not N round trips
 * await topic.shutdown(); // flushes what is pending; the client stays yours
 * ```
 */
export class Topic extends EventEmitter<TopicEvents> implements AsyncDisposable {
  /** The stream key. */
  readonly key: string;
  readonly #client: RedisClient;
  readonly #owned: boolean;
  readonly #create: boolean;
  readonly #retention: Retention | undefined;
  readonly #limits: CodecLimits;
  #maxBatch: number;
  readonly #maxBatchBytes: number;
  readonly #maxInFlight: number;
  readonly #script: boolean;
  readonly #sendTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #backoff: Backoff;
  #queue: PendingSend[] = [];
  #head = 0;
  #inFlight = 0;
  #scheduled = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #closing = false;
  #closed = false;
  #idle: (() => void)[] = [];
  readonly #connectTimeoutMs: number;
  readonly #logger: Logger;
  // Set once the client was seen connected: from then on an outage is retried, not a connect failure.
  #connected = false;
  readonly #sending = new Set<PendingSend[]>();
  #sent = 0;
  #failed = 0;
  #batches = 0;
  #retried = 0;

  /**
   * @param client an ioredis `Redis` or `Cluster`; it stays the caller's (shutdown does not close it)
   * @param key the stream key
   */
  constructor(client: RedisClient, key: string, options: TopicOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', 'new Topic(client, key, options): options must be an object');
    }
    rejectUnknownFields(options, TOPIC_FIELDS, 'new Topic() options');
    this.#client = client;
    this.key = checkName(key, 'the topic key');
    this.#owned = (options as { [OWNS_CLIENT]?: boolean })[OWNS_CLIENT] === true;
    this.#create = options.create ?? false;
    this.#retention = checkRetention(options.retention);
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#maxBatch = positiveInteger(options.maxBatchSize, 1000, 'maxBatchSize');
    this.#maxBatchBytes = positiveInteger(options.maxBatchBytes, 4 * 1024 * 1024, 'maxBatchBytes');
    this.#maxInFlight = positiveInteger(options.maxBatchesInFlight, 2, 'maxBatchesInFlight');
    const mode = options.sendMode ?? 'pipeline';
    if (mode !== 'pipeline' && mode !== 'script') {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', `sendMode must be "pipeline" or "script", got "${mode}"`);
    }
    this.#script = mode === 'script';
    if (this.#script) this.#maxBatch = Math.min(this.#maxBatch, SCRIPT_BATCH);
    this.#sendTimeoutMs = positiveInteger(options.sendTimeoutMs, 30_000, 'sendTimeoutMs');
    this.#commandTimeoutMs = positiveInteger(options.commandTimeoutMs, 10_000, 'commandTimeoutMs');
    this.#backoff = new Backoff(options.retry);
    this.#connectTimeoutMs = positiveInteger(options.connectTimeoutMs, 10_000, 'connectTimeoutMs');
    if (options.logger !== undefined && !isLogger(options.logger)) {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        'logger needs debug, warn and error methods (console and pino have them)',
      );
    }
    this.#logger = options.logger ?? noopLogger;
  }

  /** Counters since the topic was opened. */
  get stats(): TopicStats {
    return {
      sent: this.#sent,
      failed: this.#failed,
      batches: this.#batches,
      retried: this.#retried,
      queued: this.#queue.length - this.#head,
    };
  }

  /**
   * Stores a message and resolves with its entry ID once Redis has it. Sends made together are
   * pipelined; order is kept for sends of one topic object, except around a retried failure.
   *
   * @throws {StreamsError} `ERR_STREAMS_ARGUMENT` (bad message), `ERR_STREAMS_NOT_FOUND` (no such
   * stream and `create` is off), `ERR_STREAMS_CLOSED`, `ERR_STREAMS_ABORTED`,
   * `ERR_STREAMS_UNAVAILABLE` (still failing after `sendTimeoutMs`), `ERR_STREAMS_REDIS`.
   */
  send(message: OutgoingMessage, options: SendOptions = {}): Promise<string> {
    if (!sendChannel.hasSubscribers) return this.#send(message, options);
    const body = typeof message === 'object' && message !== null ? (message as { body?: unknown }).body : undefined;
    const context: SendTrace = {
      destination: this.key,
      bodySize: bodySizeOf(body),
      carrier: {},
      ...serverOf(this.#client),
    };
    return sendChannel.tracePromise(
      () =>
        this.#send(withCarrier(message, context.carrier), options).then((id) => {
          context.messageId = id;
          return id;
        }),
      context,
    );
  }

  #send(message: OutgoingMessage, options: SendOptions): Promise<string> {
    if (this.#closing) return Promise.reject(this.#closedError());
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(cancelled(this.key, signal));
    let encoded: EncodedMessage;
    try {
      encoded = encodeMessage(message, this.#limits);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => {
        if (item.state === 'done') return;
        const wasQueued = item.state === 'queued';
        item.state = 'done';
        reject(
          cancelled(
            this.key,
            signal as AbortSignal,
            wasQueued ? undefined : 'the message was already written and may still be stored',
          ),
        );
        if (wasQueued) this.#schedule(); // let the flusher step over it
        this.#notifyIdle();
      };
      const item: PendingSend = {
        encoded,
        deadline: Date.now() + this.#sendTimeoutMs,
        resolve: (id) => {
          item.cleanup();
          resolve(id);
        },
        reject: (err) => {
          item.cleanup();
          reject(err);
        },
        cleanup: () => signal?.removeEventListener('abort', onAbort),
        state: 'queued',
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(item);
      this.#schedule();
    });
  }

  /**
   * Resolves when every message sent so far is stored or has failed.
   *
   * @example
   * ```ts
   * for (const item of items) void topic.send({ body: item }).catch(report);
   * await topic.flush({ signal: AbortSignal.timeout(5000) });
   * ```
   * @throws {StreamsError} an `AbortError` (ERR_STREAMS_ABORTED) when the signal fires.
   */
  flush(options: FlushOptions = {}): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
    return abortable(idle, options.signal, `flush() of topic "${this.key}"`, { topic: this.key });
  }

  /**
   * Stops accepting sends, waits up to `timeoutMs` (or until `signal`) for pending sends to be
   * stored, and closes the client if the topic opened it (URL openers). Resolves only when every
   * send was stored or failed on its own; otherwise the sends still pending are given up (their
   * `send()` rejects with ERR_STREAMS_CLOSED) and the shutdown rejects with ERR_STREAMS_ABANDONED.
   *
   * @example
   * ```ts
   * await topic.shutdown({ timeoutMs: 2000 });
   * ```
   * @throws {StreamsError} `ERR_STREAMS_ABANDONED` with `abandoned.unsent` (never written, not
   * stored) and `abandoned.unconfirmed` (written without a reply: may be stored);
   * `ERR_STREAMS_CLOSED` on a second call.
   */
  async shutdown(options: TopicShutdownOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', 'shutdown() takes an options object: { timeoutMs, signal }');
    }
    rejectUnknownFields(options, ['timeoutMs', 'signal'], 'shutdown() options');
    if (this.#closing) throw this.#closedError();
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', `timeoutMs must be an integer >= 0, got ${timeoutMs}`);
    }
    this.#closing = true;
    const { signal } = options;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const bound = new Promise<false>((resolve) => {
      if (signal?.aborted) return resolve(false);
      timer = setTimeout(() => resolve(false), timeoutMs);
      onAbort = () => resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    const drained = await Promise.race([this.flush().then(() => true as const), bound]);
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    let unsent = 0;
    let unconfirmed = 0;
    if (!drained) [unsent, unconfirmed] = this.#abandon();
    this.#closed = true;
    if (this.#owned) await quit(this.#client, drained ? 2000 : 1000);
    if (unsent + unconfirmed > 0) {
      throw new StreamsError(
        'ERR_STREAMS_ABANDONED',
        `topic "${this.key}" shut down with ${unsent} message(s) never written (not stored) and ${unconfirmed} written without a reply (they may be stored)`,
        {
          topic: this.key,
          abandoned: { ...(unsent > 0 ? { unsent } : {}), ...(unconfirmed > 0 ? { unconfirmed } : {}) },
        },
      );
    }
  }

  /** Gives up every pending send at the shutdown's bound; returns [never written, without a reply]. */
  #abandon(): [number, number] {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    let unsent = 0;
    let unconfirmed = 0;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const item = this.#queue[i] as PendingSend;
      if (item.state !== 'queued') continue;
      item.state = 'done';
      unsent++;
      item.reject(
        new StreamsError(
          'ERR_STREAMS_CLOSED',
          `topic "${this.key}" shut down before the message was written; it is not stored`,
          {
            topic: this.key,
          },
        ),
      );
    }
    this.#head = this.#queue.length;
    for (const batch of this.#sending) {
      for (const item of batch) {
        if (item.state !== 'sending') continue;
        item.state = 'done';
        unconfirmed++;
        item.reject(
          new StreamsError(
            'ERR_STREAMS_CLOSED',
            `topic "${this.key}" shut down while the message was written without a reply yet; it may be stored`,
            { topic: this.key },
          ),
        );
      }
    }
    return [unsent, unconfirmed];
  }

  /** Shuts down unless already done, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#closing) await this.shutdown();
  }

  #closedError(): StreamsError {
    return new StreamsError(
      'ERR_STREAMS_CLOSED',
      `topic "${this.key}" was shut down${this.#closed ? '' : ' (shutting down)'}; open a new Topic to send more`,
      { topic: this.key },
    );
  }

  #isIdle(): boolean {
    return this.#inFlight === 0 && this.#queue.length === this.#head;
  }

  #notifyIdle(): void {
    if (!this.#isIdle() || this.#idle.length === 0) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #schedule(): void {
    if (this.#scheduled || this.#retryTimer || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: every send made in this turn of the event loop (including
    // continuations of senders whose previous send just resolved) joins the batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < this.#maxInFlight) {
      const batch = this.#take();
      if (batch.length === 0) break;
      this.#inFlight++;
      this.#batches++;
      this.#sending.add(batch);
      void this.#write(batch).finally(() => {
        this.#sending.delete(batch);
        this.#inFlight--;
        if (this.#queue.length > this.#head) this.#schedule();
        this.#notifyIdle();
      });
    }
    this.#notifyIdle();
  }

  #take(): PendingSend[] {
    const batch: PendingSend[] = [];
    let bytes = 0;
    while (this.#head < this.#queue.length && batch.length < this.#maxBatch) {
      const item = this.#queue[this.#head] as PendingSend;
      if (item.state === 'done') {
        this.#head++;
        continue;
      }
      if (batch.length > 0 && bytes + item.encoded.bytes > this.#maxBatchBytes) break;
      this.#head++;
      item.state = 'sending';
      bytes += item.encoded.bytes;
      batch.push(item);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /** Sends a batch and returns `[error, reply]` per message, or throws when the whole batch failed. */
  async #transmit(batch: PendingSend[]): Promise<[Error | null, unknown][]> {
    const trim = trimArguments(this.#retention, Date.now());
    const options = this.#create ? trim.add : ['NOMKSTREAM', ...trim.add];
    if (this.#script) {
      const args: (string | Buffer)[] = [String(options.length), ...options, trim.extraMinId ?? ''];
      for (const item of batch) args.push(item.encoded.headers, item.encoded.body);
      const reply = await withTimeout(
        runScript(this.#client, SEND, [this.key], args),
        this.#commandTimeoutMs,
        'XADD script',
      );
      if (!Array.isArray(reply) || reply.length !== batch.length) {
        throw new StreamsError(
          'ERR_STREAMS_PROTOCOL',
          `the send script answered ${Array.isArray(reply) ? `${reply.length} results` : typeof reply} for ${batch.length} messages`,
          { topic: this.key },
        );
      }
      return reply.map((r): [Error | null, unknown] =>
        r instanceof Error ? [r, null] : [null, r === false ? null : r],
      );
    }
    const pipeline = this.#client.pipeline();
    for (const item of batch) {
      pipeline.xadd(this.key, ...options, '*', 'headers', item.encoded.headers, 'body', item.encoded.body);
    }
    if (trim.extraMinId) pipeline.call('xtrim', this.key, 'MINID', this.#retention?.exact ? '=' : '~', trim.extraMinId);
    const results = await withTimeout(pipeline.exec(), this.#commandTimeoutMs, 'XADD pipeline');
    if (!results) throw new Error('Connection is closed.'); // exec() gives null when the pipeline was dropped
    return results;
  }

  async #write(batch: PendingSend[]): Promise<void> {
    if (!this.#connected) {
      if (this.#client.status === 'ready') this.#connected = true;
      else {
        try {
          await waitUntilReady(this.#client, {
            timeoutMs: this.#connectTimeoutMs,
            error: (failure) => connectError(failure, { topic: this.key }),
          });
          this.#connected = true;
        } catch (err) {
          for (const item of batch) {
            if (item.state === 'done') continue;
            item.state = 'done';
            this.#failed++;
            item.reject(err as StreamsError);
          }
          return;
        }
      }
    }
    let results: [Error | null, unknown][] | null = null;
    let failure: unknown;
    try {
      results = await this.#transmit(batch);
    } catch (err) {
      failure = err;
    }
    const retry: PendingSend[] = [];
    let lastError: StreamsError | undefined;
    const now = Date.now();
    for (const [i, item] of batch.entries()) {
      const [err, id] = results?.[i] ?? [failure ?? new Error('no reply for a pipelined XADD'), null];
      if (item.state === 'done') continue; // cancelled meanwhile
      if (!err) {
        item.state = 'done';
        if (typeof id === 'string') {
          this.#sent++;
          item.resolve(id);
        } else if (id !== null) {
          this.#failed++;
          item.reject(
            new StreamsError(
              'ERR_STREAMS_PROTOCOL',
              `XADD to topic "${this.key}" answered ${typeof id} instead of an entry ID; the server (or a proxy) does not speak Redis as expected`,
              { topic: this.key, command: 'XADD' },
            ),
          );
        } else {
          this.#failed++;
          item.reject(
            new StreamsError(
              'ERR_STREAMS_NOT_FOUND',
              `topic "${this.key}" does not exist; create it with createTopic(), or open the Topic with create: true`,
              { topic: this.key, command: 'XADD' },
            ),
          );
        }
        continue;
      }
      const error = toStreamsError(err, { what: 'XADD', topic: this.key, command: 'XADD' });
      if (classifyFailure(err) === 'transient' && now < item.deadline && !this.#closed) {
        item.state = 'queued';
        retry.push(item);
        lastError = error;
        continue;
      }
      item.state = 'done';
      this.#failed++;
      // Wrapped once: the cause is what ioredis or the command timer reported, not another StreamsError.
      item.reject(
        error.retryable && !(err instanceof StreamsError)
          ? new StreamsError(
              'ERR_STREAMS_UNAVAILABLE',
              `could not store the message in topic "${this.key}" within ${this.#sendTimeoutMs} ms: ${err instanceof Error ? err.message : String(err)}`,
              { topic: this.key, command: 'XADD', retryable: true, cause: err },
            )
          : error,
      );
    }
    if (retry.length === 0) {
      if (results) this.#backoff.reset();
      return;
    }
    this.#retried += retry.length;
    // Retried messages go back to the front, in their order, ahead of later sends.
    this.#queue.splice(this.#head, 0, ...retry);
    const delayMs = this.#backoff.next();
    const event: RetryEvent = {
      operation: 'send',
      attempt: this.#backoff.attempt,
      delayMs,
      error: lastError as StreamsError,
    };
    this.#logger.warn(
      { package: '@redis-events/streams-driver', err: event.error, topic: this.key, messages: retry.length, delayMs },
      `sending to topic "${this.key}" failed (${event.error.message}); trying again in ${delayMs} ms`,
    );
    this.emit('retry', event);
    if (!this.#retryTimer) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#schedule();
      }, delayMs);
    }
  }
}

function cancelled(topic: string, signal: AbortSignal, note?: string): StreamsError {
  return abortError(`send() to topic "${topic}"${note ? ` (${note})` : ''}`, signal, { topic });
}

/** Closes a client the package opened: QUIT when it answers within `ms`, else a plain disconnect. */
export async function quit(client: RedisClient, ms = 2000): Promise<void> {
  try {
    await withTimeout(client.quit(), ms, 'QUIT');
  } catch {
    client.disconnect();
  }
}

/**
 * The message with the trace-context fields a diagnostics subscriber put in `carrier`, as
 * metadata; the application's own metadata of those names wins. A message `send()` refuses is
 * left as it is, to be refused the same way.
 */
function withCarrier(message: OutgoingMessage, carrier: Record<string, string>): OutgoingMessage {
  let fields: Record<string, string> | undefined;
  for (const field of CARRIER_FIELDS) {
    const value = carrier[field];
    if (typeof value !== 'string') continue;
    fields ??= {};
    fields[field] = value;
  }
  if (fields === undefined || typeof message !== 'object' || message === null) return message;
  const { metadata } = message;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)))
    return message;
  return { ...message, metadata: { ...fields, ...metadata } };
}
