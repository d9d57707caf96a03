// Listening to a whole Redis Cluster: one ReplicaListener per master, each one's events tagged
// with its shard. The topology is read with CLUSTER SLOTS from any known node, again every
// `refreshInterval` and whenever a listener loses its master. When a shard's slots are served
// by a new master (a failover), its listener is replaced by one on the new master that resumes
// from where the old one stopped: PSYNC with the old replication ID, which a promoted replica
// still accepts (its `replid2`), so no new snapshot is needed while the backlog holds. Masters
// that appear (a scale-out) get their own listener and full sync; slots that move between
// masters only change the shards' ranges (their keys arrive as RESTORE-ASKING on the receiving
// master and DEL on the giving one).

import { EventEmitter } from 'node:events';
import { abortable, type Logger, RespConnection } from '@redis-events/resp';
import { abortError, ReplicationError } from './errors.ts';
import { rejectUnknownOptions } from './options.ts';
import {
  LISTENER_OPTIONS,
  ReplicaListener,
  type ReplicaListenerOptions,
  type ReplicationCheckpoint,
} from './replica-listener.ts';
import type { ReplicationEvent } from './replication-events.ts';
import { connectionOptions, resolveEndpoint } from './sink/endpoint.ts';
import { type ClusterMaster, parseClusterSlots } from './sink/slots.ts';

/** One master of the cluster and the slots it serves. */
export interface ClusterShard {
  /** A stable name for the shard: `host:port` of its first master (kept across failovers). */
  readonly id: string;
  /** `host:port` of the master listened to. */
  readonly master: string;
  readonly host: string;
  readonly port: number;
  /** The master's node ID. */
  readonly nodeId?: string | undefined;
  /** The slot ranges the master serves (updated as slots move). */
  readonly ranges: readonly (readonly [from: number, to: number])[];
}

/** An event of one shard. */
export interface ClusterReplicationEvent {
  readonly shard: ClusterShard;
  readonly event: ReplicationEvent;
}

/** A change of the cluster's masters. */
export type ClusterTopologyEvent =
  | { readonly kind: 'shard-added'; readonly shard: ClusterShard }
  | { readonly kind: 'shard-removed'; readonly shard: ClusterShard }
  /** A new master serves a shard's slots; its listener resumes from the old one's position. */
  | { readonly kind: 'failover'; readonly shard: ClusterShard; readonly previous: ClusterShard };

/** Where each shard's listener stands, to save and resume from. */
export interface ClusterCheckpoint {
  readonly shards: readonly (ReplicationCheckpoint & {
    readonly master: string;
    readonly nodeId?: string | undefined;
    readonly ranges: readonly (readonly [number, number])[];
  })[];
}

/**
 * Options of {@link ClusterReplicaListener}: where to find the cluster (any node), and the
 * options every shard's {@link ReplicaListener} gets.
 *
 * @example
 * ```ts
 * const options: ClusterReplicaListenerOptions = { url: 'redis://node1:7000', discardRdb: true, refreshInterval: 2000 };
 * ```
 */
export interface ClusterReplicaListenerOptions
  extends Omit<ReplicaListenerOptions, 'url' | 'host' | 'port' | 'path' | 'replId' | 'replOffset' | 'db' | 'signal'> {
  /** Any node of the cluster. */
  readonly url?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  /** Resume every shard from a saved checkpoint. */
  readonly checkpoint?: ClusterCheckpoint | undefined;
  /** How often the topology is read again, in ms. Default 5000. */
  readonly refreshInterval?: number | undefined;
  /** Closes every listener when aborted; `start()` then rejects with `ERR_REPLICATION_ABORTED`. */
  readonly signal?: AbortSignal | undefined;
  /** Where topology changes and failed refreshes are logged. */
  readonly logger?: Logger | undefined;
}

/** Events of {@link ClusterReplicaListener}. */
export interface ClusterReplicaListenerEvents {
  event: [shard: ClusterShard, event: ReplicationEvent];
  topology: [event: ClusterTopologyEvent];
  error: [error: ReplicationError];
  close: [];
}

interface ShardState {
  shard: ClusterShard;
  listener: ReplicaListener;
  /** Where the consumer stands in this shard (delivered events). */
  checkpoint: ReplicationCheckpoint | undefined;
  ended: boolean;
}

// Every shard listener's option, less those that name one node or one position, plus the cluster's own.
const PER_NODE = new Set(['path', 'replId', 'replOffset', 'db']);
const LISTENER_KEYS: readonly string[] = [
  ...LISTENER_OPTIONS.filter((key) => !PER_NODE.has(key)),
  'checkpoint',
  'refreshInterval',
];

