// The seed files the RDB fuzzer mutates: together they hold every construct the parser reads
// (each RDB era's types and encodings, streams of every version with groups, modules, key
// metadata, Valkey's own numbers, strings long enough to come in parts, functions of both
// formats), plus the file Redis 7.0-rc2 wrote. Each is small, so a run covers many mutations.
import { readFileSync } from 'node:fs';
import { RdbWriter, type StreamSpec } from '../rdb-writer.ts';

/** A seed: its name, its bytes, and where its RDB lengths are (offset, encoded size). */
export interface Seed {
  readonly name: string;
  readonly bytes: Buffer;
  readonly lengths: readonly (readonly [number, number])[];
}

function seed(name: string, writer: RdbWriter): Seed {
  const bytes = writer.end();
  return { name, bytes, lengths: writer.lengths };
}

const stream = (groups: boolean): StreamSpec => ({
  nodes: [
    [
      { ms: 1, seq: 0, fields: [['a', 'b']] },
      { ms: 1, seq: 1, fields: [['a', 'c']], deleted: true },
      {
        ms: 2,
        seq: 0,
        fields: [
          ['x', 'y'],
          ['z', 'w'],
        ],
      },
    ],
    [{ ms: 3, seq: 0, fields: [['a', 'd']] }],
  ],
  length: 3,
  lastId: [3, 0],
  firstId: [1, 0],
  maxDeletedId: [1, 1],
  entriesAdded: 4,
  groups: groups
    ? [
        {
          name: 'g',
          lastId: [2, 0],
          entriesRead: 2,
          pending: [
            { ms: 1, seq: 0, deliveryTime: 5, deliveryCount: 1 },
            { ms: 2, seq: 0, deliveryTime: 6, deliveryCount: 3 },
          ],
          consumers: [
            { name: 'c1', seenTime: 5, activeTime: 6, pending: [[1, 0]] },
            { name: 'c2', seenTime: 7, pending: [[2, 0]] },
          ],
        },
        { name: 'empty', lastId: [0, 0], pending: [], consumers: [] },
      ]
    : [],
  idmp: {
    duration: 100,
    maxEntries: 10,
    producers: [{ pid: 'p', entries: [{ iid: 'i1', id: [1, 0] }] }],
    iidsAdded: 1,
    iidsDuplicates: 0,
  },
});

const moduleItems = [
  { kind: 'sint' as const, value: -5n },
  { kind: 'uint' as const, value: 2n ** 63n },
  { kind: 'float' as const, value: 1.5 },
  { kind: 'double' as const, value: -0.25 },
  { kind: 'string' as const, value: Buffer.from('module string') },
];

/** The seed files. */
export function rdbSeeds(): Seed[] {
  const text = 'the quick brown fox jumps over the lazy dog; '.repeat(40);
  return [
    seed(
      'rdb3-original-types',
      new RdbWriter(3)
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
          ['d', Number.NaN],
        ])
        .hashTable('hash', [['f1', 'v1']])
        .hashZipmap(
          'zm',
          [
            ['f', 'v'],
            ['long', 'x'.repeat(300)],
          ],
          2,
        )
        .listZiplist('zl', ['a', 12, -70000, 2 ** 40, 'b'.repeat(70)])
        .setIntset('is', [1, -40000, 2 ** 40])
        .zsetZiplist('zz', [['m', '2.5']])
        .hashZiplist('hz', [['f', 7]])
        .selectDb(3)
        .stringValue('other-db', 'x'),
    ),
    seed(
      'rdb9-quicklist-modules-streams-v1',
      new RdbWriter(9)
        .aux('redis-ver', '5.0.14')
        .moduleAux('auxmodtyp', 1, 2, moduleItems)
        .selectDb(0)
        .resizeDb(5, 1)
        .idle(100)
        .quicklist('ql', [['a', 'b', 1], [text]], true)
        .freq(7)
        .zsetBinary('zb', [
          ['m', 2],
          ['n', Number.NEGATIVE_INFINITY],
        ])
        .expireMs(1_900_000_000_000)
        .module2('m', 'mymodtype', 3, moduleItems)
        .stream('st1', 15, stream(true)),
    ),
    seed(
      'rdb11-listpacks-functions',
      new RdbWriter(11)
        .aux('redis-ver', '7.2.6')
        .function2("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .functionPreGa('old', 'LUA', 'a library', "redis.register_function('g', function() return 2 end)")
        .selectDb(0)
        .hashListpack('h', [
          ['f', 'v'],
          ['n', -4000],
        ])
        .zsetListpack('z', [
          ['a', '-inf'],
          ['b', 3],
        ])
        .setListpack('s', ['m', 7, 'x'.repeat(300)])
        .quicklist2('l', [['a', 1], { plain: 'P'.repeat(100) }, ['z']], true)
        .stream('st2', 19, stream(true))
        .stream('st3', 21, stream(false)),
    ),
    seed(
      'rdb12-hash-field-expiry-slots',
      new RdbWriter(12)
        .selectDb(0)
        .slotInfo(866, 4, 0)
        .hashMetadata('h24', [
          ['a', '1', 1_900_000_000_005],
          ['b', '2', undefined],
        ])
        .hashMetadataPreGa('h22', [['a', '1', 1_900_000_000_000]])
        .hashListpackEx('h25', [
          ['a', '1', 1_900_000_000_005],
          ['b', '2', undefined],
        ])
        .hashListpackEx('h23', [['a', '1', 1_900_000_000_000]], true),
    ),
    seed(
      'rdb13-key-meta-idmp',
      new RdbWriter(13)
        .selectDb(0)
        .keyMeta([{ name: 'KMT1', version: 2, flags: 1, items: [{ kind: 'uint', value: 99n }] }])
        .stream('st4', 26, stream(true)),
    ),
    seed(
      'valkey080',
      new RdbWriter(80, 'VALKEY')
        .aux('valkey-ver', '9.1.2')
        .slotImport('job', [
          [0, 100],
          [200, 300],
        ])
        .selectDb(0)
        .valkeyHash2('vh', [
          ['a', '1', 1_900_000_000_000],
          ['b', '2', undefined],
        ])
        .stringValue('k', 'v'),
    ),
    // Long enough to come in parts with the small part sizes the fuzzer uses.
    seed(
      'rdb10-parts',
      new RdbWriter(10)
        .selectDb(0)
        .stringValue('raw-big', 'r'.repeat(40_000))
        .stringValue('lzf-big', text.repeat(20), 'lzf')
        .linkedList(
          'many',
          Array.from({ length: 600 }, (_, i) => `e${i}`),
        ),
    ),
    {
      name: 'redis-7.0-rc2',
      bytes: readFileSync(new URL('../fixtures/redis-7.0-rc2-functions.rdb', import.meta.url)),
      lengths: [],
    },
  ];
}
