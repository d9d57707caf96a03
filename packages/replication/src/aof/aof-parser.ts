// The AOF push parser: the bytes of one append-only file in, in chunks of any size, and out come
// the same events a replica link gives: RDB events for an RDB preamble (or an RDB base file), then
// one command event per RESP array, with its database (SELECT is tracked), its byte offset in the
// file and whether it is inside MULTI ... EXEC. `#` lines between commands are annotations
// (`#TS:<unix seconds>` when the server has `aof-timestamp-enabled`).
//
// An explicit state machine over the current chunk: a header line (`*<n>`, `$<len>`, `#...`) is
// gathered up to a small bound, a bulk argument is sliced out of the chunks it spans (copied
// only when it spans several), so memory stays at one command whatever the file size.
//
// Redis replays a file's commands of an unfinished MULTI at its end as never having happened;
// so does this parser: a transaction's commands are held until its EXEC (up to
// `maxTransactionBytes`, after which they flow and the end reports the open transaction).

import { StreamCommand } from '../command-stream.ts';
import { ReplicationError, type ReplicationErrorCode } from '../errors.ts';
import type { RdbEvent } from '../rdb-events.ts';
import { RdbParser, type RdbParserOptions } from '../rdb-parser.ts';
import type { CommandEvent } from '../replication-events.ts';

/**
 * A `#` line between the commands of an AOF: `#TS:<unix seconds>` annotations mark when the
 * commands after them were written (Redis 7 with `aof-timestamp-enabled yes`).
 *
 * @example
 * ```ts
 * if (event.kind === 'annotation' && event.timestamp !== undefined) console.log(new Date(event.timestamp * 1000));
 * ```
 */
export interface AofAnnotationEvent {
  readonly kind: 'annotation';
  /** The line without its `#` and line end. */
  readonly text: string;
  /** Unix seconds of a `TS:` annotation. */
  readonly timestamp?: number | undefined;
  /** Byte offset of the `#` in the file. */
  readonly offset: number;
}

/** What {@link AofParser} produces: RDB events (a preamble or an RDB base), commands and annotations. */
export type AofParserEvent = RdbEvent | CommandEvent | AofAnnotationEvent;

/**
 * Options of {@link AofParser}.
 *
 * @example
 * ```ts
 * const parser = new AofParser({ allowTruncated: true, maxArgumentBytes: 64 * 1024 * 1024 });
 * ```
 */
export interface AofParserOptions {
  /** The largest single argument, in bytes. Default 512 MiB (the server's `proto-max-bulk-len`). */
  readonly maxArgumentBytes?: number | undefined;
  /** The most arguments in one command. Default 16,777,216. */
  readonly maxArguments?: number | undefined;
  /**
   * Bytes of an open `MULTI` held back until its `EXEC` (so that an unfinished transaction at the
   * end can be dropped, as Redis does). Above it the commands flow, and {@link AofParser.openTransaction}
   * tells at the end that they were not followed by `EXEC`. Default 64 MiB.
   */
  readonly maxTransactionBytes?: number | undefined;
  /**
   * Accept a file that ends inside a command: the partial command is dropped and reported by
   * {@link AofParser.truncatedBytes} (Redis' `aof-load-truncated yes`, for the last file of a
   * set). Default false: `end()` throws `ERR_AOF_TRUNCATED`.
   */
  readonly allowTruncated?: boolean | undefined;
  /** Read an RDB preamble (a file starting with `REDIS` or `VALKEY`) with these options. */
  readonly rdb?: RdbParserOptions | undefined;
}

const CR = 13;
const LF = 10;
const STAR = 42; // '*'
const DOLLAR = 36; // '$'
const HASH = 35; // '#'

// States.
const S_START = 0; // nothing read yet: an RDB preamble or commands
const S_RDB = 1;
const S_TOP = 2; // between commands
const S_LINE = 3; // inside a header line
const S_BULK = 4; // inside a bulk argument's bytes
const S_BULK_END = 5; // the CRLF after a bulk argument
const S_FAILED = 6;

// Kinds of header line.
const L_COUNT = 0; // *<n>
const L_LENGTH = 1; // $<len>
const L_ANNOTATION = 2; // #...

const MAX_HEADER = 32; // "*16777216" or "$536870912" with room to spare
const MAX_ANNOTATION = 1024;

const EMPTY: readonly Buffer[] = Object.freeze([]) as readonly Buffer[];

function positiveOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  return value;
}

/**
 * Parses one append-only file (a legacy `appendonly.aof`, or one file of a Redis 7 multi-part
 * set: a `.base.aof`, `.base.rdb` or `.incr.aof`) from chunks of any size: an RDB preamble
 * becomes RDB events, each command a {@link CommandEvent} with its database and its byte offset
 * in the file (`offset` is just after the command). {@link readAof} wraps it for files, folders
 * and manifests.
 *
 * @example
 * ```ts
 * const parser = new AofParser();
 * for await (const chunk of createReadStream('appendonly.aof')) {
 *   for (const event of parser.write(chunk)) if (event.kind === 'command') console.log(event.db, event.name);
 * }
 * parser.end();
 * ```
 */
