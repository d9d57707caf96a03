// How waiting sync streams learn that something changed. Every commit publishes on the
// backend's channel; a notifier turns those messages (and this process's own commits) into
// wake-ups. A wake-up makes a stream read again, so a lost or duplicated one costs a delay or a
// read, never a change: streams also poll, and re-read after the subscription comes back.
//
// A small commit publishes its changes themselves (a "push"): a stream whose next version is the
// push's first takes them from the message and skips the read. Any other stream reads as usual.
//
// The interface is small on purpose, so that another Pub/Sub implementation (such as
// @redis-events/pubsub) can replace the dedicated ioredis connection used here.
import type { Redis } from 'ioredis';
import type { RedisClient } from './connection.ts';
import { isCluster } from './connection.ts';

/** The changes of one commit, as published: consecutive versions from the first entry's. */
export interface ChangePush {
  readonly serverVersion: number;
  /** Stored entries, in version order. */
  readonly entries: readonly Buffer[];
}

/** A pending wake-up, registered before a stream reads so that a change in between is not missed. */
export interface ChangeWatch {
  /**
   * Resolves at the first change signal newer than the version given to `watch`, with the
   * commit's changes when the signal carried them.
   */
  readonly changed: Promise<ChangePush | undefined>;
  /** Stops waiting (the promise then never resolves). */
  dispose(): void;
}

/** Turns commits into wake-ups for waiting streams. */
export interface ChangeNotifier {
  /** A wake-up for the next change after `version` (or any signal whose version is unknown). */
  watch(version: number): ChangeWatch;
  /** Wakes local waiters for a change this process committed (with its changes, when at hand). */
  notify(version: number, push?: ChangePush): void;
  /** Stops listening; pending watches stay pending (streams wait on the backend's close too). */
  close(): void;
}

/** Largest push: bigger commits publish their version only. */
export const MAX_PUSH_BYTES: number = 16 * 1024;
const PUSH_MARK = 0; // a version as decimal text never starts with a zero byte
const TWO_32 = 2 ** 32;

/**
 * The message a commit publishes: its changes when they are small, else its last version as
 * decimal text. `0x00, serverVersion (2 x uint32), count (uint32), then length (uint32) + entry`.
 */
export function pushMessage(serverVersion: number, entries: readonly Buffer[], lastVersion: number): Buffer | string {
  let size = 13;
  for (const entry of entries) size += 4 + entry.length;
  if (size > MAX_PUSH_BYTES || entries.length === 0) return String(lastVersion);
  const out = Buffer.allocUnsafe(size);
  out[0] = PUSH_MARK;
  out.writeUInt32BE(Math.floor(serverVersion / TWO_32), 1);
  out.writeUInt32BE(serverVersion % TWO_32, 5);
  out.writeUInt32BE(entries.length, 9);
  let at = 13;
  for (const entry of entries) {
    at = out.writeUInt32BE(entry.length, at);
    at += entry.copy(out, at);
  }
  return out;
}

/** Reads a push; undefined for anything else (a version message, or bytes that do not parse). */
export function readPush(message: Buffer): ChangePush | undefined {
  if (message.length < 13 || message[0] !== PUSH_MARK) return undefined;
  const serverVersion = message.readUInt32BE(1) * TWO_32 + message.readUInt32BE(5);
  const count = message.readUInt32BE(9);
  const entries: Buffer[] = [];
  let at = 13;
  for (let i = 0; i < count; i++) {
    if (at + 4 > message.length) return undefined;
    const length = message.readUInt32BE(at);
    at += 4;
    if (length > message.length - at) return undefined;
    entries.push(message.subarray(at, at + length));
    at += length;
  }
  return at === message.length && count > 0 ? { serverVersion, entries } : undefined;
}

interface Waiter {
  readonly after: number;
  readonly resolve: (push: ChangePush | undefined) => void;
}

/** Wake-ups from this process's commits only: other writers are seen by polling. */
export class LocalNotifier implements ChangeNotifier {
  readonly #waiters = new Set<Waiter>();

  watch(version: number): ChangeWatch {
    let waiter: Waiter | undefined;
    const changed = new Promise<ChangePush | undefined>((resolve) => {
      waiter = { after: version, resolve };
      this.#waiters.add(waiter);
    });
    return { changed, dispose: () => this.#waiters.delete(waiter as Waiter) };
  }

  notify(version: number, push?: ChangePush): void {
    for (const waiter of this.#waiters) {
      if (version > waiter.after) {
        this.#waiters.delete(waiter);
        waiter.resolve(push);
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
    // No ready check (it sends INFO, which a minimal ACL leaves out): SUBSCRIBE works while loading.
    const subscriber = isCluster(this.#source)
      ? this.#source.duplicate(undefined, {
          lazyConnect: true,
          redisOptions: { ...this.#source.options.redisOptions, enableReadyCheck: false },
        } as never)
      : (this.#source as Redis).duplicate({ lazyConnect: true, autoResubscribe: true, enableReadyCheck: false });
    this.#subscriber = subscriber;
    subscriber.on('error', () => {}); // reconnects on its own; streams poll meanwhile
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (channel.toString() !== this.#channel) return;
      const push = readPush(message);
      if (push) {
        // The version of the push's last change is in its last entry's header (bytes 2..9).
        const last = push.entries[push.entries.length - 1] as Buffer;
        const version =
          last.length >= 10 ? last.readUInt32BE(2) * TWO_32 + last.readUInt32BE(6) : Number.POSITIVE_INFINITY;
        this.notify(version, push);
        return;
      }
      const version = Number(message.toString());
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
