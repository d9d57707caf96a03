// The live listener against real masters of the version matrix (the oldest and newest Redis and
// Valkey 9 by default, every server with REDIS_SERVER=all): a full sync of every type and
// encoding, disk-based and diskless, then every family of write commands in order with its
// database and byte-exact offsets; a restart from a checkpoint (a partial resync, checked in the
// master's INFO); a master restart; connections cut during the snapshot and during the stream.
import { type SpawnedRedis, spawnRedis, startProxy, waitFor } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { type CommandEvent, ReplicaListener, type ReplicationEvent } from '../src/index.ts';
import { commandFamilies, runFamilies } from './command-families.ts';
import { expectContiguous, Recorder, snapshotEntries } from './live-helpers.ts';
import { replicationMatrix } from './raw-replica.ts';
import { expectDataset, spawnConfig, writeDataset } from './server-dataset.ts';

async function stats(master: SpawnedRedis): Promise<{ full: number; partial: number }> {
  const info = await master.info('stats');
  return { full: Number(info.sync_full), partial: Number(info.sync_partial_ok) };
}

/** Waits until the master's offset equals the listener's: every byte of the stream accounted for. */
async function expectSameOffset(master: SpawnedRedis, listener: ReplicaListener): Promise<void> {
  const deadline = Date.now() + 10_000;
  let theirs = -1;
  for (;;) {
    theirs = Number((await master.info('replication')).master_repl_offset);
    if (listener.checkpoint?.replOffset === theirs) break;
    if (Date.now() > deadline) expect(listener.checkpoint?.replOffset).toBe(theirs);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // And the master got it back from our REPLCONF ACK.
  for (;;) {
    const replica = (await master.info('replication')).slave0 ?? '';
    if (replica.includes(`offset=${theirs},`)) return;
    if (Date.now() > deadline) expect(replica).toContain(`offset=${theirs},`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function isSet(event: ReplicationEvent, key: string): event is CommandEvent {
  return event.kind === 'command' && event.name === 'SET' && event.args[0]?.toString() === key;
}

describe.each((await replicationMatrix()).map((s) => [`${s.name} (${s.version.text})`, s] as const))(
  'the listener on %s',
  (_name, binary) => {
    for (const diskless of [false, true]) {
      it(`receives a ${diskless ? 'diskless' : 'disk-based'} full sync of every type, then every command family in order, with its database and exact offsets`, async () => {
        await using master = await spawnRedis({
          binary,
          config: { ...spawnConfig(binary), 'repl-diskless-sync': diskless ? 'yes' : 'no' },
        });
        const client = master.createClient({ protocol: 2 });
        const dataset = await writeDataset(client, binary);
        await using listener = new ReplicaListener({ port: master.port, progressInterval: 0 });
        const recorder = new Recorder(listener);
        const done = await recorder.until((e) => e.kind === 'snapshot-done');

        const kinds = recorder.kinds().filter((k) => k !== 'sync-progress');
        expect(kinds.slice(0, 3)).toEqual(['connected', 'full-sync-start', 'header']);
        const start = recorder.events[1];
        const replId = (await master.info('replication')).master_replid;
        expect(start).toMatchObject({ kind: 'full-sync-start', diskless, replId });
        if (diskless) expect(start).not.toHaveProperty('size');
        else expect(start).toMatchObject({ size: expect.any(Number) });
        const progress = recorder.events.filter((e) => e.kind === 'sync-progress');
        expect(progress.length).toBeGreaterThan(0);
        const end = recorder.events.find((e) => e.kind === 'end');
        expect(end).toMatchObject({ checksumVerified: true });
        expect(progress.at(-1)).toMatchObject({ bytes: (end as { size: number }).size });
        expect(done).toMatchObject({ replId, db: 0 });
        expectDataset(snapshotEntries(recorder.events), dataset);
        const atDone = recorder.checkpoints[recorder.events.indexOf(done)];
        expect(atDone).toEqual({ replId, replOffset: (done as { offset: number }).offset, db: 0 });
        // While the snapshot was being delivered, there was nothing to resume from.
        expect(recorder.checkpoints.slice(1, recorder.events.indexOf(done))).toEqual(
          recorder.checkpoints.slice(1, recorder.events.indexOf(done)).map(() => undefined),
        );

        const families = commandFamilies(binary);
        await runFamilies(client, families, async (i, call) => {
          await call('SET', `mark:${i}`, (families[i] as { label: string }).label);
        });
        await recorder.untilSet(`mark:${families.length - 1}`);

        const commands = recorder.commands();
        let from = 0;
        for (const [i, family] of families.entries()) {
          const at = commands.findIndex((c) => isSet(c, `mark:${i}`));
          expect(at, `the marker after ${family.label}`).toBeGreaterThanOrEqual(from);
          const types = new Set(commands.slice(from, at).map((c) => c.view.type));
          for (const view of family.views) expect(types, `${family.label}: ${view}`).toContain(view);
          expect(commands[at]?.db).toBe(0);
          from = at + 1;
        }
        expect(commands.filter((c) => c.view.type === 'malformed' || c.view.type === 'other')).toEqual([]);
        expect(commands.find((c) => isSet(c, 'in-db-3'))?.db).toBe(3);
        expect(commands.find((c) => c.view.type === 'flush')?.db).toBe(3);
        const multi = commands.findIndex((c, i) => c.name === 'MULTI' && isSet(commands[i + 1] as CommandEvent, 't1'));
        expect(commands.slice(multi, multi + 4).map((c) => [c.name, c.inTransaction])).toEqual([
          ['MULTI', true],
          ['SET', true],
          ['INCR', true],
          ['EXEC', true],
        ]);
        expectContiguous(recorder.events);
        await expectSameOffset(master, listener);
        expect(await stats(master)).toEqual({ full: 1, partial: 0 });
      });
    }

    it('resumes from a saved checkpoint with only the missed commands, without a full sync', async () => {
      await using master = await spawnRedis({ binary });
      const client = master.createClient({ protocol: 2 });
      await client.set('before', 'snapshot');
      const first = new ReplicaListener({ port: master.port });
      for await (const event of first) {
        if (event.kind === 'snapshot-done') {
          await client.select(5);
          await client.set('in-db-5', 'before the restart');
        }
        if (isSet(event, 'in-db-5')) break; // closes the listener
      }
      const saved = first.checkpoint;
      expect(saved).toMatchObject({ db: 5 });
      // While no listener runs: no SELECT is replicated again, so the db must come from the checkpoint.
      await client.set('gap-1', 'a');
      await client.set('gap-2', 'b');
      expect(await stats(master)).toEqual({ full: 1, partial: 0 });

      await using second = new ReplicaListener({ port: master.port, ...saved });
      const recorder = new Recorder(second);
      await recorder.untilSet('gap-2');
      // (The master's own PINGs may come in between, whenever they are due.)
      const commands = recorder.commands().filter((c) => c.name !== 'PING');
      expect(recorder.kinds().slice(0, 2)).toEqual(['connected', 'continued']);
      expect(recorder.kinds()).not.toContain('full-sync-start');
      expect(recorder.events[1]).toMatchObject({ kind: 'continued', replId: saved?.replId, offset: saved?.replOffset });
      const firstCommand = recorder.commands()[0];
      expect((firstCommand?.offset ?? 0) - (firstCommand?.size ?? 0)).toBe(saved?.replOffset);
      const [gap1, gap2] = commands;
      expect(commands).toHaveLength(2);
      expect([gap1, gap2].map((c) => [c?.args[0]?.toString(), c?.db])).toEqual([
        ['gap-1', 5],
        ['gap-2', 5],
      ]);
      expect(await stats(master)).toEqual({ full: 1, partial: 1 });
      await client.select(0);
      await client.set('after', 'resume');
      await recorder.untilSet('after');
      expectContiguous(recorder.events);
      await expectSameOffset(master, second);
    });

    it('follows the master through a restart', async () => {
      await using master = await spawnRedis({ binary });
      await master.createClient({ protocol: 2 }).set('before', 'restart');
      await using listener = new ReplicaListener({ port: master.port, reconnect: { initialDelay: 50, maxDelay: 200 } });
      const recorder = new Recorder(listener);
      await recorder.until((e) => e.kind === 'snapshot-done');
      // The restart SAVEs first, which a master refuses while its replication fork is alive.
      await waitFor('the fork to end', async () => (await master.info('persistence')).rdb_bgsave_in_progress === '0');
      await master.restart();
      const lost = await recorder.until((e) => e.kind === 'reconnecting', { timeoutMs: 30_000 });
      expect(lost).toMatchObject({ error: { code: 'ERR_REPLICATION_CONNECTION_LOST' } });
      // A restarted master resumes its replicas when it can, else sends a new snapshot: either
      // way the data is all there, and the stream has no gap.
      const again = await recorder.until((e) => e.kind === 'continued' || e.kind === 'snapshot-done', {
        from: recorder.events.indexOf(lost),
        timeoutMs: 30_000,
      });
      if (again.kind === 'snapshot-done')
        expect(snapshotEntries(recorder.events).map((e) => e.key)).toContain('before');
      const client = master.createClient({ protocol: 2 });
      await client.set('after', 'restart');
      await recorder.untilSet('after', { timeoutMs: 30_000 });
      expectContiguous(recorder.events);
      await expectSameOffset(master, listener);
    });

    it('survives a connection cut during the snapshot with a new full sync', async () => {
      await using master = await spawnRedis({ binary, config: { 'repl-diskless-sync': 'no' } });
      const client = master.createClient({ protocol: 2 });
      await client.call('DEBUG', 'POPULATE', 20_000, 'key', 100);
      await using proxy = await startProxy({ target: master });
      proxy.cutAfter(300_000, 'downstream');
      await using listener = new ReplicaListener({ port: proxy.port, reconnect: { initialDelay: 50, maxDelay: 200 } });
      const recorder = new Recorder(listener);
      await recorder.until((e) => e.kind === 'snapshot-done');
      const lost = recorder.events.find((e) => e.kind === 'reconnecting');
      expect(lost).toMatchObject({
        kind: 'reconnecting',
        replId: '?',
        offset: -1,
        error: {
          code: 'ERR_REPLICATION_CONNECTION_LOST',
          phase: 'transfer',
          message: expect.stringMatching(/cut the snapshot short/),
        },
      });
      expect(recorder.kinds().filter((k) => k === 'full-sync-start')).toHaveLength(2);
      expect(snapshotEntries(recorder.events)).toHaveLength(20_000);
      expect(listener.checkpoint).toMatchObject({ replId: (await master.info('replication')).master_replid });
      expect(await stats(master)).toEqual({ full: 2, partial: 0 });
    });

    it('survives a connection cut during the stream and resumes with only the missed commands', async () => {
      await using master = await spawnRedis({ binary });
      const client = master.createClient({ protocol: 2 });
      await using proxy = await startProxy({ target: master });
      await using listener = new ReplicaListener({ port: proxy.port, reconnect: { initialDelay: 50, maxDelay: 200 } });
      const recorder = new Recorder(listener);
      await recorder.until((e) => e.kind === 'snapshot-done');
      for (let i = 0; i < 50; i++) await client.set(`a${i}`, String(i));
      await recorder.untilSet('a49');
      proxy.cut();
      for (let i = 0; i < 50; i++) await client.set(`b${i}`, String(i));
      await recorder.untilSet('b49', { timeoutMs: 30_000 });
      const keys = recorder
        .commands()
        .filter((c) => c.name === 'SET')
        .map((c) => c.args[0]?.toString());
      expect(keys).toEqual([
        ...Array.from({ length: 50 }, (_, i) => `a${i}`),
        ...Array.from({ length: 50 }, (_, i) => `b${i}`),
      ]);
      expect(recorder.kinds().filter((k) => k === 'full-sync-start')).toHaveLength(1);
      expect(recorder.kinds()).toContain('continued');
      expectContiguous(recorder.events);
      expect((await stats(master)).partial).toBeGreaterThanOrEqual(1);
      await expectSameOffset(master, listener);
    });
  },
);
