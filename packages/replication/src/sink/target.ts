// The write side of a sync: pipelined commands to a standalone Redis or to every master of a
// Cluster, each command routed by its slot, `SELECT` sent when a connection's database must
// change, and the replies handed back in order per connection.
//
// Redirections and failures keep the order of the source: when a command comes back with
// MOVED or ASK, a lost connection, or a transient refusal (TRYAGAIN, CLUSTERDOWN, LOADING,
// READONLY after a failover), the writer stops sending, waits until every command in flight has
// answered, refreshes the slot map when needed, and sends the returned commands again in their
// original order before anything newer. Commands in flight when a connection drops may have run
// before it did: they are sent again (at least once), and counted.

import { abortable, exponentialBackoff, type ReplyError, RespConnection, RespError } from '@redis-events/resp';
import { ReplicationError } from '../errors.ts';
import { connectionOptions, type ResolvedEndpoint } from './endpoint.ts';
import { CLUSTER_SLOTS, type ClusterMaster, parseClusterSlots } from './slots.ts';

/** What the target server said about itself. */
export interface TargetServerInfo {
  readonly flavor: 'redis' | 'valkey';
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  readonly cluster: boolean;
}

/** A command argument as the target takes it. */
export type TargetArg = string | Buffer | number;

/** Called once per write with the reply, or the error that could not be retried. */
export type WriteDone = (error: Error | undefined, reply: unknown) => void;

interface Op {
  args: TargetArg[];
  /** A transaction: these commands inside MULTI ... EXEC, sent and retried as one. */
  tx: TargetArg[][] | undefined;
  db: number;
  /** The slot to route by, or -1 (standalone, or a command pinned to `node`). */
  slot: number;
  node: TargetNode | undefined;
  bytes: number;
  seq: number;
  asking: TargetNode | undefined;
  attempts: number;
  firstFailure: number;
  done: WriteDone;
}

/** One connection of the target (the standalone server, or one master). */
export interface TargetNode {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  /** Sends a command outside the write pipeline (reads for a compare, SCAN for a flush). */
  send(args: TargetArg[]): Promise<unknown>;
}

class Node implements TargetNode {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly conn: RespConnection<unknown>;
  /** The database the connection is in, after the commands written so far. */
  db = 0;
  inflight = 0;
  retired = false;

  constructor(host: string, port: number, label: string, conn: RespConnection<unknown>) {
    this.host = host;
    this.port = port;
    this.label = label;
    this.conn = conn;
    // A new connection starts in database 0: the next command must SELECT again.
    conn.on('disconnect', () => {
      this.db = -1;
    });
  }

  send(args: TargetArg[]): Promise<unknown> {
    this.ensureConnected();
    return this.conn.send(args);
  }

  /** A node learnt from a slot map (or one whose first connection failed) connects on first use. */
  ensureConnected(): void {
    if (this.conn.status === 'idle') this.conn.connect().catch(() => {});
  }
}

/** Options of {@link SyncTarget.open}. */
export interface SyncTargetOptions {
  readonly connectTimeout: number;
  /** Commands sent and not yet answered before the target counts as congested. */
  readonly maxInflightCommands: number;
  /** Bytes sent and not yet answered before the target counts as congested. */
  readonly maxInflightBytes: number;
  /** How long a command may keep failing with retriable errors (redirections, lost connections) before it fails for good. */
  readonly retryTimeout: number;
  readonly signal?: AbortSignal | undefined;
  /** Called when the target stops being congested. */
  readonly onDrain?: (() => void) | undefined;
  /** Called on each retried failure (a lost connection, a failover), for logs. */
  readonly onRetry?: ((reason: string) => void) | undefined;
}

const TRANSIENT = new Set(['TRYAGAIN', 'CLUSTERDOWN', 'LOADING', 'MASTERDOWN', 'READONLY', 'BUSY', 'NOREPLICAS']);
const LOST = new Set(['ERR_RESP_CONNECTION_LOST', 'ERR_RESP_CLOSED', 'ERR_RESP_CONNECT', 'ERR_RESP_TIMEOUT']);

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

