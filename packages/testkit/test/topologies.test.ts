import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisCluster, startCluster } from '../src/cluster.ts';
import { type ReplicaSet, startReplicaSet } from '../src/replica-set.ts';

describe('startReplicaSet', () => {
  let set: ReplicaSet;
  beforeAll(async () => {
    set = await startReplicaSet({ replicas: 2 });
  });
  afterAll(() => set.stop());

  it('links every replica to the master and replicates writes', async () => {
    expect((await set.master.info('replication')).connected_slaves).toBe('2');
    const master = set.master.createClient();
    await master.set('replicated', 'yes');
    await set.waitForSync();
    for (const replica of set.replicas) {
      const info = await replica.info('replication');
      expect(info.role).toBe('slave');
      expect(info.master_port).toBe(String(set.master.port));
      expect(await replica.command('GET', 'replicated')).toBe('yes');
    }
  });

  it('survives a replica restart and catches up', async () => {
    const replica = set.replicas[0];
    if (!replica) throw new Error('no replica');
    await replica.restart();
    await set.master.createClient().set('after-restart', '1');
    await set.waitForSync();
    expect(await replica.command('GET', 'after-restart')).toBe('1');
  });

  it('fails over by hand: a promoted replica becomes master and the others follow it', async () => {
    const [first] = set.replicas;
    if (!first) throw new Error('no replica');
    const oldMaster = set.master;
    const promoted = await set.promote(first);
    expect(set.master).toBe(promoted);
    expect((await promoted.info('replication')).role).toBe('master');
    expect(set.replicas).toContain(oldMaster);
    await promoted.createClient().set('new-master', 'ok');
    await set.waitForSync();
    for (const replica of set.replicas) expect(await replica.command('GET', 'new-master')).toBe('ok');
  });
});

describe('startCluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  });
  afterAll(() => cluster.stop());

  it('assigns every slot to three masters, each with a replica', async () => {
    const slots = (await cluster.nodes[0]?.command('CLUSTER', 'SLOTS')) as [number, number, ...unknown[][]][];
    const covered = slots.reduce((n, [from, to]) => n + (to - from + 1), 0);
    expect(covered).toBe(16384);
    expect(slots).toHaveLength(3);
    for (const range of slots) expect(range.length).toBe(4); // start, end, master, one replica
    const roles = [...(await cluster.roles()).values()];
    expect(roles.filter((r) => r === 'master')).toHaveLength(3);
    expect(roles.filter((r) => r === 'replica')).toHaveLength(3);
    for (const node of cluster.nodes)
      expect((await node.command('CLUSTER', 'INFO')) as string).toMatch(/cluster_state:ok/);
  });

  it('serves a cluster client across slots', async () => {
    const client = cluster.createClient();
    const keys = Array.from({ length: 64 }, (_, i) => `key:${i}`);
    for (const key of keys) await client.set(key, key);
    for (const key of keys) expect(await client.get(key)).toBe(key);
    const owners = new Set<number>();
    for (const key of keys) owners.add((await cluster.ownerOf(await cluster.keySlot(key))).port);
    expect(owners.size).toBe(3);
  });

  it('moves a slot with its keys to another master while a client keeps working', async () => {
    const client = cluster.createClient();
    const slot = await cluster.keySlot('{moving}');
    for (let i = 0; i < 250; i++) await client.set(`{moving}:${i}`, String(i));
    const source = await cluster.ownerOf(slot);
    const target = cluster.masters.find((m) => m !== source);
    if (!target) throw new Error('no other master');
    await cluster.moveSlot(slot, target);
    expect(await cluster.ownerOf(slot)).toBe(target);
    expect(await target.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(250);
    expect(await source.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(0);
    for (let i = 0; i < 250; i += 25) expect(await client.get(`{moving}:${i}`)).toBe(String(i));
  });
});
