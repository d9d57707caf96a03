// The RDB push parser: bytes go in by write(chunk) in pieces of any size, events come out.
//
// How it stays correct on any split: the parser is an explicit state machine whose steps each
// read one small unit (an opcode with its arguments, one collection element, one encoded node).
// A unit either completes from the bytes at hand, or the read throws NEED_MORE and the cursor
// goes back to the unit's start (`mark`) to try again when more bytes come. State changes only
// after a unit's last read, so a retried unit never counts twice. Only the bytes of the unit in
// progress are ever copied together; whole chunks are kept as they came and sliced.
//
// How it stays small: collections are emitted in parts of at most `batchSize` elements or about
// `maxPartBytes` bytes, and a string larger than `maxPartBytes` is streamed in pieces (LZF ones
// through a streaming decompressor), so memory does not grow with the size of a key.

import {
  CompactTape,
  type CompactValue,
  decodeIntset,
  decodeListpack,
  decodeZipmap,
  EncodingError,
  parseScore,
  scanListpack,
  scanZiplist,
  valueBigInt,
  valueBytes,
} from './compact-encodings.ts';
import { Crc64 } from './crc64.ts';
import { RdbError, ReplicationError, type ReplicationErrorCode } from './errors.ts';
import { LzfError, LzfStreamDecoder, lzfDecompress, lzfLengthProblem } from './lzf.ts';
import { PARSER_OPTIONS, rejectUnknownOptions } from './options.ts';
import type {
  HashField,
  KeyMetaClass,
  ModuleItem,
  ModuleTypeInfo,
  RdbEntryEvent,
  RdbEvent,
  RdbFunctionPreGa,
  StreamConsumer,
  StreamGroup,
  StreamIdmp,
  StreamItem,
  StreamMeta,
  ZSetMember,
} from './rdb-events.ts';
import {
  keyMetaClassFromSpec,
  MAX_REDIS_RDB_VERSION,
  MODULE_OPCODE,
  moduleTypeFromId,
  RDB_OPCODE,
  RDB_TYPE,
  rdbTypeName,
  VALKEY_RDB_VERSIONS,
} from './rdb-format.ts';

/**
 * Options of {@link RdbParser} and the functions built on it.
 *
 * @example
 * ```ts
 * const parser = new RdbParser({ batchSize: 256, maxPartBytes: 256 * 1024, verifyChecksum: true });
 * ```
 */
export interface RdbParserOptions {
  /** Most elements in one part of a collection. Default 1024. */
  readonly batchSize?: number | undefined;
  /**
   * About how many bytes one part holds: a collection part is cut when its elements reach it,
   * and strings longer than this are delivered in pieces of this size. Default 1 MiB.
   */
  readonly maxPartBytes?: number | undefined;
  /**
   * The largest single string or encoded node (listpack, ziplist, intset) read whole. Larger
   * lengths are refused with `ERR_RDB_LIMIT` instead of being buffered. Top-level string values
   * are streamed and not limited by it. Default 512 MiB (Redis' own `proto-max-bulk-len`).
   */
  readonly maxBlobBytes?: number | undefined;
  /** Compare the CRC64 trailer with the bytes (RDB 5+, unless the file says 0). Default true. */
  readonly verifyChecksum?: boolean | undefined;
  /**
   * The most consumer-group records (pending entries, consumers, idempotent-producer IDs) one
   * stream may hold: they are delivered whole in the stream's last part, so they are bounded.
   * Above it, `ERR_RDB_LIMIT`. Default 1,000,000.
   */
  readonly maxStreamGroupRecords?: number | undefined;
}

// Thrown by a read that needs bytes not yet written; never escapes the parser.
const NEED_MORE: unique symbol = Symbol('need more');

/**
 * Takes each event of {@link RdbParser.write} as soon as it is complete.
 *
 * @example
 * ```ts
 * const onEvent: RdbEventHandler = (event) => { if (event.kind === 'entry') console.log(event.key.toString()); };
 * parser.write(chunk, onEvent);
 * ```
 */
export type RdbEventHandler = (event: RdbEvent) => void;

/** Carries an exception of the caller's event handler through the parser, unwrapped. */
class HandlerFailure {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

const S_MAGIC = 0;
const S_TOP = 1;
const S_DONE = 2;
const S_FAILED = 3;
const S_VALUE = 4;
const S_DUMP_TYPE = 5;
const S_STRING_RAW = 10;
const S_STRING_LZF = 11;
const S_ITEMS = 20;
const S_QUICKLIST = 30;
const S_STREAM_NODES = 40;
const S_STREAM_META = 41;
const S_STREAM_GROUP = 42;
const S_STREAM_GROUP_PEL = 43;
const S_STREAM_CONSUMERS = 44;
const S_STREAM_CONSUMER = 45;
const S_STREAM_CONSUMER_PEL = 46;
const S_STREAM_IDMP = 47;
const S_STREAM_IDMP_PRODUCER = 48;
const S_STREAM_IDMP_ENTRY = 49;
const S_MODULE = 60;

// Element layouts of S_ITEMS.
const I_STRING = 0; // list or set element
const I_ZSET_TEXT = 1; // member + score as text
const I_ZSET_BINARY = 2; // member + 8-byte double
const I_HASH = 3; // field + value
const I_HASH_TTL_RELATIVE = 4; // Redis 7.4 HASH_METADATA: ttl (relative) + field + value
const I_HASH_TTL_ABSOLUTE = 5; // Redis 7.4 RC: ttl (absolute ms, 0 = none) + field + value
const I_HASH_VALKEY = 6; // Valkey 9 HASH_2: field + value + 8-byte expiry (-1 = none)

const TWO_32 = 4294967296;
const SHEBANG = Buffer.from('#!');
const NAME_IS = Buffer.from(' name=');
const NEWLINE = Buffer.from('\n');
const EXPIRE_TIME_MAX = 0xffffffffffff; // 48-bit field expiry limit in Redis

type EntryType = RdbEntryEvent['type'];

interface Current {
  db: number;
  key: Buffer;
  rdbType: number;
  typeName: string;
  type: EntryType;
  offset: number;
  expireAt: number | undefined;
  idle: number | undefined;
  freq: number | undefined;
  slot: number | undefined;
  meta: KeyMetaClass[] | undefined;
  module: ModuleTypeInfo | undefined;
  part: number;
}

interface ModuleAuxState {
  module: ModuleTypeInfo;
  when: number;
  part: number;
  offset: number;
}

interface MutablePending {
  id: string;
  deliveryTime: number;
  deliveryCount: number;
  consumer?: Buffer | undefined;
}

interface StreamState {
  version: number; // 1 (type 15), 2 (19), 3 (21), 4 (26)
  meta: {
    length: number;
    lastId: string;
    firstId?: string | undefined;
    maxDeletedId?: string | undefined;
    entriesAdded?: number | undefined;
  };
  groups: StreamGroup[];
  groupsLeft: number;
  group: { name: Buffer; lastDeliveredId: string; entriesRead?: number | undefined } | undefined;
  pending: MutablePending[];
  pendingById: Map<string, MutablePending>;
  pelLeft: number;
  consumers: StreamConsumer[];
  consumersLeft: number;
  consumer: { name: Buffer; seenTime: number; activeTime?: number | undefined } | undefined;
  consumerPending: string[];
  idmp: {
    duration: number;
    maxEntries: number;
    producers: { pid: Buffer; entries: { iid: Buffer; id: string }[] }[];
  };
  producersLeft: number;
  producerEntriesLeft: number;
  records: number;
}

/** @internal Set by RdbParser's static block: starts a parser on a bare value (DUMP payloads). */
export let beginValueOnly: (parser: RdbParser, version: number, valkey: boolean) => void;

/**
 * The streaming RDB parser: feed it the bytes of an RDB in chunks of any size and it returns
 * the events those bytes complete. It never holds the whole file, and a large key arrives in
 * parts. Use it directly to parse from a socket or any push source; {@link parseRdb} and
 * {@link parseRdbFile} wrap it for streams and files.
 *
 * After the `end` event, further bytes are not RDB: they are kept and handed out by
 * {@link RdbParser.takeRemainder} (a replica's command stream follows the RDB on one socket).
 *
 * @example
 * ```ts
 * const parser = new RdbParser();
 * socket.on('data', (chunk) => {
 *   for (const event of parser.write(chunk)) if (event.kind === 'entry') console.log(event.key.toString());
 * });
 * socket.on('end', () => parser.end()); // throws ERR_RDB_TRUNCATED if the RDB was cut
 * ```
 */
export class RdbParser {
  readonly #batchSize: number;
  readonly #maxPartBytes: number;
  readonly #maxBlobBytes: number;
  readonly #verifyChecksum: boolean;
  readonly #maxGroupRecords: number;

