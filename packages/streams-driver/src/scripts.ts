// Lua scripts for the steps that must be atomic on the server: moving an entry to the dead-letter
// stream and acknowledging it at the source, reclaiming with delivery counts, releasing entries
// only while this consumer still owns them. Every key a script touches is declared in KEYS, so
// the scripts run on Redis Cluster (the dead-letter stream shares the topic's hash slot).
import { LuaScript } from '@redis-events/resp/ioredis';

function script(name: string, keys: number, source: string): LuaScript {
  return new LuaScript(source, { name, keys });
}

/**
 * The consumer name that holds nacked and released entries until a live consumer takes them
 * (on servers without XNACK). It shows in XPENDING and XINFO CONSUMERS.
 *
 * @example
 * ```ts
 * const waiting = (await redis.call('xpending', 'orders', 'billing', '-', '+', 100, RELEASED_CONSUMER)) as unknown[];
 * ```
 */
export const RELEASED_CONSUMER = 'redis-events:released';

/**
 * Field names appended to a dead-lettered entry, after its original fields.
 * {@link readDeadLetters} reads them for you.
 *
 * @example
 * ```ts
 * const [[id, fields]] = await redis.xrange('{orders}:dead', '-', '+', 'COUNT', 1);
 * const reason = fields[fields.indexOf(DEAD_LETTER_FIELDS.reason) + 1];
 * ```
 */
export const DEAD_LETTER_FIELDS: Readonly<{
  stream: string;
  id: string;
  group: string;
  consumer: string;
  attempts: string;
  reason: string;
  truncated: string;
}> = Object.freeze({
  stream: 'dead-letter-stream',
  id: 'dead-letter-id',
  group: 'dead-letter-group',
  consumer: 'dead-letter-consumer',
  attempts: 'dead-letter-attempts',
  reason: 'dead-letter-reason',
  truncated: 'dead-letter-truncated',
});

// At most this many original field/value items are copied into a dead letter, so that unpack()
// stays far below Lua's C stack limit even for a hostile entry with thousands of fields.
const MAX_COPIED_ITEMS = 2000;

const DEAD_LETTER_FUNCTION = `
local function dead_letter(key, dead, group, consumer, id, fields, attempts, reason, maxlen)
  local args = {dead}
  if maxlen ~= '0' then
    args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = maxlen
  end
  args[#args + 1] = '*'
  local copied = math.min(#fields, ${MAX_COPIED_ITEMS})
  copied = copied - (copied % 2)
  for i = 1, copied do args[#args + 1] = fields[i] end
  args[#args + 1] = '${DEAD_LETTER_FIELDS.stream}'; args[#args + 1] = key
  args[#args + 1] = '${DEAD_LETTER_FIELDS.id}'; args[#args + 1] = id
  args[#args + 1] = '${DEAD_LETTER_FIELDS.group}'; args[#args + 1] = group
  args[#args + 1] = '${DEAD_LETTER_FIELDS.consumer}'; args[#args + 1] = consumer
  args[#args + 1] = '${DEAD_LETTER_FIELDS.attempts}'; args[#args + 1] = tostring(attempts)
  args[#args + 1] = '${DEAD_LETTER_FIELDS.reason}'; args[#args + 1] = reason
  if copied < #fields then
    args[#args + 1] = '${DEAD_LETTER_FIELDS.truncated}'; args[#args + 1] = tostring(#fields - copied)
  end
  redis.call('XADD', unpack(args))
  redis.call('XACK', key, group, id)
end
`;

/**
 * Makes sure a subscription's consumer group exists, in the way its `from` asks. Always returns the
 * server's TIME next to the outcome: `{'created' | 'exists' | 'missing', seconds, microseconds}`.
 * KEYS: stream. ARGV: group, mode, value.
 * - `probe`: the group is created at `$` when the stream does not exist (an empty stream: nothing
 *   can be missed); an existing group is left alone; otherwise 'missing' (the caller then works out
 *   the server time at which the subscription was opened and comes back with `since`).
 * - `since`: creates the group so that every entry stored from that millisecond on is delivered:
 *   at `$` when there is none yet, else just before that millisecond. When the stream holds IDs
 *   ahead of the server clock (explicit IDs, a clock that went back), time says nothing about
 *   storage order and the group starts at `$`.
 * - `create`: creates the group at the given ID (`0` or an entry ID).
 * - `check`: fails with NOGROUP when the group does not exist; creates nothing.
 * A group that exists already is never moved.
 */
