// RDB files that no available server writes, built byte by byte with test/rdb-writer.ts from
// the format: every RDB version from 1 to 13, the pre-listpack encodings (linked lists,
// zipmaps, ziplists, quicklist v1), text scores, module values, the Redis 7.4 release-candidate
// hashes, Redis 8.6 key metadata and IDMP streams, and Valkey 9's own type 22 and opcode 243.
import { describe, expect, it } from 'vitest';
import { type RdbEvent, RdbParser } from '../src/index.ts';
import { entries, parseBytes, plain, whole } from './event-helpers.ts';
import { moduleId, RdbWriter } from './rdb-writer.ts';

describe('every RDB version', () => {
  for (let version = 1; version <= 13; version++) {
    it(`reads REDIS${String(version).padStart(4, '0')}`, () => {
      const w = new RdbWriter(version).selectDb(0).stringValue('k', 'v');
      const events = parseBytes(w.end());
      expect(events[0]).toMatchObject({ kind: 'header', magic: 'REDIS', version });
      expect(entries(events)).toEqual([{ db: 0, key: 'k', type: 'string', rdbType: 0, value: 'v' }]);
      const end = events.at(-1);
      expect(end).toMatchObject({ kind: 'end', checksumVerified: version >= 5 });
    });
  }

  it('reads VALKEY080', () => {
    const events = parseBytes(new RdbWriter(80, 'VALKEY').selectDb(0).stringValue('k', 'v').end());
    expect(events[0]).toMatchObject({ kind: 'header', magic: 'VALKEY', version: 80 });
    expect(entries(events)).toHaveLength(1);
  });
});

