// The Lua scripts of the scripted mode (the default where the ACL allows scripting). Each is one
// atomic call: a put reads the last version, writes the batch, evicts over capacity and publishes,
// so writers never conflict or retry. Entries are packed exactly as entry.ts packs them (the
// header here, the body from the client), so scripted and WATCH/MULTI writers share a backend.
//
// Every script starts with a `#!lua` line: Redis then refuses a writing script up front when
// memory is full, instead of failing its first write halfway through.
import { createHash } from 'node:crypto';

/** A script and its SHA1, for EVALSHA. */
export interface Script {
  readonly name: string;
  readonly body: string;
  readonly sha: string;
}

function script(name: string, body: string): Script {
  const text = body.trimStart();
  return { name, body: text, sha: createHash('sha1').update(text).digest('hex') };
}

/** How many scripted commits are remembered by token, to tell after a dropped connection whether one landed. */
export const COMMITS_REMEMBERED: number = 1024;

/** How far the time a client expects may be from the server's for the fast path, in ms. */
export const FAST_PATH_TOLERANCE_MS: number = 1000;

/** Error replies of the scripts that mean damaged stored data. */
export const CORRUPT_REPLY: RegExp = /^ERR databroker corrupt: /;

// Shared Lua: calls with long argument lists in slices (Lua's unpack has a stack limit), and the
// header of an entry (see entry.ts).
const HELPERS = `
local function sliced(cmd, key, list, step)
  for s = 1, #list, step do
    redis.call(cmd, key, unpack(list, s, math.min(s + step - 1, #list)))
  end
end
local function header(flags, v, modified, deleted)
  return struct.pack('>BBI4I4dd', 1, flags, math.floor(v / 4294967296), v % 4294967296, modified, deleted)
end
`;

/**
 * A put (or, with no records, capacity enforcement of some types).
 *
 * The client builds every entry and the Pub/Sub message with the base version and time it expects
 * (its previous commit's); when they hold (the fast path: one writer, or no other commit since),
 * the script stores those bytes as they are. Otherwise it rebuilds each entry's header with the
 * real base version and the server's time, and the message.
 *
 * KEYS: 1 meta, 2 records, 3 index, 4 changes, 5 types, 6 commits.
 * ARGV: 1 candidate server version, 2 channel, 3 commit token, 4 largest push in bytes, 5 expected
 * base version ('' for none), 6 expected time (ms), 7 expected server version, 8 '1' when every type
 * is known to be in the types set under that server version, 9 key prefix of the recency indexes,
 * 10 record count n, 11 type count t, 12 count r of records replaced by a later one of the batch;
 * then the t types, the r replaced record numbers (1-based), n pairs of record field and entry,
 * and the prebuilt message.
 *
 * Replies `{ server version, base version, time (ms), evicted count, 1 when the fast path held,
 * then the types whose stored capacity is damaged (ignored) }`; the records got versions
 * base+1..base+n, the evictions the ones after.
 */
