// A short run of the RDB parser's mutation fuzzer (test/fuzz/rdb-target.ts) with a fixed seed, so
// that the check keeps what it found fixed; `pnpm --filter @redis-events/replication fuzz` runs it
// for as long as you like with new seeds. REPLICATION_FUZZ=<runs> makes this run longer.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkRdbInput, runRdbFuzz } from './fuzz/rdb-target.ts';

const runs = Number(process.env.REPLICATION_FUZZ ?? 0) || 1500;

describe('the RDB parser under mutation (fixed seed)', () => {
  it('gives events or a typed error, the same whatever the chunking, in memory that follows the input', () => {
    const report = runRdbFuzz({ seed: 20251207, runs, everyTruncationUpTo: 8192 });
    // The run reached every kind of outcome: a fuzzer stuck on one error would prove little.
    expect(report.cases).toBeGreaterThan(runs);
    expect(report.parsed).toBeGreaterThan(50);
    expect(Object.keys(report.errors)).toEqual(
      expect.arrayContaining([
        'ERR_RDB_TRUNCATED',
        'ERR_RDB_CORRUPT',
        'ERR_RDB_LIMIT',
        'ERR_RDB_CHECKSUM',
        'ERR_RDB_UNKNOWN_TYPE',
        'ERR_RDB_VERSION',
      ]),
    );
  }, 120_000);

  // Inputs the fuzzer once found (saved by test/fuzz/run.ts into test/fixtures/fuzz): each gives events or a typed error.
  const dir = new URL('./fixtures/fuzz/', import.meta.url);
  const found = (() => {
    try {
      return readdirSync(dir).filter((name) => name.endsWith('.rdb'));
    } catch {
      return [];
    }
  })();
  for (const name of found) {
    it(`keeps every promise on ${name}`, () => {
      const input = readFileSync(new URL(name, dir));
      for (const options of [{}, { maxBlobBytes: 1 << 16, maxPartBytes: 1024, batchSize: 3, verifyChecksum: false }])
        for (let seed = 1; seed <= 5; seed++) checkRdbInput(input, options, seed); // seeds: other chunkings
    });
  }
});
