// How waiting sync streams learn that something changed. Every commit publishes on the
// backend's channel; a notifier turns those messages (and this process's own commits) into
// wake-ups. A wake-up makes a stream read again, so a lost or duplicated one costs a delay or a
// read, never a change: streams also poll, and read again after the subscription comes back.
//
// A small commit publishes its changes themselves (a "push"): a stream whose next version is the
// push's first takes them from the message and skips the read. Any other stream reads as usual.
// Every message carries the server version, so that a stream of another server version (Redis
// was flushed, and writers started again at version 1) wakes at once and fails, instead of
// ignoring versions it believes it has seen.
import type { RespConnection } from '@redis-events/resp';
import { Link, type RedisClient } from './link.ts';

/** The changes of one commit, as published: consecutive versions from the first entry's. */
export interface ChangePush {
  readonly serverVersion: number;
  /** Stored entries, in version order. */
  readonly entries: readonly Buffer[];
}

/** Why a waiting stream was woken. */
export type WakeReason = 'push' | 'version' | 'resubscribed' | 'disconnected' | 'local' | 'server-version';

/** What a wake-up carries. */
export interface Wake {
  readonly reason: WakeReason;
  /** The commit's changes, when the message carried them. */
  readonly push?: ChangePush | undefined;
  /** The last version of the commit, when known. */
  readonly version?: number | undefined;
}

/** A pending wake-up, registered before a stream reads so that a change in between is not missed. */
export interface ChangeWatch {
  /** Resolves at the first signal of a change after the watched version, or of another server version. */
  readonly changed: Promise<Wake>;
  /** Stops waiting (the promise then never resolves). */
  dispose(): void;
}

/** Turns commits into wake-ups for waiting streams. */
export interface ChangeNotifier {
  /** A wake-up for the next change after `version` under `serverVersion`, or for any other server version. */
  watch(version: number, serverVersion: number): ChangeWatch;
  /** Wakes local waiters for a change this process committed (with its changes, when at hand). */
  notify(version: number, serverVersion: number | undefined, push?: ChangePush, reason?: WakeReason): void;
  /** Whether any stream waits (so that a commit builds a local push only when someone takes it). */
  readonly waiting: boolean;
  /** Stops listening; pending watches stay pending (streams wait on the backend's close too). */
  close(): void;
}

/** Largest push: bigger commits publish their server version and last version only. */
export const MAX_PUSH_BYTES: number = 16 * 1024;
const PUSH_MARK = 0;
const VERSION_MARK = 1;
const TWO_32 = 2 ** 32;

/**
 * The message of a commit: its changes when they are small,
 * `0x00, serverVersion (2 x uint32), count (uint32), then length (uint32) + entry`; else
 * `0x01, serverVersion (2 x uint32), lastVersion (2 x uint32)`.
 */
