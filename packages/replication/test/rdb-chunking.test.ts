// The state machine resumes correctly wherever a chunk ends: a file holding every type, encoding
// and opcode (module values, key metadata, field expiry, IDMP streams, long and LZF strings...)
// gives identical events whole, byte by byte, and in random pieces, at any batch size.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RdbEvent, RdbParser, type RdbParserOptions, RdbTransfer } from '../src/index.ts';
import { entries, parseBytes, plain } from './event-helpers.ts';
import { RdbWriter } from './rdb-writer.ts';

function everything(version: number): Buffer {
  const long = Buffer.alloc(20_000);
  for (let i = 0; i < long.length; i++) long[i] = (i * 31 + (i >> 7)) & 0xff;
  return new RdbWriter(version)
    .aux('redis-ver', '8.6.3')
    .function2('#!lua name=lib\nredis.register_function("f", function() return 1 end)')
    .moduleAux('auxmodule', 2, 1, [
      { kind: 'uint', value: 7n },
      { kind: 'string', value: Buffer.from('state') },
    ])
    .selectDb(0)
    .resizeDb(20, 2)
    .slotInfo(42, 20, 2)
    .expireMs(1_900_000_000_000)
    .idle(5)
    .stringValue('s:raw', 'plain')
    .stringValue('s:int', '-12345', 'int')
    .stringValue('s:lzf', 'lzf-lzf-lzf-lzf-lzf-lzf-lzf-lzf-lzf', 'lzf')
    .stringValue('s:long', long)
    .stringValue('s:long-lzf', 'long compressible text '.repeat(2000), 'lzf')
    .freq(3)
    .linkedList('l:linked', ['a', 'b', 'c'])
    .listZiplist('l:ziplist', ['a', 1, -70000, 'b'.repeat(100)])
    .quicklist(
      'l:quicklist',
      [
        ['a', 'b'],
        ['c'.repeat(50), 'c'.repeat(50)],
      ],
      true,
    )
    .quicklist2('l:quicklist2', [['a', 2], { plain: 'P'.repeat(300) }])
    .hashSet('set:ht', ['x', 'y', 'z'])
    .setIntset('set:intset', [1, -2, 2n ** 50n])
    .setListpack('set:lp', ['m', 5])
    .zsetText('z:text', [
      ['a', 1],
      ['b', Number.NEGATIVE_INFINITY],
    ])
    .zsetBinary('z:binary', [['a', 0.25]])
    .zsetZiplist('z:ziplist', [['a', '1.5']])
    .zsetListpack('z:lp', [['a', 'inf']])
    .hashTable('h:ht', [['f', 'v']])
    .hashZipmap('h:zipmap', [['f', 'v']], 1)
    .hashZiplist('h:ziplist', [['f', 'v']])
    .hashListpack('h:lp', [['f', 'v']])
    .hashMetadata('h:meta', [
      ['f', 'v', 1_900_000_000_000],
      ['g', 'w', undefined],
    ])
    .hashMetadataPreGa('h:meta-rc', [['f', 'v', 1_900_000_000_001]])
    .hashListpackEx('h:lpex', [['f', 'v', 1_900_000_000_002]])
    .hashListpackEx('h:lpex-rc', [['f', 'v', undefined]], true)
    .module2('mod', 'mymodtype', 9, [
      { kind: 'sint', value: -1n },
      { kind: 'double', value: 2.5 },
      { kind: 'float', value: 0.5 },
      { kind: 'string', value: Buffer.from('blob') },
    ])
    .keyMeta([{ name: 'ABCD', version: 1, flags: 0, items: [{ kind: 'uint', value: 1n }] }])
    .stream('x:v1', 15, { nodes: [[{ ms: 1, seq: 1, fields: [['a', '1']] }]], length: 1, lastId: [1, 1] })
    .stream('x:v4', 26, {
      nodes: [
        [
          { ms: 10, seq: 0, fields: [['a', '1']] },
          { ms: 11, seq: 0, fields: [['b', '2']], deleted: true },
        ],
      ],
      length: 1,
      lastId: [11, 0],
      groups: [
        {
          name: 'g',
          lastId: [10, 0],
          entriesRead: 1,
          pending: [{ ms: 10, seq: 0, deliveryTime: 99, deliveryCount: 3 }],
          consumers: [{ name: 'c', seenTime: 100, activeTime: 101, pending: [[10, 0]] }],
        },
      ],
      idmp: {
        duration: 60,
        maxEntries: 10,
        producers: [{ pid: 'p', entries: [{ iid: 'i', id: [10, 0] }] }],
        iidsAdded: 1,
        iidsDuplicates: 0,
      },
    })
    .selectDb(9)
    .stringValue('other-db', 'x')
    .end();
}

