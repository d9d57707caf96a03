// The logger every package takes as an option. Background failures (a reconnect, a cleanup that
// failed, a message dropped) go there, never to process.emitWarning or the console on their own.

/**
 * Where a package reports what happens in the background: the `debug`, `warn` and `error`
 * methods that `console` and pino (and bunyan, winston's `child`...) share, called as
 * `(context, message)`: a plain object of structured fields first, a sentence second.
 *
 * `console` prints the object then the sentence; pino merges the fields into its JSON line with
 * the sentence as `msg`. Fields are JSON-friendly (strings, numbers, booleans) except `err`,
 * which holds the error, as pino's error serializer expects.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 *
 * const client = await createClient({ url, logger: pino() }); // or logger: console
 * // a background failure arrives as
 * // logger.warn({ package: '@redis-events/pubsub', err, address: '127.0.0.1:6379' }, 'connection lost; reconnecting')
 * ```
 */
export interface Logger {
  /** Details for troubleshooting: reconnect attempts, retries, timings. */
  debug(context: object, message: string): void;
  /** Something went wrong and the package recovered or will retry: a connection lost, a retry. */
  warn(context: object, message: string): void;
  /** Something failed that nobody awaits: a background cleanup, a handler that threw. */
  error(context: object, message: string): void;
}

function silent(): void {}

/**
 * A logger that drops everything: the default of every package's `logger` option.
 *
 * @example
 * ```ts
 * const logger: Logger = options.logger ?? noopLogger;
 * ```
 */
export const noopLogger: Logger = Object.freeze({ debug: silent, warn: silent, error: silent });

/**
 * True when `value` has the three methods of a {@link Logger}: for checking a `logger` option.
 *
 * @example
 * ```ts
 * if (options.logger !== undefined && !isLogger(options.logger)) throw argumentError('logger needs debug, warn and error methods');
 * isLogger(console); // => true
 * ```
 */
export function isLogger(value: unknown): value is Logger {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.debug === 'function' && typeof v.warn === 'function' && typeof v.error === 'function';
}