export function pushMessage(serverVersion: number, entries: readonly Buffer[], lastVersion: number): Buffer {
  let size = 13;
  for (const entry of entries) size += 4 + entry.length;
  if (size > MAX_PUSH_BYTES || entries.length === 0) return versionMessage(serverVersion, lastVersion);
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

/** The message of a commit too large to push, or of `clear()`: the server version and the last version. */
export function versionMessage(serverVersion: number, lastVersion: number): Buffer {
  const out = Buffer.allocUnsafe(17);
  out[0] = VERSION_MARK;
  out.writeUInt32BE(Math.floor(serverVersion / TWO_32), 1);
  out.writeUInt32BE(serverVersion % TWO_32, 5);
  out.writeUInt32BE(Math.floor(lastVersion / TWO_32), 9);
  out.writeUInt32BE(lastVersion % TWO_32, 13);
  return out;
}

/** A decoded message: a push, a version, or undefined for bytes that do not parse. */
export type Message =
  | { readonly kind: 'push'; readonly push: ChangePush; readonly version: number }
  | { readonly kind: 'version'; readonly serverVersion: number; readonly version: number };

/** Reads a message; undefined for anything that does not parse (it then wakes everyone). */
export function readMessage(message: Buffer): Message | undefined {
  if (message.length === 17 && message[0] === VERSION_MARK) {
    return {
      kind: 'version',
      serverVersion: message.readUInt32BE(1) * TWO_32 + message.readUInt32BE(5),
      version: message.readUInt32BE(9) * TWO_32 + message.readUInt32BE(13),
    };
  }
  const push = readPush(message);
  if (!push) return undefined;
  // The version of the push's last change is in its last entry's header (bytes 2..9).
  const last = push.entries[push.entries.length - 1] as Buffer;
  if (last.length < 10) return undefined;
  return { kind: 'push', push, version: last.readUInt32BE(2) * TWO_32 + last.readUInt32BE(6) };
}

/** Reads a push; undefined for anything else. */
export function readPush(message: Buffer): ChangePush | undefined {
  if (message.length < 13 || message[0] !== PUSH_MARK) return undefined;
  const serverVersion = message.readUInt32BE(1) * TWO_32 + message.readUInt32BE(5);
  const count = message.readUInt32BE(9);
  if (count === 0 || count > message.length) return undefined;
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
  return at === message.length ? { serverVersion, entries } : undefined;
}

interface Waiter {
  readonly after: number;
  readonly serverVersion: number;
  readonly resolve: (wake: Wake) => void;
}

/** Wake-ups from this process's commits only: other writers are seen by polling. */
export class LocalNotifier implements ChangeNotifier {
  readonly #waiters = new Set<Waiter>();

  watch(version: number, serverVersion: number): ChangeWatch {
    let waiter: Waiter | undefined;
    const changed = new Promise<Wake>((resolve) => {
      waiter = { after: version, serverVersion, resolve };
      this.#waiters.add(waiter);
    });
    return { changed, dispose: () => this.#waiters.delete(waiter as Waiter) };
  }

  notify(version: number, serverVersion: number | undefined, push?: ChangePush, reason: WakeReason = 'local'): void {
    for (const waiter of this.#waiters) {
      const otherServer = serverVersion !== undefined && serverVersion !== waiter.serverVersion;
      if (otherServer || version > waiter.after) {
        this.#waiters.delete(waiter);
        waiter.resolve({ reason: otherServer ? 'server-version' : reason, push, version });
      }
    }
  }

  /** Wakes every waiter, whatever version it waits after (the change is unknown). */
  protected notifyAll(reason: WakeReason): void {
    this.notify(Number.POSITIVE_INFINITY, undefined, undefined, reason);
  }

  get waiting(): boolean {
    return this.#waiters.size > 0;
  }

  close(): void {}
}

function isMessage(value: unknown): value is [Buffer, Buffer, Buffer] {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    Buffer.isBuffer(value[0]) &&
    value[0].length === 7 &&
    value[0].toString('latin1') === 'message'
  );
}

const SUBSCRIPTION_KINDS = new Set(['message', 'subscribe', 'unsubscribe']);

/**
 * Wake-ups from a subscriber connection of the backend's own, opened when the first stream waits
 * and re-opened (then resubscribed) whenever it drops. Messages published while it was down are
 * lost, so every waiter is woken once the subscription is back.
 */
export class PubSubNotifier extends LocalNotifier {
  readonly #channel: string;
  readonly #link: Link;
  readonly #onTrouble: (err: unknown) => void;
  #started = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  #attempt = 0;

  constructor(
    client: RedisClient,
    slot: number,
    channel: string,
    timeoutMs: number,
    onTrouble: (err: unknown) => void,
  ) {
    super();
    this.#channel = channel;
    this.#onTrouble = onTrouble;
    this.#link = new Link({
      client,
      slot,
      label: `subscriber of ${channel}`,
      timeoutMs,
      extra: {
        // RESP2 subscribers get messages and confirmations in-band.
        classify: (value) =>
          Array.isArray(value) &&
          Buffer.isBuffer(value[0]) &&
          SUBSCRIPTION_KINDS.has((value[0] as Buffer).toString('latin1'))
            ? 'push'
            : 'reply',
        onConnect: async (session) => {
          await session.send(['SUBSCRIBE', this.#channel], {
            untilPush: (push) =>
              Array.isArray(push) && Buffer.isBuffer(push[0]) && (push[0] as Buffer).toString('latin1') === 'subscribe',
          });
        },
      },
      onConnect: (connection) => {
        this.#attempt = 0;
        connection.on('push', (value) => this.#message(value));
        // Whatever was published before the subscription took effect was not heard.
        this.notifyAll('resubscribed');
      },
      onDisconnect: () => {
        // Messages are lost until the subscription is back: waiting streams read now (and fail
        // within the backend's timeoutMs if Redis stays away), then wait again.
        this.notifyAll('disconnected');
        this.#schedule();
      },
    });
  }

  /** The subscriber connection, once open (for tests). */
  get connection(): RespConnection<unknown> | undefined {
    return this.#link.current;
  }

  override watch(version: number, serverVersion: number): ChangeWatch {
    if (!this.#started && !this.#closed) {
      this.#started = true;
      this.#open();
    }
    return super.watch(version, serverVersion);
  }

  #open(): void {
    if (this.#closed) return;
    this.#link.ready(performance.now() + 60_000).then(
      () => {},
      (err: unknown) => {
        if (this.#closed) return;
        this.#onTrouble(err);
        this.#schedule();
      },
    );
  }

  #schedule(): void {
    if (this.#closed || this.#retry) return;
    const delay = Math.min(2000, 50 * 2 ** Math.min(this.#attempt++, 6)) * (0.5 + Math.random() / 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#open();
    }, delay);
    this.#retry.unref();
  }

  #message(value: unknown): void {
    if (!isMessage(value) || value[1].toString() !== this.#channel) return;
    const message = readMessage(value[2]);
    if (!message) this.notifyAll('version');
    else if (message.kind === 'push') this.notify(message.version, message.push.serverVersion, message.push, 'push');
    else this.notify(message.version, message.serverVersion, undefined, 'version');
  }

  override close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#link.close();
  }
}