export const START_GROUP: LuaScript = script(
  'start-group',
  1,
  `
local key, group, mode = KEYS[1], ARGV[1], ARGV[2]
local t = redis.call('TIME')
local function create(start)
  local r = redis.pcall('XGROUP', 'CREATE', key, group, start, 'MKSTREAM')
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) == 'BUSYGROUP' then return {'exists', t[1], t[2]} end
    return r
  end
  return {'created', t[1], t[2]}
end
if mode == 'create' then return create(ARGV[3]) end
if mode == 'since' then
  local since = tonumber(ARGV[3])
  if since <= 0 then return create('0') end
  local start = '$'
  if redis.call('EXISTS', key) == 1 then
    local later = redis.call('XRANGE', key, string.format('%.0f', since) .. '-0', '+', 'COUNT', 1)
    if #later > 0 then
      local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
      local last_ms = tonumber(string.match(last[1][1], '^(%d+)'))
      local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      if last_ms <= now_ms then start = string.format('%.0f', since - 1) .. '-18446744073709551615' end
    end
  end
  return create(start)
end
if redis.call('EXISTS', key) == 0 then
  if mode == 'check' then
    return redis.error_reply("NOGROUP No such key '" .. key .. "' or consumer group '" .. group .. "'")
  end
  return create('$')
end
local p = redis.pcall('XPENDING', key, group)
if type(p) == 'table' and p.err then
  if mode == 'probe' and string.sub(p.err, 1, 7) == 'NOGROUP' then return {'missing', t[1], t[2]} end
  return p
end
return {'exists', t[1], t[2]}
`,
);

/**
 * Adds a batch of messages, one XADD each, in one script call (Topic `sendMode: 'script'`).
 * KEYS: stream. ARGV: n, n XADD options before the ID (NOMKSTREAM, MAXLEN ~ x...), a MINID for an
 * extra XTRIM or '', then headers/body pairs. Returns, per message, its ID, false when the stream
 * does not exist (NOMKSTREAM), or the error of its XADD.
 */
export const SEND: LuaScript = script(
  'send',
  1,
  `
local n = tonumber(ARGV[1])
local args = {KEYS[1]}
for i = 2, 1 + n do args[#args + 1] = ARGV[i] end
args[#args + 1] = '*'
args[#args + 1] = 'headers'
local h = #args + 1
args[h] = ''
args[#args + 1] = 'body'
local b = #args + 1
args[b] = ''
local out = {}
for i = 3 + n, #ARGV, 2 do
  args[h] = ARGV[i]
  args[b] = ARGV[i + 1]
  out[#out + 1] = redis.pcall('XADD', unpack(args))
end
if ARGV[2 + n] ~= '' then redis.pcall('XTRIM', KEYS[1], 'MINID', '~', ARGV[2 + n]) end
return out
`,
);

/**
 * XAUTOCLAIM one page, read the delivery count of each claimed entry, and dead-letter the
 * entries delivered more than `max-deliveries` times, in one atomic step.
 * KEYS: stream, dead-letter stream.
 * ARGV: group, consumer, min-idle-ms, cursor, count, max-deliveries (0: none), dead maxlen (0: none).
 * Returns: { next cursor, { {id, fields, deliveries}... }, { deleted ids }, { dead-lettered ids } }.
 */
export const CLAIM: LuaScript = script(
  'claim',
  2,
  `${DEAD_LETTER_FUNCTION}
local key, dead, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local max_deliveries = tonumber(ARGV[6])
local r = redis.call('XAUTOCLAIM', key, group, consumer, ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local claimed, deleted, dead_ids = {}, {}, {}
for _, id in ipairs(r[3] or {}) do deleted[#deleted + 1] = id end
for _, e in ipairs(r[2]) do
  local id, fields = e[1], e[2]
  if not fields then
    redis.call('XACK', key, group, id)
    deleted[#deleted + 1] = id
  else
    local p = redis.call('XPENDING', key, group, id, id, 1)
    local n = 1
    if p[1] then n = p[1][4] end
    if max_deliveries > 0 and n > max_deliveries then
      dead_letter(key, dead, group, consumer, id, fields, n, 'max-deliveries', ARGV[7])
      dead_ids[#dead_ids + 1] = id
    else
      claimed[#claimed + 1] = {id, fields, n}
    end
  end
end
return {r[1], claimed, deleted, dead_ids}
`,
);

/**
 * Moves entries to the dead-letter stream and acknowledges them, when they are still pending.
 * KEYS: stream, dead-letter stream. ARGV: group, consumer, dead maxlen, reason, then id, attempts pairs.
 * Returns the number of entries moved.
 */
export const DEAD_LETTER: LuaScript = script(
  'dead-letter',
  2,
  `${DEAD_LETTER_FUNCTION}
local key, dead, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local moved = 0
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local p = redis.call('XPENDING', key, group, id, id, 1)
  if p[1] then
    local e = redis.call('XRANGE', key, id, id)
    if e[1] then
      dead_letter(key, dead, group, consumer, id, e[1][2], ARGV[i + 1], ARGV[4], ARGV[3])
      moved = moved + 1
    else
      redis.call('XACK', key, group, id)
    end
  end
end
return moved
`,
);

