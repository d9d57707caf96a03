import { describe, expect, it } from 'vitest';
import { exponentialBackoff } from '../src/backoff.ts';
import { parseRedisUrl } from '../src/url.ts';

describe('parseRedisUrl', () => {
  it('reads redis://, rediss:// and unix:// URLs', () => {
    expect(parseRedisUrl('redis://127.0.0.1')).toEqual({ tls: false, host: '127.0.0.1', port: 6379 });
    expect(parseRedisUrl('redis://app:s%40cret@cache.internal:6380/2')).toEqual({
      tls: false,
      host: 'cache.internal',
      port: 6380,
      username: 'app',
      password: 's@cret',
      db: 2,
    });
    expect(parseRedisUrl('rediss://:pw@[::1]:7000')).toEqual({ tls: true, host: '::1', port: 7000, password: 'pw' });
    expect(parseRedisUrl('unix:///run/redis.sock?db=3&password=x&username=u')).toEqual({
      tls: false,
      path: '/run/redis.sock',
      db: 3,
      password: 'x',
      username: 'u',
    });
    expect(parseRedisUrl('redis://h/?protocol=2&name=worker-1')).toEqual({
      tls: false,
      host: 'h',
      port: 6379,
      protocol: 2,
      name: 'worker-1',
    });
  });

  it('explains what is wrong without repeating the password', () => {
    for (const [url, why] of [
      ['localhost:6379', /not a URL|unknown scheme/],
      ['http://h', /unknown scheme http:/],
      ['redis://h/x', /database "x"/],
      ['redis://h?db=-1', /database "-1"/],
      ['redis://h?protocol=4', /protocol must be 2 or 3/],
      ['redis://h?timeout=5', /unknown parameter "timeout"/],
      ['unix://', /no socket path/],
      ['unix://host/x.sock', /no host/],
    ] as const) {
      expect(() => parseRedisUrl(url)).toThrow(
        expect.objectContaining({ code: 'ERR_RESP_ARGUMENT', message: expect.stringMatching(why) }),
      );
    }
    try {
      parseRedisUrl('redis://u:topsecret@h/abc?password=alsosecret');
    } catch (err) {
      expect((err as Error).message).not.toMatch(/secret/);
    }
  });
});

describe('exponentialBackoff', () => {
  it('grows by the factor, caps, and jitters within the share', () => {
    const fixed = exponentialBackoff({ jitter: 0 });
    expect([1, 2, 3, 4, 5, 6, 7, 10].map((n) => fixed(n, new Error()))).toEqual([
      50, 100, 200, 400, 800, 1600, 2000, 2000,
    ]);
    const low = exponentialBackoff({ random: () => 0 });
    const high = exponentialBackoff({ random: () => 0.999999 });
    expect(low(3, new Error())).toBe(100);
    expect(high(3, new Error())).toBe(200);
    const limited = exponentialBackoff({ maxAttempts: 2 });
    expect(limited(2, new Error())).not.toBe(false);
    expect(limited(3, new Error())).toBe(false);
  });

  it('refuses nonsense', () => {
    expect(() => exponentialBackoff({ factor: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_RESP_ARGUMENT' }));
    expect(() => exponentialBackoff({ jitter: 2 })).toThrow(/jitter/);
    expect(() => exponentialBackoff({ initialDelay: 10, maxDelay: 5 })).toThrow(/maxDelay/);
  });
});
