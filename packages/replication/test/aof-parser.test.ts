// The AOF parser: commands with their database, offset, size and transaction flag; annotations;
// an RDB preamble; identical results on any split of the input; truncation and unfinished
// transactions as Redis loads them; typed errors (never a crash) for anything else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AofParser, type AofParserEvent, type AofParserOptions, ReplicationError } from '../src/index.ts';
import { thrown } from './event-helpers.ts';
import { RdbWriter } from './rdb-writer.ts';

function encode(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const b = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function parse(data: Buffer, splits: readonly number[] = [], options: AofParserOptions = {}): AofParserEvent[] {
  const parser = new AofParser(options);
  const events: AofParserEvent[] = [];
  let at = 0;
  for (const cut of [...splits, data.length]) {
    if (cut <= at) continue;
    events.push(...parser.write(data.subarray(at, cut)));
    at = cut;
  }
  events.push(...parser.end());
  return events;
}

function summary(events: readonly AofParserEvent[]): unknown[] {
  return events.map((e) =>
    e.kind === 'command'
      ? {
          kind: e.kind,
          db: e.db,
          name: e.name,
          args: e.args.map((a) => a.toString('latin1')),
          offset: e.offset,
          size: e.size,
          inTransaction: e.inTransaction,
        }
      : e.kind === 'entry'
        ? { kind: e.kind, key: e.key.toString('latin1'), db: e.db, type: e.type, part: e.part }
        : e,
  );
}

describe('AofParser', () => {
  it('gives each command its database, offset, size and transaction flag, and each annotation its time', () => {
    const units = [
      encode(['SELECT', '0']),
      encode(['SET', 'a', '1']),
      Buffer.from('#TS:1700000000\r\n'),
      encode(['select', '5']),
      encode(['MULTI']),
      encode(['INCR', 'n']),
      encode(['EXEC']),
      Buffer.from('#something else\r\n'),
      encode(['DEL', 'x', 'y']),
    ];
    const events = parse(Buffer.concat(units));
    let offset = 0;
    const offsets = units.map((u) => {
      const start = offset;
      offset += u.length;
      return { start, end: offset };
    });
    expect(summary(events)).toEqual([
      {
        kind: 'command',
        db: 0,
        name: 'SELECT',
        args: ['0'],
        offset: offsets[0]?.end,
        size: units[0]?.length,
        inTransaction: false,
      },
      {
        kind: 'command',
        db: 0,
        name: 'SET',
        args: ['a', '1'],
        offset: offsets[1]?.end,
        size: units[1]?.length,
        inTransaction: false,
      },
      { kind: 'annotation', text: 'TS:1700000000', timestamp: 1700000000, offset: offsets[2]?.start },
      {
        kind: 'command',
        db: 5,
        name: 'SELECT',
        args: ['5'],
        offset: offsets[3]?.end,
        size: units[3]?.length,
        inTransaction: false,
      },
      {
        kind: 'command',
        db: 5,
        name: 'MULTI',
        args: [],
        offset: offsets[4]?.end,
        size: units[4]?.length,
        inTransaction: true,
      },
      {
        kind: 'command',
        db: 5,
        name: 'INCR',
        args: ['n'],
        offset: offsets[5]?.end,
        size: units[5]?.length,
        inTransaction: true,
      },
      {
        kind: 'command',
        db: 5,
        name: 'EXEC',
        args: [],
        offset: offsets[6]?.end,
        size: units[6]?.length,
        inTransaction: true,
      },
      { kind: 'annotation', text: 'something else', offset: offsets[7]?.start },
      {
        kind: 'command',
        db: 5,
        name: 'DEL',
        args: ['x', 'y'],
        offset: offsets[8]?.end,
        size: units[8]?.length,
        inTransaction: false,
      },
    ]);
    const del = events[8];
    expect(del?.kind === 'command' && del.view).toMatchObject({
      type: 'del',
      keys: [Buffer.from('x'), Buffer.from('y')],
    });
  });

  it('keeps binary arguments intact: CR, LF, NUL and bytes above 127', () => {
    const value = Buffer.from([0, 13, 10, 255, 42, 36, 13, 10, 13]);
    const events = parse(encode(['SET', Buffer.from([0xff, 0x0d]), value]), [1, 5, 9, 14, 17, 20, 21, 22]);
    const set = events[0];
    expect(set?.kind).toBe('command');
    if (set?.kind !== 'command') return;
    expect(set.args[0]).toEqual(Buffer.from([0xff, 0x0d]));
    expect(set.args[1]).toEqual(value);
  });

  it('reads an RDB preamble, then the commands after it', () => {
    const rdb = new RdbWriter(10)
      .aux('redis-ver', '7.0.15')
      .aux('aof-base', '1')
      .selectDb(0)
      .stringValue('k', 'v')
      .selectDb(3)
      .hashTable('h', [['f', 'v']])
      .end();
    const tail = Buffer.concat([encode(['SELECT', '2']), encode(['SET', 'after', 'x'])]);
    const data = Buffer.concat([rdb, tail]);
    const events = parse(data);
    const kinds = events.map((e) => e.kind);
    expect(kinds[0]).toBe('header');
    expect(kinds.slice(-3)).toEqual(['end', 'command', 'command']);
    expect(summary(events.filter((e) => e.kind === 'entry'))).toEqual([
      { kind: 'entry', key: 'k', db: 0, type: 'string', part: 0 },
      { kind: 'entry', key: 'h', db: 3, type: 'hash', part: 0 },
    ]);
    const last = events[events.length - 1];
    expect(last?.kind === 'command' && [last.db, last.name, last.offset]).toEqual([2, 'SET', data.length]);
  });

  it('is the same on every split of the input (property)', () => {
    const arg = fc.oneof(
      fc.constantFrom('SET', 'k', '', '\r\n', '*1', '$3', '#TS:1'),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    );
    const unit = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .tuple(fc.constantFrom('SET', 'DEL', 'HSET', 'XADD'), fc.array(arg, { maxLength: 5 }))
          .map(([n, a]) => encode([n, ...a])),
      },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }).map((db) => encode(['SELECT', String(db)])) },
      {
        weight: 1,
        arbitrary: fc.constant(Buffer.concat([encode(['MULTI']), encode(['INCR', 'x']), encode(['EXEC'])])),
      },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 40 }).map((ts) => Buffer.from(`#TS:${ts}\r\n`)) },
    );
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 20 }), (units, cuts) => {
        const data = Buffer.concat(units);
        const splits = [...new Set(cuts.map((c) => (data.length === 0 ? 0 : c % data.length)))].sort((a, b) => a - b);
        const whole = summary(parse(data));
        expect(summary(parse(data, splits))).toEqual(whole);
        // One byte at a time too.
        expect(
          summary(
            parse(
              data,
              Array.from({ length: data.length }, (_, i) => i),
            ),
          ),
        ).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('a cut anywhere gives a prefix of the commands, or ERR_AOF_TRUNCATED without allowTruncated (property)', () => {
    const units = [
      encode(['SET', 'a', 'hello']),
      encode(['SELECT', '1']),
      Buffer.from('#TS:5\r\n'),
      encode(['RPUSH', 'l', 'x', 'y', 'z']),
      encode(['DEL', 'a']),
    ];
    const data = Buffer.concat(units);
    const full = summary(parse(data));
    const boundaries = new Set<number>([0]);
    let at = 0;
    for (const u of units) {
      at += u.length;
      boundaries.add(at);
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: data.length }), (cut) => {
        const prefix = data.subarray(0, cut);
        const parser = new AofParser({ allowTruncated: true });
        const events = [...parser.write(prefix), ...parser.end()];
        const got = summary(events);
        expect(full.slice(0, got.length)).toEqual(got);
        const complete = Math.max(...[...boundaries].filter((b) => b <= cut));
        expect(parser.truncatedBytes).toBe(cut - complete);
        if (cut !== complete) {
          const err = thrown(() => parse(prefix));
          expect(err).toBeInstanceOf(ReplicationError);
          expect((err as ReplicationError).code).toBe('ERR_AOF_TRUNCATED');
        }
      }),
    );
  });

  it('drops an unfinished MULTI at the end, as Redis does, and says how many commands it dropped', () => {
    const data = Buffer.concat([
      encode(['SET', 'a', '1']),
      encode(['MULTI']),
      encode(['SET', 'b', '2']),
      encode(['INCR', 'c']),
    ]);
    const parser = new AofParser();
    const events = [...parser.write(data), ...parser.end()];
    expect(events.map((e) => (e.kind === 'command' ? e.name : e.kind))).toEqual(['SET']);
    expect(parser.discardedCommands).toBe(3);
    expect(parser.openTransaction).toBe(false);
  });

  it('lets a transaction larger than maxTransactionBytes flow, and reports it open when it never ends', () => {
    const data = Buffer.concat([encode(['MULTI']), encode(['SET', 'b', 'x'.repeat(100)]), encode(['SET', 'c', '1'])]);
    const parser = new AofParser({ maxTransactionBytes: 50 });
    const events = [...parser.write(data), ...parser.end()];
    expect(events.map((e) => (e.kind === 'command' ? e.name : e.kind))).toEqual(['MULTI', 'SET', 'SET']);
    expect(parser.openTransaction).toBe(true);
    expect(parser.discardedCommands).toBe(0);
  });

  it('refuses what is not an AOF with ERR_AOF_CORRUPT and the offset', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('hello\r\n'), /byte 0x68 .* at offset 0/],
      [Buffer.concat([encode(['SET', 'a', 'b']), Buffer.from('+OK\r\n')]), /at offset 27/],
      [Buffer.from('*0\r\n'), /with "0" arguments/],
      [Buffer.from('*x\r\n'), /with "x" arguments/],
      [Buffer.from('*1\r\n:3\r\n'), /has length ":3"/],
      [Buffer.from('*1\r\n$3\r\nabcd\r\n'), /not followed by CRLF/],
      [Buffer.from('*1\n'), /LF alone/],
      [Buffer.from(`*${'1'.repeat(40)}\r\n`), /longer than 32 bytes/],
      [Buffer.from(`#${'x'.repeat(2000)}\r\n`), /annotation line longer/],
      [Buffer.from('\r\n'), /a line end where a command/],
      [Buffer.concat([encode(['SELECT', 'x'])]), /SELECT "x"/],
    ];
    for (const [data, message] of cases) {
      const err = thrown(() => parse(data)) as ReplicationError;
      expect(err, data.toString('latin1')).toBeInstanceOf(ReplicationError);
      expect(err.code).toBe('ERR_AOF_CORRUPT');
      expect(err.message).toMatch(message);
    }
  });

  it('applies the limits with ERR_AOF_LIMIT before buffering', () => {
    const big = thrown(() =>
      parse(Buffer.from('*1\r\n$999999\r\n'), [], { maxArgumentBytes: 1000 }),
    ) as ReplicationError;
    expect(big.code).toBe('ERR_AOF_LIMIT');
    const many = thrown(() => parse(Buffer.from('*2000\r\n'), [], { maxArguments: 1000 })) as ReplicationError;
    expect(many.code).toBe('ERR_AOF_LIMIT');
    expect(() => new AofParser({ maxArguments: 0 })).toThrow(/maxArguments must be a positive integer/);
  });

  it('never throws anything but a ReplicationError on random bytes, and stays failed after one (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          fc
            .array(fc.constantFrom('*', '$', '#', '1', '3', '\r', '\n', 'a', 'R', 'E'), { maxLength: 60 })
            .map((c) => Buffer.from(c.join(''))),
        ),
        (data) => {
          const parser = new AofParser({ maxArgumentBytes: 1 << 20 });
          try {
            parser.write(data);
            parser.end();
          } catch (err) {
            expect(err).toBeInstanceOf(ReplicationError);
            expect(() => parser.write(Buffer.from('*1\r\n$4\r\nPING\r\n'))).toThrow(ReplicationError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reports a truncated RDB preamble as an RDB error', () => {
    const rdb = new RdbWriter(10).selectDb(0).stringValue('k', 'v').end();
    const err = thrown(() => parse(rdb.subarray(0, rdb.length - 4))) as ReplicationError;
    expect(err.code).toBe('ERR_RDB_TRUNCATED');
  });
});
