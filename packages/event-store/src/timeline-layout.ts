// The `timeline` layout: the Go extension's keys and JSON, with its defects fixed.
//   {base}:{unixNano}   the event as Go's JSON envelope {"name","payload","timestamp"}, PX eventTtl
//   {base}:timeline     a list of those keys, oldest first
//   {base}:floor        after a clear: the newest id given so far, so that ids never go back
// where base is `{prefix}:{name}` (timelineKeys 'go') or `{prefix}:{<escaped name>}` ('tagged').
// Every operation is one Lua script, so appends, trims and clears are atomic. The script picks
// the time from the server clock and makes it unique and increasing per name: the larger of
// TIME and the previous id plus 1 ns, then SET NX (a Go writer may hold that key already).

import { LuaScript, ScriptRunner } from '@redis-events/resp/ioredis';
import { EventStoreError } from './errors.ts';
import { envelopeStart, goEscapeJson, splitEnvelope } from './go-json.ts';
import { type TimelineKeys, timelineBase } from './keys.ts';
import { type Layout, type Query, type RawEvent, sleep, type Waiter } from './layout.ts';
import { jsonSerializer } from './serializer.ts';
import { type LayoutContext, NameStates, serverTimeMs, TRIM_INTERVAL_MS } from './stream-layout.ts';

/**
 * Lua: RFC 3339 with nanoseconds (Go's time.RFC3339Nano, UTC) from Unix seconds and nanoseconds.
 * The civil date comes from the days-from-epoch algorithm of H. Hinnant; every step is an integer
 * well inside a double's exact range.
 */
export const LUA_RFC3339 = `local function rfc3339_head(s)
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d', y, m, d, math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60)
end
local function rfc3339(s, f)
  local out = rfc3339_head(s)
  if f > 0 then out = out .. '.' .. (string.gsub(string.format('%09d', f), '0+$', '')) end
  return out .. 'Z'
end
`;

// Lua helpers shared by the scripts. Ids are decimal nanosecond strings without leading zeros,
// compared by length, then text (a double cannot hold 19 digits exactly).
const UNLINK_ALL = `local function unlink_all(keys)
  for i = 1, #keys, 1000 do redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys))) end
end
`;
const HELPERS = `${UNLINK_ALL}local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function ns_of(key)
  if not key then return nil end
  return string.match(key, ':(%d+)$')
end
local function cutoff_ns(ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  return string.format('%.0f', math.max(now - ttl + 1, 0)) .. '000000'
end
`;

