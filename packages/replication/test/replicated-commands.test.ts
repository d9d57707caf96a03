// The typed command views against what real masters replicate: a raw replica records the
// command stream while a client runs every family of write commands, and every command in the
// stream must get its typed view (masters rewrite many commands before replicating them:
// relative expiries become PXAT/PEXPIREAT, SPOP becomes SREM, XREADGROUP becomes XCLAIM, scripts
// become their effects in MULTI/EXEC...).
import { spawnRedis } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { type CommandView, commandView } from '../src/index.ts';
import { commandFamilies, runFamilies } from './command-families.ts';
import { decodeCommands, rawReplica, replicationMatrix, resp } from './raw-replica.ts';

describe.each((await replicationMatrix()).map((s) => [s.name, s] as const))(
  'commands replicated by %s',
  (_name, binary) => {
    it('all get a typed view, in order, with the database from SELECT', async () => {
      await using master = await spawnRedis({ binary, config: { 'repl-diskless-sync': 'no' } });
      const client = master.createClient({ protocol: 2 });
      const families = commandFamilies(binary);
      const run = async () => {
        await runFamilies(client, families);
        await client.set('the-end', 'sentinel');
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
      for (const t of families.flatMap((f) => f.views)) expect(types, t).toContain(t);
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
