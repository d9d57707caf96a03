/**
 * An event: a name and a payload (any JSON value under the default serializer).
 *
 * @example
 * ```ts
 * const event: Event<{ id: number }> = { name: 'user.created', payload: { id: 1 } };
 * ```
 */
export interface Event<Payload = unknown> {
  readonly name: string;
  readonly payload: Payload;
}

/**
 * An event as stored: its name and payload, plus the id the store gave it and the time the
 * Redis server stored it.
 *
 * @example
 * ```ts
 * const [latest] = await store.getEvents('user.created', 1);
 * console.log(latest?.id, latest?.timestamp.toISOString(), latest?.payload);
 * ```
 */
export interface StoredEvent<Payload = unknown> extends Event<Payload> {
  /**
   * Unique within the event name, and increasing in storage order: a stream entry id
   * (`1715595630123-0`) in the `stream` layout, the nanosecond timestamp of the value key
   * (`1715595630123456000`) in the `timeline` layout. Use it as a cursor (`after`).
   */
  readonly id: string;
  /** When the server stored the event (millisecond precision). */
  readonly timestamp: Date;
}

/**
 * What the {@link Mediator} needs from an event store. {@link RedisEventStore} implements it;
 * so can your own stores (in memory, SQL...).
 *
 * @example
 * ```ts
 * class MemoryStore implements EventStore {
 *   #events: StoredEvent[] = [];
 *   async storeEvent(event: Event): Promise<StoredEvent> {
 *     const stored = { ...event, id: String(this.#events.length + 1), timestamp: new Date() };
 *     this.#events.push(stored);
 *     return stored;
 *   }
 *   async getEvents(name: string, limit = 0): Promise<StoredEvent[]> {
 *     const newest = this.#events.filter((e) => e.name === name).reverse();
 *     return limit > 0 ? newest.slice(0, limit) : newest;
 *   }
 *   async clearEvents(name: string): Promise<void> {
 *     this.#events = this.#events.filter((e) => e.name !== name);
 *   }
 * }
 * mediator.registerEventStore(new MemoryStore());
 * ```
 */
export interface EventStore {
  /** Stores one event; resolves once it is stored. `signal` (from `Mediator.publish`) stops waiting. */
  storeEvent(event: Event, options?: { readonly signal?: AbortSignal | undefined }): Promise<StoredEvent>;
  /** The newest events of a name, newest first; a limit of 0 or none means the store's default. */
  getEvents(name: string, limit?: number): Promise<StoredEvent[]>;
  /** Removes every event of a name. */
  clearEvents(name: string): Promise<void>;
  /**
   * Optional: throws when the store would refuse this event (bad name, unserialisable payload).
   * The mediator calls it before running handlers, so a bad event has no side effects.
   */
  checkEvent?: ((event: Event) => void) | undefined;
}

/**
 * Read order: `newest` first (the default) or `oldest` first.
 *
 * @example
 * ```ts
 * const order: ReadOrder = 'oldest';
 * await store.read('order.paid', { order });
 * ```
 */
export type ReadOrder = 'newest' | 'oldest';

/**
 * A point in time: a `Date` or milliseconds since the epoch.
 *
 * @example
 * ```ts
 * const since: TimeInput = Date.now() - 60_000; // or new Date('2024-05-13T10:00:00Z')
 * ```
 */
export type TimeInput = Date | number;

/**
 * Options of `RedisEventStore.read()`.
 *
 * @example
 * ```ts
 * // the second page of 50, newest first
 * const page1 = await store.read('order.paid', { limit: 50 });
 * const page2 = await store.read('order.paid', { limit: 50, after: page1.at(-1)?.id });
 * // everything of the last hour, oldest first
 * const hour = await store.read('order.paid', { since: Date.now() - 3_600_000, order: 'oldest' });
 * ```
 */
export interface ReadOptions {
  /** Stops waiting: the read rejects with an `AbortError` (`ERR_EVENT_STORE_ABORTED`). */
  readonly signal?: AbortSignal | undefined;
  /** At most this many events; 0 or none means `maxEventsPerType`. */
  readonly limit?: number | undefined;
  /** `newest` first (default) or `oldest` first. */
  readonly order?: ReadOrder | undefined;
  /**
   * A cursor: continue after this event id, in the read order (with `newest`, the events older
   * than it; with `oldest`, the newer ones). The id need not exist any more.
   */
  readonly after?: string | undefined;
  /** Only events stored at or after this time. */
  readonly since?: TimeInput | undefined;
  /** Only events stored at or before this time. */
  readonly until?: TimeInput | undefined;
}

/**
 * Options of `RedisEventStore.tail()`.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * for await (const event of store.tail('order.paid', { signal: controller.signal })) {
 *   console.log(event.id, event.payload);
 * }
 * ```
 */
export interface TailOptions {
  /**
   * Start after this event id (replay what came after it, then go on live). By default the tail
   * starts at the newest event when `tail()` is called and yields only newer ones.
   */
  readonly after?: string | undefined;
  /** Ends the tail: the iterator finishes (no error) and its connection is released. */
  readonly signal?: AbortSignal | undefined;
  /** Events fetched per read. Default 100. */
  readonly batchSize?: number | undefined;
  /**
   * `stream` layout: how long one blocking read waits for new entries, in ms (default 5000).
   * The tail ends promptly on abort regardless.
   */
  readonly blockMs?: number | undefined;
  /** `timeline` layout (which has no blocking read): the poll interval, in ms. Default 100. */
  readonly pollIntervalMs?: number | undefined;
}

/**
 * A live tail: an async iterator of new events of one name, in storage order. End it with
 * `break` in a `for await` loop, `close()`, or the `signal` of its options.
 *
 * @example
 * ```ts
 * const tail = store.tail('order.paid');
 * const { value } = await tail.next();
 * await tail.close();
 * // or, ended with the scope:
 * await using again = store.tail('order.paid');
 * ```
 */
export interface EventTail<Payload = unknown> extends AsyncIterableIterator<StoredEvent<Payload>>, AsyncDisposable {
  /** Ends the tail and releases its connection; a pending `next()` resolves with `done: true`. */
  close(): Promise<void>;
}
