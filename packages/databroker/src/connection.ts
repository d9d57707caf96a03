// The backend's own connections, duplicated from the user's client: one for WATCH/MULTI
// transactions, one for Pub/Sub. WATCH is per connection, so transactions cannot share the
// user's client (another WATCH or EXEC on it would void ours), and they must never be replayed
// on a new connection where the WATCH is gone: the transaction connection refuses to queue
// commands while disconnected and rejects commands in flight when it drops.
import { isCluster, type RedisClient as SharedClient } from '@redis-events/resp/ioredis';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { DataBrokerError } from './errors.ts';

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

const TRANSACTION_OVERRIDES: Partial<RedisOptions> = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  // Rejects commands in flight when the connection drops, instead of keeping them for a resend.
  maxRetriesPerRequest: 0,
  enableAutoPipelining: false,
  lazyConnect: true,
  // The ready check sends INFO, which a minimal ACL leaves out; LOADING replies are retried anyway.
  enableReadyCheck: false,
};

function noop(): void {}

function connectionError(message: string, cause?: unknown): DataBrokerError {
  return new DataBrokerError('ERR_DATABROKER_CONNECTION', message, cause === undefined ? undefined : { cause });
}

/** Waits for `ready`, failing on `end` or after `timeoutMs`. */
function whenReady(
  emitter: Redis | Cluster,
  isReady: () => boolean,
  timeoutMs: number,
  what: string,
  lastError: () => unknown,
): Promise<void> {
  if (isReady()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: DataBrokerError) => {
      clearTimeout(timer);
      emitter.off('ready', onReady);
      emitter.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onEnd = () => done(connectionError(`${what}: the connection ended and will not reconnect`, lastError()));
    const timer = setTimeout(() => {
      const cause = lastError();
      done(
        connectionError(
          `${what}: Redis did not answer within ${timeoutMs} ms${cause instanceof Error ? ` (${cause.message})` : ''}; check that the server is up and reachable`,
          cause,
        ),
      );
    }, timeoutMs);
    emitter.on('ready', onReady);
    emitter.on('end', onEnd);
  });
}

/**
 * One dedicated connection, duplicated from the user's client and kept ready. For a cluster it
 * connects to the master that owns the backend's slot, and moves when told the slot moved.
 */
export class DedicatedConnection {
  readonly #source: RedisClient;
  readonly #slot: number;
  readonly #name: string;
  readonly #timeoutMs: number;
  #connection: Redis | undefined;
  #closes = 0;
  #closed = false;
  #lastError: unknown;
  /** The connection being created, shared by the callers waiting for it. */
  #creating: Promise<Redis> | undefined;
  /** The wait for the current connection to be ready, shared by the callers waiting for it. */
  #connecting: { connection: Redis; wait: Promise<void> } | undefined;
  /** `host:port` a MOVED reply named: the slot's new master, before the slot table knows it. */
  #movedTo: string | undefined;

  constructor(source: RedisClient, slot: number, name: string, timeoutMs: number) {
    this.#source = source;
    this.#slot = slot;
    this.#name = name;
    this.#timeoutMs = timeoutMs;
  }

  /** How many times the connection dropped: a WATCH set before a drop is gone after it. */
  get epoch(): number {
    return this.#closes;
  }

  /** The connection when it is ready to send now, else undefined. */
  get current(): Redis | undefined {
    return this.#connection?.status === 'ready' ? this.#connection : undefined;
  }

  /** The last error the connection reported, for messages. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** A ready connection: connects, reconnects, or (cluster) finds the slot's master first. */
  async ready(): Promise<Redis> {
    if (this.#closed) throw new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
    let connection = this.#connection;
    if (!connection || connection.status === 'end') connection = await this.#replace();
    if (connection.status === 'wait') connection.connect().catch(noop);
    const live = connection;
    if (live.status !== 'ready') {
      // Callers that arrive while it connects share one wait (one pair of listeners).
      if (this.#connecting?.connection !== live) {
        const wait = whenReady(
          live,
          () => live.status === 'ready',
          this.#timeoutMs,
          this.#name,
          () => this.#lastError,
        );
        const entry = { connection: live, wait };
        this.#connecting = entry;
        wait.then(
          () => this.#doneConnecting(entry),
          () => this.#doneConnecting(entry),
        );
      }
      await this.#connecting.wait;
    }
    if (this.#closed) throw new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
    return live;
  }

  #doneConnecting(entry: { connection: Redis; wait: Promise<void> }): void {
    if (this.#connecting === entry) this.#connecting = undefined;
  }

  /**
   * Creates the connection once for every caller that needs it meanwhile: concurrent reads
   * would otherwise each create one, and all but the last would never be closed.
   */
  #replace(): Promise<Redis> {
    this.#creating ??= this.#create().then(
      (connection) => {
        this.#creating = undefined;
        if (this.#closed) {
          connection.disconnect();
          throw new DataBrokerError('ERR_DATABROKER_CLOSED', 'the backend is closed');
        }
        this.#connection = connection;
        return connection;
      },
      (err: unknown) => {
        this.#creating = undefined;
        throw err;
      },
    );
    return this.#creating;
  }

  /**
   * Drops the connection (the slot moved, or a failover): the next `ready()` finds the owner
   * again, trying `movedTo` first when a MOVED reply named it.
   */
  invalidate(movedTo?: string): void {
    this.#movedTo = movedTo;
    const old = this.#connection;
    this.#connection = undefined;
    this.#closes++;
    old?.disconnect();
    if (isCluster(this.#source)) this.#source.refreshSlotsCache();
  }

  /** Ends the connection for good. */
  close(): void {
    this.#closed = true;
    this.#connection?.disconnect();
    this.#connection = undefined;
  }

  async #create(): Promise<Redis> {
    const source = this.#source;
    let base: Redis;
    const overrides: Partial<RedisOptions> = { ...TRANSACTION_OVERRIDES };
    if (isCluster(source)) {
      if (source.status === 'wait') source.connect().catch(noop);
      await whenReady(
        source,
        () => source.status === 'ready',
        this.#timeoutMs,
        `${this.#name} (cluster)`,
        () => this.#lastError,
      );
      const key = (n: Redis) => `${n.options.host}:${n.options.port}`;
      const moved = this.#movedTo;
      this.#movedTo = undefined;
      const owner = source.slots[this.#slot]?.[0];
      const node =
        (moved ? source.nodes('all').find((n) => key(n) === moved) : undefined) ??
        (owner ? source.nodes('master').find((n) => key(n) === owner) : undefined);
      if (!node) {
        source.refreshSlotsCache();
        throw connectionError(`${this.#name}: no cluster master owns slot ${this.#slot} yet`);
      }
      base = node;
      const prefix = keyPrefixOf(source);
      if (prefix) overrides.keyPrefix = prefix;
    } else {
      base = source;
    }
    const connection = base.duplicate(overrides as RedisOptions) as Redis;
    connection.on('error', (err: unknown) => {
      this.#lastError = err;
    });
    connection.on('close', () => {
      this.#closes++;
    });
    return connection;
  }
}
