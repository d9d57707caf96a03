// A sync cut and restarted: the source link cut in the live phase (PSYNC resumes it, no new
// snapshot) and in the snapshot (a new snapshot), the target link cut while writing (writes
// sent again), the process stopped during the snapshot and killed in the live phase (the next
// run resumes from its state file, without a second full sync where the backlog allows).
// Each ends with a compare: nothing missing.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisSync } from '@redis-events/replication';
import { type SpawnedRedis, spawnRedis, startProxy, type TcpProxy, waitFor } from '@redis-events/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { differences } from './helpers.ts';

const cliBin = fileURLToPath(new URL('../../packages/cli/src/bin.ts', import.meta.url));

// Datasets of tens of thousands of keys, synced twice: minutes on a loaded 2-core machine.
describe('a sync cut and restarted', { timeout: 180_000 }, () => {
  let source: SpawnedRedis;
  let target: SpawnedRedis;
  let dir: string;
  beforeAll(async () => {
    source = await spawnRedis({ config: { 'repl-backlog-size': '64mb' } });
    target = await spawnRedis();
    dir = mkdtempSync(join(tmpdir(), 'sync-faults-'));
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

  /** Idempotent writes (so that a write sent twice after a cut changes nothing). */
  async function writes(from: number, to: number): Promise<void> {
    const client = source.createClient();
    for (let i = from; i < to; i++) {
      await client.set(`w:${i}`, `v${i}`);
      if (i % 3 === 0) await client.hset(`h:${i % 10}`, `f${i}`, String(i));
      if (i % 7 === 0) await client.del(`w:${i - 7}`);
    }
    client.disconnect();
  }

  async function bigDataset(keys: number): Promise<void> {
    const client = source.createClient();
    for (let start = 0; start < keys; start += 1000) {
      const p = client.pipeline();
      // Random values: an RDB compresses repeated bytes away, and this one must be large.
      for (let i = start; i < start + 1000; i++) p.set(`big:${i}`, randomBytes(100).toString('hex'));
      await p.exec();
    }
    client.disconnect();
  }

  it('source link cut in the live phase: resumed with PSYNC, no new snapshot', async () => {
    const proxy: TcpProxy = await startProxy({ target: { host: source.host, port: source.port } });
    try {
      const sync = new RedisSync({ source: proxy.url, target: target.url });
      void sync.run().catch(() => {});
      await sync.caughtUp();
      const writing = writes(0, 300);
      await new Promise((r) => setTimeout(r, 50));
      proxy.cut();
      await writing;
      await waitFor('the listener to resume', () => sync.stats.partialSyncs >= 1, 30_000);
      await sync.caughtUp({ timeoutMs: 60_000 });
      expect(sync.stats.fullSyncs).toBe(1);
      expect(await differences({ source: source.url, target: target.url })).toEqual([]);
      await sync.close();
    } finally {
      await proxy.close();
    }
  });

  it('source link cut during the snapshot: a new snapshot, nothing missing', async () => {
    await bigDataset(20_000);
    const proxy = await startProxy({ target: { host: source.host, port: source.port } });
    try {
      proxy.cutAfter(500_000, 'downstream');
      const sync = new RedisSync({ source: proxy.url, target: target.url });
      void sync.run().catch(() => {});
      await sync.caughtUp({ timeoutMs: 60_000 });
      expect(sync.stats.fullSyncs).toBe(2);
      await writes(0, 100);
      await sync.caughtUp();
      expect(await differences({ source: source.url, target: target.url })).toEqual([]);
      await sync.close();
    } finally {
      await proxy.close();
    }
  });

  it('target link cut while writing: the writes in flight are sent again', async () => {
    const proxy = await startProxy({ target: { host: target.host, port: target.port } });
    try {
      const sync = new RedisSync({ source: source.url, target: proxy.url });
      void sync.run().catch(() => {});
      await sync.caughtUp();
      const writing = writes(0, 500);
      await new Promise((r) => setTimeout(r, 100));
      proxy.cut();
      await writing;
      await sync.caughtUp({ timeoutMs: 60_000 });
      expect(await differences({ source: source.url, target: target.url })).toEqual([]);
      await sync.close();
    } finally {
      await proxy.close();
    }
  });

  it('stopped during the snapshot: the next run copies it all again', async () => {
    await bigDataset(30_000);
    const stateFile = join(dir, 'snapshot-stop.json');
    rmSync(stateFile, { force: true });
    const first = new RedisSync({ source: source.url, target: target.url, stateFile });
    const firstRun = first.run().catch(() => {});
    await waitFor('part of the snapshot', () => first.stats.snapshot.keys > 1000, 60_000, 5);
    await first.close();
    await firstRun;
    expect(await target.createClient().dbsize()).toBeLessThan(30_000);
    const second = new RedisSync({ source: source.url, target: target.url, stateFile });
    void second.run().catch(() => {});
    await second.caughtUp({ timeoutMs: 60_000 });
    expect(second.stats.fullSyncs).toBe(1);
    expect(await differences({ source: source.url, target: target.url })).toEqual([]);
    await second.close();
  });

  it('killed in the live phase (kill -9): the next run resumes from its state file without a full sync', async () => {
    const stateFile = join(dir, 'crash.json');
    rmSync(stateFile, { force: true });
    await writes(0, 100);
    const child: ChildProcess = spawn(
      process.execPath,
      ['--conditions=@redis-events/source', cliBin, 'sync', source.url, target.url, '--state-file', stateFile],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    await waitFor('the sync to follow writes', () => /following writes/.test(stderr), 60_000);
    await writes(100, 400);
    // The state file is saved every second: wait for one that includes the live phase.
    await waitFor('a saved position', () => {
      try {
        return JSON.parse(readFileSync(stateFile, 'utf8')).shards.length === 1;
      } catch {
        return false;
      }
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    await writes(400, 600);
    const sync = new RedisSync({ source: source.url, target: target.url, stateFile });
    void sync.run().catch(() => {});
    await sync.caughtUp({ timeoutMs: 60_000 });
    expect(sync.stats).toMatchObject({ fullSyncs: 0, partialSyncs: 1 });
    expect(await differences({ source: source.url, target: target.url })).toEqual([]);
    await sync.close();
  });
});
