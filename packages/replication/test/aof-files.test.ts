// AOF files as Redis writes them: a multi-part folder (an RDB or AOF base, increment files), a
// single legacy file with an RDB preamble, timestamps; read back with readAof, they give the
// server's data (checked by replaying them into an empty server with a sync, then comparing).
import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis, waitFor } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AofEvent,
  compareRedis,
  describeAof,
  parseAofManifest,
  RedisSync,
  ReplicationError,
  readAof,
} from '../src/index.ts';
import { thrown } from './event-helpers.ts';
import { writeDataset } from './sync-dataset.ts';

async function collect(path: string, options: Parameters<typeof readAof>[1] = {}): Promise<AofEvent[]> {
  const out: AofEvent[] = [];
  for await (const e of readAof(path, options)) out.push(e);
  return out;
}

async function rewrite(server: SpawnedRedis): Promise<void> {
  const before = Number((await server.info('persistence')).aof_rewrites ?? 0);
  await server.command('BGREWRITEAOF');
  await waitFor('the AOF rewrite', async () => {
    const info = await server.info('persistence');
    return (
      info.aof_rewrite_in_progress === '0' &&
      info.aof_rewrite_scheduled === '0' &&
      Number(info.aof_rewrites ?? 0) > before
    );
  });
}

describe('parseAofManifest', () => {
  it('reads base, history and increment files, with comments, quotes and unknown keys', () => {
    const m = parseAofManifest(
      [
        '# written by Redis',
        'file appendonly.aof.3.base.rdb seq 3 type b',
        'file appendonly.aof.5.incr.aof seq 5 type h',
        'file "odd name.aof" seq 6 type i future value',
        'FILE appendonly.aof.7.incr.aof SEQ 7 TYPE i',
        '',
      ].join('\n'),
    );
    expect(m.base).toEqual({ name: 'appendonly.aof.3.base.rdb', seq: 3, type: 'base' });
    expect(m.history.map((f) => f.name)).toEqual(['appendonly.aof.5.incr.aof']);
    expect(m.incr.map((f) => [f.name, f.seq])).toEqual([
      ['odd name.aof', 6],
      ['appendonly.aof.7.incr.aof', 7],
    ]);
  });

  it('refuses what Redis refuses, with ERR_AOF_MANIFEST and the line', () => {
    const cases: [string, RegExp][] = [
      ['', /names no base and no increment/],
      ['file a seq 1\n', /not "file <name> seq <n> type/],
      ['file a seq 0 type b\n', /lacks one of file, seq/],
      ['file dir/a seq 1 type b\n', /not a path/],
      ['file a seq 1 type b\nfile b seq 2 type b\n', /second base file/],
      ['file a seq 2 type i\nfile b seq 2 type i\n', /does not follow 2/],
      ['file a seq 1 type x\n', /type "x"/],
      ['file "a seq 1 type b\n', /unbalanced quotes/],
      ['file a seq 1 type b\n\nfile b seq 2 type i\n', /line 2 .* is empty/],
      [`file ${'a'.repeat(1100)} seq 1 type b\n`, /longer than 1024/],
    ];
    for (const [text, message] of cases) {
      const err = thrown(() => parseAofManifest(text)) as ReplicationError;
      expect(err, text).toBeInstanceOf(ReplicationError);
      expect(err.code).toBe('ERR_AOF_MANIFEST');
      expect(err.message).toMatch(message);
    }
  });
});

describe('readAof on files written by Redis', () => {
  let server: SpawnedRedis;
  let client: Redis;
  let replay: SpawnedRedis;
  let scratch: string;
  beforeAll(async () => {
    server = await spawnRedis({ persistence: 'aof', config: { 'aof-timestamp-enabled': 'yes' } });
    client = server.createClient();
    replay = await spawnRedis();
    scratch = mkdtempSync(join(tmpdir(), 'aof-test-'));
  });
  afterAll(async () => {
    await server?.stop();
    await replay?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('reads a multi-part AOF (RDB base, increments) into what the server holds', async () => {
    await writeDataset(client, 'a:');
    await rewrite(server); // the dataset is in the RDB base now
    // Redis annotates the first write of each second: cross a second so that one is there.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
    await client.set('a:after-rewrite', '1');
    await client.multi().incr('a:int').rpush('a:list', 'tail').exec();
    await client.select(2);
    await client.del('a:db2:a');
    await client.select(0);
    const dir = join(server.dir, 'appendonlydir');
    const layout = await describeAof(dir);
    expect(layout.files.map((f) => f.type)).toEqual(['base', 'incr']);
    expect(layout.files[0]?.name).toMatch(/\.base\.rdb$/);
    const events = await collect(dir);
    const kinds = new Set(events.map((e) => e.kind));
    expect(kinds).toContain('entry');
    expect(kinds).toContain('annotation');
    const commands = events.filter((e) => e.kind === 'command').map((e) => (e.kind === 'command' ? e.name : ''));
    expect(commands).toEqual(expect.arrayContaining(['SET', 'MULTI', 'INCR', 'RPUSH', 'EXEC', 'DEL']));
    const end = events[events.length - 1];
    expect(end).toMatchObject({ kind: 'aof-end', files: 2, truncatedBytes: 0, discardedCommands: 0 });
    // Replayed into an empty server, it is the server's data.
    await replay.flushAll();
    const result = await new RedisSync({ source: { aof: dir }, target: replay.url }).run();
    expect(result.phase).toBe('done');
    const report = await compareRedis({ source: server.url, target: replay.url });
    expect(report.differences.map((d) => `${d.kind} ${d.key.toString()} ${d.detail}`)).toEqual([]);
    expect(report.sourceKeys).toBeGreaterThan(40);
  });

  it('reads an AOF base too (aof-use-rdb-preamble no), and a single legacy file with an RDB preamble', async () => {
    await client.config('SET', 'aof-use-rdb-preamble', 'no');
    try {
      await rewrite(server);
    } finally {
      await client.config('SET', 'aof-use-rdb-preamble', 'yes');
    }
    await client.set('a:after-aof-base', 'x');
    const dir = join(server.dir, 'appendonlydir');
    const layout = await describeAof(dir);
    expect(layout.files[0]?.name).toMatch(/\.base\.aof$/);
    const events = await collect(dir);
    expect(events.some((e) => e.kind === 'entry')).toBe(false);
    await replay.flushAll();
    await new RedisSync({ source: { aof: dir }, target: replay.url }).run();
    const report = await compareRedis({ source: server.url, target: replay.url });
    expect(report.differences.map((d) => `${d.kind} ${d.key.toString()} ${d.detail}`)).toEqual([]);

    // Redis 6 style: one file, an RDB preamble, then commands.
    await client.call('SAVE');
    const legacy = join(scratch, 'appendonly.aof');
    copyFileSync(join(server.dir, 'dump.rdb'), legacy);
    appendFileSync(
      legacy,
      '*3\r\n$3\r\nSET\r\n$6\r\nlegacy\r\n$3\r\nyes\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*2\r\n$3\r\nDEL\r\n$7\r\na:db1:h\r\n',
    );
    const single = await collect(legacy);
    expect(single[0]).toMatchObject({ kind: 'aof-file', type: 'single' });
    expect(single.filter((e) => e.kind === 'entry' && e.last).length).toBe((await client.dbsize()) + 2 + 1);
    const tail = single.filter((e) => e.kind === 'command');
    expect(tail.map((e) => (e.kind === 'command' ? [e.db, e.name] : []))).toEqual([
      [0, 'SET'],
      [1, 'SELECT'],
      [1, 'DEL'],
    ]);
  });

  it('stops at a point in time with untilTimestamp (aof-timestamp-enabled)', async () => {
    const dir = join(server.dir, 'appendonlydir');
    const events = await collect(dir);
    const stamps = events.flatMap((e) => (e.kind === 'annotation' && e.timestamp !== undefined ? [e.timestamp] : []));
    expect(stamps.length).toBeGreaterThan(0);
    const first = Math.min(...stamps);
    const cut = await collect(dir, { untilTimestamp: first - 1 });
    const end = cut[cut.length - 1];
    expect(end).toMatchObject({ kind: 'aof-end', stoppedAt: first });
    expect(cut.filter((e) => e.kind === 'annotation')).toEqual([]);
  });

  it('drops a partial command at the end of the last file, and refuses one in an earlier file', async () => {
    const copy = join(scratch, 'copy');
    rmSync(copy, { recursive: true, force: true });
    const dir = join(server.dir, 'appendonlydir');
    const names = readdirSync(dir);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(copy);
    for (const name of names) copyFileSync(join(dir, name), join(copy, name));
    const layout = await describeAof(copy);
    const last = layout.files[layout.files.length - 1]?.path as string;
    appendFileSync(last, '*3\r\n$3\r\nSET\r\n$4\r\nhalf');
    const events = await collect(copy);
    expect(events[events.length - 1]).toMatchObject({ kind: 'aof-end', truncatedBytes: 21 });
    const strict = await collect(copy, { truncated: 'error' }).catch((err: unknown) => err);
    expect((strict as ReplicationError).code).toBe('ERR_AOF_TRUNCATED');
    // The same damage in the base file: the set is broken.
    const base = layout.files[0]?.path as string;
    writeFileSync(base, readFileSync(base).subarray(0, 40));
    const broken = await collect(copy).catch((err: unknown) => err);
    expect(broken).toBeInstanceOf(ReplicationError);
  });

  it('says what is wrong with a folder without a manifest, or a manifest naming a missing file', async () => {
    const empty = mkdtempSync(join(scratch, 'empty-'));
    expect(((await collect(empty).catch((e: unknown) => e)) as ReplicationError).code).toBe('ERR_AOF_MANIFEST');
    writeFileSync(join(empty, 'appendonly.aof.manifest'), 'file appendonly.aof.1.base.rdb seq 1 type b\n');
    const missing = (await collect(empty).catch((e: unknown) => e)) as ReplicationError;
    expect(missing.code).toBe('ERR_AOF_MANIFEST');
    expect(missing.message).toMatch(/appendonly\.aof\.1\.base\.rdb/);
    expect(((await collect(join(scratch, 'nope')).catch((e: unknown) => e)) as ReplicationError).code).toBe(
      'ERR_AOF_IO',
    );
  });
});