// KEYS[1] list; ARGV: ttl ms, max, envelope head (up to the timestamp's opening quote), prune
// ('1' or ''), a guess of the server's current Unix second and its RFC 3339 date and time
// (YYYY-MM-DDTHH:MM:SS) from the client. Five calls: TIME, LINDEX, SET, RPUSH, PEXPIRE; at the
// cap LPOP + UNLINK too. Below the cap, with prune (the client asks at most once a second per
// name), index entries of expired events are removed from the head (reads skip and remove them
// anyway). Number formatting in Lua goes through sprintf and costs more than the rest of the
// script, so the common case works on the digits of TIME's reply as text: the id is the time
// in nanoseconds when it is after the previous id, and the timestamp's date part comes from the
// client's guess when the second matches; otherwise the arithmetic path runs.
const APPEND = new LuaScript(`${LUA_RFC3339}${UNLINK_ALL}
local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local list = KEYS[1]
local base = string.sub(list, 1, -10)
local ttl = ARGV[1]
local t = redis.call('TIME')
local ns = t[1] .. string.rep('0', 6 - #t[2]) .. t[2] .. '000'
local last = redis.call('LINDEX', list, -1)
local last_ns
if last then
  last_ns = string.match(last, ':(%d+)$')
else
  local floor = redis.call('GET', base .. ':floor')
  if floor then last_ns = string.match(floor, '^(%d+)$') end
end
local s, f
if last_ns and #last_ns >= 10 and #last_ns <= 19 and cmp(last_ns, ns) >= 0 then
  -- The same microsecond as the previous id, or a clock that went back: the previous id + 1 ns.
  s = tonumber(string.sub(last_ns, 1, -10))
  f = tonumber(string.sub(last_ns, -9)) + 1
end
local key, value
for attempt = 1, 1000 do
  if s then
    if f >= 1000000000 then s = s + 1; f = f - 1000000000 end
    ns = string.format('%d%09d', s, f)
  end
  local candidate = base .. ':' .. ns
  local secs = string.sub(ns, 1, -10)
  local frac = string.match(string.sub(ns, -9), '^(%d-)0*$')
  local stamp = secs == ARGV[5] and ARGV[6] or rfc3339_head(tonumber(secs))
  if frac ~= '' then stamp = stamp .. '.' .. frac end
  if redis.call('SET', candidate, ARGV[3] .. stamp .. 'Z"}', 'PX', ttl, 'NX') then
    key = candidate
    break
  end
  -- Taken (a Go writer stamped the same nanosecond): the next one.
  if not s then
    s = tonumber(secs)
    f = tonumber(string.sub(ns, -9))
  end
  f = f + 1
end
if not key then return redis.error_reply('ERR event-store: no free key after 1000 tries under ' .. base) end
local n = redis.call('RPUSH', list, key)
local max = tonumber(ARGV[2])
if n > max then
  unlink_all(redis.call('LPOP', list, n - max))
elseif ARGV[4] == '1' then
  -- Below the cap, index entries of expired events sit at the head (one TTL, oldest first).
  for i = 1, 100 do
    local head = redis.call('LINDEX', list, 0)
    if not head or redis.call('EXISTS', head) == 1 then break end
    redis.call('LPOP', list)
  end
end
-- The list lives as long as its newest event. GT leaves a list without a TTL alone: a Go
-- writer made it, and its events may live longer than ours.
if last then redis.call('PEXPIRE', list, ttl, 'GT') else redis.call('PEXPIRE', list, ttl) end
return string.sub(key, #base + 2)
`);

// Index search and walk shared by READ and COUNT. The list is sorted by id (ids only grow), so
// binary search finds where a range starts; only the newest \`max\` entries count (the cap).
const SEARCH = `local function ns_at(list, i)
  return ns_of(redis.call('LINDEX', list, i)) or '0'
end
-- first index in [lo, hi) whose id passes pred (pred goes false..true), or hi
local function search(list, lo, hi, pred)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if pred(ns_at(list, mid)) then hi = mid else lo = mid + 1 end
  end
  return lo
end
`;

// KEYS[1] list; ARGV: ttl ms, order, lower, lower exclusive (1/0), upper ('' = none), upper
// exclusive, limit, max. Returns [key, json, key, json, ...]. The walk reads chunks of the list
// with LRANGE and MGET; a chunk whose far end is in range is in range as a whole (the list is in
// id order), so ids are parsed once per chunk, not per event. Dead entries met on the way (their
// event expired or was deleted) are removed from the list.
const READ = new LuaScript(`${HELPERS}${SEARCH}
local list = KEYS[1]
local n = redis.call('LLEN', list)
if n == 0 then return {} end
local cutoff = cutoff_ns(tonumber(ARGV[1]))
local lower, lower_ex = ARGV[3], ARGV[4] == '1'
if lower == '' or cmp(lower, cutoff) < 0 then lower = cutoff; lower_ex = false end
local upper, upper_ex = ARGV[5], ARGV[6] == '1'
local limit = tonumber(ARGV[7])
local lo = math.max(0, n - tonumber(ARGV[8]))
local function above(ns)
  if ns == nil then return true end -- not an event key: the caller reports it
  local c = cmp(ns, lower)
  return c > 0 or (c == 0 and not lower_ex)
end
local function below(ns)
  if upper == '' or ns == nil then return true end
  local c = cmp(ns, upper)
  return c < 0 or (c == 0 and not upper_ex)
end
local newest = ARGV[2] == 'newest'
local in_range = newest and above or below
local out, found, dead = {}, 0, {}
local i
if newest then
  i = (upper == '') and (n - 1) or (search(list, lo, n, function(ns) return not below(ns) end) - 1)
else
  i = search(list, lo, n, above)
end
local stop = false
while not stop and found < limit and i >= lo and i < n do
  local size = math.min(math.max(limit - found, 16), 512)
  local from, to, first, last, step
  if newest then
    from, to = math.max(lo, i - size + 1), i
  else
    from, to = i, math.min(n - 1, i + size - 1)
  end
  local keys = redis.call('LRANGE', list, from, to)
  if #keys == 0 then break end
  local values = redis.call('MGET', unpack(keys))
  if newest then first, last, step = #keys, 1, -1 else first, last, step = 1, #keys, 1 end
  local whole = in_range(ns_of(keys[last]))
  for j = first, last, step do
    local key = keys[j]
    if not whole and not in_range(ns_of(key)) then
      stop = true
      break
    end
    if values[j] == false then
      dead[#dead + 1] = key
    else
      out[#out + 1] = key
      out[#out + 1] = values[j]
      found = found + 1
      if found >= limit then break end
    end
  end
  if newest then i = from - 1 else i = to + 1 end
end
for d = 1, math.min(#dead, 100) do redis.call('LREM', list, 1, dead[d]) end
return out
`);

