/**
 * Where the testkit says what it does: servers started and stopped (debug), and a server that had
 * to be killed because it did not stop (warn). The subset of methods that `console` and pino
 * share, the same shape as `Logger` of `@redis-events/resp` (the testkit cannot depend on resp,
 * whose own tests use the testkit). Nothing is logged without one.
 *
 * @example
 * ```ts
 * const server = await spawnRedis({ logger: console });
 * ```
 */
export interface Logger {
  debug(context: object, message: string): void;
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}

const silent = (): void => {};

/** A logger that says nothing: the default. */
export const noopLogger: Logger = Object.freeze({ debug: silent, warn: silent, error: silent });
