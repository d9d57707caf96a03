// The slot map of a Redis Cluster, read with CLUSTER SLOTS, and one command connection per node
// (for PUBLISH, SPUBLISH and PUBSUB). Subscriber connections are not here: each subscription
// owns its own.
import { ReplyError, RespConnection, RespError } from '@redis-events/resp';
import { PubSubError } from './errors.ts';
import { SLOTS } from './key-slot.ts';
import { nodeConnection, provenConnection, type ResolvedOptions } from './options.ts';

/** A node of the cluster. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** `host:port`. */
  readonly key: string;
}

function node(host: string, port: number): ClusterNode {
  return { host, port, key: `${host}:${port}` };
}

/** Reads one node entry of CLUSTER SLOTS: `[host, port, id, ...]`. */
function readNode(entry: unknown, askedHost: string): ClusterNode | undefined {
  if (!Array.isArray(entry) || entry.length < 2) return undefined;
  const [rawHost, port] = entry as [unknown, unknown];
  const host = Buffer.isBuffer(rawHost) ? rawHost.toString() : rawHost;
  if (typeof host !== 'string' || typeof port !== 'number' || !Number.isInteger(port) || port <= 0) return undefined;
  if (host === '?') return undefined; // unknown endpoint
  return node(host === '' ? askedHost : host, port);
}

/** Reads a CLUSTER SLOTS reply: the master of each slot, the masters, and every node. */
function parseSlots(
  reply: unknown,
  askedHost: string,
): { slots: (ClusterNode | undefined)[]; masters: ClusterNode[]; nodes: ClusterNode[] } {
  if (!Array.isArray(reply)) throw new PubSubError('ERR_PUBSUB_CLUSTER', 'CLUSTER SLOTS did not answer an array');
  const slots: (ClusterNode | undefined)[] = new Array(SLOTS);
  const byKey = new Map<string, ClusterNode>();
  const masters = new Map<string, ClusterNode>();
  const intern = (n: ClusterNode) => {
    const known = byKey.get(n.key);
    if (known) return known;
    byKey.set(n.key, n);
    return n;
  };
  for (const range of reply) {
    if (!Array.isArray(range) || range.length < 3) continue;
    const [from, to] = range as [unknown, unknown];
    if (typeof from !== 'number' || typeof to !== 'number' || from < 0 || to >= SLOTS || from > to) continue;
    const master = readNode(range[2], askedHost);
    if (master === undefined) continue;
    const owner = intern(master);
    masters.set(owner.key, owner);
    for (let s = from; s <= to; s++) slots[s] = owner;
    for (const replica of range.slice(3)) {
      const r = readNode(replica, askedHost);
      if (r) intern(r);
    }
  }
  if (masters.size === 0)
    throw new PubSubError('ERR_PUBSUB_CLUSTER', 'CLUSTER SLOTS listed no master: is this node in a cluster?');
  return { slots, masters: [...masters.values()], nodes: [...byKey.values()] };
}

/**
 * The cluster's slot map and command connections. Refreshes are single-flight; redirections
 * update the map at once.
 */
