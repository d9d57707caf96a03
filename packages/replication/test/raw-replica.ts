// A raw replica for tests, written by hand on a socket (the live listener comes in phase 2):
// the handshake one command at a time, PSYNC, the snapshot through RdbTransfer, then the bytes of
// the command stream until a condition holds.
import { connect, type Socket } from 'node:net';
import { listServers, type ServerBinary, selectedServers, versionAtLeast } from '@redis-events/testkit';
import { type RdbEvent, RdbTransfer } from '../src/index.ts';

export function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

export interface RawSync {
  transfer: RdbTransfer;
  events: RdbEvent[];
  /** Bytes of the command stream received after the snapshot. */
  after: Buffer;
  /** `+FULLRESYNC <replid> <offset>`. */
  replyLine: string;
}

/**
 * Syncs from a master on `port` and resolves once `until(after)` holds. `onSnapshot` runs when
 * the snapshot is complete, with the socket and the offset of the FULLRESYNC reply.
 */
export async function rawReplica(
  port: number,
  replconf: string[][],
  until: (after: Buffer) => boolean,
  onSnapshot: (socket: Socket, offset: string) => void,
): Promise<RawSync> {
  const socket = connect({ host: '127.0.0.1', port });
  const transfer = new RdbTransfer();
  const events: RdbEvent[] = [];
  let pending = Buffer.alloc(0);
  let replies = 0;
  const expectedReplies = 1 + replconf.length;
  let replyLine = '';
  let after: Buffer = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`raw replica timed out; after the snapshot: ${JSON.stringify(after.toString('latin1').slice(-300))}`),
      );
    }, 20_000);
    socket.on('error', reject);
    // One command at a time: a master refuses PSYNC while replies to earlier commands are pending.
    const handshake = [resp('PING'), ...replconf.map((r) => resp('REPLCONF', ...r)), resp('PSYNC', '?', '-1')];
    socket.on('connect', () => socket.write(handshake[0] as string));
    socket.on('data', (chunk: Buffer) => {
      try {
        if (!replyLine) {
          pending = Buffer.concat([pending, chunk]);
          for (;;) {
            const nl = pending.indexOf('\r\n');
            if (nl < 0) return;
            const line = pending.subarray(0, nl).toString();
            pending = pending.subarray(nl + 2);
            if (replies < expectedReplies) {
              if (!line.startsWith('+')) throw new Error(`handshake reply ${line}`);
              replies++;
              socket.write(handshake[replies] as string);
              continue;
            }
            replyLine = line;
            chunk = pending;
            break;
          }
        }
        if (!transfer.done) {
          for (const e of transfer.write(chunk)) events.push(e);
          if (!transfer.done) return;
          after = transfer.takeRemainder();
          onSnapshot(socket, replyLine.split(' ')[2] ?? '0');
        } else {
          after = Buffer.concat([after, chunk]);
        }
        if (until(after)) {
          clearTimeout(timer);
          socket.destroy();
          resolve({ transfer, events, after, replyLine });
        }
      } catch (err) {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      }
    });
  });
}

/** The oldest and newest server of each flavour (all of them when REDIS_SERVER selects). */
export async function replicationMatrix(): Promise<ServerBinary[]> {
  if (process.env.REDIS_SERVER || process.env.REDIS_SERVER_BIN) return selectedServers();
  const all = [...(await selectedServers({ PATH: process.env.PATH })), ...(await listServers())];
  const next: Record<string, string> = { '7.0': '7.1', '8.6': '8.7', 'valkey 9': 'valkey 10' };
  return all.filter((s) =>
    Object.entries(next).some(([v, n]) => versionAtLeast(s.version, v) && !versionAtLeast(s.version, n)),
  );
}

/** Splits a replication stream into its commands (RESP arrays of bulk strings), with their sizes. */
export function decodeCommands(stream: Buffer): { args: Buffer[]; size: number }[] {
  const out: { args: Buffer[]; size: number }[] = [];
  let p = 0;
  const line = (): string => {
    const nl = stream.indexOf('\r\n', p);
    if (nl < 0) throw new Error('incomplete');
    const text = stream.subarray(p, nl).toString('latin1');
    p = nl + 2;
    return text;
  };
  while (p < stream.length) {
    const start = p;
    try {
      const head = line();
      if (!head.startsWith('*')) throw new Error(`not an array: ${head}`);
      const args: Buffer[] = [];
      for (let n = Number(head.slice(1)); n > 0; n--) {
        const len = Number(line().slice(1));
        if (p + len + 2 > stream.length) throw new Error('incomplete');
        args.push(stream.subarray(p, p + len));
        p += len + 2;
      }
      out.push({ args, size: p - start });
    } catch (err) {
      if ((err as Error).message === 'incomplete') break;
      throw err;
    }
  }
  return out;
}
