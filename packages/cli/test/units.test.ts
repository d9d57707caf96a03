import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatch } from '../src/glob.ts';
import { toJson } from '../src/json.ts';

const g = (pattern: string, subject: string) => globMatch(Buffer.from(pattern), Buffer.from(subject));

describe('glob', () => {
  it('matches like Redis KEYS', () => {
    expect(g('user:*', 'user:1')).toBe(true);
    expect(g('user:*', 'users')).toBe(false);
    expect(g('h?llo', 'hello')).toBe(true);
    expect(g('h[ae]llo', 'hallo')).toBe(true);
    expect(g('h[^e]llo', 'hello')).toBe(false);
    expect(g('h[a-b]llo', 'hbllo')).toBe(true);
    expect(g('a\\*b', 'a*b')).toBe(true);
    expect(g('a\\*b', 'axb')).toBe(false);
    expect(g('*a*b*c*', 'xxaxxbxxcxx')).toBe(true);
    expect(g('*', '')).toBe(true);
  });

  it('a pattern without specials matches only itself; * matches anything', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9:]{0,12}$/), fc.stringMatching(/^[a-z0-9:]{0,12}$/), (a, b) => {
        expect(g(a, b)).toBe(a === b);
        expect(g('*', b)).toBe(true);
        expect(g(`${a}*`, a + b)).toBe(true);
      }),
    );
  });
});

describe('JSON mapping', () => {
  it('keeps bytes, big numbers and special scores representable', () => {
    expect(toJson(Buffer.from('héllo'))).toBe('héllo');
    expect(toJson(Buffer.from([0xff]))).toEqual({ base64: '/w==' });
    expect(toJson(12345678901234567890n)).toBe('12345678901234567890');
    expect(toJson([Infinity, -Infinity, NaN, 1.5])).toEqual(['inf', '-inf', 'nan', 1.5]);
    expect(toJson(new Map([['a', 1]]))).toEqual({ a: 1 });
    expect(toJson(new Map([[1, 'x']]))).toEqual([[1, 'x']]);
    expect(toJson({ a: undefined, b: new Date(0) })).toEqual({ b: '1970-01-01T00:00:00.000Z' });
  });
});
