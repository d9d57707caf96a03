// A 3-master Redis Cluster as the source and as the target of a sync. As source: one listener
// per master, a failover followed without a new snapshot (PSYNC on the promoted replica, which
// keeps the old replication ID), a slot migration (RESTORE-ASKING on one master, DEL on the
// other) that loses nothing. As target: commands routed by slot, cross-slot commands applied,
// MOVED and ASK followed while a slot moves under the writes. Each ends with a compare.
import { ClusterReplicaListener, type ClusterShard, RedisSync } from '@redis-events/replication';
import { type RedisCluster, type SpawnedRedis, spawnRedis, startCluster, waitFor } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, writeChanges, writeData } from './helpers.ts';

describe('a Cluster as the source', () => {
  let cluster: RedisCluster;
  let target: SpawnedRedis;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
    target = await spawnRedis();
  });
  afterAll(async () => {
    await cluster?.stop();
    await target?.stop();
  });

  it('follows every master through a slot migration and a failover, without a second snapshot', async () => {
    const client = cluster.createClient({
      redisOptions: { maxRetriesPerRequest: null } as never,
      scaleReads: 'master',
      maxRedirections: 1000,
      retryDelayOnMoved: 20,
      retryDelayOnTryAgain: 20,
    });
    client.on('error', () => {});
    await writeData(client, 'c:');
    const seed = cluster.masters[0] as SpawnedRedis;
    const sync = new RedisSync({ source: seed.url, target: target.url, progressInterval: 100 });
    const topology: string[] = [];
    sync.on('topology', (e) => topology.push(e.kind));
    const run = sync.run();
    run.catch(() => {});
    await sync.caughtUp({ timeoutMs: 60_000 });
    expect(sync.stats.fullSyncs).toBe(3);
    expect(await differences({ source: seed.url, target: target.url })).toEqual([]);

    // A slot with keys moves to another master while writes go on.
    const slot = await cluster.keySlot('{t7}');
    const owner = await cluster.ownerOf(slot);
    const other = cluster.masters.find((m) => m !== owner) as SpawnedRedis;
    let writing = true;
    const writer = (async () => {
      for (let round = 0; writing; round++) await writeChanges(client, 'c:', round);
    })();
    await cluster.moveSlot(slot, other);
    // A master fails: its replica takes over, and the sync follows it.
    const victim = cluster.masters.find((m) => m !== other && m !== owner) ?? (owner as SpawnedRedis);
    await victim.kill();
    await waitFor('a replica to take over', async () => topology.includes('failover'), 30_000, 200);
    writing = false;
    await writer;
    const alive = cluster.nodes.find((n) => n !== victim && n.pid !== undefined) as SpawnedRedis;
    await sync.caughtUp({ timeoutMs: 60_000 });
    expect(sync.stats.fullSyncs).toBe(3); // the promoted replica continued the stream
    expect(await differences({ source: alive.url, target: target.url })).toEqual([]);
    await sync.close();
  });
});

