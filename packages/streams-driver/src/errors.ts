import { RedisEventsError } from '@redis-events/resp';
import { type ConnectFailure, isTransientError } from '@redis-events/resp/ioredis';

/** Stable codes carried by {@link StreamsError}. */
export type StreamsErrorCode =
  /** A wrong argument: a bad option, URL, body or metadata. Fix the call. */
  | 'ERR_STREAMS_ARGUMENT'
  /** The topic (stream key) or the subscription (consumer group) does not exist. */
  | 'ERR_STREAMS_NOT_FOUND'
  /** The topic or subscription was shut down (or is shutting down). */
  | 'ERR_STREAMS_CLOSED'
  /** The caller's AbortSignal fired. The error's `name` is `'AbortError'`. */
  | 'ERR_STREAMS_ABORTED'
  /** `shutdown()` gave up on work within its bound: `abandoned` says what and how many. */
  | 'ERR_STREAMS_ABANDONED'
  /** `ack()`, `nack()` or `deadLetter()` was called on a message that was already settled. */
  | 'ERR_STREAMS_SETTLED'
  /** The server stayed unreachable (connection lost, LOADING, TRYAGAIN...) for longer than allowed. */
  | 'ERR_STREAMS_UNAVAILABLE'
  /**
   * The client did not connect within `connectTimeoutMs`, or the server refused it (a wrong
   * password, an ACL user without a command the connection needs, TLS): the message names the
   * address and the cause.
   */
  | 'ERR_STREAMS_CONNECT'
  /** A Redis command did not answer in time. Retried inside loops; surfaced by one-shot calls. */
  | 'ERR_STREAMS_TIMEOUT'
  /** The topic's key (or the dead-letter key) holds something other than a stream (WRONGTYPE). */
  | 'ERR_STREAMS_WRONG_TYPE'
  /** Redis answered with an error that retrying cannot fix: NOPERM, OOM, CROSSSLOT... */
  | 'ERR_STREAMS_REDIS'
  /** A reply had a shape no Redis server sends: a broken proxy or a hostile server. */
  | 'ERR_STREAMS_PROTOCOL'
  /** A stream entry that this package cannot decode (written by another producer). Reported, never thrown by receive. */
  | 'ERR_STREAMS_MALFORMED'
  /** The operation needs something this subscription was configured without (for example `nack()` with `noAck`). */
  | 'ERR_STREAMS_UNSUPPORTED';

/** Where an error happened, when it is known. */
export interface StreamsErrorContext {
  /** The stream key of the topic. */
  readonly topic?: string | undefined;
  /** The consumer group of the subscription. */
  readonly group?: string | undefined;
  /** The Redis command that failed, upper case (`XREADGROUP`). */
  readonly command?: string | undefined;
  /** True when trying again later may succeed. */
  readonly retryable?: boolean | undefined;
  /** What `shutdown()` gave up on (ERR_STREAMS_ABANDONED). */
  readonly abandoned?: AbandonedWork | undefined;
  readonly cause?: unknown;
}

/**
 * What a `shutdown()` gave up on when its bound ran out or Redis refused, carried by
 * `ERR_STREAMS_ABANDONED`. Every count is of messages.
 */
export interface AbandonedWork {
  /** Topic: sends that never reached Redis; they are not stored. */
  readonly unsent?: number | undefined;
  /** Topic: sends on the wire without a reply; they may or may not be stored. */
  readonly unconfirmed?: number | undefined;
  /** Subscription: messages the application still held, unsettled: they will be delivered again. */
  readonly held?: number | undefined;
  /**
   * Subscription: acks, nacks and dead letters that Redis did not confirm (refused, still queued,
   * or without a reply at the bound): those messages will (or may) be delivered again.
   */
  readonly settlements?: number | undefined;
  /** Subscription with `noAck`: messages read ahead and never handed out; they are gone. */
  readonly discarded?: number | undefined;
}

/**
 * The one error class of this package, a `RedisEventsError` of `@redis-events/resp`. `code` is
 * stable; `message` says what went wrong and what to do. `retryable` tells transient failures
 * (connection lost, LOADING, TRYAGAIN, timeouts) from permanent ones. `instanceof` works across
 * duplicate installs of the package.
 *
 * @example
 * ```ts
 * try {
 *   await topic.send({ body: 'hello' });
 * } catch (err) {
 *   if (err instanceof StreamsError && err.code === 'ERR_STREAMS_NOT_FOUND') await createTopic(redis, 'orders');
 *   else throw err;
 * }
 * ```
 */
export class StreamsError extends RedisEventsError {
  // `abandoned` (from RedisEventsError): with ERR_STREAMS_ABANDONED, what was given up, by the
  // keys of AbandonedWork.
  static override readonly brand: symbol = Symbol.for('@redis-events/streams-driver.error');
  static override readonly errorName: string = 'StreamsError';
  declare readonly code: StreamsErrorCode;
  readonly retryable: boolean;
  readonly topic: string | undefined;
  readonly group: string | undefined;
  readonly command: string | undefined;

