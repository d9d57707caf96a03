// Bad input: every truncation, random damage, unknown types and opcodes, wrong versions,
// checksum mismatches and limits give a typed RdbError with the byte offset (and the key inside
// a value). Never a crash with another error, never a hang, never silently wrong events.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CommandStreamDecoder,
  parseDumpPayload,
  RdbError,
  RdbParser,
  RdbTransfer,
  ReplicationError,
} from '../src/index.ts';
import { listpack } from './encoders.ts';
import { parseBytes, thrown } from './event-helpers.ts';
import { RdbWriter, type StreamSpec } from './rdb-writer.ts';

/** A one-entry stream with these consumer groups. */
function streamWith(groups: NonNullable<StreamSpec['groups']>): StreamSpec {
  return { nodes: [[{ ms: 1, seq: 0, fields: [['a', 'b']] }]], length: 1, lastId: [1, 0], groups };
}

function richFile(): Buffer {
  return new RdbWriter(11)
    .aux('redis-ver', '7.2.6')
    .function2('#!lua name=x\nredis.register_function("f", function() return 1 end)')
    .functionPreGa('y', 'LUA', 'a library', 'redis.register_function("g", function() return 2 end)')
    .selectDb(0)
    .resizeDb(8, 1)
    .expireMs(1_900_000_000_000)
    .stringValue('s', 'value-value-value-value-value', 'lzf')
    .stringValue('i', '123', 'int')
    .quicklist2('l', [['a', 1, 'b'], { plain: 'plain node' }])
    .setListpack('set', ['a', 'b'])
    .setIntset('is', [1, 2, 3])
    .zsetListpack('z', [['m', '1.5']])
    .zsetBinary('z2', [['m', 2]])
    .hashListpack('h', [['f', 'v']])
    .hashTable('ht', [['f', 'v']])
    .stream(
      'st',
      21,
      streamWith([
        {
          name: 'g',
          lastId: [1, 0],
          pending: [{ ms: 1, seq: 0, deliveryTime: 5, deliveryCount: 1 }],
          consumers: [{ name: 'c', seenTime: 5, pending: [[1, 0]] }],
        },
      ]),
    )
    .module2('m', 'mymodtype', 1, [{ kind: 'string', value: Buffer.from('x') }])
    .end();
}

// REPLICATION_FUZZ=<runs> runs the fuzz properties longer (the default keeps the suite quick).
const fuzzRuns = Number(process.env.REPLICATION_FUZZ ?? 0) || 1500;

describe('truncated input', () => {
  const file = richFile();

  it('reports ERR_RDB_TRUNCATED for every prefix of a file, with an offset inside it', () => {
    for (let cut = 0; cut < file.length; cut++) {
      const err = thrown(() => parseBytes(file.subarray(0, cut)));
      expect(err, `cut at ${cut}`).toBeInstanceOf(RdbError);
      expect((err as RdbError).code, `cut at ${cut}`).toBe('ERR_RDB_TRUNCATED');
      expect((err as RdbError).offset).toBeLessThanOrEqual(cut);
    }
    expect(parseBytes(file).at(-1)?.kind).toBe('end');
  });

  it('names the key whose value was cut', () => {
    const w = new RdbWriter(10).selectDb(0).linkedList('the-list', ['a', 'b', 'c']);
    const cut = w.bytes().subarray(0, -2);
    const err = thrown(() => parseBytes(cut)) as RdbError;
    expect(err.code).toBe('ERR_RDB_TRUNCATED');
    expect(err.key?.toString()).toBe('the-list');
    expect(err.message).toContain('"the-list"');
  });
});

