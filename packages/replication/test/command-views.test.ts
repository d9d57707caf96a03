import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CommandView, commandView } from '../src/index.ts';
import { plain } from './event-helpers.ts';

const b = (...args: (string | number)[]) => args.map((a) => Buffer.from(String(a)));
const view = (name: string, ...args: (string | number)[]) => plain(commandView(name, b(...args)));

describe('commandView', () => {
  it('reads SET with every option, and its shorthand commands', () => {
    expect(view('set', 'k', 'v')).toEqual({
      type: 'set',
      name: 'SET',
      key: 'k',
      value: 'v',
      keepTtl: false,
      get: false,
    });
    expect(view('SET', 'k', 'v', 'PXAT', 1700000000000, 'XX', 'GET')).toEqual({
      type: 'set',
      name: 'SET',
      key: 'k',
      value: 'v',
      expire: { kind: 'absolute', atMs: 1700000000000 },
      condition: 'XX',
      keepTtl: false,
      get: true,
    });
    expect(view('SET', 'k', 'v', 'ex', 10, 'nx')).toMatchObject({
      expire: { kind: 'relative', ms: 10000 },
      condition: 'NX',
    });
    expect(view('SET', 'k', 'v', 'EXAT', 1700000000)).toMatchObject({
      expire: { kind: 'absolute', atMs: 1700000000000 },
    });
    expect(view('SET', 'k', 'v', 'KEEPTTL')).toMatchObject({ keepTtl: true });
    expect(view('SET', 'k', 'v', 'IFEQ', 'old')).toMatchObject({ ifEqual: 'old' });
    expect(view('SETEX', 'k', 5, 'v')).toMatchObject({
      type: 'set',
      expire: { kind: 'relative', ms: 5000 },
      value: 'v',
    });
    expect(view('PSETEX', 'k', 5, 'v')).toMatchObject({ expire: { kind: 'relative', ms: 5 } });
    expect(view('SETNX', 'k', 'v')).toMatchObject({ condition: 'NX' });
    expect(view('GETSET', 'k', 'v')).toMatchObject({ get: true });
    expect(view('MSET', 'a', 1, 'b', 2)).toEqual({
      type: 'mset',
      name: 'MSET',
      pairs: [
        ['a', '1'],
        ['b', '2'],
      ],
      onlyIfNoneExists: false,
    });
  });

  it('reads counters, deletes and the expire family', () => {
    expect(view('INCRBY', 'k', -5)).toEqual({ type: 'incr', name: 'INCRBY', key: 'k', by: -5 });
    expect(view('DECRBY', 'k', 5)).toMatchObject({ by: -5 });
    expect(view('INCRBYFLOAT', 'k', '1.5')).toMatchObject({ by: 1.5 });
    expect(view('DEL', 'a', 'b')).toEqual({ type: 'del', name: 'DEL', keys: ['a', 'b'] });
    expect(view('UNLINK', 'a')).toEqual({ type: 'del', name: 'UNLINK', keys: ['a'] });
    expect(view('PEXPIREAT', 'k', 1700000000000)).toEqual({
      type: 'expire',
      name: 'PEXPIREAT',
      key: 'k',
      expire: { kind: 'absolute', atMs: 1700000000000 },
    });
    expect(view('EXPIRE', 'k', 10, 'GT')).toEqual({
      type: 'expire',
      name: 'EXPIRE',
      key: 'k',
      expire: { kind: 'relative', ms: 10000 },
      condition: 'GT',
    });
    expect(view('PERSIST', 'k')).toEqual({ type: 'persist', name: 'PERSIST', key: 'k' });
    expect(view('RENAME', 'a', 'b')).toMatchObject({
      type: 'rename',
      from: 'a',
      to: 'b',
      onlyIfAbsent: false,
      keepSource: false,
    });
    expect(view('COPY', 'a', 'b', 'DB', 3, 'REPLACE')).toMatchObject({
      type: 'rename',
      db: 3,
      onlyIfAbsent: false,
      keepSource: true,
    });
    expect(view('MOVE', 'a', 2)).toMatchObject({ type: 'rename', db: 2 });
    expect(view('RESTORE', 'k', 0, 'payload', 'REPLACE', 'ABSTTL')).toMatchObject({
      type: 'restore',
      ttl: 0,
      replace: true,
      absoluteTtl: true,
      payload: 'payload',
    });
  });

  it('reads hash writes, with field expiry', () => {
    expect(view('HSET', 'h', 'f', 'v', 'g', 'w')).toEqual({
      type: 'hset',
      name: 'HSET',
      key: 'h',
      fields: [
        ['f', 'v'],
        ['g', 'w'],
      ],
      onlyIfAbsent: false,
    });
    expect(view('HSETNX', 'h', 'f', 'v')).toMatchObject({ onlyIfAbsent: true });
    expect(view('HDEL', 'h', 'f', 'g')).toEqual({ type: 'hdel', name: 'HDEL', key: 'h', fields: ['f', 'g'] });
    expect(view('HINCRBY', 'h', 'f', 3)).toMatchObject({ type: 'hincr', field: 'f', by: 3 });
    expect(view('HPEXPIREAT', 'h', 1700000000000, 'NX', 'FIELDS', 2, 'a', 'b')).toEqual({
      type: 'hexpire',
      name: 'HPEXPIREAT',
      key: 'h',
      expire: { kind: 'absolute', atMs: 1700000000000 },
      condition: 'NX',
      fields: ['a', 'b'],
    });
    expect(view('HPERSIST', 'h', 'FIELDS', 1, 'a')).toEqual({
      type: 'hexpire',
      name: 'HPERSIST',
      key: 'h',
      fields: ['a'],
    });
  });

  it('reads list, set and sorted set writes', () => {
    expect(view('RPUSH', 'l', 'a', 'b')).toEqual({
      type: 'list-push',
      name: 'RPUSH',
      key: 'l',
      end: 'right',
      elements: ['a', 'b'],
      onlyIfExists: false,
    });
    expect(view('LPUSHX', 'l', 'a')).toMatchObject({ end: 'left', onlyIfExists: true });
    expect(view('LPOP', 'l', 3)).toEqual({ type: 'list-pop', name: 'LPOP', key: 'l', end: 'left', count: 3 });
    expect(view('LMOVE', 'a', 'b', 'LEFT', 'RIGHT')).toMatchObject({
      type: 'list-move',
      fromEnd: 'left',
      toEnd: 'right',
    });
    expect(view('LTRIM', 'l', 0, 9)).toEqual({ type: 'range-write', name: 'LTRIM', key: 'l', args: ['0', '9'] });
    expect(view('SADD', 's', 'a', 'b')).toEqual({ type: 'set-add', name: 'SADD', key: 's', members: ['a', 'b'] });
    expect(view('SREM', 's', 'a')).toMatchObject({ type: 'set-remove' });
    expect(view('SMOVE', 'a', 'b', 'm')).toMatchObject({ type: 'set-move', member: 'm' });
    expect(view('ZADD', 'z', 'GT', 'CH', 1.5, 'a', '-inf', 'b')).toEqual({
      type: 'zadd',
      name: 'ZADD',
      key: 'z',
      compare: 'GT',
      changed: true,
      increment: false,
      members: [
        { score: 1.5, member: 'a' },
        { score: '-Infinity', member: 'b' },
      ],
    });
    expect(view('ZREM', 'z', 'a')).toMatchObject({ type: 'zrem', members: ['a'] });
    expect(view('ZINCRBY', 'z', 2, 'a')).toMatchObject({ type: 'zincrby', by: 2 });
    expect(view('ZUNIONSTORE', 'd', 2, 'a', 'b', 'WEIGHTS', 1, 2)).toEqual({
      type: 'store',
      name: 'ZUNIONSTORE',
      destination: 'd',
      sources: ['a', 'b'],
      args: ['WEIGHTS', '1', '2'],
    });
    expect(view('SINTERSTORE', 'd', 'a', 'b')).toMatchObject({ type: 'store', sources: ['a', 'b'] });
  });

  it('reads stream writes', () => {
    expect(view('XADD', 's', 'MAXLEN', '~', 1000, '1-1', 'f', 'v')).toEqual({
      type: 'xadd',
      name: 'XADD',
      key: 's',
      id: '1-1',
      noMkStream: false,
      trim: { strategy: 'MAXLEN', approximate: true, threshold: '1000' },
      fields: [['f', 'v']],
    });
    expect(view('XADD', 's', 'NOMKSTREAM', 'MINID', '=', '5-0', 'LIMIT', 10, '*', 'a', 'b', 'c', 'd')).toMatchObject({
      noMkStream: true,
      trim: { strategy: 'MINID', approximate: false, threshold: '5-0', limit: 10 },
      fields: [
        ['a', 'b'],
        ['c', 'd'],
      ],
    });
    expect(view('XADD', 's', 'IDMP', 'p', 'i', '*', 'f', 'v')).toMatchObject({ id: '*', fields: [['f', 'v']] });
    expect(view('XDEL', 's', '1-1', '2-2')).toEqual({ type: 'xdel', name: 'XDEL', key: 's', ids: ['1-1', '2-2'] });
    expect(view('XACK', 's', 'g', '1-1')).toMatchObject({ type: 'xack', group: 'g', ids: ['1-1'] });
    expect(view('XTRIM', 's', 'MAXLEN', 10)).toMatchObject({
      type: 'xtrim',
      strategy: 'MAXLEN',
      threshold: '10',
      approximate: false,
    });
    expect(view('XGROUP', 'CREATE', 's', 'g', '$', 'MKSTREAM')).toMatchObject({
      type: 'xgroup',
      action: 'CREATE',
      key: 's',
      group: 'g',
      args: ['$', 'MKSTREAM'],
    });
    expect(view('XCLAIM', 's', 'g', 'c', 0, '1-1')).toMatchObject({ type: 'xgroup', action: 'XCLAIM', group: 'g' });
    expect(view('XSETID', 's', '5-5')).toMatchObject({ type: 'xgroup', action: 'XSETID' });
  });

  it('reads transactions, database changes, flushes and scripts', () => {
    expect(view('MULTI')).toEqual({ type: 'multi', name: 'MULTI' });
    expect(view('EXEC')).toEqual({ type: 'exec', name: 'EXEC' });
    expect(view('SELECT', 3)).toEqual({ type: 'select', name: 'SELECT', db: 3 });
    expect(view('FLUSHALL', 'ASYNC')).toEqual({ type: 'flush', name: 'FLUSHALL', scope: 'all', async: true });
    expect(view('FLUSHDB')).toEqual({ type: 'flush', name: 'FLUSHDB', scope: 'db', async: false });
    expect(view('SWAPDB', 0, 1)).toEqual({ type: 'swapdb', name: 'SWAPDB', a: 0, b: 1 });
    expect(view('EVAL', 'return 1', 2, 'k1', 'k2', 'a1')).toEqual({
      type: 'eval',
      name: 'EVAL',
      target: 'return 1',
      keys: ['k1', 'k2'],
      args: ['a1'],
    });
    expect(view('FCALL', 'fn', 0, 'x')).toEqual({ type: 'fcall', name: 'FCALL', target: 'fn', keys: [], args: ['x'] });
    expect(view('FUNCTION', 'load', 'code')).toEqual({
      type: 'function',
      name: 'FUNCTION',
      action: 'LOAD',
      args: ['code'],
    });
    expect(view('PUBLISH', 'ch', 'msg')).toMatchObject({
      type: 'publish',
      channel: 'ch',
      message: 'msg',
      sharded: false,
    });
    expect(view('PING')).toEqual({ type: 'ping', name: 'PING', args: [] });
    expect(view('REPLCONF', 'GETACK', '*')).toEqual({ type: 'replconf', name: 'REPLCONF', args: ['GETACK', '*'] });
    expect(view('APPEND', 'k', 'x')).toEqual({ type: 'key-write', name: 'APPEND', keys: ['k'], args: ['k', 'x'] });
    expect(view('OBJECT', 'FREQ', 'k')).toEqual({ type: 'other', name: 'OBJECT', args: ['FREQ', 'k'] });
  });

  it('gives a malformed view with the reason instead of throwing', () => {
    expect(view('SET', 'k')).toMatchObject({
      type: 'malformed',
      name: 'SET',
      reason: expect.stringContaining('at least 2'),
    });
    expect(view('SET', 'k', 'v', 'EX', 'soon')).toMatchObject({
      type: 'malformed',
      reason: expect.stringContaining('not an integer'),
    });
    expect(view('SET', 'k', 'v', 'EX', 1, 'PX', 2)).toMatchObject({ type: 'malformed' });
    expect(view('HSET', 'h', 'f')).toMatchObject({ type: 'malformed' });
    expect(view('EVAL', 's', 5, 'k')).toMatchObject({ type: 'malformed', reason: expect.stringContaining('numkeys') });
    expect(view('ZADD', 'z', 'x', 'm')).toMatchObject({
      type: 'malformed',
      reason: expect.stringContaining('not a number'),
    });
    expect(view('HPEXPIRE', 'h', 10, 'FIELDS', 3, 'a')).toMatchObject({ type: 'malformed' });
  });

  it('never throws, whatever the arguments (property)', () => {
    const names = [
      'SET',
      'SETEX',
      'MSET',
      'INCRBY',
      'DEL',
      'EXPIRE',
      'PEXPIREAT',
      'COPY',
      'RESTORE',
      'HSET',
      'HDEL',
      'HINCRBYFLOAT',
      'HEXPIRE',
      'HPERSIST',
      'LPUSH',
      'LPOP',
      'LMOVE',
      'SADD',
      'SMOVE',
      'ZADD',
      'ZINCRBY',
      'ZUNIONSTORE',
      'XADD',
      'XTRIM',
      'XGROUP',
      'SELECT',
      'FLUSHALL',
      'SWAPDB',
      'EVAL',
      'FCALL',
      'FUNCTION',
      'PUBLISH',
      'LTRIM',
      'SINTERSTORE',
      'APPEND',
      'WHATEVER',
    ];
    const token = fc.oneof(
      fc.constantFrom(
        'NX',
        'XX',
        'GT',
        'EX',
        'PX',
        'PXAT',
        'KEEPTTL',
        'FIELDS',
        'MAXLEN',
        '~',
        '=',
        'LIMIT',
        '*',
        'LEFT',
        'inf',
        '-1',
        '0',
        '2',
        '1.5',
      ),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.array(token, { maxLength: 10 }), (name, args) => {
        const v: CommandView = commandView(
          name,
          args.map((a) => Buffer.from(a)),
        );
        expect(v.name).toBe(name);
      }),
      { numRuns: 3000 },
    );
  });
});
