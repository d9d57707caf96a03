import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listServers, type SpawnedRedis, spawnRedis, versionAtLeast } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, jsonLines, runCli } from './helpers.ts';

describe('redis-events rdb', { timeout: CLI_TEST_TIMEOUT }, () => {
  let server: SpawnedRedis;
  let file: string;
  beforeAll(async () => {
    server = await spawnRedis();
    const c = server.createClient();
    await c.hset('user:1', { name: 'Ada', age: '36' });
    await c.rpush('queue', 'a', 'b', 'c');
    await c.set('binary', Buffer.from([0xff, 0xfe, 0x00]));
    await c.zadd('scores', '+inf', 'top', '-inf', 'bottom', '1.5', 'mid');
    await c.sadd('tags', 'x', 'y');
    await c.set('expiring', 'soon', 'PX', 3_600_000);
    await c.xadd('events', '1-1', 'type', 'created');
    await c.select(3);
    await c.set('other-db', '1');
    await c.lpush('big', ...Array.from({ length: 3000 }, (_, i) => `item-${i}`));
    await server.command('SAVE');
    file = join(server.dir, 'dump.rdb');
  });
  afterAll(() => server.stop());

  it('prints every key as a JSON line, binary-safe, in each database', async () => {
    const { code, stdout, stderr } = await runCli(['rdb', file]);
    expect(code).toBe(0);
    const lines = jsonLines(stdout) as Record<string, unknown>[];
    const byKey = new Map(
      lines.filter((l) => l.part === undefined || l.part === 0).map((l) => [JSON.stringify(l.key), l]),
    );
    expect(byKey.get('"user:1"')).toMatchObject({
      db: 0,
      type: 'hash',
      value: expect.arrayContaining([
        ['name', 'Ada'],
        ['age', '36'],
      ]),
    });
    expect(byKey.get('"queue"')).toMatchObject({ type: 'list', value: ['a', 'b', 'c'] });
    expect(byKey.get('"binary"')).toMatchObject({
      type: 'string',
      value: { base64: Buffer.from([0xff, 0xfe, 0x00]).toString('base64') },
    });
    expect((byKey.get('"scores"')?.value as { score: unknown }[] | undefined)?.map((m) => m.score)).toEqual([
      '-inf',
      1.5,
      'inf',
    ]);
    expect(byKey.get('"expiring"')?.expireAt).toBeGreaterThan(Date.now());
    expect(byKey.get('"events"')).toMatchObject({
      type: 'stream',
      value: { entries: [{ id: '1-1', fields: [['type', 'created']] }] },
    });
    expect(byKey.get('"other-db"')).toMatchObject({ db: 3 });
    // A list of 3000 elements comes in parts that add up to the whole list, in order.
    const parts = lines.filter((l) => l.key === 'big');
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.at(-1)?.last).toBe(true);
    expect(parts.flatMap((p) => p.value as string[])).toEqual(
      Array.from({ length: 3000 }, (_, i) => `item-${2999 - i}`),
    );
    expect(stderr).toMatch(/9 keys, .*checksum verified/);
  });

  it('loses nothing in JSON: __proto__ fields, duplicate stream fields, binary field names', async () => {
    const c = server.createClient();
    await c.hset('proto', '__proto__', 'kept', 'constructor', 'also');
    // Redis keeps a stream entry's fields as given, repeated names included.
    await c.xadd('dups', '2-1', 'k', 'v1', 'k', 'v2', Buffer.from([0xc3, 0x28]), 'bin');
    await c.hset('binfield', Buffer.from([0xff, 0x00]), 'x', 'text', 'y');
    await c.set(Buffer.from([0x80, 0x81]), Buffer.from('value'));
    await server.command('SAVE');
    const { code, stdout } = await runCli(['rdb', file, '--key', '*']);
    // The other tests read the same file: take the keys out again.
    await c.del('proto', 'dups', 'binfield', Buffer.from([0x80, 0x81]));
    await server.command('SAVE');
    expect(code).toBe(0);
    const lines = jsonLines(stdout) as Record<string, unknown>[];
    const byKey = new Map(lines.map((l) => [JSON.stringify(l.key), l]));
    const sorted = (pairs: unknown) =>
      [...(pairs as unknown[][])].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(sorted(byKey.get('"proto"')?.value)).toEqual([
      ['__proto__', 'kept'],
      ['constructor', 'also'],
    ]);
    expect(byKey.get('"dups"')?.value).toMatchObject({
      entries: [
        {
          id: '2-1',
          fields: [
            ['k', 'v1'],
            ['k', 'v2'],
            [{ base64: Buffer.from([0xc3, 0x28]).toString('base64') }, 'bin'],
          ],
        },
      ],
    });
    expect(sorted(byKey.get('"binfield"')?.value)).toEqual(
      sorted([
        [{ base64: Buffer.from([0xff, 0x00]).toString('base64') }, 'x'],
        ['text', 'y'],
      ]),
    );
    expect(byKey.get(JSON.stringify({ base64: Buffer.from([0x80, 0x81]).toString('base64') }))?.value).toBe('value');
  });

  it('keeps field expiries beside their fields, even next to a binary field name (Redis 7.4+)', async (ctx) => {
    // Hash field TTLs need Redis 7.4: the shared folder of servers has one when Debian's is older.
    const binary = versionAtLeast(server.version, '7.4')
      ? server.binary
      : (await listServers()).find((b) => b.version.flavor === 'redis' && versionAtLeast(b.version, '7.4'));
    if (!binary) return ctx.skip('no Redis 7.4 or newer here for hash field TTLs');
    const ttl = await spawnRedis({ binary });
    try {
      const c = ttl.createClient();
      await c.hset('h', Buffer.from([0xff]), 'a', 'plain', 'b', 'forever', 'c');
      await c.call('HPEXPIREAT', 'h', '4102444800000', 'FIELDS', '2', Buffer.from([0xff]), 'plain');
      await ttl.command('SAVE');
      const { code, stdout } = await runCli(['rdb', join(ttl.dir, 'dump.rdb')]);
      expect(code).toBe(0);
      const [line] = jsonLines(stdout) as { value: unknown[][] }[];
      const sorted = [...(line?.value ?? [])].sort((a, b) => JSON.stringify(a[0]).localeCompare(JSON.stringify(b[0])));
      expect(sorted).toEqual([
        ['forever', 'c'],
        ['plain', 'b', 4102444800000],
        [{ base64: '/w==' }, 'a', 4102444800000],
      ]);
    } finally {
      await ttl.stop();
    }
  });

  it('says in one line what is wrong with a negative --db', async () => {
    const { code, stderr } = await runCli(['rdb', file, '--db', '-1']);
    expect(code).toBe(2);
    expect(stderr).toBe('redis-events rdb: --db must be an integer >= 0, got "-1"\n');
  });

  it('filters by database, key glob and type', async () => {
    const { code, stdout } = await runCli(['rdb', file, '--db', '0', '--key', 'u*:[0-9]', '--type', 'hash,list']);
    expect(code).toBe(0);
    expect((jsonLines(stdout) as { key: string }[]).map((l) => l.key)).toEqual(['user:1']);
  });

  it('prints a memory report and the biggest keys, as tables or JSON', async () => {
    const memory = await runCli(['rdb', file, '--memory']);
    expect(memory.code).toBe(0);
    expect(memory.stdout).toMatch(/^db\s+type\s+keys\s+with expiry\s+elements\s+bytes of data/);
    expect(memory.stdout).toMatch(/\n3\s+list\s+1\s+0\s+3000\s/);
    const json = await runCli(['rdb', file, '--memory', '--json']);
    const rows = JSON.parse(json.stdout) as { db: number; type: string; keys: number; expiring: number }[];
    expect(rows.reduce((n, r) => n + r.keys, 0)).toBe(9);
    expect(rows.find((r) => r.db === 0 && r.type === 'string')).toMatchObject({ keys: 2, expiring: 1 });
    const biggest = await runCli(['rdb', file, '--biggest', '1', '--json']);
    expect(JSON.parse(biggest.stdout)).toEqual([
      expect.objectContaining({ key: 'big', db: 3, type: 'list', elements: 3000 }),
    ]);
  });

  it('also prints the header, aux fields and checksum with --meta', async () => {
    const { stdout } = await runCli(['rdb', file, '--meta', '--type', 'string']);
    const lines = jsonLines(stdout) as Record<string, unknown>[];
    // Valkey 9 files start with VALKEY; Valkey writes its version as valkey-ver.
    const magic = readFileSync(file).subarray(0, 6).toString('latin1').startsWith('VALKEY') ? 'VALKEY' : 'REDIS';
    expect(lines[0]).toMatchObject({ kind: 'header', magic });
    const versionField = `${server.version.flavor}-ver`;
    expect(lines.find((l) => l.kind === 'aux' && l.name === versionField)).toMatchObject({
      value: server.version.text.replace(/^\S+ /, ''),
    });
    expect(lines.at(-1)).toMatchObject({ kind: 'end', checksumVerified: true });
  });

  it('fails with exit code 1 and a message on a damaged or missing file, 2 on wrong usage', async () => {
    const damaged = join(server.dir, 'damaged.rdb');
    const { readFile, writeFile } = await import('node:fs/promises');
    const bytes = await readFile(file);
    await writeFile(damaged, bytes.subarray(0, bytes.length - 20));
    const broken = await runCli(['rdb', damaged]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/redis-events rdb: .*damaged\.rdb: /);
    expect(broken.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect((await runCli(['rdb', join(server.dir, 'absent.rdb')])).stderr).toMatch(/cannot read .*ENOENT/);
    expect((await runCli(['rdb'])).code).toBe(2);
    const badOption = await runCli(['rdb', file, '--frobnicate']);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/--frobnicate/);
    expect((await runCli(['rdb', file, '--type', 'blob'])).stderr).toMatch(/--type must be one of/);
  });

  it('has help', async () => {
    const { code, stdout } = await runCli(['rdb', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: redis-events rdb <file> \[options\]/);
    expect(stdout).toMatch(/--biggest <n>/);
  });
});
