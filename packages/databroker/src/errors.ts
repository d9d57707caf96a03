import { RedisEventsError, type RedisEventsErrorOptions } from '@redis-events/resp';

/**
 * Stable codes carried by {@link DataBrokerError}.
 *
 * @example
 * ```ts
 * const restart: DataBrokerErrorCode[] = ['ERR_DATABROKER_INVALID_SERVER_VERSION', 'ERR_DATABROKER_INVALID_RECORD_VERSION'];
 * if (err instanceof DataBrokerError && restart.includes(err.code)) await resync();
 * ```
 */
export type DataBrokerErrorCode =
  /** A wrong argument: a bad record, type, id, option, version or lease duration. */
  | 'ERR_DATABROKER_ARGUMENT'
  /** A filter expression that cannot be compiled. */
  | 'ERR_DATABROKER_FILTER'
  /** Optimistic transactions kept conflicting with other writers until the retry limit. */
  | 'ERR_DATABROKER_RETRIES_EXHAUSTED'
  /** The server version changed (Redis was flushed or replaced): start again with `syncLatest`. */
  | 'ERR_DATABROKER_INVALID_SERVER_VERSION'
  /** The requested record version is older than the retained change log: start again with `syncLatest`. */
  | 'ERR_DATABROKER_INVALID_RECORD_VERSION'
  /** The backend was closed. */
  | 'ERR_DATABROKER_CLOSED'
  /** Redis could not be reached, or the connection dropped and did not come back in time. */
  | 'ERR_DATABROKER_CONNECTION'
  /** The connection dropped while a transaction was committing, and its outcome could not be found out. */
  | 'ERR_DATABROKER_COMMIT_UNKNOWN'
  /** Redis answered a command with an error (permissions, wrong key type, cluster state...). */
  | 'ERR_DATABROKER_REDIS'
  /** Stored bytes or a reply that do not have the expected shape: another program wrote the keys, or a broken server. */
  | 'ERR_DATABROKER_CORRUPT'
  /** The codec could not encode or decode a record's data. */
  | 'ERR_DATABROKER_CODEC'
  /** Encrypted data was written with a key this backend does not have. */
  | 'ERR_DATABROKER_WRONG_KEY'
  /** Encrypted data failed authentication: it was altered or damaged. */
  | 'ERR_DATABROKER_TAMPERED'
  /** The call's `signal` fired before it completed (the error's `name` is `AbortError`). */
  | 'ERR_DATABROKER_ABORTED'
  /** `close()` gave up work at its bound; `abandoned` says what and how many. */
  | 'ERR_DATABROKER_ABANDONED';

/**
 * The one error class of `@redis-events/databroker`, a `RedisEventsError` of
 * `@redis-events/resp`. `code` is stable, `message` says what went wrong and what to do, `cause`
 * holds the underlying error when there is one. `instanceof` works across duplicate installs of
 * the package. The error of a call whose `signal` fired is named `AbortError`.
 *
 * @example
 * ```ts
 * try {
 *   for await (const record of broker.sync('session', serverVersion, recordVersion)) apply(record);
 * } catch (err) {
 *   if (err instanceof DataBrokerError && err.code === 'ERR_DATABROKER_INVALID_SERVER_VERSION') {
 *     // Redis was flushed: take a new snapshot with syncLatest()
 *   } else throw err;
 * }
 * ```
 */
export class DataBrokerError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/databroker.error');
  static override readonly errorName: string = 'DataBrokerError';
  declare readonly code: DataBrokerErrorCode;

  constructor(code: DataBrokerErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super('@redis-events/databroker', code, message, options);
  }
}

/** Shorthand for an argument error. */
export function argumentError(message: string): DataBrokerError {
  return new DataBrokerError('ERR_DATABROKER_ARGUMENT', message);
}

/** Shorthand for a corrupt-data error. */
export function corruptError(message: string, cause?: unknown): DataBrokerError {
  return new DataBrokerError('ERR_DATABROKER_CORRUPT', message, cause === undefined ? undefined : { cause });
}

/** The error of a call whose AbortSignal fired: named `AbortError`, the signal's reason as cause. */
export function abortError(what: string, reason: unknown): DataBrokerError {
  const why = reason instanceof Error && reason.message ? `: ${reason.message}` : '';
  return new DataBrokerError('ERR_DATABROKER_ABORTED', `${what} was aborted${why}`, {
    cause: reason,
    name: 'AbortError',
  });
}
