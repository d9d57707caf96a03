// The bounded buffer between a subscriber connection and the code that iterates a subscription.
// The connection never waits for the consumer: what does not fit is dropped by the overflow
// policy (or ends the subscription), counted, and marked in the stream by a gap, so memory stays
// bounded however slow the consumer is, and the consumer sees where messages are missing.
import type { PubSubError } from './errors.ts';

/**
 * What happens to a message that arrives while a subscription's buffer is full: the oldest
 * buffered message is dropped, the arriving one is, or the subscription ends with
 * `ERR_PUBSUB_OVERFLOW`.
 *
 * @example
 * ```ts
 * const ticks = client.createSubscription({ highWaterMark: 100, overflow: 'drop-oldest' satisfies OverflowPolicy });
 * ```
 */
export type OverflowPolicy = 'drop-oldest' | 'drop-newest' | 'error';

/**
 * Why messages may be missing at a point of the stream: a lost connection, a shard channel whose
 * slot moved, or the overflow policy.
 *
 * @example
 * ```ts
 * subscription.on('gap', (gap) => metrics.increment(`pubsub.gap.${gap.reason satisfies GapReason}`));
 * ```
 */
export type GapReason = 'reconnect' | 'moved' | 'overflow';

/**
 * A point in a subscription's stream where messages may be missing. Pub/Sub is at most once:
 * what was published while a connection was down, or what the buffer dropped, is gone.
 *
 * - `reconnect`: a subscriber connection was lost and is subscribed again; messages published
 *   between `since` and `until` to the names listed were not received. It comes once the
 *   subscriptions are restored, so state re-read at that point misses nothing later.
 * - `moved`: shard channels whose slot moved to another node (the server unsubscribed them)
 *   were subscribed again at the new owner.
 * - `overflow`: the consumer was too slow; `dropped` messages were dropped here by the
 *   overflow policy.
 *
 * Consecutive gaps of the same reason are merged.
 *
 * @example
 * ```ts
 * for await (const event of subscription) {
 *   if (event.kind === 'gap') {
 *     console.warn(`messages may be missing (${event.reason}, ${event.dropped} dropped)`);
 *     await reloadState(); // the subscription is whole again from here on
 *     continue;
 *   }
 *   handle(event.channel, event.payload);
 * }
 * ```
 */
export interface PubSubGap {
  readonly kind: 'gap';
  readonly reason: GapReason;
  /** Messages dropped here by the overflow policy; 0 for `reconnect` and `moved` (unknown how many). */
  readonly dropped: number;
  /** Channels that may have missed messages (`reconnect`). */
  readonly channels: readonly string[];
  /** Patterns that may have missed messages (`reconnect`). */
  readonly patterns: readonly string[];
  /** Shard channels that may have missed messages (`reconnect`, `moved`). */
  readonly shardChannels: readonly string[];
  /** Why: the connection error, the health check failure, the server's unsubscribe... */
  readonly cause: PubSubError | undefined;
  /** When messages started to be missed (ms since the epoch). */
  readonly since: number;
  /** When the subscription was whole again, or the last drop (ms since the epoch). */
  readonly until: number;
}

interface MutableGap {
  kind: 'gap';
  reason: GapReason;
  dropped: number;
  channels: string[];
  patterns: string[];
  shardChannels: string[];
  cause: PubSubError | undefined;
  since: number;
  until: number;
  /** An open gap is not readable yet (its subscriptions are being restored) and never merges. */
  open: boolean;
}

/** A gap added open with {@link MessageBuffer.openGap}, to close with {@link MessageBuffer.closeGap}. */
export interface OpenGap {
  readonly reason: GapReason;
}

/** A gap as reported, before merging. */
export interface GapInput {
  readonly reason: GapReason;
  readonly dropped?: number | undefined;
  readonly channels?: readonly string[] | undefined;
  readonly patterns?: readonly string[] | undefined;
  readonly shardChannels?: readonly string[] | undefined;
  readonly cause?: PubSubError | undefined;
  readonly since?: number | undefined;
  readonly until?: number | undefined;
}

