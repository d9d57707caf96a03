import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkName, checkPrefix, escapeName, hashTagOf, MAX_NAME_BYTES, streamKey, timelineBase } from '../src/keys.ts';

const names = fc.string({ unit: fc.constantFrom('a', 'b', ':', '{', '}', '%', '3', 'A', '7', 'B', 'D', 'é') });

describe('event names in keys', () => {
  it('escapes %, :, { and } and nothing else', () => {
    expect(escapeName('user.created')).toBe('user.created');
    expect(escapeName('a:b{c}%d')).toBe('a%3Ab%7Bc%7D%25d');
  });

  it('never maps two names to one escaped form, and never leaves a brace or colon', () => {
    fc.assert(
      fc.property(names, names, (a, b) => {
        const ea = escapeName(a);
        if (a !== b) expect(ea).not.toBe(escapeName(b));
        expect(ea).not.toMatch(/[:{}]/);
      }),
      { numRuns: 2000 },
    );
  });

  it('puts all keys of a name in one hash slot, whatever the name and prefix', () => {
    const prefixes = fc.string({ unit: fc.constantFrom('p', ':', '{', '}', 'x'), minLength: 1 });
    fc.assert(
      fc.property(
        prefixes,
        names.filter((n) => n.length > 0),
        (prefix, name) => {
          try {
            checkPrefix(prefix);
          } catch {
            return; // refused prefixes (an empty tag) are covered below
          }
          const base = timelineBase(prefix, name, 'tagged');
          const tags = new Set([`${base}:timeline`, `${base}:floor`, `${base}:1715595630123456000`].map(hashTagOf));
          expect(tags.size).toBe(1);
          // and different names of one prefix without a tag land on their own tags
          if (!prefix.includes('{')) expect(hashTagOf(streamKey(prefix, name))).toBe(escapeName(name));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keeps the Go layout keys as the Go extension writes them', () => {
    expect(timelineBase('mediator:events', 'user:created', 'go')).toBe('mediator:events:user:created');
    expect(timelineBase('mediator:events', 'user:created', 'tagged')).toBe('mediator:events:{user%3Acreated}');
    expect(streamKey('mediator:events', 'user.created')).toBe('mediator:events:{user.created}');
  });

  it('computes hash tags like Redis Cluster', () => {
    expect(hashTagOf('a{b}c')).toBe('b');
    expect(hashTagOf('a{}{b}')).toBe('a{}{b}');
    expect(hashTagOf('a{b')).toBe('a{b');
    expect(hashTagOf('{a}{b}')).toBe('a');
    expect(hashTagOf('plain')).toBe('plain');
  });

  it('refuses empty, overlong, non-string and ill-formed names', () => {
    const code = { code: 'ERR_EVENT_STORE_ARGUMENT' };
    expect(() => checkName('')).toThrow(expect.objectContaining(code));
    expect(() => checkName(42)).toThrow(expect.objectContaining(code));
    expect(() => checkName('x'.repeat(MAX_NAME_BYTES + 1))).toThrow(expect.objectContaining(code));
    expect(() => checkName('é'.repeat(MAX_NAME_BYTES / 2 + 1))).toThrow(/longer than 1024 bytes/);
    expect(() => checkName('a\uD800b')).toThrow(/lone UTF-16 surrogate/);
    expect(() => checkName('é'.repeat(MAX_NAME_BYTES / 2))).not.toThrow();
  });

  it('refuses prefixes that would scatter a name over slots', () => {
    expect(() => checkPrefix('app{}')).toThrow(/empty hash tag/);
    expect(() => checkPrefix('')).toThrow(expect.objectContaining({ code: 'ERR_EVENT_STORE_CONFIG' }));
    expect(() => checkPrefix('app{tenant}')).not.toThrow();
    expect(() => checkPrefix('a}{')).not.toThrow();
  });
});
