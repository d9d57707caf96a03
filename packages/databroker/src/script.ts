// The optional Lua put (`scripting: true`): the same writes as the WATCH/MULTI transaction, done
// by one script that reads the last version and writes the batch atomically, so that contending
// writers never retry. Entries are built the same way as in entry.ts (the header is packed by the
// script, the body comes ready from the client), so both paths store identical bytes.
import { LuaScript } from '@redis-events/resp/ioredis';
import type { EntryBody } from './entry.ts';
import type { KeySpace } from './keys.ts';
import { MAX_PUSH_BYTES } from './notifier.ts';

/** How many commits the script remembers by token, to tell after a dropped connection whether one landed. */
export const COMMITS_REMEMBERED: number = 1024;

// KEYS: 1 server_version, 2 last_version, 3 records, 4 changes, 5 types, 6 options, 7 commits,
//       8.. the type index of each type of the batch
// ARGV: 1 candidate server version, 2 channel, 3 token, 4 largest push, 5 record count,
//       6 type count t, 7..6+t the types, then per record: type number (1-based), field, id,
//       flags, deletedAt (ms), body
const PUT_SOURCE = `
local sv = redis.call('GET', KEYS[1])
if not sv then
  sv = ARGV[1]
  redis.call('SET', KEYS[1], sv)
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if not last then return redis.error_reply('ERR databroker: last_version is not a number') end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local n = tonumber(ARGV[5])
local t = tonumber(ARGV[6])
local at = 7 + t
local entries = {}
local size = 13
for i = 1, n do
  local typeKey = KEYS[7 + tonumber(ARGV[at])]
  local field, id, flags, deletedAt, body = ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), ARGV[at + 5]
  at = at + 6
  local v = last + i
  local entry = struct.pack('>BBI4I4dd', 1, flags, math.floor(v / 4294967296), v % 4294967296, now, deletedAt) .. body
  redis.call('ZADD', KEYS[4], v, entry)
  if flags % 2 == 1 then
    redis.call('HDEL', KEYS[3], field)
    redis.call('ZREM', typeKey, id)
  else
    redis.call('HSET', KEYS[3], field, entry)
    redis.call('ZADD', typeKey, v, id)
  end
  entries[i] = entry
  size = size + 4 + #entry
end
redis.call('SADD', KEYS[5], unpack(ARGV, 7, 6 + t))
local lastVersion = string.format('%.0f', last + n)
redis.call('SET', KEYS[2], lastVersion)
redis.call('LPUSH', KEYS[7], ARGV[3] .. ' ' .. string.format('%.0f', last) .. ' ' .. string.format('%.0f', now))
redis.call('LTRIM', KEYS[7], 0, ${COMMITS_REMEMBERED - 1})
local message = lastVersion
if size <= tonumber(ARGV[4]) then
  local svn = tonumber(sv)
  local parts = { string.char(0) .. struct.pack('>I4I4I4', math.floor(svn / 4294967296), svn % 4294967296, n) }
  for i = 1, n do parts[i + 1] = struct.pack('>I4', #entries[i]) .. entries[i] end
  message = table.concat(parts)
end
redis.call('PUBLISH', ARGV[2], message)
return { sv, string.format('%.0f', last), string.format('%.0f', now), redis.call('HMGET', KEYS[6], unpack(ARGV, 7, 6 + t)) }
`;

/** The put script, run with EVALSHA (resp's runScript). */
export const PUT_SCRIPT: LuaScript = new LuaScript(PUT_SOURCE, { name: 'the databroker put script' });

/** One record of a scripted put. */
export interface ScriptRecord {
  readonly body: EntryBody;
  readonly field: string;
  readonly flags: number;
  readonly deletedAt: number | undefined;
}

/** KEYS and ARGV of the put script for a batch. */
export function putScriptCall(
  keys: KeySpace,
  records: readonly ScriptRecord[],
  candidateServerVersion: number,
  token: string,
): { keys: string[]; args: (string | number | Buffer)[] } {
  const types = [...new Set(records.map((r) => r.body.type))];
  const number = new Map(types.map((type, i) => [type, i + 1]));
  const args: (string | number | Buffer)[] = [
    candidateServerVersion,
    keys.channel,
    token,
    MAX_PUSH_BYTES,
    records.length,
    types.length,
    ...types,
  ];
  for (const r of records) {
    // The body bytes after the header: uint32 type length, type, uint32 id length, id, data.
    args.push(number.get(r.body.type) as number, r.field, r.body.id, r.flags, r.deletedAt ?? 0, r.body.bytes);
  }
  return {
    keys: [
      keys.serverVersion,
      keys.lastVersion,
      keys.records,
      keys.changes,
      keys.types,
      keys.options,
      keys.commits,
      ...types.map((t) => keys.typeKey(t)),
    ],
    args,
  };
}