describe('RDB 1-4 (no checksum): the original types', () => {
  it('reads strings, linked lists, hash-table sets, text-score sorted sets and hashes', () => {
    const w = new RdbWriter(3)
      .selectDb(0)
      .stringValue('raw', 'hello')
      .stringValue('i8', '-100', 'int')
      .stringValue('i16', '30000', 'int')
      .stringValue('i32', '-2000000000', 'int')
      .expireSeconds(2_000_000_000)
      .stringValue('lzf', 'abcabcabcabcabcabcabcabcabcabcabcabc', 'lzf')
      .linkedList('list', ['a', 'b', 'c'])
      .hashSet('set', ['x', 'y'])
      .zsetText('zset', [
        ['a', 1.5],
        ['b', Number.POSITIVE_INFINITY],
        ['c', Number.NEGATIVE_INFINITY],
        ['d', Number.NaN],
        ['e', -3e-7],
      ])
      .hashTable('hash', [
        ['f1', 'v1'],
        ['f2', 'v2'],
      ])
      .selectDb(5)
      .stringValue('other-db', 'x');
    const events = parseBytes(w.end());
    expect(events.at(-1)).toMatchObject({ kind: 'end', checksum: 0n, checksumVerified: false });
    expect(entries(events)).toEqual([
      { db: 0, key: 'raw', type: 'string', rdbType: 0, value: 'hello' },
      { db: 0, key: 'i8', type: 'string', rdbType: 0, value: '-100' },
      { db: 0, key: 'i16', type: 'string', rdbType: 0, value: '30000' },
      { db: 0, key: 'i32', type: 'string', rdbType: 0, value: '-2000000000' },
      {
        db: 0,
        key: 'lzf',
        type: 'string',
        rdbType: 0,
        value: 'abcabcabcabcabcabcabcabcabcabcabcabc',
        expireAt: 2_000_000_000_000,
      },
      { db: 0, key: 'list', type: 'list', rdbType: 1, value: ['a', 'b', 'c'] },
      { db: 0, key: 'set', type: 'set', rdbType: 2, value: ['x', 'y'] },
      {
        db: 0,
        key: 'zset',
        type: 'zset',
        rdbType: 3,
        value: [
          { member: 'a', score: 1.5 },
          { member: 'b', score: 'Infinity' },
          { member: 'c', score: '-Infinity' },
          { member: 'd', score: 'NaN' },
          { member: 'e', score: -3e-7 },
        ],
      },
      {
        db: 0,
        key: 'hash',
        type: 'hash',
        rdbType: 4,
        value: [
          { field: 'f1', value: 'v1' },
          { field: 'f2', value: 'v2' },
        ],
      },
      { db: 5, key: 'other-db', type: 'string', rdbType: 0, value: 'x' },
    ]);
  });

  it('reads zipmaps (with free bytes and long values), ziplists and intsets of every width', () => {
    const long = 'L'.repeat(300);
    const w = new RdbWriter(4)
      .selectDb(0)
      .hashZipmap('zm', [
        ['a', '1'],
        ['b', long],
      ])
      .hashZipmap('zm-free', [['f', 'v']], 3)
      .listZiplist('zl', [
        's',
        0,
        12,
        13,
        -1,
        127,
        -128,
        128,
        32767,
        -32768,
        40000,
        8388607,
        -8388608,
        2 ** 31 - 1,
        -(2 ** 31),
        2 ** 40,
        2n ** 63n - 1n,
        'x'.repeat(70),
        'y'.repeat(20000),
      ])
      .setIntset('is16', [3, -2, 1])
      .setIntset('is32', [1, 100000])
      .setIntset('is64', [1, 2n ** 62n])
      .zsetZiplist('zz', [
        ['m1', 1],
        ['m2', '2.5'],
        ['m3', 'inf'],
        ['m4', '-inf'],
      ])
      .hashZiplist('hz', [
        ['f', 'v'],
        ['n', 42],
      ]);
    expect(entries(parseBytes(w.end()))).toEqual([
      {
        db: 0,
        key: 'zm',
        type: 'hash',
        rdbType: 9,
        value: [
          { field: 'a', value: '1' },
          { field: 'b', value: long },
        ],
      },
      { db: 0, key: 'zm-free', type: 'hash', rdbType: 9, value: [{ field: 'f', value: 'v' }] },
      {
        db: 0,
        key: 'zl',
        type: 'list',
        rdbType: 10,
        value: [
          's',
          '0',
          '12',
          '13',
          '-1',
          '127',
          '-128',
          '128',
          '32767',
          '-32768',
          '40000',
          '8388607',
          '-8388608',
          '2147483647',
          '-2147483648',
          String(2 ** 40),
          String(2n ** 63n - 1n),
          'x'.repeat(70),
          'y'.repeat(20000),
        ],
      },
      { db: 0, key: 'is16', type: 'set', rdbType: 11, value: ['-2', '1', '3'] },
      { db: 0, key: 'is32', type: 'set', rdbType: 11, value: ['1', '100000'] },
      { db: 0, key: 'is64', type: 'set', rdbType: 11, value: ['1', String(2n ** 62n)] },
      {
        db: 0,
        key: 'zz',
        type: 'zset',
        rdbType: 12,
        value: [
          { member: 'm1', score: 1 },
          { member: 'm2', score: 2.5 },
          { member: 'm3', score: 'Infinity' },
          { member: 'm4', score: '-Infinity' },
        ],
      },
      {
        db: 0,
        key: 'hz',
        type: 'hash',
        rdbType: 13,
        value: [
          { field: 'f', value: 'v' },
          { field: 'n', value: '42' },
        ],
      },
    ]);
  });
});

