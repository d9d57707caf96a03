// Memory stays flat as the RDB and its largest key grow: each size is parsed in its own process
// and its peak RSS compared. The default sizes keep the suite quick; REPLICATION_LARGE_RDB=1
// adds the 1 GiB file with a 200 MB key (and its 100 MB list and 50 MB string): `pnpm test:large`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeLargeRdb } from './large-rdb.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'replication-memory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Measured {
  keys: number;
  parts: number;
  maxPart: number;
  hashFields: number;
  baselineRss: number;
  peakRss: number;
  maxLiveHeap: number;
  seconds: number;
}

function measure(
  totalBytes: number,
  bigKeyBytes: number,
  nodeFlags: string[],
): Measured & { file: number; expectedKeys: number; fields: number } {
  const path = join(dir, `large-${totalBytes}.rdb`);
  const info = writeLargeRdb({ path, totalBytes, bigKeyBytes });
  try {
    // The sources import workspace packages through their source condition, as the tests do.
    const script = join(import.meta.dirname, 'measure-parse.ts');
    const out = execFileSync(process.execPath, ['--conditions=@redis-events/source', ...nodeFlags, script, path], {
      encoding: 'utf8',
    });
    return {
      ...(JSON.parse(out.trim()) as Measured),
      file: info.bytes,
      expectedKeys: info.keys,
      fields: info.bigHashFields,
    };
  } finally {
    rmSync(path, { force: true });
  }
}

function report(label: string, m: ReturnType<typeof measure>, liveHeap: boolean): void {
  console.log(
    `${label}: ${(m.file / MiB).toFixed(0)} MiB RDB, ${m.keys} keys, ${m.parts} entry events, peak RSS ${(m.peakRss / MiB).toFixed(1)} MiB (runtime baseline ${(m.baselineRss / MiB).toFixed(1)} MiB)${liveHeap ? `, live heap at most ${(m.maxLiveHeap / MiB).toFixed(1)} MiB above the start` : ''}`,
  );
}

describe('memory', () => {
  const sizes: [string, number, number][] = [
    ['small', 16 * MiB, 4 * MiB],
    ['medium', 160 * MiB, 64 * MiB],
  ];
  if (process.env.REPLICATION_LARGE_RDB === '1') sizes.push(['1 GiB, 200 MB key', 1024 * MiB, 200 * MiB]);

  it('holds a few MiB of live data, and a flat peak RSS, whatever the size of the RDB or of its largest key', () => {
    for (const [label, total, big] of sizes) {
      const m = measure(total, big, ['--expose-gc']);
      report(label, m, true);
      expect(m.keys).toBe(m.expectedKeys);
      expect(m.hashFields).toBe(m.fields);
      expect(m.parts).toBeGreaterThan(m.keys);
      // What the parser keeps alive: the unit in progress, one part (<= 1 MiB or 1024 elements), the chunk.
      expect(m.maxLiveHeap).toBeLessThan(32 * MiB);
    }
    // Peak RSS counts garbage V8 has not collected yet, so it rises to a plateau set by V8's heap
    // sizing, not by the file: it must stay far below the file and its largest key.
    for (const [label, total, big] of sizes) {
      const m = measure(total, big, []);
      report(`${label} (no forced GC)`, m, false);
      expect(m.peakRss - m.baselineRss).toBeLessThan(256 * MiB);
    }
  }, 600_000);
});
