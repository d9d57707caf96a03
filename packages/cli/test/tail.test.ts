import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, jsonLines, type RunningCli, startCli, waitUntil } from './helpers.ts';

describe('redis-events tail', { timeout: CLI_TEST_TIMEOUT }, () => {
  let server: SpawnedRedis;
  let dir: string;
  beforeAll(async () => {
    server = await spawnRedis();
    dir = mkdtempSync(join(tmpdir(), 'cli-tail-'));
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function following(cli: RunningCli): Promise<void> {
    await waitUntil(() => /following writes|resumed at offset/.test(cli.stderrSoFar));
  }
  async function stop(cli: RunningCli) {
    cli.kill('SIGINT');
    return cli.output;
  }

  it('prints every write as JSON lines with its database, and stops cleanly on Ctrl-C', async () => {
    const cli = startCli(['tail', server.url]);
    await following(cli);
    const client = server.createClient();
    await client.set('user:1', 'Ada');
    await client.hset('user:2', 'name', 'Grace');
    await client.select(4);
    await client.set('gone', 'x');
    await client.del('gone');
    await client.set('done', '1');
    await waitUntil(() => cli.stdoutSoFar.includes('"done"'));
    const { code, stdout, stderr } = await stop(cli);
    expect(code).toBe(130);
    expect(stderr).toMatch(/connected to redis:\/\/127\.0\.0\.1/);
    const lines = jsonLines(stdout) as { db: number; command: string; args: string[]; offset: number }[];
    expect(lines.map((l) => [l.db, l.command, ...l.args])).toEqual([
      [0, 'SET', 'user:1', 'Ada'],
      [0, 'HSET', 'user:2', 'name', 'Grace'],
      [4, 'SET', 'gone', 'x'],
      [4, 'DEL', 'gone'],
      [4, 'SET', 'done', '1'],
    ]);
    // Offsets grow with every write, as the master counts them.
    expect(lines.every((l, i) => i === 0 || l.offset > (lines[i - 1]?.offset ?? 0))).toBe(true);
  });

  it('prints the snapshot with --snapshot, and filters by key, command and db', async () => {
    const client = server.createClient();
    await client.flushall();
    await client.set('keep:a', '1');
    await client.set('skip:b', '2');
    const cli = startCli([
      'tail',
      '--url',
      server.url,
      '--snapshot',
      '--key',
      'keep:*',
      '--command',
      'set,hset',
      '--db',
      '0',
    ]);
    await following(cli);
    await client.set('keep:c', '3');
    await client.del('keep:a'); // filtered out by --command
    await client.set('skip:d', '4'); // filtered out by --key
    await client.hset('keep:e', 'f', 'v');
    await waitUntil(() => cli.stdoutSoFar.includes('keep:e'));
    const { stdout } = await stop(cli);
    const lines = jsonLines(stdout) as Record<string, unknown>[];
    expect(lines[0]).toMatchObject({ db: 0, key: 'keep:a', type: 'string', value: '1' }); // the snapshot
    expect(lines.slice(1).map((l) => [l.command, (l.args as string[])[0]])).toEqual([
      ['SET', 'keep:c'],
      ['HSET', 'keep:e'],
    ]);
  });

  it('resumes from --state-file without a new snapshot, printing only the writes it missed', async () => {
    const state = join(dir, 'tail.json');
    const client = server.createClient();
    const first = startCli(['tail', server.url, '--state-file', state, '--pretty']);
    await following(first);
    await client.set('before-stop', '1');
    await waitUntil(() => first.stdoutSoFar.includes('before-stop'));
    await stop(first);
    expect(existsSync(state)).toBe(true);
    const checkpoint = JSON.parse(readFileSync(state, 'utf8')) as { replId: string; replOffset: number };
    expect(checkpoint.replId).toMatch(/^[0-9a-f]{40}$/);

    await client.set('while-stopped', '2');
    const fullSyncsBefore = Number((await server.info('stats')).sync_full);
    const second = startCli(['tail', server.url, '--state-file', state, '--pretty']);
    await following(second);
    await client.set('after-restart', '3');
    await waitUntil(() => second.stdoutSoFar.includes('after-restart'));
    const { stdout, stderr } = await stop(second);
    expect(stderr).toMatch(/resumed at offset \d+ without a snapshot/);
    expect(stdout).toBe('db0 SET while-stopped 2\ndb0 SET after-restart 3\n');
    expect(Number((await server.info('stats')).sync_full)).toBe(fullSyncsBefore);
  });

  it('fails with a clear message when the server cannot be reached, and for a broken state file', async () => {
    // Unreachable from the start is a failure (exit 1), not an outage to wait out.
    const refused = await startCli(['tail', '--url', 'redis://127.0.0.1:1']).output;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'redis-events tail: cannot connect to redis://127.0.0.1:1: connection refused (nothing listens there)\n',
    );
    const broken = join(dir, 'broken.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(broken, 'nope');
    const bad = startCli(['tail', server.url, '--state-file', broken]);
    const result = await bad.output;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a checkpoint written by tail/);
  });
});