describe('RDB 5-9', () => {
  it('reads quicklists (plain and LZF nodes), binary scores, LRU/LFU, millisecond expiry and 64-bit lengths', () => {
    const w = new RdbWriter(9)
      .aux('redis-ver', '5.0.14')
      .aux('redis-bits', '64')
      .selectDb(0)
      .resizeDb(4, 1)
      .expireMs(1_800_000_000_123)
      .idle(42)
      .quicklist(
        'ql',
        [
          ['a', 'b', 1],
          ['c'.repeat(100), 'd'.repeat(100)],
        ],
        true,
      )
      .freq(7)
      .zsetBinary('z2', [
        ['a', 0.1],
        ['b', Number.POSITIVE_INFINITY],
        ['c', -0],
      ])
      .raw(0)
      .raw(0x81, Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]))
      .raw(Buffer.from('K'))
      .string('64-bit length');
    const events = parseBytes(w.end());
    expect(events.filter((e) => e.kind === 'aux').map((e) => plain(e))).toEqual([
      { kind: 'aux', name: 'redis-ver', value: '5.0.14', offset: 9 },
      { kind: 'aux', name: 'redis-bits', value: '64', offset: 27 },
    ]);
    expect(events.find((e) => e.kind === 'resizedb')).toMatchObject({ db: 0, size: 4, expiresSize: 1 });
    expect(entries(events)).toEqual([
      {
        db: 0,
        key: 'ql',
        type: 'list',
        rdbType: 14,
        value: ['a', 'b', '1', 'c'.repeat(100), 'd'.repeat(100)],
        expireAt: 1_800_000_000_123,
        idle: 42,
      },
      {
        db: 0,
        key: 'z2',
        type: 'zset',
        rdbType: 5,
        freq: 7,
        value: [
          { member: 'a', score: 0.1 },
          { member: 'b', score: 'Infinity' },
          { member: 'c', score: -0 },
        ],
      },
      { db: 0, key: 'K', type: 'string', rdbType: 0, value: '64-bit length' },
    ]);
  });

  it('reads module values and module aux data item by item, with the module name and version', () => {
    const items = [
      { kind: 'sint' as const, value: -5n },
      { kind: 'uint' as const, value: 2n ** 64n - 1n },
      { kind: 'float' as const, value: 1.5 },
      { kind: 'double' as const, value: Math.PI },
      { kind: 'string' as const, value: Buffer.from('payload') },
    ];
    const w = new RdbWriter(9)
      .moduleAux('scripting', 3, 2, [{ kind: 'string', value: Buffer.from('aux') }])
      .selectDb(0)
      .module2('mk', 'ReJSON-RL', 3, items);
    const events = parseBytes(w.end());
    expect(plain(events.find((e) => e.kind === 'module-aux'))).toMatchObject({
      module: { name: 'scripting', version: 3 },
      when: 2,
      items: [{ kind: 'string', value: 'aux' }],
      part: 0,
      last: true,
    });
    expect(entries(events)).toEqual([
      {
        db: 0,
        key: 'mk',
        type: 'module',
        rdbType: 7,
        module: plain({ id: moduleId('ReJSON-RL', 3), name: 'ReJSON-RL', version: 3 }),
        value: plain(items),
      },
    ]);
  });

  it('reads a version-1 stream (type 15) with deleted entries, groups, pending entries and consumers', () => {
    const w = new RdbWriter(9).selectDb(0).stream('s', 15, {
      nodes: [
        [
          {
            ms: 1000,
            seq: 0,
            fields: [
              ['a', '1'],
              ['b', '2'],
            ],
          },
          {
            ms: 1000,
            seq: 1,
            fields: [
              ['a', '3'],
              ['b', '4'],
            ],
            deleted: true,
          },
          { ms: 1001, seq: 0, fields: [['c', '5']] },
        ],
        [{ ms: 2 ** 45, seq: 7, fields: [['x', 'y']] }],
      ],
      length: 3,
      lastId: [2 ** 45, 7],
      groups: [
        {
          name: 'g',
          lastId: [1001, 0],
          pending: [
            { ms: 1000, seq: 0, deliveryTime: 1_700_000_000_000, deliveryCount: 2 },
            { ms: 1001, seq: 0, deliveryTime: 1_700_000_000_001, deliveryCount: 1 },
          ],
          consumers: [
            { name: 'alice', seenTime: 1_700_000_000_005, pending: [[1000, 0]] },
            { name: 'bob', seenTime: 1_700_000_000_006, pending: [[1001, 0]] },
          ],
        },
      ],
    });
    expect(entries(parseBytes(w.end()))).toEqual([
      {
        db: 0,
        key: 's',
        type: 'stream',
        rdbType: 15,
        value: {
          entries: [
            {
              id: '1000-0',
              fields: [
                ['a', '1'],
                ['b', '2'],
              ],
            },
            { id: '1001-0', fields: [['c', '5']] },
            { id: `${2 ** 45}-7`, fields: [['x', 'y']] },
          ],
          meta: {
            length: 3,
            lastId: `${2 ** 45}-7`,
            groups: [
              {
                name: 'g',
                lastDeliveredId: '1001-0',
                pending: [
                  { id: '1000-0', deliveryTime: 1_700_000_000_000, deliveryCount: 2, consumer: 'alice' },
                  { id: '1001-0', deliveryTime: 1_700_000_000_001, deliveryCount: 1, consumer: 'bob' },
                ],
                consumers: [
                  { name: 'alice', seenTime: 1_700_000_000_005, pending: ['1000-0'] },
                  { name: 'bob', seenTime: 1_700_000_000_006, pending: ['1001-0'] },
                ],
              },
            ],
          },
        },
      },
    ]);
  });
});

