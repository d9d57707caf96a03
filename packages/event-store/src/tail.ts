import { abortable } from '@redis-events/resp';
import { EventStoreError } from './errors.ts';
import type { EventTail, StoredEvent } from './event.ts';
import { sleep, type Waiter } from './layout.ts';
import { isTransient } from './redis-client.ts';

/** What a tail needs from the store. */
export interface TailSource<Payload> {
  /** Resolves to the cursor to start after. Called at once, and again after a transient failure. */
  readonly start: () => Promise<string>;
  /** Up to `limit` events after `cursor`, oldest first, expired ones left out. */
  readonly read: (cursor: string, limit: number) => Promise<StoredEvent<Payload>[]>;
  readonly waiter: Waiter;
  /** True once the client can never serve again (it was quit or disconnected for good). */
  readonly clientEnded: () => boolean;
  /** Called once when the tail ends, however it ends. */
  readonly onEnd: () => void;
  /** Told of each transient failure the tail waits out, and the pause before it tries again. */
  readonly onRetry: (err: unknown, delayMs: number) => void;
}

const MAX_BACKOFF_MS = 1000;

/**
 * A live tail as an async iterator: reads what came after the cursor, then waits for more.
 * Connection loss, a loading server or a failover are waited out (with backoff up to 1 s);
 * any other error ends the iteration with that error.
 */
export class Tail<Payload> implements EventTail<Payload> {
  readonly #source: TailSource<Payload>;
  readonly #batchSize: number;
  readonly #controller = new AbortController();
  readonly #generator: AsyncGenerator<StoredEvent<Payload>, undefined, undefined>;
  readonly #started: Promise<string>;
  readonly #detach: (() => void) | undefined;

  constructor(source: TailSource<Payload>, batchSize: number, signal: AbortSignal | undefined) {
    this.#source = source;
    this.#batchSize = batchSize;
    this.#started = source.start();
    this.#started.catch(() => {}); // reported by the first next()
    if (signal) {
      const abort = (): void => this.#controller.abort();
      if (signal.aborted) abort();
      else {
        signal.addEventListener('abort', abort, { once: true });
        this.#detach = () => signal.removeEventListener('abort', abort);
      }
    }
    this.#generator = this.#run();
  }

  async *#run(): AsyncGenerator<StoredEvent<Payload>, undefined, undefined> {
    const signal = this.#controller.signal;
    try {
      // The start is inside the retry loop: a tail made while Redis is briefly away waits it out,
      // and one whose client is closed before the start answered ends with ERR_EVENT_STORE_CLOSED.
      let cursor: string | null = null;
      let seen: string | null = null;
      let backoff = 0;
      let firstStart = true;
      while (!signal.aborted) {
        try {
          if (cursor === null) {
            const start = firstStart ? this.#started : this.#source.start();
            firstStart = false;
            // The signal (or close()) ends the tail also while a start or a read waits for Redis.
            cursor = await abortable(start, signal);
          }
          const batch: StoredEvent<Payload>[] = await abortable(this.#source.read(cursor, this.#batchSize), signal);
          backoff = 0;
          if (batch.length > 0) {
            seen = null;
            for (const event of batch) {
              cursor = event.id;
              yield event;
              if (signal.aborted) return undefined;
            }
            continue;
          }
          // The waiter saw an entry after the cursor that the read left out: it has expired.
          // Step over it, or the blocking read would return it again at once.
          if (seen !== null) {
            cursor = seen;
            seen = null;
            continue;
          }
          seen = await this.#source.waiter.wait(cursor, signal);
        } catch (err) {
          if (signal.aborted) return undefined;
          if (this.#source.clientEnded()) {
            throw new EventStoreError(
              'ERR_EVENT_STORE_CLOSED',
              'the tail stopped: its Redis client was closed; create the tail again with a connected client, using `after` with the last id you got',
              { cause: err },
            );
          }
          if (!isTransient(err)) throw err;
          backoff = Math.min(MAX_BACKOFF_MS, backoff === 0 ? 50 : backoff * 2);
          this.#source.onRetry(err, backoff);
          await sleep(backoff, signal);
        }
      }
      return undefined;
    } finally {
      this.#end();
    }
  }

  #end(): void {
    this.#controller.abort();
    this.#detach?.();
    this.#source.waiter.release();
    this.#source.onEnd();
  }

  next(): Promise<IteratorResult<StoredEvent<Payload>, undefined>> {
    return this.#generator.next();
  }

  async return(): Promise<IteratorResult<StoredEvent<Payload>, undefined>> {
    await this.close();
    return { done: true, value: undefined };
  }

  async close(): Promise<void> {
    this.#controller.abort();
    this.#source.waiter.release();
    await this.#generator.return(undefined);
    this.#end();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
