// A straight port of the Go extension (github.com/mandocaesar/mediator,
// pkg/mediator/extension/redis, redis_store.go), defects included: SET with the fixed 24 h TTL,
// then RPUSH, in two round trips; GetEvents = LRANGE -limit -1, then one GET per key (pipelined),
// skipping missing keys, oldest first; ClearEvents = LRANGE 0 -1, then DEL of every key and the
// list. Interop tests use it as "a Go service"; the benchmarks use it as the baseline.
import type { Redis } from 'ioredis';

const DEFAULT_PREFIX = 'mediator:events';
const GO_TTL_SECONDS = 24 * 60 * 60; // the extension ignores Config.EventTTL and always uses 24 h
const GO_DEFAULT_LIMIT = 1000;

// Go's time.Now().UnixNano(): a nanosecond wall clock. hrtime gives nanosecond steps; anchor it
// to the wall clock once.
const wallAtStart = BigInt(Date.now()) * 1_000_000n;
const hrAtStart = process.hrtime.bigint();

/** Nanoseconds since the epoch, like Go's time.Now().UnixNano(). */
export function unixNanoNow(): bigint {
  return wallAtStart + (process.hrtime.bigint() - hrAtStart);
}

/** Go's time.RFC3339Nano of a UTC time: fraction without trailing zeros, none when zero. */
export function goTimeRfc3339Nano(unixNano: bigint): string {
  const seconds = unixNano / 1_000_000_000n;
  const nanos = unixNano % 1_000_000_000n;
  const whole = new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  if (nanos === 0n) return `${whole}Z`;
  return `${whole}.${nanos.toString().padStart(9, '0').replace(/0+$/, '')}Z`;
}

/** Go's encoding/json for a value decoded into interface{}: map keys sorted, HTML-safe escapes. */
export function goMarshal(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) out[key] = sortKeys((v as Record<string, unknown>)[key]);
      return out;
    }
    return v;
  };
  return JSON.stringify(sortKeys(value)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The event JSON the Go extension writes: map{"name","payload","timestamp"} marshalled. */
export function goEventJson(name: string, payload: unknown, unixNano: bigint): string {
  // Go sorts the map keys: name, payload, timestamp; the time is a JSON string.
  const head = goMarshal({ name, payload });
  return `${head.slice(0, -1)},"timestamp":"${goTimeRfc3339Nano(unixNano)}"}`;
}

/** The Go extension, ported line by line to ioredis. */
export class GoExtension {
  readonly #client: Redis;
  readonly #prefix: string;

  constructor(client: Redis, prefix: string = DEFAULT_PREFIX) {
    this.#client = client;
    this.#prefix = prefix || DEFAULT_PREFIX;
  }

  /** StoreEvent: SET {prefix}:{name}:{unixNano} <json> EX 86400, then RPUSH the key. Returns the key. */
  async storeEvent(event: { name: string; payload: unknown }, unixNano: bigint = unixNanoNow()): Promise<string> {
    const data = goEventJson(event.name, event.payload, unixNano);
    const key = `${this.#prefix}:${event.name}:${unixNano}`;
    await this.#client.set(key, data, 'EX', GO_TTL_SECONDS);
    await this.#client.rpush(`${this.#prefix}:${event.name}:timeline`, key);
    return key;
  }

  /** GetEvents: LRANGE timeline -limit -1, then GET each key; missing keys skipped; oldest first. */
  async getEvents(name: string, limit = 0): Promise<Record<string, unknown>[]> {
    const count = limit <= 0 ? GO_DEFAULT_LIMIT : limit;
    const keys = await this.#client.lrange(`${this.#prefix}:${name}:timeline`, -count, -1);
    if (keys.length === 0) return [];
    const pipeline = this.#client.pipeline();
    for (const key of keys) pipeline.get(key);
    const replies = (await pipeline.exec()) ?? [];
    const events: Record<string, unknown>[] = [];
    for (const [err, data] of replies) {
      if (err) throw err;
      if (data === null) continue;
      events.push(JSON.parse(data as string) as Record<string, unknown>);
    }
    return events;
  }

  /** ClearEvents: LRANGE 0 -1, then DEL each key and the list. */
  async clearEvents(name: string): Promise<void> {
    const list = `${this.#prefix}:${name}:timeline`;
    const keys = await this.#client.lrange(list, 0, -1);
    if (keys.length === 0) return;
    const pipeline = this.#client.pipeline();
    for (const key of keys) pipeline.del(key);
    pipeline.del(list);
    await pipeline.exec();
  }
}
