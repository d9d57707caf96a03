/** Stable codes carried by {@link TestkitError}. */
export type TestkitErrorCode =
  /** No way to get a Redis was found (no REDIS_URL, no container engine, no redis-server binary). */
  | 'ERR_TESTKIT_NO_SERVER'
  /** A server process or container did not start, or exited while starting. */
  | 'ERR_TESTKIT_START'
  /** A wait (readiness, replication link, cluster state) ran out of time. */
  | 'ERR_TESTKIT_TIMEOUT'
  /** The caller's AbortSignal ended a start or a wait (the error's `name` is `'AbortError'`). */
  | 'ERR_TESTKIT_ABORTED'
  /** The operation is not possible for this kind of server (for example restarting a REDIS_URL server). */
  | 'ERR_TESTKIT_UNSUPPORTED'
  /** FLUSHALL was refused on a server the testkit does not own. */
  | 'ERR_TESTKIT_FLUSH_REFUSED'
  /** REDIS_SERVER or REDIS_SERVERS_DIR did not select any server. */
  | 'ERR_TESTKIT_SELECTION'
  /** Certificates for TLS could not be generated. */
  | 'ERR_TESTKIT_TLS'
  /** The container engine failed or an image is missing while pulls are forbidden. */
  | 'ERR_TESTKIT_CONTAINER'
  /** Wrong arguments to a testkit function. */
  | 'ERR_TESTKIT_ARGUMENT';

const brand: unique symbol = Symbol.for('@redis-events/testkit.error');
// The brand of @redis-events/resp's RedisEventsError, the base of every package's errors. The
// testkit cannot depend on resp (resp's own tests use the testkit), so its error carries that
// brand and the same fields itself: `err instanceof RedisEventsError` holds for it too.
const sharedBrand: unique symbol = Symbol.for('@redis-events/error');

/**
 * The one error class thrown by the testkit. `code` is stable; `message` says what went wrong and
 * what to do about it. `instanceof` works across duplicate installs of the package, and
 * `instanceof RedisEventsError` (of `@redis-events/resp`) holds, as for every package's errors.
 *
 * @example
 * ```ts
 * try {
 *   await startRedis();
 * } catch (err) {
 *   if (err instanceof TestkitError && err.code === 'ERR_TESTKIT_NO_SERVER') console.error(err.message);
 * }
 * ```
 */
export class TestkitError extends Error {
  override readonly name: string = 'TestkitError';
  readonly code: TestkitErrorCode;
  /** The npm name of this package, as every `RedisEventsError` carries its package's. */
  readonly package: string = '@redis-events/testkit';
  /** Never set: the testkit has no close that abandons work (a `RedisEventsError` field). */
  readonly abandoned: Readonly<Record<string, number>> | undefined = undefined;

  constructor(
    code: TestkitErrorCode,
    message: string,
    options?: (ErrorOptions & { readonly name?: 'AbortError' | undefined }) | undefined,
  ) {
    super(message, options !== undefined && 'cause' in options ? { cause: options.cause } : undefined);
    if (options?.name) this.name = options.name;
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
    Object.defineProperty(this, sharedBrand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}

/**
 * The error of a start or a wait that the caller's AbortSignal ended: `ERR_TESTKIT_ABORTED`,
 * `name` `'AbortError'`, the signal's reason as the cause.
 */
export function abortedError(what: string, reason: unknown): TestkitError {
  return new TestkitError('ERR_TESTKIT_ABORTED', `${what} was aborted`, { cause: reason, name: 'AbortError' });
}

/** Throws {@link abortedError} when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal.reason);
}
