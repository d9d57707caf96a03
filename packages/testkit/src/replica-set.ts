import { TestkitError } from './errors.ts';
import { type SpawnedRedis, type SpawnRedisOptions, spawnRedis } from './spawned.ts';
import { type WaitOptions, waitFor, waitOptions } from './wait.ts';

/** Options of {@link startReplicaSet}: the spawn options apply to every server. */
export interface ReplicaSetOptions extends Omit<SpawnRedisOptions, 'port' | 'replicaOf'> {
  /** How many replicas follow the master. Default 1. */
  readonly replicas?: number | undefined;
}

/**
 * A master and its replicas, all spawned, with the replication links up.
 *
 * @example
 * ```ts
 * await using set = await startReplicaSet({ replicas: 2 });
 * await set.master.createClient().set('k', 'v');
 * await set.waitForSync();
 * ```
 */
export class ReplicaSet implements AsyncDisposable {
  master: SpawnedRedis;
  readonly replicas: SpawnedRedis[];

  constructor(master: SpawnedRedis, replicas: SpawnedRedis[]) {
    this.master = master;
    this.replicas = replicas;
  }

  /** Every server, master first. */
  get servers(): SpawnedRedis[] {
    return [this.master, ...this.replicas];
  }

  /**
   * Waits until every replica has a live link and has processed the master's current offset: at
   * most `timeoutMs` per replica (20 s by default; a number, or `{ timeoutMs, signal }`).
   */
  async waitForSync(options?: number | WaitOptions | undefined): Promise<void> {
    const { timeoutMs, signal } = waitOptions(options, 20_000);
    const target = Number((await this.master.info('replication')).master_repl_offset ?? 0);
    for (const replica of this.replicas) {
      await waitFor(
        `replica on port ${replica.port} to reach offset ${target}`,
        async () => {
          const info = await replica.info('replication');
          return info.master_link_status === 'up' && Number(info.slave_repl_offset ?? -1) >= target;
        },
        timeoutMs,
        50,
        signal,
      );
    }
  }

  /**
   * Fails over by hand: `REPLICAOF NO ONE` on one replica, and the others (and the old master,
   * if `demoteOldMaster`) follow it. Returns the new master.
   */
  async promote(replica: SpawnedRedis, options: { demoteOldMaster?: boolean | undefined } = {}): Promise<SpawnedRedis> {
    const at = this.replicas.indexOf(replica);
    if (at < 0) throw new TestkitError('ERR_TESTKIT_ARGUMENT', 'promote() takes one of the replicas of this set');
    await replica.command('REPLICAOF', 'NO', 'ONE');
    const old = this.master;
    this.replicas.splice(at, 1);
    this.master = replica;
    if (options.demoteOldMaster ?? true) {
      if (old.pid !== undefined) this.replicas.push(old);
    }
    for (const r of this.replicas) await r.command('REPLICAOF', replica.host, String(replica.port));
    await this.waitForLinks();
    return replica;
  }

  /**
   * Waits until every replica reports `master_link_status:up` against the current master: at most
   * `timeoutMs` per replica (20 s by default; a number, or `{ timeoutMs, signal }`).
   */
  async waitForLinks(options?: number | WaitOptions | undefined): Promise<void> {
    const { timeoutMs, signal } = waitOptions(options, 20_000);
    for (const replica of this.replicas) {
      await waitFor(
        `replica on port ${replica.port} to link to its master`,
        async () => {
          const info = await replica.info('replication');
          return info.master_link_status === 'up' && info.master_port === String(this.master.port);
        },
        timeoutMs,
        50,
        signal,
      );
    }
  }

  /** Stops every server. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Spawns a master and `replicas` replicas of it and waits for every replication link.
 */
export async function startReplicaSet(options: ReplicaSetOptions = {}): Promise<ReplicaSet> {
  const { replicas: count = 1, ...spawnOptions } = options;
  const master = await spawnRedis(spawnOptions);
  const replicas: SpawnedRedis[] = [];
  try {
    for (let i = 0; i < count; i++)
      replicas.push(await spawnRedis({ ...spawnOptions, binary: master.binary, replicaOf: master }));
    const set = new ReplicaSet(master, replicas);
    await set.waitForLinks({ signal: options.signal });
    return set;
  } catch (err) {
    await Promise.all([master, ...replicas].map((s) => s.stop()));
    throw err;
  }
}
