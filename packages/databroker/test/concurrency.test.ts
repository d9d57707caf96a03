// 16 writers on 16 connections, 1,000 puts each, while a sync reader follows: every version is
// unique and increasing, and the reader sees every change once, in order. On a standalone server
// and on a cluster.
import { type RedisCluster, type SpawnedRedis, spawnRedis, startCluster } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataBroker, type DataRecord } from '../src/index.ts';
import type { RedisClient } from '../src/link.ts';
import { uniqueName } from './helpers.ts';

const WRITERS = 16;
const PUTS = Number(process.env.DATABROKER_SOAK_PUTS ?? 1000);

async function writersAndReader(
  client: () => RedisClient,
  scripting: (writer: number) => boolean = () => false,
): Promise<void> {
  const name = uniqueName('concurrency');
  const reader = new DataBroker<{ w: number; i: number }>(client(), { name, expiryMs: 0, pollIntervalMs: 200 });
  const writers = Array.from(
    { length: WRITERS },
    (_, w) => new DataBroker<{ w: number; i: number }>(client(), { name, expiryMs: 0, scripting: scripting(w) }),
  );
  try {
    const { serverVersion, recordVersion } = await reader.syncLatest();
    const stream = reader.sync('', serverVersion, recordVersion);
    const total = WRITERS * PUTS;
    const seen: DataRecord<{ w: number; i: number }>[] = [];
    const reading = (async () => {
      for await (const record of stream) {
        seen.push(record);
        if (seen.length === total) break;
      }
    })();
    reading.catch(() => {}); // awaited below: a failure must surface there, not as unhandled
    const versions = await Promise.all(
      writers.map(async (writer, w) => {
        const mine: number[] = [];
        for (let i = 0; i < PUTS; i++) {
          const { records } = await writer.put([{ type: `t${w % 4}`, id: `${w}-${i}`, data: { w, i } }]);
          mine.push((records[0] as DataRecord<unknown>).version);
        }
        return mine;
      }),
    );
    // Each writer's versions increase; all of them together are unique and leave no gap.
    for (const mine of versions)
      for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThan(mine[i - 1] as number);
    const all = versions.flat();
    expect(new Set(all).size).toBe(total);
    expect(Math.max(...all) - recordVersion).toBe(total);
    await reading;
    // The reader saw each change exactly once, in version order, with the data written at it.
    expect(seen.map((r) => r.version)).toEqual(Array.from({ length: total }, (_, i) => recordVersion + i + 1));
    const byVersion = new Map(seen.map((r) => [r.version, r]));
    versions.forEach((mine, w) => {
      mine.forEach((version, i) => {
        expect(byVersion.get(version)?.data).toEqual({ w, i });
      });
    });
    expect((await reader.versions()).latestRecordVersion).toBe(recordVersion + total);
  } finally {
    await Promise.all([reader.close(), ...writers.map((w) => w.close())]);
  }
}

describe('16 writers of 1,000 puts each, with a sync reader', () => {
  describe('standalone', () => {
    let server: SpawnedRedis;
    beforeAll(async () => {
      server = await spawnRedis();
    });
    afterAll(() => server.stop());

    it('versions unique and increasing; the reader sees every change once, in order', async () => {
      await writersAndReader(() => server.createClient());
    }, 120_000);

    it('the same with scripted puts, and with scripted and WATCH/MULTI writers mixed', async () => {
      await writersAndReader(
        () => server.createClient(),
        () => true,
      );
      await writersAndReader(
        () => server.createClient(),
        (w) => w % 2 === 0,
      );
    }, 120_000);

    it('lets no writer starve: a writer that keeps losing takes the turn and commits', async () => {
      // With 16 contending writers, losing 10 optimistic rounds in a row is common; turns make
      // a starving writer commit next, so 10 attempts are always enough.
      const name = uniqueName('fair');
      const writers = Array.from(
        { length: WRITERS },
        () =>
          new DataBroker(server.createClient(), { name, expiryMs: 0, scripting: false, retry: { maxAttempts: 10 } }),
      );
      try {
        await Promise.all(
          writers.map(async (writer, w) => {
            for (let i = 0; i < 150; i++) await writer.put([{ type: 't', id: `${w}-${i}`, data: i }]);
          }),
        );
        expect((await writers[0]?.versions())?.latestRecordVersion).toBe(WRITERS * 150);
      } finally {
        await Promise.all(writers.map((w) => w.close()));
      }
    }, 60_000);

    it('says "transaction reached maximum number of retries" when the limit is reached', async () => {
      const name = uniqueName('exhausted');
      const hasty = new DataBroker(server.createClient(), {
        name,
        expiryMs: 0,
        scripting: false,
        retry: { maxAttempts: 1 },
      });
      const others = Array.from(
        { length: 8 },
        () => new DataBroker(server.createClient(), { name, expiryMs: 0, scripting: false }),
      );
      let stop = false;
      const busy = others.map(async (db, w) => {
        for (let i = 0; !stop; i++) await db.put([{ type: 't', id: `${w}-${i}`, data: i }]);
      });
      try {
        let error: (Error & { code?: string }) | undefined;
        for (let i = 0; i < 500 && !error; i++) {
          await hasty.put([{ type: 't', id: `h-${i}`, data: i }]).catch((err: Error & { code?: string }) => {
            error = err;
          });
        }
        expect(error?.code).toBe('ERR_DATABROKER_RETRIES_EXHAUSTED');
        expect(error?.message).toMatch(/transaction reached maximum number of retries \(1\)/);
      } finally {
        stop = true;
        await Promise.all(busy);
        await Promise.all([hasty.close(), ...others.map((db) => db.close())]);
      }
    }, 60_000);
  });

  describe('cluster', () => {
    let cluster: RedisCluster;
    beforeAll(async () => {
      cluster = await startCluster({ masters: 3 });
    });
    afterAll(() => cluster.stop());

    it('versions unique and increasing; the reader sees every change once, in order', async () => {
      await writersAndReader(() => cluster.createClient());
    }, 120_000);
  });
});