  // Input: the current buffer, the read cursor, the start of the unit in progress, later chunks.
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #mark = 0;
  #queue: Buffer[] = [];
  #queueBytes = 0;
  #base = 0; // absolute offset of #buf[0]

  #crc: Crc64 | undefined;
  #crcFrom = 0;

  #state = S_MAGIC;
  #error: ReplicationError | undefined;
  #out: RdbEvent[] = [];
  #sink: RdbEventHandler | undefined;

  #valkey = false;
  #version = 0;
  #valueOnly = false;
  #db = 0;
  #slot: number | undefined;
  #pendingOffset = -1;
  #pendingExpire: number | undefined;
  #pendingIdle: number | undefined;
  #pendingFreq: number | undefined;
  #pendingMeta: KeyMetaClass[] | undefined;

  #cur: Current | undefined;
  #batch: unknown[] = [];
  #batchBytes = 0;
  #left = 0;
  #itemKind = 0;
  #minExpire = 0;
  #strPart: Buffer | undefined;
  #strFill = 0;
  #lzf: LzfStreamDecoder | undefined;
  /** Where the compressed bytes of the streamed LZF string start (errors point at the failing token). */
  #lzfAt = 0;
  #stream: StreamState | undefined;
  /** Where the elements of the listpack or ziplist being read are (reused: nothing per element). */
  readonly #tape = new CompactTape();
  #moduleAux: ModuleAuxState | undefined;

  constructor(options: RdbParserOptions = {}) {
    rejectUnknownOptions(options, PARSER_OPTIONS, 'RdbParser');
    this.#batchSize = positive(options.batchSize ?? 1024, 'batchSize');
    this.#maxPartBytes = positive(options.maxPartBytes ?? 1 << 20, 'maxPartBytes');
    this.#maxBlobBytes = positive(options.maxBlobBytes ?? 512 * 1024 * 1024, 'maxBlobBytes');
    this.#verifyChecksum = options.verifyChecksum ?? true;
    this.#maxGroupRecords = positive(options.maxStreamGroupRecords ?? 1_000_000, 'maxStreamGroupRecords');
  }

  /** True once the `end` event was produced. */
  get done(): boolean {
    return this.#state === S_DONE;
  }

  /** RDB bytes consumed so far (the offset of the next unread byte). */
  get offset(): number {
    return this.#base + this.#pos;
  }

  /** The format read from the magic (`undefined` before 9 bytes arrived). */
  get format(): { readonly magic: 'REDIS' | 'VALKEY'; readonly version: number } | undefined {
    return this.#version ? { magic: this.#valkey ? 'VALKEY' : 'REDIS', version: this.#version } : undefined;
  }

  /**
   * Feeds the next bytes; returns the events they complete, in order. Throws an {@link RdbError}
   * when the bytes are not a valid RDB; the parser is then unusable. With `into`, the events
   * are appended to that array (and it is returned): when the call throws, it holds the events
   * the chunk completed before the failure.
   */
  write(chunk: Uint8Array, into?: RdbEvent[]): RdbEvent[];
  /**
   * Feeds the next bytes and hands each event they complete to `onEvent` as soon as it is
   * complete, in order: the fastest way to read an RDB, as no array of events is built and an
   * event you drop is freed at once. Throws an {@link RdbError} when the bytes are not a valid
   * RDB (after the events before the failure were handed over). An exception thrown by
   * `onEvent` stops the parser and is rethrown as it is.
   *
   * @example
   * ```ts
   * let keys = 0;
   * const onEvent = (event: RdbEvent) => { if (event.kind === 'entry' && event.last) keys++; };
   * for await (const chunk of createReadStream('dump.rdb')) parser.write(chunk, onEvent);
   * parser.end();
   * ```
   */
  write(chunk: Uint8Array, onEvent: RdbEventHandler): void;
  write(chunk: Uint8Array, into?: RdbEvent[] | RdbEventHandler): RdbEvent[] | undefined {
    if (typeof into === 'function') {
      this.#sink = into;
      try {
        this.#write(chunk);
      } finally {
        this.#sink = undefined;
      }
      return undefined;
    }
    if (into) this.#out = into;
    this.#write(chunk);
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #write(chunk: Uint8Array): void {
    if (this.#error) throw this.#error;
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.#buf.length === this.#pos && this.#queue.length === 0 && this.#pos === this.#mark) {
      this.#dropBuffer();
      this.#buf = buf;
    } else {
      this.#queue.push(buf);
      this.#queueBytes += buf.length;
    }
    if (this.#state !== S_DONE) this.#run();
  }

  /** Hands an event to the caller: the handler of this write, or the array it returns. */
  #emit(event: RdbEvent): void {
    const sink = this.#sink;
    if (sink === undefined) {
      this.#out.push(event);
      return;
    }
    try {
      sink(event);
    } catch (err) {
      throw new HandlerFailure(err);
    }
  }