export const PUT_SCRIPT: Script = script(
  'put',
  `
#!lua
${HELPERS}
local meta = redis.call('HMGET', KEYS[1], 'server', 'last', 'capped')
local sv = meta[1]
if sv and not tonumber(sv) then return redis.error_reply('ERR databroker corrupt: the stored server version is not a number') end
local last = 0
if meta[2] then
  last = tonumber(meta[2])
  if not last then return redis.error_reply('ERR databroker corrupt: the stored last version is not a number') end
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if not sv then
  sv = ARGV[1]
  redis.call('HSET', KEYS[1], 'server', sv)
end
local n, t, r = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local expected = tonumber(ARGV[6])
local fast = ARGV[7] == sv and tonumber(ARGV[5]) == last and expected ~= nil and math.abs(expected - now) <= ${FAST_PATH_TOLERANCE_MS}
if fast then now = expected end
local replaced = {}
for q = 1, r do replaced[tonumber(ARGV[12 + t + q])] = true end
local at = 13 + t + r
local log, live, gone, index, entries = {}, {}, {}, {}, {}
for i = 1, n do
  local field, e = ARGV[at], ARGV[at + 1]
  at = at + 2
  local v = last + i
  if not fast then e = header(string.byte(e, 2), v, now, struct.unpack('>d', e, 19)) .. string.sub(e, 27) end
  log[2 * i - 1] = v
  log[2 * i] = e
  entries[i] = e
  if not replaced[i] then
    if string.byte(e, 2) % 2 == 1 then
      gone[#gone + 1] = field
    else
      live[#live + 1] = field
      live[#live + 1] = e
      index[#index + 1] = 0
      index[#index + 1] = field
    end
  end
end
if #live > 0 then sliced('HSET', KEYS[2], live, 2000) end
if #gone > 0 then
  sliced('HDEL', KEYS[2], gone, 2000)
  sliced('ZREM', KEYS[3], gone, 2000)
end
if #index > 0 then sliced('ZADD', KEYS[3], index, 2000) end
if n > 0 and (ARGV[8] ~= '1' or ARGV[7] ~= sv) then sliced('SADD', KEYS[5], { unpack(ARGV, 13, 12 + t) }, 2000) end
local v = last + n
local evicted = 0
local damaged = {}
if meta[3] and tonumber(meta[3]) and tonumber(meta[3]) > 0 and t > 0 then
  local capFields = {}
  for k = 1, t do capFields[k] = 'cap:' .. ARGV[12 + k] end
  local caps = redis.call('HMGET', KEYS[1], unpack(capFields))
  for k = 1, t do
    local raw = caps[k]
    -- 'track': the recency index is being filled (setOptions), so keep it, evict nothing yet.
    local tracking = raw == 'track'
    local capacity = raw and tonumber(raw)
    if raw and not tracking and (not capacity or capacity < 0 or capacity ~= math.floor(capacity)) then
      damaged[#damaged + 1] = ARGV[12 + k]
      capacity = nil
    end
    if capacity or tracking then
      local name = ARGV[12 + k]
      local recent = ARGV[9] .. name
      local add, remove = {}, {}
      at = 13 + t + r
      for i = 1, n do
        local field, e = ARGV[at], entries[i]
        at = at + 2
        local length = struct.unpack('>I4', e, 27)
        if not replaced[i] and length == #name and string.sub(e, 31, 30 + length) == name then
          if string.byte(e, 2) % 2 == 1 then
            remove[#remove + 1] = field
          else
            add[#add + 1] = last + i
            add[#add + 1] = field
          end
        end
      end
      if #add > 0 then sliced('ZADD', recent, add, 2000) end
      if #remove > 0 then sliced('ZREM', recent, remove, 2000) end
      local count = capacity and redis.call('ZCARD', recent) or 0
      if capacity and count > capacity then
        local fields = redis.call('ZRANGE', recent, 0, count - capacity - 1)
        local stored = {}
        for s = 1, #fields, 2000 do
          local got = redis.call('HMGET', KEYS[2], unpack(fields, s, math.min(s + 1999, #fields)))
          for j = 1, #got do stored[s + j - 1] = got[j] end
        end
        for j = 1, #fields do
          local e = stored[j]
          -- A damaged entry goes without a tombstone: no reader could use one.
          if e and #e >= 26 and string.byte(e, 1) == 1 then
            v = v + 1
            local flags = string.byte(e, 2)
            if flags % 2 == 0 then flags = flags + 1 end
            local tomb = header(flags, v, now, now) .. string.sub(e, 27)
            log[#log + 1] = v
            log[#log + 1] = tomb
            entries[#entries + 1] = tomb
            evicted = evicted + 1
          end
        end
        sliced('HDEL', KEYS[2], fields, 2000)
        sliced('ZREM', KEYS[3], fields, 2000)
        sliced('ZREM', recent, fields, 2000)
      end
    end
  end
end
if v > last then
  sliced('ZADD', KEYS[4], log, 2000)
  redis.call('HSET', KEYS[1], 'last', string.format('%.0f', v))
  if not fast and n > 0 then
    local length = redis.call('LPUSH', KEYS[6], ARGV[3] .. ' ' .. string.format('%.0f', last) .. ' ' .. string.format('%.0f', now))
    if length > ${2 * COMMITS_REMEMBERED} then redis.call('LTRIM', KEYS[6], 0, ${COMMITS_REMEMBERED - 1}) end
  end
  local message
  if fast and evicted == 0 and n > 0 then
    message = ARGV[at]
  else
    local svn = tonumber(sv)
    local size = 13
    for i = 1, #entries do size = size + 4 + #entries[i] end
    if size <= tonumber(ARGV[4]) then
      local parts = { struct.pack('>BI4I4I4', 0, math.floor(svn / 4294967296), svn % 4294967296, #entries) }
      for i = 1, #entries do parts[i + 1] = struct.pack('>I4', #entries[i]) .. entries[i] end
      message = table.concat(parts)
    else
      message = struct.pack('>BI4I4I4I4', 1, math.floor(svn / 4294967296), svn % 4294967296, math.floor(v / 4294967296), v % 4294967296)
    end
  end
  redis.call('PUBLISH', ARGV[2], message)
end
local reply = { sv, string.format('%.0f', last), string.format('%.0f', now), evicted, fast and 1 or 0 }
for i = 1, #damaged do reply[5 + i] = damaged[i] end
return reply
`,
);