// Hands one entry to the released consumer with a large idle time, so that the next XAUTOCLAIM
// or XREADGROUP CLAIM of any consumer takes it at once. SILENT undoes the delivery count of a
// delivery the application never saw (read ahead, or cut short), as XNACK SILENT does.
const RELEASE_FUNCTION = `
local function release(key, group, id, idle, count, mode)
  if mode == 'SILENT' and count > 0 then count = count - 1 end
  redis.call('XCLAIM', key, group, '${RELEASED_CONSUMER}', 0, id, 'IDLE', idle, 'RETRYCOUNT', count, 'JUSTID')
end
`;

/**
 * Hands entries this consumer still owns back to the group (XNACK on Redis 8.8+, else the
 * released consumer with a large idle time). Entries another consumer reclaimed meanwhile are
 * left alone. KEYS: stream. ARGV: group, consumer, idle-ms, use-xnack ('1'/'0'), mode
 * ('FAIL' keeps the delivery count, 'SILENT' takes one back), ids...
 * Returns the number of entries released.
 */
export const RELEASE: LuaScript = script(
  'release',
  1,
  `${RELEASE_FUNCTION}
local key, group, consumer, idle, mode = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local mine = {}
for i = 6, #ARGV do
  local p = redis.call('XPENDING', key, group, ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == consumer then
    if ARGV[4] == '1' then mine[#mine + 1] = ARGV[i] else release(key, group, ARGV[i], idle, p[1][4], mode) end
    mine.n = (mine.n or 0) + 1
  end
end
if ARGV[4] == '1' and #mine > 0 then redis.call('XNACK', key, group, mode, 'IDS', #mine, unpack(mine)) end
return mine.n or 0
`,
);

/**
 * At shutdown: releases (SILENT) every entry pending on this consumer that the application
 * does not hold (read ahead, or read by a request cut short), then deletes the consumer when
 * nothing is left pending on it. XGROUP DELCONSUMER would drop pending entries, so it never
 * runs while any remain.
 * KEYS: stream. ARGV: group, consumer, idle-ms, use-xnack, delete ('1'/'0'), held ids...
 * Returns { released, deleted (1/0), kept }.
 */
export const RELEASE_CONSUMER: LuaScript = script(
  'release-consumer',
  1,
  `${RELEASE_FUNCTION}
local key, group, consumer, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local held = {}
for i = 6, #ARGV do held[ARGV[i]] = true end
local released, kept, start = 0, 0, '-'
for _ = 1, 100 do
  local page = redis.call('XPENDING', key, group, start, '+', 500, consumer)
  local ids = {}
  for _, p in ipairs(page) do
    if held[p[1]] then
      kept = kept + 1
    elseif ARGV[4] == '1' then
      ids[#ids + 1] = p[1]
    else
      release(key, group, p[1], idle, p[4], 'SILENT')
      released = released + 1
    end
  end
  if #ids > 0 then
    redis.call('XNACK', key, group, 'SILENT', 'IDS', #ids, unpack(ids))
    released = released + #ids
  end
  if #page < 500 then break end
  start = '(' .. page[#page][1]
end
local left = redis.call('XPENDING', key, group, '-', '+', 1, consumer)
local deleted = 0
if ARGV[5] == '1' and #left == 0 then
  redis.call('XGROUP', 'DELCONSUMER', key, group, consumer)
  deleted = 1
end
return {released, deleted, kept}
`,
);

/**
 * Renews the lease of entries this consumer still owns: their idle time restarts, so no other
 * consumer reclaims work in progress, and no delivery is counted. Entries another consumer took
 * over meanwhile are left alone. KEYS: stream. ARGV: group, consumer, ids...
 * Returns the IDs renewed.
 */
export const RENEW: LuaScript = script(
  'renew',
  1,
  `
local key, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local args = {key, group, consumer, 0}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', key, group, ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == consumer then args[#args + 1] = ARGV[i] end
end
if #args == 4 then return {} end
args[#args + 1] = 'JUSTID'
return redis.call('XCLAIM', unpack(args))
`,
);

/**
 * Acknowledges entries and deletes those every consumer group has now read and acknowledged,
 * the way XACKDEL ... ACKED does on Redis 8.2+, for older servers.
 * KEYS: stream. ARGV: group, ids... Returns the number of entries acknowledged.
 */
export const ACK_DELETE: LuaScript = script(
  'ack-delete',
  1,
  `
local key, group = KEYS[1], ARGV[1]
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
local acked = redis.call('XACK', key, group, unpack(ids))
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms, seq
end
local function less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function after(id, last)
  local ams, aseq = parse(id)
  local bms, bseq = parse(last)
  if ams ~= bms then return less(bms, ams) end
  return less(bseq, aseq)
end
local groups = {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local name, last
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
  end
  groups[#groups + 1] = {name, last}
end
for _, id in ipairs(ids) do
  local done = true
  for _, g in ipairs(groups) do
    if after(id, g[2]) or redis.call('XPENDING', key, g[1], id, id, 1)[1] then
      done = false
      break
    end
  end
  if done then redis.call('XDEL', key, id) end
end
return acked
`,
);