describe('damaged input', () => {
  it('either parses or fails with a typed error, whatever bytes are changed (fuzz)', () => {
    const file = richFile();
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(file.length - 1), byte: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.boolean(),
        (changes, verify) => {
          const damaged = Buffer.from(file);
          for (const { at, byte } of changes) damaged[at] = byte;
          try {
            parseBytes(damaged, { verifyChecksum: verify, maxBlobBytes: 1 << 20 });
          } catch (err) {
            expect(err).toBeInstanceOf(ReplicationError);
            expect(typeof (err as RdbError).offset).toBe('number');
          }
        },
      ),
      { numRuns: fuzzRuns },
    );
  });

  it('parses random bytes after a valid header into a typed error or a valid end, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (tail) => {
        const data = Buffer.concat([Buffer.from('REDIS0011'), tail]);
        try {
          parseBytes(data, { maxBlobBytes: 1 << 16 });
        } catch (err) {
          expect(err).toBeInstanceOf(RdbError);
        }
      }),
      { numRuns: fuzzRuns * 2 },
    );
  });

  it('catches a damaged byte through the checksum', () => {
    const file = richFile();
    const at = file.indexOf('value-value') >= 0 ? file.indexOf('aux') : file.indexOf('plain node');
    const damaged = Buffer.from(file);
    damaged[file.indexOf('plain node')] = 'P'.charCodeAt(0);
    expect(at).toBeGreaterThan(0);
    const err = thrown(() => parseBytes(damaged)) as RdbError;
    expect(err.code).toBe('ERR_RDB_CHECKSUM');
    expect(err.offset).toBe(file.length - 9);
    expect(parseBytes(damaged, { verifyChecksum: false }).at(-1)).toMatchObject({
      kind: 'end',
      checksumVerified: false,
    });
  });

  it('rejects a listpack whose declared size lies', () => {
    const lp = listpack(['a', 'b']);
    lp.writeUInt32LE(lp.length + 5, 0);
    const w = new RdbWriter(10).selectDb(0).key(16, 'h').string(lp);
    const err = thrown(() => parseBytes(w.end())) as RdbError;
    expect(err.code).toBe('ERR_RDB_CORRUPT');
    expect(err.key?.toString()).toBe('h');
    expect(err.message).toMatch(/listpack says/);
  });

  it('rejects a consumer pending entry missing from its group', () => {
    const w = new RdbWriter(11)
      .selectDb(0)
      .stream(
        'st',
        21,
        streamWith([
          { name: 'g', lastId: [1, 0], pending: [], consumers: [{ name: 'c', seenTime: 5, pending: [[1, 0]] }] },
        ]),
      );
    expect(() => parseBytes(w.end())).toThrow(
      expect.objectContaining({ code: 'ERR_RDB_CORRUPT', message: expect.stringContaining('1-0') }),
    );
  });
});