export class AofParser {
  readonly #maxArgumentBytes: number;
  readonly #maxArguments: number;
  readonly #maxTransactionBytes: number;
  readonly #allowTruncated: boolean;
  readonly #rdbOptions: RdbParserOptions;

  #state = S_START;
  #rdb: RdbParser | undefined;
  /** Bytes consumed by completed units (commands, annotations, the preamble). */
  #offset = 0;
  /** Bytes of the unit in progress (a command or an annotation) consumed so far. */
  #unitBytes = 0;
  #db = 0;
  #inTransaction = false;

  // The line in progress.
  #lineKind = L_COUNT;
  #line: Buffer[] = [];
  #lineBytes = 0;
  /** A CR ended the previous chunk; the LF must follow. */
  #lineCr = false;

  // The command in progress.
  #argc = 0;
  #args: Buffer[] = [];
  #bulkLeft = 0;
  #bulkPieces: Buffer[] = [];
  #bulkEndSeen = 0;

  // An open transaction held back.
  #held: CommandEvent[] = [];
  #heldBytes = 0;
  #flowing = false;

  #truncatedBytes = 0;
  #discarded = 0;
  #openTransaction = false;
  #out: AofParserEvent[] = [];
  #error: ReplicationError | undefined;

  constructor(options: AofParserOptions = {}) {
    this.#maxArgumentBytes = positiveOption('maxArgumentBytes', options.maxArgumentBytes, 512 * 1024 * 1024);
    this.#maxArguments = positiveOption('maxArguments', options.maxArguments, 16 * 1024 * 1024);
    this.#maxTransactionBytes = positiveOption('maxTransactionBytes', options.maxTransactionBytes, 64 * 1024 * 1024);
    this.#allowTruncated = options.allowTruncated ?? false;
    this.#rdbOptions = options.rdb ?? {};
  }

  /** Bytes of the file consumed by complete commands, annotations and the preamble. */
  get offset(): number {
    return this.#offset;
  }

  /** The database the next command applies to. */
  get db(): number {
    return this.#db;
  }

  /** After `end()`: bytes of a partial command dropped at the end (with `allowTruncated`). */
  get truncatedBytes(): number {
    return this.#truncatedBytes;
  }

  /** After `end()`: commands of an unfinished `MULTI` dropped at the end, as Redis drops them. */
  get discardedCommands(): number {
    return this.#discarded;
  }

  /**
   * After `end()`: true when a `MULTI` was never closed and its commands had already been
   * delivered (it was larger than `maxTransactionBytes`).
   */
  get openTransaction(): boolean {
    return this.#openTransaction;
  }

