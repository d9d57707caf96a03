import { Cluster, type ClusterOptions } from 'ioredis';
import { findServer } from './binaries.ts';
import { TestkitError } from './errors.ts';
import { freePort } from './ports.ts';
import type { ConnectionOptions } from './server.ts';
import { type SpawnedRedis, type SpawnRedisOptions, spawnRedis } from './spawned.ts';
import { type WaitOptions, waitFor, waitOptions } from './wait.ts';

/** Options of {@link startCluster}: the spawn options apply to every node. */
export interface RedisClusterOptions extends Omit<SpawnRedisOptions, 'port' | 'replicaOf'> {
  /** Masters sharing the 16384 slots. Default 3 (the minimum Redis accepts for failover). */
  readonly masters?: number | undefined;
  /** Replicas per master. Default 0. */
  readonly replicasPerMaster?: number | undefined;
  /** `cluster-node-timeout` in ms. Default 2000, short so that failover tests are quick. */
  readonly nodeTimeoutMs?: number | undefined;
}

const SLOTS = 16384;

interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  master: string;
  slots: string[];
}

function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const [id = '', address = '', flags = '', master = '', , , , , ...slots] = line.trim().split(' ');
      // address is ip:port@cport[,hostname]
      const port = Number(/:(\d+)@/.exec(address)?.[1] ?? 0);
      return { id, port, flags: flags.split(','), master, slots };
    });
}

/**
 * A Redis Cluster of spawned nodes: slots assigned, every node met, `cluster_state:ok`
 * everywhere. Slots can be moved between masters while clients work.
 *
 * @example
 * ```ts
 * await using cluster = await startCluster({ masters: 3 });
 * const client = cluster.createClient();
 * await client.set('k', 'v');
 * ```
 */
export class RedisCluster implements AsyncDisposable {
  /** Every node: the masters first, then the replicas. */
  readonly nodes: readonly SpawnedRedis[];
  readonly #clients = new Set<Cluster>();
  readonly #masterCount: number;

  constructor(nodes: readonly SpawnedRedis[], masterCount: number) {
    this.nodes = nodes;
    this.#masterCount = masterCount;
  }

