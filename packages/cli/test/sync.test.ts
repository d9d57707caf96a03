// redis-events sync, compare and aof as a user runs them: a one-shot copy, Ctrl-C in the live
// phase (exit 130, position saved) and a resume without a new snapshot, Ctrl-C in the snapshot, compare's exit codes
// and output, the commands of a real AOF, and clear failures for wrong arguments or servers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jsonLines, runCli, startCli, waitUntil } from './helpers.ts';

// Each run starts a Node process on the TypeScript sources: seconds each on a loaded machine.
describe('redis-events sync and compare', { timeout: 120_000 }, () => {
  let source: SpawnedRedis;
  let target: SpawnedRedis;
  let dir: string;
  beforeAll(async () => {
    source = await spawnRedis({ persistence: 'aof' });
    target = await spawnRedis();
    dir = mkdtempSync(join(tmpdir(), 'cli-sync-'));
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

  it('copies with --once and exits 0; compare then finds nothing (exit 0), and later each planted difference (exit 1)', async () => {
    const src = source.createClient();
    for (let i = 0; i < 100; i++) await src.set(`k:${i}`, `v${i}`);
    await src.hset('h', 'a', '1');
    const copy = await runCli(['sync', source.url, target.url, '--once']);
    expect(copy.code).toBe(0);
    expect(copy.stderr).toMatch(/snapshot done: 101 keys/);
    const same = await runCli(['compare', source.url, target.url]);
    expect(same.code).toBe(0);
    expect(same.stdout).toBe('');
    expect(same.stderr).toMatch(/101 keys on the source, 101 on the target, 101 values compared: no differences/);
    const dst = target.createClient();
    await dst.set('k:1', 'changed');
    await dst.del('k:2');
    await dst.set('only-here', 'x');
    const diff = await runCli(['compare', source.url, target.url, '--json']);
    expect(diff.code).toBe(1);
    const lines = jsonLines(diff.stdout) as {
      kind?: string;
      key?: string;
      summary?: { differences: Record<string, number> };
    }[];
    expect(
      lines
        .filter((l) => l.kind)
        .map((l) => `${l.kind} ${l.key}`)
        .sort(),
    ).toEqual(['extra only-here', 'missing k:2', 'value k:1']);
    expect(lines.at(-1)?.summary?.differences).toEqual({ missing: 1, extra: 1, type: 0, value: 1, ttl: 0 });
  });

  it('stops on Ctrl-C with exit 130 and the position saved; the next run resumes without a snapshot', async () => {
    const stateFile = join(dir, 'state.json');
    const src = source.createClient();
    await src.set('before', '1');
    const first = startCli(['sync', source.url, target.url, '--state-file', stateFile]);
    await waitUntil(() => /following writes/.test(first.stderrSoFar), 30_000);
    await src.set('live', '1');
    const dst = target.createClient();
    for (let i = 0; (await dst.get('live')) !== '1'; i++) {
      if (i > 400) throw new Error('the live write did not arrive');
      await new Promise((r) => setTimeout(r, 25));
    }
    first.kill('SIGINT');
    const stopped = await first.output;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/position saved in .*state\.json/);
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).shards).toHaveLength(1);
    await src.set('while-stopped', '1');
    const second = await runCli(['sync', source.url, target.url, '--state-file', stateFile, '--once']);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/resumed from the saved position without a new snapshot/);
    expect(second.stderr).not.toMatch(/copying the snapshot/);
    expect(await dst.mget('before', 'live', 'while-stopped')).toEqual(['1', '1', '1']);
  });

  it('Ctrl-C in the snapshot: exit 130, says the next run takes a new snapshot, and that run completes the copy', async () => {
    const stateFile = join(dir, 'state-snapshot.json');
    const src = source.createClient();
    for (let i = 0; i < 200_000; i += 5000) {
      const p = src.pipeline();
      for (let j = i; j < i + 5000; j++) p.set(`s:${j}`, 'x'.repeat(64));
      await p.exec();
    }
    const dst = target.createClient();
    const first = startCli(['sync', source.url, target.url, '--state-file', stateFile]);
    await waitUntil(() => /copying the snapshot/.test(first.stderrSoFar), 30_000);
    for (let i = 0; (await dst.dbsize()) === 0; i++) {
      if (i > 2000) throw new Error('no key arrived');
      await new Promise((r) => setTimeout(r, 10));
    }
    first.kill('SIGINT');
    const stopped = await first.output;
    expect(stopped.code).toBe(130);
    // The first keys arrived moments ago: 200,000 cannot all be copied by the time SIGINT lands.
    expect(stopped.stderr).not.toMatch(/following writes/);
    expect(stopped.stderr).toMatch(/stopped in the snapshot \([\d,]+ keys copied\).*the next run takes a new snapshot/);
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).shards).toEqual([]);
    const second = await runCli([
      'sync',
      source.url,
      target.url,
      '--state-file',
      stateFile,
      '--once',
      '--existing',
      'fail',
    ]);
    expect(second.code).toBe(0);
    expect(await dst.dbsize()).toBe(200_000);
  });

  it('copies only what the filter keeps, into the mapped database', async () => {
    const src = source.createClient();
    await src.mset('user:1', 'a', 'order:1', 'b');
    await src.select(2);
    await src.set('user:2', 'c');
    const run = await runCli(['sync', source.url, target.url, '--once', '--prefix', 'user:', '--map-db', '2:0']);
    expect(run.code).toBe(0);
    const dst = target.createClient();
    expect((await dst.keys('*')).sort()).toEqual(['user:1', 'user:2']);
    const compare = await runCli(['compare', source.url, target.url, '--prefix', 'user:', '--map-db', '2:0']);
    expect(compare.code).toBe(0);
  });

  it('replays an AOF folder into a target, and aof prints its commands', async () => {
    const src = source.createClient();
    await src.set('a', '1');
    await src.select(3);
    await src.rpush('list', 'x', 'y');
    const aofDir = join(source.dir, 'appendonlydir');
    const printed = await runCli(['aof', aofDir]);
    expect(printed.code).toBe(0);
    const lines = jsonLines(printed.stdout) as { db: number; command: string; args: string[] }[];
    expect(lines.map((l) => [l.db, l.command, ...l.args])).toEqual(
      expect.arrayContaining([
        [0, 'SET', 'a', '1'],
        [3, 'RPUSH', 'list', 'x', 'y'],
      ]),
    );
    const pretty = await runCli(['aof', aofDir, '--pretty', '--db', '3']);
    expect(pretty.stdout).toBe('db3 RPUSH list x y\n');
    const replay = await runCli(['sync', aofDir, target.url]);
    expect(replay.code).toBe(0);
    expect(replay.stderr).toMatch(/applied/);
    expect((await runCli(['compare', source.url, target.url])).code).toBe(0);
  });

  it('says what is wrong: usage (exit 2), an unreachable target or a missing file (exit 1)', async () => {
    const usage = await runCli(['sync', source.url]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/sync takes a source and a target/);
    const down = await runCli(['sync', source.url, 'redis://127.0.0.1:1', '--once']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/127\.0\.0\.1:1/);
    const missing = await runCli(['aof', join(dir, 'nothing-here')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the AOF/);
  });
});