describe('chunking', () => {
  const file = everything(13);
  const options: RdbParserOptions = { maxPartBytes: 4096, batchSize: 3 };
  const reference = JSON.stringify(plain(parseBytes(file, options)));

  it('parses the file whole with every event kind', () => {
    const kinds = new Set(parseBytes(file, options).map((e) => (e.kind === 'entry' ? `entry:${e.rdbType}` : e.kind)));
    for (const k of ['header', 'aux', 'function', 'module-aux', 'selectdb', 'resizedb', 'slot-info', 'end'])
      expect(kinds).toContain(k);
    for (const t of [0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26])
      expect(kinds).toContain(`entry:${t}`);
  });

  it('gives identical events byte by byte', () => {
    const splits = Array.from({ length: file.length }, (_, i) => i);
    expect(JSON.stringify(plain(parseBytes(file, options, splits)))).toBe(reference);
  });

  it('gives identical events in random pieces', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: file.length - 1 }), { maxLength: 400 }), (cuts) => {
        const splits = [...cuts].sort((a, b) => a - b);
        expect(JSON.stringify(plain(parseBytes(file, options, splits)))).toBe(reference);
      }),
      { numRuns: 200 },
    );
  });

  it('gives the same content at any batch size and part size, once parts are merged', () => {
    const whole = JSON.stringify(entries(parseBytes(file)));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 100_000 }), (batchSize, maxPartBytes) => {
        const events = parseBytes(file, { batchSize, maxPartBytes });
        expect(events.filter((e) => e.kind === 'entry').length).toBeGreaterThanOrEqual(entries(events).length);
        expect(JSON.stringify(entries(events))).toBe(whole);
      }),
      { numRuns: 40 },
    );
  });
});

describe('events handed to a function', () => {
  const file = everything(13);
  const options: RdbParserOptions = { maxPartBytes: 4096, batchSize: 3 };
  const reference = JSON.stringify(plain(parseBytes(file, options)));

  /** Feeds `data` in pieces to a parser, collecting the handed events. */
  function handed(data: Buffer, splits: readonly number[]): RdbEvent[] {
    const parser = new RdbParser(options);
    const events: RdbEvent[] = [];
    const onEvent = (event: RdbEvent) => {
      events.push(event);
    };
    let at = 0;
    for (const cut of [...splits, data.length]) {
      if (cut <= at) continue;
      expect(parser.write(data.subarray(at, cut), onEvent)).toBeUndefined();
      at = cut;
    }
    parser.end();
    return events;
  }

  it('hands over the same events as the arrays, in random pieces', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: file.length - 1 }), { maxLength: 200 }), (cuts) => {
        expect(
          JSON.stringify(
            plain(
              handed(
                file,
                [...cuts].sort((a, b) => a - b),
              ),
            ),
          ),
        ).toBe(reference);
      }),
      { numRuns: 100 },
    );
  });

  it('hands over the events before a failure, then throws the typed error', () => {
    const damaged = Buffer.concat([file.subarray(0, file.indexOf('other-db') - 2), Buffer.from([8, 1, 65])]);
    const events: RdbEvent[] = [];
    const parser = new RdbParser(options);
    expect(() => parser.write(damaged, (e) => events.push(e))).toThrow(
      expect.objectContaining({ code: 'ERR_RDB_UNKNOWN_TYPE' }),
    );
    const keys = (list: RdbEvent[]) =>
      list.filter((e) => e.kind === 'entry' && e.last).map((e) => e.kind === 'entry' && e.key.toString());
    expect(keys(events)).toEqual(keys(parseBytes(file, options)).slice(0, -1)); // all but other-db
  });

  it("rethrows the handler's own exception as it is, and stops there", () => {
    const mine = new Error('my handler failed');
    const parser = new RdbParser(options);
    let seen = 0;
    expect(() =>
      parser.write(file, (event) => {
        seen++;
        if (event.kind === 'entry') throw mine;
      }),
    ).toThrow(mine);
    expect(seen).toBe(parseBytes(file, options).findIndex((e) => e.kind === 'entry') + 1);
    expect(() => parser.write(Buffer.from([0]))).toThrow(
      expect.objectContaining({ code: 'ERR_RDB_STATE', cause: mine }),
    );
  });

  it("works through RdbTransfer too: the same events, and the handler's exception as it is", () => {
    const framed = Buffer.concat([Buffer.from(`$${file.length}\r\n`), file]);
    const transfer = new RdbTransfer(options);
    const events: RdbEvent[] = [];
    for (let at = 0; at < framed.length; at += 1000)
      expect(transfer.write(framed.subarray(at, at + 1000), (e) => events.push(e))).toBeUndefined();
    expect(transfer.done).toBe(true);
    expect(JSON.stringify(plain(events))).toBe(reference);
    const mine = new Error('mine');
    const failing = new RdbTransfer(options);
    expect(() =>
      failing.write(framed, () => {
        throw mine;
      }),
    ).toThrow(mine);
    expect(() => failing.write(Buffer.from([0]))).toThrow(expect.objectContaining({ code: 'ERR_RDB_STATE' }));
  });
});
