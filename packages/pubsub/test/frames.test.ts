// Telling subscriber frames apart, as strings and as Buffers, and the cluster hash slot.
import { RespDecoder } from '@redis-events/resp';
import { spawnRedis } from '@redis-events/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  confirmation,
  FRAME_MESSAGE,
  FRAME_OTHER,
  FRAME_PMESSAGE,
  FRAME_PONG,
  FRAME_PSUBSCRIBE,
  FRAME_PUNSUBSCRIBE,
  FRAME_SMESSAGE,
  FRAME_SSUBSCRIBE,
  FRAME_SUBSCRIBE,
  FRAME_SUNSUBSCRIBE,
  FRAME_UNSUBSCRIBE,
  frameType,
} from '../src/frames.ts';
import { keySlot } from '../src/key-slot.ts';

const runs = Number(process.env.PUBSUB_FUZZ_RUNS ?? 300);

/** Decodes RESP bytes with both string mappings; returns [strings, buffers]. */
function decodeBoth(bytes: string): [unknown, unknown] {
  const out: unknown[] = [];
  for (const strings of ['string', 'buffer'] as const) {
    const decoder = new RespDecoder({ strings, onReply: (v) => out.push(v), onPush: (v) => out.push(v) });
    decoder.feed(Buffer.from(bytes, 'latin1'));
  }
  return out as [unknown, unknown];
}

describe('frameType', () => {
  const cases: [string, string, number][] = [
    ['RESP3 message', '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n', FRAME_MESSAGE],
    ['RESP2 message', '*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$0\r\n\r\n', FRAME_MESSAGE],
    ['pmessage', '>4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n', FRAME_PMESSAGE],
    ['smessage', '>3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\nx\r\n', FRAME_SMESSAGE],
    ['subscribe', '>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n', FRAME_SUBSCRIBE],
    ['psubscribe', '>3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n', FRAME_PSUBSCRIBE],
    ['ssubscribe', '>3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n', FRAME_SSUBSCRIBE],
    ['unsubscribe', '*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n', FRAME_UNSUBSCRIBE],
    ['unsubscribe, nothing subscribed (RESP2 null)', '*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n', FRAME_UNSUBSCRIBE],
    ['unsubscribe, nothing subscribed (RESP3 null)', '>3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n', FRAME_UNSUBSCRIBE],
    ['punsubscribe', '>3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:0\r\n', FRAME_PUNSUBSCRIBE],
    ['sunsubscribe', '>3\r\n$12\r\nsunsubscribe\r\n$2\r\nch\r\n:0\r\n', FRAME_SUNSUBSCRIBE],
    ['RESP2 subscriber PONG', '*2\r\n$4\r\npong\r\n$0\r\n\r\n', FRAME_PONG],
    ['message missing its payload', '>2\r\n$7\r\nmessage\r\n$2\r\nch\r\n', FRAME_OTHER],
    ['message with a number payload', '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:1\r\n', FRAME_OTHER],
    ['confirmation without a count', '>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n$1\r\n1\r\n', FRAME_OTHER],
    ['upper-case kind', '>3\r\n$7\r\nMESSAGE\r\n$2\r\nch\r\n$1\r\nx\r\n', FRAME_OTHER],
    ['invalidate push', '>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n', FRAME_OTHER],
    ['a kind of the right length, other letters', '>3\r\n$8\r\nxmessage\r\n$2\r\nch\r\n$1\r\nx\r\n', FRAME_OTHER],
    ['simple string', '+OK\r\n', FRAME_OTHER],
  ];

  it.each(cases)('%s', (_name, bytes, type) => {
    const [asStrings, asBuffers] = decodeBoth(bytes);
    expect(frameType(asStrings)).toBe(type);
    expect(frameType(asBuffers)).toBe(type);
  });

  it('reads confirmations, null names included, from strings and Buffers alike', () => {
    for (const value of decodeBoth('>3\r\n$11\r\nunsubscribe\r\n_\r\n:2\r\n')) {
      expect(confirmation(value)).toEqual({ kind: 'channel', subscribe: false, name: null, count: 2 });
    }
    for (const value of decodeBoth('>3\r\n$10\r\nssubscribe\r\n$3\r\n\xc3\xa9t\r\n:1\r\n')) {
      expect(confirmation(value)).toEqual({ kind: 'shard', subscribe: true, name: 'ét', count: 1 });
    }
    expect(confirmation(['message', 'a', 'b'])).toBeUndefined();
  });

  it('never throws, and agrees between strings and Buffers, on any array (property)', () => {
    const text = fc.oneof(
      fc.constantFrom('message', 'pmessage', 'smessage', 'subscribe', 'psubscribe', 'ssubscribe', 'pong'),
      fc.constantFrom('unsubscribe', 'punsubscribe', 'sunsubscribe', 'MESSAGE', ''),
      fc.string({ maxLength: 14 }),
    );
    const element = fc.oneof(text, fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));
    fc.assert(
      fc.property(fc.array(element, { maxLength: 5 }), (value) => {
        const type = frameType(value);
        const buffers = value.map((v) => (typeof v === 'string' ? Buffer.from(v) : v));
        expect(frameType(buffers)).toBe(type);
        if (type === FRAME_MESSAGE || type === FRAME_SMESSAGE) expect(value).toHaveLength(3);
        if (type === FRAME_PMESSAGE) expect(value).toHaveLength(4);
      }),
      { numRuns: runs * 3 },
    );
  });
});

describe('keySlot', () => {
  it('computes CRC16 (XModem) modulo 16384, with hash tags', () => {
    expect(keySlot('123456789')).toBe(0x31c3 % 16384); // the CRC16 check value
    expect(keySlot('news')).toBe(5161);
    expect(keySlot('{news}:sports')).toBe(keySlot('news'));
    expect(keySlot('a{news}b{x}')).toBe(keySlot('news'));
    expect(keySlot('{}news')).not.toBe(keySlot('news')); // empty tag: the whole name counts
    expect(keySlot('{}news')).toBe(keySlot(Buffer.from('{}news')));
    expect(keySlot('news{')).not.toBe(keySlot('news'));
    expect(keySlot('')).toBe(0);
  });

  it('agrees with CLUSTER KEYSLOT on random names (property)', async () => {
    await using node = await spawnRedis({ config: { 'cluster-enabled': 'yes' } });
    const names = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        fc
          .tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }))
          .map(([a, b, c]) => `${a}{${b}}${c}`),
      ),
      { numRuns: runs },
    );
    for (const name of names)
      expect(keySlot(name), JSON.stringify(name)).toBe(Number(await node.command('CLUSTER', 'KEYSLOT', name)));
  });
});
