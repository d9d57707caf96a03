// Defects an outside review found (issue 16), each reproduced against a real server, and the same
// class of defect elsewhere: damaged stored data must cost the damaged entry only, a server-version
// reset must wake waiting streams at once, and a filter on a field that cannot be filtered on
// must be refused rather than match nothing.
import { randomBytes } from 'node:crypto';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataBroker, type DataBrokerError, type DataRecord, type Logger } from '../src/index.ts';
import { broker, collect, rejection, take, uniqueName } from './helpers.ts';

let server: SpawnedRedis;
let raw: Redis;
beforeAll(async () => {
  server = await spawnRedis();
  raw = server.createClient({ protocol: 2 });
});
afterAll(() => server.stop());

const ids = (records: readonly DataRecord<unknown>[]) => records.map((r) => r.id);

/** A logger that keeps what it was told. */
function recorder(): Logger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    warnings,
    errors,
    debug() {},
    warn: (_context, message) => warnings.push(message),
    error: (_context, message) => errors.push(message),
  };
}

/** Replaces the change stored at `version` with `bytes`. */
async function damageChange(db: DataBroker<unknown>, version: number, bytes: Buffer): Promise<void> {
  await raw.zremrangebyscore(db.keys.changes, version, version);
  await raw.zadd(db.keys.changes, version, bytes);
}