  /**
   * Declares the input complete. Throws `ERR_RDB_TRUNCATED` (with the offset and the key being
   * read) unless the RDB ended with its EOF opcode and trailer.
   */
  end(): RdbEvent[] {
    if (this.#error) throw this.#error;
    if (this.#state !== S_DONE) {
      const where = this.#cur ? ` inside the value (${this.#cur.typeName})` : '';
      this.#fail(
        new RdbError(
          'ERR_RDB_TRUNCATED',
          `the RDB ended after ${this.offset} bytes${where}, before its EOF opcode and checksum: the file or transfer is incomplete`,
          { offset: this.offset, key: this.#cur?.key, rdbType: this.#cur?.rdbType },
        ),
      );
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The bytes written after the RDB's end (empty before `end`); they are handed out once. */
  takeRemainder(): Buffer {
    if (this.#state !== S_DONE) return Buffer.alloc(0);
    const parts = [this.#buf.subarray(this.#pos), ...this.#queue];
    this.#base += this.#pos; // `offset` stays the RDB's end
    this.#buf = Buffer.alloc(0);
    this.#pos = this.#mark = this.#crcFrom = 0;
    this.#queue = [];
    this.#queueBytes = 0;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  // ---------------------------------------------------------------- driving the state machine

  #run(): void {
    for (;;) {
      if (this.#pos === this.#buf.length && !this.#rotate()) return;
      this.#mark = this.#pos;
      try {
        this.#step();
      } catch (err) {
        if (err === NEED_MORE) {
          this.#pos = this.#mark;
          return;
        }
        if (err instanceof HandlerFailure) {
          // The step was left halfway: the parser cannot go on, and the caller's error is theirs.
          this.#state = S_FAILED;
          this.#error = new RdbError(
            'ERR_RDB_STATE',
            'the event handler threw, which stopped the parser',
            { offset: this.#base + this.#mark, key: this.#cur?.key, rdbType: this.#cur?.rdbType },
            { cause: err.error },
          );
          this.#out = [];
          throw err.error;
        }
        this.#fail(this.#wrap(err));
      }
      if (this.#state === S_DONE) return;
    }
  }

  #fail(err: ReplicationError): never {
    this.#state = S_FAILED;
    this.#error = err;
    this.#out = [];
    throw err;
  }

  #wrap(err: unknown): ReplicationError {
    if (err instanceof ReplicationError) return err;
    // A streamed LZF string fails at its token, wherever the input was cut.
    const at = err instanceof LzfError && err.at !== undefined && this.#lzf ? this.#lzfAt + err.at : undefined;
    const context = { offset: at ?? this.#base + this.#mark, key: this.#cur?.key, rdbType: this.#cur?.rdbType };
    if (err instanceof EncodingError || err instanceof LzfError)
      return new RdbError('ERR_RDB_CORRUPT', `corrupt encoded value: ${err.message}`, context);
    const message = err instanceof Error ? err.message : String(err);
    return new RdbError('ERR_RDB_CORRUPT', `unreadable bytes (${message})`, context, { cause: err });
  }

  #err(code: ReplicationErrorCode, message: string, rdbType?: number): RdbError {
    return new RdbError(code, message, {
      offset: this.#base + this.#mark,
      key: this.#cur?.key,
      rdbType: rdbType ?? this.#cur?.rdbType,
    });
  }

  /** Moves to the next queued chunk once the current one is consumed (no unit in progress). */
  #rotate(): boolean {
    const next = this.#queue.shift();
    if (!next) return false;
    this.#queueBytes -= next.length;
    this.#dropBuffer();
    this.#buf = next;
    this.#pos = this.#mark = this.#crcFrom = 0;
    return true;
  }

  #dropBuffer(): void {
    this.#crc?.update(this.#buf, this.#crcFrom, this.#buf.length);
    this.#base += this.#buf.length;
    this.#buf = Buffer.alloc(0);
    this.#pos = this.#mark = this.#crcFrom = 0;
  }

  /** Makes `n` bytes readable at the cursor, copying only the unit in progress; else NEED_MORE. */
  #ensure(n: number): void {
    const have = this.#buf.length - this.#pos;
    if (have >= n) return;
    if (have + this.#queueBytes < n) throw NEED_MORE;
    const mark = this.#mark;
    this.#crc?.update(this.#buf, this.#crcFrom, mark);
    const need = this.#pos - mark + n;
    const parts: Buffer[] = [this.#buf.subarray(mark)];
    let got = this.#buf.length - mark;
    while (got < need) {
      const next = this.#queue[0] as Buffer;
      const take = Math.min(next.length, need - got);
      if (take === next.length) this.#queue.shift();
      else this.#queue[0] = next.subarray(take);
      this.#queueBytes -= take;
      parts.push(take === next.length ? next : next.subarray(0, take));
      got += take;
    }
    this.#base += mark;
    this.#buf = Buffer.concat(parts, got);
    this.#pos -= mark;
    this.#mark = 0;
    this.#crcFrom = 0;
  }

  // ---------------------------------------------------------------- primitive reads

  #u8(): number {
    if (this.#pos >= this.#buf.length) this.#ensure(1);
    return this.#buf[this.#pos++] as number;
  }

  /** A length. Lengths beyond 2^53 are refused (no real count or size gets there). */
  #len(): number {
    if (this.#pos >= this.#buf.length) this.#ensure(1);
    const buf = this.#buf;
    const b = buf[this.#pos] as number;
    const kind = b >> 6;
    if (kind === 0) {
      this.#pos++;
      return b;
    }
    if (kind === 1) {
      this.#ensure(2);
      const v = ((b & 0x3f) << 8) | (this.#buf[this.#pos + 1] as number);
      this.#pos += 2;
      return v;
    }
    if (b === 0x80) {
      this.#ensure(5);
      const v = this.#buf.readUInt32BE(this.#pos + 1);
      this.#pos += 5;
      return v;
    }
    if (b === 0x81) {
      this.#ensure(9);
      const hi = this.#buf.readUInt32BE(this.#pos + 1);
      const lo = this.#buf.readUInt32BE(this.#pos + 5);
      if (hi > 0x1fffff) throw this.#err('ERR_RDB_CORRUPT', `a 64-bit length of ${hi * TWO_32 + lo} is impossible`);
      this.#pos += 9;
      return hi * TWO_32 + lo;
    }
    if (kind === 3)
      throw this.#err('ERR_RDB_CORRUPT', `expected a length, found the string encoding byte 0x${b.toString(16)}`);
    throw this.#err('ERR_RDB_CORRUPT', `invalid length byte 0x${b.toString(16)}`);
  }

  /** A length read exactly as a 64-bit unsigned integer (stream IDs, module integers). */
  #lenBig(): bigint {
    if (this.#pos >= this.#buf.length) this.#ensure(1);
    const b = this.#buf[this.#pos] as number;
    if (b === 0x81) {
      this.#ensure(9);
      const v = this.#buf.readBigUInt64BE(this.#pos + 1);
      this.#pos += 9;
      return v;
    }
    return BigInt(this.#len());
  }

  /** A 64-bit length as a number, or -1 for the all-ones value Redis uses as "invalid". */
  #lenSigned(): number {
    const v = this.#lenBig();
    if (v === 0xffffffffffffffffn) return -1;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#err('ERR_RDB_CORRUPT', `counter ${v} is out of range`);
    return Number(v);
  }

  #checkBlob(len: number, what: string): void {
    if (len > this.#maxBlobBytes)
      throw this.#err(
        'ERR_RDB_LIMIT',
        `${what} of ${len} bytes is above maxBlobBytes (${this.#maxBlobBytes}); raise the option if the RDB is trusted`,
      );
  }

  /** Declared LZF lengths must be possible: the decompressed length is allocated at once. */
  #checkLzf(clen: number, ulen: number): void {
    const problem = lzfLengthProblem(clen, ulen);
    if (problem) throw this.#err('ERR_RDB_CORRUPT', problem);
  }

  /** An RDB string: raw bytes (a slice), an integer encoding (its decimal text), or LZF. */
  #string(): Buffer {
    if (this.#pos >= this.#buf.length) this.#ensure(1);
    const b = this.#buf[this.#pos] as number;
    if (b >> 6 !== 3) {
      const len = this.#len();
      this.#checkBlob(len, 'a string');
      if (this.#buf.length - this.#pos < len) this.#ensure(len);
      const s = this.#buf.subarray(this.#pos, this.#pos + len);
      this.#pos += len;
      return s;
    }
    this.#pos++;
    switch (b & 0x3f) {
      case 0: {
        this.#ensure(1);
        const v = this.#buf.readInt8(this.#pos);
        this.#pos += 1;
        return Buffer.from(String(v), 'latin1');
      }
      case 1: {
        this.#ensure(2);
        const v = this.#buf.readInt16LE(this.#pos);
        this.#pos += 2;
        return Buffer.from(String(v), 'latin1');
      }
      case 2: {
        this.#ensure(4);
        const v = this.#buf.readInt32LE(this.#pos);
        this.#pos += 4;
        return Buffer.from(String(v), 'latin1');
      }
      case 3: {
        const clen = this.#len();
        const ulen = this.#len();
        this.#checkLzf(clen, ulen);
        this.#checkBlob(ulen, 'an LZF string');
        this.#checkBlob(clen, 'an LZF string');
        if (this.#buf.length - this.#pos < clen) this.#ensure(clen);
        const at = this.#pos;
        this.#pos += clen;
        return lzfDecompress(this.#buf, ulen, at, at + clen);
      }
      default:
        throw this.#err('ERR_RDB_CORRUPT', `unknown string encoding ${b & 0x3f}`);
    }
  }

  #bytes(n: number): Buffer {
    if (this.#buf.length - this.#pos < n) this.#ensure(n);
    const s = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return s;
  }

  /** 8-byte little-endian milliseconds (expiry, delivery times). */
  #millis(): number {
    if (this.#buf.length - this.#pos < 8) this.#ensure(8);
    const v = Number(this.#buf.readBigInt64LE(this.#pos));
    this.#pos += 8;
    return v;
  }

  /** An old-style score: one length byte (253 nan, 254 +inf, 255 -inf) then ASCII. */
  #textScore(): number {
    const len = this.#u8();
    if (len === 253) return Number.NaN;
    if (len === 254) return Number.POSITIVE_INFINITY;
    if (len === 255) return Number.NEGATIVE_INFINITY;
    return parseScore(this.#bytes(len));
  }

  #binaryDouble(): number {
    if (this.#buf.length - this.#pos < 8) this.#ensure(8);
    const v = this.#buf.readDoubleLE(this.#pos);
    this.#pos += 8;
    return v;
  }

  /** A 16-byte raw stream ID (two big-endian 64-bit halves) as `ms-seq`. */
  #rawStreamId(): string {
    if (this.#buf.length - this.#pos < 16) this.#ensure(16);
    const id = streamIdText(this.#buf, this.#pos);
    this.#pos += 16;
    return id;
  }

  #lenStreamId(): string {
    const ms = this.#lenBig();
    const seq = this.#lenBig();
    return `${ms}-${seq}`;
  }

  // ---------------------------------------------------------------- the steps

  #step(): void {
    switch (this.#state) {
      case S_MAGIC:
        this.#readMagic();
        return;
      case S_TOP:
        this.#readTop();
        return;
      case S_VALUE:
        this.#readValueStart();
        return;
      case S_DUMP_TYPE:
        this.#readDumpType();
        return;
      case S_STRING_RAW:
        this.#readRawStringPiece();
        return;
      case S_STRING_LZF:
        this.#readLzfStringPiece();
        return;
      case S_ITEMS:
        this.#readItems();
        return;
      case S_QUICKLIST:
        this.#readQuicklistNodes();
        return;
      case S_STREAM_NODES:
        this.#readStreamNodes();
        return;
      case S_STREAM_META:
        this.#readStreamMeta();
        return;
      case S_STREAM_GROUP:
        this.#readStreamGroup();
        return;
      case S_STREAM_GROUP_PEL:
        this.#readStreamGroupPel();
        return;
      case S_STREAM_CONSUMERS:
        this.#readStreamConsumersCount();
        return;
      case S_STREAM_CONSUMER:
        this.#readStreamConsumer();
        return;
      case S_STREAM_CONSUMER_PEL:
        this.#readStreamConsumerPel();
        return;
      case S_STREAM_IDMP:
        this.#readStreamIdmp();
        return;
      case S_STREAM_IDMP_PRODUCER:
        this.#readStreamIdmpProducer();
        return;
      case S_STREAM_IDMP_ENTRY:
        this.#readStreamIdmpEntries();
        return;
      case S_MODULE:
        this.#readModuleItems();
        return;
      default:
        throw this.#err('ERR_RDB_STATE', `the parser is in state ${this.#state} and cannot read`);
    }
  }

  #readMagic(): void {
    const head = this.#bytes(9);
    const text = head.toString('latin1');
    let version: number;
    if (text.startsWith('REDIS') && /^\d{4}$/.test(text.slice(5))) {
      version = Number(text.slice(5));
      if (version < 1 || version > MAX_REDIS_RDB_VERSION)
        throw this.#err(
          'ERR_RDB_VERSION',
          `RDB version ${version} is not supported (this parser reads REDIS0001 to REDIS00${MAX_REDIS_RDB_VERSION} and VALKEY080); upgrade @redis-events/replication`,
        );
    } else if (text.startsWith('VALKEY') && /^\d{3}$/.test(text.slice(6))) {
      version = Number(text.slice(6));
      if (!VALKEY_RDB_VERSIONS.includes(version))
        throw this.#err(
          'ERR_RDB_VERSION',
          `Valkey RDB version ${version} is not supported (this parser reads VALKEY080); upgrade @redis-events/replication`,
        );
      this.#valkey = true;
    } else {
      throw this.#err(
        'ERR_RDB_VERSION',
        `not an RDB: the first bytes are ${JSON.stringify(text.replace(/[^\x20-\x7e]/g, '?'))}, expected REDISnnnn or VALKEYnnn`,
      );
    }
    this.#version = version;
    if (this.#verifyChecksum && version >= 5) this.#crc = new Crc64();
    this.#state = S_TOP;
    this.#emit({ kind: 'header', magic: this.#valkey ? 'VALKEY' : 'REDIS', version, offset: 0 });
  }

  #readTop(): void {
    const offset = this.#base + this.#pos;
    const type = this.#u8();
    switch (type) {
      case RDB_OPCODE.EOF:
        this.#readEof(offset);
        return;
      case RDB_OPCODE.SELECTDB: {
        const db = this.#len();
        this.#db = db;
        this.#slot = undefined;
        this.#emit({ kind: 'selectdb', db, offset });
        return;
      }
      case RDB_OPCODE.RESIZEDB: {
        const size = this.#len();
        const expiresSize = this.#len();
        this.#emit({ kind: 'resizedb', db: this.#db, size, expiresSize, offset });
        return;
      }
      case RDB_OPCODE.SLOT_INFO: {
        const slot = this.#len();
        const size = this.#len();
        const expiresSize = this.#len();
        this.#slot = slot;
        this.#emit({ kind: 'slot-info', db: this.#db, slot, size, expiresSize, offset });
        return;
      }
      case RDB_OPCODE.AUX: {
        const name = this.#string();
        const value = this.#string();
        this.#emit({ kind: 'aux', name: name.toString('latin1'), value, offset });
        return;
      }
      case RDB_OPCODE.EXPIRETIME: {
        const seconds = this.#bytes(4).readInt32LE(0);
        this.#attribute(offset);
        this.#pendingExpire = seconds * 1000;
        return;
      }
      case RDB_OPCODE.EXPIRETIME_MS: {
        const ms = this.#millis();
        this.#attribute(offset);
        this.#pendingExpire = ms;
        return;
      }
      case RDB_OPCODE.IDLE: {
        const idle = this.#len();
        this.#attribute(offset);
        this.#pendingIdle = idle;
        return;
      }
      case RDB_OPCODE.FREQ: {
        const freq = this.#u8();
        this.#attribute(offset);
        this.#pendingFreq = freq;
        return;
      }
      case RDB_OPCODE.FUNCTION2: {
        const code = this.#string();
        this.#emit({ kind: 'function', code, offset });
        return;
      }
      case RDB_OPCODE.FUNCTION_PRE_GA: {
        // Redis 7.0-rc1 and rc2: the library's name, engine and description saved apart from its code.
        const name = this.#string();
        const engine = this.#string();
        const description = this.#len() !== 0 ? this.#string() : undefined;
        const body = this.#string();
        // Redis 7.0 GA loaded it as this source (the description dropped), which FUNCTION LOAD takes.
        const code = Buffer.concat([SHEBANG, engine, NAME_IS, name, NEWLINE, body]);
        const preGa: RdbFunctionPreGa =
          description === undefined ? { name, engine, code: body } : { name, engine, description, code: body };
        this.#emit({ kind: 'function', code, preGa, offset });
        return;
      }
      case RDB_OPCODE.MODULE_AUX: {
        const id = this.#lenBig();
        const whenOpcode = this.#len();
        const when = this.#len();
        if (whenOpcode !== MODULE_OPCODE.UINT)
          throw this.#err('ERR_RDB_CORRUPT', `module aux data has the bad "when" opcode ${whenOpcode}`, type);
        const info = moduleTypeFromId(id);
        this.#moduleAux = { module: { id, ...info }, when, part: 0, offset };
        this.#batch = [];
        this.#batchBytes = 0;
        this.#state = S_MODULE;
        return;
      }
      case 243: {
        if (this.#valkey) {
          this.#readSlotImport(offset);
          return;
        }
        this.#readKeyMeta(offset);
        return;
      }
    }
    if (!this.#knownType(type)) {
      const opcode = type >= 200;
      throw this.#err(
        opcode ? 'ERR_RDB_UNKNOWN_OPCODE' : 'ERR_RDB_UNKNOWN_TYPE',
        `${opcode ? 'opcode' : 'value type'} ${type} is unknown in ${this.#valkey ? 'VALKEY' : 'REDIS'} RDB version ${this.#version}; a value of an unknown type cannot be skipped, so parsing stops here`,
        type,
      );
    }
    const key = this.#string();
    this.#cur = {
      db: this.#db,
      key,
      rdbType: type,
      typeName: rdbTypeName(type, this.#valkey),
      type: entryType(type, this.#valkey),
      offset: this.#pendingOffset >= 0 ? this.#pendingOffset : offset,
      expireAt: this.#pendingExpire,
      idle: this.#pendingIdle,
      freq: this.#pendingFreq,
      slot: this.#slot,
      meta: this.#pendingMeta,
      module: undefined,
      part: 0,
    };
    this.#pendingOffset = -1;
    this.#pendingExpire = this.#pendingIdle = this.#pendingFreq = undefined;
    this.#pendingMeta = undefined;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#state = S_VALUE;
    // The key is committed; read the value in the same step (a retry resumes at the value).
    this.#mark = this.#pos;
    this.#readValueStart();
  }

  #knownType(type: number): boolean {
    return this.#knownTypeFor(type, this.#valkey);
  }

  #knownTypeFor(type: number, valkey: boolean): boolean {
    if (type === 8) return false;
    if (valkey) return type <= RDB_TYPE.VALKEY_HASH_2;
    return type <= RDB_TYPE.STREAM_LISTPACKS_4;
  }

  #attribute(offset: number): void {
    if (this.#pendingOffset < 0) this.#pendingOffset = offset;
  }

  #readEof(offset: number): void {
    let checksum = 0n;
    if (this.#version >= 5) this.#ensure(8);
    this.#crc?.update(this.#buf, this.#crcFrom, this.#pos);
    this.#crcFrom = this.#pos;
    if (this.#version >= 5) {
      checksum = this.#buf.readBigUInt64LE(this.#pos);
      this.#pos += 8;
    }
    // Bytes after the trailer are not RDB: keep them out of the checksum and out of the parse.
    this.#crcFrom = this.#pos;
    let verified = false;
    if (this.#crc && checksum !== 0n) {
      const expected = this.#crc.digest();
      if (expected !== checksum)
        throw this.#err(
          'ERR_RDB_CHECKSUM',
          `the CRC64 trailer is 0x${checksum.toString(16)} but the bytes give 0x${expected.toString(16)}: the RDB is damaged`,
          RDB_OPCODE.EOF,
        );
      verified = true;
    }
    this.#crc = undefined;
    this.#state = S_DONE;
    this.#emit({ kind: 'end', checksum, checksumVerified: verified, size: this.#base + this.#pos, offset });
  }

