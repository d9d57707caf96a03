// Real servers write the fixtures: each server of the matrix (../shared/redis) and Debian's
// redis-server gets a dataset covering every type and encoding it can write (forced with the
// size thresholds), saves it, and the parser must find exactly what was written. The same file
// is then parsed byte by byte and in random pieces, and the events must not change.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  listServers,
  type ServerBinary,
  type SpawnedRedis,
  selectedServers,
  spawnRedis,
  versionAtLeast,
} from '@redis-events/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseDumpPayload,
  parseRdbFile,
  RdbError,
  type RdbEvent,
  type RdbStreamEntry,
  wholeEntries,
} from '../src/index.ts';
import { entries, parseBytes, plain } from './event-helpers.ts';
import { type Dataset, expectDataset, sortedValue, spawnConfig, writeDataset } from './server-dataset.ts';

async function matrix(): Promise<ServerBinary[]> {
  if (process.env.REDIS_SERVER || process.env.REDIS_SERVER_BIN) return selectedServers();
  const onPath = await selectedServers({ PATH: process.env.PATH });
  return [...onPath, ...(await listServers())];
}

const servers = await matrix();

async function saveAndRead(server: SpawnedRedis): Promise<Buffer> {
  await server.command('SAVE');
  return readFile(join(server.dir, 'dump.rdb'));
}

describe.each(servers.map((s) => [`${s.name} (${s.version.text})`, s] as const))(
  'RDB written by %s',
  (_name, binary) => {
    let server: SpawnedRedis;
    let dataset: Dataset;
    let rdb: Buffer;
    let events: RdbEvent[];
    let startedAt: number;

    beforeAll(async () => {
      startedAt = Date.now();
      server = await spawnRedis({ binary, config: spawnConfig(binary) });
      const client = server.createClient({ protocol: 2 });
      dataset = await writeDataset(client, binary);
      rdb = await saveAndRead(server);
      events = parseBytes(rdb, { maxPartBytes: 64 * 1024 });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('has the header, the aux fields and a verified checksum', () => {
      const valkey9 = binary.version.flavor === 'valkey' && versionAtLeast(binary.version, 'valkey 9');
      expect(events[0]).toMatchObject({ kind: 'header', magic: valkey9 ? 'VALKEY' : 'REDIS' });
      const aux = Object.fromEntries(events.filter((e) => e.kind === 'aux').map((e) => [e.name, e.value.toString()]));
      const { major, minor, patch } = binary.version;
      expect(aux[binary.version.flavor === 'valkey' ? 'valkey-ver' : 'redis-ver']).toBe(`${major}.${minor}.${patch}`);
      expect(aux['redis-bits']).toBe('64');
      expect(Number(aux.ctime)).toBeGreaterThan(startedAt / 1000 - 60);
      expect(events.at(-1)).toMatchObject({ kind: 'end', checksumVerified: true, size: rdb.length });
    });

    it('holds exactly the keys written, with their values and expiries', () => {
      expectDataset(entries(events), dataset);
    });

    it('uses every encoding the thresholds force', () => {
      const types = new Set(events.filter((e) => e.kind === 'entry').map((e) => e.rdbType));
      for (const t of dataset.types) expect(types, `type ${t}`).toContain(t);
      expect(events.filter((e) => e.kind === 'entry').every((e) => e.idle !== undefined && e.freq === undefined)).toBe(
        true,
      );
    });

    it('reads consumer groups, pending entries and consumers', () => {
      const stream = entries(events).find((e) => e.key === 'stream') as { value: { meta: Record<string, unknown> } };
      const meta = stream.value.meta as {
        length: number;
        lastId: string;
        groups: {
          name: string;
          lastDeliveredId: string;
          pending: { id: string; deliveryCount: number; consumer?: string; deliveryTime: number }[];
          consumers: { name: string; pending: string[]; seenTime: number }[];
        }[];
      };
      expect(meta.length).toBe(9);
      expect(meta.lastId).toBe('1009-9');
      const [g1, g2] = meta.groups;
      expect(g1?.name).toBe('g1');
      expect(g1?.lastDeliveredId).toBe('1004-4');
      expect(g1?.pending.map((p) => [p.id, p.consumer, p.deliveryCount])).toEqual([
        ['1000-0', 'alice', 1],
        ['1002-2', 'alice', 1],
        ['1003-3', 'bob', 1],
        ['1004-4', 'bob', 1],
      ]);
      for (const p of g1?.pending ?? []) expect(p.deliveryTime).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(g1?.consumers.map((c) => [c.name, c.pending])).toEqual([
        ['alice', ['1000-0', '1002-2']],
        ['bob', ['1003-3', '1004-4']],
      ]);
      expect(g2).toMatchObject({ name: 'g2', lastDeliveredId: '1009-9', pending: [] });
      expect(g2?.consumers.map((c) => c.name)).toEqual(['carol']);
    });

    // Only servers that write idempotent producers (Redis 8.6+) get this case.
    if (binary && binary.version.flavor === 'redis' && versionAtLeast(binary.version, '8.6'))
      it('reads the idempotent producers of a Redis 8.6 stream', () => {
        const entry = events.find(
          (e) => e.kind === 'entry' && e.key.toString() === 'stream:idmp' && e.last,
        ) as RdbStreamEntry;
        expect(entry.rdbType).toBe(26);
        const idmp = entry.value.meta?.idmp;
        expect(idmp?.producers.map((p) => [p.pid.toString(), p.entries.map((e) => e.iid.toString())])).toEqual([
          ['producer-1', ['msg-1']],
        ]);
        expect(idmp?.iidsDuplicates).toBe(1);
      });

    it('reads the function library', () => {
      const fn = events.find((e) => e.kind === 'function');
      expect(fn && plain(fn.code)).toBe(dataset.functionCode);
    });

    it('gives the same events byte by byte and in random pieces', () => {
      const simple = (list: RdbEvent[]) => JSON.stringify(plain(entries(list)));
      const whole = simple(events);
      const byteByByte = parseBytes(
        rdb,
        { maxPartBytes: 64 * 1024 },
        Array.from({ length: rdb.length }, (_, i) => i),
      );
      expect(simple(byteByByte)).toBe(whole);
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: rdb.length - 1 }), { maxLength: 200 }), (cuts) => {
          const splits = [...cuts].sort((a, b) => a - b);
          expect(simple(parseBytes(rdb, { maxPartBytes: 64 * 1024 }, splits))).toBe(whole);
        }),
        { numRuns: 25 },
      );
    });

    it('fails with a typed error, never a crash, when bytes of the file are damaged', () => {
      fc.assert(
        fc.property(
          fc.array(fc.record({ at: fc.nat(rdb.length - 1), byte: fc.nat(255) }), { minLength: 1, maxLength: 4 }),
          (changes) => {
            const damaged = Buffer.from(rdb);
            for (const { at, byte } of changes) damaged[at] = byte;
            try {
              parseBytes(damaged, { verifyChecksum: false, maxBlobBytes: 1 << 22 });
            } catch (err) {
              expect(err).toBeInstanceOf(RdbError);
            }
            // With the checksum on, a change that parses must be caught by the CRC.
            if (!damaged.equals(rdb)) expect(() => parseBytes(damaged, { maxBlobBytes: 1 << 22 })).toThrow(RdbError);
          },
        ),
        { numRuns: 60 },
      );
    });

    it('parses the file through parseRdbFile and wholeEntries to the same content', async () => {
      const path = join(server.dir, 'dump.rdb');
      const viaFile: RdbEvent[] = [];
      for await (const e of wholeEntries(parseRdbFile(path, { maxPartBytes: 64 * 1024 }))) viaFile.push(e);
      expect(JSON.stringify(plain(entries(viaFile)))).toBe(JSON.stringify(plain(entries(events))));
    });

    it('decodes the DUMP payload of every key to the value the RDB holds', async () => {
      const client = server.createClient({ protocol: 2 });
      const fromRdb = entries(events);
      for (const want of dataset.expected) {
        await client.select(want.db);
        const payload = await client.dumpBuffer(Buffer.from(want.key, 'latin1'));
        expect(payload, want.key).toBeInstanceOf(Buffer);
        const decoded = parseDumpPayload(payload as Buffer);
        expect(decoded.checksumVerified).toBe(true);
        const [entry] = entries(decoded.parts);
        const rdb = fromRdb.find((e) => e.db === want.db && e.key === want.key);
        expect(entry?.type, want.key).toBe(rdb?.type);
        if (want.type === 'stream') expect(entry?.value, want.key).toEqual(rdb?.value);
        else if (want.unordered) expect(sortedValue(entry?.value), want.key).toEqual(sortedValue(rdb?.value));
        else expect(entry?.value, want.key).toEqual(rdb?.value);
      }
    });

    it('reads LFU counters when the server runs an LFU policy', async () => {
      await server.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lfu');
      const lfu = parseBytes(await saveAndRead(server));
      const keys = lfu.filter((e) => e.kind === 'entry');
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((e) => e.freq !== undefined && e.idle === undefined)).toBe(true);
    });
  },
);

