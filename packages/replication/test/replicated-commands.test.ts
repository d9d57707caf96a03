// The typed command views against what real masters replicate: a raw replica records the
// command stream while a client runs every family of write commands, and every command in the
// stream must get its typed view (masters rewrite many commands before replicating them:
// relative expiries become PXAT/PEXPIREAT, SPOP becomes SREM, XREADGROUP becomes XCLAIM, scripts
// become their effects in MULTI/EXEC...).
import { spawnRedis, versionAtLeast } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { type CommandView, commandView } from '../src/index.ts';
import { decodeCommands, rawReplica, replicationMatrix, resp } from './raw-replica.ts';

describe.each((await replicationMatrix()).map((s) => [s.name, s] as const))(
  'commands replicated by %s',
  (_name, binary) => {
    it('all get a typed view, in order, with the database from SELECT', async () => {
      await using master = await spawnRedis({ binary, config: { 'repl-diskless-sync': 'no' } });
      const client = master.createClient({ protocol: 2 });
      const v = binary.version;
      const hfe = v.flavor === 'valkey' ? versionAtLeast(v, 'valkey 9') : versionAtLeast(v, '7.4');
      const run = async () => {
        const c = (...args: (string | number)[]) => client.call(String(args[0]), ...args.slice(1).map(String));
        await c('SET', 's1', 'v', 'EX', 100);
        await c('SET', 's2', 'v', 'NX', 'PX', 100000);
        await c('SETEX', 's3', 100, 'v');
        await c('INCRBYFLOAT', 'f', '1.5');
        await c('INCRBY', 'n', 5);
        await c('MSET', 'm1', 'a', 'm2', 'b');
        await c('APPEND', 's1', 'x');
        await c('GETEX', 's1', 'PERSIST');
        await c('EXPIRE', 'm1', 100);
        await c('PERSIST', 'm1');
        await c('RENAME', 'm2', 'm3');
        await c('COPY', 'm3', 'm4');
        await c('DEL', 'm3');
        await c('UNLINK', 'm4');
        await c('HSET', 'h', 'a', 1, 'b', 2);
        await c('HINCRBY', 'h', 'a', 3);
        await c('HDEL', 'h', 'b');
        if (hfe) await c('HEXPIRE', 'h', 100, 'FIELDS', 1, 'a');
        await c('RPUSH', 'l', 'a', 'b', 'c', 'd');
        await c('LPOP', 'l');
        await c('LMOVE', 'l', 'l2', 'LEFT', 'RIGHT');
        await c('BLPOP', 'l', 0);
        await c('RPUSH', 'l', 'x', 'y', 'z');
        await c('LTRIM', 'l', 0, 0);
        await c('SADD', 'st', 'a', 'b', 'c');
        await c('SREM', 'st', 'a');
        await c('SPOP', 'st');
        await c('SADD', 'mv', 'a');
        await c('SMOVE', 'mv', 'mv2', 'a');
        await c('ZADD', 'z', 1, 'a', 2, 'b', 3, 'c');
        await c('ZINCRBY', 'z', 2, 'a');
        await c('ZREM', 'z', 'b');
        await c('ZPOPMIN', 'z');
        await c('ZUNIONSTORE', 'z2', 1, 'z');
        await c('XADD', 'x', 'MAXLEN', '~', 1000, '*', 'f', 'v');
        await c('XGROUP', 'CREATE', 'x', 'g', '0');
        await c('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', 1, 'STREAMS', 'x', '>');
        const [[, [[id]]]] = (await c('XRANGE', 'x', '-', '+').then((r) => [[0, r]])) as [[number, [[string]]]];
        await c('XACK', 'x', 'g', id);
        await c('XDEL', 'x', id);
        await c('XADD', 'x', '*', 'f', 'v2');
        await c('XADD', 'x', '*', 'f', 'v3');
        await c('XTRIM', 'x', 'MAXLEN', 1);
        await client.multi().set('t1', 'a').incr('t2').exec();
        await c('EVAL', "redis.call('SET', KEYS[1], ARGV[1]) return 1", 1, 'e', 'v');
        await c(
          'FUNCTION',
          'LOAD',
          "#!lua name=viewlib\nredis.register_function('vf', function(keys, args) return redis.call('SET', keys[1], 'f') end)",
        );
        await c('FCALL', 'vf', 1, 'fk');
        await c('SELECT', 3);
        await c('SET', 'in-db-3', 'x');
        await c('FLUSHDB');
        await c('SELECT', 0);
        await c('SWAPDB', 0, 1);
        await c('SWAPDB', 0, 1);
        await c('SET', 'the-end', 'sentinel');
      };
      let acks: NodeJS.Timeout | undefined;
      const sync = rawReplica(
        master.port,
        [
          ['listening-port', '0'],
          ['capa', 'psync2'],
        ],
        (after) => after.includes('sentinel'),
        (socket, offset) => {
          acks = setInterval(() => {
            if (!socket.destroyed) socket.write(resp('REPLCONF', 'ACK', offset));
          }, 200);
          void run();
        },
      );
      const { after } = await sync.finally(() => clearInterval(acks));

      const views: { view: CommandView; db: number }[] = [];
      let db = 0;
      for (const { args } of decodeCommands(after)) {
        const [name, ...rest] = args;
        const view = commandView(name as Buffer, rest);
        if (view.type === 'select') db = view.db;
        views.push({ view, db });
      }
      const malformed = views.filter(({ view }) => view.type === 'malformed' || view.type === 'other');
      expect(malformed.map(({ view }) => `${view.name}: ${'reason' in view ? view.reason : 'no view'}`)).toEqual([]);
      const types = new Set(views.map(({ view }) => view.type));
      for (const t of [
        'set',
        'incr',
        'mset',
        'key-write',
        'expire',
        'persist',
        'rename',
        'del',
        'hset',
        'hincr',
        'hdel',
        'list-push',
        'list-pop',
        'list-move',
        'range-write',
        'set-add',
        'set-remove',
        'set-move',
        'zadd',
        'zincrby',
        'zrem',
        'store',
        'xadd',
        'xgroup',
        'xack',
        'xdel',
        'xtrim',
        'multi',
        'exec',
        'function',
        'select',
        'flush',
        'swapdb',
      ] as const)
        expect(types, t).toContain(t);
      if (hfe) expect(types).toContain('hexpire');
      // Relative expiries reach replicas as absolute times.
      const s1 = views.find(({ view }) => view.type === 'set' && view.key.toString() === 's1')?.view;
      expect(s1).toMatchObject({ type: 'set', expire: { kind: 'absolute' } });
      // The SET in db 3 is seen in db 3, and so is its FLUSHDB.
      expect(views.find(({ view }) => view.type === 'set' && view.key.toString() === 'in-db-3')?.db).toBe(3);
      expect(views.find(({ view }) => view.type === 'flush')).toMatchObject({ db: 3, view: { scope: 'db' } });
      // MULTI and EXEC come in pairs.
      expect(views.filter(({ view }) => view.type === 'multi').length).toBe(
        views.filter(({ view }) => view.type === 'exec').length,
      );
    });
  },
);
