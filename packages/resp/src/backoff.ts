import { RespError } from './errors.ts';

/**
 * Decides whether and when to reconnect: called with the attempt number (1 for the first
 * reconnect after a loss) and the cause; returns a delay in milliseconds, or `false` to give up.
 */
export type ReconnectStrategy = (attempt: number, cause: Error) => number | false;

/** Options of {@link exponentialBackoff}. */
export interface BackoffOptions {
  /** Delay before the first attempt. Default 50 ms. */
  readonly initialDelay?: number | undefined;
  /** Cap of the delay. Default 2000 ms. */
  readonly maxDelay?: number | undefined;
  /** Growth per attempt. Default 2. */
  readonly factor?: number | undefined;
  /**
   * Share of the delay that is random, from 0 (none) to 1 (full jitter). Default 0.5: each delay
   * is between half and all of the capped exponential value, so clients that lost the same
   * server do not come back in lockstep.
   */
  readonly jitter?: number | undefined;
  /** Give up after this many attempts. Default: never. */
  readonly maxAttempts?: number | undefined;
  /** The random source, for tests. Default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

/**
 * Capped exponential backoff with jitter: attempt `n` waits
 * `min(maxDelay, initialDelay * factor^(n-1))`, of which the `jitter` share is random.
 *
 * @example
 * ```ts
 * const connection = new RespConnection({ url, reconnect: exponentialBackoff({ maxDelay: 5000, maxAttempts: 20 }) });
 * exponentialBackoff({ jitter: 0 })(3, new Error('lost')); // 200
 * ```
 * @throws {RespError} `ERR_RESP_ARGUMENT` for a negative delay, a factor below 1 or a jitter outside 0..1.
 */
export function exponentialBackoff(options: BackoffOptions = {}): ReconnectStrategy {
  const initialDelay = options.initialDelay ?? 50;
  const maxDelay = options.maxDelay ?? 2000;
  const factor = options.factor ?? 2;
  const jitter = options.jitter ?? 0.5;
  const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  const random = options.random ?? Math.random;
  if (!(initialDelay >= 0) || !(maxDelay >= initialDelay) || !(factor >= 1) || !(jitter >= 0 && jitter <= 1)) {
    throw new RespError(
      'ERR_RESP_ARGUMENT',
      'backoff needs 0 <= initialDelay <= maxDelay, factor >= 1 and 0 <= jitter <= 1',
    );
  }
  return (attempt) => {
    if (attempt > maxAttempts) return false;
    const capped = Math.min(maxDelay, initialDelay * factor ** Math.max(0, attempt - 1));
    return Math.round(capped * (1 - jitter) + capped * jitter * random());
  };
}
