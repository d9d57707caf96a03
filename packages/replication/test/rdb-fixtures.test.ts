// RDB files written by servers the suite cannot start (see test/fixtures/README.md for how each
// was made), read whole and byte by byte.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entries, parseBytes, plain } from './event-helpers.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

describe('Redis 7.0-rc2', () => {
  const file = fixture('redis-7.0-rc2-functions.rdb');
  const everyByte = Array.from({ length: file.length }, (_, i) => i);

  it('reads its function libraries (opcode 246) as the source FUNCTION LOAD takes, and its keys', () => {
    for (const splits of [[], everyByte]) {
      const events = parseBytes(file, {}, splits);
      expect(events[0]).toMatchObject({ kind: 'header', magic: 'REDIS', version: 10 });
      expect(plain(events.find((e) => e.kind === 'aux' && e.name === 'redis-ver'))).toMatchObject({ value: '6.9.241' });
      const functions = events.filter((e) => e.kind === 'function').map(plain);
      const hello = "redis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)";
      const two = "redis.register_function('two', function() return 2 end)";
      expect(functions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            code: `#!LUA name=mylib\n${hello}`,
            preGa: { name: 'mylib', engine: 'LUA', description: 'a library of mine', code: hello },
          }),
          expect.objectContaining({
            code: `#!LUA name=otherlib\n${two}`,
            preGa: { name: 'otherlib', engine: 'LUA', code: two },
          }),
        ]),
      );
      expect(functions).toHaveLength(2);
      const keys = Object.fromEntries(entries(events).map((e) => [e.key as string, e]));
      expect(Object.keys(keys).sort()).toEqual([
        'counter',
        'greeting',
        'hash',
        'list',
        'long',
        'set',
        'stream',
        'zset',
      ]);
      expect(keys.greeting).toMatchObject({ type: 'string', value: 'hi', expireAt: 4102444800000 });
      expect(keys.counter).toMatchObject({ value: '12345' });
      expect(keys.long).toMatchObject({ value: 'abcdefgh'.repeat(100) });
      expect(keys.list).toMatchObject({ type: 'list', value: ['a', 'b', 'c'] });
      expect(keys.zset).toMatchObject({
        value: [
          { member: 'a', score: 1 },
          { member: 'b', score: 2.5 },
        ],
      });
      expect(keys.stream).toMatchObject({
        type: 'stream',
        value: { entries: [{ id: '1-1', fields: [['field', 'value']] }], meta: { groups: [{ name: 'group' }] } },
      });
      expect(events.at(-1)).toMatchObject({ kind: 'end', checksumVerified: true, size: file.length });
    }
  });
});