describe.each([
  ['scripts', 'auto'],
  ['WATCH/MULTI', false],
] as const)('one damaged entry (%s)', (_, scripting) => {
  it('costs sync only that entry: the others arrive, and it is reported by logger, event, counter', async () => {
    const logger = recorder();
    const db = broker(server.createClient(), { logger, scripting });
    const { serverVersion } = await db.put(Array.from({ length: 5 }, (_, i) => ({ type: 't', id: `r${i}`, data: i })));
    await damageChange(db, 3, Buffer.from('not an entry'));
    const events: DataBrokerError[] = [];
    db.on('corrupt', (err) => events.push(err));
    const stream = db.sync('', serverVersion, 0, { wait: false });
    expect(ids(await collect(stream))).toEqual(['r0', 'r1', 'r3', 'r4']);
    expect(stream.recordVersion).toBe(5);
    expect(events).toHaveLength(1);
    expect(events[0]?.code).toBe('ERR_DATABROKER_CORRUPT');
    expect(events[0]?.message).toMatch(/version 3/);
    expect(db.stats.corruptSkipped).toBe(1);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(/sync skipped a damaged entry.*version 3/);
    await db.close();
  });

  it('stops sync with the error when asked to (onCorruptEntry: "fail"), at the damaged entry', async () => {
    const db = broker(server.createClient(), { onCorruptEntry: 'fail', scripting });
    const { serverVersion } = await db.put(Array.from({ length: 5 }, (_, i) => ({ type: 't', id: `r${i}`, data: i })));
    await damageChange(db, 3, Buffer.from([1, 0, 0, 0]));
    const stream = db.sync('', serverVersion, 0, { wait: false });
    expect(ids(await take(stream, 2))).toEqual(['r0', 'r1']);
    expect((await rejection(stream.next())).code).toBe('ERR_DATABROKER_CORRUPT');
    expect(stream.recordVersion).toBe(2);
    await db.close();
  });

  it('costs a waiting sync only that entry when it arrives in a later page', async () => {
    const name = uniqueName();
    const reader = broker(server.createClient(), { name, scripting, batchSize: 2 });
    const writer = broker(server.createClient(), { name, scripting });
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const stream = reader.sync('', serverVersion, recordVersion);
    await writer.put([{ type: 't', id: 'a', data: 1 }]);
    expect(ids(await take(stream, 1))).toEqual(['a']);
    // Damaged before the reader reads it: the push it woke for is ignored, the log read skips it.
    await writer.put([{ type: 't', id: 'b', data: 2 }]);
    await damageChange(writer, 2, Buffer.from('garbage'));
    await writer.put([{ type: 't', id: 'c', data: 3 }]);
    const next = await take(stream, 1);
    // The reader may have taken b from its push before the damage: either way, c arrives.
    expect(['b', 'c']).toContain(next[0]?.id);
    if (next[0]?.id === 'b') expect(ids(await take(stream, 1))).toEqual(['c']);
    await stream.close();
    await Promise.all([reader.close(), writer.close()]);
  });

  it('costs syncLatest only the damaged record, with or without a filter', async () => {
    const logger = recorder();
    const db = broker(server.createClient(), { logger, scripting });
    await db.setOptions('t', { indexableFields: ['k'] });
    await db.put(Array.from({ length: 5 }, (_, i) => ({ type: 't', id: `r${i}`, data: { k: i % 2 } })));
    await raw.hset(db.keys.records, '1:t:r2', 'garbage');
    expect(ids(await collect((await db.syncLatest('t')).stream))).toEqual(['r0', 'r1', 'r3', 'r4']);
    expect(ids(await collect((await db.syncLatest('t', { k: 0 })).stream))).toEqual(['r0', 'r4']);
    expect(ids(await collect((await db.syncLatest('t', { id: ['r2', 'r3'] })).stream))).toEqual(['r3']);
    expect(db.stats.corruptSkipped).toBe(3);
    expect(logger.warnings.every((w) => /syncLatest skipped a damaged entry/.test(w))).toBe(true);
    const strict = broker(server.createClient(), { name: db.keys.name, onCorruptEntry: 'fail', scripting });
    expect((await rejection(collect((await strict.syncLatest('t')).stream))).code).toBe('ERR_DATABROKER_CORRUPT');
    await Promise.all([db.close(), strict.close()]);
  });

  it('skips encrypted data that fails authentication, and fails on a wrong key (not damage)', async () => {
    const key = randomBytes(32);
    const db = broker(server.createClient(), { encryptionKey: key, scripting });
    const { serverVersion } = await db.put(Array.from({ length: 3 }, (_, i) => ({ type: 't', id: `r${i}`, data: i })));
    const [member] = (await raw.zrangebyscoreBuffer(db.keys.changes, 2, 2)) as Buffer[];
    const altered = Buffer.from(member as Buffer);
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 0xff;
    await damageChange(db, 2, altered);
    const events: DataBrokerError[] = [];
    db.on('corrupt', (err) => events.push(err));
    expect(ids(await collect(db.sync('', serverVersion, 0, { wait: false })))).toEqual(['r0', 'r2']);
    expect(events.map((e) => e.code)).toEqual(['ERR_DATABROKER_TAMPERED']);
    const other = broker(server.createClient(), { name: db.keys.name, encryptionKey: randomBytes(32), scripting });
    expect((await rejection(collect(other.sync('', serverVersion, 0, { wait: false })))).code).toBe(
      'ERR_DATABROKER_WRONG_KEY',
    );
    await Promise.all([db.close(), other.close()]);
  });

  it('costs puts and snapshots nothing when the stored options of a type are damaged', async () => {
    const logger = recorder();
    const db = broker(server.createClient(), { logger, scripting });
    await db.setOptions('u', { indexableFields: ['k'] });
    await raw.hset(db.keys.options, 't', '{not json');
    await db.put([
      { type: 't', id: 'a', data: { k: 1 } },
      { type: 'u', id: 'b', data: { k: 1 } },
    ]);
    expect(ids(await collect((await db.syncLatest('', { k: 1 })).stream))).toEqual(['b']);
    expect(logger.warnings.some((w) => /options of type "t"/.test(w))).toBe(true);
    expect((await rejection(db.getOptions('t'))).code).toBe('ERR_DATABROKER_CORRUPT'); // asked for: said
    await db.close();
  });
});