// KEYS[1] list; ARGV: ttl ms, max. Live events: existing keys from the TTL cutoff on.
const COUNT = new LuaScript(`${HELPERS}${SEARCH}
local list = KEYS[1]
local n = redis.call('LLEN', list)
if n == 0 then return 0 end
local cutoff = cutoff_ns(tonumber(ARGV[1]))
local start = search(list, math.max(0, n - tonumber(ARGV[2])), n, function(ns) return cmp(ns, cutoff) >= 0 end)
local count = 0
for i = start, n - 1, 1000 do
  local keys = redis.call('LRANGE', list, i, math.min(i + 999, n - 1))
  if #keys > 0 then count = count + redis.call('EXISTS', unpack(keys)) end
end
return count
`);

// KEYS[1] list; ARGV: ttl ms. Deletes every indexed event and the list, atomically, and keeps the
// newest id in {base}:floor for the next append.
const CLEAR = new LuaScript(`${HELPERS}
local list = KEYS[1]
local base = string.sub(list, 1, -10)
local n = redis.call('LLEN', list)
if n == 0 then return 0 end
local last = ns_of(redis.call('LINDEX', list, -1))
for i = 0, n - 1, 1000 do unlink_all(redis.call('LRANGE', list, i, i + 999)) end
redis.call('UNLINK', list)
if last then redis.call('SET', base .. ':floor', last, 'PX', ARGV[1]) end
return n
`);

// KEYS[1] list. The newest id given to the name, or '0', and the server's TIME.
const LAST_ID = new LuaScript(`${HELPERS}
local list = KEYS[1]
local t = redis.call('TIME')
local last = ns_of(redis.call('LINDEX', list, -1))
if last then return {last, t[1], t[2]} end
local floor = redis.call('GET', string.sub(list, 1, -10) .. ':floor')
if floor and string.match(floor, '^%d+$') then return {floor, t[1], t[2]} end
return {'0', t[1], t[2]}
`);

/** Every script of the layout, for tests and for `SCRIPT LOAD` ahead of time. */
export const TIMELINE_SCRIPTS: readonly LuaScript[] = [APPEND, READ, COUNT, CLEAR, LAST_ID];

const NS_ID = /^\d{1,20}$/;

function checkJsonText(name: string, text: string): void {
  try {
    JSON.parse(text);
  } catch (err) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_PAYLOAD',
      `event "${name}": the timeline layout embeds the serialized payload in the Go extension's JSON, so the serializer must return JSON text; it returned ${JSON.stringify(text.slice(0, 40))}`,
      { cause: err },
    );
  }
}

function timestampOf(ns: string): number {
  return ns.length > 6 ? Number(ns.slice(0, -6)) : 0;
}

/**
 * A guess of the server's current second, from the time in the ids of previous appends and this
 * process's monotonic clock, with that second as Go's RFC 3339 date and time. It only spares the
 * append script a formatting: a wrong guess costs the script the formatting, nothing else.
 */
