// Record streams: async iterators over records, read page by page so that memory stays bounded.
// `next()` calls are served one after another; `close()` ends a stream at once, even one that is
// waiting for changes.
import { decodeEntry, type Entry } from './entry.ts';
import type { ChangeNotifier, ChangePush } from './notifier.ts';
import type { DataRecord } from './records.ts';

/**
 * An async iterator of records with `close()`. Use it with `for await`; leaving the loop early
 * closes it. Errors (a flushed server, a closed backend, damaged data) end it and are thrown from
 * the loop.
 *
 * @example
 * ```ts
 * const stream = broker.sync('session', serverVersion, recordVersion);
 * setTimeout(() => stream.close(), 60_000); // stop following after a minute
 * for await (const record of stream) console.log(record.version, record.id);
 * console.log('resume later from', stream.recordVersion);
 * ```
 */
export interface RecordStream<T> extends AsyncIterableIterator<DataRecord<T>, undefined>, AsyncDisposable {
  /**
   * For `sync`: every change of the stream's type up to this version has been delivered, so a
   * new `sync` from it continues where this one stopped. For `syncLatest`: the snapshot's version.
   */
  readonly recordVersion: number;
  /** Ends the stream: a pending or later `next()` resolves as done. */
  close(): Promise<void>;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** The shared machinery: serialized `next()`, end and failure states, close while waiting. */
abstract class BaseStream<T> implements RecordStream<T> {
  #queue: Promise<unknown> = Promise.resolve();
  #state: 'open' | 'ended' | 'failed' = 'open';
  #error: unknown;
  /** Called when the stream ends or fails, to cut a wait short. */
  readonly #stopWaiters = new Set<() => void>();
  readonly #onEnd: ((stream: BaseStream<T>) => void) | undefined;

  constructor(onEnd?: (stream: BaseStream<T>) => void) {
    this.#onEnd = onEnd;
  }

  /**
   * Calls `wake` once when the stream ends or fails (at once if it has), unless the returned
   * function is called first. A callback rather than a promise: a wait that raced a long-lived
   * promise would leave a reaction on it each time, and a stream can wait millions of times.
   */
  protected onStop(wake: () => void): () => void {
    if (this.#state !== 'open') {
      wake();
      return () => {};
    }
    this.#stopWaiters.add(wake);
    return () => this.#stopWaiters.delete(wake);
  }

  abstract get recordVersion(): number;

  /** The next record, or undefined at the end. */
  protected abstract pull(): Promise<DataRecord<T> | undefined>;

  protected get open(): boolean {
    return this.#state === 'open';
  }

  next(): Promise<IteratorResult<DataRecord<T>, undefined>> {
    const result = this.#queue.then(() => this.#step());
    this.#queue = result.catch(() => {});
    return result;
  }