  constructor(code: StreamsErrorCode, message: string, context: StreamsErrorContext = {}) {
    super('@redis-events/streams-driver', code, message, {
      ...(context.cause === undefined ? {} : { cause: context.cause }),
      ...(code === 'ERR_STREAMS_ABORTED' ? { name: 'AbortError' as const } : {}),
      ...(context.abandoned === undefined ? {} : { abandoned: context.abandoned as Readonly<Record<string, number>> }),
    });
    this.retryable = context.retryable ?? false;
    this.topic = context.topic;
    this.group = context.group;
    this.command = context.command;
  }
}

/** How a failure from ioredis or Redis should be treated. */
export type FailureKind =
  /** Try again after a pause: the connection or the server is temporarily unable. */
  | 'transient'
  /** The group (or the stream behind it) does not exist. */
  | 'no-group'
  /** The command or an option is unknown to this server (feature detection fallback). */
  | 'unknown-command'
  /** Retrying will not help. */
  | 'permanent';

/** The first word of a Redis error reply (`NOGROUP`, `WRONGTYPE`, `ERR`...), if the error is one. */
export function replyCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const name = err.name;
  if (name !== 'ReplyError' && name !== 'SimpleError' && name !== 'BlobError') return undefined;
  const space = err.message.indexOf(' ');
  return space === -1 ? err.message : err.message.slice(0, space);
}

/**
 * A command that got no reply within its bound. Internal: it is wrapped once, as
 * ERR_STREAMS_TIMEOUT (or as ERR_STREAMS_UNAVAILABLE by a send that kept failing).
 */
export class CommandTimeout extends Error {
  override readonly name: string = 'CommandTimeout';
  readonly command: string;

  constructor(command: string, ms: number) {
    super(`${command} got no reply within ${ms} ms`);
    this.command = command;
  }
}

/** Sorts a failure into what the loops do about it. */
export function classifyFailure(err: unknown): FailureKind {
  if (err instanceof CommandTimeout) return 'transient';
  if (err instanceof StreamsError) {
    if (err.code === 'ERR_STREAMS_NOT_FOUND') return 'no-group';
    return err.retryable ? 'transient' : 'permanent';
  }
  if (!(err instanceof Error)) return 'permanent';
  const code = replyCode(err);
  if (code !== undefined) {
    if (code === 'NOGROUP') return 'no-group';
    if (isTransientError(err)) return 'transient';
    const lower = err.message.toLowerCase();
    if (lower.startsWith('err unknown command') || lower.startsWith('err unknown subcommand')) return 'unknown-command';
    if (lower.startsWith('err unknown redis command called from script')) return 'unknown-command';
    if (lower.startsWith('err syntax error') || lower.includes('unrecognized')) return 'unknown-command';
    return 'permanent';
  }
  return isTransientError(err) ? 'transient' : 'permanent';
}

/** Wraps any failure into a {@link StreamsError} with context, keeping an existing one as is. */
export function toStreamsError(err: unknown, context: StreamsErrorContext & { readonly what: string }): StreamsError {
  if (err instanceof StreamsError) return err;
  const kind = classifyFailure(err);
  const text = err instanceof Error ? err.message : String(err);
  const where = [context.topic && `topic "${context.topic}"`, context.group && `group "${context.group}"`]
    .filter(Boolean)
    .join(', ');
  const { what, ...rest } = context;
  const base = { ...rest, cause: err, retryable: kind === 'transient' };
  if (err instanceof CommandTimeout) {
    return new StreamsError('ERR_STREAMS_TIMEOUT', `${what} failed (${where}): ${text}`, {
      ...base,
      command: context.command ?? err.command,
    });
  }
  if (kind === 'no-group') {
    return new StreamsError(
      'ERR_STREAMS_NOT_FOUND',
      `${what} failed: the consumer group or its stream does not exist (${where}); create it with createGroup() or open the subscription with create: true. Redis said: ${text}`,
      base,
    );
  }
  if (replyCode(err) === 'WRONGTYPE') {
    return new StreamsError(
      'ERR_STREAMS_WRONG_TYPE',
      `${what} failed: a key holds something other than a stream (${where}); another application uses that key name, so choose another topic (or dead-letter) key. Redis said: ${text}`,
      base,
    );
  }
  if (kind === 'transient') {
    return new StreamsError(
      'ERR_STREAMS_UNAVAILABLE',
      `${what} failed because Redis is unreachable or busy (${where}): ${text}`,
      base,
    );
  }
  return new StreamsError('ERR_STREAMS_REDIS', `${what} failed (${where}): ${text}`, base);
}

/** The error of a client that could not connect (resp's `waitUntilReady` failure), or an abort. */
export function connectError(failure: ConnectFailure, context: StreamsErrorContext = {}): StreamsError {
  if (failure.reason === 'aborted') {
    return new StreamsError('ERR_STREAMS_ABORTED', failure.message, { ...context, cause: failure.cause });
  }
  return new StreamsError('ERR_STREAMS_CONNECT', failure.message, { ...context, cause: failure.cause });
}
