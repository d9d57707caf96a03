import { describe, expect, it } from 'vitest';
import { TestkitError } from '../src/errors.ts';
import { missingVersion, parseVersion, versionAtLeast, versionFromBanner, versionFromInfo } from '../src/version.ts';

describe('versions', () => {
  it('reads redis-server and valkey-server banners', () => {
    expect(versionFromBanner('Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d')).toEqual({
      flavor: 'redis',
      major: 7,
      minor: 0,
      patch: 15,
      text: 'redis 7.0.15',
    });
    expect(versionFromBanner('Valkey server v=9.1.2 sha=00000000:1 malloc=libc').text).toBe('valkey 9.1.2');
    expect(() => versionFromBanner('nonsense')).toThrow(TestkitError);
  });

  it('prefers valkey_version over the compatibility redis_version in INFO', () => {
    expect(versionFromInfo({ redis_version: '7.2.4', valkey_version: '8.1.1' }).text).toBe('valkey 8.1.1');
    expect(versionFromInfo({ redis_version: '8.6.3' }).text).toBe('redis 8.6.3');
    expect(() => versionFromInfo({})).toThrow(/redis_version/);
  });

  it('compares with and without a flavour', () => {
    const redis74 = versionFromBanner('Redis server v=7.4.1');
    const valkey9 = versionFromBanner('Valkey server v=9.1.2');
    expect(versionAtLeast(redis74, '7.4')).toBe(true);
    expect(versionAtLeast(redis74, '7.4.2')).toBe(false);
    expect(versionAtLeast(redis74, '8')).toBe(false);
    expect(versionAtLeast(redis74, 'valkey 8')).toBe(false);
    // Valkey counts as Redis 7.2.4 unless the flavour is named.
    expect(versionAtLeast(valkey9, '7.2')).toBe(true);
    expect(versionAtLeast(valkey9, '7.4')).toBe(false);
    expect(versionAtLeast(valkey9, 'valkey 9')).toBe(true);
    expect(missingVersion(redis74, '8.0')).toBe('needs 8.0, server is redis 7.4.1');
    expect(missingVersion(redis74, '7.0')).toBeUndefined();
  });

  it('rejects what is not a version', () => {
    expect(parseVersion('8')).toEqual([8, 0, 0]);
    expect(() => parseVersion('seven')).toThrow(/is not a version/);
  });
});
