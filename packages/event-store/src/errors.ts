import { RedisEventsError, type RedisEventsErrorOptions } from '@redis-events/resp';
import type { StoredEvent } from './event.ts';

/**
 * Stable codes carried by {@link EventStoreError}.
 *
 * @example
 * ```ts
 * const retryable = (code: EventStoreErrorCode) => code === 'ERR_EVENT_STORE_REDIS';
 * ```
 */
export type EventStoreErrorCode =
  /** A bad argument: an empty or malformed event name, a bad limit, cursor, time or option. */
  | 'ERR_EVENT_STORE_ARGUMENT'
  /** A bad store configuration (prefix, TTL, cap, layout, serializer, client). */
  | 'ERR_EVENT_STORE_CONFIG'
  /** A payload the serializer refuses: BigInt, NaN, a function, a cycle, too large... */
  | 'ERR_EVENT_STORE_PAYLOAD'
  /** Stored data that cannot be read back: not JSON, missing fields, a malformed id or key. */
  | 'ERR_EVENT_STORE_DECODE'
  /** Redis refused or failed a command (connection lost, WRONGTYPE, OOM, NOSCRIPT...). */
  | 'ERR_EVENT_STORE_REDIS'
  /** The store was used after `close()`. */
  | 'ERR_EVENT_STORE_CLOSED'
  /**
   * The client did not connect within `connectTimeoutMs`, or the server refused it (a wrong
   * password, an ACL user without a command it needs, a TLS failure): the message names the
   * address and the cause.
   */
  | 'ERR_EVENT_STORE_CONNECT'
  /** The call's AbortSignal fired. The error's `name` is `'AbortError'`. */
  | 'ERR_EVENT_STORE_ABORTED'
  /** `close()` gave up calls still waiting for Redis at its bound; `abandoned` says how many. */
  | 'ERR_EVENT_STORE_ABANDONED'
  /** `Mediator.publish()` found no handler for the name while `requireHandlers` is set. */
  | 'ERR_EVENT_STORE_NO_HANDLERS'
  /** `Mediator.publish()`: a handler or an event store failed; see {@link PublishError}. */
  | 'ERR_EVENT_STORE_PUBLISH';

/**
 * The error class of `@redis-events/event-store`, a `RedisEventsError` of `@redis-events/resp`.
 * `code` is stable; `message` says what went wrong and what to do; `cause` holds the underlying
 * error (an ioredis `ReplyError`, a `SyntaxError` from `JSON.parse`...). `instanceof` works
 * across duplicate installs of the package.
 *
 * @example
 * ```ts
 * try {
 *   await store.storeEvent({ name: 'order.paid', payload: { amount: 10n } });
 * } catch (err) {
 *   if (err instanceof EventStoreError && err.code === 'ERR_EVENT_STORE_PAYLOAD') console.error(err.message);
 * }
 * ```
 */
export class EventStoreError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/event-store.error');
  static override readonly errorName: string = 'EventStoreError';
  declare readonly code: EventStoreErrorCode;

  constructor(code: EventStoreErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super('@redis-events/event-store', code, message, options);
  }
}

/**
 * Thrown by `Mediator.publish()` when at least one handler or event store failed. Every handler
 * still ran and every store was still tried: `stored` lists what was stored, `handlerErrors` and
 * `storeErrors` what failed, in registration order.
 *
 * @example
 * ```ts
 * try {
 *   await mediator.publish({ name: 'user.created', payload: { id: 1 } });
 * } catch (err) {
 *   if (err instanceof PublishError) console.log(err.handlerErrors, err.storeErrors, err.stored);
 * }
 * ```
 */
export class PublishError extends EventStoreError {
  static override readonly brand: symbol = Symbol.for('@redis-events/event-store.error.publish');
  static override readonly errorName: string = 'PublishError';
  /** Errors thrown by handlers, in registration order. */
  readonly handlerErrors: readonly unknown[];
  /** Errors of the event stores that failed, in registration order. */
  readonly storeErrors: readonly unknown[];
  /** The event as stored by each store that succeeded. */
  readonly stored: readonly StoredEvent[];

  constructor(
    message: string,
    details: { handlerErrors: readonly unknown[]; storeErrors: readonly unknown[]; stored: readonly StoredEvent[] },
  ) {
    const first = details.handlerErrors[0] ?? details.storeErrors[0];
    super('ERR_EVENT_STORE_PUBLISH', message, first === undefined ? undefined : { cause: first });
    this.handlerErrors = details.handlerErrors;
    this.storeErrors = details.storeErrors;
    this.stored = details.stored;
  }
}

/** The message of an unknown thrown value, for error texts. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
