import { RedisEventsError } from '@redis-events/resp';
import { isTransientError } from '@redis-events/resp/ioredis';

/** Stable codes carried by {@link StreamsError}. */
export type StreamsErrorCode =
  /** A wrong argument: a bad option, URL, body or metadata. Fix the call. */
  | 'ERR_STREAMS_ARGUMENT'
  /** The topic (stream key) or the subscription (consumer group) does not exist. */
  | 'ERR_STREAMS_NOT_FOUND'
  /** The topic or subscription was shut down (or is shutting down). */
  | 'ERR_STREAMS_CLOSED'
  /** The caller's AbortSignal fired. */
  | 'ERR_STREAMS_CANCELLED'
  /** `ack()`, `nack()` or `deadLetter()` was called on a message that was already settled. */
  | 'ERR_STREAMS_SETTLED'
  /** The server stayed unreachable (connection lost, LOADING, TRYAGAIN...) for longer than allowed. */
  | 'ERR_STREAMS_UNAVAILABLE'
  /** A Redis command did not answer in time. Retried inside loops; surfaced by one-shot calls. */
  | 'ERR_STREAMS_TIMEOUT'
  /** Redis answered with an error that retrying cannot fix: WRONGTYPE, NOPERM, OOM, CROSSSLOT... */
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
  readonly cause?: unknown;
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
  static override readonly brand: symbol = Symbol.for('@redis-events/streams-driver.error');
  static override readonly errorName: string = 'StreamsError';
  declare readonly code: StreamsErrorCode;
  readonly retryable: boolean;
  readonly topic: string | undefined;
  readonly group: string | undefined;
  readonly command: string | undefined;

  constructor(code: StreamsErrorCode, message: string, context: StreamsErrorContext = {}) {
    super(
      '@redis-events/streams-driver',
      code,
      message,
      context.cause === undefined ? undefined : { cause: context.cause },
    );
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

/** Sorts a failure into what the loops do about it. */
export function classifyFailure(err: unknown): FailureKind {
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
  const base = { ...context, cause: err, retryable: kind === 'transient' };
  if (kind === 'no-group') {
    return new StreamsError(
      'ERR_STREAMS_NOT_FOUND',
      `${context.what} failed: the consumer group or its stream does not exist (${where}); create it with createGroup() or open the subscription with create: true. Redis said: ${text}`,
      base,
    );
  }
  if (kind === 'transient') {
    return new StreamsError(
      'ERR_STREAMS_UNAVAILABLE',
      `${context.what} failed because Redis is unreachable or busy (${where}): ${text}`,
      base,
    );
  }
  return new StreamsError('ERR_STREAMS_REDIS', `${context.what} failed (${where}): ${text}`, base);
}