describe('unknown and unsupported', () => {
  // The offset is the type byte's, or for a known type whose value cannot be read, the value's (after the key).
  const cases: [string, (w: RdbWriter) => RdbWriter, string, number, number?][] = [
    ['value type 8 (never assigned)', (w) => w.key(8, 'k'), 'ERR_RDB_UNKNOWN_TYPE', 8],
    ['value type 27 (Redis 8.8 streams)', (w) => w.key(27, 'k'), 'ERR_RDB_UNKNOWN_TYPE', 27],
    ['value type 100', (w) => w.raw(100), 'ERR_RDB_UNKNOWN_TYPE', 100],
    ['opcode 242', (w) => w.raw(242), 'ERR_RDB_UNKNOWN_OPCODE', 242],
    ['pre-GA module values (6)', (w) => w.key(6, 'k').len(5), 'ERR_RDB_UNSUPPORTED', 6, 3],
  ];
  for (const [name, write, code, type, valueAt = 0] of cases) {
    it(`stops at ${name} with ${code} and the offset`, () => {
      const w = new RdbWriter(12).selectDb(0).stringValue('before', 'x');
      const offset = w.bytes().length;
      const err = thrown(() => parseBytes(write(w).end())) as RdbError;
      expect(err.code).toBe(code);
      expect(err.offset).toBe(offset + valueAt);
      expect(err.rdbType).toBe(type);
    });
  }

  it('rejects future versions, other magics and non-RDB input with ERR_RDB_VERSION', () => {
    for (const head of ['REDIS0014', 'REDIS0000', 'VALKEY081', 'VALKEY011', 'MYDB00001', 'GET / HTTP/1.1']) {
      const err = thrown(() => parseBytes(Buffer.from(`${head}\xff`, 'latin1'))) as RdbError;
      expect(err.code, head).toBe('ERR_RDB_VERSION');
      expect(err.offset).toBe(0);
    }
  });

  it('refuses a string above maxBlobBytes instead of buffering it', () => {
    const w = new RdbWriter(10).selectDb(0).key(1, 'list').len(1).len(50_000_000);
    const err = thrown(() => parseBytes(w.bytes(), { maxBlobBytes: 1 << 20 })) as RdbError;
    expect(err.code).toBe('ERR_RDB_LIMIT');
    expect(err.key?.toString()).toBe('list');
  });

  it('bounds the records read as one unit (key metadata, slot imports)', () => {
    const meta = new RdbWriter(13).selectDb(0).raw(243).len(1000);
    expect(() => parseBytes(meta.end())).toThrow(expect.objectContaining({ code: 'ERR_RDB_CORRUPT', rdbType: 243 }));
    const items = Array.from({ length: 1100 }, () => ({ kind: 'uint' as const, value: 1n }));
    const many = new RdbWriter(13)
      .selectDb(0)
      .keyMeta([{ name: 'ABCD', version: 1, flags: 0, items }])
      .stringValue('k', 'v');
    expect(() => parseBytes(many.end())).toThrow(expect.objectContaining({ code: 'ERR_RDB_CORRUPT' }));
    const ranges = new RdbWriter(80, 'VALKEY').raw(243).string('job').len(20000);
    expect(() => parseBytes(ranges.end())).toThrow(expect.objectContaining({ code: 'ERR_RDB_CORRUPT', rdbType: 243 }));
  });

  it('bounds the consumer-group records a stream holds until its last part', () => {
    const w = new RdbWriter(11).selectDb(0).stream(
      'st',
      21,
      streamWith([
        {
          name: 'g',
          lastId: [1, 0],
          pending: Array.from({ length: 20 }, (_, i) => ({ ms: 1, seq: i, deliveryTime: 5, deliveryCount: 1 })),
          consumers: [{ name: 'c', seenTime: 5, pending: [] }],
        },
      ]),
    );
    const data = w.end();
    expect(parseBytes(data, { maxStreamGroupRecords: 21 }).at(-1)?.kind).toBe('end');
    const err = thrown(() => parseBytes(data, { maxStreamGroupRecords: 20 })) as RdbError;
    expect(err.code).toBe('ERR_RDB_LIMIT');
    expect(err.key?.toString()).toBe('st');
  });

  it('refuses a 64-bit length beyond 2^53', () => {
    const w = new RdbWriter(10)
      .selectDb(0)
      .key(1, 'list')
      .raw(0x81, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(() => parseBytes(w.end())).toThrow(expect.objectContaining({ code: 'ERR_RDB_CORRUPT' }));
  });
});

/** How much Buffer memory a call leaves allocated right after it returns or throws (before a GC reclaims it). */
function bufferGrowth(fn: () => unknown): number {
  let most = 0;
  // The largest of three runs: a collection between the allocation and the measure hides one run, not three.
  for (let i = 0; i < 3; i++) {
    const before = process.memoryUsage().arrayBuffers;
    try {
      fn();
    } catch {}
    most = Math.max(most, process.memoryUsage().arrayBuffers - before);
  }
  return most;
}

describe('declared lengths are checked against what arrived', () => {
  const MiB = 1 << 20;
  /** An LZF string header declaring `ulen` decompressed bytes, followed by 5 compressed bytes. */
  const lzfLie = (w: RdbWriter, ulen: number) =>
    w
      .raw(0xc3)
      .len(5)
      .len(ulen)
      .raw(Buffer.from([3, 97, 98, 99, 100]));
  const places: [string, (w: RdbWriter) => RdbWriter][] = [
    ['a list element', (w) => lzfLie(w.selectDb(0).key(1, 'list').len(1), 512 * MiB)],
    ['an aux value', (w) => lzfLie(w.raw(250).string('name'), 512 * MiB)],
    ['a hash field', (w) => lzfLie(w.selectDb(0).key(4, 'hash').len(1), 512 * MiB).string('v')],
    ['a stream node', (w) => lzfLie(w.selectDb(0).key(21, 'st').len(1).string(Buffer.alloc(16)), 512 * MiB)],
    ['a top-level string streamed in parts', (w) => lzfLie(w.selectDb(0).key(0, 'big'), 512 * MiB)],
    ['a top-level string read whole', (w) => lzfLie(w.selectDb(0).key(0, 'small'), 900_000)],
  ];
  for (const [where, write] of places) {
    it(`refuses an LZF header in ${where} whose length 5 compressed bytes cannot produce, before allocating it`, () => {
      const data = write(new RdbWriter(11)).end();
      const offset = data.indexOf(0xc3);
      for (const splits of [[], Array.from({ length: data.length }, (_, i) => i)]) {
        const err = thrown(() => parseBytes(data, {}, splits)) as RdbError;
        expect(err).toBeInstanceOf(RdbError);
        expect(err.code).toBe('ERR_RDB_CORRUPT');
        expect(err.message).toMatch(/LZF string of 5 compressed bytes cannot hold \d+ bytes/);
        expect(err.offset).toBeLessThanOrEqual(offset);
      }
      expect(bufferGrowth(() => parseBytes(data))).toBeLessThan(4 * MiB);
    });
  }

  it('reports a damaged LZF string read in parts at its failing token, however the input is cut', () => {
    // 1000 compressible bytes, streamed (above maxPartBytes), with a back reference made to point before the start.
    const text = Buffer.from('abcdefgh'.repeat(125));
    const file = new RdbWriter(11).selectDb(0).stringValue('s', text, 'lzf').end();
    const damaged = Buffer.from(file);
    const lengthSize = (at: number) => ((file[at] as number) < 0x40 ? 1 : (file[at] as number) < 0x80 ? 2 : 5);
    const header = file.indexOf(0xc3);
    const data = header + 1 + lengthSize(header + 1) + lengthSize(header + 1 + lengthSize(header + 1));
    let token = data;
    while ((damaged[token] as number) < 32) token += (damaged[token] as number) + 2; // skip literal runs
    damaged[token + ((damaged[token] as number) >> 5 === 7 ? 2 : 1)] = 0xff; // its distance byte
    const offsets = new Set<number>();
    for (const splits of [
      [],
      [data + 3],
      [token - 1, token + 1],
      Array.from({ length: damaged.length }, (_, i) => i),
    ]) {
      const err = thrown(() => parseBytes(damaged, { maxPartBytes: 100, verifyChecksum: false }, splits)) as RdbError;
      expect(err.code).toBe('ERR_RDB_CORRUPT');
      offsets.add(err.offset);
    }
    expect([...offsets]).toEqual([token]);
  });

  it('still reads LZF strings at the highest ratio the format allows', () => {
    // 2 literal bytes, then back references of 264 bytes each (3 bytes apiece): 88 bytes out per byte in.
    const tokens = [1, 120, 121];
    for (let i = 0; i < 50; i++) tokens.push(0xe0, 255, 1);
    const compressed = Buffer.from(tokens);
    const text = Buffer.concat([Buffer.from('xy'), Buffer.from('xy'.repeat(132 * 50))]);
    const file = new RdbWriter(11)
      .selectDb(0)
      .key(1, 'list')
      .len(1)
      .raw(0xc3)
      .len(compressed.length)
      .len(text.length)
      .raw(compressed)
      .end();
    const entry = parseBytes(file).find((e) => e.kind === 'entry');
    expect(entry?.kind === 'entry' && (entry.value as Buffer[])[0]?.equals(text)).toBe(true);
  });
});

describe('the parser as an object', () => {
  it('stays failed after an error and says so', () => {
    const parser = new RdbParser();
    expect(() => parser.write(Buffer.from('NOTANRDB!!'))).toThrow(RdbError);
    expect(() => parser.write(Buffer.from('REDIS0011'))).toThrow(expect.objectContaining({ code: 'ERR_RDB_VERSION' }));
    expect(() => parser.end()).toThrow(expect.objectContaining({ code: 'ERR_RDB_VERSION' }));
  });

  it('rejects options it does not know, naming the ones it takes', () => {
    const typo = (options: object) => options as never;
    for (const make of [
      () => new RdbParser(typo({ verifyChecksums: false })),
      () => new RdbTransfer(typo({ discard: true, signal: AbortSignal.timeout(1) })),
      () => new CommandStreamDecoder(typo({ offset: 0, maxArgumentBytes: 10, dbs: 1 })),
      () => parseDumpPayload(Buffer.alloc(20), typo({ verify: true })),
    ])
      expect(make).toThrow(
        expect.objectContaining({ code: 'ERR_REPLICATION_ARGUMENT', message: expect.stringMatching(/has no option/) }),
      );
  });

  it('rejects bad options with ERR_REPLICATION_ARGUMENT', () => {
    expect(() => new RdbParser({ batchSize: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_REPLICATION_ARGUMENT' }),
    );
    expect(() => new RdbParser({ maxPartBytes: 1.5 })).toThrow(
      expect.objectContaining({ code: 'ERR_REPLICATION_ARGUMENT' }),
    );
  });

  it('keeps memory to the unit in progress while waiting for a large value', () => {
    // A 3 MB string arrives in 1 KiB pieces: nothing is emitted until the first part is complete,
    // and parts are emitted as the bytes come, not at the end.
    const big = Buffer.alloc(3_000_000, 'q');
    const file = new RdbWriter(10).selectDb(0).stringValue('big', big).end();
    const parser = new RdbParser({ maxPartBytes: 1 << 20 });
    const partsAt: number[] = [];
    for (let at = 0; at < file.length; at += 1024) {
      for (const e of parser.write(file.subarray(at, at + 1024))) if (e.kind === 'entry') partsAt.push(at);
    }
    parser.end();
    expect(partsAt).toHaveLength(3);
    expect(partsAt[0]).toBeLessThan(1_100_000);
    expect(partsAt[1]).toBeLessThan(2_200_000);
  });
});
