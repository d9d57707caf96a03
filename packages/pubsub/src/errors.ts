import { RedisEventsError, type RedisEventsErrorOptions } from '@redis-events/resp';

/**
 * Stable codes carried by {@link PubSubError}.
 *
 * @example
 * ```ts
 * const permanent = (code: PubSubErrorCode) => code === 'ERR_PUBSUB_NOPERM' || code === 'ERR_PUBSUB_ARGUMENT';
 * ```
 */
export type PubSubErrorCode =
  /** A bad argument or option: a channel that is not a string, a negative high-water mark, a bad URL... */
  | 'ERR_PUBSUB_ARGUMENT'
  /** The ACL user may not use that channel, pattern or command (`NOPERM`). */
  | 'ERR_PUBSUB_NOPERM'
  /** The server refused a command for another reason (unknown command on an old server, `CROSSSLOT`...). */
  | 'ERR_PUBSUB_REFUSED'
  /** The subscription or client was closed; it takes no more calls. */
  | 'ERR_PUBSUB_CLOSED'
  /** The first connection failed, or reconnecting gave up (the `reconnect` option). `cause` says why. */
  | 'ERR_PUBSUB_CONNECTION'
  /** A publish or PUBSUB command could not complete: connection lost, queue full. `cause` says why. */
  | 'ERR_PUBSUB_COMMAND'
  /** A call got no answer within `commandTimeout` (an (un)subscribe while the server is unreachable...). */
  | 'ERR_PUBSUB_TIMEOUT'
  /** The subscriber's buffer passed its high-water mark under the `error` overflow policy. */
  | 'ERR_PUBSUB_OVERFLOW'
  /** A PING on an idle subscriber connection got no reply in time; the connection was replaced. */
  | 'ERR_PUBSUB_HEALTH_CHECK'
  /** The server sent something a subscriber connection cannot account for; the connection was replaced. */
  | 'ERR_PUBSUB_PROTOCOL'
  /** Redis Cluster: no node answered `CLUSTER SLOTS`, or a channel was redirected too many times. */
  | 'ERR_PUBSUB_CLUSTER'
  /** The call's AbortSignal fired (the error's `name` is `'AbortError'`; `cause` is the signal's reason). */
  | 'ERR_PUBSUB_ABORTED'
  /** `close()` gave up work at its bound: `abandoned` says what and how many (`{ commands: 2 }`). */
  | 'ERR_PUBSUB_ABANDONED';

/**
 * The error class of `@redis-events/pubsub`, a `RedisEventsError` of `@redis-events/resp`.
 * `code` is stable; `message` says what went wrong and what to do; `cause` holds the underlying
 * error (a `ReplyError` or `RespError` of `@redis-events/resp`). `instanceof` works across
 * duplicate installs of the package.
 *
 * @example
 * ```ts
 * try {
 *   await client.subscribe('billing:secret');
 * } catch (err) {
 *   if (err instanceof PubSubError && err.code === 'ERR_PUBSUB_NOPERM') console.error(err.message);
 * }
 * ```
 */
export class PubSubError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/pubsub.error');
  static override readonly errorName: string = 'PubSubError';
  declare readonly code: PubSubErrorCode;

  constructor(code: PubSubErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super('@redis-events/pubsub', code, message, options);
  }
}
