// Record streams: async iterators over records, read page by page so that memory stays bounded.
// `next()` calls are served one after another; `close()` ends a stream at once, even one that is
// waiting for changes.
import type { Entry } from './entry.ts';
import type { ChangeNotifier, ChangePush, ChangeWatch, Wake, WakeReason } from './notifier.ts';
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
  /** `next()` calls not yet answered. */
  #waiting = 0;
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

  /** A record already read and ready to hand out without waiting, if there is one. */
  protected abstract buffered(): DataRecord<T> | undefined;

  protected get open(): boolean {
    return this.#state === 'open';
  }

  next(): Promise<IteratorResult<DataRecord<T>, undefined>> {
    // The common case, a page already read: no chain of promises per record.
    if (this.#waiting === 0 && this.#state === 'open') {
      const record = this.buffered();
      if (record !== undefined) return Promise.resolve({ done: false, value: record });
    }
    this.#waiting++;
    const result = this.#queue
      .then(() => this.#step())
      .finally(() => {
        this.#waiting--;
      });
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

/** A page of the change log: the readable entries, and how far the read went. */
export interface ChangePage {
  readonly entries: readonly Entry[];
  /** The highest version read (entries skipped as damaged included); the cursor's next value. */
  readonly last: number;
  /** Whether the page was full, so that more may follow at once. */
  readonly full: boolean;
}

/** Reads a page of the change log after `cursor`, checked against the server version. */
export type ChangeReader = (cursor: number) => Promise<ChangePage>;

/** What a sync stream took in one go, for diagnostics. */
export interface SyncBatch {
  /** Where the changes came from: a read of the log, or the message of a commit. */
  readonly source: 'read' | 'push';
  /** Why the stream was woken before this batch, when it waited. */
  readonly wake: WakeReason | 'poll' | undefined;
  /** How long the stream waited before this batch, in ms (0 when it did not wait). */
  readonly waitedMs: number;
  /** The changes taken (of every type: the stream filters its type afterwards). */
  readonly entries: readonly Entry[];
  /** Whether the stream has read all the log had when it read (a push counts as caught up). */
  readonly caughtUp: boolean;
}

/** Options of a {@link SyncStream}. */
export interface SyncStreamOptions<T> {
  readonly type: string | undefined;
  readonly serverVersion: number;
  readonly after: number;
  readonly wait: boolean;
  readonly pollIntervalMs: number;
  readonly read: ChangeReader;
  /** The record of an entry; undefined to skip it (damaged, and skipping is on). */
  readonly decode: (entry: Entry) => DataRecord<T> | undefined;
  /** Decodes an entry of a push; throws for damaged bytes (the stream then reads the log instead). */
  readonly decodePushed: (bytes: Buffer) => Entry;
  readonly notifier: ChangeNotifier;
  readonly onEnd: (stream: BaseStream<T>) => void;
  /** Called with each batch taken, when diagnostics listen. */
  readonly onBatch?: ((batch: SyncBatch) => void) | undefined;
  /** Ends the stream when it fires. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Every change after a version, in version order; then, when waiting, each new change as it
 * commits. Woken by the notifier, and polls in case a notification was lost. A full page is
 * followed by a read of the next one at once, while the first is being consumed.
 */
export class SyncStream<T> extends BaseStream<T> {
  readonly #options: SyncStreamOptions<T>;
  /** The highest version read from the log. */
  #cursor: number;
  /** Every change of the type up to this version was delivered. */
  #position: number;
  #buffer: readonly Entry[] = [];
  #index = 0;
  #caughtUp = false;
  /** The next page, read ahead. */
  #ahead: Promise<ChangePage> | undefined;
  #wake: WakeReason | 'poll' | undefined;
  #waitedMs = 0;

  constructor(options: SyncStreamOptions<T>) {
    super(options.onEnd);
    this.#options = options;
    this.#cursor = options.after;
    this.#position = options.after;
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) void this.close();
      else {
        const onAbort = () => void this.close();
        signal.addEventListener('abort', onAbort, { once: true });
        this.onStop(() => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  get recordVersion(): number {
    return this.#position;
  }

  protected buffered(): DataRecord<T> | undefined {
    while (this.#index < this.#buffer.length) {
      const entry = this.#buffer[this.#index] as Entry;
      let record: DataRecord<T> | undefined;
      try {
        record = this.#options.decode(entry);
      } catch {
        return undefined; // pull() meets it again and fails the stream, in order
      }
      this.#index++;
      this.#position = entry.version;
      if (record) return record;
    }
    return undefined;
  }

  #take(entries: readonly Entry[], source: 'read' | 'push'): void {
    const { type, onBatch } = this.#options;
    if (onBatch && entries.length > 0) {
      const caughtUp = source === 'push' || this.#caughtUp;
      onBatch({ source, wake: this.#wake, waitedMs: this.#waitedMs, entries, caughtUp });
    }
    this.#wake = undefined;
    this.#waitedMs = 0;
    this.#buffer = type === undefined ? entries : entries.filter((e) => e.type === type);
    this.#index = 0;
  }

  protected async pull(): Promise<DataRecord<T> | undefined> {
    const { wait, pollIntervalMs, read, decode, notifier, serverVersion } = this.#options;
    for (;;) {
      while (this.#index < this.#buffer.length) {
        const entry = this.#buffer[this.#index] as Entry;
        const record = decode(entry); // throws for data it must not skip, before the position moves past it
        this.#index++;
        this.#position = entry.version;
        if (record) return record;
      }
      this.#position = this.#cursor;
      if (this.#caughtUp && !wait) return undefined;
      const watch = wait ? notifier.watch(this.#cursor, serverVersion) : undefined;
      try {
        const ahead = this.#ahead;
        this.#ahead = undefined;
        const page = await (ahead ?? read(this.#cursor));
        if (!this.open) return undefined;
        this.#caughtUp = !page.full;
        if (page.last > this.#cursor) {
          this.#cursor = page.last;
          if (page.full) {
            this.#ahead = read(this.#cursor);
            this.#ahead.catch(() => {}); // awaited on the next page; a failure surfaces there
          }
          this.#take(page.entries, 'read');
          continue;
        }
        if (!wait) return undefined;
        let timer: NodeJS.Timeout | undefined;
        let forget: (() => void) | undefined;
        const since = performance.now();
        const wake = await new Promise<Wake | undefined>((resolve) => {
          void (watch as ChangeWatch).changed.then(resolve);
          forget = this.onStop(() => resolve(undefined));
          timer = setTimeout(() => resolve(undefined), pollIntervalMs);
        });
        clearTimeout(timer);
        forget?.();
        this.#waitedMs = performance.now() - since;
        this.#wake = wake?.reason ?? 'poll';
        const pushed = wake?.push ? this.#fromPush(wake.push) : undefined;
        if (pushed) {
          this.#cursor = (pushed[pushed.length - 1] as Entry).version;
          this.#take(pushed, 'push');
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
        entry = this.#options.decodePushed(bytes);
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
    signal?: AbortSignal,
  ) {
    super(onEnd);
    this.#version = recordVersion;
    this.#nextPage = nextPage;
    if (signal) {
      if (signal.aborted) void this.close();
      else {
        const onAbort = () => void this.close();
        signal.addEventListener('abort', onAbort, { once: true });
        this.onStop(() => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  get recordVersion(): number {
    return this.#version;
  }

  protected buffered(): DataRecord<T> | undefined {
    return this.#index < this.#buffer.length ? this.#buffer[this.#index++] : undefined;
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
