import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TestkitError } from './errors.ts';
import { type ServerVersion, versionFromBanner } from './version.ts';

const run = promisify(execFile);

/** A server binary the testkit can spawn. */
export interface ServerBinary {
  /** A short name: the folder name in `REDIS_SERVERS_DIR`, or `PATH` / `REDIS_SERVER_BIN`. */
  readonly name: string;
  /** Absolute path of `redis-server` or `valkey-server`. */
  readonly path: string;
  readonly version: ServerVersion;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const versionCache = new Map<string, Promise<ServerVersion>>();

/** Runs `<bin> --version` once per path and caches the answer. */
export function binaryVersion(path: string): Promise<ServerVersion> {
  let pending = versionCache.get(path);
  if (!pending) {
    pending = run(path, ['--version'], { timeout: 10_000 }).then(
      ({ stdout }) => versionFromBanner(stdout),
      (err: unknown) => {
        versionCache.delete(path);
        throw new TestkitError('ERR_TESTKIT_START', `cannot run "${path} --version"`, { cause: err });
      },
    );
    versionCache.set(path, pending);
  }
  return pending;
}

/**
 * The server binary in one folder of a servers directory: `bin/redis-server`, else
 * `bin/valkey-server` (copies of Valkey may carry `redis-server` as a non-executable link stub).
 */
function binaryIn(folder: string): string | undefined {
  for (const name of ['redis-server', 'valkey-server']) {
    const candidate = join(folder, 'bin', name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Every server in a servers directory (`REDIS_SERVERS_DIR` by default): each sub-folder holding
 * `bin/redis-server` or `bin/valkey-server`, sorted by name.
 *
 * @example
 * ```ts
 * for (const server of await listServers()) console.log(server.name, server.version.text);
 * ```
 */
export async function listServers(dir: string | undefined = process.env.REDIS_SERVERS_DIR): Promise<ServerBinary[]> {
  if (!dir) return [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new TestkitError('ERR_TESTKIT_SELECTION', `REDIS_SERVERS_DIR "${dir}" cannot be read`, { cause: err });
  }
  const found: ServerBinary[] = [];
  for (const name of names) {
    const path = binaryIn(join(dir, name));
    if (path) found.push({ name, path, version: await binaryVersion(path) });
  }
  return found;
}

function matches(server: ServerBinary, wanted: string): boolean {
  const w = wanted.trim().toLowerCase();
  if (server.name.toLowerCase() === w) return true;
  // "7.4", "redis-7.4", "valkey-9" and "valkey 9" select by prefix of the version.
  const m = /^(?:(redis|valkey)[-\s]?)?(\d+(?:\.\d+){0,2})$/.exec(w);
  if (!m?.[2]) return false;
  if (m[1] && m[1] !== server.version.flavor) return false;
  const v = server.version;
  const full = `${v.major}.${v.minor}.${v.patch}`;
  return full === m[2] || full.startsWith(`${m[2]}.`);
}

/**
 * The servers selected by the environment, in this order:
 * - `REDIS_SERVER_BIN`: that binary alone;
 * - `REDIS_SERVER` with `REDIS_SERVERS_DIR`: `all` for every server there (a version matrix), or a
 *   comma-separated list of names or versions (`redis-7.4.1`, `7.4`, `valkey-9`);
 * - otherwise `redis-server` (then `valkey-server`) on `PATH`.
 * Returns an empty list when nothing is found; {@link findServer} turns that into an error.
 */
export async function selectedServers(env: NodeJS.ProcessEnv = process.env): Promise<ServerBinary[]> {
  const explicit = env.REDIS_SERVER_BIN;
  if (explicit) {
    const path = resolve(explicit);
    if (!isExecutable(path)) {
      throw new TestkitError('ERR_TESTKIT_SELECTION', `REDIS_SERVER_BIN "${explicit}" is not an executable file`);
    }
    return [{ name: 'REDIS_SERVER_BIN', path, version: await binaryVersion(path) }];
  }
  const wanted = env.REDIS_SERVER?.trim();
  if (wanted) {
    const all = await listServers(env.REDIS_SERVERS_DIR);
    if (all.length === 0) {
      throw new TestkitError(
        'ERR_TESTKIT_SELECTION',
        `REDIS_SERVER=${wanted} needs REDIS_SERVERS_DIR to point at a folder of servers (each with bin/redis-server)`,
      );
    }
    if (wanted.toLowerCase() === 'all') return all;
    const picked: ServerBinary[] = [];
    for (const one of wanted.split(',')) {
      const hit = all.filter((s) => matches(s, one));
      if (hit.length === 0) {
        throw new TestkitError(
          'ERR_TESTKIT_SELECTION',
          `REDIS_SERVER=${one} matches none of: ${all.map((s) => s.name).join(', ')}`,
        );
      }
      for (const s of hit) if (!picked.includes(s)) picked.push(s);
    }
    return picked;
  }
  const path = onPath('redis-server') ?? onPath('valkey-server');
  return path ? [{ name: 'PATH', path, version: await binaryVersion(path) }] : [];
}

/** How to get a server, for error messages. */
export const HOW_TO_GET_A_REDIS: string = [
  'Give the testkit a Redis in one of three ways:',
  '  1. REDIS_URL=redis://127.0.0.1:6379 to use a running server (it is never flushed unless REDIS_TESTKIT_ALLOW_FLUSH=1);',
  '  2. a Docker-compatible engine (Docker or Podman) with the image in REDIS_IMAGE, and the optional package "testcontainers";',
  '  3. a redis-server binary: on PATH (Debian: apt-get install redis-server), or REDIS_SERVER_BIN=/path/to/redis-server.',
].join('\n');

/**
 * The binary to spawn: the first of {@link selectedServers}. When `REDIS_SERVER=all` selects a
 * matrix, the first server is used; run one process per server to cover the matrix.
 *
 * @throws {TestkitError} `ERR_TESTKIT_NO_SERVER` when nothing is installed, with the ways to fix it.
 */
export async function findServer(env: NodeJS.ProcessEnv = process.env): Promise<ServerBinary> {
  const [first] = await selectedServers(env);
  if (!first) throw new TestkitError('ERR_TESTKIT_NO_SERVER', `no redis-server binary found.\n${HOW_TO_GET_A_REDIS}`);
  return first;
}
