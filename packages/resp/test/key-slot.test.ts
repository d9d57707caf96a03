// keySlot against the cluster specification's example, a real server's CLUSTER KEYSLOT, and, for
// random keys, the cluster-key-slot package that ioredis uses.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SLOTS, keySlot } from '../src/key-slot.ts';

// cluster-key-slot departs from Redis for a key whose first `{` is followed at once by `}` and
// a later `}` comes ("{}}" is hashed as an empty tag, slot 0; Redis hashes the whole key): such
// keys are compared with the server only.
function emptyTagFirst(key: string | Uint8Array): boolean {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  const open = bytes.indexOf(0x7b);
  return open >= 0 && bytes[open + 1] === 0x7d;
}

const key = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc
    .array(fc.oneof(fc.constantFrom('{', '}', 'a', 'é', '☺', ':', ''), fc.string({ maxLength: 4 })), { maxLength: 12 })
    .map((parts) => parts.join('')),
);

const runs = Number(process.env.RESP_FUZZ_RUNS ?? 2000);

describe('keySlot', () => {
  it('matches the specification and known slots', () => {
    expect(CLUSTER_SLOTS).toBe(16384);
    expect(keySlot('123456789')).toBe(0x31c3); // CRC16 XMODEM check value
    expect(keySlot('')).toBe(0);
    expect(keySlot('news')).toBe(5161);
    expect(keySlot('foo')).toBe(12182);
  });

  it('hashes only a non-empty first {tag}', () => {
    expect(keySlot('{user:1}:inbox')).toBe(keySlot('user:1'));
    expect(keySlot('x{user:1}y{other}')).toBe(keySlot('user:1'));
    expect(keySlot('{}user')).toBe(keySlot('{}user')); // empty tag: the whole key
    expect(keySlot('{}user')).not.toBe(keySlot('user'));
    expect(keySlot('{user')).not.toBe(keySlot('user'));
    expect(keySlot('user}{')).toBe(calculateSlot('user}{'));
    expect(keySlot('{}}')).toBe(keySlot(Buffer.from('{}}')));
    expect(keySlot('{{a}}')).toBe(keySlot('{a'));
  });

  it('hashes strings as UTF-8, the same as their bytes', () => {
    for (const key of ['☺', 'clé{é}', '{日本}語', '\u{1F600}x']) {
      expect(keySlot(key)).toBe(keySlot(Buffer.from(key, 'utf8')));
      expect(keySlot(key)).toBe(calculateSlot(key));
    }
    expect(keySlot(new Uint8Array([0xff, 0x00]))).toBe(calculateSlot(Buffer.from([0xff, 0x00])));
  });

  it('agrees with cluster-key-slot on random strings', () => {
    fc.assert(
      fc.property(key, (k) => emptyTagFirst(k) || keySlot(k) === calculateSlot(k)),
      { numRuns: runs },
    );
  });

  it('agrees with cluster-key-slot on random bytes', () => {
    const bytes = fc
      .uint8Array({ maxLength: 64 })
      .chain((b) => fc.tuple(fc.constant(b), fc.nat({ max: b.length }), fc.nat({ max: b.length })));
    fc.assert(
      fc.property(bytes, ([b, i, j]) => {
        const key = Buffer.from(b);
        if (key.length > 0) {
          key[Math.min(i, key.length - 1)] = 0x7b; // plant braces so tags occur often
          key[Math.min(j, key.length - 1)] = 0x7d;
        }
        return emptyTagFirst(key) || keySlot(key) === calculateSlot(key);
      }),
      { numRuns: runs },
    );
  });
});

describe('keySlot against CLUSTER KEYSLOT', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ config: { 'cluster-enabled': 'yes' } });
  });
  afterAll(() => server?.stop());

  it('gives the slot the server computes, for tricky and random keys', async () => {
    const keys = [
      '{}}',
      '{}{a}',
      '{{a}}',
      '}{a}',
      '{a}}',
      'a{}b}',
      '{',
      '}',
      '',
      '\u{1F600}{\u{1F600}}',
      ...fc.sample(key, { numRuns: 500, seed: 42 }),
    ];
    const client = server.createClient();
    const pipeline = client.pipeline();
    for (const k of keys) pipeline.call('CLUSTER', 'KEYSLOT', k);
    const replies = (await pipeline.exec()) ?? [];
    const disagreements = keys.filter((k, i) => replies[i]?.[1] !== keySlot(k));
    expect(disagreements).toEqual([]);
    // ...where cluster-key-slot departs from it.
    expect(calculateSlot('{}}')).not.toBe(replies[0]?.[1]);
    client.disconnect();
  });
});
