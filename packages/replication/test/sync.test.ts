// RedisSync between real servers: snapshot and live phases, every filter (and commands whose
// keys are only partly kept), database mapping, the existing-key policies, resuming from a
// state file with PSYNC, an RDB file as source, and the failures a user meets (a target or a
// source that is not there, a state file of another sync, a close that cannot drain).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CompareOptions,
  compareRedis,
  RedisSync,
  type RedisSyncOptions,
  ReplicationError,
  type SyncState,
} from '../src/index.ts';
import { writeDataset, writeLive } from './sync-dataset.ts';

async function differences(options: CompareOptions): Promise<string[]> {
  const report = await compareRedis({ rounds: 3, roundDelay: 200, ...options });
  return report.differences.map((d) => `${d.kind} db${d.db} ${d.key.toString('latin1')}: ${d.detail}`);
}

const running: RedisSync[] = [];

/** Starts a sync, waits until it is live, and hands it back with its run() promise. */
async function started(options: RedisSyncOptions): Promise<{ sync: RedisSync; done: Promise<unknown> }> {
  const sync = new RedisSync({ progressInterval: 100, ...options });
  running.push(sync);
  const done = sync.run();
  done.catch(() => {});
  await sync.caughtUp({ timeoutMs: 30_000 });
  return { sync, done };
}

