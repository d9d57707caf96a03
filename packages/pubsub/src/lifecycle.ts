// What every waiting call and every close share: `{ signal }` and `{ timeoutMs }` options, the
// package's abort error, checks of option objects (an unknown field is a typo, refused with the
// fields there are), and the trailing options object of the variadic methods.
import { PubSubError } from './errors.ts';

/**
 * Options of every call that can wait.
 *
 * @example
 * ```ts
 * await client.publish('orders', 'hello', { signal: AbortSignal.timeout(1000) });
 * await subscription.subscribe('a', 'b', { signal });
 * ```
 */
export interface CallOptions {
  /** Ends the wait: the call rejects with a `PubSubError` named `'AbortError'` (`ERR_PUBSUB_ABORTED`). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options of `close()`: the bound on the orderly part (unsubscribing, waiting for the answers
 * of calls in flight). Without either, the client's `closeTimeout`.
 *
 * @example
 * ```ts
 * await client.close({ timeoutMs: 5000 });
 * await subscription.close({ signal: AbortSignal.timeout(1000) });
 * ```
 */
export interface CloseOptions {
  /** Milliseconds for the orderly close; then what is left is abandoned. */
  readonly timeoutMs?: number | undefined;
  /** Ends the orderly close now: what is left is abandoned. */
  readonly signal?: AbortSignal | undefined;
}

export const CALL_OPTIONS: readonly string[] = ['signal'];
export const CLOSE_OPTIONS: readonly string[] = ['timeoutMs', 'signal'];

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message ? ` (${reason.message})` : '';
  return reason === undefined ? '' : ` (${String(reason)})`;
}

/** The abort error of a call: a PubSubError named `AbortError`, the signal's reason as `cause`. */
export function abortError(what: string): (reason: unknown) => PubSubError {
  return (reason) =>
    new PubSubError('ERR_PUBSUB_ABORTED', `${what} was aborted${describeReason(reason)}`, {
      cause: reason,
      name: 'AbortError',
    });
}

/** The closest of `candidates` to `name` (a typo), if it is close enough to suggest. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const a = name.toLowerCase();
    const b = candidate.toLowerCase();
    // Levenshtein distance, one row at a time.
    let row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++)
        next[j] = Math.min(
          (row[j] as number) + 1,
          (next[j - 1] as number) + 1,
          (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
      row = next;
    }
    const distance = row[b.length] as number;
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Refuses an options object with a field that is not one of `known` (a typo is not ignored). */
export function checkFields(what: string, value: unknown, known: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new PubSubError(
      'ERR_PUBSUB_ARGUMENT',
      `${what} must be an object, got ${value === null ? 'null' : typeof value}`,
    );
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = closest(key, known);
    throw new PubSubError(
      'ERR_PUBSUB_ARGUMENT',
      `${what} has no field ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}; its fields are ${known.join(', ')}`,
    );
  }
}

/** Checks a signal option. */
export function checkSignal(what: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal))
    throw new PubSubError('ERR_PUBSUB_ARGUMENT', `${what}: signal must be an AbortSignal, got ${typeof signal}`);
  return signal;
}

/** Splits `(...names, options?)`: a trailing object is the options. */
export function splitOptions(
  method: string,
  args: readonly unknown[],
  known: readonly string[] = CALL_OPTIONS,
): { names: unknown[]; options: Record<string, unknown> } {
  const last = args.at(-1);
  if (typeof last === 'object' && last !== null && !Buffer.isBuffer(last) && !Array.isArray(last)) {
    checkFields(`the options of ${method}()`, last, known);
    return { names: args.slice(0, -1), options: last as Record<string, unknown> };
  }
  return { names: [...args], options: {} };
}

/** Resolves close options to a bound and a signal. */
export function closeBound(
  options: CloseOptions | undefined,
  fallback: number,
): { timeoutMs: number; signal: AbortSignal | undefined } {
  checkFields('the options of close()', options, CLOSE_OPTIONS);
  const timeoutMs = options?.timeoutMs ?? fallback;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))
    throw new PubSubError('ERR_PUBSUB_ARGUMENT', `close(): timeoutMs must be a number >= 0, got ${String(timeoutMs)}`);
  return { timeoutMs, signal: checkSignal('close()', options?.signal) };
}

/**
 * Resolves once `promise` settles, `ms` passed, or `signal` fired, whichever comes first;
 * true when it settled in time. Its timer and listener are gone when it resolves.
 */
export function within(promise: Promise<unknown>, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const done = (settled: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(settled);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => done(true),
      () => done(true),
    );
  });
}
