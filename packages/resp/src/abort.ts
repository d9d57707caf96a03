// Waiting with an AbortSignal: what every package's `{ signal }` option is built on. Each helper
// removes its listener and clears its timer as soon as it settles, so a long-lived signal (a
// process-wide shutdown controller) collects nothing and no timer keeps the process alive.
import { RespError } from './errors.ts';

/**
 * Builds the error a call rejects with when its AbortSignal fires, from `signal.reason`: the
 * package's own class, with `name: 'AbortError'` and the reason as `cause`.
 *
 * @example
 * ```ts
 * const aborted: AbortErrorFactory = (reason) =>
 *   new PubSubError('ERR_PUBSUB_ABORTED', 'the call was aborted', { cause: reason, name: 'AbortError' });
 * ```
 */
export type AbortErrorFactory = (reason: unknown) => Error;

/**
 * The abort error of this package: a {@link RespError} `ERR_RESP_ABORTED` named `'AbortError'`,
 * with the signal's reason as `cause`. The default factory of the helpers below.
 *
 * @example
 * ```ts
 * const err = respAbortError(new Error('shutting down'));
 * err.name; // => 'AbortError'
 * ```
 */
export function respAbortError(reason: unknown): RespError {
  return new RespError('ERR_RESP_ABORTED', `the call was aborted${describeReason(reason)}`, {
    cause: reason,
    name: 'AbortError',
  });
}

/** `: <reason>` for a message, when the reason says something. */
function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message ? `: ${reason.message}` : '';
  return reason === undefined ? '' : `: ${String(reason)}`;
}

/**
 * Throws the package's abort error when `signal` has fired; does nothing otherwise (or without
 * a signal). For the top of a call, before it starts anything.
 *
 * @example
 * ```ts
 * throwIfAborted(options.signal, aborted);
 * ```
 * @throws the error `abortError(signal.reason)` builds ({@link respAbortError} by default).
 */
export function throwIfAborted(signal: AbortSignal | undefined, abortError: AbortErrorFactory = respAbortError): void {
  if (signal?.aborted) throw abortError(signal.reason);
}

/**
 * Settles like `promise`, or rejects with the package's abort error as soon as `signal` fires,
 * whichever comes first. The listener is removed when either happens; `promise` itself goes on
 * (cancel the work it stands for separately) and its later failure is not reported as unhandled.
 *
 * @example
 * ```ts
 * const reply = await abortable(connection.send(['BLPOP', 'jobs', 0]), options.signal, aborted);
 * ```
 */
export function abortable<T>(
  promise: PromiseLike<T>,
  signal: AbortSignal | undefined,
  abortError: AbortErrorFactory = respAbortError,
): Promise<T> {
  if (signal === undefined) return Promise.resolve(promise);
  if (signal.aborted) {
    Promise.resolve(promise).catch(ignore);
    return Promise.reject(abortError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      Promise.resolve(promise).catch(ignore);
      reject(abortError(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(promise).then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function ignore(): void {}

/** Options of {@link delay}. */
export interface DelayOptions {
  /** Ends the wait early. */
  readonly signal?: AbortSignal | undefined;
  /**
   * What an abort does: without it, the delay resolves early (for loops that check their own
   * state after each pause); with it, the delay rejects with the error it builds.
   */
  readonly abortError?: AbortErrorFactory | undefined;
  /** Let the process exit while the delay runs (`timer.unref()`). Default false. */
  readonly unref?: boolean | undefined;
}

/**
 * Waits `ms` milliseconds. With a `signal`, the wait ends when it fires: the promise resolves
 * early, or rejects with `abortError(signal.reason)` when that option is given. The timer is
 * cleared and the listener removed either way.
 *
 * @example
 * ```ts
 * await delay(backoff(attempt, cause) || 0, { signal }); // a retry loop: stops waiting at shutdown
 * await delay(1000, { signal: options.signal, abortError: aborted }); // a user call: rejects on abort
 * ```
 *
 * A negative or NaN `ms` waits as little as `setTimeout` does.
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal, abortError } = options;
  if (signal?.aborted) return abortError ? Promise.reject(abortError(signal.reason)) : Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      if (abortError && signal) reject(abortError(signal.reason));
      else resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (options.unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