/** Reads `INFO server` (and `INFO cluster` through it) into the facts a sync needs. */
export function serverInfoFrom(info: string): TargetServerInfo {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  const valkey = field('valkey_version');
  const flavor = valkey !== undefined || field('server_name') === 'valkey' ? 'valkey' : 'redis';
  const version = valkey ?? field('redis_version') ?? '0.0.0';
  const [major = 0, minor = 0] = version.split('.').map(Number);
  // Redis says redis_mode, Valkey 9 server_mode.
  const mode = field('redis_mode') ?? field('server_mode');
  return { flavor, version, major, minor, cluster: mode === 'cluster' };
}

/**
 * The writer of a sync: one connection to a standalone Redis, or one per master of a Cluster
 * (`CLUSTER SLOTS`), commands pipelined and routed by slot, MOVED/ASK followed, failovers
 * followed, the source order kept.
 */
export class SyncTarget {
  readonly endpoint: ResolvedEndpoint;
  readonly server: TargetServerInfo;
  readonly #options: SyncTargetOptions;
  readonly #nodes = new Map<string, Node>();
  #slots: (Node | undefined)[] = [];
  #first: Node;
  #seq = 0;
  #inflightOps = 0;
  #inflightBytes = 0;
  #congested = false;
  /** Writes stopped: commands wait in `#held` while returned ones gather in `#returned`. */
  #barrier = false;
  #held: Op[] = [];
  #returned: Op[] = [];
  #refresh = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryDelay = 0;
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  #fatal: Error | undefined;
  /** Databases a Cluster target has (1, or Valkey 9's cluster-databases); standalone targets: all. */
  databases: number = Number.POSITIVE_INFINITY;
  /** Commands written again after a lost connection (they may have run twice). */
  resent = 0;
  /** Redirections followed (MOVED and ASK). */
  redirections = 0;

  private constructor(endpoint: ResolvedEndpoint, server: TargetServerInfo, first: Node, options: SyncTargetOptions) {
    this.endpoint = endpoint;
    this.server = server;
    this.#first = first;
    this.#options = options;
    this.#nodes.set(first.label, first);
    if (server.cluster) this.databases = 1;
  }