describe('a Cluster as the target', () => {
  let cluster: RedisCluster;
  let source: SpawnedRedis;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
    source = await spawnRedis();
  });
  afterAll(async () => {
    await cluster?.stop();
    await source?.stop();
  });

  it('routes by slot, applies cross-slot commands, and follows MOVED and ASK while a slot moves', async () => {
    const client = source.createClient();
    await writeData(client, 's:');
    await client.set('plain:a', '1');
    const seed = cluster.masters[0] as SpawnedRedis;
    const sync = new RedisSync({ source: source.url, target: seed.url, progressInterval: 100 });
    const run = sync.run();
    run.catch(() => {});
    await sync.caughtUp({ timeoutMs: 60_000 });
    // Commands whose keys span slots: split (MSET, DEL) or fetched again (RENAME, SUNIONSTORE).
    await client.mset('x:1', 'a', 'x:2', 'b', 'x:3', 'c');
    await client.del('x:1', 'plain:a');
    await client.rename('x:2', 'y:2');
    await client.sadd('u:a', '1', '2');
    await client.sadd('u:b', '3');
    await client.sunionstore('u:all', 'u:a', 'u:b');
    await client.multi().set('tx:1', 'a').set('tx:2', 'b').exec(); // two slots: applied one by one
    let writing = true;
    const writer = (async () => {
      for (let round = 0; writing; round++) await writeChanges(client, 's:', round);
    })();
    const slot = await cluster.keySlot('{t3}');
    const owner = await cluster.ownerOf(slot);
    await cluster.moveSlot(slot, cluster.masters.find((m) => m !== owner) as SpawnedRedis);
    writing = false;
    await writer;
    // Writes to the moved slot after the move: the sync's stale slot map must be redirected.
    await writeChanges(client, 's:', 50_003);
    await sync.caughtUp({ timeoutMs: 60_000 });
    expect(sync.stats.target.redirections).toBeGreaterThan(0);
    expect(sync.stats.live.refetched).toBeGreaterThanOrEqual(2);
    expect(await differences({ source: source.url, target: seed.url })).toEqual([]);
    await sync.close();
  });

  it('refuses a source with keys in a database a Cluster does not have, unless mapped', async () => {
    const client = source.createClient();
    await client.select(3);
    await client.set('in-db-3', 'x');
    const seed = cluster.masters[0] as SpawnedRedis;
    const err = await new RedisSync({ source: source.url, target: seed.url }).run().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_SYNC_UNSUPPORTED', message: expect.stringMatching(/database 3/) });
    const mapped = new RedisSync({ source: source.url, target: seed.url, filter: { dbs: [3] }, dbMap: { 3: 0 } });
    void mapped.run().catch(() => {});
    await mapped.caughtUp({ timeoutMs: 60_000 });
    const target = cluster.createClient();
    expect(await target.get('in-db-3')).toBe('x');
    await mapped.close();
    await client.del('in-db-3');
  });
});

describe('a Cluster into a Cluster', () => {
  let from: RedisCluster;
  let to: RedisCluster;
  beforeAll(async () => {
    from = await startCluster({ masters: 3 });
    to = await startCluster({ masters: 3 });
  });
  afterAll(async () => {
    await from?.stop();
    await to?.stop();
  });

  it('copies and follows every master into the other cluster', async () => {
    const client = from.createClient();
    await writeData(client, 'cc:', 150);
    const source = from.masters[0] as SpawnedRedis;
    const target = to.masters[1] as SpawnedRedis;
    const sync = new RedisSync({ source: source.url, target: target.url });
    void sync.run().catch(() => {});
    await sync.caughtUp({ timeoutMs: 60_000 });
    for (let round = 0; round < 30; round++) await writeChanges(client, 'cc:', round);
    await sync.caughtUp({ timeoutMs: 60_000 });
    expect(await differences({ source: source.url, target: target.url })).toEqual([]);
    await sync.close();
  });
});

describe('ClusterReplicaListener', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('tags every event with its shard, and resumes every shard from a checkpoint without a snapshot', async () => {
    const client = cluster.createClient();
    const seed = cluster.masters[0] as SpawnedRedis;
    const listener = new ClusterReplicaListener({ url: seed.url, discardRdb: true });
    const seen = new Map<string, ClusterShard>();
    const written = ['{a}:1', '{b}:2', '{c}:3', '{d}:4', '{e}:5', '{f}:6'];
    const arrived = new Set<string>();
    const iterating = (async () => {
      for await (const { shard, event } of listener) {
        seen.set(shard.id, shard);
        if (event.kind === 'command' && event.name === 'SET') {
          const key = String(event.args[0]);
          // The key is in one of the shard's slots.
          const slot = await cluster.keySlot(key);
          expect(shard.ranges.some(([from, to]) => slot >= from && slot <= to)).toBe(true);
          arrived.add(key);
          if (arrived.size === written.length) break;
        }
      }
    })();
    await waitFor(
      'three shards streaming',
      () => listener.shards.length === 3 && listener.checkpoint.shards.length === 3,
    );
    for (const key of written) await client.set(key, 'v');
    await iterating;
    expect(seen.size).toBe(3);
    const checkpoint = listener.checkpoint;
    expect(checkpoint.shards).toHaveLength(3);

    await client.set('{a}:after', 'x');
    const resumed = new ClusterReplicaListener({ url: seed.url, checkpoint });
    const starts: string[] = [];
    let got = false;
    for await (const { event } of resumed) {
      if (event.kind === 'continued' || event.kind === 'full-sync-start') starts.push(event.kind);
      if (event.kind === 'command' && String(event.args[0]) === '{a}:after') got = true;
      if (got && starts.length === 3) break;
    }
    expect(starts).toEqual(['continued', 'continued', 'continued']);
  });
});
