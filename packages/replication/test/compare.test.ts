// compareRedis finds every kind of planted difference (missing, extra, type, value in each type,
// TTL), not more, in both directions; samples values; honours the filter and the database
// mapping; and lets a difference fixed between rounds go.

import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compareRedis, type KeyDifference, RedisSync, ReplicationError } from '../src/index.ts';
import { writeDataset } from './sync-dataset.ts';

function list(differences: readonly KeyDifference[]): string[] {
  return differences.map((d) => `${d.kind} db${d.db} ${d.key.toString('latin1')}`).sort();
}

describe('compareRedis', () => {
  let source: SpawnedRedis;
  let target: SpawnedRedis;
  let src: Redis;
  let dst: Redis;
  beforeAll(async () => {
    source = await spawnRedis();
    target = await spawnRedis();
    src = source.createClient();
    dst = target.createClient();
  });
  afterAll(async () => {
    await source?.stop();
    await target?.stop();
  });
  beforeEach(async () => {
    await source.flushAll();
    await target.flushAll();
    await writeDataset(src);
    await new RedisSync({ source: { rdb: await saved(source) }, target: target.url }).run();
  });

  async function saved(server: SpawnedRedis): Promise<string> {
    await server.command('SAVE');
    return `${server.dir}/dump.rdb`;
  }

  it('finds nothing between two equal servers, and counts the keys on both sides', async () => {
    const report = await compareRedis({ source: source.url, target: target.url });
    expect(report.differ).toBe(false);
    expect(report.differences).toEqual([]);
    expect(report.sourceKeys).toBe(41);
    expect(report.targetKeys).toBe(41);
    expect(report.valuesCompared).toBe(41);
  });

  it('finds each kind of planted difference, and only those', async () => {
    await dst.del('plain:1'); // missing
    await dst.set('only-on-target', 'x'); // extra
    await dst.del('plain:2');
    await dst.rpush('plain:2', 'now a list'); // type
    await dst.set('str', 'hellO'); // value: string
    await dst.setrange('big-string', 1_000_000, 'y'); // value: a large string, deep inside
    await dst.hset('hash', 'f2', 'other'); // value: small hash
    await dst.hset('big-hash', 'f1999', 'other'); // value: large hash (batches)
    await dst.srem('big-set', 'm7'); // value: set size
    await dst.srem('set', 'x');
    await dst.sadd('set', 'X'); // value: set member
    await dst.zadd('zset', 3, 'a'); // value: score
    await dst.lset('big-list', 2500, 'changed'); // value: list element
    await dst.xdel('stream', '50-0'); // value: stream entries
    await dst.xack('stream', 'g1', '4-0'); // value: pending entries
    await dst.persist('ttl'); // ttl: gone
    await dst.expire('hash-ttl', 99_999); // ttl: far apart
    await dst.select(1);
    await dst.set('db1:a', 'changed in db 1'); // a value in another database
    await dst.select(0);
    const report = await compareRedis({ source: source.url, target: target.url });
    expect(list(report.differences)).toEqual(
      [
        'missing db0 plain:1',
        'extra db0 only-on-target',
        'type db0 plain:2',
        'value db0 str',
        'value db0 big-string',
        'value db0 hash',
        'value db0 big-hash',
        'value db0 big-set',
        'value db0 set',
        'value db0 zset',
        'value db0 big-list',
        'value db0 stream',
        'ttl db0 ttl',
        'ttl db0 hash-ttl',
        'value db1 db1:a',
      ].sort(),
    );
    expect(report.counts).toEqual({ missing: 1, extra: 1, type: 1, value: 10, ttl: 2 });
    const byKey = new Map(report.differences.map((d) => [d.key.toString(), d.detail]));
    expect(byKey.get('big-string')).toMatch(/from offset 1000000/);
    expect(byKey.get('big-hash')).toMatch(/field "f1999": "value-1999" vs "other"/);
    expect(byKey.get('zset')).toMatch(/score 1 vs 3/);
    expect(byKey.get('big-list')).toMatch(/element 2500/);
    expect(byKey.get('stream')).toMatch(/entries/);
  });

  it('finds a pending-entry difference of a stream group on its own', async () => {
    await dst.xack('stream', 'g1', '4-0');
    const report = await compareRedis({ source: source.url, target: target.url });
    expect(report.differences.map((d) => d.detail)).toEqual([expect.stringMatching(/group|pending/)]);
  });

  it('with sample 0 compares existence, types and TTLs, but no values', async () => {
    await dst.set('str', 'different');
    await dst.del('plain:1');
    const report = await compareRedis({ source: source.url, target: target.url, sample: 0 });
    expect(list(report.differences)).toEqual(['missing db0 plain:1']);
    expect(report.valuesCompared).toBe(0);
  });

  it('compares what a filter and a database mapping select', async () => {
    await dst.set('str', 'different'); // not selected by the filter
    await dst.set('plain:3', 'different');
    await dst.select(1);
    await dst.set('db1:a', 'different'); // db 1 is left out
    await dst.select(0);
    const report = await compareRedis({
      source: source.url,
      target: target.url,
      filter: { prefixes: ['plain:'], dbs: [0] },
    });
    expect(list(report.differences)).toEqual(['value db0 plain:3']);
    // A sync into db 4 is compared against db 4.
    await dst.select(4);
    await dst.set('db1:a', 'in db 1');
    await dst.hset('db1:h', 'f', '1');
    await dst.select(0);
    const mapped = await compareRedis({
      source: source.url,
      target: target.url,
      filter: { dbs: [1] },
      dbMap: { 1: 4 },
    });
    expect(mapped.differences).toEqual([]);
  });

  it('lets go of a difference fixed before the last round', async () => {
    await dst.set('str', 'stale');
    setTimeout(() => void dst.set('str', 'hello'), 200);
    const report = await compareRedis({ source: source.url, target: target.url, rounds: 3, roundDelay: 400 });
    expect(report.differences).toEqual([]);
    expect(report.rounds).toBe(2);
  });

  it('fails with a typed error when a side cannot be reached', async () => {
    const err = (await compareRedis({ source: source.url, target: 'redis://127.0.0.1:1', connectTimeout: 1000 }).catch(
      (e: unknown) => e,
    )) as ReplicationError;
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err.code).toBe('ERR_SYNC_TARGET');
    await expect(compareRedis({ source: source.url, target: target.url, sample: 2 })).rejects.toThrow(/sample must be/);
  });
});
