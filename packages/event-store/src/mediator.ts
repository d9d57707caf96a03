import { describeError, EventStoreError, PublishError } from './errors.ts';
import type { Event, EventStore, StoredEvent } from './event.ts';

/**
 * A handler of one event name. It may be async; the mediator awaits it.
 *
 * @example
 * ```ts
 * const log: EventHandler<{ id: number }> = async (event) => console.log(event.name, event.payload.id);
 * ```
 */
export type EventHandler<Payload = unknown> = (event: Event<Payload>) => void | Promise<void>;

/**
 * Event names mapped to their payload types, for a typed {@link Mediator}.
 *
 * @example
 * ```ts
 * type Events = { 'user.created': { id: number }; 'user.deleted': { id: number; reason: string } };
 * const mediator = new Mediator<Events>();
 * ```
 */
export type EventMap = Record<string, unknown>;

/**
 * Options of {@link Mediator}.
 *
 * @example
 * ```ts
 * const strict = new Mediator({ requireHandlers: true }); // like the Go mediator
 * ```
 */
export interface MediatorOptions {
  /**
   * Refuse to publish (and store) an event that has no handler, as the Go mediator does
   * (`ERR_EVENT_STORE_NO_HANDLERS`). Default false: the event is stored anyway.
   */
  readonly requireHandlers?: boolean | undefined;
}

/**
 * Options of {@link Mediator.publish}.
 *
 * @example
 * ```ts
 * await mediator.publish({ name: 'user.created', payload }, { signal: AbortSignal.timeout(5000) });
 * ```
 */
export interface PublishOptions {
  /**
   * Stops waiting for the stores: each store's call rejects with its AbortError (reported in the
   * PublishError's `storeErrors`). Handlers that already ran are not undone.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * An in-process mediator: handlers per event name, and event stores that record every published
 * event. `publish()` checks the event with every store first (so a payload no store can keep
 * causes no side effect), runs the handlers one after another in registration order, then stores
 * the event in every store at once. A failing handler does not stop the others nor the storing;
 * failures are reported together in a {@link PublishError}.
 *
 * @example
 * ```ts
 * type Events = { 'user.created': { id: number; email: string } };
 * const mediator = new Mediator<Events>();
 * mediator.registerEventStore(new RedisEventStore(redis));
 * const unsubscribe = mediator.subscribe('user.created', async (event) => {
 *   await sendWelcomeMail(event.payload.email);
 * });
 * await mediator.publish({ name: 'user.created', payload: { id: 1, email: 'a@example.com' } });
 * unsubscribe();
 * ```
 */
export class Mediator<Events extends EventMap = EventMap> {
  readonly #handlers = new Map<string, EventHandler<never>[]>();
  readonly #stores: EventStore[] = [];
  readonly #requireHandlers: boolean;

