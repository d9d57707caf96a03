import type { ReadOrder } from './event.ts';

/** A read, with times in ms and the cursor already validated by the layout. */
export interface Query {
  readonly order: ReadOrder;
  readonly limit: number;
  readonly after: string | undefined;
  readonly since: number | undefined;
  readonly until: number | undefined;
}

/** One stored event as a layout returns it, before the payload is decoded. */
export interface RawEvent {
  readonly id: string;
  readonly timestampMs: number;
  /** The stored text: the serialized payload (stream) or the Go envelope (timeline). */
  readonly text: string;
}

/** What the two data layouts implement; `RedisEventStore` does validation, decoding and errors. */
export interface Layout {
  /** Appends one event atomically; `text` is the serialized payload. */
  append(name: string, payloadText: string): Promise<{ id: string; timestampMs: number }>;
  read(name: string, query: Query): Promise<RawEvent[]>;
  count(name: string): Promise<number>;
  clear(name: string): Promise<void>;
  /**
   * The newest id ever given to the name (or the smallest id), and the server's time when it was
   * looked up, in milliseconds with a fraction (TIME's microseconds).
   */
  lastId(name: string): Promise<{ readonly id: string; readonly serverMs: number }>;
  /** Orders two ids of this layout: negative when `a` comes first. */
  compareIds(a: string, b: string): number;
  /** The greatest id that comes before every id given at or after `ms` (server clock). */
  idBefore(ms: number): string;
  /** The time in an id, in milliseconds. */
  msOf(id: string): number;
  /** Checks and normalizes an event id given as a cursor; throws ERR_EVENT_STORE_ARGUMENT. */
  parseId(id: unknown): string;
  /** Turns a stored text into a payload. */
  decode(name: string, raw: RawEvent): unknown;
  /** The keys that hold a name's events (value keys of the timeline layout as a pattern). */
  keysOf(name: string): { readonly keys: readonly string[]; readonly pattern?: string | undefined };
  /** What a tail waits on between reads: a blocking read (stream) or a sleep (timeline). */
  waiter(name: string, options: { blockMs: number; pollIntervalMs: number }): Waiter;
}

/** Waits for new events of one name on behalf of one tail. */
export interface Waiter {
  /**
   * Resolves when the name may have events after `cursor`: with the id of an entry seen after
   * it, or null. Resolves (or rejects) promptly once `signal` aborts.
   */
  wait(cursor: string, signal: AbortSignal): Promise<string | null>;
  /** Releases what the waiter holds (a dedicated connection). */
  release(): void;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