  /**
   * Connects (bounded by `connectTimeout`), reads what the server is, and for a Cluster maps its
   * slots to its masters.
   *
   * @throws {ReplicationError} `ERR_SYNC_TARGET` naming the address and the cause.
   */
  static async open(endpoint: ResolvedEndpoint, options: SyncTargetOptions): Promise<SyncTarget> {
    const conn = SyncTarget.#connection(endpoint, options, undefined, undefined);
    const node = new Node(endpoint.host, endpoint.port, endpoint.label, conn);
    try {
      await abortable(conn.connect(), options.signal);
      if (endpoint.db !== undefined && endpoint.db !== 0)
        throw new Error(`the target URL selects database ${endpoint.db}; use dbMap to choose target databases`);
      const info = text(await conn.send(['INFO', 'server']));
      const server = serverInfoFrom(info);
      const target = new SyncTarget(endpoint, server, node, options);
      if (server.cluster) {
        await target.#mapSlots(node);
        // Valkey 9 Clusters can have several databases (cluster-databases); others have one.
        try {
          const reply = (await conn.send(['CONFIG', 'GET', 'cluster-databases'])) as unknown[];
          const n = Number(text(reply?.[1]));
          if (Number.isSafeInteger(n) && n > 1) target.databases = n;
        } catch {
          // An ACL user without CONFIG: assume one database.
        }
      }
      return target;
    } catch (err) {
      conn.destroy();
      if (err instanceof ReplicationError) throw err;
      throw new ReplicationError(
        'ERR_SYNC_TARGET',
        `cannot use the target ${endpoint.label}: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
  }

  static #connection(
    endpoint: ResolvedEndpoint,
    options: SyncTargetOptions,
    host: string | undefined,
    port: number | undefined,
  ): RespConnection<unknown> {
    return new RespConnection<unknown>(
      connectionOptions(endpoint, {
        host,
        port,
        connectTimeout: options.connectTimeout,
        decoder: { strings: 'buffer', maps: 'array' },
        reconnect: exponentialBackoff({ initialDelay: 100, maxDelay: 2000 }),
        name: endpoint.name ?? 'redis-events-sync',
      }),
    );
  }

  /** True for a Cluster target. */
  get cluster(): boolean {
    return this.server.cluster;
  }

  /** The standalone server, or every master of the Cluster. */
  get nodes(): readonly TargetNode[] {
    return this.server.cluster ? [...new Set(this.#slots.filter((n): n is Node => n !== undefined))] : [this.#first];
  }

  /** Commands sent and not yet answered (including those held for a retry). */
  get inflight(): number {
    return this.#inflightOps;
  }

  get inflightBytes(): number {
    return this.#inflightBytes;
  }

  /** Above `maxInflightCommands` or `maxInflightBytes`: stop producing until `onDrain`. */
  get congested(): boolean {
    return this.#congested;
  }

  /** The node serving a slot (a Cluster), or the server. */
  nodeFor(slot: number): TargetNode | undefined {
    return this.server.cluster ? this.#slots[slot] : this.#first;
  }

  /**
   * Queues a command: `slot` routes it on a Cluster (-1 for a standalone target or with `node`).
   * `done` gets the reply, or the error that could not be retried.
   */
  write(args: TargetArg[], db: number, slot: number, bytes: number, done: WriteDone, node?: TargetNode): void {
    this.#enqueue(args, undefined, db, slot, bytes, done, node as Node | undefined);
  }

  /**
   * Queues a transaction: the commands inside MULTI ... EXEC on the node of `slot`, atomic, and
   * redirected or retried as a whole. `done` gets EXEC's reply (one reply per command).
   */
  writeTransaction(commands: TargetArg[][], db: number, slot: number, bytes: number, done: WriteDone): void {
    this.#enqueue(['EXEC'], commands, db, slot, bytes, done, undefined);
  }

  #enqueue(
    args: TargetArg[],
    tx: TargetArg[][] | undefined,
    db: number,
    slot: number,
    bytes: number,
    done: WriteDone,
    node: Node | undefined,
  ): void {
    if (this.#fatal) {
      done(this.#fatal, undefined);
      return;
    }
    const op: Op = {
      args,
      tx,
      db,
      slot,
      node,
      bytes,
      seq: ++this.#seq,
      asking: undefined,
      attempts: 0,
      firstFailure: 0,
      done,
    };
    this.#inflightOps++;
    this.#inflightBytes += bytes;
    if (
      !this.#congested &&
      (this.#inflightOps >= this.#options.maxInflightCommands || this.#inflightBytes >= this.#options.maxInflightBytes)
    )
      this.#congested = true;
    if (this.#barrier) this.#held.push(op);
    else this.#dispatch(op);
  }

  /** Resolves when nothing is in flight any more. */
  idle(): Promise<void> {
    if (this.#inflightOps === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Closes every connection; commands still in flight fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const fatal = new ReplicationError('ERR_SYNC_CLOSE', 'the target was closed with this command in flight');
    this.#fatal ??= fatal;
    for (const op of [...this.#held, ...this.#returned]) this.#settle(op, fatal, undefined);
    this.#held = [];
    this.#returned = [];
    await Promise.all(
      [...this.#nodes.values()].map((n) => n.conn.close({ timeout: 1000 }).catch(() => n.conn.destroy())),
    );
  }

  // ------------------------------------------------------------------ routing and sending

  #route(op: Op): Node | undefined {
    if (op.asking) return op.asking as Node;
    if (op.node) return op.node as Node;
    if (!this.server.cluster || op.slot < 0) return this.#first;
    return this.#slots[op.slot];
  }

  #dispatch(op: Op): void {
    const node = this.#route(op);
    if (node === undefined || node.retired) {
      // No master serves this slot right now (a failover in progress): retry after a refresh.
      this.#returnOp(op, `no master serves slot ${op.slot}`, true);
      return;
    }
    if (node.db !== op.db) {
      node.db = op.db;
      node.conn.send(['SELECT', op.db]).catch((err: unknown) => {
        // A failed SELECT means every later command would land in the wrong database.
        if (!isLost(err))
          this.#fail(
            new ReplicationError('ERR_SYNC_TARGET', `SELECT ${op.db} failed on ${node.label}: ${describe(err)}`, {
              cause: err,
            }),
          );
      });
    }
    node.ensureConnected();
    if (op.tx) {
      this.#dispatchTx(node, op, op.tx);
      return;
    }
    const asking = op.asking !== undefined;
    if (asking) node.conn.send(['ASKING']).catch(() => {});
    op.asking = undefined;
    node.inflight++;
    node.conn.send(op.args).then(
      (reply) => {
        node.inflight--;
        this.#settle(op, undefined, reply);
        this.#checkBarrier();
      },
      (err: unknown) => {
        node.inflight--;
        this.#failed(node, op, err);
        this.#checkBarrier();
      },
    );
  }

  /** MULTI, the commands, EXEC: a redirection or a refusal of any command returns the whole transaction. */
  #dispatchTx(node: Node, op: Op, commands: TargetArg[][]): void {
    op.asking = undefined;
    node.inflight++;
    const conn = node.conn;
    const queued: Promise<unknown>[] = [conn.send(['MULTI'])];
    for (const command of commands) queued.push(conn.send(command));
    const exec = conn.send(['EXEC']);
    // Handled below once the queued replies are in; this keeps a rejection before then from counting as unhandled.
    exec.catch(() => {});
    void Promise.allSettled(queued).then((results) =>
      exec.then(
        (reply) => {
          node.inflight--;
          this.#settle(op, undefined, reply);
          this.#checkBarrier();
        },
        (err: unknown) => {
          node.inflight--;
          // EXECABORT: the reason is the first refused command (MOVED, ASK, TRYAGAIN, or a real error).
          const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason;
          const cause = first ?? err;
          if (cause instanceof RespError && cause.code === 'ERR_RESP_REPLY') {
            const prefix = (cause as ReplyError).prefix;
            if (prefix === 'MOVED' || prefix === 'ASK' || (prefix !== undefined && TRANSIENT.has(prefix))) {
              // During a slot migration a transaction cannot follow ASK: it waits for the move to end.
              this.redirections++;
              this.#retryDelay = Math.max(this.#retryDelay, prefix === 'MOVED' ? 0 : 100);
              this.#returnOp(op, `${node.label}: ${cause.message}`, prefix !== 'ASK' && prefix !== 'TRYAGAIN');
              this.#checkBarrier();
              return;
            }
          }
          this.#failed(node, op, cause);
          this.#checkBarrier();
        },
      ),
    );
  }

  #failed(node: Node, op: Op, err: unknown): void {
    if (this.#closed) {
      this.#settle(op, err as Error, undefined);
      return;
    }
    if (err instanceof RespError && err.code === 'ERR_RESP_REPLY') {
      const reply = err as ReplyError;
      const prefix = reply.prefix;
      if ((prefix === 'MOVED' || prefix === 'ASK') && this.server.cluster) {
        const [, slotText, address] = reply.message.split(' ');
        const target = address ? this.#nodeAt(address) : undefined;
        this.redirections++;
        if (target === undefined) {
          this.#returnOp(op, reply.message, true);
          return;
        }
        if (prefix === 'MOVED') {
          const slot = Number(slotText);
          if (slot >= 0 && slot < CLUSTER_SLOTS) this.#slots[slot] = target;
          this.#refresh = true; // one MOVED often means more slots moved
        } else op.asking = target;
        this.#returnOp(op, reply.message, false);
        return;
      }
      if (prefix !== undefined && TRANSIENT.has(prefix)) {
        this.#returnOp(op, `${node.label}: ${reply.message}`, prefix === 'READONLY' || prefix === 'CLUSTERDOWN');
        return;
      }
      this.#settle(op, err as Error, undefined);
      return;
    }
    if (isLost(err)) {
      this.resent++;
      this.#returnOp(op, `${node.label}: ${describe(err)}`, this.server.cluster);
      return;
    }
    this.#settle(op, err instanceof Error ? err : new Error(String(err)), undefined);
  }

  /** A command to send again once everything in flight has answered. */
  #returnOp(op: Op, reason: string, refresh: boolean): void {
    const now = Date.now();
    if (op.attempts++ === 0) op.firstFailure = now;
    if (now - op.firstFailure > this.#options.retryTimeout) {
      this.#settle(
        op,
        new ReplicationError(
          'ERR_SYNC_TARGET',
          `a write to the target kept failing for ${this.#options.retryTimeout} ms: ${reason}`,
        ),
        undefined,
      );
      return;
    }
    if (!this.#barrier) this.#options.onRetry?.(reason);
    this.#barrier = true;
    if (refresh) this.#refresh = true;
    if (!op.asking) this.#retryDelay = Math.max(this.#retryDelay, refresh || reason.includes('TRYAGAIN') ? 100 : 0);
    this.#returned.push(op);
  }

  #checkBarrier(): void {
    if (!this.#barrier || this.#retryTimer !== undefined) return;
    for (const node of this.#nodes.values()) if (node.inflight > 0) return;
    const delay = this.#retryDelay;
    this.#retryDelay = 0;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#release();
    }, delay);
  }