  /** The nodes that were started as masters (roles change after a failover; see {@link roles}). */
  get masters(): readonly SpawnedRedis[] {
    return this.nodes.slice(0, this.#masterCount);
  }

  /** The nodes that were started as replicas. */
  get replicas(): readonly SpawnedRedis[] {
    return this.nodes.slice(this.#masterCount);
  }

  /** `{ host, port }` of every node, for a cluster client. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: n.host, port: n.port }));
  }

  /** Connection options shared by every node (password, TLS). */
  nodeConnectionOptions(): Omit<ConnectionOptions, 'host' | 'port'> {
    const { host: _h, port: _p, ...rest } = this.nodes[0]?.connectionOptions() ?? { host: '', port: 0 };
    return rest;
  }

  /** A new ioredis Cluster client, closed by {@link stop}. */
  createClient(options: ClusterOptions = {}): Cluster {
    const client = new Cluster(this.startupNodes, {
      ...options,
      redisOptions: { ...this.nodeConnectionOptions(), ...options.redisOptions },
    } as never); // see newRedis() for why the cast
    this.#clients.add(client);
    client.once('end', () => this.#clients.delete(client));
    return client;
  }

  /** The slot of a key, as the server computes it (hash tags included). */
  async keySlot(key: string): Promise<number> {
    return Number(await this.#any().command('CLUSTER', 'KEYSLOT', key));
  }

  /** The node that currently owns a slot. */
  async ownerOf(slot: number): Promise<SpawnedRedis> {
    const lines = parseNodes((await this.#any().command('CLUSTER', 'NODES')) as string);
    for (const line of lines) {
      if (!line.flags.includes('master') || line.flags.includes('fail')) continue;
      for (const range of line.slots) {
        if (range.startsWith('[')) continue; // importing/migrating markers
        const [from, to = from] = range.split('-').map(Number);
        if (from !== undefined && to !== undefined && slot >= from && slot <= to) return this.#byPort(line.port);
      }
    }
    throw new TestkitError('ERR_TESTKIT_ARGUMENT', `no master owns slot ${slot}`);
  }

  /** Node id of a node (`CLUSTER MYID`). */
  async nodeId(node: SpawnedRedis): Promise<string> {
    return (await node.command('CLUSTER', 'MYID')) as string;
  }

  /**
   * Moves one slot to another master the way redis-cli does: IMPORTING and MIGRATING marks,
   * MIGRATE of every key in batches, then SETSLOT NODE everywhere. Clients see ASK and MOVED
   * redirections while it runs.
   */
  async moveSlot(slot: number, target: SpawnedRedis): Promise<void> {
    const source = await this.ownerOf(slot);
    if (source === target) return;
    const sourceId = await this.nodeId(source);
    const targetId = await this.nodeId(target);
    await target.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
    await source.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
    const auth = target.password ? ['AUTH', target.password] : [];
    for (;;) {
      const keys = (await source.command('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await source.command('MIGRATE', target.host, target.port, '', 0, 10_000, ...auth, 'KEYS', ...keys);
    }
    for (const node of [target, source, ...this.#currentMasters(source, target)]) {
      await node.command('CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
    }
    await waitFor(`every node to agree that slot ${slot} moved`, async () => {
      for (const node of this.nodes) {
        if (node.pid === undefined) continue;
        const owner = parseNodes((await node.command('CLUSTER', 'NODES')) as string).find((l) =>
          l.slots.some((r) => {
            const [a, b = a] = r.split('-').map(Number);
            return a !== undefined && b !== undefined && slot >= a && slot <= b;
          }),
        );
        if (owner?.id !== targetId) return false;
      }
      return true;
    });
  }

  /** Current role of each node, read from `CLUSTER NODES`. */
  async roles(): Promise<Map<SpawnedRedis, 'master' | 'replica'>> {
    const lines = parseNodes((await this.#any().command('CLUSTER', 'NODES')) as string);
    const out = new Map<SpawnedRedis, 'master' | 'replica'>();
    for (const line of lines) out.set(this.#byPort(line.port), line.flags.includes('master') ? 'master' : 'replica');
    return out;
  }

  /**
   * Waits until every running node reports `cluster_state:ok` and knows every other node: at
   * most `timeoutMs` (30 s by default; a number, or `{ timeoutMs, signal }`).
   */
  async waitForState(options?: number | WaitOptions | undefined): Promise<void> {
    const { timeoutMs, signal } = waitOptions(options, 30_000);
    await waitFor(
      'cluster_state:ok on every node',
      async () => {
        for (const node of this.nodes) {
          if (node.pid === undefined) continue;
          const state = parseInfoLine((await node.command('CLUSTER', 'INFO')) as string, 'cluster_state');
          if (state !== 'ok') return false;
          const known = parseNodes((await node.command('CLUSTER', 'NODES')) as string);
          if (known.length !== this.nodes.length || known.some((l) => l.flags.includes('handshake'))) return false;
        }
        return true;
      },
      timeoutMs,
      50,
      signal,
    );
  }

  #any(): SpawnedRedis {
    const node = this.nodes.find((n) => n.pid !== undefined);
    if (!node) throw new TestkitError('ERR_TESTKIT_UNSUPPORTED', 'no cluster node is running');
    return node;
  }

  #byPort(port: number): SpawnedRedis {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new TestkitError('ERR_TESTKIT_ARGUMENT', `no node of this cluster listens on port ${port}`);
    return node;
  }

  #currentMasters(...except: SpawnedRedis[]): SpawnedRedis[] {
    return this.masters.filter((m) => !except.includes(m) && m.pid !== undefined);
  }

  /** Closes the clients and stops every node. */
  async stop(): Promise<void> {
    for (const client of this.#clients) client.disconnect();
    this.#clients.clear();
    await Promise.all(this.nodes.map((n) => n.stop()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

function parseInfoLine(text: string, field: string): string | undefined {
  const line = text.split('\r\n').find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1);
}

/**
 * Spawns a Redis Cluster: `masters` nodes sharing the slots evenly, `replicasPerMaster`
 * replicas each, and waits until the cluster is healthy on every node.
 *
 * @example
 * ```ts
 * await using cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
 * ```
 */
export async function startCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const { masters = 3, replicasPerMaster = 0, nodeTimeoutMs = 2000, ...spawnOptions } = options;
  const { signal } = options;
  if (!Number.isInteger(masters) || masters < 1 || !Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) {
    throw new TestkitError(
      'ERR_TESTKIT_ARGUMENT',
      'startCluster() needs masters >= 1 and replicasPerMaster >= 0 (integers)',
    );
  }
  const binary =
    typeof spawnOptions.binary === 'object'
      ? spawnOptions.binary
      : spawnOptions.binary
        ? undefined
        : await findServer();
  const nodes: SpawnedRedis[] = [];
  try {
    const total = masters * (1 + replicasPerMaster);
    for (let i = 0; i < total; i++) {
      nodes.push(
        await spawnRedis({
          ...spawnOptions,
          ...(binary ? { binary } : {}),
          config: {
            'repl-ping-replica-period': 1,
            ...spawnOptions.config,
            'cluster-enabled': 'yes',
            'cluster-config-file': 'nodes.conf',
            'cluster-node-timeout': nodeTimeoutMs,
            'cluster-port': await freePort(),
            ...(spawnOptions.password ? { masterauth: spawnOptions.password } : {}),
          },
        }),
      );
    }
    const cluster = new RedisCluster(nodes, masters);
    const per = Math.floor(SLOTS / masters);
    for (let m = 0; m < masters; m++) {
      const from = m * per;
      const to = m === masters - 1 ? SLOTS - 1 : from + per - 1;
      await nodes[m]?.command('CLUSTER', 'ADDSLOTSRANGE', from, to);
    }
    const first = nodes[0] as SpawnedRedis;
    for (const node of nodes.slice(1)) {
      const bus = Number(((await node.command('CONFIG', 'GET', 'cluster-port')) as string[])[1]);
      await first.command('CLUSTER', 'MEET', node.host, node.port, bus);
    }
    await waitFor(
      'every node to know every other node',
      async () => {
        for (const node of nodes) {
          const known = parseNodes((await node.command('CLUSTER', 'NODES')) as string);
          if (
            known.length !== nodes.length ||
            known.some((l) => l.flags.includes('handshake') || l.flags.includes('noaddr'))
          )
            return false;
        }
        return true;
      },
      20_000,
      50,
      signal,
    );
    for (let r = masters; r < total; r++) {
      const master = nodes[(r - masters) % masters] as SpawnedRedis;
      const replica = nodes[r] as SpawnedRedis;
      await replica.command('CLUSTER', 'REPLICATE', await cluster.nodeId(master));
    }
    await cluster.waitForState({ signal });
    const replicaCount = total - masters;
    // CLUSTER SLOTS (what cluster clients read) lists a replica only once gossip has carried a
    // non-zero replication offset for it; the short ping period above makes that quick.
    await waitFor(
      'every node to list every replica in CLUSTER SLOTS, and replica links up',
      async () => {
        for (const node of nodes) {
          const slots = (await node.command('CLUSTER', 'SLOTS')) as unknown[][];
          if (slots.reduce((n, range) => n + range.length - 3, 0) !== replicaCount) return false;
        }
        for (const replica of cluster.replicas) {
          if ((await replica.info('replication')).master_link_status !== 'up') return false;
        }
        return true;
      },
      20_000,
      50,
      signal,
    );
    return cluster;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
}
