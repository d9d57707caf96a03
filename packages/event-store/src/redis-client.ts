import { isTransientError } from '@redis-events/resp/ioredis';
import { describeError, EventStoreError } from './errors.ts';

export { isCluster, isRedisClient as isClient, type RedisClient } from '@redis-events/resp/ioredis';

/** True for errors that go away on their own: connection loss, a loading or failing-over server. */
export function isTransient(err: unknown): boolean {
  const inner = err instanceof EventStoreError && err.code === 'ERR_EVENT_STORE_REDIS' ? err.cause : err;
  return isTransientError(inner);
}

/** Wraps a failed Redis call in an `ERR_EVENT_STORE_REDIS` error that says what to do. */
export function redisError(err: unknown, what: string, key: string): EventStoreError {
  if (err instanceof EventStoreError) return err;
  const text = describeError(err);
  let hint: string;
  if (text.startsWith('WRONGTYPE')) {
    hint = `the key ${key} holds another type of value: another application, or the other layout of this store, uses the same prefix; choose another prefix`;
  } else if (text.startsWith('OOM')) {
    hint =
      'Redis is at maxmemory with a policy that refuses writes; raise maxmemory, lower eventTtl or maxEventsPerType, or allow eviction';
  } else if (/CROSSSLOT|non local key|no longer served|accessed a key from a different slot/i.test(text)) {
    hint = `the keys of one event name are not in one hash slot: on Redis Cluster use the stream layout or timelineKeys: 'tagged'`;
  } else if (isTransient(err)) {
    hint = 'Redis is unreachable or busy; ioredis reconnects on its own (retryStrategy), so retry the call';
  } else if (/NOPERM|can't run this command/.test(text)) {
    hint = `the Redis user lacks a permission: give it the commands +@scripting +@read +@write +time and the keys of the store's prefix (${key} is one)`;
  } else {
    hint = 'see the cause';
  }
  return new EventStoreError('ERR_EVENT_STORE_REDIS', `${what} failed (${key}): ${text}; ${hint}`, { cause: err });
}
