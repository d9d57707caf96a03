// Every family of write commands, run by a client against a master, with the typed views the
// master's replication stream must then carry for it (masters rewrite many commands before
// replicating them: relative expiries become PXAT/PEXPIREAT, SPOP becomes SREM, XREADGROUP
// becomes XCLAIM, scripts become their effects...).
import { type ServerBinary, versionAtLeast } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import type { CommandView } from '../src/index.ts';

type Call = (...args: (string | number)[]) => Promise<unknown>;

export interface CommandFamily {
  readonly label: string;
  /** View types the family's replicated commands must include. */
  readonly views: readonly CommandView['type'][];
  readonly run: (call: Call, client: Redis) => Promise<void>;
}

/** Hash field expiry: Redis 7.4+, Valkey 9+. */
export function hasFieldExpiry(binary: ServerBinary): boolean {
  const v = binary.version;
  return v.flavor === 'valkey' ? versionAtLeast(v, 'valkey 9') : versionAtLeast(v, '7.4');
}

export function commandFamilies(binary: ServerBinary): CommandFamily[] {
  const hfe = hasFieldExpiry(binary);
  return [
    {
      label: 'strings',
      views: ['set', 'incr', 'mset', 'key-write'],
      run: async (c) => {
        await c('SET', 's1', 'v', 'EX', 100);
        await c('SET', 's2', 'v', 'NX', 'PX', 100000);
        await c('SETEX', 's3', 100, 'v');
        await c('INCRBYFLOAT', 'f', '1.5');
        await c('INCRBY', 'n', 5);
        await c('MSET', 'm1', 'a', 'm2', 'b');
        await c('APPEND', 's1', 'x');
        await c('GETEX', 's1', 'PERSIST');
      },
    },
    {
      label: 'keys',
      views: ['expire', 'persist', 'rename', 'del'],
      run: async (c) => {
        await c('EXPIRE', 'm1', 100);
        await c('PERSIST', 'm1');
        await c('RENAME', 'm2', 'm3');
        await c('COPY', 'm3', 'm4');
        await c('DEL', 'm3');
        await c('UNLINK', 'm4');
      },
    },
    {
      label: 'hashes',
      views: hfe ? ['hset', 'hincr', 'hdel', 'hexpire'] : ['hset', 'hincr', 'hdel'],
      run: async (c) => {
        await c('HSET', 'h', 'a', 1, 'b', 2);
        await c('HINCRBY', 'h', 'a', 3);
        await c('HDEL', 'h', 'b');
        if (hfe) await c('HEXPIRE', 'h', 100, 'FIELDS', 1, 'a');
      },
    },
    {
      label: 'lists',
      views: ['list-push', 'list-pop', 'list-move', 'range-write'],
      run: async (c) => {
        await c('RPUSH', 'l', 'a', 'b', 'c', 'd');
        await c('LPOP', 'l');
        await c('LMOVE', 'l', 'l2', 'LEFT', 'RIGHT');
        await c('BLPOP', 'l', 0);
        await c('RPUSH', 'l', 'x', 'y', 'z');
        await c('LTRIM', 'l', 0, 0);
      },
    },
    {
      label: 'sets',
      views: ['set-add', 'set-remove', 'set-move'],
      run: async (c) => {
        await c('SADD', 'st', 'a', 'b', 'c');
        await c('SREM', 'st', 'a');
        await c('SPOP', 'st');
        await c('SADD', 'mv', 'a');
        await c('SMOVE', 'mv', 'mv2', 'a');
      },
    },
    {
      label: 'sorted sets',
      views: ['zadd', 'zincrby', 'zrem', 'store'],
      run: async (c) => {
        await c('ZADD', 'z', 1, 'a', 2, 'b', 3, 'c');
        await c('ZINCRBY', 'z', 2, 'a');
        await c('ZREM', 'z', 'b');
        await c('ZPOPMIN', 'z');
        await c('ZUNIONSTORE', 'z2', 1, 'z');
      },
    },
    {
      label: 'streams',
      views: ['xadd', 'xgroup', 'xack', 'xdel', 'xtrim'],
      run: async (c) => {
        await c('XADD', 'x', 'MAXLEN', '~', 1000, '*', 'f', 'v');
        await c('XGROUP', 'CREATE', 'x', 'g', '0');
        await c('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', 1, 'STREAMS', 'x', '>');
        const [[id]] = (await c('XRANGE', 'x', '-', '+')) as [[string]];
        await c('XACK', 'x', 'g', id);
        await c('XDEL', 'x', id);
        await c('XADD', 'x', '*', 'f', 'v2');
        await c('XADD', 'x', '*', 'f', 'v3');
        await c('XTRIM', 'x', 'MAXLEN', 1);
      },
    },
    {
      label: 'transactions',
      views: ['multi', 'exec'],
      run: async (_c, client) => {
        await client.multi().set('t1', 'a').incr('t2').exec();
      },
    },
    {
      label: 'scripts and functions',
      views: ['function', 'set'],
      run: async (c) => {
        await c('EVAL', "redis.call('SET', KEYS[1], ARGV[1]) return 1", 1, 'e', 'v');
        await c(
          'FUNCTION',
          'LOAD',
          'REPLACE',
          "#!lua name=viewlib\nredis.register_function('vf', function(keys, args) return redis.call('SET', keys[1], 'f') end)",
        );
        await c('FCALL', 'vf', 1, 'fk');
      },
    },
    {
      label: 'databases',
      views: ['select', 'set', 'flush', 'swapdb'],
      run: async (c) => {
        await c('SELECT', 3);
        await c('SET', 'in-db-3', 'x');
        await c('FLUSHDB');
        await c('SELECT', 0);
        await c('SWAPDB', 0, 1);
        await c('SWAPDB', 0, 1);
      },
    },
  ];
}

/** Runs every family; `after(i)` runs after family `i` (the live tests write a marker there). */
export async function runFamilies(
  client: Redis,
  families: readonly CommandFamily[],
  after?: (index: number, call: Call) => Promise<void>,
): Promise<void> {
  const call: Call = (...args) => client.call(String(args[0]), ...args.slice(1).map(String));
  for (const [i, family] of families.entries()) {
    await family.run(call, client);
    await after?.(i, call);
  }
}