  #readSlotImport(offset: number): void {
    const jobName = this.#string();
    const count = this.#len();
    // Read as one unit: a count beyond the 16384 slots is corruption, and must not be retried at length.
    if (count > 16384) throw this.#err('ERR_RDB_CORRUPT', `a slot import of ${count} ranges is impossible`, 243);
    const ranges: [number, number][] = [];
    for (let i = 0; i < count; i++) ranges.push([this.#len(), this.#len()]);
    this.#emit({ kind: 'slot-import', jobName, ranges, offset });
  }

  #readKeyMeta(offset: number): void {
    const count = this.#len();
    // Read as one unit, so bounded: Redis allows 7 module classes, each saving a few items.
    if (count > 64) throw this.#err('ERR_RDB_CORRUPT', `key metadata with ${count} classes is impossible`, 243);
    const classes: KeyMetaClass[] = [];
    for (let i = 0; i < count; i++) {
      const spec = this.#bytes(4).readUInt32LE(0);
      const items: ModuleItem[] = [];
      for (;;) {
        const item = this.#moduleItem();
        if (!item) break;
        if (items.length >= 1024)
          throw this.#err('ERR_RDB_CORRUPT', 'key metadata class with more than 1024 items', 243);
        items.push(item);
      }
      classes.push({ ...keyMetaClassFromSpec(spec), items });
    }
    this.#attribute(offset);
    this.#pendingMeta = classes;
  }

