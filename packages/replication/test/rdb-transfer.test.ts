// The snapshot framing of a full sync: synthetic frames split anywhere, broken frames, and real
// masters sending disk-based and diskless snapshots to a raw socket that asked for them with PSYNC.
import { spawnRedis, versionAtLeast } from '@redis-events/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RdbEvent, RdbTransfer, ReplicationError } from '../src/index.ts';
import { entries, parseBytes, plain } from './event-helpers.ts';
import { rawReplica, replicationMatrix, resp } from './raw-replica.ts';
import { RdbWriter } from './rdb-writer.ts';

const rdb = new RdbWriter(11)
  .selectDb(0)
  .stringValue('a', '1')
  .linkedList(
    'l',
    Array.from({ length: 100 }, (_, i) => `e${i}`),
  )
  .end();
const mark = Buffer.from('0123456789abcdef0123456789abcdef01234567');
const commands = Buffer.from('*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
const disk = Buffer.concat([Buffer.from('\n\n\n'), Buffer.from(`$${rdb.length}\r\n`), rdb, commands]);
const diskless = Buffer.concat([Buffer.from('\n'), Buffer.from(`$EOF:${mark}\r\n`), rdb, mark, commands]);

function feed(transfer: RdbTransfer, data: Buffer, cuts: readonly number[]): { events: RdbEvent[]; rest: Buffer } {
  const events: RdbEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    if (cut <= at) continue;
    for (const e of transfer.write(data.subarray(at, cut))) events.push(e);
    at = cut;
  }
  return { events, rest: transfer.takeRemainder() };
}

describe('RdbTransfer', () => {
  const reference = JSON.stringify(entries(parseBytes(rdb)));

  for (const [name, data, isDiskless] of [
    ['disk ($<length>)', disk, false],
    ['diskless ($EOF:<mark>)', diskless, true],
  ] as const) {
    it(`reads a ${name} snapshot split anywhere and hands out the command stream after it`, () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: data.length - 1 }), { maxLength: 60 }), (cuts) => {
          const transfer = new RdbTransfer();
          const { events, rest } = feed(
            transfer,
            data,
            [...cuts].sort((a, b) => a - b),
          );
          expect(transfer.done).toBe(true);
          expect(transfer.diskless).toBe(isDiskless);
          expect(transfer.received).toBe(rdb.length);
          expect(JSON.stringify(entries(events))).toBe(reference);
          expect(rest.toString()).toBe(commands.toString());
          transfer.end();
        }),
        { numRuns: 150 },
      );
    });
  }

  for (const [name, data, isDiskless] of [
    ['disk ($<length>)', disk, false],
    ['diskless ($EOF:<mark>)', diskless, true],
  ] as const) {
    it(`skips a ${name} snapshot in discard mode, split anywhere, and finds where it ends`, () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: data.length - 1 }), { maxLength: 60 }), (cuts) => {
          const transfer = new RdbTransfer({ discard: true });
          const { events, rest } = feed(
            transfer,
            data,
            [...cuts].sort((a, b) => a - b),
          );
          expect(events).toEqual([]);
          expect(transfer.done).toBe(true);
          expect(transfer.diskless).toBe(isDiskless);
          expect(transfer.received).toBe(rdb.length);
          expect(rest.toString()).toBe(commands.toString());
        }),
        { numRuns: 150 },
      );
      // Byte by byte: the mark is found across 40 chunk boundaries.
      const transfer = new RdbTransfer({ discard: true });
      const { rest } = feed(
        transfer,
        data,
        Array.from({ length: data.length - 1 }, (_, i) => i + 1),
      );
      expect(transfer.received).toBe(rdb.length);
      expect(rest.toString()).toBe(commands.toString());
    });
  }

  it('in discard mode, reports received bytes as they come and a cut transfer as truncated', () => {
    const transfer = new RdbTransfer({ discard: true });
    const header = diskless.indexOf('\r\n') + 2;
    transfer.write(diskless.subarray(0, header + 100));
    // The last 39 bytes may be the start of the mark: they count once they are known not to be.
    expect(transfer.received).toBe(100 - 39);
    expect(transfer.done).toBe(false);
    expect(() => transfer.end()).toThrow(expect.objectContaining({ code: 'ERR_RDB_TRUNCATED' }));
    const wrongMark = new RdbTransfer({ discard: true });
    wrongMark.write(Buffer.concat([Buffer.from(`$EOF:${mark}\r\n`), rdb, Buffer.from('x'.repeat(40))]));
    expect(wrongMark.done).toBe(false);
  });

  it('counts keep-alives and announces the size of a disk transfer', () => {
    const transfer = new RdbTransfer();
    transfer.write(disk.subarray(0, 10));
    expect(transfer.keepAlives).toBe(3);
    expect(transfer.size).toBe(rdb.length);
  });

  it('rejects broken framing with ERR_REPLICATION_PROTOCOL', () => {
    const cases: Buffer[] = [
      Buffer.from('+OK\r\n'),
      Buffer.from(`$${'1'.repeat(70)}\r\n`),
      Buffer.from('$12x\r\n'),
      Buffer.from('$EOF:short\r\n'),
      Buffer.from('$0\r\n'),
      Buffer.from('$10\n'),
      Buffer.concat([Buffer.from(`$EOF:${mark}\r\n`), rdb, Buffer.from('x'.repeat(40))]),
      Buffer.concat([Buffer.from(`$${rdb.length + 5}\r\n`), rdb, Buffer.from('12345')]),
    ];
    for (const data of cases) {
      const transfer = new RdbTransfer();
      let error: unknown;
      try {
        transfer.write(data);
      } catch (err) {
        error = err;
      }
      expect(error, data.toString('latin1').slice(0, 30)).toBeInstanceOf(ReplicationError);
      expect((error as ReplicationError).code).toBe('ERR_REPLICATION_PROTOCOL');
      expect(() => transfer.write(Buffer.from('x'))).toThrow(ReplicationError);
    }
  });

  it('says how many bytes an announced length is too long, even when the command stream follows at once', () => {
    const transfer = new RdbTransfer();
    const data = Buffer.concat([Buffer.from(`$${rdb.length + 10}\r\n`), rdb, commands]);
    expect(() => transfer.write(data)).toThrow(/the RDB ended 10 bytes before the announced length/);
  });

  it('with `into`, keeps the events a chunk completed before a failure', () => {
    const damaged = Buffer.from(rdb);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 0xff; // the checksum
    const events: RdbEvent[] = [];
    const transfer = new RdbTransfer();
    expect(() => transfer.write(Buffer.concat([Buffer.from(`$${rdb.length}\r\n`), damaged, commands]), events)).toThrow(
      expect.objectContaining({ code: 'ERR_RDB_CHECKSUM' }),
    );
    expect(events.filter((e) => e.kind === 'entry').map((e) => e.key.toString())).toEqual(['a', 'l']);
    expect(transfer.diskless).toBe(false);
    expect(new RdbTransfer().diskless).toBeUndefined();
  });

  it('reports a snapshot cut by the connection or by a short length as truncated', () => {
    const cut = new RdbTransfer();
    cut.write(disk.subarray(0, 40));
    expect(() => cut.end()).toThrow(expect.objectContaining({ code: 'ERR_RDB_TRUNCATED' }));
    const short = new RdbTransfer();
    expect(() => short.write(Buffer.concat([Buffer.from(`$${rdb.length - 5}\r\n`), rdb]))).toThrow(
      expect.objectContaining({ code: 'ERR_RDB_TRUNCATED' }),
    );
    const closedDuringMark = new RdbTransfer();
    closedDuringMark.write(diskless.subarray(0, diskless.length - commands.length - 10));
    expect(() => closedDuringMark.end()).toThrow(expect.objectContaining({ code: 'ERR_RDB_TRUNCATED' }));
  });
});

