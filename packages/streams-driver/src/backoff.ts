/** How transient failures are retried: exponential backoff with full jitter. */
export interface RetryOptions {
  /** First pause in ms. Default 50. */
  readonly initialDelayMs?: number | undefined;
  /** Longest pause in ms. Default 5000. */
  readonly maxDelayMs?: number | undefined;
}

/** Pauses that double after each failure up to a cap, randomised so that clients do not retry in step. */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  #attempt = 0;

  constructor(options: RetryOptions = {}) {
    this.#initial = Math.max(1, options.initialDelayMs ?? 50);
    this.#max = Math.max(this.#initial, options.maxDelayMs ?? 5000);
  }

  /** Failures since the last success. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The pause before the next try, in ms. */
  next(): number {
    const ceiling = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Waits `ms`, or less when `signal` fires (it never rejects: loops check their own state). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
