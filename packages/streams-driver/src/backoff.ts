import { exponentialBackoff, type ReconnectStrategy } from '@redis-events/resp';

/** How transient failures are retried: exponential backoff with jitter. */
export interface RetryOptions {
  /** First pause in ms. Default 50. */
  readonly initialDelayMs?: number | undefined;
  /** Longest pause in ms. Default 5000. */
  readonly maxDelayMs?: number | undefined;
}

/**
 * Pauses that double after each failure up to a cap, randomised (each between half and all of
 * the capped value) so that clients do not retry in step; counts failures since the last success.
 */
export class Backoff {
  readonly #delay: ReconnectStrategy;
  #attempt = 0;

  constructor(options: RetryOptions = {}) {
    const initialDelay = Math.max(1, options.initialDelayMs ?? 50);
    const maxDelay = Math.max(initialDelay, options.maxDelayMs ?? 5000);
    this.#delay = exponentialBackoff({ initialDelay, maxDelay, jitter: 0.5 });
  }

  /** Failures since the last success. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The pause before the next try, in ms. */
  next(): number {
    this.#attempt++;
    return this.#delay(this.#attempt, FAILED) || 0;
  }

  reset(): void {
    this.#attempt = 0;
  }
}

const FAILED = new Error('failed');