  constructor(options: MediatorOptions = {}) {
    if (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'requireHandlers')) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        'new Mediator() takes an options object: { requireHandlers }',
      );
    }
    this.#requireHandlers = options.requireHandlers ?? false;
  }

  /**
   * Adds a handler for an event name. The same function may be added twice; it then runs twice.
   * Returns a function that removes this registration.
   *
   * @example
   * ```ts
   * const off = mediator.subscribe('user.created', (event) => console.log(event.payload));
   * off();
   * ```
   */
  subscribe<Name extends keyof Events & string>(name: Name, handler: EventHandler<Events[Name]>): () => void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'subscribe() needs a non-empty event name');
    }
    if (typeof handler !== 'function') {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', `subscribe("${name}") needs a handler function`);
    }
    const list = this.#handlers.get(name) ?? [];
    const entry = handler as EventHandler<never>;
    list.push(entry);
    this.#handlers.set(name, list);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const current = this.#handlers.get(name);
      const at = current?.indexOf(entry) ?? -1;
      if (current && at >= 0) {
        current.splice(at, 1);
        if (current.length === 0) this.#handlers.delete(name);
      }
    };
  }

  /** How many handlers an event name has. */
  handlerCount(name: string): number {
    return this.#handlers.get(name)?.length ?? 0;
  }

  /**
   * Adds an event store; every published event is stored in each registered store. Returns a
   * function that removes it.
   *
   * @example
   * ```ts
   * const unregister = mediator.registerEventStore(new RedisEventStore(redis));
   * ```
   */
  registerEventStore(store: EventStore): () => void {
    if (typeof store !== 'object' || store === null || typeof store.storeEvent !== 'function') {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'registerEventStore() needs an object with storeEvent()');
    }
    this.#stores.push(store);
    return () => {
      const at = this.#stores.indexOf(store);
      if (at >= 0) this.#stores.splice(at, 1);
    };
  }

  /** The registered stores, in registration order. */
  get eventStores(): readonly EventStore[] {
    return [...this.#stores];
  }

  /**
   * Publishes an event: checks it with every store, runs its handlers in order, stores it in
   * every store. Resolves with the event as stored by each store (registration order).
   *
   * @example
   * ```ts
   * const [stored] = await mediator.publish({ name: 'user.created', payload: { id: 1, email: 'a@example.com' } });
   * console.log(stored?.id);
   * ```
   * @throws {EventStoreError} `ERR_EVENT_STORE_ARGUMENT` or `ERR_EVENT_STORE_PAYLOAD` from a
   *   store's check (no handler ran, nothing was stored); `ERR_EVENT_STORE_NO_HANDLERS` with
   *   `requireHandlers`; {@link PublishError} when a handler or a store failed.
   */
  async publish<Name extends keyof Events & string>(
    event: {
      readonly name: Name;
      readonly payload: Events[Name];
    },
    options: PublishOptions = {},
  ): Promise<StoredEvent<Events[Name]>[]> {
    if (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'signal')) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'publish() takes an options object: { signal }');
    }
    const { signal } = options;
    if (typeof event !== 'object' || event === null || typeof event.name !== 'string' || event.name.length === 0) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        'publish() needs an event { name, payload } with a non-empty name',
      );
    }
    const handlers = [...(this.#handlers.get(event.name) ?? [])] as EventHandler<Events[Name]>[];
    if (handlers.length === 0 && this.#requireHandlers) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_NO_HANDLERS',
        `no handler for event "${event.name}"; subscribe one first, or create the Mediator without requireHandlers`,
      );
    }
    const stores = [...this.#stores];
    for (const store of stores) store.checkEvent?.(event);

    const handlerErrors: unknown[] = [];
    for (const handler of handlers) {
      try {
        await handler(event);
      } catch (err) {
        handlerErrors.push(err);
      }
    }
    const results = await Promise.allSettled(
      stores.map((store) => (signal === undefined ? store.storeEvent(event) : store.storeEvent(event, { signal }))),
    );
    const stored: StoredEvent<Events[Name]>[] = [];
    const storeErrors: unknown[] = [];
    for (const result of results) {
      if (result.status === 'fulfilled') stored.push(result.value as StoredEvent<Events[Name]>);
      else storeErrors.push(result.reason);
    }
    if (handlerErrors.length > 0 || storeErrors.length > 0) {
      const parts: string[] = [];
      if (handlerErrors.length > 0) {
        parts.push(
          `${handlerErrors.length} of ${handlers.length} handlers failed (first: ${describeError(handlerErrors[0])})`,
        );
      }
      if (storeErrors.length > 0) {
        parts.push(`${storeErrors.length} of ${stores.length} stores failed (first: ${describeError(storeErrors[0])})`);
      }
      throw new PublishError(
        `publishing "${event.name}": ${parts.join('; ')}; every handler ran and every store was tried, see handlerErrors and storeErrors`,
        { handlerErrors, storeErrors, stored },
      );
    }
    return stored;
  }
}
