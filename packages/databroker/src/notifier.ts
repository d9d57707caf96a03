// How waiting sync streams learn that something changed. Every commit publishes its version on
// the backend's channel; a notifier turns those messages (and this process's own commits) into
// wake-ups. A wake-up only makes a stream read again, so a lost or duplicated one costs a delay or
// a read, never a change: streams also poll, and re-read after the subscription comes back.
//
// The interface is small on purpose, so that another Pub/Sub implementation (such as
// @redis-events/pubsub) can replace the dedicated ioredis connection used here.
import type { Redis } from 'ioredis';
import type { RedisClient } from './connection.ts';
import { isCluster } from './connection.ts';

/** A pending wake-up, registered before a stream reads so that a change in between is not missed. */
export interface ChangeWatch {
  /** Resolves at the first change signal newer than the version given to `watch`. */
  readonly changed: Promise<void>;
  /** Stops waiting (the promise then never resolves). */
  dispose(): void;
}

/** Turns commits into wake-ups for waiting streams. */
export interface ChangeNotifier {
  /** A wake-up for the next change after `version` (or any signal whose version is unknown). */
  watch(version: number): ChangeWatch;
  /** Wakes local waiters for a change this process committed. */
  notify(version: number): void;
  /** Stops listening; pending watches stay pending (streams wait on the backend's close too). */
  close(): void;
}

interface Waiter {
  readonly after: number;
  readonly resolve: () => void;
}

/** Wake-ups from this process's commits only: other writers are seen by polling. */
export class LocalNotifier implements ChangeNotifier {
  readonly #waiters = new Set<Waiter>();

  watch(version: number): ChangeWatch {
    let waiter: Waiter | undefined;
    const changed = new Promise<void>((resolve) => {
      waiter = { after: version, resolve };
      this.#waiters.add(waiter);
    });
    return { changed, dispose: () => this.#waiters.delete(waiter as Waiter) };
  }

  notify(version: number): void {
    for (const waiter of this.#waiters) {
      if (version > waiter.after) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** Wakes every waiter, whatever version it waits after (the change is unknown). */
  protected notifyAll(): void {
    this.notify(Number.POSITIVE_INFINITY);
  }

  /** Whether anyone waits. */
  protected get waiting(): boolean {
    return this.#waiters.size > 0;
  }

  close(): void {}
}

/**
 * Wake-ups from a dedicated subscriber connection, duplicated from the user's client when the
 * first stream waits. ioredis resubscribes after a reconnect; since messages published while
 * the connection was down are lost, every waiter is woken once the subscription is back.
 */
export class PubSubNotifier extends LocalNotifier {
  readonly #source: RedisClient;
  readonly #channel: string;
  #subscriber: RedisClient | undefined;
  #closed = false;

  constructor(source: RedisClient, channel: string) {
    super();
    this.#source = source;
    this.#channel = channel;
  }

  override watch(version: number): ChangeWatch {
    if (!this.#subscriber && !this.#closed) this.#start();
    return super.watch(version);
  }

  #start(): void {
    // Commands wait while disconnected (the default offline queue); the subscriber never writes.
    const subscriber = isCluster(this.#source)
      ? this.#source.duplicate(undefined, { lazyConnect: true })
      : (this.#source as Redis).duplicate({ lazyConnect: true, autoResubscribe: true });
    this.#subscriber = subscriber;
    subscriber.on('error', () => {}); // reconnects on its own; streams poll meanwhile
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const version = Number(message);
      if (Number.isSafeInteger(version) && version > 0) this.notify(version);
      else this.notifyAll();
    });
    const subscribe = () => {
      // Whatever was published before the subscription took effect was not heard: every waiter
      // reads once more when it is live.
      subscriber.subscribe(this.#channel).then(
        () => this.notifyAll(),
        () => {},
      );
    };
    let readies = 0;
    subscriber.on('ready', () => {
      // After a reconnect ioredis resubscribes on its own; ours tells when that took effect.
      if (readies++ > 0) subscribe();
    });
    subscribe();
  }

  override close(): void {
    this.#closed = true;
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }
}