/**
 * Fills the recency index of a type that just got a capacity, a slice at a time: each record's
 * field with its version, read from the record itself in the same atomic step (`ZADD GT`: a put
 * since then already gave a newer one).
 *
 * KEYS: 1 records, 2 index, 3 the type's recency index. ARGV: 1 lowest field ('[prefix' or
 * '(field'), 2 highest field (exclusive), 3 most fields.
 *
 * Replies `{ fields read, the last field read }`.
 */
export const BACKFILL_SCRIPT: Script = script(
  'backfill',
  `
#!lua
local fields = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
if #fields == 0 then return { 0, '' } end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local add = {}
for j = 1, #fields do
  local e = stored[j]
  if e and #e >= 10 and string.byte(e, 1) == 1 then
    local high, low = struct.unpack('>I4I4', e, 3)
    add[#add + 1] = high * 4294967296 + low
    add[#add + 1] = fields[j]
  end
end
if #add > 0 then redis.call('ZADD', KEYS[3], 'GT', unpack(add)) end
return { #fields, fields[#fields] }
`,
);

/**
 * Acquires, renews or releases a lease atomically.
 *
 * KEYS: 1 the lease. ARGV: 1 the holder id, 2 time to live in ms (<= 0 releases).
 *
 * Replies 1 acquired, 2 renewed, 3 released, 0 held by another id, 4 nothing to release.
 */
export const LEASE_SCRIPT: Script = script(
  'lease',
  `
#!lua
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[2])
if ttl <= 0 then
  if holder then
    redis.call('DEL', KEYS[1])
    return 3
  end
  return 4
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
if holder then return 2 end
return 1
`,
);

/**
 * Which commands of the scripts the ACL user may not run on the backend's keys. A script that
 * meets a refused command halfway through would leave its earlier writes applied, so the backend
 * asks first, once per connection, and uses WATCH/MULTI when anything is refused.
 *
 * ARGV: groups of `count, command, args...`. Replies the refused commands as text.
 */
export const PROBE_SCRIPT: Script = script(
  'probe',
  `
#!lua flags=no-writes
local refused = {}
local at = 1
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  local args = {}
  for j = 1, count do args[j] = ARGV[at + j] end
  local ok, allowed = pcall(redis.acl_check_cmd, unpack(args))
  if not ok or not allowed then refused[#refused + 1] = args[1] end
  at = at + count + 1
end
return refused
`,
);
