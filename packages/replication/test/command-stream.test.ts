// The command stream decoder: exact offsets and sizes, SELECT and MULTI/EXEC tracking, binary
// arguments, identical results on any split of the input, and typed errors (with the offset) for
// anything that is not a stream of commands.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CommandEvent, CommandStreamDecoder, ReplicationError } from '../src/index.ts';
import { thrown } from './event-helpers.ts';

function encode(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const b = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function decodeIn(pieces: Buffer[], offset = 0): CommandEvent[] {
  const decoder = new CommandStreamDecoder({ offset });
  return pieces.flatMap((p) => decoder.feed(p));
}

function summary(events: CommandEvent[]) {
  return events.map((e) => ({
    db: e.db,
    name: e.name,
    args: e.args.map((a) => a.toString('latin1')),
    offset: e.offset,
    size: e.size,
    inTransaction: e.inTransaction,
  }));
}

describe('CommandStreamDecoder', () => {
  it('gives each command its offset, size, database and transaction flag', () => {
    const commands = [
      ['SET', 'a', '1'],
      ['SELECT', '3'],
      ['MULTI'],
      ['INCR', 'n'],
      ['EXEC'],
      ['PING'],
      ['REPLCONF', 'GETACK', '*'],
      ['select', '12'],
      ['DEL', 'x'],
    ];
    const bytes = commands.map(encode);
    const events = decodeIn([Buffer.concat(bytes)], 1000);
    let offset = 1000;
    const expected = commands.map((c, i) => {
      offset += (bytes[i] as Buffer).length;
      return { name: (c[0] as string).toUpperCase(), offset, size: (bytes[i] as Buffer).length };
    });
    expect(events.map(({ name, offset, size }) => ({ name, offset, size }))).toEqual(expected);
    expect(events.map((e) => e.db)).toEqual([0, 3, 3, 3, 3, 3, 3, 12, 12]);
    expect(events.map((e) => e.inTransaction)).toEqual([false, false, true, true, true, false, false, false, false]);
    expect(events[0]?.view).toMatchObject({ type: 'set', key: Buffer.from('a'), value: Buffer.from('1') });
    expect(events[1]?.view).toMatchObject({ type: 'select', db: 3 });
    expect(events[6]?.view).toMatchObject({ type: 'replconf' });
  });

  it('keeps binary arguments byte for byte, empty ones included', () => {
    const key = Buffer.from([0, 0xff, 0x0d, 0x0a, 0xe9]);
    const value = Buffer.alloc(100_000, 0xfe);
    const [event] = decodeIn([encode(['SET', key, value]), encode(['SET', Buffer.alloc(0), 'x'])]);
    expect(event?.args[0]?.equals(key)).toBe(true);
    expect(event?.args[1]?.equals(value)).toBe(true);
    const decoder = new CommandStreamDecoder({ offset: 0 });
    const [second] = decoder.feed(encode(['SET', Buffer.alloc(0), 'x']));
    expect(second?.args[0]?.length).toBe(0);
  });

  it('counts a command only once it is whole, and reports what is buffered', () => {
    const bytes = encode(['SET', 'key', 'value']);
    const decoder = new CommandStreamDecoder({ offset: 50, db: 4, inTransaction: true });
    expect(decoder.feed(bytes.subarray(0, 10))).toEqual([]);
    expect(decoder.offset).toBe(50);
    expect(decoder.buffered).toBe(10);
    const [event] = decoder.feed(bytes.subarray(10));
    expect(event).toMatchObject({ offset: 50 + bytes.length, db: 4, inTransaction: true });
    expect(decoder.offset).toBe(50 + bytes.length);
    expect(decoder.buffered).toBe(0);
  });

  it('gives the same commands for any split of the stream (property)', () => {
    const arg = fc.oneof(
      fc.string({ maxLength: 12 }).map((s) => Buffer.from(s)),
      fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
    );
    const command = fc.oneof(
      fc
        .tuple(fc.constantFrom('SET', 'HSET', 'DEL', 'PING', 'XADD'), fc.array(arg, { maxLength: 5 }))
        .map(([name, args]) => [Buffer.from(name), ...args]),
      fc.nat(15).map((db) => [Buffer.from('SELECT'), Buffer.from(String(db))]),
      fc.constantFrom([Buffer.from('MULTI')], [Buffer.from('EXEC')]),
    );
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.nat(1_000_000),
        (commands, cuts, base) => {
          const stream = Buffer.concat(commands.map(encode));
          const whole = summary(decodeIn([stream], base));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const pieces: Buffer[] = [];
          let at = 0;
          for (const p of [...points, stream.length]) {
            pieces.push(stream.subarray(at, p));
            at = p;
          }
          expect(summary(decodeIn(pieces, base))).toEqual(whole);
          expect(
            summary(
              decodeIn(
                [...stream].map((b) => Buffer.from([b])),
                base,
              ),
            ),
          ).toEqual(whole);
          expect(whole.length).toBe(commands.length);
          expect(whole.at(-1)?.offset).toBe(base + stream.length);
        },
      ),
      { numRuns: Number(process.env.REPLICATION_FUZZ ?? 200) },
    );
  });

  describe('refuses what is not a command stream', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['a status line', Buffer.from('+OK\r\n'), /status or error line "OK"/],
      ['an error line', Buffer.from('-ERR no\r\n'), /error reply "ERR no"/],
      ['an empty array', Buffer.from('*0\r\n'), /empty array/],
      ['an integer', Buffer.from(':1\r\n'), /a number where a command/],
      ['an integer argument', Buffer.from('*2\r\n$3\r\nSET\r\n:1\r\n'), /number among its arguments/],
      ['a null argument', Buffer.from('*2\r\n$3\r\nSET\r\n$-1\r\n'), /null among its arguments/],
      ['a nested array', Buffer.from('*2\r\n$3\r\nSET\r\n*1\r\n$1\r\na\r\n'), /RESP limit/],
      ['a push', Buffer.from('>1\r\n$4\r\nPING\r\n'), /RESP3 push/],
      ['garbage', Buffer.from('hello\r\n'), /invalid RESP/],
      ['a bulk without its CRLF', Buffer.from('*1\r\n$4\r\nPINGxx'), /invalid RESP/],
      ['a SELECT of no number', encode(['SELECT', 'x']), /SELECT with database "x"/],
      ['a SELECT without a database', encode(['SELECT']), /SELECT with 0 arguments/],
    ];
    it.each(cases)('%s', (_name, bytes, message) => {
      const good = encode(['SET', 'k', 'v']);
      const decoder = new CommandStreamDecoder({ offset: 100 });
      expect(decoder.feed(good)).toHaveLength(1);
      const err = thrown(() => decoder.feed(bytes)) as ReplicationError;
      expect(err).toBeInstanceOf(ReplicationError);
      expect(err.code).toBe('ERR_REPLICATION_PROTOCOL');
      expect(err.message).toMatch(message);
      expect(err.message).toMatch(/after replication offset \d+/);
      // Whatever follows, the decoder stays failed with the same error.
      expect(thrown(() => decoder.feed(good))).toBe(err);
    });

    it('with `into`, keeps the commands a chunk completed before the failure', () => {
      const good = encode(['SET', 'k', 'v']);
      const decoder = new CommandStreamDecoder({ offset: 0 });
      const into: CommandEvent[] = [];
      expect(() => decoder.feed(Buffer.concat([good, good, Buffer.from('+OK\r\n')]), into)).toThrow(ReplicationError);
      expect(into.map((c) => c.offset)).toEqual([good.length, 2 * good.length]);
    });

    it('names the offset of the failing command', () => {
      const good = encode(['SET', 'k', 'v']);
      const decoder = new CommandStreamDecoder({ offset: 100 });
      const err = thrown(() => decoder.feed(Buffer.concat([good, good, Buffer.from('+OK\r\n')]))) as Error;
      expect(err.message).toContain(`after replication offset ${100 + 2 * good.length}:`);
    });

    it('refuses an argument longer than maxArgumentBytes before buffering it', () => {
      const decoder = new CommandStreamDecoder({ offset: 0, maxArgumentBytes: 1024 });
      const err = thrown(() => decoder.feed(Buffer.from('*2\r\n$3\r\nSET\r\n$1000000\r\nxx'))) as ReplicationError;
      expect(err.code).toBe('ERR_REPLICATION_PROTOCOL');
      expect(err.message).toMatch(/limit/i);
    });
  });

  it('checks its options', () => {
    for (const options of [{ offset: -1 }, { offset: 1.5 }, { offset: 0, db: -1 }]) {
      const err = thrown(() => new CommandStreamDecoder(options)) as ReplicationError;
      expect(err.code).toBe('ERR_REPLICATION_ARGUMENT');
    }
  });
});