  async #release(): Promise<void> {
    if (this.#closed) return;
    if (this.#refresh && this.server.cluster) {
      this.#refresh = false;
      try {
        await this.#mapSlots(undefined);
      } catch (err) {
        this.#options.onRetry?.(`cannot read the cluster's slots: ${describe(err)}`);
        this.#retryDelay = 500;
        this.#checkBarrier();
        return;
      }
    }
    const ops = this.#returned.sort((a, b) => a.seq - b.seq);
    const held = this.#held;
    this.#returned = [];
    this.#held = [];
    this.#barrier = false;
    for (let i = 0; i < ops.length; i++) {
      if (this.#barrier) {
        // A new failure while sending: the rest waits again, in order.
        this.#held.push(...ops.slice(i), ...held);
        return;
      }
      this.#dispatch(ops[i] as Op);
    }
    for (let i = 0; i < held.length; i++) {
      if (this.#barrier) {
        this.#held.push(...held.slice(i));
        return;
      }
      this.#dispatch(held[i] as Op);
    }
  }

  #settle(op: Op, err: Error | undefined, reply: unknown): void {
    this.#inflightOps--;
    this.#inflightBytes -= op.bytes;
    try {
      op.done(err, reply);
    } finally {
      if (
        this.#congested &&
        this.#inflightOps <= this.#options.maxInflightCommands / 2 &&
        this.#inflightBytes <= this.#options.maxInflightBytes / 2
      ) {
        this.#congested = false;
        this.#options.onDrain?.();
      }
      if (this.#inflightOps === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  #fail(err: Error): void {
    if (this.#fatal) return;
    this.#fatal = err;
    for (const op of [...this.#held, ...this.#returned]) this.#settle(op, err, undefined);
    this.#held = [];
    this.#returned = [];
  }

  // ------------------------------------------------------------------ cluster topology

  #nodeAt(address: string): Node | undefined {
    const at = address.lastIndexOf(':');
    if (at < 0) return undefined;
    let host = address.slice(0, at);
    const port = Number(address.slice(at + 1).split('@')[0]);
    if (host === '') host = this.endpoint.host;
    return this.#node(host, port);
  }

  #node(host: string, port: number): Node {
    const label = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let node = this.#nodes.get(label);
    if (node && !node.retired) return node;
    const conn = SyncTarget.#connection(this.endpoint, this.#options, host, port);
    node = new Node(host, port, label, conn);
    this.#nodes.set(label, node);
    return node;
  }

  async #mapSlots(via: Node | undefined): Promise<void> {
    let masters: ClusterMaster[] | undefined;
    let lastError: unknown;
    const candidates = via ? [via] : [this.#first, ...this.#nodes.values()].filter((n) => !n.retired);
    for (const node of new Set(candidates)) {
      try {
        masters = parseClusterSlots(
          await node.conn.send(['CLUSTER', 'SLOTS'], { timeout: this.#options.connectTimeout }),
          node.host,
        );
        if (masters.length > 0) break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!masters || masters.length === 0)
      throw new Error(`no node answered CLUSTER SLOTS with a slot map${lastError ? `: ${describe(lastError)}` : ''}`);
    const slots: (Node | undefined)[] = new Array(CLUSTER_SLOTS);
    const serving = new Set<Node>();
    for (const master of masters) {
      const node = this.#node(master.host, master.port);
      serving.add(node);
      for (const [from, to] of master.ranges) for (let s = from; s <= to; s++) slots[s] = node;
    }
    this.#slots = slots;
    // Nodes that serve nothing any more are closed once their last reply is in.
    for (const node of this.#nodes.values()) {
      if (serving.has(node) || node === this.#first || node.retired) continue;
      if (node.inflight === 0) {
        node.retired = true;
        this.#nodes.delete(node.label);
        void node.conn.close({ timeout: 1000 }).catch(() => node.conn.destroy());
      }
    }
  }
}

function isLost(err: unknown): boolean {
  return err instanceof RespError && LOST.has(err.code);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
