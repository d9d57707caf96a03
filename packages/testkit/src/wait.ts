import { setTimeout as sleep } from 'node:timers/promises';
import { abortedError, TestkitError, throwIfAborted } from './errors.ts';

/** Options of the testkit's waits: a bound, and a signal that ends the wait early. */
export interface WaitOptions {
  readonly timeoutMs?: number | undefined;
  /** Ends the wait with `ERR_TESTKIT_ABORTED` (`name` `'AbortError'`). */
  readonly signal?: AbortSignal | undefined;
}

/** `timeoutMs` as a number, or `{ timeoutMs, signal }`, normalized. */
export function waitOptions(
  options: number | WaitOptions | undefined,
  fallbackMs: number,
): { timeoutMs: number; signal: AbortSignal | undefined } {
  if (typeof options === 'number') return { timeoutMs: options, signal: undefined };
  return { timeoutMs: options?.timeoutMs ?? fallbackMs, signal: options?.signal };
}

/**
 * Polls `check` until it returns true, at most `timeoutMs`. Errors thrown by `check` count as
 * "not yet"; the last one is reported when time runs out. `signal` ends the wait at once with
 * `ERR_TESTKIT_ABORTED`.
 *
 * @example
 * ```ts
 * await waitFor('the key', async () => (await client.exists('k')) === 1, 5_000, 50, AbortSignal.timeout(10_000));
 * ```
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  intervalMs = 50,
  signal?: AbortSignal | undefined,
): Promise<void> {
  throwIfAborted(signal, `waiting for ${what}`);
  // Rejects when the signal fires: raced against each check (one that hangs on a frozen server
  // does not hold the wait) and each pause.
  let onAbort: (() => void) | undefined;
  const aborted = signal
    ? new Promise<never>((_, reject) => {
        onAbort = () => reject(abortedError(`waiting for ${what}`, signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
      })
    : undefined;
  aborted?.catch(() => {});
  const unlessAborted = <T>(work: Promise<T>): Promise<T> =>
    aborted === undefined ? work : Promise.race([work, aborted]);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  try {
    for (;;) {
      try {
        if (await unlessAborted(Promise.resolve().then(check))) return;
      } catch (err) {
        if (signal?.aborted) throw abortedError(`waiting for ${what}`, signal.reason);
        last = err;
      }
      if (Date.now() >= deadline) {
        const tail = last instanceof Error ? ` (last error: ${last.message})` : '';
        throw new TestkitError('ERR_TESTKIT_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${tail}`, {
          cause: last,
        });
      }
      await unlessAborted(sleep(intervalMs, undefined, signal ? { signal } : undefined));
    }
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