class ServerClockGuess {
  // server time (ms) minus monotonic time (ms), from the last append's id
  #offset: number | undefined;
  #second = -1;
  #secondText = '';
  #dateTime = '';

  observe(serverMs: number, monotonicMs: number): void {
    this.#offset = serverMs - monotonicMs;
  }

  guess(monotonicMs: number): [string, string] {
    const serverMs = this.#offset === undefined ? Date.now() : monotonicMs + this.#offset;
    const second = Math.floor(serverMs / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#secondText = String(second);
      // toISOString: YYYY-MM-DDTHH:MM:SS.sssZ for years 0 to 9999, which covers every guess
      this.#dateTime = new Date(second * 1000).toISOString().slice(0, 19);
    }
    return [this.#secondText, this.#dateTime];
  }
}

/** The `timeline` layout. */
export class TimelineLayout implements Layout {
  readonly #context: LayoutContext;
  readonly #scripts: ScriptRunner;
  readonly #keys: TimelineKeys;
  readonly #ttl: string;
  readonly #max: string;
  readonly #names: NameStates<{ readonly list: string; readonly head: string; pruneAt: number }>;
  readonly #clock = new ServerClockGuess();

  constructor(context: LayoutContext, keys: TimelineKeys) {
    this.#context = context;
    this.#scripts = ScriptRunner.for(context.client, TIMELINE_SCRIPTS);
    this.#keys = keys;
    this.#ttl = String(context.ttl);
    this.#max = String(context.max);
    // The envelope up to the payload depends on the name only: built once per name.
    this.#names = new NameStates((name) => ({
      list: this.listOf(name),
      head: envelopeStart(name),
      pruneAt: 0,
    }));
  }

  baseOf(name: string): string {
    return timelineBase(this.#context.prefix, name, this.#keys);
  }

  listOf(name: string): string {
    return `${this.baseOf(name)}:timeline`;
  }

  append(name: string, payloadText: string): Promise<{ id: string; timestampMs: number }> {
    // The default serializer's JSON gets Go's escaping too, so the stored bytes are what Go writes.
    // Another serializer's text goes into the envelope as is, so it must be JSON for Go readers.
    let payload = payloadText;
    if (this.#context.serializer === jsonSerializer) payload = goEscapeJson(payloadText);
    else checkJsonText(name, payloadText);
    const state = this.#names.get(name);
    const now = performance.now();
    let prune = '';
    if (now >= state.pruneAt) {
      state.pruneAt = now + TRIM_INTERVAL_MS;
      prune = '1';
    }
    const [second, dateTime] = this.#clock.guess(now);
    const args = [this.#ttl, this.#max, `${state.head}${payload},"timestamp":"`, prune, second, dateTime];
    return this.#scripts.run(APPEND, [state.list], args).then((id) => {
      if (typeof id !== 'string' || !NS_ID.test(id)) {
        throw new EventStoreError('ERR_EVENT_STORE_DECODE', `the append script replied ${String(id)} instead of an id`);
      }
      const timestampMs = timestampOf(id);
      this.#clock.observe(timestampMs, performance.now());
      return { id, timestampMs };
    });
  }

  async read(name: string, query: Query): Promise<RawEvent[]> {
    const { order, limit, after, since, until } = query;
    let lower = since === undefined ? '' : `${since}000000`;
    let lowerExclusive = false;
    let upper = until === undefined ? '' : `${until}999999`;
    let upperExclusive = false;
    if (after !== undefined) {
      const cursor = BigInt(after);
      if (order === 'newest' && (upper === '' || cursor <= BigInt(upper))) {
        upper = after;
        upperExclusive = true;
      }
      if (order === 'oldest' && (lower === '' || cursor >= BigInt(lower))) {
        lower = after;
        lowerExclusive = true;
      }
    }
    const list = this.listOf(name);
    const reply = await this.#scripts.run(
      READ,
      [list],
      [
        this.#context.ttl,
        order,
        lower,
        lowerExclusive ? 1 : 0,
        upper,
        upperExclusive ? 1 : 0,
        limit,
        this.#context.max,
      ],
    );
    if (!Array.isArray(reply) || reply.length % 2 !== 0) {
      throw new EventStoreError('ERR_EVENT_STORE_DECODE', `the read script replied ${typeof reply} for ${list}`);
    }
    const out: RawEvent[] = new Array(reply.length / 2);
    for (let i = 0; i < reply.length; i += 2) {
      const key = reply[i] as unknown;
      const text = reply[i + 1] as unknown;
      if (typeof key !== 'string' || typeof text !== 'string') {
        throw new EventStoreError('ERR_EVENT_STORE_DECODE', `the read script replied a malformed entry for ${list}`);
      }
      const id = key.slice(key.lastIndexOf(':') + 1);
      // The list may hold keys of another shape (another writer); ioredis' keyPrefix may precede the base.
      if (!NS_ID.test(id) || !key.endsWith(`${this.baseOf(name)}:${id}`)) {
        throw new EventStoreError(
          'ERR_EVENT_STORE_DECODE',
          `the list ${list} holds "${key}", which is not a "${this.baseOf(name)}:<unix nanoseconds>" key; remove it (LREM) or clear the name`,
        );
      }
      out[i / 2] = { id, timestampMs: timestampOf(id), text };
    }
    return out;
  }

  async count(name: string): Promise<number> {
    const { ttl, max } = this.#context;
    return Number(await this.#scripts.run(COUNT, [this.listOf(name)], [ttl, max]));
  }

  async clear(name: string): Promise<void> {
    await this.#scripts.run(CLEAR, [this.listOf(name)], [this.#context.ttl]);
  }

  async lastId(name: string): Promise<{ id: string; serverMs: number }> {
    const reply = await this.#scripts.run(LAST_ID, [this.listOf(name)], []);
    const [id, seconds, micros] = Array.isArray(reply) ? reply : [];
    if (typeof id !== 'string' || !NS_ID.test(id)) {
      throw new EventStoreError('ERR_EVENT_STORE_DECODE', `the last-id script replied ${String(id)}`);
    }
    return { id, serverMs: serverTimeMs(seconds, micros) };
  }

  compareIds(a: string, b: string): number {
    const diff = BigInt(a) - BigInt(b);
    return diff < 0n ? -1 : diff > 0n ? 1 : 0;
  }

  idBefore(ms: number): string {
    return ms <= 0 ? '0' : (BigInt(ms) * 1_000_000n - 1n).toString();
  }

  msOf(id: string): number {
    return timestampOf(id);
  }

  parseId(id: unknown): string {
    if (typeof id !== 'string' || !NS_ID.test(id)) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_ARGUMENT',
        `${JSON.stringify(id)} is not an event id of the timeline layout; ids are Unix nanoseconds like "1715595630123456000"`,
      );
    }
    return BigInt(id).toString(); // no leading zeros: the scripts compare ids by length, then text
  }

  decode(name: string, raw: RawEvent): unknown {
    const { serializer } = this.#context;
    const where = `${this.baseOf(name)}:${raw.id}`;
    if (serializer !== jsonSerializer) {
      const parts = splitEnvelope(raw.text);
      if (parts) return serializer.deserialize(parts.payloadText);
    }
    let envelope: unknown;
    try {
      envelope = JSON.parse(raw.text);
    } catch (err) {
      throw new EventStoreError('ERR_EVENT_STORE_DECODE', `${where} does not hold JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope) || !('payload' in envelope)) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_DECODE',
        `${where} holds JSON without a "payload" field; the timeline layout expects {"name","payload","timestamp"}`,
      );
    }
    const payload = (envelope as { payload: unknown }).payload;
    return serializer === jsonSerializer ? payload : serializer.deserialize(JSON.stringify(payload));
  }

  keysOf(name: string): { readonly keys: readonly string[]; readonly pattern: string } {
    const base = this.baseOf(name);
    return { keys: [`${base}:timeline`, `${base}:floor`], pattern: `${base}:<unix nanoseconds>` };
  }

  waiter(_name: string, options: { blockMs: number; pollIntervalMs: number }): Waiter {
    return {
      wait: async (_cursor, signal) => {
        await sleep(options.pollIntervalMs, signal);
        return null;
      },
      release: () => {},
    };
  }
}