describe.each([
  ['scripts', 'auto'],
  ['WATCH/MULTI', false],
] as const)('a server-version reset (%s)', (_, scripting) => {
  it.each([
    ['a small commit (its changes in the message)', 'x'],
    ['a large commit (only its versions in the message)', 'x'.repeat(64 * 1024)],
  ])('wakes a sync waiting at the new versions at once, by %s', async (_, payload) => {
    const name = uniqueName();
    // A poll a minute away: only the notification can end the stream before take() gives up.
    const reader = broker(server.createClient(), { name, scripting, pollIntervalMs: 60_000 });
    const writer = broker(server.createClient(), { name, scripting });
    await writer.put([{ type: 't', id: 'a', data: 1 }]);
    const { serverVersion, recordVersion } = await reader.syncLatest();
    expect(recordVersion).toBe(1);
    const stream = reader.sync('', serverVersion, recordVersion);
    const ended = rejection(take(stream, 1, 5_000));
    await new Promise((resolve) => setTimeout(resolve, 100)); // waiting now
    await raw.flushall();
    const started = performance.now();
    // Another writer starts again at version 1 (then 2): versions at or below the reader's cursor.
    const after = await writer.put([{ type: 't', id: 'b', data: payload }]);
    expect(after.records[0]?.version).toBe(1);
    const err = await ended;
    const noticedMs = performance.now() - started;
    expect(err.code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
    expect(err.message).not.toMatch(/took \d+ of/); // not the test's own timeout
    process.stdout.write(`    reset noticed ${noticedMs.toFixed(1)} ms after the put (${scripting})\n`);
    await Promise.all([reader.close(), writer.close()]);
  });

  it('wakes waiting syncs at once on clear()', async () => {
    const name = uniqueName();
    const reader = broker(server.createClient(), { name, scripting, pollIntervalMs: 60_000 });
    const writer = broker(server.createClient(), { name, scripting });
    await writer.put([{ type: 't', id: 'a', data: 1 }]);
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const ended = rejection(take(reader.sync('', serverVersion, recordVersion), 1, 5_000));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writer.clear();
    expect((await ended).code).toBe('ERR_DATABROKER_INVALID_SERVER_VERSION');
    await Promise.all([reader.close(), writer.close()]);
  });
});

describe('filters on fields that cannot be filtered on', () => {
  it('are refused with the argument error, listing the fields that can be', async () => {
    const db = broker(server.createClient());
    await db.setOptions('a', { indexableFields: ['email', 'team.name'] });
    await db.put([
      { type: 'a', id: '1', data: { email: 'x', team: { name: 'y' } } },
      { type: 'b', id: '2', data: { email: 'x' } },
    ]);
    const err = await rejection(db.syncLatest('', { emial: 'x' }));
    expect(err.code).toBe('ERR_DATABROKER_ARGUMENT');
    expect(err.message).toMatch(/"emial".*not an indexable field.*id, type, \$index, email, team\.name/);
    const typed = await rejection(db.syncLatest('b', { email: 'x' }));
    expect(typed.message).toMatch(/not an indexable field of type "b".*id, type, \$index \(add fields/);
    // Indexable in one of the types scanned: allowed, and matches there only.
    expect(ids(await collect((await db.syncLatest('', { email: 'x' })).stream))).toEqual(['1']);
    await db.close();
  });

  it('are refused in every part of the expression', async () => {
    const db = broker(server.createClient());
    await db.put([{ type: 'a', id: '1', data: { k: 1 } }]);
    const err = await rejection(db.syncLatest('a', { $or: [{ id: '1' }, { $and: [{ nested: { field: 1 } }] }] }));
    expect(err.message).toMatch(/"nested\.field"/);
    await db.close();
  });
});

describe('unknown option fields', () => {
  it('are refused with the argument error, naming the known ones', async () => {
    const db = broker(server.createClient());
    const cases: [() => unknown, RegExp][] = [
      [() => new DataBroker(server.createClient(), { nmae: 'x' } as never), /no option "nmae".*name, codec/],
      [() => new DataBroker(server.createClient(), { onBackgroundError: () => {} } as never), /give a logger/],
      [() => new DataBroker(server.createClient(), { retry: { attempts: 3 } } as never), /retry has no option/],
      [() => db.sync('', 1, 0, { wiat: false } as never), /no option "wiat"/],
      [() => db.setOptions('t', { capacty: 3 } as never), /no option "capacty"/],
      [() => db.get('t', 'a', { sginal: undefined } as never), /no option "sginal"/],
      [() => new DataBroker(server.createClient(), { logger: {} as never }), /logger must have/],
    ];
    for (const [call, message] of cases) {
      let err: (Error & { code?: string }) | undefined;
      try {
        await call();
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.code, String(message)).toBe('ERR_DATABROKER_ARGUMENT');
      expect(err?.message).toMatch(message);
    }
    await db.close();
  });
});
