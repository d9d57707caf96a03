import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.ts';
import { classifyFailure, StreamsError, toStreamsError } from '../src/errors.ts';
import { mentionsToken } from '../src/features.ts';
import { defaultDeadLetterKey, hasHashTag, keySlot } from '../src/key-slot.ts';
import { streamEntries, toRecord } from '../src/replies.ts';
import { compareStreamIds, isStreamId, minIdForAge, parseStreamId } from '../src/stream-id.ts';

const b = (s: string) => Buffer.from(s);

describe('streamEntries', () => {
  const entries = [
    [b('1-0'), [b('body'), b('x')]],
    [b('2-0'), null],
  ];

  it('reads RESP2 arrays, RESP3 flattened maps, RESP3 objects and Maps alike', () => {
    const shapes = [[[b('s'), entries]], [b('s'), entries], { s: entries }, new Map([['s', entries]])];
    for (const shape of shapes) {
      expect(streamEntries(shape, 10)).toEqual([
        { id: '1-0', fields: [b('body'), b('x')], previousDeliveries: undefined },
        { id: '2-0', fields: null, previousDeliveries: undefined },
      ]);
    }
    expect(streamEntries(null, 10)).toEqual([]);
    expect(streamEntries([], 10)).toEqual([]);
  });

  it('reads the idle time and delivery count that XREADGROUP CLAIM adds', () => {
    const claimed = [[b('s'), [[b('3-0'), [b('body'), b('y')], 1205, 2]]]];
    expect(streamEntries(claimed, 10)[0]?.previousDeliveries).toBe(2);
    expect(streamEntries([[b('s'), [[b('3-0'), [], '5', '7']]]], 10)[0]?.previousDeliveries).toBe(7);
  });

  it('turns replies no server sends into ERR_STREAMS_PROTOCOL', () => {
    const bad: unknown[] = [
      'OK',
      42,
      [[b('s'), 'entries']],
      [[b('s'), [[b('1-0')]]]],
      [[b('s'), [[7, []]]]],
      [[b('s'), [[b('1-0'), 'fields']]]],
      [[b('s'), [[b('1-0'), [], 0, -1]]]],
      [[b('s'), [entries[0], entries[0], entries[0]]]],
    ];
    for (const reply of bad) {
      expect(() => streamEntries(reply, 2)).toThrow(StreamsError);
      try {
        streamEntries(reply, 2);
      } catch (err) {
        expect((err as StreamsError).code).toBe('ERR_STREAMS_PROTOCOL');
      }
    }
  });

  it('property: arbitrary nested replies parse or fail with ERR_STREAMS_PROTOCOL, nothing else', () => {
    const leaf = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
    );
    const tree = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 })),
    })).node;
    fc.assert(
      fc.property(tree, (reply) => {
        try {
          streamEntries(reply, 3);
        } catch (err) {
          expect((err as StreamsError).code).toBe('ERR_STREAMS_PROTOCOL');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads map replies as records', () => {
    expect(toRecord(['a', 1, 'b', 'x'], 'm')).toEqual({ a: 1, b: 'x' });
    expect(toRecord({ a: 1 }, 'm')).toEqual({ a: 1 });
    expect(() => toRecord(['a'], 'm')).toThrow(/pairs/);
  });

  it('finds a token in COMMAND DOCS at any depth, without recursion', () => {
    expect(mentionsToken(['xreadgroup', ['arguments', [['token', 'CLAIM']]]], 'CLAIM')).toBe(true);
    expect(mentionsToken({ arguments: [{ token: b('CLAIM') }] }, 'CLAIM')).toBe(true);
    expect(mentionsToken(['summary', 'claim'], 'CLAIM')).toBe(false);
    let deep: unknown = 'CLAIM';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(mentionsToken(deep, 'CLAIM')).toBe(false); // deeper than any real reply: not looked at, no stack overflow
  });
});