function overlaps(a: readonly (readonly [number, number])[], b: readonly (readonly [number, number])[]): number {
  let n = 0;
  for (const [a0, a1] of a) for (const [b0, b1] of b) n += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0) + 1);
  return n;
}

/**
 * Listens to every master of a Redis Cluster, one {@link ReplicaListener} per master, and
 * delivers their events tagged with the shard. Follows failovers (the new master's listener
 * resumes the old one's stream without a snapshot while the backlog allows), scale-outs (a
 * new master gets its own listener) and slot moves. {@link checkpoint} saves every shard's
 * position.
 *
 * @example
 * ```ts
 * import { ClusterReplicaListener } from '@redis-events/replication';
 *
 * const cluster = new ClusterReplicaListener({ url: 'redis://127.0.0.1:7000', discardRdb: true });
 * for await (const { shard, event } of cluster) {
 *   if (event.kind === 'command') console.log(shard.master, event.name, ...event.args.map(String));
 * }
 * ```
 */
export class ClusterReplicaListener
  extends EventEmitter<ClusterReplicaListenerEvents>
  implements AsyncDisposable, AsyncIterable<ClusterReplicationEvent>
{
  readonly #options: ClusterReplicaListenerOptions;
  readonly #seed: ReturnType<typeof resolveEndpoint>;
  readonly #refreshInterval: number;
  readonly #shards = new Map<string, ShardState>();
  /** Checkpoints of shards whose listener is gone (a failover in progress, a restart). */
  readonly #saved: ClusterCheckpoint['shards'][number][] = [];
  /** Every node address seen, to find the topology when the seed is down. */
  readonly #known = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #refreshing: Promise<void> | undefined;
  #started = false;
  #closed = false;
  #paused = false;
  #closing: Promise<void> | undefined;
  // Iteration.
  #queue: ClusterReplicationEvent[] = [];
  #waiter: ((r: IteratorResult<ClusterReplicationEvent>) => void) | undefined;
  #failure: ReplicationError | undefined;
  #iterating = false;

  /** @throws {ReplicationError} `ERR_REPLICATION_ARGUMENT` for bad options. */
  constructor(options: ClusterReplicaListenerOptions | string) {
    super();
    const o: ClusterReplicaListenerOptions = typeof options === 'string' ? { url: options } : options;
    rejectUnknownOptions(o, LISTENER_KEYS, 'ClusterReplicaListener');
    this.#options = o;
    this.#seed = resolveEndpoint(
      {
        url: o.url,
        host: o.host,
        port: o.port,
        username: o.username,
        password: o.password,
        tls: o.tls,
      },
      'cluster',
    );
    this.#known.add(`${this.#seed.host}:${this.#seed.port}`);
    this.#refreshInterval = o.refreshInterval ?? 5000;
    if (!Number.isSafeInteger(this.#refreshInterval) || this.#refreshInterval < 100)
      throw new ReplicationError(
        'ERR_REPLICATION_ARGUMENT',
        `refreshInterval must be at least 100 ms, got ${String(o.refreshInterval)}`,
      );
    for (const saved of o.checkpoint?.shards ?? []) this.#saved.push(saved);
    o.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** The shards listened to now. */
  get shards(): readonly ClusterShard[] {
    return [...this.#shards.values()].map((s) => s.shard);
  }

  /** Every shard's position (delivered events), to save and pass back as `checkpoint`. */
  get checkpoint(): ClusterCheckpoint {
    const shards: ClusterCheckpoint['shards'][number][] = [];
    for (const state of this.#shards.values()) {
      const cp = state.listener.checkpoint ?? state.checkpoint;
      if (cp)
        shards.push({
          ...cp,
          master: state.shard.master,
          ...(state.shard.nodeId ? { nodeId: state.shard.nodeId } : {}),
          ranges: state.shard.ranges,
        });
    }
    for (const saved of this.#saved) if (!shards.some((s) => overlaps(s.ranges, saved.ranges) > 0)) shards.push(saved);
    return { shards };
  }

  /**
   * Reads the topology and starts one listener per master; events go to the `event` listeners.
   *
   * @throws {ReplicationError} `ERR_REPLICATION_CONNECT` when no node answers, `ERR_REPLICATION_ARGUMENT` when the server is not a cluster.
   */
  async start(): Promise<this> {
    if (this.#started) throw new ReplicationError('ERR_REPLICATION_STATE', 'this cluster listener is already started');
    this.#started = true;
    const signal = this.#options.signal;
    const aborted = () => abortError(signal?.reason, 'starting the cluster listener');
    if (signal?.aborted) throw aborted();
    await abortable(this.#refresh(), signal, aborted);
    if (this.#closed) return this;
    this.#timer = setInterval(() => void this.#refreshSoon(), this.#refreshInterval);
    this.#timer.unref?.();
    return this;
  }

  /** Stops delivering events (each shard's listener queues, then stops reading). */
  pause(): void {
    this.#paused = true;
    for (const s of this.#shards.values()) s.listener.pause();
  }

  resume(): void {
    this.#paused = false;
    // A consumer may pause again while one shard hands over what it queued: the rest stay paused.
    for (const s of this.#shards.values()) {
      if (this.#paused) break;
      s.listener.resume();
    }
  }

  /** Closes every listener. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#timer) clearInterval(this.#timer);
      await Promise.all([...this.#shards.values()].map((s) => s.listener.close()));
      this.#finishIteration();
      this.emit('close');
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Iterates `{ shard, event }` items, starting the listener; leaving the loop closes it. */
  [Symbol.asyncIterator](): AsyncIterator<ClusterReplicationEvent> {
    if (this.#iterating)
      throw new ReplicationError('ERR_REPLICATION_STATE', 'this cluster listener is already iterated');
    this.#iterating = true;
    this.on('event', (shard, event) => {
      this.#queue.push({ shard, event });
      if (this.#queue.length >= 4096) this.pause();
      this.#wake();
    });
    this.on('error', (err) => {
      this.#failure = err;
      this.#wake();
    });
    const starting = this.#started ? Promise.resolve(this) : this.start();
    starting.catch((err: unknown) => {
      this.#failure = err as ReplicationError;
      this.#wake();
    });
    return {
      next: () =>
        new Promise((resolve, reject) => {
          const item = this.#queue.shift();
          if (item) {
            if (this.#paused && this.#queue.length < 1024) this.resume();
            resolve({ done: false, value: item });
            return;
          }
          if (this.#failure) {
            reject(this.#failure);
            return;
          }
          if (this.#closed) {
            resolve({ done: true, value: undefined });
            return;
          }
          this.#waiter = (r) => (r.done && this.#failure ? reject(this.#failure) : resolve(r));
        }),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  #log(level: 'debug' | 'warn', context: object, message: string): void {
    try {
      this.#options.logger?.[level](context, message);
    } catch {
      // A logger that throws must not stop the listener.
    }
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    const item = this.#queue.shift();
    if (item) {
      this.#waiter = undefined;
      waiter({ done: false, value: item });
    } else if (this.#failure || this.#closed) {
      this.#waiter = undefined;
      waiter({ done: true, value: undefined });
    }
  }

  #finishIteration(): void {
    this.#wake();
  }

  #refreshSoon(): Promise<void> {
    this.#refreshing ??= this.#refresh()
      .catch((err: unknown) => {
        // A failed refresh is retried at the next tick; listeners keep trying meanwhile.
        this.#log(
          'warn',
          { error: (err as Error)?.message },
          `cluster topology refresh failed: ${(err as Error)?.message}`,
        );
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  async #topology(): Promise<ClusterMaster[]> {
    let lastError: unknown;
    for (const address of [...this.#known]) {
      const at = address.lastIndexOf(':');
      const host = address.slice(0, at);
      const port = Number(address.slice(at + 1));
      const conn = new RespConnection<unknown>(
        connectionOptions(this.#seed, {
          host,
          port,
          connectTimeout: this.#options.connectTimeout ?? 10_000,
          reconnect: false,
          decoder: { strings: 'buffer', maps: 'array' },
        }),
      );
      try {
        await conn.connect();
        const reply = await conn.send(['CLUSTER', 'SLOTS'], { timeout: this.#options.connectTimeout ?? 10_000 });
        const masters = parseClusterSlots(reply, host);
        if (masters.length === 0) throw new Error('the node serves no slots (is cluster mode enabled?)');
        for (const row of reply as unknown[][])
          for (const node of row.slice(2) as unknown[][]) {
            const h = Buffer.isBuffer(node[0]) ? node[0].toString() : String(node[0]);
            if (h && h !== '?') this.#known.add(`${h}:${Number(node[1])}`);
          }
        return masters;
      } catch (err) {
        lastError = err;
        if (/unknown command|cluster support disabled|not enabled/i.test(String((err as Error)?.message)))
          throw new ReplicationError(
            'ERR_REPLICATION_ARGUMENT',
            `${address} is not a Cluster node (${(err as Error).message}); use ReplicaListener for a standalone master`,
            { cause: err },
          );
      } finally {
        conn.destroy();
      }
    }
    throw new ReplicationError(
      'ERR_REPLICATION_CONNECT',
      `no node of the cluster answered CLUSTER SLOTS (tried ${[...this.#known].join(', ')}): ${(lastError as Error)?.message ?? String(lastError)}`,
      { cause: lastError },
    );
  }

  async #refresh(): Promise<void> {
    const masters = await this.#topology();
    if (this.#closed) return;
    const current = new Map(masters.map((m) => [`${m.host}:${m.port}`, m]));
    // Masters that left: keep their position for whoever takes their slots.
    for (const [address, state] of this.#shards) {
      if (current.has(address)) continue;
      this.#shards.delete(address);
      const cp = state.listener.checkpoint ?? state.checkpoint;
      if (cp)
        this.#saved.push({
          ...cp,
          master: state.shard.master,
          ...(state.shard.nodeId ? { nodeId: state.shard.nodeId } : {}),
          ranges: state.shard.ranges,
        });
      state.ended = true;
      await state.listener.close();
      this.#savedOwners.set(state.shard.master, state.shard);
      this.emit('topology', { kind: 'shard-removed', shard: state.shard });
    }
    for (const [address, master] of current) {
      const existing = this.#shards.get(address);
      if (existing) {
        (existing.shard as { ranges: ClusterShard['ranges'] }).ranges = master.ranges;
        continue;
      }
      this.#startShard(address, master);
    }
  }

  /** Shards whose listener was closed, by master address, to name a failover's previous shard. */
  readonly #savedOwners = new Map<string, ClusterShard>();

  #startShard(address: string, master: ClusterMaster): void {
    // Resume from a saved position: the same node, else the shard that served these slots.
    let best = -1;
    let bestScore = 0;
    for (let i = 0; i < this.#saved.length; i++) {
      const saved = this.#saved[i] as ClusterCheckpoint['shards'][number];
      const score =
        (saved.nodeId !== undefined && saved.nodeId === master.id) || saved.master === address
          ? Number.MAX_SAFE_INTEGER
          : overlaps(saved.ranges, master.ranges);
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    const resume = best >= 0 ? this.#saved.splice(best, 1)[0] : undefined;
    const previous = resume ? this.#savedOwners.get(resume.master) : undefined;
    const shard: ClusterShard = {
      // A failover keeps the shard's name: the same slots, the same stream, another master.
      id: previous?.id ?? address,
      master: address,
      host: master.host,
      port: master.port,
      ...(master.id ? { nodeId: master.id } : {}),
      ranges: master.ranges,
    };
    const o = this.#options;
    const listener = new ReplicaListener({
      host: master.host,
      port: master.port,
      username: o.username ?? this.#seed.username,
      password: o.password ?? this.#seed.password,
      tls: o.tls ?? this.#seed.tlsOption,
      name: o.name,
      discardRdb: o.discardRdb,
      aof: o.aof,
      connectTimeout: o.connectTimeout,
      readTimeout: o.readTimeout,
      writeTimeout: o.writeTimeout,
      reconnect: o.reconnect,
      ackInterval: o.ackInterval,
      progressInterval: o.progressInterval,
      maxQueuedEvents: o.maxQueuedEvents,
      maxQueuedBytes: o.maxQueuedBytes,
      announcePort: o.announcePort,
      announceIp: o.announceIp,
      announceVersion: o.announceVersion,
      rdb: o.rdb,
      maxArgumentBytes: o.maxArgumentBytes,
      ...(resume ? { replId: resume.replId, replOffset: resume.replOffset, db: resume.db } : {}),
    });
    const state: ShardState = { shard, listener, checkpoint: resume, ended: false };
    this.#shards.set(address, state);
    listener.on('event', (event) => {
      if (state.ended) return;
      if (event.kind === 'reconnecting') void this.#refreshSoon();
      this.emit('event', shard, event);
    });
    listener.on('error', (err) => {
      if (state.ended || this.#closed) return;
      // A shard that cannot go on (auth, protocol, a refused PSYNC) ends the whole listener.
      this.emit('error', err);
      void this.close();
    });
    if (this.#paused) listener.pause();
    listener.start();
    const change: ClusterTopologyEvent =
      resume && previous && previous.master !== address
        ? { kind: 'failover', shard, previous }
        : { kind: 'shard-added', shard };
    this.#log('debug', { kind: change.kind, master: address }, `cluster shard ${change.kind}: ${address}`);
    this.emit('topology', change);
  }
}