export class ClusterTopology {
  private readonly options: ResolvedOptions;
  private readonly seeds: readonly ClusterNode[];
  /** Master of each slot. */
  private slots: (ClusterNode | undefined)[] = new Array(SLOTS);
  private mastersList: ClusterNode[] = [];
  private allNodes: ClusterNode[] = [];
  private connections = new Map<string, RespConnection<unknown>>();
  private refreshing: Promise<void> | undefined;
  private loaded = false;
  private closed = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private listeners = new Set<() => void>();

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.seeds = (options.cluster?.seeds ?? []).map((s) => node(s.host, s.port));
    const every = options.cluster?.refreshInterval ?? 0;
    if (every > 0) {
      this.timer = setInterval(() => {
        if (this.loaded) this.refresh().catch(() => {}); // the next use reports a persistent failure
      }, every);
      this.timer.unref();
    }
  }

  /** Called after each refresh that changed the slot map. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Masters that own slots, as of the last refresh. */
  get masters(): readonly ClusterNode[] {
    return this.mastersList;
  }

  /** Every node of the last refresh: masters and replicas. */
  get nodes(): readonly ClusterNode[] {
    return this.allNodes;
  }

  /** Loads the slot map once. */
  async ready(): Promise<void> {
    if (!this.loaded) await this.refresh();
  }

  /** The master of a slot (loading the map first if needed). */
  async ownerOf(slot: number): Promise<ClusterNode> {
    await this.ready();
    let owner = this.slots[slot];
    if (owner === undefined) {
      await this.refresh();
      owner = this.slots[slot];
    }
    if (owner === undefined) {
      throw new PubSubError(
        'ERR_PUBSUB_CLUSTER',
        `no node serves slot ${slot}: the cluster is not fully covered (check CLUSTER INFO cluster_state)`,
      );
    }
    return owner;
  }

  /** The master of a slot as last known, without loading. */
  knownOwner(slot: number): ClusterNode | undefined {
    return this.slots[slot];
  }

  /** A redirection says where a slot lives now. */
  noteRedirect(slot: number, host: string, port: number): ClusterNode {
    const owner = this.mastersList.find((n) => n.host === host && n.port === port) ?? node(host, port);
    this.slots[slot] = owner;
    return owner;
  }

  /** Re-reads the slot map from the first node that answers (known nodes, then the seeds). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.reject(this.#closedError());
    this.refreshing ??= this.#refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  async #refresh(): Promise<void> {
    const candidates = new Map<string, ClusterNode>();
    for (const n of [...this.mastersList, ...this.allNodes, ...this.seeds]) candidates.set(n.key, n);
    const failures: string[] = [];
    for (const candidate of candidates.values()) {
      if (this.closed) throw this.#closedError();
      try {
        // Bounded like a connection: a frozen node must not hold up the map (and a failover) for
        // a whole command timeout when another node can answer.
        const reply = await this.command(candidate, ['CLUSTER', 'SLOTS'], this.options.connection.connectTimeout);
        this.#apply(reply, candidate.host);
        return;
      } catch (err) {
        failures.push(`${candidate.key}: ${(err as Error).message}`);
      }
    }
    throw new PubSubError(
      'ERR_PUBSUB_CLUSTER',
      `no cluster node answered CLUSTER SLOTS (${failures.join('; ')}); check cluster.nodes and that the cluster is up`,
    );
  }

  #apply(reply: unknown, askedHost: string): void {
    const { slots, masters, nodes } = parseSlots(reply, askedHost);
    let changed = !this.loaded;
    for (let s = 0; s < SLOTS && !changed; s++) if (slots[s]?.key !== this.slots[s]?.key) changed = true;
    this.slots = slots;
    this.mastersList = masters;
    this.allNodes = nodes;
    this.loaded = true;
    // Command connections to nodes that left the cluster are closed.
    for (const [key, connection] of this.connections) {
      if (!nodes.some((n) => n.key === key) && !this.seeds.some((s) => s.key === key)) {
        this.connections.delete(key);
        connection.close().catch(() => {});
      }
    }
    if (changed) for (const listener of this.listeners) listener();
  }

  /**
   * The master of a slot according to one node (its own CLUSTER SLOTS), which is authoritative
   * about the slots that node serves, while the shared map may lag during a migration.
   */
  async ownerAccordingTo(node: ClusterNode, slot: number): Promise<ClusterNode | undefined> {
    return parseSlots(await this.command(node, ['CLUSTER', 'SLOTS']), node.host).slots[slot];
  }

  /** The command connection of a node (created on first use, again after it was lost). */
  connection(target: ClusterNode): RespConnection<unknown> {
    let connection = this.connections.get(target.key);
    if (connection === undefined || connection.status === 'closed') {
      connection = new RespConnection<unknown>(
        nodeConnection(this.options, target, {
          onConnect: provenConnection({}).onConnect,
          // A lost node connection is not retried: the next command opens a new one, or the
          // caller asks the topology for another node.
          reconnect: false,
          commandTimeout: this.options.commandTimeout || undefined,
        }),
      );
      this.connections.set(target.key, connection);
    }
    return connection;
  }

  /** Sends a command to a node (connecting first when needed). */
  async command<T = unknown>(
    target: ClusterNode,
    command: (string | number | Buffer)[],
    timeout?: number,
    signal?: AbortSignal,
  ): Promise<T> {
    if (this.closed) throw this.#closedError();
    const connection = this.connection(target);
    if (connection.status === 'idle') connection.connect().catch(() => {}); // the command below fails with it
    try {
      return await connection.send<T>(command, { ...(timeout ? { timeout } : {}), ...(signal ? { signal } : {}) });
    } catch (err) {
      if (connection.status === 'idle' && this.connections.get(target.key) === connection)
        this.connections.delete(target.key);
      if (err instanceof ReplyError || !(err instanceof RespError)) throw err;
      if (err.code === 'ERR_RESP_CONNECT' || err.code === 'ERR_RESP_HANDSHAKE') {
        connection.destroy();
        if (this.connections.get(target.key) === connection) this.connections.delete(target.key);
      }
      throw err;
    }
  }

  #closedError(): PubSubError {
    return new PubSubError('ERR_PUBSUB_CLOSED', 'the client is closed');
  }

  /** Closes every command connection, giving replies `timeout` ms (0: at once). */
  async close(timeout: number = this.options.closeTimeout): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.listeners.clear();
    const connections = [...this.connections.values()];
    this.connections.clear();
    if (timeout <= 0) for (const c of connections) c.destroy();
    else await Promise.allSettled(connections.map((c) => c.close({ timeout })));
  }
}