  /** One module-serialized item, or undefined at its EOF marker. */
  #moduleItem(): ModuleItem | undefined {
    const opcode = this.#len();
    switch (opcode) {
      case MODULE_OPCODE.EOF:
        return undefined;
      case MODULE_OPCODE.SINT:
        return { kind: 'sint', value: BigInt.asIntN(64, this.#lenBig()) };
      case MODULE_OPCODE.UINT:
        return { kind: 'uint', value: this.#lenBig() };
      case MODULE_OPCODE.FLOAT:
        return { kind: 'float', value: this.#bytes(4).readFloatLE(0) };
      case MODULE_OPCODE.DOUBLE:
        return { kind: 'double', value: this.#binaryDouble() };
      case MODULE_OPCODE.STRING:
        return { kind: 'string', value: this.#string() };
      default:
        throw this.#err('ERR_RDB_CORRUPT', `unknown module value opcode ${opcode}`);
    }
  }

  // ---------------------------------------------------------------- values

  #readValueStart(): void {
    const cur = this.#cur as Current;
    const type = cur.rdbType;
    if (this.#valkey && type === RDB_TYPE.VALKEY_HASH_2) {
      this.#startItems(this.#len(), I_HASH_VALKEY);
      return;
    }
    switch (type) {
      case RDB_TYPE.STRING:
        this.#readStringValue();
        return;
      case RDB_TYPE.LIST:
      case RDB_TYPE.SET:
        this.#startItems(this.#len(), I_STRING);
        return;
      case RDB_TYPE.ZSET:
        this.#startItems(this.#len(), I_ZSET_TEXT);
        return;
      case RDB_TYPE.ZSET_2:
        this.#startItems(this.#len(), I_ZSET_BINARY);
        return;
      case RDB_TYPE.HASH:
        this.#startItems(this.#len(), I_HASH);
        return;
      case RDB_TYPE.HASH_METADATA: {
        const minExpire = this.#millis();
        const count = this.#len();
        this.#minExpire = minExpire;
        this.#startItems(count, I_HASH_TTL_RELATIVE);
        return;
      }
      case RDB_TYPE.HASH_METADATA_PRE_GA:
        this.#startItems(this.#len(), I_HASH_TTL_ABSOLUTE);
        return;
      case RDB_TYPE.MODULE_PRE_GA:
        throw this.#err(
          'ERR_RDB_UNSUPPORTED',
          'type 6 is a module value in the Redis 4.0 release-candidate format, which has no markers to skip it and which Redis itself refuses; re-save the RDB with Redis 4.0 GA or later',
        );
      case RDB_TYPE.MODULE_2: {
        const id = this.#lenBig();
        cur.module = { id, ...moduleTypeFromId(id) };
        this.#state = S_MODULE;
        return;
      }
      case RDB_TYPE.LIST_QUICKLIST:
      case RDB_TYPE.LIST_QUICKLIST_2: {
        this.#left = this.#len();
        this.#state = S_QUICKLIST;
        if (this.#left === 0) this.#finishEntry();
        return;
      }
      case RDB_TYPE.STREAM_LISTPACKS:
      case RDB_TYPE.STREAM_LISTPACKS_2:
      case RDB_TYPE.STREAM_LISTPACKS_3:
      case RDB_TYPE.STREAM_LISTPACKS_4:
        this.#startStream(type);
        return;
    }
    // The remaining types are one encoded string (with a minimum expiry first for 25).
    if (type === RDB_TYPE.HASH_LISTPACK_EX) this.#millis();
    const blob = this.#string();
    this.#decodeBlob(type, blob);
    this.#finishEntry();
  }

  #decodeBlob(type: number, blob: Buffer): void {
    switch (type) {
      case RDB_TYPE.HASH_ZIPMAP: {
        const v = decodeZipmap(blob);
        for (let i = 0; i < v.length; i += 2) this.#pushHash(v[i] as Buffer, v[i + 1] as Buffer, undefined);
        return;
      }
      case RDB_TYPE.LIST_ZIPLIST:
      case RDB_TYPE.SET_LISTPACK: {
        const tape = this.#tape;
        if (type === RDB_TYPE.LIST_ZIPLIST) scanZiplist(blob, tape);
        else scanListpack(blob, tape);
        for (let i = 0; i < tape.count; i++) this.#push(tape.bytesOf(blob, i));
        return;
      }
      case RDB_TYPE.SET_INTSET:
        for (const v of decodeIntset(blob)) this.#push(Buffer.from(String(v), 'latin1'));
        return;
      case RDB_TYPE.ZSET_ZIPLIST:
      case RDB_TYPE.ZSET_LISTPACK: {
        const tape = this.#tape;
        if (type === RDB_TYPE.ZSET_ZIPLIST) scanZiplist(blob, tape);
        else scanListpack(blob, tape);
        if (tape.count % 2 !== 0) throw new EncodingError('sorted set encoding holds an odd number of elements');
        for (let i = 0; i < tape.count; i += 2) this.#pushZ(tape.bytesOf(blob, i), tape.numberOf(blob, i + 1));
        return;
      }
      case RDB_TYPE.HASH_ZIPLIST:
      case RDB_TYPE.HASH_LISTPACK: {
        const tape = this.#tape;
        if (type === RDB_TYPE.HASH_ZIPLIST) scanZiplist(blob, tape);
        else scanListpack(blob, tape);
        if (tape.count % 2 !== 0) throw new EncodingError('hash encoding holds an odd number of elements');
        for (let i = 0; i < tape.count; i += 2)
          this.#pushHash(tape.bytesOf(blob, i), tape.bytesOf(blob, i + 1), undefined);
        return;
      }
      case RDB_TYPE.HASH_LISTPACK_EX_PRE_GA:
      case RDB_TYPE.HASH_LISTPACK_EX: {
        const tape = this.#tape;
        scanListpack(blob, tape);
        if (tape.count % 3 !== 0)
          throw new EncodingError('hash-with-expiry listpack is not made of field, value, ttl triplets');
        for (let i = 0; i < tape.count; i += 3) {
          const ttl = tape.numberOf(blob, i + 2);
          this.#pushHash(tape.bytesOf(blob, i), tape.bytesOf(blob, i + 1), ttl > 0 ? ttl : undefined);
        }
        return;
      }
      default:
        throw this.#err('ERR_RDB_UNKNOWN_TYPE', `value type ${type} is unknown`);
    }
  }

  #readStringValue(): void {
    if (this.#pos >= this.#buf.length) this.#ensure(1);
    const b = this.#buf[this.#pos] as number;
    if (b >> 6 !== 3) {
      const len = this.#len();
      if (len > this.#maxPartBytes) {
        this.#left = len;
        this.#strPart = undefined;
        this.#strFill = 0;
        this.#state = S_STRING_RAW;
        return;
      }
      if (this.#buf.length - this.#pos < len) this.#ensure(len);
      const s = this.#buf.subarray(this.#pos, this.#pos + len);
      this.#pos += len;
      this.#emitString(s);
      return;
    }
    if ((b & 0x3f) === 3) {
      this.#pos++;
      const clen = this.#len();
      const ulen = this.#len();
      this.#checkLzf(clen, ulen);
      if (ulen > this.#maxPartBytes) {
        this.#left = clen;
        this.#lzf = new LzfStreamDecoder(ulen, this.#maxPartBytes, clen);
        this.#lzfAt = this.#base + this.#pos;
        this.#state = S_STRING_LZF;
        return;
      }
      this.#checkBlob(clen, 'an LZF string');
      if (this.#buf.length - this.#pos < clen) this.#ensure(clen);
      const at = this.#pos;
      this.#pos += clen;
      this.#emitString(lzfDecompress(this.#buf, ulen, at, at + clen));
      return;
    }
    this.#emitString(this.#string());
  }

  #emitString(value: Buffer): void {
    this.#emitEntry(value, true);
    this.#endEntry();
  }

  /** Streams a long raw string: copies what is at hand into the part buffer, emits full parts. */
  #readRawStringPiece(): void {
    while (this.#left > 0) {
      const n = Math.min(this.#left, this.#buf.length - this.#pos);
      if (n === 0) {
        if (!this.#rotate()) throw NEED_MORE;
        continue;
      }
      if (!this.#strPart) {
        this.#strPart = Buffer.allocUnsafe(Math.min(this.#maxPartBytes, this.#left));
        this.#strFill = 0;
      }
      const take = Math.min(n, this.#strPart.length - this.#strFill);
      this.#buf.copy(this.#strPart, this.#strFill, this.#pos, this.#pos + take);
      this.#pos += take;
      this.#mark = this.#pos;
      this.#strFill += take;
      this.#left -= take;
      if (this.#strFill === this.#strPart.length) {
        const part = this.#strPart;
        this.#strPart = undefined;
        this.#emitEntry(part, this.#left === 0);
      }
    }
    this.#endEntry();
  }

  #readLzfStringPiece(): void {
    const decoder = this.#lzf as LzfStreamDecoder;
    const emit = (chunk: Buffer) => this.#emitEntry(chunk, false);
    while (this.#left > 0) {
      const n = Math.min(this.#left, this.#buf.length - this.#pos);
      if (n === 0) {
        if (!this.#rotate()) throw NEED_MORE;
        continue;
      }
      decoder.write(this.#buf.subarray(this.#pos, this.#pos + n), emit);
      this.#pos += n;
      this.#mark = this.#pos;
      this.#left -= n;
    }
    // The last piece is held back by one so that the final part carries `last: true`.
    let pending: Buffer | undefined;
    decoder.finish((chunk) => {
      pending = chunk;
    });
    this.#lzf = undefined;
    this.#emitEntry(pending ?? Buffer.alloc(0), true);
    this.#endEntry();
  }

  #startItems(count: number, kind: number): void {
    this.#left = count;
    this.#itemKind = kind;
    this.#state = S_ITEMS;
    if (count === 0) this.#finishEntry();
  }

  #readItems(): void {
    const kind = this.#itemKind;
    while (this.#left > 0) {
      switch (kind) {
        case I_STRING:
          this.#push(this.#string());
          break;
        case I_ZSET_TEXT: {
          const member = this.#string();
          this.#pushZ(member, this.#textScore());
          break;
        }
        case I_ZSET_BINARY: {
          const member = this.#string();
          this.#pushZ(member, this.#binaryDouble());
          break;
        }
        case I_HASH: {
          const field = this.#string();
          this.#pushHash(field, this.#string(), undefined);
          break;
        }
        case I_HASH_TTL_RELATIVE:
        case I_HASH_TTL_ABSOLUTE: {
          const ttl = this.#len();
          const field = this.#string();
          const value = this.#string();
          const expireAt = ttl === 0 ? 0 : kind === I_HASH_TTL_RELATIVE ? ttl + this.#minExpire - 1 : ttl;
          if (expireAt > EXPIRE_TIME_MAX)
            throw this.#err('ERR_RDB_CORRUPT', `hash field expiry ${expireAt} is out of range`);
          this.#pushHash(field, value, expireAt === 0 ? undefined : expireAt);
          break;
        }
        default: {
          const field = this.#string();
          const value = this.#string();
          const expireAt = this.#millis();
          this.#pushHash(field, value, expireAt === -1 ? undefined : expireAt);
        }
      }
      this.#left--;
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    this.#finishEntry();
  }

  #readQuicklistNodes(): void {
    const quicklist2 = (this.#cur as Current).rdbType === RDB_TYPE.LIST_QUICKLIST_2;
    while (this.#left > 0) {
      let container = 2;
      if (quicklist2) {
        container = this.#len();
        if (container !== 1 && container !== 2)
          throw this.#err('ERR_RDB_CORRUPT', `quicklist node has the unknown container ${container}`);
      }
      const blob = this.#string();
      if (container === 1) this.#push(blob);
      else {
        const tape = this.#tape;
        if (quicklist2) scanListpack(blob, tape);
        else scanZiplist(blob, tape);
        for (let i = 0; i < tape.count; i++) this.#push(tape.bytesOf(blob, i));
      }
      this.#left--;
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    this.#finishEntry();
  }

  // ---------------------------------------------------------------- streams

  #startStream(type: number): void {
    const nodes = this.#len();
    const version =
      type === RDB_TYPE.STREAM_LISTPACKS
        ? 1
        : type === RDB_TYPE.STREAM_LISTPACKS_2
          ? 2
          : type === RDB_TYPE.STREAM_LISTPACKS_3
            ? 3
            : 4;
    this.#stream = {
      version,
      meta: { length: 0, lastId: '0-0' },
      groups: [],
      groupsLeft: 0,
      group: undefined,
      pending: [],
      pendingById: new Map(),
      pelLeft: 0,
      consumers: [],
      consumersLeft: 0,
      consumer: undefined,
      consumerPending: [],
      idmp: { duration: 0, maxEntries: 0, producers: [] },
      producersLeft: 0,
      producerEntriesLeft: 0,
      records: 0,
    };
    this.#left = nodes;
    this.#state = S_STREAM_NODES;
  }

  #readStreamNodes(): void {
    while (this.#left > 0) {
      const master = this.#string();
      const lp = this.#string();
      if (master.length !== 16)
        throw this.#err('ERR_RDB_CORRUPT', `stream node key is ${master.length} bytes, a stream ID has 16`);
      this.#decodeStreamNode(master, lp);
      this.#left--;
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    this.#state = S_STREAM_META;
  }

  #decodeStreamNode(master: Buffer, lp: Buffer): void {
    const v = decodeListpack(lp);
    const at = (i: number): CompactValue => {
      const x = v[i];
      if (x === undefined) throw new EncodingError('stream listpack ends in the middle of an entry');
      return x;
    };
    const int = (i: number): number => {
      const x = at(i);
      if (typeof x !== 'number') throw new EncodingError('stream listpack has a string where a counter belongs');
      return x;
    };
    const masterMs = master.readBigUInt64BE(0);
    const masterSeq = master.readBigUInt64BE(8);
    const count = int(0);
    const deleted = int(1);
    const masterFieldCount = int(2);
    const masterFields: Buffer[] = [];
    for (let i = 0; i < masterFieldCount; i++) masterFields.push(valueBytes(at(3 + i)));
    let i = 3 + masterFieldCount;
    if (int(i) !== 0) throw new EncodingError('stream listpack master entry lacks its terminator');
    i++;
    let seen = 0;
    while (i < v.length) {
      const flags = int(i);
      const id = `${masterMs + valueBigInt(at(i + 1))}-${masterSeq + valueBigInt(at(i + 2))}`;
      i += 3;
      const fields: [Buffer, Buffer][] = [];
      if (flags & 2) {
        for (let f = 0; f < masterFieldCount; f++) fields.push([masterFields[f] as Buffer, valueBytes(at(i + f))]);
        i += masterFieldCount;
      } else {
        const n = int(i);
        i++;
        for (let f = 0; f < n; f++) fields.push([valueBytes(at(i + 2 * f)), valueBytes(at(i + 2 * f + 1))]);
        i += 2 * n;
      }
      int(i); // lp-count, the entry's back pointer
      i++;
      seen++;
      if (!(flags & 1)) {
        let bytes = 24;
        for (const [f, val] of fields) bytes += f.length + val.length;
        this.#pushItem({ id, fields } satisfies StreamItem, bytes);
      }
    }
    if (seen !== count + deleted)
      throw new EncodingError(`stream listpack says ${count + deleted} entries but holds ${seen}`);
  }

  #readStreamMeta(): void {
    const s = this.#stream as StreamState;
    const length = this.#len();
    const lastId = this.#lenStreamId();
    const meta: StreamState['meta'] = { length, lastId };
    if (s.version >= 2) {
      meta.firstId = this.#lenStreamId();
      meta.maxDeletedId = this.#lenStreamId();
      meta.entriesAdded = this.#len();
    }
    const groups = this.#len();
    s.meta = meta;
    s.groupsLeft = groups;
    this.#state = S_STREAM_GROUP;
    this.#settleStream();
  }

  /**
   * Takes the stream steps that need no bytes (an empty pending list, the end of a consumer, of a
   * group, of the groups) at once, so that a value ending exactly at the end of the input (a DUMP
   * payload) completes without waiting for bytes that will not come.
   */
  #settleStream(): void {
    const s = this.#stream as StreamState;
    for (;;) {
      if (this.#state === S_STREAM_GROUP_PEL && s.pelLeft === 0) {
        this.#state = S_STREAM_CONSUMERS;
        return;
      }
      if (this.#state === S_STREAM_CONSUMER_PEL && s.pelLeft === 0) {
        s.consumers.push({ ...(s.consumer as NonNullable<StreamState['consumer']>), pending: s.consumerPending });
        s.consumer = undefined;
        s.consumersLeft--;
        this.#state = S_STREAM_CONSUMER;
        continue;
      }
      if (this.#state === S_STREAM_CONSUMER && s.consumersLeft === 0) {
        const group = s.group as NonNullable<StreamState['group']>;
        s.groups.push({ ...group, pending: s.pending, consumers: s.consumers });
        s.group = undefined;
        s.pending = [];
        s.pendingById = new Map();
        s.groupsLeft--;
        this.#state = S_STREAM_GROUP;
        continue;
      }
      if (this.#state === S_STREAM_GROUP && s.groupsLeft === 0) {
        if (s.version >= 4) this.#state = S_STREAM_IDMP;
        else this.#finishStream();
      }
      return;
    }
  }

  /** Counts one consumer-group record of the current stream against maxStreamGroupRecords. */
  #groupRecord(s: StreamState): void {
    if (++s.records > this.#maxGroupRecords)
      throw this.#err(
        'ERR_RDB_LIMIT',
        `the stream's consumer groups hold more than maxStreamGroupRecords (${this.#maxGroupRecords}) pending entries, consumers and producer IDs, which are delivered whole in its last part; raise the option if memory allows`,
      );
  }

  #readStreamGroup(): void {
    const s = this.#stream as StreamState;
    const name = this.#string();
    const lastDeliveredId = this.#lenStreamId();
    const entriesRead = s.version >= 2 ? this.#lenSigned() : undefined;
    const pel = this.#len();
    s.group = entriesRead === undefined ? { name, lastDeliveredId } : { name, lastDeliveredId, entriesRead };
    s.pending = [];
    s.pendingById = new Map();
    s.pelLeft = pel;
    this.#state = S_STREAM_GROUP_PEL;
    this.#settleStream();
  }

  #readStreamGroupPel(): void {
    const s = this.#stream as StreamState;
    while (s.pelLeft > 0) {
      const id = this.#rawStreamId();
      const deliveryTime = this.#millis();
      const deliveryCount = this.#len();
      const entry: MutablePending = { id, deliveryTime, deliveryCount };
      this.#groupRecord(s);
      s.pending.push(entry);
      s.pendingById.set(id, entry);
      s.pelLeft--;
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    this.#settleStream();
  }

  #readStreamConsumersCount(): void {
    const s = this.#stream as StreamState;
    s.consumersLeft = this.#len();
    s.consumers = [];
    this.#state = S_STREAM_CONSUMER;
    this.#settleStream();
  }

