// The key table of the sync: for each write command, the keys it names, checked against the
// server's own COMMAND GETKEYS, and how they relate (independent, pairs, linked, written).

import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandKeys } from '../src/index.ts';

const SAMPLES: string[][] = [
  ['SET', 'k', 'v', 'PXAT', '1'],
  ['GETDEL', 'k'],
  ['APPEND', 'k', 'x'],
  ['INCRBYFLOAT', 'k', '1.5'],
  ['MSET', 'a', '1', 'b', '2', 'c', '3'],
  ['MSETNX', 'a', '1', 'b', '2'],
  ['DEL', 'a', 'b', 'c'],
  ['UNLINK', 'a'],
  ['EXPIRE', 'k', '10'],
  ['PEXPIREAT', 'k', '10', 'GT'],
  ['RENAME', 'a', 'b'],
  ['RENAMENX', 'a', 'b'],
  ['COPY', 'a', 'b', 'DB', '2', 'REPLACE'],
  ['MOVE', 'a', '3'],
  ['LPUSH', 'l', 'x'],
  ['LMOVE', 'a', 'b', 'LEFT', 'RIGHT'],
  ['RPOPLPUSH', 'a', 'b'],
  ['LMPOP', '2', 'a', 'b', 'LEFT'],
  ['BLPOP', 'a', 'b', '0'],
  ['SADD', 's', 'm'],
  ['SMOVE', 'a', 'b', 'm'],
  ['SUNIONSTORE', 'd', 'a', 'b'],
  ['SDIFFSTORE', 'd', 'a'],
  ['ZADD', 'z', '1', 'm'],
  ['ZUNIONSTORE', 'd', '2', 'a', 'b', 'WEIGHTS', '1', '2'],
  ['ZINTERSTORE', 'd', '1', 'a'],
  ['ZRANGESTORE', 'd', 'a', '0', '-1'],
  ['ZMPOP', '2', 'a', 'b', 'MIN'],
  ['HSET', 'h', 'f', 'v'],
  ['HDEL', 'h', 'f'],
  ['PFADD', 'p', 'x'],
  ['PFMERGE', 'd', 'a', 'b'],
  ['BITOP', 'AND', 'd', 'a', 'b'],
  ['SORT', 'a', 'STORE', 'd'],
  ['GEOADD', 'g', '1', '2', 'm'],
  ['GEORADIUS', 'g', '1', '2', '10', 'km', 'STORE', 'd'],
  ['GEOSEARCHSTORE', 'd', 'g', 'FROMLONLAT', '1', '2', 'BYRADIUS', '10', 'km'],
  ['XADD', 'x', '*', 'f', 'v'],
  ['XGROUP', 'CREATE', 'x', 'g', '$'],
  ['XCLAIM', 'x', 'g', 'c', '0', '0-1'],
  ['XSETID', 'x', '1-1'],
  ['EVAL', 'return 1', '2', 'a', 'b', 'arg'],
  ['FCALL', 'f', '1', 'a', 'arg'],
  ['RESTORE', 'k', '0', 'payload'],
];

describe('commandKeys', () => {
  let server: SpawnedRedis;
  let client: Redis;
  beforeAll(async () => {
    server = await spawnRedis();
    client = server.createClient();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('names the keys COMMAND GETKEYS names, for every command of the table', async () => {
    for (const [name, ...args] of SAMPLES) {
      const ours = commandKeys(
        name as string,
        args.map((a) => Buffer.from(a)),
      );
      expect(ours, name).toBeDefined();
      const names = [...new Set((ours?.positions ?? []).map((p) => args[p]))].sort();
      const theirs = [
        ...new Set((await client.call('COMMAND', 'GETKEYS', name as string, ...args)) as string[]),
      ].sort();
      expect(names, `${name} ${args.join(' ')}`).toEqual(theirs);
    }
  });

  it('says how the keys relate: split, pairs, or linked with the written ones', () => {
    const b = (...s: string[]) => s.map((x) => Buffer.from(x));
    expect(commandKeys('DEL', b('a', 'b'))).toMatchObject({ shape: 'independent', positions: [0, 1] });
    expect(commandKeys('MSET', b('a', '1', 'b', '2'))).toMatchObject({ shape: 'pairs', positions: [0, 2] });
    expect(commandKeys('SUNIONSTORE', b('d', 'a', 'b'))).toMatchObject({
      shape: 'linked',
      written: [true, false, false],
    });
    expect(commandKeys('RENAME', b('a', 'b'))).toMatchObject({ shape: 'linked', written: [true, true] });
    expect(commandKeys('COPY', b('a', 'b', 'DB', '4'))).toMatchObject({ written: [false, true], dbs: [undefined, 4] });
    expect(commandKeys('MOVE', b('a', '2'))).toMatchObject({ positions: [0, 0], dbs: [undefined, 2] });
    expect(commandKeys('FLUSHALL', [])).toMatchObject({ shape: 'keyless' });
    expect(commandKeys('SPUBLISH', b('ch', 'm'))).toMatchObject({ shape: 'keyless' });
    expect(commandKeys('JSON.SET', b('k', '$', '1'))).toBeUndefined();
  });
});