  /**
   * Parses the next bytes; returns the events they complete, in order.
   *
   * @throws {ReplicationError} `ERR_AOF_CORRUPT`, `ERR_AOF_LIMIT`, or an RDB error of the preamble; the parser is then unusable.
   */
  write(chunk: Uint8Array): AofParserEvent[] {
    if (this.#error) throw this.#error;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    try {
      this.#run(buf);
    } catch (err) {
      this.#state = S_FAILED;
      this.#out = [];
      this.#error = err instanceof ReplicationError ? err : this.#corrupt(String(err));
      throw this.#error;
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /**
   * The input is over: returns the last events. A partial command at the end throws
   * `ERR_AOF_TRUNCATED` unless `allowTruncated`; an unfinished transaction is dropped.
   *
   * @throws {ReplicationError} `ERR_AOF_TRUNCATED`, or `ERR_RDB_TRUNCATED` when the file ends inside its RDB preamble.
   */
  end(): AofParserEvent[] {
    if (this.#error) throw this.#error;
    try {
      if (this.#state === S_RDB) {
        const rdb = this.#rdb as RdbParser;
        for (const event of rdb.end()) this.#out.push(event);
      }
      const partial = this.#unitBytes;
      if (partial > 0 && this.#state !== S_TOP && this.#state !== S_START) {
        if (!this.#allowTruncated)
          throw this.#fail(
            'ERR_AOF_TRUNCATED',
            `the file ends inside a command: ${partial} bytes after offset ${this.#offset} do not complete it (the last file of a running server may end this way; allowTruncated drops them, as Redis' aof-load-truncated does)`,
          );
        this.#truncatedBytes = partial;
      }
      if (this.#inTransaction) {
        if (this.#flowing) this.#openTransaction = true;
        else this.#discarded = this.#held.length;
        this.#held = [];
        this.#heldBytes = 0;
      }
      this.#state = S_FAILED;
      this.#error = new ReplicationError('ERR_RDB_STATE', 'the AOF parser has ended; create a new one');
    } catch (err) {
      this.#state = S_FAILED;
      this.#error = err instanceof ReplicationError ? err : this.#corrupt(String(err));
      throw this.#error;
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #run(buf: Buffer): void {
    let i = 0;
    const n = buf.length;
    while (i < n) {
      switch (this.#state) {
        case S_START: {
          const first = buf[i] as number;
          if (first === 0x52 /* R */ || first === 0x56 /* V */) {
            this.#rdb = new RdbParser(this.#rdbOptions);
            this.#state = S_RDB;
          } else this.#state = S_TOP;
          break;
        }
        case S_RDB: {
          const rdb = this.#rdb as RdbParser;
          const events = rdb.write(i === 0 ? buf : buf.subarray(i));
          for (const event of events) this.#out.push(event);
          if (!rdb.done) return;
          const rest = rdb.takeRemainder();
          this.#offset = rdb.offset;
          this.#rdb = undefined;
          this.#state = S_TOP;
          // The remainder is what followed the RDB in this chunk (and earlier ones): parse it.
          this.#run(rest);
          return;
        }
        case S_TOP: {
          const c = buf[i] as number;
          this.#unitBytes = 0;
          if (c === STAR) this.#startLine(L_COUNT);
          else if (c === HASH) this.#startLine(L_ANNOTATION);
          else if (c === CR || c === LF) {
            // Redis tolerates nothing else between commands; stray line ends count as corrupt too.
            throw this.#corrupt(
              `a line end where a command (*) or an annotation (#) was expected at offset ${this.#offset}`,
            );
          } else
            throw this.#corrupt(
              `byte 0x${c.toString(16).padStart(2, '0')} where a command (*) or an annotation (#) was expected at offset ${this.#offset}`,
            );
          i++;
          this.#unitBytes = 1;
          break;
        }
        case S_LINE:
          i = this.#readLine(buf, i);
          break;
        case S_BULK: {
          const take = Math.min(this.#bulkLeft, n - i);
          this.#bulkPieces.push(buf.subarray(i, i + take));
          this.#bulkLeft -= take;
          this.#unitBytes += take;
          i += take;
          if (this.#bulkLeft === 0) {
            this.#state = S_BULK_END;
            this.#bulkEndSeen = 0;
          }
          break;
        }
        case S_BULK_END: {
          const c = buf[i] as number;
          const expected = this.#bulkEndSeen === 0 ? CR : LF;
          if (c !== expected)
            throw this.#corrupt(
              `argument ${this.#args.length + 1} of the command at offset ${this.#offset} is not followed by CRLF (is its length right?)`,
            );
          i++;
          this.#unitBytes++;
          if (++this.#bulkEndSeen === 2) {
            const pieces = this.#bulkPieces;
            this.#args.push(pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces));
            this.#bulkPieces = [];
            if (this.#args.length === this.#argc) this.#command();
            else this.#startLine(L_LENGTH);
          }
          break;
        }
        default:
          throw this.#error ?? new ReplicationError('ERR_RDB_STATE', 'the AOF parser has failed or ended');
      }
    }
  }

  #startLine(kind: number): void {
    this.#state = S_LINE;
    this.#lineKind = kind;
    this.#line = [];
    this.#lineBytes = 0;
    this.#lineCr = false;
  }

  /** Reads the rest of a header line from `buf` at `i`; returns where reading stopped. */
  #readLine(buf: Buffer, i: number): number {
    const limit = this.#lineKind === L_ANNOTATION ? MAX_ANNOTATION : MAX_HEADER;
    if (this.#lineCr) {
      // The previous chunk ended with CR.
      if (buf[i] !== LF) throw this.#corrupt(`a CR without LF in a header line at offset ${this.#offset}`);
      this.#unitBytes++;
      this.#lineCr = false;
      this.#endLine(Buffer.concat(this.#line));
      return i + 1;
    }
    const nl = buf.indexOf(LF, i);
    const end = nl === -1 ? buf.length : nl;
    const piece = buf.subarray(i, end);
    if (this.#lineBytes + piece.length > limit + 1)
      throw this.#corrupt(
        this.#lineKind === L_ANNOTATION
          ? `an annotation line longer than ${MAX_ANNOTATION} bytes at offset ${this.#offset}`
          : `a header line longer than ${MAX_HEADER} bytes at offset ${this.#offset} (not an AOF, or a damaged one)`,
      );
    this.#unitBytes += piece.length;
    if (nl === -1) {
      this.#line.push(piece);
      this.#lineBytes += piece.length;
      // A CR at the very end of the chunk waits for its LF in the next one.
      if (piece.length > 0 && piece[piece.length - 1] === CR) {
        this.#line[this.#line.length - 1] = piece.subarray(0, piece.length - 1);
        this.#lineBytes--;
        this.#lineCr = true;
      }
      return buf.length;
    }
    this.#unitBytes++; // the LF
    let line = this.#line.length === 0 ? piece : Buffer.concat([...this.#line, piece]);
    if (line.length === 0 || line[line.length - 1] !== CR)
      throw this.#corrupt(`a header line ends with LF alone (not CRLF) at offset ${this.#offset}`);
    line = line.subarray(0, line.length - 1);
    this.#endLine(line);
    return nl + 1;
  }

  /** A complete header line (without its kind byte and CRLF). */
  #endLine(line: Buffer): void {
    switch (this.#lineKind) {
      case L_ANNOTATION: {
        const text = line.toString('latin1');
        const ts = /^TS:(\d{1,15})$/.exec(text);
        const start = this.#offset;
        this.#offset += this.#unitBytes;
        this.#unitBytes = 0;
        this.#state = S_TOP;
        this.#out.push(
          ts
            ? { kind: 'annotation', text, timestamp: Number(ts[1]), offset: start }
            : { kind: 'annotation', text, offset: start },
        );
        return;
      }
      case L_COUNT: {
        const count = decimal(line);
        if (count === undefined || count < 1)
          throw this.#corrupt(
            `a command with ${JSON.stringify(line.toString('latin1').slice(0, 40))} arguments at offset ${this.#offset}`,
          );
        if (count > this.#maxArguments)
          throw this.#fail(
            'ERR_AOF_LIMIT',
            `a command of ${count} arguments at offset ${this.#offset} is above maxArguments ${this.#maxArguments}`,
          );
        this.#argc = count;
        this.#args = [];
        this.#startLine(L_LENGTH);
        return;
      }
      default: {
        const len = line[0] === DOLLAR ? decimal(line.subarray(1)) : undefined;
        if (len === undefined)
          throw this.#corrupt(
            `argument ${this.#args.length + 1} of the command at offset ${this.#offset} has length ${JSON.stringify(line.toString('latin1').slice(0, 40))}`,
          );
        if (len > this.#maxArgumentBytes)
          throw this.#fail(
            'ERR_AOF_LIMIT',
            `argument ${this.#args.length + 1} of the command at offset ${this.#offset} has ${len} bytes, above maxArgumentBytes ${this.#maxArgumentBytes}`,
          );
        this.#bulkLeft = len;
        this.#bulkPieces = [];
        if (len === 0) {
          this.#state = S_BULK_END;
          this.#bulkEndSeen = 0;
        } else this.#state = S_BULK;
      }
    }
  }

  #command(): void {
    const args = this.#args;
    this.#args = [];
    const name = (args[0] as Buffer).toString('latin1').toUpperCase();
    const rest = args.length === 1 ? EMPTY : args.slice(1);
    const size = this.#unitBytes;
    this.#offset += size;
    this.#unitBytes = 0;
    this.#state = S_TOP;
    let inTransaction = this.#inTransaction;
    switch (name) {
      case 'SELECT': {
        const text = rest.length === 1 ? (rest[0] as Buffer).toString('latin1') : '';
        if (!/^\d{1,9}$/.test(text))
          throw this.#corrupt(`SELECT ${JSON.stringify(text.slice(0, 40))} at offset ${this.#offset - size}`);
        this.#db = Number(text);
        break;
      }
      case 'MULTI':
        if (!this.#inTransaction) {
          this.#inTransaction = inTransaction = true;
          this.#held = [];
          this.#heldBytes = 0;
          this.#flowing = false;
        }
        break;
      case 'EXEC':
        this.#inTransaction = false;
        break;
      default:
        break;
    }
    const event = new StreamCommand(this.#db, name, rest, this.#offset, size, inTransaction);
    if (!inTransaction || this.#flowing) {
      this.#out.push(event);
      return;
    }
    this.#held.push(event);
    this.#heldBytes += size;
    if (name === 'EXEC') {
      for (const held of this.#held) this.#out.push(held);
      this.#held = [];
      this.#heldBytes = 0;
    } else if (this.#heldBytes > this.#maxTransactionBytes) {
      for (const held of this.#held) this.#out.push(held);
      this.#held = [];
      this.#heldBytes = 0;
      this.#flowing = true;
    }
  }

  #corrupt(message: string): ReplicationError {
    return this.#fail('ERR_AOF_CORRUPT', message);
  }

  #fail(code: ReplicationErrorCode, message: string): ReplicationError {
    return new ReplicationError(code, message);
  }
}

/** A non-negative decimal of at most 15 digits, or undefined. */
function decimal(line: Buffer): number | undefined {
  const len = line.length;
  if (len === 0 || len > 15) return undefined;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const d = (line[i] as number) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}