  #readStreamConsumer(): void {
    const s = this.#stream as StreamState;
    const name = this.#string();
    const seenTime = this.#millis();
    const activeTime = s.version >= 3 ? this.#millis() : undefined;
    const pel = this.#len();
    this.#groupRecord(s);
    s.consumer = activeTime === undefined ? { name, seenTime } : { name, seenTime, activeTime };
    s.consumerPending = [];
    s.pelLeft = pel;
    this.#state = S_STREAM_CONSUMER_PEL;
    this.#settleStream();
  }

  #readStreamConsumerPel(): void {
    const s = this.#stream as StreamState;
    while (s.pelLeft > 0) {
      const id = this.#rawStreamId();
      const entry = s.pendingById.get(id);
      if (!entry) throw this.#err('ERR_RDB_CORRUPT', `consumer pending entry ${id} is not in its group's pending list`);
      entry.consumer = (s.consumer as NonNullable<StreamState['consumer']>).name;
      s.consumerPending.push(id);
      s.pelLeft--;
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    this.#settleStream();
  }

  #readStreamIdmp(): void {
    const s = this.#stream as StreamState;
    const duration = this.#len();
    const maxEntries = this.#len();
    const producers = this.#len();
    s.idmp = { duration, maxEntries, producers: [] };
    s.producersLeft = producers;
    this.#state = S_STREAM_IDMP_PRODUCER;
  }

  #readStreamIdmpProducer(): void {
    const s = this.#stream as StreamState;
    if (s.producersLeft === 0) {
      const iidsAdded = this.#len();
      const iidsDuplicates = this.#len();
      const idmp: StreamIdmp = { ...s.idmp, iidsAdded, iidsDuplicates };
      this.#finishStream(idmp);
      return;
    }
    const pid = this.#string();
    const count = this.#len();
    s.idmp.producers.push({ pid, entries: [] });
    s.producerEntriesLeft = count;
    s.producersLeft--;
    this.#state = S_STREAM_IDMP_ENTRY;
  }

  #readStreamIdmpEntries(): void {
    const s = this.#stream as StreamState;
    const producer = s.idmp.producers[s.idmp.producers.length - 1] as { entries: { iid: Buffer; id: string }[] };
    while (s.producerEntriesLeft > 0) {
      const iid = this.#string();
      const id = this.#lenStreamId();
      this.#groupRecord(s);
      producer.entries.push({ iid, id });
      s.producerEntriesLeft--;
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    this.#state = S_STREAM_IDMP_PRODUCER;
  }

  #finishStream(idmp?: StreamIdmp): void {
    const s = this.#stream as StreamState;
    const meta: StreamMeta = idmp ? { ...s.meta, groups: s.groups, idmp } : { ...s.meta, groups: s.groups };
    this.#stream = undefined;
    this.#emitEntry({ entries: this.#batch as StreamItem[], meta }, true);
    this.#endEntry();
  }

  // ---------------------------------------------------------------- modules

  #readModuleItems(): void {
    for (;;) {
      const item = this.#moduleItem();
      if (!item) break;
      this.#pushItem(item, item.kind === 'string' ? item.value.length + 16 : 16);
      this.#mark = this.#pos;
      if (this.#pos === this.#buf.length) this.#rotate();
    }
    if (this.#moduleAux) {
      this.#flushModuleAux(true);
      this.#moduleAux = undefined;
      this.#state = S_TOP;
      return;
    }
    this.#finishEntry();
  }

  #flushModuleAux(last: boolean): void {
    const aux = this.#moduleAux as ModuleAuxState;
    this.#emit({
      kind: 'module-aux',
      module: aux.module,
      when: aux.when,
      items: this.#batch as ModuleItem[],
      part: aux.part++,
      last,
      offset: aux.offset,
    });
    this.#batch = [];
    this.#batchBytes = 0;
  }

  // ---------------------------------------------------------------- batching and emitting

  // A full batch is flushed when the next element arrives, so the last part of a key is never empty.
  #push(element: Buffer): void {
    if (this.#batch.length >= this.#batchSize || this.#batchBytes >= this.#maxPartBytes) this.#flushPart();
    this.#batch.push(element);
    this.#batchBytes += element.length + 16;
  }

  #pushZ(member: Buffer, score: number): void {
    this.#pushItem({ member, score } satisfies ZSetMember, member.length + 24);
  }

  #pushHash(field: Buffer, value: Buffer, expireAt: number | undefined): void {
    const item: HashField = expireAt === undefined ? { field, value } : { field, value, expireAt };
    this.#pushItem(item, field.length + value.length + 32);
  }

  #pushItem(item: unknown, bytes: number): void {
    if (this.#batch.length >= this.#batchSize || this.#batchBytes >= this.#maxPartBytes) this.#flushPart();
    this.#batch.push(item);
    this.#batchBytes += bytes;
  }

  #flushPart(): void {
    if (this.#moduleAux) {
      this.#flushModuleAux(false);
      return;
    }
    const cur = this.#cur as Current;
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#emitEntry(cur.type === 'stream' ? { entries: batch as StreamItem[] } : batch, false);
  }

  /** Emits the final part of a collection and returns to the top level. */
  #finishEntry(): void {
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#emitEntry(batch, true);
    this.#endEntry();
  }

  #emitEntry(value: unknown, last: boolean): void {
    const cur = this.#cur as Current;
    const event: Record<string, unknown> = {
      kind: 'entry',
      type: cur.type,
      db: cur.db,
      key: cur.key,
      rdbType: cur.rdbType,
      rdbTypeName: cur.typeName,
      part: cur.part++,
      last,
      offset: cur.offset,
      value,
    };
    if (cur.expireAt !== undefined) event.expireAt = cur.expireAt;
    if (cur.idle !== undefined) event.idle = cur.idle;
    if (cur.freq !== undefined) event.freq = cur.freq;
    if (cur.slot !== undefined) event.slot = cur.slot;
    if (cur.meta !== undefined) event.meta = cur.meta;
    if (cur.module !== undefined) event.module = cur.module;
    this.#emit(event as unknown as RdbEntryEvent);
  }

  #endEntry(): void {
    this.#cur = undefined;
    this.#state = this.#valueOnly ? S_DONE : S_TOP;
  }

  static {
    // For dump-payload.ts only: a parser that reads one value (after optional key metadata), no header.
    beginValueOnly = (parser, version, valkey) => {
      parser.#valueOnly = true;
      parser.#valkey = valkey;
      parser.#version = version;
      parser.#state = S_DUMP_TYPE;
    };
  }

  /** A DUMP payload's type byte, after Redis 8.6 key metadata when present. */
  #readDumpType(): void {
    const offset = this.#base + this.#pos;
    const type = this.#u8();
    if (type === RDB_OPCODE.KEY_META && !this.#valkey) {
      this.#readKeyMeta(offset);
      return;
    }
    if (!this.#knownType(type))
      throw this.#err('ERR_RDB_UNKNOWN_TYPE', `value type ${type} is unknown in DUMP version ${this.#version}`, type);
    this.#cur = {
      db: 0,
      key: Buffer.alloc(0),
      rdbType: type,
      typeName: rdbTypeName(type, this.#valkey),
      type: entryType(type, this.#valkey),
      offset: this.#pendingOffset >= 0 ? this.#pendingOffset : offset,
      expireAt: undefined,
      idle: undefined,
      freq: undefined,
      slot: undefined,
      meta: this.#pendingMeta,
      module: undefined,
      part: 0,
    };
    this.#pendingMeta = undefined;
    this.#state = S_VALUE;
    this.#mark = this.#pos;
    this.#readValueStart();
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `${name} must be a positive integer, got ${value}`);
  return value;
}