describe('RedisSync', () => {
  let source: SpawnedRedis;
  let target: SpawnedRedis;
  let src: Redis;
  let dst: Redis;
  let dir: string;
  beforeAll(async () => {
    source = await spawnRedis();
    target = await spawnRedis();
    src = source.createClient();
    dst = target.createClient();
    dir = mkdtempSync(join(tmpdir(), 'sync-test-'));
  });
  afterAll(async () => {
    await source?.stop();
    await target?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await source.flushAll();
    await target.flushAll();
  });
  afterEach(async () => {
    // A failed test must not leave its sync writing into the next one's target.
    await Promise.all(running.splice(0).map((sync) => sync.close({ timeoutMs: 1000 }).catch(() => {})));
  });

  it('copies the snapshot, then every live write, into an empty target', async () => {
    await writeDataset(src);
    const { sync, done } = await started({ source: source.url, target: target.url });
    expect(sync.phase).toBe('live');
    expect(sync.stats.snapshot.keys).toBe(41);
    expect(await differences({ source: source.url, target: target.url })).toEqual([]);
    await writeLive(src);
    await sync.caughtUp();
    expect(await differences({ source: source.url, target: target.url })).toEqual([]);
    expect(sync.stats.live.commands).toBeGreaterThanOrEqual(19);
    await sync.close();
    const result = await done;
    expect(result).toMatchObject({ phase: 'closed', fullSyncs: 1 });
  });

  it('does not stall when a full write window meets a source whose queue refills at once', {
    timeout: 60_000,
  }, async () => {
    // A small window pauses the source often; a long listener queue hands back hundreds of
    // events the moment it resumes, which must be handled without waiting for another one.
    for (let i = 0; i < 40_000; i += 2000) {
      const p = src.pipeline();
      for (let j = i; j < i + 2000; j++) p.set(`k:${j}`, `v${j}`);
      await p.exec();
    }
    const { sync } = await started({
      source: source.url,
      target: target.url,
      maxInflightCommands: 32,
      replica: { maxQueuedEvents: 4096 },
    });
    expect(sync.stats.snapshot.keys).toBe(40_000);
    expect(await dst.dbsize()).toBe(40_000);
    await sync.close();
  });

  it('keeps a replicated MULTI atomic on the target', async () => {
    const { sync } = await started({ source: source.url, target: target.url });
    const before = Number(/cmdstat_multi:calls=(\d+)/.exec(await dst.info('commandstats'))?.[1] ?? 0);
    await src.multi().set('m:a', '1').set('m:b', '2').exec();
    await sync.caughtUp();
    const after = Number(/cmdstat_multi:calls=(\d+)/.exec(await dst.info('commandstats'))?.[1] ?? 0);
    expect(after - before).toBe(1);
    expect(await dst.mget('m:a', 'm:b')).toEqual(['1', '2']);
    await sync.close();
  });

  describe('filters', () => {
    afterEach(async () => {
      await target.flushAll();
    });

    it('by prefix and pattern, minus exclusions: snapshot and live, multi-key commands split or fetched again', async () => {
      await writeDataset(src, 'keep:');
      await writeDataset(src, 'drop:', 0.01);
      const filter = { prefixes: ['keep:'], patterns: ['*:also'], exclude: { patterns: ['keep:plain:1*'] } };
      const { sync } = await started({ source: source.url, target: target.url, filter });
      expect(await dst.exists('keep:str', 'drop:str', 'keep:plain:15', 'keep:plain:2')).toBe(2);
      await writeLive(src, 'keep:');
      await writeLive(src, 'drop:');
      // Multi-key commands across the filter: split when their keys are independent...
      await src.del('keep:plain:5', 'drop:plain:5');
      await src.mset('keep:m1', 'a', 'drop:m1', 'b', 'x:also', 'c');
      // ... fetched again when they link a kept key to one that is not.
      await src.rename('drop:plain:6', 'keep:from-drop');
      await src.rename('keep:plain:7', 'drop:from-keep');
      await src.sunionstore('keep:union', 'keep:set', 'drop:set');
      await src.smove('keep:set', 'drop:set', 'x');
      await src.set('keep:after-fetch', 'x');
      await src.append('keep:from-drop', '+');
      await sync.caughtUp();
      expect(await differences({ source: source.url, target: target.url, filter })).toEqual([]);
      expect(await dst.exists('drop:m1', 'drop:from-keep', 'keep:plain:7')).toBe(0);
      expect(await dst.get('keep:from-drop')).toBe('v6+');
      expect(sync.stats.live.refetched).toBeGreaterThanOrEqual(3);
      expect(await dst.keys('drop:*')).toEqual([]);
      await sync.close();
    });

    it('by database, with a mapping of databases', async () => {
      await writeDataset(src);
      const filter = { dbs: [0, 1] };
      const dbMap = { 1: 5 };
      const { sync } = await started({ source: source.url, target: target.url, filter, dbMap });
      await writeLive(src);
      await src.select(2);
      await src.set('db2:live', 'not copied');
      await src.select(0);
      await sync.caughtUp();
      expect(await differences({ source: source.url, target: target.url, filter, dbMap })).toEqual([]);
      const keyspace = await dst.info('keyspace');
      expect(keyspace).toMatch(/^db5:keys=3,/m);
      expect(keyspace).not.toMatch(/^db1:/m);
      expect(keyspace).not.toMatch(/^db2:/m);
      await sync.close();
    });

    it('by type: keys of other types stay out, and a string written over a kept key deletes it', async () => {
      await writeDataset(src);
      const filter = { types: ['hash' as const, 'zset' as const] };
      const { sync } = await started({ source: source.url, target: target.url, filter });
      expect(await dst.exists('hash', 'zset', 'str', 'list', 'stream')).toBe(2);
      await src.hset('hash', 'new', '1');
      await src.set('str', 'still a string');
      await src.set('big-hash', 'now a string'); // the type changes: gone from the target
      await src.zadd('new-zset', 1, 'a');
      await src.rpush('new-list', 'a');
      await src.rename('zset', 'zset-renamed'); // fetched again, and of a kept type
      await sync.caughtUp();
      expect(await differences({ source: source.url, target: target.url, filter })).toEqual([]);
      expect(await dst.exists('big-hash', 'new-list', 'zset')).toBe(0);
      expect(await dst.exists('zset-renamed', 'new-zset')).toBe(2);
      await sync.close();
    });

    it('FLUSHDB with a filter removes only the kept keys of the target', async () => {
      await src.mset('keep:a', '1', 'keep:b', '2', 'other', '3');
      await dst.set('not-mine', 'x');
      const filter = { prefixes: ['keep:'] };
      const { sync } = await started({ source: source.url, target: target.url, filter });
      expect(await dst.mget('keep:a', 'not-mine')).toEqual(['1', 'x']);
      await src.flushdb();
      await src.set('keep:c', '3');
      await sync.caughtUp();
      expect((await dst.keys('*')).sort()).toEqual(['keep:c', 'not-mine']);
      await sync.close();
    });
  });

  describe('keys already on the target', () => {
    beforeEach(async () => {
      await src.mset('same', 'source', 'new', 'n');
      await src.rpush('big', ...Array.from({ length: 3000 }, (_, i) => `e${i}`));
      await dst.mset('same', 'target', 'mine', 'm');
      await dst.rpush('big', 'target');
    });

    it('replace (the default) overwrites them', async () => {
      const { sync } = await started({ source: source.url, target: target.url });
      expect(await dst.mget('same', 'mine', 'new')).toEqual(['source', 'm', 'n']);
      expect(await dst.llen('big')).toBe(3000);
      await sync.close();
    });

    it('skip keeps them, and counts them', async () => {
      const { sync } = await started({ source: source.url, target: target.url, existing: 'skip' });
      expect(await dst.mget('same', 'mine', 'new')).toEqual(['target', 'm', 'n']);
      expect(await dst.lrange('big', 0, -1)).toEqual(['target']);
      expect(sync.stats.snapshot.skipped).toBe(2);
      await sync.close();
    });

    it('fail stops the sync with ERR_SYNC_CONFLICT naming the key', async () => {
      const sync = new RedisSync({ source: source.url, target: target.url, existing: 'fail' });
      const err = (await sync.run().catch((e: unknown) => e)) as ReplicationError;
      expect(err).toBeInstanceOf(ReplicationError);
      expect(err.code).toBe('ERR_SYNC_CONFLICT');
      expect(err.message).toMatch(/"(same|big)"/);
      expect(sync.phase).toBe('failed');
    });
  });

  describe('the state file', () => {
    it('resumes with PSYNC after a restart: no second full sync, nothing missing', async () => {
      const stateFile = join(dir, 'resume.json');
      rmSync(stateFile, { force: true });
      await writeDataset(src);
      const first = await started({ source: source.url, target: target.url, stateFile });
      await writeLive(src);
      await first.sync.caughtUp();
      await first.sync.close();
      const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as SyncState;
      expect(saved.shards).toHaveLength(1);
      expect(saved.shards[0]?.replOffset).toBeGreaterThan(0);
      // Writes while no sync runs.
      await src.set('while-stopped', '1');
      await src.del('str');
      await src.hset('hash', 'offline', 'yes');
      const second = await started({ source: source.url, target: target.url, stateFile });
      expect(second.sync.stats).toMatchObject({ fullSyncs: 0, partialSyncs: 1 });
      expect(await differences({ source: source.url, target: target.url })).toEqual([]);
      await second.sync.close();
    });

    it('refuses a state file of another sync with ERR_SYNC_STATE', async () => {
      const stateFile = join(dir, 'other.json');
      const state: SyncState = {
        format: 'redis-events-sync/1',
        source: 'elsewhere:1',
        target: target.url,
        filter: '{}',
        started: true,
        shards: [],
        savedAt: new Date().toISOString(),
      };
      writeFileSync(stateFile, JSON.stringify(state));
      const err = (await new RedisSync({ source: source.url, target: target.url, stateFile })
        .run()
        .catch((e: unknown) => e)) as ReplicationError;
      expect(err.code).toBe('ERR_SYNC_STATE');
      expect(err.message).toMatch(/another sync/);
      writeFileSync(stateFile, 'not json');
      const bad = (await new RedisSync({ source: source.url, target: target.url, stateFile })
        .run()
        .catch((e: unknown) => e)) as ReplicationError;
      expect(bad.code).toBe('ERR_SYNC_STATE');
    });
  });

  it('copies an RDB file, and ends when it is applied', async () => {
    await writeDataset(src);
    await src.call('SAVE');
    const result = await new RedisSync({ source: { rdb: join(source.dir, 'dump.rdb') }, target: target.url }).run();
    expect(result.phase).toBe('done');
    expect(await differences({ source: source.url, target: target.url })).toEqual([]);
  });

  it('forwards PUBLISH only when asked', async () => {
    const sub = target.createClient();
    const got: string[] = [];
    sub.on('message', (_ch, m) => got.push(m));
    await sub.subscribe('news');
    const { sync } = await started({ source: source.url, target: target.url, publish: true });
    await src.publish('news', 'hello');
    await sync.caughtUp();
    await sync.close();
    const quiet = await started({ source: source.url, target: target.url });
    await src.publish('news', 'not forwarded');
    await quiet.sync.caughtUp();
    await quiet.sync.close();
    expect(got).toEqual(['hello']);
  });

  describe('failures', () => {
    it('a target that is not there: ERR_SYNC_TARGET naming it, within connectTimeout', async () => {
      const err = (await new RedisSync({ source: source.url, target: 'redis://127.0.0.1:1', connectTimeout: 2000 })
        .run()
        .catch((e: unknown) => e)) as ReplicationError;
      expect(err.code).toBe('ERR_SYNC_TARGET');
      expect(err.message).toMatch(/127\.0\.0\.1:1/);
    });

    it('a source that is not there: ERR_REPLICATION_CONNECT naming it', async () => {
      const err = (await new RedisSync({ source: 'redis://127.0.0.1:1', target: target.url, connectTimeout: 2000 })
        .run()
        .catch((e: unknown) => e)) as ReplicationError;
      expect(err.code).toBe('ERR_REPLICATION_CONNECT');
      expect(err.message).toMatch(/127\.0\.0\.1:1/);
    });

    it('unknown options and bad values: ERR_REPLICATION_ARGUMENT', () => {
      expect(() => new RedisSync({ source: source.url, target: target.url, fliter: {} } as never)).toThrow(
        /no option "fliter"/,
      );
      expect(() => new RedisSync({ source: source.url, target: target.url, existing: 'merge' as never })).toThrow(
        ReplicationError,
      );
      expect(() => new RedisSync({ source: source.url, target: { url: target.url, pasword: 'x' } as never })).toThrow(
        /unknown option "pasword"/,
      );
      expect(
        () =>
          new RedisSync({
            source: source.url,
            target: target.url,
            stateFile: 'a',
            stateStore: { load: async () => undefined, save: async () => {} },
          }),
      ).toThrow(/not both/);
    });

    it('an abort signal stops it: run() rejects with an AbortError, the state is saved', async () => {
      const stateFile = join(dir, 'abort.json');
      rmSync(stateFile, { force: true });
      const controller = new AbortController();
      const sync = new RedisSync({ source: source.url, target: target.url, stateFile, signal: controller.signal });
      const running = sync.run().catch((e: unknown) => e);
      await sync.caughtUp();
      controller.abort();
      const err = (await running) as ReplicationError;
      expect(err.name).toBe('AbortError');
      expect(err.code).toBe('ERR_REPLICATION_ABORTED');
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).shards).toHaveLength(1);
    });

    it('close() reports the writes it abandoned when the target stops answering', async () => {
      const frozen = await spawnRedis();
      try {
        const { sync, done } = await started({ source: source.url, target: frozen.url });
        frozen.suspend();
        for (let i = 0; i < 50; i++) await src.set(`pending:${i}`, 'x');
        // Wait for the writes to be sent (unanswered), not for a time that a loaded machine may exceed.
        for (let i = 0; sync.stats.target.inflight === 0; i++) {
          if (i > 1000) throw new Error('no write went out to the target');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const err = (await sync.close({ timeoutMs: 300 }).catch((e: unknown) => e)) as ReplicationError;
        expect(err).toBeInstanceOf(ReplicationError);
        expect(err.code).toBe('ERR_REPLICATION_ABANDONED');
        expect(err.abandoned).toMatchObject({ writes: expect.any(Number) });
        expect(err.message).toMatch(/\d+ writes to the target not acknowledged/);
        await done;
      } finally {
        frozen.resume();
        await frozen.stop();
      }
    });
  });
});