function union(a: string[], b: readonly string[] | undefined): string[] {
  if (b === undefined || b.length === 0) return a;
  if (a.length === 0) return [...b];
  return [...new Set([...a, ...b])];
}

function makeGap(input: GapInput, open = false): MutableGap {
  const now = Date.now();
  return {
    kind: 'gap',
    reason: input.reason,
    dropped: input.dropped ?? 0,
    channels: [...(input.channels ?? [])],
    patterns: [...(input.patterns ?? [])],
    shardChannels: [...(input.shardChannels ?? [])],
    cause: input.cause,
    since: input.since ?? now,
    until: input.until ?? now,
    open,
  };
}

function merge(into: MutableGap, from: Omit<GapInput, 'reason'> | MutableGap): void {
  into.dropped += from.dropped ?? 0;
  into.channels = union(into.channels, from.channels);
  into.patterns = union(into.patterns, from.patterns);
  into.shardChannels = union(into.shardChannels, from.shardChannels);
  into.cause = from.cause ?? into.cause;
  if (from.since !== undefined) into.since = Math.min(into.since, from.since);
  if (from.until !== undefined) into.until = Math.max(into.until, from.until);
}

/**
 * Adds a gap to a run of gaps (no message between them), merging it with the closed one of the
 * same reason: a run holds at most one closed gap per reason, plus open ones.
 */
function addToRun(run: MutableGap[], gap: MutableGap): void {
  if (!gap.open) {
    for (const other of run) {
      if (!other.open && other.reason === gap.reason) {
        merge(other, gap);
        return;
      }
    }
  }
  run.push(gap);
}

function snapshot(gap: MutableGap): PubSubGap {
  const { open: _open, ...rest } = gap;
  return Object.freeze({
    ...rest,
    channels: [...gap.channels],
    patterns: [...gap.patterns],
    shardChannels: [...gap.shardChannels],
  });
}

/** Limits of a {@link MessageBuffer}. */
export interface MessageBufferLimits {
  /** Most messages held. */
  readonly highWaterMark: number;
  /** Most payload bytes held; a single larger message is still accepted into an empty buffer. */
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
}

type Entry<T> = T | MutableGap;

interface Waiter<T> {
  resolve: (result: IteratorResult<T | PubSubGap, undefined>) => void;
  reject: (err: Error) => void;
}

const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

function abortedError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

function isGap<T>(entry: Entry<T>): entry is MutableGap {
  return (entry as { kind?: unknown }).kind === 'gap';
}

/**
 * A FIFO of messages and gaps with a high-water mark (messages and bytes), an overflow policy,
 * and promise-based reads for async iteration.
 *
 * Closed gaps merge, so a run of gaps holds at most one per reason. An open gap marks where a
 * connection is being restored: it is not readable, and what follows it waits, until it is
 * closed; its owner keeps at most one open at a time, so memory stays bounded whatever happens.
 */
export class MessageBuffer<T extends { readonly kind: string }> {
  readonly limits: MessageBufferLimits;
  // A ring of entries with a parallel ring of sizes (0 for gaps).
  private ring: (Entry<T> | undefined)[] = new Array(16);
  private sizes: Float64Array = new Float64Array(16);
  private head = 0;
  private count = 0;
  /** Gaps lifted from the front by drop-oldest: they come before everything in the ring. */
  private front: MutableGap[] = [];
  private waiters: Waiter<T>[] = [];
  private endError: Error | undefined;
  private ended = false;
  private closed = false;
  /** Messages held now. */
  messages = 0;
  /** Payload bytes held now. */
  bytes = 0;
  /** Messages dropped by the overflow policy since the start. */
  dropped = 0;

  /** Called with each message the overflow policy drops (after it was counted). */
  private readonly onDrop: ((message: T, size: number) => void) | undefined;

  constructor(limits: MessageBufferLimits, onDrop?: (message: T, size: number) => void) {
    this.limits = limits;
    this.onDrop = onDrop;
  }

  /** True once {@link end} or {@link close} was called: pushes are ignored. */
  get isEnded(): boolean {
    return this.ended || this.closed;
  }

  /** Consumers waiting in `next()`. */
  get waiting(): number {
    return this.waiters.length;
  }

