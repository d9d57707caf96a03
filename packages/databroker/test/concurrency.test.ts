// 16 writers on 16 connections, 1,000 puts each, while a sync reader follows: every version is
// unique and increasing, and the reader sees every change once, in order. On a standalone server
// and on a cluster.
import { type RedisCluster, type SpawnedRedis, spawnRedis, startCluster } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../src/connection.ts';
import { DataBroker, type DataRecord } from '../src/index.ts';
import { uniqueName } from './helpers.ts';

const WRITERS = 16;
const PUTS = Number(process.env.DATABROKER_SOAK_PUTS ?? 1000);

async function writersAndReader(client: () => RedisClient): Promise<void> {
  const name = uniqueName('concurrency');
  const reader = new DataBroker<{ w: number; i: number }>(client(), { name, expiryMs: 0, pollIntervalMs: 200 });
  const writers = Array.from(
    { length: WRITERS },
    () => new DataBroker<{ w: number; i: number }>(client(), { name, expiryMs: 0 }),
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