function entryType(type: number, valkey: boolean): EntryType {
  switch (type) {
    case RDB_TYPE.STRING:
      return 'string';
    case RDB_TYPE.LIST:
    case RDB_TYPE.LIST_ZIPLIST:
    case RDB_TYPE.LIST_QUICKLIST:
    case RDB_TYPE.LIST_QUICKLIST_2:
      return 'list';
    case RDB_TYPE.SET:
    case RDB_TYPE.SET_INTSET:
    case RDB_TYPE.SET_LISTPACK:
      return 'set';
    case RDB_TYPE.ZSET:
    case RDB_TYPE.ZSET_2:
    case RDB_TYPE.ZSET_ZIPLIST:
    case RDB_TYPE.ZSET_LISTPACK:
      return 'zset';
    case RDB_TYPE.STREAM_LISTPACKS:
    case RDB_TYPE.STREAM_LISTPACKS_2:
    case RDB_TYPE.STREAM_LISTPACKS_3:
      return 'stream';
    case RDB_TYPE.STREAM_LISTPACKS_4:
      return valkey ? 'hash' : 'stream';
    case RDB_TYPE.MODULE_2:
    case RDB_TYPE.MODULE_PRE_GA:
      return 'module';
    default:
      return 'hash';
  }
}

/** `ms-seq` from two big-endian unsigned 64-bit integers at `at`. */
function streamIdText(buf: Buffer, at: number): string {
  const msHi = buf.readUInt32BE(at);
  const seqHi = buf.readUInt32BE(at + 8);
  const ms = msHi < 0x200000 ? String(msHi * TWO_32 + buf.readUInt32BE(at + 4)) : String(buf.readBigUInt64BE(at));
  const seq =
    seqHi < 0x200000 ? String(seqHi * TWO_32 + buf.readUInt32BE(at + 12)) : String(buf.readBigUInt64BE(at + 8));
  return `${ms}-${seq}`;
}
