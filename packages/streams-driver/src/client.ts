// What this package needs from ioredis, for a single `Redis` and a `Cluster` alike.
// Commands go through call()/callBuffer() with lower-case names: ioredis finds keys (for
// keyPrefix and cluster slot routing) and reply transformers by the lower-case name.
import { isCluster as isClusterClient, type RedisClient } from '@redis-events/resp/ioredis';
import type { Redis } from 'ioredis';
import { CommandTimeout } from './errors.ts';

export { runScript } from '@redis-events/resp/ioredis';
export { isClusterClient, type RedisClient };

/**
 * Marks a client that a topic or subscription opened itself (URL openers) and must close at
 * shutdown. A symbol, so that it is no option a caller can pass by mistake.
 */
export const OWNS_CLIENT: unique symbol = Symbol('redis-events.streams-driver.ownsClient');

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
