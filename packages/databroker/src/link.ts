// The backend's own connections. The user gives an ioredis client; the backend reads its options
// (address, credentials, TLS, db, protocol) and opens lean @redis-events/resp connections of its
// own to the node that owns the backend's slot: one for commands (scripts, reads, WATCH/MULTI)
// and, when a sync first waits, one for Pub/Sub. ioredis stays the source of truth for where the
// master is: a Sentinel-managed client's live socket, a Cluster's slot table.
//
// A command connection never queues while disconnected and never replays: a command written
// when the connection drops fails (the server may or may not have run it), so a WATCH can never
// end up on another connection than its EXEC, and a script's fate is asked, not guessed.
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import {
  abortable as abortableOf,
  type ConnectInfo,
  delay,
  exponentialBackoff,
  RespConnection,
  type RespConnectionOptions,
} from '@redis-events/resp';
import { isCluster, type RedisClient as SharedClient, waitUntilReady } from '@redis-events/resp/ioredis';
import type { ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { abortError, DataBrokerError } from './errors.ts';

// Between connection attempts: 50 ms doubling to 1 s, half of it random.
const retryDelay = exponentialBackoff({ initialDelay: 50, maxDelay: 1000 });

/**
 * A client the backend accepts: an ioredis 6 `Redis` (standalone or Sentinel) or `Cluster`, in
 * RESP2 or RESP3 (resp's `RedisClient`).
 *
 * @example
 * ```ts
 * const client: RedisClient = new Cluster([{ host: '10.0.0.1', port: 6379 }]);
 * const broker = new DataBroker(client);
 * ```
 */
export type RedisClient = SharedClient;

export { isCluster };

/** The key prefix ioredis adds to every key of this client, if any. */
export function keyPrefixOf(client: RedisClient): string {
  const options = client.options as RedisOptions | ClusterOptions;
  const prefix = options.keyPrefix ?? (options as ClusterOptions).redisOptions?.keyPrefix;
  return typeof prefix === 'string' ? prefix : '';
}

/** Where and how to connect. */
interface Target {
  readonly host: string;
  readonly port: number;
  readonly path: string | undefined;
  readonly tls: TlsOptions | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
  readonly name: string | undefined;
  readonly protocol: 2 | 3;
}

function connectionError(message: string, cause?: unknown): DataBrokerError {
  return new DataBrokerError('ERR_DATABROKER_CONNECTION', message, cause === undefined ? undefined : { cause });
}

function describe(target: Target): string {
  return target.path !== undefined
    ? `unix:${target.path}`
    : `${target.host}:${target.port}${target.tls ? ' (TLS)' : ''}`;
}

function causeText(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // A resp error wraps the socket's: name the root cause (ECONNREFUSED, a TLS failure...).
  const root = cause.cause instanceof Error ? cause.cause : undefined;
  const code = (root as { code?: unknown } | undefined)?.code ?? (cause as { code?: unknown }).code;
  return typeof code === 'string' && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message;
}

/** Whether the user closed the client (quit or disconnect): the backend then stops too. */
export function clientClosed(client: RedisClient): boolean {
  const status = client.status as string;
  return (
    status === 'end' ||
    status === 'disconnecting' ||
    (client as unknown as { manuallyClosing?: unknown }).manuallyClosing === true
  );
}

/** Resolves when the user's client is ready (within `ms`), else an error naming its address and the cause. */
function clientReady(client: RedisClient, ms: number, what: string, signal: AbortSignal | undefined): Promise<void> {
  return waitUntilReady(client, {
    timeoutMs: ms,
    signal,
    error: (failure) =>
      failure.reason === 'aborted'
        ? abortError(`waiting for the ${what} client`, failure.cause)
        : new DataBrokerError('ERR_DATABROKER_CONNECTION', `${what}: ${failure.message}`, { cause: failure.cause }),
  });
}

function tlsOf(value: unknown): TlsOptions | undefined {
  return typeof value === 'object' && value !== null ? (value as TlsOptions) : undefined;
}

/**
 * How to reach the master that owns `slot`, read from the user's client. Standalone: its
 * options. Sentinel (or a custom connector): the address its live socket is connected to, since
 * ioredis found the master. Cluster: the slot's master in its slot table (`movedTo` first, when a
 * MOVED reply named the new owner).
 */
async function resolveTarget(
  client: RedisClient,
  slot: number,
  timeoutMs: number,
  movedTo: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Target> {
  if (isCluster(client)) {
    await clientReady(client, timeoutMs, 'cluster', signal);
    const key = (n: Redis) => `${n.options.host}:${n.options.port}`;
    const owner = movedTo ?? client.slots[slot]?.[0];
    const node =
      (owner ? client.nodes('master').find((n) => key(n) === owner) : undefined) ??
      (owner ? client.nodes('all').find((n) => key(n) === owner) : undefined);
    if (!node) {
      client.refreshSlotsCache();
      throw connectionError(`no cluster master owns slot ${slot} yet (the cluster's slot table is being refreshed)`);
    }
    return fromOptions(node.options, node.options.host ?? '127.0.0.1', node.options.port ?? 6379, undefined);
  }
  const options = client.options as RedisOptions;
  if (options.sentinels?.length || options.Connector) {
    await clientReady(client, timeoutMs, 'Sentinel', signal);
    const stream = (client as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
    if (!stream?.remoteAddress || !stream.remotePort) {
      throw connectionError('the client given to DataBroker is ready but its socket has no remote address');
    }
    return fromOptions(options, stream.remoteAddress, stream.remotePort, undefined);
  }
  return fromOptions(options, options.host ?? '127.0.0.1', options.port ?? 6379, options.path);
}

function fromOptions(options: RedisOptions, host: string, port: number, path: string | undefined): Target {
  return {
    host,
    port,
    path: path ?? undefined,
    tls: tlsOf(options.tls),
    username: options.username || undefined,
    password: options.password || undefined,
    db: options.db ?? 0,
    name: options.connectionName || undefined,
    protocol: options.protocol === 2 ? 2 : 3,
  };
}

/**
 * The cause of a connection the watchdog dropped because a command got no reply within the bound:
 * the server may still run what was sent, so a commit in flight must not be retried.
 */
export class ReplyTimeout extends Error {
  override readonly name: string = 'ReplyTimeout';
}

/** Whether a command failed because the watchdog dropped its connection. */
export function timedOut(err: unknown): boolean {
  return (err as { cause?: unknown } | undefined)?.cause instanceof ReplyTimeout;
}

/** Options of a {@link Link}. */
export interface LinkOptions {
  readonly client: RedisClient;
  readonly slot: number;
  /** What the link is for, in messages ("databroker sessions"). */
  readonly label: string;
  /** Bound on connecting (and on waiting for a reconnection) before an operation fails. */
  readonly timeoutMs: number;
  /** Extra connection options (Pub/Sub routing and handshake hook). */
  readonly extra?: Partial<RespConnectionOptions<unknown>> | undefined;
  /** Called on every (re)connect. */
  readonly onConnect?: ((connection: RespConnection<unknown>, info: ConnectInfo) => void) | undefined;
  /** Called when the connection drops. */
  readonly onDisconnect?: (() => void) | undefined;
}

/**
 * One connection of the backend's own, to the master of its slot, kept ready: created on first
 * use, re-created after a MOVED or a failover. `epoch` counts connections lost, so that a WATCH
 * set before a loss is known to be gone.
 */
export class Link {
  readonly #options: LinkOptions;
  #connection: RespConnection<unknown> | undefined;
  #creating: Promise<RespConnection<unknown>> | undefined;
  #target: Target | undefined;
  #movedTo: string | undefined;
  #epoch = 0;
  #closed = false;
  #lastError: unknown;
  /** Commands sent and not answered, and when a reply (or the first send) last came. */
  #pending = 0;
  #progress = 0;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: LinkOptions) {
    this.#options = options;
  }

  /** Connections lost (or replaced) so far: a WATCH set in another epoch is gone. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The connection when it is ready to send now (and the user's client is still open). */
  get current(): RespConnection<unknown> | undefined {
    const connection = this.#connection;
    return connection?.status === 'ready' && !clientClosed(this.#options.client) ? connection : undefined;
  }

  /** Where this link connects, once known: for diagnostics contexts. */
  get target(): { readonly host: string; readonly port: number; readonly db: number } | undefined {
    const t = this.#target;
    return t ? { host: t.path ?? t.host, port: t.path === undefined ? t.port : 0, db: t.db } : undefined;
  }

  /** `host:port` of the node this link talks to, once known. */
  get address(): string | undefined {
    return this.#target ? describe(this.#target) : undefined;
  }

  /** The last connection failure, for messages. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * A ready connection, by `deadline` (a `performance.now()` value): connects, or (cluster,
   * Sentinel) finds the master first. A lost connection is not reconnected in place but
   * re-created here, so that a failover or a moved slot is followed.
   */
  async ready(deadline: number, signal?: AbortSignal): Promise<RespConnection<unknown>> {
    let earlier: unknown; // this call's last failure
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
      if (clientClosed(this.#options.client)) {
        throw connectionError(
          `${this.#options.label}: the client given to DataBroker was closed (quit or disconnect); close the DataBroker before its client`,
        );
      }
      const connection = this.#connection;
      if (connection?.status === 'ready') return connection;
      const left = deadline - performance.now();
      if (left <= 0) throw this.#timeoutError();
      try {
        return await abortable(this.#create(left), signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof DataBrokerError && err.code !== 'ERR_DATABROKER_CONNECTION') throw err;
        // An attempt that ended only because the deadline came tells less than the failure
        // before it (a refusal, say), which the error then names.
        let cause = err instanceof DataBrokerError && err.cause !== undefined ? err.cause : err;
        if (earlier !== undefined && performance.now() >= deadline - 1) cause = earlier;
        earlier = cause;
        this.#lastError = cause;
        if (!isTransient(err)) throw this.#failure(err);
        const wait = Number(retryDelay(attempt, err as Error));
        await delay(Math.min(wait, Math.max(0, deadline - performance.now())), { signal });
      }
    }
  }

  /**
   * Counts a command (or a pipeline) until it settles, for the watchdog: one timer per
   * connection instead of one per command. A connection that answers nothing for `timeoutMs`
   * while commands wait is dropped, failing them.
   */
  track<T>(promise: Promise<T>): Promise<T> {
    if (this.#pending++ === 0) this.#progress = performance.now();
    if (!this.#watchdog) {
      const every = Math.max(10, Math.min(1000, this.#options.timeoutMs / 4));
      this.#watchdog = setInterval(() => this.#check(), every);
      this.#watchdog.unref();
    }
    const done = () => {
      this.#pending--;
      this.#progress = performance.now();
    };
    promise.then(done, done);
    return promise;
  }

  #check(): void {
    const connection = this.#connection;
    if (this.#pending === 0 || !connection || connection.status !== 'ready') return;
    if (performance.now() - this.#progress < this.#options.timeoutMs) return;
    this.#progress = performance.now();
    this.#lastError = new ReplyTimeout(
      `no reply from ${this.address ?? 'Redis'} within ${this.#options.timeoutMs} ms while ${this.#pending} command(s) waited`,
    );
    connection.reconnect(this.#lastError as Error);
  }

  /**
   * Drops the connection (the slot moved, a failover): the next `ready()` resolves the master
   * again, trying `movedTo` first when a MOVED reply named it.
   */
  invalidate(movedTo?: string): void {
    this.#movedTo = movedTo;
    const old = this.#connection;
    this.#connection = undefined;
    this.#epoch++;
    old?.destroy();
    const client = this.#options.client;
    if (isCluster(client)) client.refreshSlotsCache();
  }

  /** Ends the connection for good. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#connection?.destroy();
    this.#connection = undefined;
  }

  #timeoutError(): DataBrokerError {
    const where = this.address ? ` at ${this.address}` : '';
    const cause = this.#lastError;
    return connectionError(
      `${this.#options.label}: Redis${where} was not reachable within ${this.#options.timeoutMs} ms${cause !== undefined ? `: ${causeText(cause)}` : ''}; check that the server is up and reachable`,
      cause,
    );
  }

  #failure(err: unknown): DataBrokerError {
    const where = this.address ? ` to ${this.address}` : '';
    return connectionError(`${this.#options.label}: cannot connect${where}: ${causeText(err)}`, err);
  }

  /** Opens the connection once for every caller that needs it meanwhile. */
  #create(ms: number): Promise<RespConnection<unknown>> {
    this.#creating ??= this.#open(ms).finally(() => {
      this.#creating = undefined;
    });
    return this.#creating;
  }

  async #open(ms: number): Promise<RespConnection<unknown>> {
    const { client, slot, extra, onConnect, onDisconnect } = this.#options;
    const movedTo = this.#movedTo;
    this.#movedTo = undefined;
    const old = this.#connection;
    this.#connection = undefined;
    old?.destroy();
    const target = await resolveTarget(client, slot, ms, movedTo, undefined);
    this.#target = target;
    const connection = new RespConnection<unknown>({
      host: target.host,
      port: target.port,
      path: target.path,
      tls: target.tls,
      username: target.username,
      password: target.password,
      db: target.db,
      name: target.name,
      protocol: target.protocol,
      decoder: { strings: 'buffer', maps: 'array' },
      connectTimeout: Math.max(1, Math.ceil(ms)),
      // Re-created by ready() instead, which finds the master again after a failover.
      reconnect: false,
      queueWhileDisconnected: false,
      ...extra,
    });
    connection.on('connect', (info) => onConnect?.(connection, info));
    connection.on('disconnect', ({ cause }) => {
      if (this.#connection === connection) {
        this.#epoch++;
        this.#lastError = cause;
      }
      onDisconnect?.();
    });
    try {
      await connection.connect();
    } catch (err) {
      connection.destroy();
      throw err;
    }
    if (this.#closed) {
      connection.destroy();
      throw new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
    }
    this.#connection = connection;
    return connection;
  }
}

/** Whether a connection failure is worth trying again (refused, reset, timeout) or final (auth, TLS trust). */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (code === 'ERR_RESP_HANDSHAKE') {
    // Wrong password or an ACL refusal will not fix itself; LOADING or BUSY will.
    return /LOADING|BUSY|MASTERDOWN|TRYAGAIN/.test((err as Error).message);
  }
  const root = (err as { cause?: { code?: unknown } })?.cause?.code;
  if (typeof root === 'string' && /^(ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_SSL)/.test(root)) return false;
  return true;
}

/** `promise`, or a rejection as soon as `signal` fires (the work itself goes on for others). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, what = 'the call'): Promise<T> {
  return signal ? abortableOf(promise, signal, (reason) => abortError(what, reason)) : promise;
}