  get #empty(): boolean {
    return this.count === 0 && this.front.length === 0;
  }

  /**
   * Adds a message. Returns `true` when it was kept, `false` when it was dropped (drop-newest) or
   * refused because the buffer ended; under the `error` policy an overflow returns `'overflow'`
   * and the caller ends the buffer.
   */
  push(message: T, size: number): boolean | 'overflow' {
    if (this.ended || this.closed) return false;
    if (this.waiters.length > 0 && this.#empty) {
      (this.waiters.shift() as Waiter<T>).resolve({ done: false, value: message });
      return true;
    }
    const { highWaterMark, maxBytes, overflow } = this.limits;
    if (this.messages >= highWaterMark || (this.messages > 0 && this.bytes + size > maxBytes)) {
      if (overflow === 'drop-newest') {
        this.dropped++;
        this.#tailGap(makeGap({ reason: 'overflow', dropped: 1 }));
        this.onDrop?.(message, size);
        return false;
      }
      if (overflow === 'error') return 'overflow';
      while (this.messages > 0 && (this.messages >= highWaterMark || this.bytes + size > maxBytes)) this.#dropOldest();
    }
    this.#append(message, size);
    this.messages++;
    this.bytes += size;
    return true;
  }

  /**
   * Adds a closed gap at the end of the stream (merged with an adjacent closed gap of the same
   * reason); returns it as reported, before any merge.
   */
  gap(input: GapInput): PubSubGap {
    const gap = makeGap(input);
    const reported = snapshot(gap);
    if (this.ended || this.closed) return reported;
    if (this.waiters.length > 0 && this.#empty)
      (this.waiters.shift() as Waiter<T>).resolve({ done: false, value: reported });
    else this.#tailGap(gap);
    return reported;
  }

  /**
   * Adds an open gap at the end of the stream: readers stop there until {@link closeGap}. What
   * arrives meanwhile is kept behind it (within the limits).
   */
  openGap(input: GapInput): OpenGap {
    const gap = makeGap(input, true);
    if (!this.ended && !this.closed) this.#tailGap(gap);
    return gap;
  }

  /** Closes an open gap with what is known now; readers go on past it. */
  closeGap(handle: OpenGap, update: Omit<GapInput, 'reason'> = {}): PubSubGap {
    const gap = handle as MutableGap;
    if (gap.open) {
      gap.open = false;
      merge(gap, { ...update, until: undefined });
      gap.until = update.until ?? Date.now();
      this.#wake();
    }
    return snapshot(gap);
  }

  #tailGap(gap: MutableGap): void {
    if (this.count === 0) {
      addToRun(this.front, gap);
      return;
    }
    if (!gap.open) {
      // The trailing run of gaps holds at most one closed gap per reason.
      for (let i = this.count - 1; i >= 0; i--) {
        const entry = this.ring[(this.head + i) & (this.ring.length - 1)] as Entry<T>;
        if (!isGap(entry)) break;
        if (!entry.open && entry.reason === gap.reason) {
          merge(entry, gap);
          return;
        }
      }
    }
    this.#append(gap, 0);
  }

  #append(entry: Entry<T>, size: number): void {
    if (this.count === this.ring.length) this.#grow();
    const at = (this.head + this.count) & (this.ring.length - 1);
    this.ring[at] = entry;
    this.sizes[at] = size;
    this.count++;
  }

  #grow(): void {
    const length = this.ring.length;
    const ring: (Entry<T> | undefined)[] = new Array(length * 2);
    const sizes = new Float64Array(length * 2);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) & (length - 1);
      ring[i] = this.ring[from];
      sizes[i] = this.sizes[from] as number;
    }
    this.ring = ring;
    this.sizes = sizes;
    this.head = 0;
  }

  #shift(): { entry: Entry<T>; size: number } | undefined {
    if (this.count === 0) return undefined;
    const at = this.head;
    const entry = this.ring[at] as Entry<T>;
    const size = this.sizes[at] as number;
    this.ring[at] = undefined;
    this.head = (at + 1) & (this.ring.length - 1);
    this.count--;
    if (this.count === 0) this.head = 0;
    return { entry, size };
  }

  /** Drops the oldest message; gaps before it move to the front run. */
  #dropOldest(): void {
    for (;;) {
      const shifted = this.#shift();
      if (shifted === undefined) return;
      if (isGap(shifted.entry)) {
        addToRun(this.front, shifted.entry);
        continue;
      }
      this.messages--;
      this.bytes -= shifted.size;
      this.dropped++;
      addToRun(this.front, makeGap({ reason: 'overflow', dropped: 1 }));
      this.onDrop?.(shifted.entry, shifted.size);
      return;
    }
  }

  /** The next readable entry without waiting: `undefined` when there is none (empty, or an open gap first). */
  take(): IteratorResult<T | PubSubGap, undefined> | undefined {
    return this.closed ? undefined : this.#take();
  }

  #take(): IteratorResult<T | PubSubGap, undefined> | undefined {
    const first = this.front[0];
    if (first !== undefined) {
      if (first.open) return undefined;
      this.front.shift();
      return { done: false, value: snapshot(first) };
    }
    if (this.count === 0) return undefined;
    const entry = this.ring[this.head] as Entry<T>;
    if (isGap(entry)) {
      if (entry.open) return undefined;
      this.#shift();
      return { done: false, value: snapshot(entry) };
    }
    const size = this.sizes[this.head] as number;
    this.#shift();
    this.messages--;
    this.bytes -= size;
    return { done: false, value: entry };
  }

  /** Hands readable entries to waiting readers (after a gap closed, or at the end). */
  #wake(): void {
    while (this.waiters.length > 0) {
      const result = this.#take();
      if (result !== undefined) {
        (this.waiters.shift() as Waiter<T>).resolve(result);
        continue;
      }
      if (!this.ended || !this.#empty) return;
      const waiters = this.waiters.splice(0);
      for (const waiter of waiters) {
        const err = this.endError;
        this.endError = undefined;
        if (err !== undefined) waiter.reject(err);
        else waiter.resolve(DONE);
      }
    }
  }

  /**
   * The next message or gap; waits when there is none. Ends with `done` (or the end error). A
   * `signal` that fires while it waits rejects with `abortError(reason)` and takes nothing.
   */
  next(
    signal?: AbortSignal | undefined,
    abortError?: (reason: unknown) => Error,
  ): Promise<IteratorResult<T | PubSubGap, undefined>> {
    if (this.closed) return Promise.resolve(DONE);
    if (signal?.aborted) return Promise.reject((abortError ?? abortedError)(signal.reason));
    const result = this.#take();
    if (result !== undefined) return Promise.resolve(result);
    if (this.ended && this.#empty) {
      const err = this.endError;
      if (err !== undefined) {
        // Thrown once; later calls see the end.
        this.endError = undefined;
        return Promise.reject(err);
      }
      return Promise.resolve(DONE);
    }
    if (signal === undefined) return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject((abortError ?? abortedError)(signal.reason));
      };
      const waiter: Waiter<T> = {
        resolve: (result) => {
          signal.removeEventListener('abort', onAbort);
          resolve(result);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /**
   * No more input: what is buffered is still delivered (open gaps close as they are), then
   * `done`, or `error`, thrown once.
   */
  end(error?: Error): void {
    if (this.ended || this.closed) return;
    this.ended = true;
    this.endError = error;
    const now = Date.now();
    for (const gap of this.front) if (gap.open) gap.open = false;
    for (let i = 0; i < this.count; i++) {
      const entry = this.ring[(this.head + i) & (this.ring.length - 1)] as Entry<T>;
      if (isGap(entry) && entry.open) {
        entry.open = false;
        entry.until = Math.max(entry.until, now);
      }
    }
    this.#wake();
  }

  /** Ends at once: buffered messages are discarded and every waiting read gets `done`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended = true;
    this.endError = undefined;
    this.ring = [];
    this.sizes = new Float64Array(0);
    this.front = [];
    this.head = 0;
    this.count = 0;
    this.messages = 0;
    this.bytes = 0;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(DONE);
  }
}
