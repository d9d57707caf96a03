// One connection of a replica listener, after the handshake: it writes PSYNC on the raw
// socket and reads, in order, the PSYNC reply (after any newline keep-alives), the snapshot of
// a full sync (through RdbTransfer), then the command stream (through CommandStreamDecoder).
// It sends REPLCONF ACK, watches the read and write timeouts, and reports everything it reads
// as events to its owner, which queues and delivers them. A link lives until its socket closes.

import type { Socket } from 'node:net';
import { encodeCommand } from '@redis-events/resp';
import { CommandStreamDecoder } from './command-stream.ts';
import {
  finishTrace,
  type ReplicationSyncContext,
  startTrace,
  syncChannel,
  syncProgressChannel,
} from './diagnostics.ts';
import { RdbError, ReplicationError, ReplicationLinkError } from './errors.ts';
import { replyFailure } from './master-handshake.ts';
import type { RdbAuxEvent, RdbEvent } from './rdb-events.ts';
import type { RdbParserOptions } from './rdb-parser.ts';
import { RdbTransfer } from './rdb-transfer.ts';
import type { CommandEvent, ReplicationEvent } from './replication-events.ts';

/** Where a link starts: a full sync (`replId` `?`), or a resume after `offset`. */
export interface LinkStart {
  readonly replId: string;
  /** The offset of the last byte already read; -1 with `replId` `?`. */
  readonly offset: number;
  readonly db: number;
  readonly inTransaction: boolean;
}

/** Fixed settings of every link of a listener. */
export interface LinkSettings {
  readonly master: string;
  /** For diagnostics: the master's host (or socket path) and port. */
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly readTimeout: number;
  readonly writeTimeout: number;
  readonly ackInterval: number;
  readonly progressInterval: number;
  readonly discardRdb: boolean;
  readonly aof: boolean;
  readonly rdb: RdbParserOptions;
  readonly maxArgumentBytes: number | undefined;
}

/** What a link reports to its owner. */
export interface LinkOwner {
  /** Events in stream order; `bytes`: how much input they came from (the owner's memory budget). */
  push(events: ReplicationEvent[], bytes: number): void;
  /**
   * A full sync's snapshot starts (`full`, its header read), the stream continues after PSYNC
   * (`continue`), or the snapshot was read whole (`snapshot`); `offset` is the stream position.
   */
  milestone(kind: 'full' | 'continue' | 'snapshot', offset: number): void;
  /** The offset to report in `REPLCONF ACK`. */
  ackOffset(): number;
  /** The master answered PSYNC. */
  answered(result: 'full' | 'continue'): void;
  /** Every `ackInterval` while the command stream is read (the lag diagnostics). */
  tick(link: MasterLink): void;
  /** The link is over: `error` says why, `undefined` when a snapshot-only sync completed. Called once. */
  ended(link: MasterLink, error: Error | undefined): void;
}

const P_REPLY = 0;
const P_TRANSFER = 1;
const P_STREAM = 2;
const P_ENDED = 3;

/** The longest PSYNC reply line (`+FULLRESYNC <40> <offset>` is about 70 bytes). */
const MAX_REPLY_LINE = 512;
/** Extra ACKs right after a snapshot: the master starts the stream on the first ACK after it reaped its fork. */
const EARLY_ACKS_MS = [100, 300];
const EMPTY = Buffer.alloc(0);

/** One replica connection from PSYNC to close. */
export class MasterLink {
  readonly #socket: Socket;
  readonly #settings: LinkSettings;
  readonly #owner: LinkOwner;
  readonly #start: LinkStart;
  #head: Buffer;
  #phase = P_REPLY;
  #answered = false;
  #reply: Buffer = EMPTY;
  #replId: string;
  #fullOffset = -1;
  #transfer: RdbTransfer | undefined;
  #announced = false;
  #streamDb = 0;
  #lastProgress = 0;
  #commands: CommandStreamDecoder | undefined;
  /** The stream position is known (a completed snapshot, or a continuation). */
  #synced = false;
  #readPaused = false;
  #lastRead = Date.now();
  #lastError: Error | undefined;
  #readTimer: ReturnType<typeof setTimeout> | undefined;
  #writeTimer: ReturnType<typeof setTimeout> | undefined;
  #ackTimers: ReturnType<typeof setTimeout>[] = [];
  #ackInterval: ReturnType<typeof setInterval> | undefined;
  #bytes = 0;
  /** The full sync being traced on `redis-events:replication:sync`, when someone subscribes. */
  #syncTrace: ReplicationSyncContext | undefined;
  #syncKeys = 0;

