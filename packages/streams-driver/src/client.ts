// What this package needs from ioredis, for a single `Redis` and a `Cluster` alike.
// Commands go through call()/callBuffer() with lower-case names: ioredis finds keys (for
// keyPrefix and cluster slot routing) and reply transformers by the lower-case name.
import type { Cluster, Redis } from 'ioredis';
import { CommandTimeout } from './errors.ts';
import type { LuaScript } from './scripts.ts';

/**
 * Marks a client that a topic or subscription opened itself (URL openers) and must close at
 * shutdown. A symbol, so that it is no option a caller can pass by mistake.
 */
export const OWNS_CLIENT: unique symbol = Symbol('redis-events.streams-driver.ownsClient');

/** An ioredis 6 client: a `Redis` (standalone, sentinel) or a `Cluster`, RESP2 or RESP3. */
export type RedisClient = Redis | Cluster;

/** True for an ioredis `Cluster` (checked by flag, so duplicate installs of ioredis work). */
export function isClusterClient(client: RedisClient): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * A connection of our own for blocking XREADGROUP, so that a BLOCK never stalls the caller's
 * client and shutdown can cut it. An interrupted blocking read is not resent after a reconnect:
 * the read loop decides what to do.
 */
export function openBlockingConnection(client: RedisClient, name: string): RedisClient {
  if (isClusterClient(client)) {
    return client.duplicate([], {
      enableAutoPipelining: false,
      redisOptions: { connectionName: name, autoResendUnfulfilledCommands: false },
    } as never);
  }
  return client.duplicate({
    connectionName: name,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    lazyConnect: false,
  } as never) as Redis;
}

/** Rejects with a {@link CommandTimeout} (transient) when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, command: string): Promise<T> {
  if (!(ms > 0) || !Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CommandTimeout(command, ms)), ms);
    timer.unref(); // the command's own socket keeps the process alive while it matters
  });
  promise.catch(() => {}); // the loser of the race must not become an unhandled rejection
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Runs a Lua script by SHA1, sending its source once when the server (or this cluster node)
 * does not have it cached yet. Keys come first, as the script declares them.
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
  buffers = false,
): Promise<unknown> {
  if (keys.length !== script.keys) throw new Error(`script ${script.name} takes ${script.keys} keys`);
  const call = (buffers ? client.callBuffer : client.call).bind(client) as (
    ...a: (string | number | Buffer)[]
  ) => Promise<unknown>;
  try {
    return await call('evalsha', script.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!isNoScript(err)) throw err;
    return await call('eval', script.source, keys.length, ...keys, ...args);
  }
}
