// The default layout: one Redis Stream per event name, key `{prefix}:{<escaped name>}`, one field
// `payload` per entry. Server-assigned ids give a unique, increasing order even within one
// millisecond; XADD MAXLEN (exact) keeps the cap, XTRIM MINID and a read-time filter keep the TTL,
// PEXPIRE drops the whole stream once its newest event has expired; XREVRANGE reads the newest
// events in O(log N + limit); a clear is one UNLINK.

import { LuaScript, type RedisClient, ScriptRunner } from '@redis-events/resp/ioredis';
import type { Cluster, Redis } from 'ioredis';
import { EventStoreError } from './errors.ts';
import { streamKey } from './keys.ts';
import type { Layout, Query, RawEvent, Waiter } from './layout.ts';
import type { Serializer } from './serializer.ts';

/** What a layout needs from the store. */
export interface LayoutContext {
  readonly client: RedisClient;
  readonly prefix: string;
  readonly ttl: number;
  readonly max: number;
  readonly serializer: Serializer;
}

// Lua: the server's clock in ms. TIME is allowed in scripts that write: Redis 7 replicates
// scripts by their effects.
const NOW_MS = `local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// KEYS[1] stream; ARGV: max, ttl ms, payload[, cutoff ms]. XADD MAXLEN (exact) keeps the cap;
// PEXPIRE makes the stream live as long as its newest event. With a cutoff, whole stream nodes of
// entries older than it (expired) are dropped too: the client asks for that at most once a second
// per name, with a cutoff from the server time of its previous append (reads filter expired
// entries exactly; count() trims exactly). Nothing else runs: an append is on every hot path.
const APPEND = new LuaScript(`local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'payload', ARGV[3])
if ARGV[4] then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id
`);

// KEYS[1] stream; ARGV: ttl ms, order, lower, upper, count. The lower bound is raised to the TTL
// cutoff, so an expired entry is never returned even before it is trimmed. The reply is flat,
// [id, payload, id, payload, ...], which costs half of the nested XRANGE shape to convert and
// parse; an entry without a payload field (written by someone else) comes back as ['!' .. id, ''].
const READ = new LuaScript(`${NOW_MS}
local cutoff = math.max(now_ms() - tonumber(ARGV[1]) + 1, 0)
local lower = ARGV[3]
local lower_ms = tonumber(string.match(lower, '^%(?(%d+)'))
if lower_ms == nil or lower_ms < cutoff then lower = string.format('%.0f', cutoff) .. '-0' end
local entries
if ARGV[2] == 'newest' then
  entries = redis.call('XREVRANGE', KEYS[1], ARGV[4], lower, 'COUNT', ARGV[5])
else
  entries = redis.call('XRANGE', KEYS[1], lower, ARGV[4], 'COUNT', ARGV[5])
