// The framing of a full sync's snapshot on a replica's connection, after `+FULLRESYNC`: newline
// keep-alives while the master forks, then `$<length>\r\n` and that many RDB bytes (disk-based
// sync), or `$EOF:<40-byte mark>\r\n`, the RDB, and the same 40 bytes again (diskless sync). It is
// not RESP (no CRLF after the payload, an `EOF:` length), so a RESP decoder cannot read it: the
// connection hands its bytes here, and gets back what follows the snapshot (the command stream).

import { ReplicationError } from './errors.ts';
import { PARSER_OPTIONS, rejectUnknownOptions } from './options.ts';
import type { RdbEvent } from './rdb-events.ts';
import { type RdbEventHandler, RdbParser, type RdbParserOptions } from './rdb-parser.ts';

const T_PREAMBLE = 0;
const T_HEADER = 1;
const T_DISK = 2;
const T_DISKLESS = 3;
const T_MARK = 4;
const T_DONE = 5;
const T_FAILED = 6;

const MARK_LENGTH = 40;
const MAX_HEADER = 64;

/**
 * Options of {@link RdbTransfer}: the parser's, plus `discard`.
 *
 * @example
 * ```ts
 * const transfer = new RdbTransfer({ discard: true }); // frame the snapshot, skip its content
 * ```
 */
export interface RdbTransferOptions extends RdbParserOptions {
  /**
   * Skip the snapshot without parsing it: `write` returns no events. A disk-based transfer is
   * counted down to its announced length; a diskless one ends where its 40-byte end mark
   * appears (as Redis replicas find it), so its content is not checked. Default false.
   */
  readonly discard?: boolean | undefined;
}

/**
 * Reads the snapshot of a full sync from a replica's connection: feed it every byte the master
 * sends after the `+FULLRESYNC <replid> <offset>` line, in chunks of any size; it returns the RDB
 * events, checks the framing (the announced length, or the diskless end mark), and hands out the
 * bytes that follow the snapshot, where the command stream starts (for a
 * `CommandStreamDecoder`). With `{ discard: true }` it frames the snapshot without parsing it.
 *
 * @example
 * ```ts
 * const transfer = new RdbTransfer();
 * socket.on('data', (chunk) => {
 *   for (const event of transfer.write(chunk)) handle(event);
 *   if (transfer.done) startCommandStream(transfer.takeRemainder()); // RESP from here on
 * });
 * ```
 */
export class RdbTransfer {
  readonly #parser: RdbParser | undefined;
  /** Discarding a diskless transfer: the last bytes seen, where a mark cut by a chunk boundary starts. */
  #tail: Buffer = Buffer.alloc(0);
  #state = T_PREAMBLE;
  #header: Buffer[] = [];
  #headerBytes = 0;
  #left = 0;
  #mark: Buffer | undefined;
  #markSeen: Buffer[] = [];
  #markBytes = 0;
  #size: number | undefined;
  #headerRead = false;
  #received = 0;
  #keepAlives = 0;
  #remainder: Buffer[] = [];
  #error: ReplicationError | undefined;

  constructor(options: RdbTransferOptions = {}) {
    rejectUnknownOptions(options, [...PARSER_OPTIONS, 'discard'], 'RdbTransfer');
    const { discard, ...parserOptions } = options;
    this.#parser = discard === true ? undefined : new RdbParser(parserOptions);
  }

  /** True once the whole snapshot, and for a diskless transfer its end mark, has been read. */
  get done(): boolean {
    return this.#state === T_DONE;
  }

  /** `true` for `$EOF:` transfers, `false` for `$<length>`, undefined before the header. */
  get diskless(): boolean | undefined {
    return this.#headerRead ? this.#mark !== undefined : undefined;
  }

  /** The RDB length announced by a disk-based transfer. */
  get size(): number | undefined {
    return this.#size;
  }

  /** RDB bytes received so far (for progress). */
  get received(): number {
    return this.#received;
  }

  /** Newline keep-alives the master sent before the payload. */
  get keepAlives(): number {
    return this.#keepAlives;
  }