describe('RDB 10-13', () => {
  it('reads the Redis 7.0 release-candidate function format (opcode 246) as Redis 7.0 GA loaded it', () => {
    const body = "redis.register_function('f', function() return 1 end)";
    const file = new RdbWriter(10)
      .aux('redis-ver', '6.9.241')
      .functionPreGa('mylib', 'LUA', 'my library', body)
      .functionPreGa('other', 'LUA', undefined, 'return')
      .selectDb(0)
      .stringValue('k', 'v')
      .end();
    const everyByte = Array.from({ length: file.length }, (_, i) => i);
    for (const splits of [[], everyByte]) {
      const events = parseBytes(file, {}, splits);
      expect(events.filter((e) => e.kind === 'function').map(plain)).toEqual([
        {
          kind: 'function',
          code: `#!LUA name=mylib\n${body}`,
          preGa: { name: 'mylib', engine: 'LUA', description: 'my library', code: body },
          offset: file.indexOf(246),
        },
        {
          kind: 'function',
          code: '#!LUA name=other\nreturn',
          preGa: { name: 'other', engine: 'LUA', code: 'return' },
          offset: file.lastIndexOf(246),
        },
      ]);
      expect(entries(events)).toMatchObject([{ key: 'k', value: 'v' }]);
    }
  });

  it('reads listpack hashes, zsets and sets, quicklist 2 with plain and packed nodes, and functions', () => {
    const w = new RdbWriter(11)
      .function2("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
      .selectDb(0)
      .hashListpack('h', [
        ['f', 'v'],
        ['n', -4000],
      ])
      .zsetListpack('z', [
        ['a', '-inf'],
        ['b', 3],
        ['c', '1.25'],
        ['d', 'inf'],
      ])
      .setListpack('s', ['m', 7, 'x'.repeat(5000)])
      .quicklist2('l', [['a', 1], { plain: 'P'.repeat(1000) }, ['z']]);
    const events = parseBytes(w.end());
    expect(plain(events.find((e) => e.kind === 'function'))).toMatchObject({
      code: "#!lua name=lib\nredis.register_function('f', function() return 1 end)",
    });
    expect(entries(events)).toEqual([
      {
        db: 0,
        key: 'h',
        type: 'hash',
        rdbType: 16,
        value: [
          { field: 'f', value: 'v' },
          { field: 'n', value: '-4000' },
        ],
      },
      {
        db: 0,
        key: 'z',
        type: 'zset',
        rdbType: 17,
        value: [
          { member: 'a', score: '-Infinity' },
          { member: 'b', score: 3 },
          { member: 'c', score: 1.25 },
          { member: 'd', score: 'Infinity' },
        ],
      },
      { db: 0, key: 's', type: 'set', rdbType: 20, value: ['m', '7', 'x'.repeat(5000)] },
      { db: 0, key: 'l', type: 'list', rdbType: 18, value: ['a', '1', 'P'.repeat(1000), 'z'] },
    ]);
  });

  const ttl = 1_900_000_000_000;
  for (const [name, write, rdbType] of [
    [
      'HASH_METADATA (24)',
      (w: RdbWriter) =>
        w.hashMetadata('h', [
          ['a', '1', ttl + 5],
          ['b', '2', undefined],
          ['c', '3', ttl],
        ]),
      24,
    ],
    [
      'HASH_METADATA_PRE_GA (22)',
      (w: RdbWriter) =>
        w.hashMetadataPreGa('h', [
          ['a', '1', ttl + 5],
          ['b', '2', undefined],
          ['c', '3', ttl],
        ]),
      22,
    ],
    [
      'HASH_LISTPACK_EX (25)',
      (w: RdbWriter) =>
        w.hashListpackEx('h', [
          ['a', '1', ttl + 5],
          ['b', '2', undefined],
          ['c', '3', ttl],
        ]),
      25,
    ],
    [
      'HASH_LISTPACK_EX_PRE_GA (23)',
      (w: RdbWriter) =>
        w.hashListpackEx(
          'h',
          [
            ['a', '1', ttl + 5],
            ['b', '2', undefined],
            ['c', '3', ttl],
          ],
          true,
        ),
      23,
    ],
  ] as const) {
    it(`reads hash field expiry in ${name}`, () => {
      const events = parseBytes(write(new RdbWriter(12).selectDb(0)).end());
      expect(entries(events)).toEqual([
        {
          db: 0,
          key: 'h',
          type: 'hash',
          rdbType,
          value: [
            { field: 'a', value: '1', expireAt: ttl + 5 },
            { field: 'b', value: '2' },
            { field: 'c', value: '3', expireAt: ttl },
          ],
        },
      ]);
    });
  }

  it('reads SLOT_INFO and attaches the slot to the entries that follow, until the next SELECTDB', () => {
    const w = new RdbWriter(12)
      .selectDb(0)
      .slotInfo(866, 1, 0)
      .stringValue('a', '1')
      .slotInfo(15495, 1, 0)
      .stringValue('b', '2')
      .selectDb(1)
      .stringValue('c', '3');
    const events = parseBytes(w.end());
    expect(events.filter((e) => e.kind === 'slot-info').map(plain)).toEqual([
      expect.objectContaining({ slot: 866, size: 1, expiresSize: 0, db: 0 }),
      expect.objectContaining({ slot: 15495, size: 1, expiresSize: 0, db: 0 }),
    ]);
    expect(entries(events).map((e) => [e.key, e.slot])).toEqual([
      ['a', 866],
      ['b', 15495],
      ['c', undefined],
    ]);
  });

  it('reads a Redis 8.6 stream (type 26) with IDMP producers, and KEY_META before a key', () => {
    const w = new RdbWriter(13)
      .selectDb(0)
      .keyMeta([{ name: 'KMT1', version: 2, flags: 1, items: [{ kind: 'uint', value: 99n }] }])
      .expireMs(1_900_000_000_000)
      .stream('s', 26, {
        nodes: [[{ ms: 5, seq: 0, fields: [['f', 'v']] }]],
        length: 1,
        lastId: [5, 0],
        firstId: [5, 0],
        maxDeletedId: [0, 0],
        entriesAdded: 1,
        groups: [
          {
            name: 'g',
            lastId: [0, 0],
            entriesRead: -1n,
            pending: [],
            consumers: [{ name: 'c', seenTime: 10, activeTime: 11, pending: [] }],
          },
        ],
        idmp: {
          duration: 300,
          maxEntries: 1000,
          producers: [{ pid: 'p1', entries: [{ iid: 'msg-1', id: [5, 0] }] }],
          iidsAdded: 1,
          iidsDuplicates: 2,
        },
      });
    const [entry] = entries(parseBytes(w.end()));
    expect(entry).toEqual({
      db: 0,
      key: 's',
      type: 'stream',
      rdbType: 26,
      expireAt: 1_900_000_000_000,
      meta: [{ name: 'KMT1', version: 2, flags: 1, items: [{ kind: 'uint', value: '99n' }] }],
      value: {
        entries: [{ id: '5-0', fields: [['f', 'v']] }],
        meta: {
          length: 1,
          lastId: '5-0',
          firstId: '5-0',
          maxDeletedId: '0-0',
          entriesAdded: 1,
          groups: [
            {
              name: 'g',
              lastDeliveredId: '0-0',
              entriesRead: -1,
              pending: [],
              consumers: [{ name: 'c', seenTime: 10, activeTime: 11, pending: [] }],
            },
          ],
          idmp: {
            duration: 300,
            maxEntries: 1000,
            producers: [{ pid: 'p1', entries: [{ iid: 'msg-1', id: '5-0' }] }],
            iidsAdded: 1,
            iidsDuplicates: 2,
          },
        },
      },
    });
  });
});

describe('Valkey 9 (VALKEY080) and the numbers Redis and Valkey give different meanings', () => {
  it('reads type 22 as a Valkey hash with per-field expiry and opcode 243 as a slot import', () => {
    const w = new RdbWriter(80, 'VALKEY')
      .slotImport('job-1', [
        [0, 100],
        [200, 16383],
      ])
      .selectDb(0)
      .valkeyHash2('h', [
        ['a', '1', 1_900_000_000_000],
        ['b', '2', undefined],
      ]);
    const events = parseBytes(w.end());
    expect(plain(events.find((e) => e.kind === 'slot-import'))).toMatchObject({
      jobName: 'job-1',
      ranges: [
        [0, 100],
        [200, 16383],
      ],
    });
    expect(entries(events)).toEqual([
      {
        db: 0,
        key: 'h',
        type: 'hash',
        rdbType: 22,
        value: [
          { field: 'a', value: '1', expireAt: 1_900_000_000_000 },
          { field: 'b', value: '2' },
        ],
      },
    ]);
    expect((whole(events).find((e) => e.kind === 'entry') as { rdbTypeName: string }).rdbTypeName).toBe(
      'RDB_TYPE_HASH_2',
    );
  });

  it('rejects Redis-only types (24, 25, 26) in a Valkey file, with the offset', () => {
    const w = new RdbWriter(80, 'VALKEY').selectDb(0);
    const at = w.bytes().length;
    const data = w.hashMetadata('h', [['a', '1', undefined]]).end();
    expect(() => parseBytes(data)).toThrow(
      expect.objectContaining({ code: 'ERR_RDB_UNKNOWN_TYPE', offset: at, rdbType: 24 }),
    );
  });
});

describe('large values come in parts', () => {
  it('splits a long raw string, a long LZF string, and big collections; merged parts equal the value', () => {
    const raw = Buffer.alloc(10_000);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
    const compressible = 'abcdefghij'.repeat(2000);
    const list = Array.from({ length: 2500 }, (_, i) => `e${i}`);
    const w = new RdbWriter(11)
      .selectDb(0)
      .stringValue('raw', raw)
      .stringValue('lzf', compressible, 'lzf')
      .linkedList('list', list)
      .hashTable(
        'hash',
        list.map((e) => [e, e]),
      );
    const data = w.end();
    const events = parseBytes(data, { maxPartBytes: 4096 });
    const byCount = parseBytes(data, { batchSize: 1000 });
    const partsOf = (from: RdbEvent[], key: string) =>
      from.filter((e) => e.kind === 'entry' && e.key.toString() === key);
    const parts = (key: string) => partsOf(events, key);
    const counted = (key: string) => partsOf(byCount, key);
    expect(parts('raw').length).toBe(3);
    expect(parts('raw').map((e) => (e as { value: Buffer }).value.length)).toEqual([4096, 4096, 1808]);
    expect(parts('lzf').length).toBeGreaterThanOrEqual(3);
    expect(counted('list').map((e) => (e as { value: readonly unknown[] }).value.length)).toEqual([1000, 1000, 500]);
    expect(counted('list').map((e) => (e as { last: boolean }).last)).toEqual([false, false, true]);
    expect(counted('list').map((e) => (e as { part: number }).part)).toEqual([0, 1, 2]);
    expect(counted('hash').map((e) => (e as { value: readonly unknown[] }).value.length)).toEqual([1000, 1000, 500]);
    // With a small maxPartBytes, parts are cut by size: no part holds much more than 4 KiB.
    for (const e of [...parts('list'), ...parts('hash')]) {
      const size = JSON.stringify(plain((e as { value: unknown }).value)).length;
      expect(size).toBeLessThan(4096 * 2);
    }
    expect(entries(byCount)).toEqual(entries(events));
    expect(entries(events)).toEqual([
      { db: 0, key: 'raw', type: 'string', rdbType: 0, value: raw.toString('latin1') },
      { db: 0, key: 'lzf', type: 'string', rdbType: 0, value: compressible },
      { db: 0, key: 'list', type: 'list', rdbType: 1, value: list },
      { db: 0, key: 'hash', type: 'hash', rdbType: 4, value: list.map((e) => ({ field: e, value: e })) },
    ]);
  });
});

describe('the end of the RDB', () => {
  it('accepts a zero checksum as "disabled" and reports it unverified', () => {
    const events = parseBytes(new RdbWriter(10).selectDb(0).stringValue('k', 'v').end('zero'));
    expect(events.at(-1)).toMatchObject({ kind: 'end', checksum: 0n, checksumVerified: false });
  });

  it('stops at the trailer and hands out the bytes after it (a diskless EOF mark, the command stream)', () => {
    const rdb = new RdbWriter(10).selectDb(0).stringValue('k', 'v').end();
    const mark = Buffer.from('a'.repeat(40));
    const parser = new RdbParser();
    const events = parser.write(Buffer.concat([rdb, mark.subarray(0, 10)]));
    expect(events.at(-1)).toMatchObject({ kind: 'end', size: rdb.length });
    expect(parser.done).toBe(true);
    expect(parser.write(mark.subarray(10))).toEqual([]);
    expect(parser.takeRemainder().toString()).toBe(mark.toString());
    expect(parser.offset).toBe(rdb.length);
    expect(parser.takeRemainder().length).toBe(0);
  });

  it('verifies the checksum when the trailer arrives alone, one byte at a time', () => {
    const rdb = new RdbWriter(10).selectDb(0).stringValue('k', 'v').end();
    const splits = Array.from({ length: 9 }, (_, i) => rdb.length - 9 + i);
    expect(parseBytes(rdb, {}, splits).at(-1)).toMatchObject({ kind: 'end', checksumVerified: true });
  });
});
