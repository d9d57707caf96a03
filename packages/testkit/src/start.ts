import { HOW_TO_GET_A_REDIS, selectedServers } from './binaries.ts';
import { containerEngineAvailable, startContainerRedis } from './container.ts';
import { TestkitError } from './errors.ts';
import { connectRedis, type RedisServer } from './server.ts';
import { type SpawnRedisOptions, spawnRedis } from './spawned.ts';

/** How {@link startRedis} finds a server. `auto` tries `url`, then `container`, then `spawn`. */
export type StartMode = 'auto' | 'url' | 'container' | 'spawn';

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Default from `REDIS_TESTKIT_MODE`, else `auto`. */
  readonly mode?: StartMode | undefined;
  /** Options for a spawned server. */
  readonly spawn?: SpawnRedisOptions | undefined;
  /** Image for a container; default `REDIS_IMAGE`. */
  readonly image?: string | undefined;
  /** Never pull an image; default `REDIS_TESTKIT_OFFLINE=1`. */
  readonly offline?: boolean | undefined;
}

function modeFromEnv(): StartMode {
  const raw = process.env.REDIS_TESTKIT_MODE?.trim().toLowerCase();
  if (!raw) return 'auto';
  if (raw === 'auto' || raw === 'url' || raw === 'container' || raw === 'spawn') return raw;
  throw new TestkitError('ERR_TESTKIT_ARGUMENT', `REDIS_TESTKIT_MODE=${raw} is not one of auto, url, container, spawn`);
}

/**
 * Hands out a real Redis, in this order:
 * 1. `REDIS_URL`: that server, used as is (never flushed unless `REDIS_TESTKIT_ALLOW_FLUSH=1`);
 * 2. a container through testcontainers when a Docker-compatible engine answers (`REDIS_IMAGE`);
 * 3. a spawned `redis-server` (`REDIS_SERVER_BIN`, `REDIS_SERVER` in `REDIS_SERVERS_DIR`, then `PATH`).
 * Otherwise it fails and lists the three ways to fix it. Tests that need faults, TLS, replicas or
 * a cluster use {@link spawnRedis}, {@link startReplicaSet} or {@link startCluster} instead.
 *
 * @example
 * ```ts
 * await using server = await startRedis();
 * const client = server.createClient();
 * ```
 * @throws {TestkitError} `ERR_TESTKIT_NO_SERVER` when no way works.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const mode = options.mode ?? modeFromEnv();
  if (mode === 'url' || (mode === 'auto' && process.env.REDIS_URL)) return connectRedis();
  const containerOptions = {
    ...(options.image ? { image: options.image } : {}),
    ...(options.offline !== undefined ? { offline: options.offline } : {}),
  };
  if (mode === 'container') return startContainerRedis(containerOptions);
  if (mode === 'auto' && (await containerEngineAvailable())) return startContainerRedis(containerOptions);
  if (options.spawn?.binary === undefined && (await selectedServers()).length === 0) {
    throw new TestkitError('ERR_TESTKIT_NO_SERVER', `no Redis available (mode ${mode}).\n${HOW_TO_GET_A_REDIS}`);
  }
  return spawnRedis(options.spawn);
}
