// The sync's key filter: Redis glob patterns matched as Redis matches them (checked against the
// server's KEYS on random keys and patterns), prefixes, exclusions, databases and types.

import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicationError } from '../src/index.ts';
import { compileFilter, globRegExp } from '../src/sink/filter.ts';

describe('globRegExp against the server', () => {
  let server: SpawnedRedis;
  let client: Redis;
  beforeAll(async () => {
    server = await spawnRedis();
    client = server.createClient();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('matches exactly the keys KEYS matches (property)', async () => {
    const alphabet = fc.constantFrom('a', 'b', 'c', ':', '{', '1', '\n', 'é', '*', '?', '[', ']', '-', '^', '\\');
    const keyArb = fc.array(alphabet, { minLength: 1, maxLength: 6 }).map((c) => c.join(''));
    const patternPart = fc.oneof(
      alphabet,
      fc.constantFrom('*', '?', '[abc]', '[^a]', '[a-c]', '[c-a]', '\\*', '\\[', '[\\]]', '[', 'a*b'),
    );
    const patternArb = fc.array(patternPart, { minLength: 1, maxLength: 4 }).map((p) => p.join(''));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 12 }), patternArb, async (keys, pattern) => {
        await client.flushdb();
        await client.mset(...keys.flatMap((k) => [k, '1']));
        const theirs = ((await client.keys(pattern)) as string[]).sort();
        const re = globRegExp(pattern);
        const ours = keys.filter((k) => re.test(Buffer.from(k).toString('latin1'))).sort();
        expect(ours, `pattern ${JSON.stringify(pattern)}`).toEqual(theirs);
      }),
      { numRuns: 300 },
    );
  });
});

describe('compileFilter', () => {
  it('keeps keys by prefix or pattern, minus exclusions, in kept databases, of kept types', () => {
    const f = compileFilter({
      dbs: [0, 2],
      prefixes: ['user:'],
      patterns: ['order:*:open'],
      exclude: { prefixes: ['user:tmp'], patterns: ['*:secret'] },
      types: ['hash', 'string'],
    });
    const k = (s: string) => Buffer.from(s);
    expect(f.key(k('user:1'))).toBe(true);
    expect(f.key(k('order:9:open'))).toBe(true);
    expect(f.key(k('order:9:closed'))).toBe(false);
    expect(f.key(k('user:tmp:1'))).toBe(false);
    expect(f.key(k('user:1:secret'))).toBe(false);
    expect(f.key(k('session:1'))).toBe(false);
    expect([0, 1, 2].map((db) => f.db(db))).toEqual([true, false, true]);
    expect(f.type('hash')).toBe(true);
    expect(f.type('stream')).toBe(false);
    expect(f.all).toBe(false);
    expect(f.scanPattern).toBeUndefined();
  });

  it('gives a SCAN pattern when one prefix or one pattern covers every kept key, escaping glob characters', () => {
    expect(compileFilter({ prefixes: ['a*b['] }).scanPattern).toBe('a\\*b\\[*');
    expect(compileFilter({ patterns: ['x:?'] }).scanPattern).toBe('x:?');
    expect(compileFilter({}).all).toBe(true);
    expect(compileFilter({}).key(Buffer.from('anything'))).toBe(true);
  });

  it('matches binary prefixes byte for byte', () => {
    const f = compileFilter({ prefixes: [Buffer.from([0xff, 0x00])] });
    expect(f.key(Buffer.from([0xff, 0x00, 1]))).toBe(true);
    expect(f.key(Buffer.from([0xff, 0x01]))).toBe(false);
  });

  it('refuses unknown fields and bad values with ERR_REPLICATION_ARGUMENT', () => {
    for (const bad of [
      { db: [0] },
      { dbs: [-1] },
      { types: ['blob'] },
      { exclude: { types: ['hash'] } },
      { patterns: [1] },
    ]) {
      expect(() => compileFilter(bad as never)).toThrow(ReplicationError);
    }
  });

  it('has the same fingerprint for the same rules in any order, another one for other rules', () => {
    expect(compileFilter({ prefixes: ['a', 'b'], dbs: [1, 0] }).fingerprint).toBe(
      compileFilter({ dbs: [0, 1], prefixes: ['b', 'a'] }).fingerprint,
    );
    expect(compileFilter({ prefixes: ['a'] }).fingerprint).not.toBe(compileFilter({ prefixes: ['b'] }).fingerprint);
  });
});
