import { TestkitError } from './errors.ts';

/** The flavour and version of a server, read from `redis-server --version` or `INFO server`. */
export interface ServerVersion {
  /** `redis` or `valkey`. */
  readonly flavor: 'redis' | 'valkey';
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** For example `redis 7.4.1` or `valkey 9.1.2`. */
  readonly text: string;
}

/** Parses `7.4`, `7.4.1` or `8` into numbers; missing parts are 0. */
export function parseVersion(text: string): [number, number, number] {
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(text.trim());
  if (!match) {
    throw new TestkitError('ERR_TESTKIT_ARGUMENT', `"${text}" is not a version; write it like 7.4 or 7.4.1`);
  }
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

/** Builds a {@link ServerVersion} from the output of `redis-server --version` or `valkey-server --version`. */
export function versionFromBanner(banner: string): ServerVersion {
  const match = /(Redis|Valkey) server v=(\d+\.\d+\.\d+)/.exec(banner);
  if (!match?.[1] || !match[2]) {
    throw new TestkitError('ERR_TESTKIT_START', `cannot read a server version from "${banner.trim()}"`);
  }
  return makeVersion(match[1].toLowerCase() === 'valkey' ? 'valkey' : 'redis', match[2]);
}

/** Builds a {@link ServerVersion} from `INFO server` fields (Valkey reports `valkey_version`). */
export function versionFromInfo(info: Readonly<Record<string, string>>): ServerVersion {
  const valkey = info.valkey_version;
  if (valkey) return makeVersion('valkey', valkey);
  const redis = info.redis_version;
  if (!redis) throw new TestkitError('ERR_TESTKIT_START', 'INFO server has no redis_version field');
  return makeVersion('redis', redis);
}

function makeVersion(flavor: 'redis' | 'valkey', text: string): ServerVersion {
  const [major, minor, patch] = parseVersion(text);
  return { flavor, major, minor, patch, text: `${flavor} ${major}.${minor}.${patch}` };
}

/**
 * True when `version` is at least `minimum`. The minimum may name a flavour (`valkey 8`); without
 * one it compares the Redis-compatible version, which for Valkey means Valkey 8+ counts as 7.2.
 *
 * @example
 * ```ts
 * if (!versionAtLeast(server.version, '7.4')) ctx.skip('needs Redis 7.4 for hash field expiry');
 * ```
 */
export function versionAtLeast(version: ServerVersion, minimum: string): boolean {
  const flavored = /^(redis|valkey)\s+(.+)$/i.exec(minimum.trim());
  let want: [number, number, number];
  let have: [number, number, number] = [version.major, version.minor, version.patch];
  if (flavored?.[1] && flavored[2]) {
    if (flavored[1].toLowerCase() !== version.flavor) return false;
    want = parseVersion(flavored[2]);
  } else {
    want = parseVersion(minimum);
    // Valkey forked from Redis 7.2.4 and reports that as its Redis compatibility level.
    if (version.flavor === 'valkey') have = [7, 2, 4];
  }
  for (let i = 0; i < 3; i++) {
    const a = have[i] ?? 0;
    const b = want[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/**
 * Returns why a test cannot run on this server, or `undefined` when it can. Meant for
 * `ctx.skip(reason)` so that the reason shows in the test report.
 *
 * @example
 * ```ts
 * it('reads hash field expiry', (ctx) => {
 *   const reason = missingVersion(server.version, '7.4');
 *   if (reason) return ctx.skip(reason);
 * });
 * ```
 */
export function missingVersion(version: ServerVersion, minimum: string): string | undefined {
  return versionAtLeast(version, minimum) ? undefined : `needs ${minimum}, server is ${version.text}`;
}
