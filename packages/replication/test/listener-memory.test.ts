// A live full sync costs the listener bounded memory, however large the snapshot or its largest
// key: a master loads a generated RDB (a big hash, list and string, then small keys), and a
// listener in its own process takes a full sync from it while its memory is measured. The
// default size keeps the suite quick; REPLICATION_LARGE_RDB=1 syncs 1 GiB with a 200 MB key
// (`pnpm test:large`).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findServer, spawnRedis, versionAtLeast } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { writeLargeRdb } from './large-rdb.ts';
import type { EventMeasure } from './measure-events.ts';

const MiB = 1024 * 1024;

describe('memory of a live full sync', () => {
  const sizes: [string, number, number][] = [['64 MiB, 16 MB key', 64 * MiB, 16 * MiB]];
  if (process.env.REPLICATION_LARGE_RDB === '1') sizes.push(['1 GiB, 200 MB key', 1024 * MiB, 200 * MiB]);

  it.each(sizes)(
    '%s: a few MiB of live heap and a bounded peak RSS',
    async (label, totalBytes, bigKeyBytes) => {
      const binary = await findServer();
      // No LZF: the snapshot the master sends is about as large as the file it loaded.
      await using master = await spawnRedis({ binary, startTimeoutMs: 600_000, config: { rdbcompression: 'no' } });
      // The master loads the generated file at start (Redis 7.0 reads RDB 10, later servers 11).
      await master.kill();
      const version = versionAtLeast(binary.version, '7.2') ? 11 : 10;
      const info = writeLargeRdb({ path: join(master.dir, 'dump.rdb'), totalBytes, bigKeyBytes, version });
      await master.start();
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--conditions=@redis-events/source',
          '--expose-gc',
          join(import.meta.dirname, 'measure-live.ts'),
          String(master.port),
        ],
        { encoding: 'utf8', maxBuffer: 1 << 20 },
      );
      const m = JSON.parse(stdout.trim()) as EventMeasure;
      console.log(
        `${label}: ${(m.rdbBytes / MiB).toFixed(0)} MiB snapshot from ${binary.version.text}, ${m.keys} keys, ${m.parts} entry events in ${m.seconds.toFixed(1)} s (${(m.rdbBytes / MiB / m.seconds).toFixed(0)} MiB/s), peak RSS ${(m.peakRss / MiB).toFixed(0)} MiB (runtime baseline ${(m.baselineRss / MiB).toFixed(0)} MiB), live heap at most ${(m.maxLiveHeap / MiB).toFixed(1)} MiB above the start`,
      );
      expect(m.keys).toBe(info.keys);
      expect(m.hashFields).toBe(info.bigHashFields);
      expect(m.rdbBytes).toBeGreaterThan(totalBytes * 0.8);
      expect(m.maxLiveHeap).toBeLessThan(32 * MiB);
      expect(m.peakRss - m.baselineRss).toBeLessThan(256 * MiB);
    },
    1_800_000,
  );
});