end
local out = {}
for i = 1, #entries do
  local id, fields = entries[i][1], entries[i][2]
  local payload = fields[1] == 'payload' and fields[2] or nil
  if payload == nil then
    for f = 3, #fields, 2 do
      if fields[f] == 'payload' then payload = fields[f + 1] break end
    end
  end
  if payload == nil then
    out[#out + 1] = '!' .. id
    out[#out + 1] = ''
  else
    out[#out + 1] = id
    out[#out + 1] = payload
  end
end
return out
`);

// KEYS[1] stream; ARGV: ttl ms. Trims expired entries, then counts.
const COUNT = new LuaScript(`${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cutoff = now_ms() - tonumber(ARGV[1]) + 1
if cutoff > 0 then redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', cutoff)) end
return redis.call('XLEN', KEYS[1])
`);

// The newest id ever given to the stream (XINFO's last-generated-id), so that ids keep growing
// across a clear; '0-0' for a missing stream.
const LAST_ID_FN = `local function last_id(key)
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
`;

// With the server's time, for where a tail starts.
const LAST_ID = new LuaScript(`${LAST_ID_FN}
local t = redis.call('TIME')
return {last_id(KEYS[1]), t[1], t[2]}
`);

// KEYS[1] stream; ARGV: ttl ms. UNLINK frees a large stream in the background; an empty stream
// holding the last id is left behind (it expires with the TTL) so that later ids stay larger and
// tails and cursors never skip an event stored right after the clear.
const CLEAR = new LuaScript(`${LAST_ID_FN}
local last = last_id(KEYS[1])
if last == '0-0' then return 0 end
redis.call('UNLINK', KEYS[1])
redis.call('XADD', KEYS[1], 'MAXLEN', '0', last, 'payload', '')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`);

/** Every script of the layout, for tests and for `SCRIPT LOAD` ahead of time. */
export const STREAM_SCRIPTS: readonly LuaScript[] = [APPEND, READ, COUNT, LAST_ID, CLEAR];

const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
const MAX_SEQ = '18446744073709551615';

function msOf(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

function corrupt(key: string, detail: string): EventStoreError {
  return new EventStoreError(
    'ERR_EVENT_STORE_DECODE',
    `the stream ${key} holds an entry this store did not write (${detail}); is another application using the prefix?`,
  );
}

/** Reads the read script's reply: `[id, payload, id, payload, ...]`. */
function entriesOf(key: string, reply: unknown): RawEvent[] {
  if (!Array.isArray(reply) || reply.length % 2 !== 0) throw corrupt(key, `reply ${typeof reply}`);
  const out: RawEvent[] = new Array(reply.length / 2);
  for (let i = 0; i < reply.length; i += 2) {
    const id = reply[i] as unknown;
    const text = reply[i + 1] as unknown;
    if (typeof id !== 'string' || typeof text !== 'string') throw corrupt(key, 'malformed entry');
    if (id.startsWith('!')) throw corrupt(key, `entry ${id.slice(1)} has no payload field`);
    out[i / 2] = { id, timestampMs: msOf(id), text };
  }
  return out;
}

/** TIME's reply (seconds, microseconds, as strings or numbers) in milliseconds with a fraction. */
export function serverTimeMs(seconds: unknown, micros: unknown): number {
  const s = Number(seconds);
  const us = Number(micros);
  if (!Number.isSafeInteger(s) || !Number.isSafeInteger(us)) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_DECODE',
      `the server's TIME replied ${String(seconds)} ${String(micros)}`,
    );
  }
  return s * 1000 + us / 1000;
}

/** The id of the first entry of an XREAD reply in any of ioredis' shapes (RESP2, RESP3 legacy or resp3). */
export function firstXreadId(reply: unknown): string | null {
  if (reply === null || reply === undefined) return null;
  let entries: unknown;
  if (Array.isArray(reply)) {
    // RESP2: [[key, entries]]; RESP3 with legacy mapping: [key, entries]
    entries = Array.isArray(reply[0]) ? (reply[0] as unknown[])[1] : reply[1];
  } else if (typeof reply === 'object') {
    entries = Object.values(reply)[0];
  }
  if (!Array.isArray(entries) || entries.length === 0) return null;
  const first = entries[0] as unknown;
  return Array.isArray(first) && typeof first[0] === 'string' ? first[0] : null;
}

/** What a layout remembers of a name it appended to: its key, and when it last trimmed. */
interface NameState {
  readonly key: string;
  /** The time (server clock, ms) in the id of this process's last append; 0 before the first. */
  lastMs: number;
  /** When (this process's monotonic clock) the next append may ask for a trim by age. */
  trimAt: number;
}

/** Names remembered by a layout; the least recently used are forgotten beyond this. */
const MAX_NAMES = 10_000;
/** At most one trim by age per name and second, from one process. */
export const TRIM_INTERVAL_MS = 1000;

/** A bounded map from name to state, least recently used first. */
export class NameStates<State> {
  readonly #states = new Map<string, State>();
  readonly #make: (name: string) => State;

  constructor(make: (name: string) => State) {
    this.#make = make;
  }

  get(name: string): State {
    let state = this.#states.get(name);
    if (state === undefined) {
      state = this.#make(name);
      if (this.#states.size >= MAX_NAMES) this.#states.delete(this.#states.keys().next().value as string);
    } else {
      this.#states.delete(name); // re-inserted last: the most recently used
    }
    this.#states.set(name, state);
    return state;
  }
}

/** The `stream` layout. */
export class StreamLayout implements Layout {
  readonly #context: LayoutContext;
  readonly #scripts: ScriptRunner;
  readonly #max: string;
  readonly #ttl: string;
  readonly #names: NameStates<NameState>;

  constructor(context: LayoutContext) {
    this.#context = context;
    this.#scripts = ScriptRunner.for(context.client, STREAM_SCRIPTS);
    this.#max = String(context.max);
    this.#ttl = String(context.ttl);
    this.#names = new NameStates((name) => ({ key: streamKey(context.prefix, name), lastMs: 0, trimAt: 0 }));
  }

  keyOf(name: string): string {
    return streamKey(this.#context.prefix, name);
  }

  append(name: string, payloadText: string): Promise<{ id: string; timestampMs: number }> {
    const state = this.#names.get(name);
    const args = [this.#max, this.#ttl, payloadText];
    if (state.lastMs > 0) {
      const now = performance.now();
      const cutoff = state.lastMs - this.#context.ttl + 1;
      if (now >= state.trimAt && cutoff > 0) {
        state.trimAt = now + TRIM_INTERVAL_MS;
        args.push(String(cutoff));
      }
    }
    return this.#scripts.run(APPEND, [state.key], args).then((id) => {
      if (typeof id !== 'string' || !STREAM_ID.test(id)) throw corrupt(state.key, `XADD replied ${String(id)}`);
      const timestampMs = msOf(id);
      state.lastMs = timestampMs;
      return { id, timestampMs };
    });
  }

  async read(name: string, query: Query): Promise<RawEvent[]> {
    const { order, limit, after, since, until } = query;
    let lower = since === undefined ? '-' : `${since}-0`;
    let upper = until === undefined ? '+' : `${until}-${MAX_SEQ}`;
    if (after !== undefined) {
      if (order === 'newest' && (until === undefined || msOf(after) <= until)) upper = `(${after}`;
      if (order === 'oldest' && (since === undefined || msOf(after) >= since)) lower = `(${after}`;
    }
    const key = this.keyOf(name);
    const reply = await this.#scripts.run(READ, [key], [this.#context.ttl, order, lower, upper, limit]);
    return entriesOf(key, reply);
  }

  async count(name: string): Promise<number> {
    return Number(await this.#scripts.run(COUNT, [this.keyOf(name)], [this.#context.ttl]));
  }

  async clear(name: string): Promise<void> {
    await this.#scripts.run(CLEAR, [this.keyOf(name)], [this.#context.ttl]);
  }

  async lastId(name: string): Promise<{ id: string; serverMs: number }> {
    const reply = await this.#scripts.run(LAST_ID, [this.keyOf(name)], []);
    const [id, seconds, micros] = Array.isArray(reply) ? reply : [];
    if (typeof id !== 'string' || !STREAM_ID.test(id)) throw corrupt(this.keyOf(name), `last id ${String(id)}`);
    return { id, serverMs: serverTimeMs(seconds, micros) };
  }

  compareIds(a: string, b: string): number {
    const [am, as] = a.split('-') as [string, string];
    const [bm, bs] = b.split('-') as [string, string];
    const ms = BigInt(am) - BigInt(bm);
    const diff = ms !== 0n ? ms : BigInt(as) - BigInt(bs);
    return diff < 0n ? -1 : diff > 0n ? 1 : 0;
  }

  idBefore(ms: number): string {
    return ms <= 0 ? '0-0' : `${ms - 1}-${MAX_SEQ}`;
  }

  msOf(id: string): number {
    return msOf(id);
  }

  parseId(id: unknown): string {
    const match = typeof id === 'string' ? STREAM_ID.exec(id) : null;
    if (!match) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        `${JSON.stringify(id)} is not an event id of the stream layout; ids look like "1715595630123-0"`,
      );
    }
    const ms = BigInt(match[1] as string);
    const seq = BigInt(match[2] as string);
    if (ms > 18446744073709551615n || seq > 18446744073709551615n) {
      throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', `${id} is out of range for a stream id`);
    }
    return `${ms}-${seq}`;
  }

  decode(_name: string, raw: RawEvent): unknown {
    return this.#context.serializer.deserialize(raw.text);
  }

  keysOf(name: string): { readonly keys: readonly string[] } {
    return { keys: [this.keyOf(name)] };
  }

  waiter(name: string, options: { blockMs: number; pollIntervalMs: number }): Waiter {
    return new StreamWaiter(this.#context.client, this.keyOf(name), options.blockMs);
  }
}

/** Blocks in XREAD on a connection of its own, so that the shared client is never held up. */
class StreamWaiter implements Waiter {
  readonly #client: RedisClient;
  readonly #key: string;
  readonly #blockMs: number;
  #connection: RedisClient | undefined;

  constructor(client: RedisClient, key: string, blockMs: number) {
    this.#client = client;
    this.#key = key;
    this.#blockMs = blockMs;
  }

  #connect(): RedisClient {
    // The caller's commandTimeout may be shorter than the block; a timeout a little longer than
    // the block still notices a server that stopped answering.
    const commandTimeout = this.#blockMs + 10_000;
    const connection = (
      this.#client.isCluster
        ? (this.#client as Cluster).duplicate([], { redisOptions: { commandTimeout } })
        : (this.#client as Redis).duplicate({ commandTimeout })
    ) as RedisClient;
    connection.on('error', () => {}); // failures reach the tail through the command's rejection
    return connection;
  }

  async wait(cursor: string, signal: AbortSignal): Promise<string | null> {
    if (signal.aborted) return null;
    if (this.#connection === undefined || this.#connection.status === 'end') this.#connection = this.#connect();
    const connection = this.#connection;
    const onAbort = (): void => connection.disconnect();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const reply = await connection.call('XREAD', 'COUNT', 1, 'BLOCK', this.#blockMs, 'STREAMS', this.#key, cursor);
      return firstXreadId(reply);
    } catch (err) {
      if (signal.aborted) return null;
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  release(): void {
    this.#connection?.disconnect();
    this.#connection = undefined;
  }
}