  async #step(): Promise<IteratorResult<DataRecord<T>, undefined>> {
    if (this.#state === 'failed') throw this.#error;
    if (this.#state === 'ended') return DONE;
    let record: DataRecord<T> | undefined;
    try {
      record = await this.pull();
    } catch (err) {
      this.fail(err);
    }
    // close() or fail() may have run while pull() was waiting.
    const state = this.#state as 'open' | 'ended' | 'failed';
    if (state === 'failed') throw this.#error;
    if (state === 'ended') return DONE;
    if (record === undefined) {
      this.#finish('ended');
      return DONE;
    }
    return { done: false, value: record };
  }

  async return(): Promise<IteratorResult<DataRecord<T>, undefined>> {
    this.#finish('ended');
    return DONE;
  }

  close(): Promise<void> {
    this.#finish('ended');
    return Promise.resolve();
  }

  /** Ends the stream with an error, thrown by the pending and every later `next()`. */
  fail(err: unknown): void {
    if (this.#state !== 'open') return;
    this.#error = err;
    this.#finish('failed');
  }

  #finish(state: 'ended' | 'failed'): void {
    if (this.#state !== 'open') return;
    this.#state = state;
    for (const wake of this.#stopWaiters) wake();
    this.#stopWaiters.clear();
    this.#onEnd?.(this);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Reads a page of the change log after `cursor`, checked against the server version. */
export type ChangeReader = (cursor: number, limit: number) => Promise<Entry[]>;

/** Options of a {@link SyncStream}. */
export interface SyncStreamOptions<T> {
  readonly type: string | undefined;
  readonly serverVersion: number;
  readonly after: number;
  readonly wait: boolean;
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  readonly read: ChangeReader;
  readonly decode: (entry: Entry) => DataRecord<T>;
  readonly notifier: ChangeNotifier;
  readonly onEnd: (stream: BaseStream<T>) => void;
}

/**
 * Every change after a version, in version order; then, when waiting, each new change as it
 * commits. Woken by the notifier, and polls in case a notification was lost.
 */
export class SyncStream<T> extends BaseStream<T> {
  readonly #options: SyncStreamOptions<T>;
  /** The highest version read from the log. */
  #cursor: number;
  /** Every change of the type up to this version was delivered. */
  #position: number;
  #buffer: Entry[] = [];
  #index = 0;
  #caughtUp = false;

  constructor(options: SyncStreamOptions<T>) {
    super(options.onEnd);
    this.#options = options;
    this.#cursor = options.after;
    this.#position = options.after;
  }

  get recordVersion(): number {
    return this.#position;
  }

  protected async pull(): Promise<DataRecord<T> | undefined> {
    const { type, wait, batchSize, pollIntervalMs, read, decode, notifier } = this.#options;
    for (;;) {
      if (this.#index < this.#buffer.length) {
        const entry = this.#buffer[this.#index] as Entry;
        const record = decode(entry); // throws for damaged data, before the position moves past it
        this.#index++;
        this.#position = entry.version;
        return record;
      }
      this.#position = this.#cursor;
      if (this.#caughtUp && !wait) return undefined;
      const watch = wait ? notifier.watch(this.#cursor) : undefined;
      try {
        const entries = await read(this.#cursor, batchSize);
        if (!this.open) return undefined;
        this.#caughtUp = entries.length < batchSize;
        if (entries.length > 0) {
          this.#cursor = (entries[entries.length - 1] as Entry).version;
          this.#buffer = type === undefined ? entries : entries.filter((e) => e.type === type);
          this.#index = 0;
          continue;
        }
        if (!wait) return undefined;
        let timer: NodeJS.Timeout | undefined;
        let forget: (() => void) | undefined;
        const push = await new Promise<ChangePush | undefined>((resolve) => {
          (watch as NonNullable<typeof watch>).changed.then(resolve);
          forget = this.onStop(() => resolve(undefined));
          timer = setTimeout(() => resolve(undefined), pollIntervalMs);
        });
        clearTimeout(timer);
        forget?.();
        const pushed = push ? this.#fromPush(push) : undefined;
        if (pushed) {
          this.#cursor = (pushed[pushed.length - 1] as Entry).version;
          this.#buffer = type === undefined ? pushed : pushed.filter((e) => e.type === type);
          this.#index = 0;
        }
      } finally {
        watch?.dispose();
      }
    }
  }

  /**
   * The changes of a push when they are exactly the next ones this stream needs (its server
   * version, the first right after the cursor, consecutive); undefined means read instead.
   */
  #fromPush(push: ChangePush): Entry[] | undefined {
    if (push.serverVersion !== this.#options.serverVersion) return undefined;
    const entries: Entry[] = [];
    let expected = this.#cursor + 1;
    for (const bytes of push.entries) {
      let entry: Entry;
      try {
        entry = decodeEntry(bytes);
      } catch {
        return undefined; // the log read will report it
      }
      if (entry.version !== expected) return undefined;
      entries.push(entry);
      expected++;
    }
    return entries.length > 0 ? entries : undefined;
  }
}

/** The records of a snapshot, a page at a time. */
export class LatestStream<T> extends BaseStream<T> {
  readonly #version: number;
  readonly #nextPage: () => Promise<DataRecord<T>[] | undefined>;
  #buffer: DataRecord<T>[] = [];
  #index = 0;

  constructor(
    recordVersion: number,
    nextPage: () => Promise<DataRecord<T>[] | undefined>,
    onEnd: (stream: BaseStream<T>) => void,
  ) {
    super(onEnd);
    this.#version = recordVersion;
    this.#nextPage = nextPage;
  }

  get recordVersion(): number {
    return this.#version;
  }

  protected async pull(): Promise<DataRecord<T> | undefined> {
    for (;;) {
      if (this.#index < this.#buffer.length) return this.#buffer[this.#index++];
      const page = await this.#nextPage();
      if (!page || !this.open) return undefined;
      this.#buffer = page;
      this.#index = 0;
    }
  }
}

export type { BaseStream };