// ---------------------------------------------------------------- real masters

describe.each((await replicationMatrix()).map((s) => [s.name, s] as const))(
  'a full sync from a real master (%s)',
  (_name, binary) => {
    for (const diskless of [false, true]) {
      it(`reads the ${diskless ? 'diskless' : 'disk-based'} snapshot, then the command stream`, async () => {
        await using master = await spawnRedis({ binary, config: { 'repl-diskless-sync': diskless ? 'yes' : 'no' } });
        const client = master.createClient({ protocol: 2 });
        await client.set('before', 'snapshot');
        await client.rpush('list', 'a', 'b', 'c');
        let acks: NodeJS.Timeout | undefined;
        const valkey9 = binary.version.flavor === 'valkey' && versionAtLeast(binary.version, 'valkey 9');
        const replconf = [
          ['listening-port', '0'],
          ...(diskless ? [['capa', 'eof', 'capa', 'psync2']] : [['capa', 'psync2']]),
        ];
        if (valkey9)
          replconf.push(['version', `${binary.version.major}.${binary.version.minor}.${binary.version.patch}`]);
        const sync = rawReplica(
          master.port,
          replconf,
          (after) => after.includes('synced-after'),
          (socket, offset) => {
            // A diskless master starts the command stream on an ACK received after it reaped its fork,
            // so, like a real replica, ACK periodically (Redis replicas: every second).
            const ack = () => {
              if (!socket.destroyed) socket.write(resp('REPLCONF', 'ACK', offset));
            };
            acks = setInterval(ack, 100);
            ack();
            void client.set('after', 'synced-after');
          },
        );
        const { transfer, events, after, replyLine } = await sync.finally(() => clearInterval(acks));
        expect(replyLine).toMatch(/^\+FULLRESYNC [0-9a-f]{40} \d+$/);
        expect(transfer.diskless).toBe(diskless);
        expect(events[0]).toMatchObject({ kind: 'header', magic: valkey9 ? 'VALKEY' : 'REDIS' });
        expect(events.at(-1)).toMatchObject({ kind: 'end', checksumVerified: true });
        expect(plain(entries(events).map((e) => [e.key, e.value]))).toEqual(
          expect.arrayContaining([
            ['before', 'snapshot'],
            ['list', ['a', 'b', 'c']],
          ]),
        );
        // What follows the snapshot is RESP: the commands written after it.
        expect(after.toString('latin1')).toMatch(/\*3\r\n\$3\r\nSET\r\n\$5\r\nafter\r\n\$12\r\nsynced-after\r\n/i);
      });
    }
  },
);