describe('stream IDs', () => {
  it('parses, orders and validates IDs, including 64-bit parts', () => {
    expect(parseStreamId('1526919030474-55')).toEqual({ ms: 1526919030474n, seq: 55n });
    expect(parseStreamId('7')).toEqual({ ms: 7n, seq: 0n });
    expect(isStreamId('18446744073709551615-18446744073709551615')).toBe(true);
    expect(isStreamId('18446744073709551616-0')).toBe(false);
    for (const bad of ['', '$', '>', '-1', '1-', 'a-1', '1-2-3']) expect(isStreamId(bad)).toBe(false);
    expect(compareStreamIds('9007199254740993-0', '9007199254740992-9')).toBeGreaterThan(0);
    expect(minIdForAge(10_000, 3_000)).toBe('7000-0');
    expect(minIdForAge(10, 3_000)).toBe('0-0');
  });

  it('property: the order is the order of (ms, seq) as big integers', () => {
    const part = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(part, part, part, part, (a, b2, c, d) => {
        const expected = a === c ? (b2 === d ? 0 : b2 < d ? -1 : 1) : a < c ? -1 : 1;
        expect(compareStreamIds(`${a}-${b2}`, `${c}-${d}`)).toBe(expected);
      }),
    );
  });
});

describe('cluster key slots', () => {
  it('matches the slots Redis computes', () => {
    expect(keySlot('123456789')).toBe(12739);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(hasHashTag('foo{}{bar}')).toBe(false);
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(hasHashTag('a{b}c')).toBe(true);
    expect(hasHashTag('a{}c')).toBe(false);
  });

  it('names a dead-letter stream in the topic slot, or none when impossible', () => {
    expect(defaultDeadLetterKey('orders')).toBe('{orders}:dead');
    expect(defaultDeadLetterKey('{shop}:orders')).toBe('{shop}:orders:dead');
    expect(defaultDeadLetterKey('a{}b}')).toBeUndefined();
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }), (topic) => {
        const dead = defaultDeadLetterKey(topic);
        if (dead !== undefined) expect(keySlot(dead)).toBe(keySlot(topic));
        else expect(topic).toMatch(/[{}]/);
      }),
    );
  });
});

describe('failures', () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: 'SimpleError' });

  it('sorts Redis and connection errors into transient, missing group, unknown command and permanent', () => {
    for (const m of ['LOADING Redis is loading', 'TRYAGAIN', 'CLUSTERDOWN The cluster is down', 'READONLY You can']) {
      expect(classifyFailure(reply(m))).toBe('transient');
    }
    expect(classifyFailure(reply('NOGROUP No such key'))).toBe('no-group');
    expect(classifyFailure(reply("ERR unknown command 'XNACK'"))).toBe('unknown-command');
    expect(classifyFailure(reply('ERR syntax error'))).toBe('unknown-command');
    expect(classifyFailure(reply('WRONGTYPE Operation against a key'))).toBe('permanent');
    expect(classifyFailure(reply('NOPERM this user has no permissions'))).toBe('permanent');
    expect(classifyFailure(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(classifyFailure(new Error('Connection is closed.'))).toBe('transient');
    expect(classifyFailure(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe('transient');
    // What an ioredis Cluster throws while nodes disagree about a slot that is moving.
    const redirections = 'Too many Cluster redirections. Last error: ReplyError: MOVED 7346 127.0.0.1:45979';
    expect(classifyFailure(new Error(redirections))).toBe('transient');
    expect(classifyFailure(new TypeError('a bug'))).toBe('permanent');
  });

  it('wraps errors once, with context and the cause', () => {
    const cause = reply('NOGROUP No such key');
    const wrapped = toStreamsError(cause, { what: 'reading', topic: 't', group: 'g' });
    expect(wrapped.code).toBe('ERR_STREAMS_NOT_FOUND');
    expect(wrapped.message).toMatch(/group "g"/);
    expect(wrapped.cause).toBe(cause);
    expect(toStreamsError(wrapped, { what: 'again' })).toBe(wrapped);
    expect(toStreamsError(new Error('Connection is closed.'), { what: 'x' }).retryable).toBe(true);
  });

  it('recognises errors from another copy of the package', () => {
    const foreign = { code: 'ERR_STREAMS_CLOSED', [Symbol.for('@redis-events/streams-driver.error')]: true };
    expect(foreign instanceof StreamsError).toBe(true);
    expect(new Error('x') instanceof StreamsError).toBe(false);
  });

  it('backs off exponentially with jitter, within the bounds', () => {
    const backoff = new Backoff({ initialDelayMs: 10, maxDelayMs: 200 });
    const delays = Array.from({ length: 12 }, () => backoff.next());
    for (const [i, d] of delays.entries()) {
      const ceiling = Math.min(200, 10 * 2 ** i);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(10);
  });
});