  constructor(socket: Socket, head: Buffer, start: LinkStart, settings: LinkSettings, owner: LinkOwner) {
    this.#socket = socket;
    this.#settings = settings;
    this.#owner = owner;
    this.#start = start;
    this.#replId = start.replId;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) => {
      this.#lastError = err;
    });
    socket.on('close', () => this.#onClose());
    socket.on('drain', () => this.#clearWriteTimer());
    this.#head = head;
  }

  /** Sends PSYNC and starts reading (the bytes that came with the handshake first). */
  begin(): void {
    const start = this.#start;
    const psync =
      start.replId === '?' || start.offset < 0
        ? ['PSYNC', '?', '-1']
        : ['PSYNC', start.replId, String(start.offset + 1)];
    this.#write(encodeCommand(psync));
    this.#armReadTimer();
    const head = this.#head;
    this.#head = EMPTY;
    if (head.length > 0) this.#onData(head);
    if (this.#phase !== P_ENDED && !this.#readPaused) this.#socket.resume();
  }

  /** Bytes received on this link after the handshake. */
  get bytesReceived(): number {
    return this.#bytes;
  }

  /** Where a new link should resume: the stream position when known, else a new full sync. */
  get resumeState(): LinkStart {
    if (!this.#answered) return this.#start;
    const commands = this.#commands;
    if (!this.#synced || !commands) return { replId: '?', offset: -1, db: 0, inTransaction: false };
    return { replId: this.#replId, offset: commands.offset, db: commands.db, inTransaction: commands.inTransaction };
  }

  /** The snapshot transfer in progress: RDB bytes received and announced. */
  get progress(): { readonly bytes: number; readonly total?: number | undefined } | undefined {
    const transfer = this.#transfer;
    if (this.#phase !== P_TRANSFER || !transfer) return undefined;
    return transfer.size === undefined
      ? { bytes: transfer.received }
      : { bytes: transfer.received, total: transfer.size };
  }

  /** True once the command stream is being read. */
  get streaming(): boolean {
    return this.#phase === P_STREAM;
  }

  /** The replication offset of the last byte read: the stream's, or during a snapshot the offset it stands for. */
  get receivedOffset(): number {
    return this.#commands?.offset ?? (this.#fullOffset >= 0 ? this.#fullOffset : this.#start.offset);
  }

  /** The replication ID the link follows. */
  get replId(): string {
    return this.#replId;
  }

  /** Stops reading the socket (the owner's queue is full); the read timeout is suspended. */
  pauseReading(): void {
    if (this.#readPaused || this.#phase === P_ENDED) return;
    this.#readPaused = true;
    this.#socket.pause();
  }

  /** True while {@link pauseReading} holds. */
  get readingPaused(): boolean {
    return this.#readPaused;
  }

  /** Reads again after {@link pauseReading}. */
  resumeReading(): void {
    if (!this.#readPaused || this.#phase === P_ENDED) return;
    this.#readPaused = false;
    this.#lastRead = Date.now();
    this.#socket.resume();
  }

  /** Sends `REPLCONF ACK <offset>` (only in the stream phase: before it, the master expects none). */
  ack(offset: number): void {
    if (this.#phase !== P_STREAM || offset < 0) return;
    this.#write(encodeCommand(['REPLCONF', 'ACK', String(offset)]));
  }

  /** Closes the socket; the owner gets `ended` with `reason`. */
  destroy(reason: Error): void {
    this.#end(reason);
  }

  // ---------------------------------------------------------------- reading

  #onData(chunk: Buffer): void {
    if (this.#phase === P_ENDED) return;
    this.#lastRead = Date.now();
    this.#bytes += chunk.length;
    try {
      let rest = chunk;
      if (this.#phase === P_REPLY) rest = this.#readReply(rest);
      if (rest.length > 0 && this.#phase === P_TRANSFER) rest = this.#readTransfer(rest);
      if (rest.length > 0 && this.#phase === P_STREAM) {
        const commands: CommandEvent[] = [];
        try {
          (this.#commands as CommandStreamDecoder).feed(rest, commands);
        } finally {
          // On a failure, the commands before it are delivered first.
          if (commands.length > 0) this.#owner.push(commands, rest.length);
        }
      }
    } catch (err) {
      this.#end(this.#broken(err));
    }
  }

  /** Reads the PSYNC reply line, skipping keep-alive newlines; returns the bytes after it. */
  #readReply(chunk: Buffer): Buffer {
    let buf = this.#reply.length > 0 ? Buffer.concat([this.#reply, chunk]) : chunk;
    let start = 0;
    while (start < buf.length && buf[start] === 0x0a) start++; // keep-alives while the master prepares
    buf = buf.subarray(start);
    const lf = buf.indexOf(0x0a);
    if (lf < 0) {
      if (buf.length > MAX_REPLY_LINE)
        throw this.#protocol('the PSYNC reply is longer than 512 bytes without a line end');
      this.#reply = Buffer.from(buf);
      return EMPTY;
    }
    this.#reply = EMPTY;
    this.#answered = true;
    if (lf === 0 || buf[lf - 1] !== 0x0d)
      throw this.#protocol(
        `the PSYNC reply ${JSON.stringify(buf.subarray(0, lf + 1).toString('latin1'))} does not end with CRLF`,
      );
    const line = buf.subarray(0, lf - 1).toString('latin1');
    const rest = buf.subarray(lf + 1);
    const full = /^\+FULLRESYNC ([^ ]{40}) (\d{1,18})$/.exec(line);
    if (full) {
      this.#replId = full[1] as string;
      this.#fullOffset = Number(full[2]);
      this.#commands = undefined;
      this.#synced = false;
      this.#transfer = new RdbTransfer({ ...this.#settings.rdb, discard: this.#settings.discardRdb });
      this.#phase = P_TRANSFER;
      this.#lastProgress = Date.now();
      this.#owner.answered('full');
      return rest;
    }
    const resumed = /^\+CONTINUE(?: ([^ ]{40}))?$/.exec(line);
    if (resumed) {
      const start = this.#start;
      if (start.offset < 0) throw this.#protocol('the master answered PSYNC ? -1 with +CONTINUE');
      if (resumed[1] !== undefined) this.#replId = resumed[1];
      this.#owner.answered('continue');
      this.#owner.milestone('continue', start.offset);
      this.#startStream(
        new CommandStreamDecoder({
          offset: start.offset,
          db: start.db,
          inTransaction: start.inTransaction,
          ...(this.#settings.maxArgumentBytes !== undefined
            ? { maxArgumentBytes: this.#settings.maxArgumentBytes }
            : {}),
        }),
      );
      this.#owner.push([{ kind: 'continued', replId: this.#replId, offset: start.offset }], 0);
      return rest;
    }
    if (line.startsWith('-')) {
      const step = this.#start.offset < 0 ? 'PSYNC ? -1' : `PSYNC ${this.#start.replId} ${this.#start.offset + 1}`;
      throw replyFailure(line.slice(1), step, this.#settings.master, 'psync');
    }
    throw this.#protocol(
      `expected +FULLRESYNC or +CONTINUE in reply to PSYNC, got ${JSON.stringify(line.slice(0, 80))}`,
    );
  }

  /** Feeds the snapshot; returns the bytes after it once it is complete. */
  #readTransfer(chunk: Buffer): Buffer {
    const transfer = this.#transfer as RdbTransfer;
    const rdb: RdbEvent[] = [];
    let failure: unknown;
    try {
      transfer.write(chunk, rdb);
    } catch (err) {
      failure = err;
    }
    const events: ReplicationEvent[] = [];
    if (!this.#announced && transfer.diskless !== undefined) {
      this.#announced = true;
      this.#owner.milestone('full', this.#fullOffset);
      const size = transfer.size;
      if (syncChannel.hasSubscribers) {
        this.#syncKeys = 0;
        this.#syncTrace = {
          serverAddress: this.#settings.serverAddress,
          serverPort: this.#settings.serverPort,
          replId: this.#replId,
          offset: this.#fullOffset,
          diskless: transfer.diskless,
          size,
          startedAt: Date.now(),
        };
        startTrace(syncChannel, this.#syncTrace);
      }
      events.push({
        kind: 'full-sync-start',
        replId: this.#replId,
        offset: this.#fullOffset,
        diskless: transfer.diskless,
        ...(size !== undefined ? { size } : {}),
      });
    }
    const counting = this.#syncTrace !== undefined;
    for (const event of rdb) {
      if (event.kind === 'aux') this.#streamDbFrom(event);
      else if (counting && event.kind === 'entry' && event.last) this.#syncKeys++;
      events.push(event);
    }
    if (failure !== undefined) {
      // The events before the failure are delivered first.
      if (events.length > 0) this.#owner.push(events, chunk.length);
      throw failure;
    }
    if (!transfer.done) {
      const now = Date.now();
      if (this.#announced && now - this.#lastProgress >= this.#settings.progressInterval) {
        this.#lastProgress = now;
        events.push(this.#progressEvent(transfer));
      }
      if (events.length > 0) this.#owner.push(events, chunk.length);
      return EMPTY;
    }
    const rest = transfer.takeRemainder();
    const trace = this.#syncTrace;
    if (trace) {
      this.#syncTrace = undefined;
      trace.bytes = transfer.received;
      trace.keys = this.#syncKeys;
      finishTrace(syncChannel, trace);
    }
    events.push(this.#progressEvent(transfer), {
      kind: 'snapshot-done',
      replId: this.#replId,
      offset: this.#fullOffset,
      db: this.#streamDb,
    });
    this.#transfer = undefined;
    this.#owner.milestone('snapshot', this.#fullOffset);
    this.#startStream(
      new CommandStreamDecoder({
        offset: this.#fullOffset,
        db: this.#streamDb,
        ...(this.#settings.maxArgumentBytes !== undefined ? { maxArgumentBytes: this.#settings.maxArgumentBytes } : {}),
      }),
    );
    this.#owner.push(events, chunk.length - rest.length);
    if (!this.#settings.aof) {
      this.#end(undefined);
      return EMPTY;
    }
    return rest;
  }

  /** `repl-stream-db`: the database the command stream is in where the snapshot ends. */
  #streamDbFrom(event: RdbAuxEvent): void {
    if (event.name !== 'repl-stream-db') return;
    const text = event.value.toString('latin1');
    if (/^\d{1,9}$/.test(text)) this.#streamDb = Number(text);
  }

  #progressEvent(transfer: RdbTransfer): ReplicationEvent {
    const total = transfer.size;
    if (syncProgressChannel.hasSubscribers)
      syncProgressChannel.publish({
        serverAddress: this.#settings.serverAddress,
        serverPort: this.#settings.serverPort,
        replId: this.#replId,
        bytes: transfer.received,
        total,
      });
    return total === undefined
      ? { kind: 'sync-progress', bytes: transfer.received }
      : { kind: 'sync-progress', bytes: transfer.received, total };
  }

  #startStream(commands: CommandStreamDecoder): void {
    this.#commands = commands;
    this.#synced = true;
    this.#phase = P_STREAM;
    this.ack(this.#owner.ackOffset());
    for (const delay of EARLY_ACKS_MS) {
      const timer = setTimeout(() => this.ack(this.#owner.ackOffset()), delay);
      timer.unref();
      this.#ackTimers.push(timer);
    }
    this.#ackInterval = setInterval(() => {
      this.ack(this.#owner.ackOffset());
      this.#owner.tick(this);
    }, this.#settings.ackInterval);
    this.#ackInterval.unref();
  }

  // ---------------------------------------------------------------- writing and timeouts

  #write(data: Buffer): void {
    if (this.#phase === P_ENDED || this.#socket.destroyed) return;
    if (this.#socket.write(data) || this.#writeTimer !== undefined || this.#settings.writeTimeout <= 0) return;
    const timeout = this.#settings.writeTimeout;
    this.#writeTimer = setTimeout(() => {
      this.#writeTimer = undefined;
      this.#end(
        new ReplicationLinkError(
          'ERR_REPLICATION_TIMEOUT',
          `the master took more than writeTimeout ${timeout} ms to accept our writes`,
          this.#settings.master,
          this.#phaseName(),
        ),
      );
    }, timeout);
    this.#writeTimer.unref();
  }

  #clearWriteTimer(): void {
    if (this.#writeTimer !== undefined) clearTimeout(this.#writeTimer);
    this.#writeTimer = undefined;
  }

  /** The read timeout counts only while reading; a pause for backpressure suspends it. */
  #armReadTimer(delay = this.#settings.readTimeout): void {
    if (this.#settings.readTimeout <= 0) return;
    this.#readTimer = setTimeout(() => {
      this.#readTimer = undefined;
      if (this.#phase === P_ENDED) return;
      const idle = Date.now() - this.#lastRead;
      const timeout = this.#settings.readTimeout;
      if (this.#readPaused || idle < timeout) {
        this.#armReadTimer(this.#readPaused ? timeout : timeout - idle);
        return;
      }
      this.#end(
        new ReplicationLinkError(
          'ERR_REPLICATION_TIMEOUT',
          `nothing arrived for readTimeout ${timeout} ms (a master PINGs its replicas every repl-ping-replica-period, 10 s by default)`,
          this.#settings.master,
          this.#phaseName(),
        ),
      );
    }, delay);
    this.#readTimer.unref();
  }

  // ---------------------------------------------------------------- ending

  #onClose(): void {
    if (this.#phase === P_ENDED) return;
    // The cause is the socket's own error, if any: a failure is wrapped once, so the snapshot cut
    // short is said in the message, not as an RdbError inside this one.
    const cause: Error | undefined = this.#lastError;
    let cut = '';
    if (this.#phase === P_TRANSFER) {
      try {
        this.#transfer?.end();
      } catch {
        cut = ', which cut the snapshot short: a new full sync follows';
      }
    }
    const what =
      this.#phase === P_REPLY
        ? 'before answering PSYNC'
        : this.#phase === P_TRANSFER
          ? `during the snapshot transfer (${this.#transfer?.received ?? 0} RDB bytes received${cut})`
          : `after replication offset ${this.#commands?.offset ?? 0}`;
    this.#end(
      new ReplicationLinkError(
        'ERR_REPLICATION_CONNECTION_LOST',
        `the connection closed ${what}${this.#lastError ? `: ${this.#lastError.message}` : ''}`,
        this.#settings.master,
        this.#phaseName(),
        cause ? { cause } : undefined,
      ),
    );
  }

  #end(error: Error | undefined): void {
    if (this.#phase === P_ENDED) return;
    const phase = this.#phase;
    this.#phase = P_ENDED;
    // Keep the phase for resumeState: a snapshot cut in the middle means a new full sync.
    if (phase === P_TRANSFER) this.#synced = false;
    if (this.#readTimer !== undefined) clearTimeout(this.#readTimer);
    this.#clearWriteTimer();
    for (const timer of this.#ackTimers) clearTimeout(timer);
    if (this.#ackInterval !== undefined) clearInterval(this.#ackInterval);
    this.#socket.destroy();
    const trace = this.#syncTrace;
    if (trace) {
      this.#syncTrace = undefined;
      trace.bytes = this.#transfer?.received ?? 0;
      trace.keys = this.#syncKeys;
      finishTrace(
        syncChannel,
        trace,
        error instanceof ReplicationError
          ? error
          : new ReplicationError('ERR_REPLICATION_STATE', 'the listener was closed during the snapshot'),
      );
    }
    this.#owner.ended(this, error);
  }

  #phaseName(): 'psync' | 'transfer' | 'stream' {
    return this.#phase === P_REPLY ? 'psync' : this.#phase === P_TRANSFER ? 'transfer' : 'stream';
  }

  /** A broken protocol, or broken RDB bytes: final, with the master and phase. */
  #broken(err: unknown): Error {
    if (err instanceof ReplicationLinkError || err instanceof RdbError) return err; // an RdbError has its offset and key
    // Our own error gets the master and phase, not a second wrapper: the same code and cause.
    if (err instanceof ReplicationError)
      return new ReplicationLinkError(err.code, err.message, this.#settings.master, this.#phaseName(), {
        cause: err.cause,
      });
    return new ReplicationLinkError(
      'ERR_REPLICATION_PROTOCOL',
      `unexpected failure: ${(err as Error)?.message ?? String(err)}`,
      this.#settings.master,
      this.#phaseName(),
      { cause: err },
    );
  }

  #protocol(message: string): ReplicationLinkError {
    return new ReplicationLinkError('ERR_REPLICATION_PROTOCOL', message, this.#settings.master, this.#phaseName());
  }
}