// Cluster nodes of Redis 7.4+ write SLOT_INFO before each slot's keys.
const clusterServers = servers.filter((s) => s.version.flavor === 'redis' && versionAtLeast(s.version, '7.4'));
describe.each(clusterServers.map((s) => [s.name, s] as const))(
  'SLOT_INFO from a cluster node (%s)',
  (_name, binary) => {
    it('attaches each key its hash slot', async () => {
      await using server = await spawnRedis({ binary, config: { 'cluster-enabled': 'yes' } });
      await server.command('CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
      const client = server.createClient({ protocol: 2 });
      const keys = ['alpha', 'beta', '{user:1}:a', '{user:1}:b'];
      for (let i = 0; ; i++) {
        try {
          for (const k of keys) await client.set(k, k);
          break;
        } catch (err) {
          if (i > 100) throw err; // the single-node cluster needs a moment to own its slots
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const slots = new Map<string, number>();
      for (const k of keys) slots.set(k, Number(await server.command('CLUSTER', 'KEYSLOT', k)));
      const parsed = parseBytes(await saveAndRead(server));
      const found = entries(parsed).map((e) => [e.key, e.slot]);
      expect(found.sort()).toEqual(keys.map((k) => [k, slots.get(k)]).sort());
      expect(parsed.filter((e) => e.kind === 'slot-info').length).toBe(new Set(slots.values()).size);
    });
  },
);