  /**
   * Feeds bytes; returns the RDB events they complete. Throws on broken framing or RDB errors.
   * With `into`, the events are appended to that array (and it is returned): when the call
   * throws, it holds the events the chunk completed before the failure.
   */
  write(chunk: Uint8Array, into?: RdbEvent[]): RdbEvent[];
  /**
   * Feeds bytes and hands each RDB event to `onEvent` as soon as it is complete (the fastest
   * way, as {@link RdbParser.write} with a handler). Throws on broken framing or RDB errors.
   */
  write(chunk: Uint8Array, onEvent: RdbEventHandler): void;
  write(chunk: Uint8Array, into?: RdbEvent[] | RdbEventHandler): RdbEvent[] | undefined {
    if (this.#error) throw this.#error;
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let handlerFailed = false;
    const events: RdbEvent[] | RdbEventHandler =
      typeof into === 'function'
        ? (event) => {
            try {
              into(event);
            } catch (err) {
              handlerFailed = true;
              throw err;
            }
          }
        : (into ?? []);
    try {
      while (buf.length > 0) {
        switch (this.#state) {
          case T_PREAMBLE: {
            const b = buf[0] as number;
            if (b === 0x0a) {
              this.#keepAlives++;
              buf = buf.subarray(1);
            } else if (b === 0x24) {
              this.#state = T_HEADER;
            } else {
              throw this.#protocol(
                `expected "$" or a newline keep-alive before the snapshot, got byte 0x${b.toString(16)}`,
              );
            }
            break;
          }
          case T_HEADER: {
            const nl = buf.indexOf(0x0a);
            const end = nl < 0 ? buf.length : nl + 1;
            this.#headerBytes += end;
            if (this.#headerBytes > MAX_HEADER)
              throw this.#protocol('the snapshot header line is longer than 64 bytes');
            this.#header.push(buf.subarray(0, end));
            buf = buf.subarray(end);
            if (nl >= 0) this.#readHeader();
            break;
          }
          case T_DISK: {
            const take = Math.min(this.#left, buf.length);
            const parser = this.#parser;
            if (parser) writeTo(parser, buf.subarray(0, take), events);
            this.#received += take;
            this.#left -= take;
            buf = buf.subarray(take);
            if (parser?.done) {
              // Bytes given to the parser past the RDB's end, and bytes still announced.
              const short = parser.takeRemainder().length + this.#left;
              if (short > 0)
                throw this.#protocol(`the RDB ended ${short} bytes before the announced length of ${this.#size}`);
            }
            if (this.#left === 0) {
              parser?.end();
              this.#state = T_DONE;
            }
            break;
          }
          case T_DISKLESS: {
            const parser = this.#parser;
            if (!parser) {
              buf = this.#skipToMark(buf);
              break;
            }
            writeTo(parser, buf, events);
            buf = Buffer.alloc(0);
            this.#received = parser.offset;
            if (parser.done) {
              buf = parser.takeRemainder();
              this.#state = T_MARK;
            }
            break;
          }
          case T_MARK: {
            const take = Math.min(MARK_LENGTH - this.#markBytes, buf.length);
            this.#markSeen.push(buf.subarray(0, take));
            this.#markBytes += take;
            buf = buf.subarray(take);
            if (this.#markBytes === MARK_LENGTH) {
              const seen = Buffer.concat(this.#markSeen);
              if (!seen.equals(this.#mark as Buffer))
                throw this.#protocol(
                  'the diskless transfer does not end with its EOF mark: the snapshot is damaged or cut',
                );
              this.#state = T_DONE;
            }
            break;
          }
          default:
            this.#remainder.push(buf);
            buf = Buffer.alloc(0);
        }
      }
    } catch (err) {
      this.#state = T_FAILED;
      if (handlerFailed) {
        // The caller's own exception, as it is; the transfer cannot go on without the parser.
        this.#error = new ReplicationError('ERR_RDB_STATE', 'the event handler threw, which stopped the transfer', {
          cause: err,
        });
        throw err;
      }
      this.#error = err instanceof ReplicationError ? err : this.#protocol(String(err));
      throw this.#error;
    }
    return typeof events === 'function' ? undefined : events;
  }

  /** Declares the connection closed: throws `ERR_RDB_TRUNCATED` unless the snapshot is complete. */
  end(): void {
    if (this.#error) throw this.#error;
    if (this.#state === T_DONE) return;
    if (this.#parser && (this.#state === T_DISK || this.#state === T_DISKLESS)) {
      try {
        this.#parser.end();
      } catch (err) {
        this.#state = T_FAILED;
        this.#error = err as ReplicationError;
        throw err;
      }
    }
    this.#state = T_FAILED;
    this.#error = new ReplicationError(
      'ERR_RDB_TRUNCATED',
      `the connection closed during the snapshot transfer (${this.#received} RDB bytes received): resync`,
    );
    throw this.#error;
  }

  /** The bytes after the snapshot (the start of the command stream), handed out once. */
  takeRemainder(): Buffer {
    const rest = this.#remainder.length === 1 ? (this.#remainder[0] as Buffer) : Buffer.concat(this.#remainder);
    this.#remainder = [];
    return rest;
  }

  /**
   * Discard mode, diskless: consumes RDB bytes up to and including the end mark, and returns
   * what follows it (empty until the mark is found). The RDB itself is not read, so its end is
   * where the 40 random bytes of the mark appear; a mark cut by a chunk boundary is found in the
   * tail kept from the previous chunk.
   */
  #skipToMark(buf: Buffer): Buffer {
    const mark = this.#mark as Buffer;
    const tail = this.#tail;
    if (tail.length > 0) {
      const joint = Buffer.concat([tail, buf.subarray(0, MARK_LENGTH - 1)]);
      const at = joint.indexOf(mark);
      if (at >= 0 && at < tail.length) return this.#markFound(buf, at + MARK_LENGTH - tail.length, at);
    }
    const at = buf.indexOf(mark);
    if (at >= 0) return this.#markFound(buf, at + MARK_LENGTH, tail.length + at);
    // Keep the last 39 bytes (copied: the chunk may be large): the start of a mark that the
    // next chunk completes. `received` counts the bytes known to be RDB, before the tail.
    const total = this.#received + tail.length + buf.length;
    const keep = MARK_LENGTH - 1;
    this.#tail =
      buf.length >= keep ? Buffer.from(buf.subarray(buf.length - keep)) : Buffer.concat([tail, buf]).subarray(-keep);
    this.#received = total - this.#tail.length;
    return Buffer.alloc(0);
  }

  /** The mark ends at `end` in `buf`; `rdbBytes`: RDB bytes from the tail's start to the mark. */
  #markFound(buf: Buffer, end: number, rdbBytes: number): Buffer {
    this.#received += rdbBytes;
    this.#tail = Buffer.alloc(0);
    this.#state = T_DONE;
    return buf.subarray(end);
  }

  #readHeader(): void {
    const line = Buffer.concat(this.#header).toString('latin1');
    this.#header = [];
    if (!line.endsWith('\r\n'))
      throw this.#protocol(`the snapshot header ${JSON.stringify(line)} does not end with CRLF`);
    const text = line.slice(1, -2);
    if (text.startsWith('EOF:')) {
      const mark = text.slice(4);
      if (mark.length !== MARK_LENGTH) throw this.#protocol(`the diskless EOF mark has ${mark.length} bytes, not 40`);
      this.#mark = Buffer.from(mark, 'latin1');
      this.#headerRead = true;
      this.#state = T_DISKLESS;
      return;
    }
    if (!/^\d{1,15}$/.test(text))
      throw this.#protocol(`the snapshot header ${JSON.stringify(line.trim())} is not $<length> or $EOF:<mark>`);
    if (text === '0') throw this.#protocol('the master announced an empty snapshot');
    this.#size = Number(text);
    this.#left = this.#size;
    this.#headerRead = true;
    this.#state = T_DISK;
  }

  #protocol(message: string): ReplicationError {
    return new ReplicationError('ERR_REPLICATION_PROTOCOL', `${message} (snapshot transfer)`);
  }
}

function writeTo(parser: RdbParser, chunk: Buffer, to: RdbEvent[] | RdbEventHandler): void {
  if (typeof to === 'function') parser.write(chunk, to);
  else parser.write(chunk, to);
}
