import { isAscii } from 'node:buffer';
import { printable, ReplyError, RespError, RespProtocolError } from './errors.ts';
import { Attributed, type RespMapValue, type RespNode, type RespValue, VerbatimString } from './values.ts';

/** Options of {@link RespDecoder}; every output choice is made once, here. */
export interface RespDecoderOptions<Value = RespValue> {
  /** Called with each complete top-level value that is not a push: replies, in order. */
  readonly onReply: (value: Value) => void;
  /** Called with each top-level push (`>`). Without it, pushes go to `onReply`. */
  readonly onPush?: ((value: Value) => void) | undefined;
  /**
   * Bulk strings (and verbatim texts, map keys from bulk strings) as JS strings decoded from
   * UTF-8 (`'string'`, the default) or as Buffers (`'buffer'`: zero-copy views when the payload
   * sits inside one chunk, binary safe). Simple strings (`+OK`) are always strings.
   */
  readonly strings?: 'string' | 'buffer' | undefined;
  /** RESP3 maps (and attributes) as `Map` (default, keeps every key type), plain objects, or flat `[k, v, ...]` arrays. */
  readonly maps?: 'map' | 'object' | 'array' | undefined;
  /** RESP3 sets as arrays (default, keeps duplicates and order) or as `Set`. */
  readonly sets?: 'array' | 'set' | undefined;
  /** RESP3 verbatim strings as {@link VerbatimString} (default, keeps the format) or as their text only. */
  readonly verbatim?: 'object' | 'text' | undefined;
  /**
   * Integers beyond ±(2^53 - 1) and RESP3 big numbers as `bigint` (default) or as decimal
   * strings. Safe integers are always numbers; nothing is ever rounded.
   */
  readonly bigIntegers?: 'bigint' | 'string' | undefined;
  /** RESP3 attributes: wrap the annotated value in {@link Attributed} (default) or drop them. */
  readonly attributes?: 'wrap' | 'drop' | undefined;
  /** Typed mode: every value is a {@link RespNode} that keeps its exact RESP type. Default false. */
  readonly typed?: boolean | undefined;
  /** Largest bulk string, bulk error, verbatim string or streamed string, in bytes. Default 512 MiB, like the server. */
  readonly maxBulkLength?: number | undefined;
  /** Most elements of an array, set or push, or pairs of a map or attribute. Default 2^32 - 1. */
  readonly maxAggregateLength?: number | undefined;
  /** Deepest nesting of aggregates (attributes and streamed strings count). Default 1024. */
  readonly maxDepth?: number | undefined;
  /** Longest simple string, simple error, double or big number line, in bytes. Default 1 MiB. */
  readonly maxLineLength?: number | undefined;
}

const CR = 13;
const LF = 10;

const T_SIMPLE = 43; // +
const T_ERROR = 45; // -
const T_INTEGER = 58; // :
const T_BULK = 36; // $
const T_ARRAY = 42; // *
const T_NULL = 95; // _
const T_BOOLEAN = 35; // #
const T_DOUBLE = 44; // ,
const T_BIG = 40; // (
const T_BULK_ERROR = 33; // !
const T_VERBATIM = 61; // =
const T_MAP = 37; // %
const T_SET = 126; // ~
const T_ATTRIBUTE = 124; // |
const T_PUSH = 62; // >
const T_CHUNK = 59; // ;
const T_END = 46; // .

// parseLength results besides a length
const LEN_NULL = -1;
const LEN_STREAMED = -2;
const LEN_INCOMPLETE = -3;

/**
 * Aggregates up to this length are allocated at their declared size. Longer ones are sized by
 * what has arrived: no more slots than the bytes of the chunk could fill (each element takes
 * at least 3 bytes), net of what the aggregates already open reserved; past that they grow as
 * elements arrive. A server cannot make nested headers reserve memory it has not sent.
 */
const SMALL_AGGREGATE = 16;
/** The fewest bytes an element takes on the wire (`_\r\n`, `+\r\n`). */
const MIN_ELEMENT = 3;
/**
 * A bulk payload that spans chunks is copied into one buffer of its declared length once that
 * is at most this, or at most twice what has arrived; before that its chunks are kept as they
 * came. So memory stays within three times the bytes received, and every byte is copied once.
 */
const BULK_PREALLOC = 64 * 1024;
/** Digits, sign and CRLF of the longest integer or length line (int64). */
const NUMBER_LINE = 24;
/** Longest double line: type byte, up to 509 bytes, CRLF. */
const DOUBLE_LINE = 512;
const DOUBLE_CONTENT = DOUBLE_LINE - 3;
const EMPTY: Buffer = Buffer.alloc(0);
/**
 * Short strings: V8 copies substrings shorter than 13 characters (longer ones would be views that
 * keep their parent alive), so strings up to 12 bytes can be cut from one decoded region.
 */
const SHORT_STRING = 12;
/** Bytes decoded at once for short strings inside an aggregate. */
const REGION = 2048;
const NO_VALUE: unique symbol = Symbol('no value');
/** What a closed frame holds: never written, since open() gives every frame fresh items. */
const NO_ITEMS: unknown[] = Object.freeze([]) as unknown as unknown[];
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Exact powers of ten for the double fast path (10^22 is the largest exactly representable). */
const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
  1e21, 1e22,
];

/**
 * The Buffers handed out in `strings: 'buffer'` mode: zero-copy views like `subarray()` gives,
 * made directly. Node's own Buffers are instances of an internal Uint8Array subclass whose
 * prototype is `Buffer.prototype`; this class is built the same way (so `Buffer.isBuffer()`,
 * `instanceof Buffer`, `.constructor === Buffer` and every Buffer method hold), without
 * `subarray()`'s argument handling and explicit constructor, which cost about a third of the
 * time of each view.
 */
class BufferView extends Uint8Array {}
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);
Object.defineProperty(BufferView.prototype, 'constructor', {
  value: Buffer,
  writable: true,
  configurable: true,
  enumerable: false,
});

/** A zero-copy Buffer of `buf[s, e)`. */
function view(buf: Buffer, s: number, e: number): Buffer {
  return new BufferView(buf.buffer as ArrayBuffer, buf.byteOffset + s, e - s) as unknown as Buffer;
}

/**
 * Called as `stringSlice.call(text, s, e)`: once any code defines a subclass of String (ioredis
 * and @redis/client do), V8 drops a fast path of method calls on string primitives.
 */
const stringSlice = String.prototype.slice;

/** Node's native slice methods, faster than `toString(enc, start, end)` which validates its arguments first. */
interface NativeSlices {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}

/** One open aggregate on the explicit stack. Objects are reused, so only `items` allocates. */
class Frame {
  /** The type byte: `*`, `~`, `>`, `%`, `|`, or `$` for a streamed string. */
  kind = 0;
  /** Elements expected (a map counts keys and values), or -1 until `.` for a streamed aggregate. */
  length = 0;
  index = 0;
  items: unknown[] = NO_ITEMS;
  /** Slots of `items` allocated beyond SMALL_AGGREGATE, counted in the decoder's `reserved`. */
  reserved = 0;
  /** Attribute pairs (flat) waiting for the next element of this aggregate. */
  attrs: unknown[] | null = null;
  /** Total bytes of a streamed string so far. */
  bytes = 0;
}

/**
 * The property name of a map key that is not a string, in `maps: 'object'` mode: what String()
 * gives, but an array key is joined without recursion (a key may be nested as deep as maxDepth).
 */
function keyText(key: unknown): string {
  if (Buffer.isBuffer(key)) return key.toString('utf8');
  if (!Array.isArray(key)) return String(key);
  let text = '';
  const stack: unknown[][] = [key];
  const at: number[] = [0];
  while (stack.length > 0) {
    const top = stack.length - 1;
    const items = stack[top] as unknown[];
    const i = at[top] as number;
    if (i >= items.length) {
      stack.pop();
      at.pop();
      continue;
    }
    at[top] = i + 1;
    if (i > 0) text += ',';
    const item = items[i];
    if (Array.isArray(item)) {
      stack.push(item);
      at.push(0);
    } else if (item !== null && item !== undefined)
      text += Buffer.isBuffer(item) ? item.toString('utf8') : String(item);
  }
  return text;
}

/** What a line of this type is called in error messages. */
function lineName(type: number): string {
  switch (type) {
    case T_SIMPLE:
      return 'simple string';
    case T_ERROR:
      return 'simple error';
    case T_DOUBLE:
      return 'double';
    default:
      return 'big number';
  }
}

function typeName(type: number): string {
  switch (type) {
    case T_ARRAY:
      return 'array';
    case T_SET:
      return 'set';
    case T_PUSH:
      return 'push';
    case T_MAP:
      return 'map';
    case T_ATTRIBUTE:
      return 'attribute';
    case T_BULK:
      return 'bulk string';
    case T_BULK_ERROR:
      return 'bulk error';
    case T_VERBATIM:
      return 'verbatim string';
    case T_CHUNK:
      return 'chunk';
    default:
      return `type ${String.fromCharCode(type)}`;
  }
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RespError('ERR_RESP_ARGUMENT', `decoder option ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/**
 * A streaming RESP2/RESP3 decoder. Feed it chunks of any size; it calls `onReply` (or
 * `onPush`) with each complete top-level value, and any split of the same bytes gives the same
 * values. It keeps no recursion (an explicit frame stack), copies a payload that spans chunks
 * once into a buffer of its declared size, and rejects malformed input with a
 * {@link RespProtocolError} that carries the byte offset; after that it refuses input until
 * {@link reset}.
 *
 * Offsets: {@link bytesConsumed} counts the bytes of every complete top-level value so far, and
 * {@link lastValueLength} the bytes of the last one (attributes included). {@link pause} stops
 * right after the current value, and {@link takeRemaining} hands out the bytes not consumed.
 *
 * @example
 * ```ts
 * const decoder = new RespDecoder({
 *   onReply: (value) => console.log('reply', value),
 *   onPush: (value) => console.log('push', value),
 * });
 * decoder.feed(Buffer.from('+OK\r\n:4'));
 * decoder.feed(Buffer.from('2\r\n>2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n'));
 * // reply OK, reply 42, push ['message', 'hi']
 * ```
 */
export class RespDecoder<Value = RespValue> {
  /** Receives replies; may be replaced at any time. */
  onReply: (value: Value) => void;
  /** Receives pushes; may be replaced at any time. */
  onPush: (value: Value) => void;

  // Options, as plain fields: read on every value.
  private readonly buffers: boolean;
  private readonly typed: boolean;
  private readonly maps: 'map' | 'object' | 'array';
  private readonly sets: 'array' | 'set';
  private readonly verbatim: 'object' | 'text';
  private readonly bigIntegers: 'bigint' | 'string';
  private readonly keepAttributes: boolean;
  private readonly maxBulkLength: number;
  private readonly maxAggregateLength: number;
  private readonly maxDepth: number;
  private readonly maxLineLength: number;

  // Input: the chunk being decoded, where, and its offset in the stream.
  private buf: Buffer = EMPTY;
  private pos = 0;
  private base = 0;
  private queue: Buffer[] = [];
  private queueHead = 0;

  // A line (type byte to LF) cut by the end of a chunk.
  private lineParts: Buffer[] | null = null;
  private lineLength = 0;
  private lineOffset = 0;
  private lineCap = 0;
  /** Re-checking a partial line: a cut is expected, not an error. */
  private probing = false;

  // A bulk payload cut by the end of a chunk.
  private bulkType = 0;
  private bulkTarget: Buffer | null = null;
  /** The chunks of a large payload before its buffer is allocated: the first from `bulkPartsStart`. */
  private bulkParts: Buffer[] | null = null;
  private bulkPartsStart = 0;
  private bulkLength = 0;
  private bulkFilled = 0;
  /** CRLF bytes after the payload still to verify (0 when no payload is open). */
  private bulkTrailer = 0;
  private bulkOffset = 0;
  private bulkValue: unknown = undefined;

  // The frame stack; `top` is frames[depth - 1].
  private frames: Frame[] = [];
  private depth = 0;
  private top: Frame | null = null;
  private topAttrs: unknown[] | null = null;
  private topPush = false;
  private inStreamedString = false;
  /** Slots preallocated by the open frames beyond SMALL_AGGREGATE (see open()). */
  private reserved = 0;

  // Where parseLength leaves the position after the LF.
  private lineEnd = 0;

  // Short strings are sliced from one latin1 decode of an ASCII region of the chunk.
  private regionBuf: Buffer | null = null;
  private regionStart = 0;
  private regionEnd = 0;
  private regionText: string | null = null;
  private regionHits = 0;
  private regionCooldown = 0;

  // Flow control.
  private running = false;
  private paused = false;
  /** Set by pause() and reset(): the loops stop after the current value. */
  private halt = false;
  private generation = 0;
  private failure: RespProtocolError | null = null;

  private consumed = 0;
  private lastLength = 0;
  private received = 0;

  constructor(options: RespDecoderOptions<Value>) {
    if (typeof options?.onReply !== 'function') {
      throw new RespError('ERR_RESP_ARGUMENT', 'RespDecoder needs an onReply(value) function');
    }
    this.onReply = options.onReply;
    this.onPush = options.onPush ?? options.onReply;
    this.buffers = options.strings === 'buffer';
    this.typed = options.typed === true;
    this.maps = options.maps ?? 'map';
    this.sets = options.sets ?? 'array';
    this.verbatim = options.verbatim ?? 'object';
    this.bigIntegers = options.bigIntegers ?? 'bigint';
    this.keepAttributes = options.attributes !== 'drop';
    this.maxBulkLength = positiveInteger('maxBulkLength', options.maxBulkLength, 512 * 1024 * 1024);
    this.maxAggregateLength = positiveInteger('maxAggregateLength', options.maxAggregateLength, 2 ** 32 - 1);
    this.maxDepth = positiveInteger('maxDepth', options.maxDepth, 1024);
    this.maxLineLength = positiveInteger('maxLineLength', options.maxLineLength, 1024 * 1024);
    for (const [name, value, allowed] of [
      ['strings', options.strings, ['string', 'buffer']],
      ['maps', options.maps, ['map', 'object', 'array']],
      ['sets', options.sets, ['array', 'set']],
      ['verbatim', options.verbatim, ['object', 'text']],
      ['bigIntegers', options.bigIntegers, ['bigint', 'string']],
      ['attributes', options.attributes, ['wrap', 'drop']],
    ] as const) {
      if (value !== undefined && !(allowed as readonly string[]).includes(value)) {
        throw new RespError(
          'ERR_RESP_ARGUMENT',
          `decoder option ${name} must be one of ${allowed.join(', ')}, got ${String(value)}`,
        );
      }
    }
  }

  /** Bytes of complete top-level values decoded since construction or {@link reset}: the stream offset after the last value. */
  get bytesConsumed(): number {
    return this.consumed;
  }

  /** Byte length of the last top-level value delivered (its attributes included); read it in `onReply` / `onPush`. */
  get lastValueLength(): number {
    return this.lastLength;
  }

  /** Bytes fed since construction or {@link reset}. */
  get bytesReceived(): number {
    return this.received;
  }

  /** Bytes fed but not yet part of a delivered value (a partial value, or input held by {@link pause}). */
  get bytesBuffered(): number {
    return this.received - this.consumed;
  }

  /** True between {@link pause} and {@link resume}. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** True after a protocol error, until {@link reset}. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** True when no value is half decoded: the next byte fed starts a new top-level value. */
  get atBoundary(): boolean {
    return (
      this.depth === 0 &&
      this.lineParts === null &&
      this.bulkTrailer === 0 &&
      this.bulkTarget === null &&
      this.bulkParts === null &&
      this.topAttrs === null
    );
  }

  /**
   * Decodes a chunk, calling `onReply` / `onPush` for each value it completes. A chunk fed while
   * paused (or from inside a callback) is queued and decoded in order.
   *
   * @throws {RespProtocolError} on malformed input or a limit; the decoder is failed until {@link reset}.
   * @throws {RespError} `ERR_RESP_DECODER_FAILED` when fed after a failure.
   */
  feed(chunk: Uint8Array): void {
    if (this.failure !== null) {
      throw new RespError(
        'ERR_RESP_DECODER_FAILED',
        `the decoder failed at byte ${this.failure.offset} (${this.failure.reason}) and refuses input; call reset() before feeding a new stream`,
        { cause: this.failure },
      );
    }
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (data.length === 0) return;
    this.received += data.length;
    if (this.running || this.paused || this.pos < this.buf.length) {
      this.queue.push(data);
      if (!this.running && !this.paused) this.drain();
      return;
    }
    this.base += this.buf.length;
    this.buf = data;
    this.pos = 0;
    this.drain();
  }

  /**
   * Stops delivering values: the one being delivered is the last until {@link resume}. Input
   * fed meanwhile is kept. Call it from `onReply` to stop exactly after that reply.
   */
  pause(): void {
    this.paused = true;
    this.halt = true;
  }

  /** Delivers what was held since {@link pause}, then decodes new input as it comes. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.halt = false;
    if (!this.running && this.failure === null) this.drain();
  }

  /**
   * Hands out every byte fed but not consumed, and forgets them: for a caller that reads the
   * rest of the stream another way (the RDB payload after `+FULLRESYNC`). Only between values.
   *
   * @throws {RespError} `ERR_RESP_STATE` in the middle of a value.
   */
  takeRemaining(): Buffer {
    if (!this.atBoundary) {
      throw new RespError(
        'ERR_RESP_STATE',
        'takeRemaining() needs the decoder between two values; pause() it from onReply to stop exactly after a reply',
      );
    }
    const parts: Buffer[] = [];
    if (this.pos < this.buf.length) parts.push(this.buf.subarray(this.pos));
    for (let i = this.queueHead; i < this.queue.length; i++) parts.push(this.queue[i] as Buffer);
    const rest = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    this.base += this.pos;
    this.buf = EMPTY;
    this.pos = 0;
    this.queue = [];
    this.queueHead = 0;
    this.received -= rest.length;
    return rest;
  }

  /** Forgets all input and state (and a failure): the next byte starts a new stream at offset 0. */
  reset(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.base = 0;
    this.queue = [];
    this.queueHead = 0;
    this.lineParts = null;
    this.lineLength = 0;
    this.bulkTarget = null;
    this.bulkParts = null;
    this.bulkTrailer = 0;
    this.bulkValue = undefined;
    for (let i = 0; i < this.depth; i++) {
      const frame = this.frames[i] as Frame;
      frame.items = NO_ITEMS;
      frame.attrs = null;
      frame.reserved = 0;
    }
    this.depth = 0;
    this.reserved = 0;
    this.top = null;
    this.regionBuf = null;
    this.regionText = null;
    this.topAttrs = null;
    this.topPush = false;
    this.inStreamedString = false;
    this.failure = null;
    this.paused = false;
    this.halt = this.running; // a callback that resets stops the loop that called it
    this.generation++;
    this.consumed = 0;
    this.lastLength = 0;
    this.received = 0;
  }

  // ---------------------------------------------------------------------------------------------
  // The loop over chunks

  private drain(): void {
    const generation = this.generation;
    this.running = true;
    try {
      while (!this.halt) {
        if (this.pos >= this.buf.length) {
          if (this.queueHead >= this.queue.length) {
            if (this.queue.length > 0) {
              this.queue = [];
              this.queueHead = 0;
            }
            break;
          }
          this.base += this.buf.length;
          this.regionBuf = null;
          this.buf = this.queue[this.queueHead] as Buffer;
          this.queue[this.queueHead++] = EMPTY;
          this.pos = 0;
          continue;
        }
        if (this.lineParts !== null) this.continueLine();
        else if (this.bulkTrailer !== 0 || this.bulkTarget !== null || this.bulkParts !== null) this.continueBulk();
        else {
          const pos = this.parse(this.buf, this.pos, this.base);
          if (this.generation !== generation) return;
          this.pos = pos;
        }
      }
    } catch (err) {
      if (err instanceof RespProtocolError && this.generation === generation) this.failure = err;
      throw err;
    } finally {
      if (this.generation === generation) {
        this.running = false;
        this.halt = this.paused;
      } else {
        this.running = false;
        this.halt = false;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Errors

  private fail(
    reason: string,
    buf: Uint8Array,
    at: number,
    base: number,
    code: 'ERR_RESP_PROTOCOL' | 'ERR_RESP_LIMIT' = 'ERR_RESP_PROTOCOL',
  ): never {
    throw new RespProtocolError(code, reason, base + at, printable(buf.subarray(at, at + 32)));
  }

  /** Why the line ending at `at` is wrong: a bare LF, a CR without LF, or a bad byte. */
  private badByte(what: string, buf: Buffer, at: number, base: number): never {
    const c = buf[at];
    if (c === LF) this.fail(`bare LF in ${what} (lines end with CRLF)`, buf, at, base);
    if (c === CR) this.fail(`CR not followed by LF in ${what}`, buf, at, base);
    this.fail(`unexpected byte 0x${(c ?? 0).toString(16).padStart(2, '0')} in ${what}`, buf, at, base);
  }

  // ---------------------------------------------------------------------------------------------
  // The fast path: decodes values that lie whole in `buf`, from `pos`, until the end, a cut or a halt.

  private parse(buf: Buffer, pos: number, base: number): number {
    const end = buf.length;
    const typed = this.typed;
    const buffers = this.buffers;
    while (pos < end) {
      const start = pos;
      const type = buf[pos] as number;
      let value: unknown;
      if (this.inStreamedString && type !== T_CHUNK) {
        this.fail('a streamed string ($?) holds only ; chunks', buf, pos, base);
      }
      switch (type) {
        case T_INTEGER: {
          let p = pos + 1;
          let c = buf[p];
          let negative = false;
          if (c === 45) {
            negative = true;
            p++;
          } else if (c === 43) p++;
          const digits = p;
          let n = 0;
          for (;;) {
            if (p >= end) return this.cut(buf, start, base);
            c = buf[p] as number;
            if (c < 48 || c > 57) break;
            n = n * 10 + (c - 48);
            if (++p - digits > 19) this.fail('integer out of the 64-bit range', buf, start, base);
          }
          if (c !== CR || p === digits) {
            if (p === digits && c === CR) this.fail('integer without digits', buf, start, base);
            this.badByte('integer', buf, p, base);
          }
          if (p + 1 >= end) return this.cut(buf, start, base);
          if (buf[p + 1] !== LF) this.badByte('integer', buf, p, base);
          if (p - digits > 15) value = this.exactInteger(buf, start, digits, p, base);
          else value = negative ? 0 - n : n;
          if (typed) value = { type: 'integer', value };
          pos = p + 2;
          break;
        }
        case T_SIMPLE:
        case T_ERROR: {
          const p = this.lineCR(buf, pos, base);
          if (p < 0) return this.cut(buf, start, base);
          if (type === T_SIMPLE) {
            // The replies that are nearly all simple strings get a constant instead of a new string.
            if (p - pos === 3 && buf[pos + 1] === 79 && buf[pos + 2] === 75) value = 'OK';
            else value = (buf as unknown as NativeSlices).utf8Slice(pos + 1, p);
            if (typed) value = { type: 'simple-string', value };
          } else {
            value = new ReplyError((buf as unknown as NativeSlices).utf8Slice(pos + 1, p));
            if (typed) value = { type: 'simple-error', value };
          }
          pos = p + 2;
          break;
        }
        case T_BULK: {
          let length = this.quickLength(buf, pos);
          let q: number;
          if (length >= 0) q = this.lineEnd;
          else {
            length = this.parseLength(buf, pos, end, base, true, true);
            if (length === LEN_INCOMPLETE) return this.cut(buf, start, base);
            q = this.lineEnd;
            if (length === LEN_NULL) {
              value = typed ? { type: 'bulk-string', value: null } : null;
              pos = q;
              break;
            }
            if (length === LEN_STREAMED) {
              this.open(T_BULK, -1, buf, start, base, q);
              this.inStreamedString = true;
              pos = q;
              continue;
            }
          }
          if (length > this.maxBulkLength) this.bulkTooLong(type, length, buf, start, base);
          const payloadEnd = q + length;
          if (payloadEnd + 2 <= end) {
            if (buf[payloadEnd] !== CR || buf[payloadEnd + 1] !== LF) {
              this.fail(
                `missing CRLF after the ${length}-byte bulk string payload`,
                buf,
                payloadEnd + (buf[payloadEnd] === CR ? 1 : 0),
                base,
              );
            }
            if (buffers) value = view(buf, q, payloadEnd);
            else if (length <= SHORT_STRING) value = this.shortString(buf, q, payloadEnd);
            else value = (buf as unknown as NativeSlices).utf8Slice(q, payloadEnd);
            pos = payloadEnd + 2;
            if (typed) value = { type: 'bulk-string', value };
            else if (this.top !== null && this.top.attrs === null && this.top.index + 1 !== this.top.length) {
              pos = this.bulkRun(buf, pos, value);
              continue;
            }
            break;
          }
          return this.startBulk(T_BULK, length, buf, q, base);
        }
        case T_BULK_ERROR:
        case T_VERBATIM: {
          const length = this.parseLength(buf, pos, end, base, false, false);
          if (length === LEN_INCOMPLETE) return this.cut(buf, start, base);
          const q = this.lineEnd;
          if (length > this.maxBulkLength) this.bulkTooLong(type, length, buf, start, base);
          const payloadEnd = q + length;
          if (payloadEnd + 2 <= end) {
            // The payload is checked before its CRLF, as when it arrives in pieces.
            value = this.bulkValueOf(type, buf, q, payloadEnd, base);
            if (buf[payloadEnd] !== CR || buf[payloadEnd + 1] !== LF) {
              this.fail(
                `missing CRLF after the ${length}-byte ${typeName(type)} payload`,
                buf,
                payloadEnd + (buf[payloadEnd] === CR ? 1 : 0),
                base,
              );
            }
            pos = payloadEnd + 2;
            break;
          }
          return this.startBulk(type, length, buf, q, base);
        }
        case T_ARRAY:
        case T_SET:
        case T_MAP:
        case T_PUSH:
        case T_ATTRIBUTE: {
          let length = this.quickLength(buf, pos);
          if (length >= 0) pos = this.lineEnd;
          else {
            length = this.parseLength(buf, pos, end, base, type === T_ARRAY, type !== T_PUSH && type !== T_ATTRIBUTE);
            if (length === LEN_INCOMPLETE) return this.cut(buf, start, base);
            pos = this.lineEnd;
          }
          if (type === T_PUSH && this.depth > 0)
            this.fail('a push (>) inside an aggregate (pushes are top-level only)', buf, start, base);
          if (length === LEN_NULL) {
            value = typed ? { type: 'array', value: null } : null;
            break;
          }
          if (length > this.maxAggregateLength) {
            this.fail(
              `${typeName(type)} of ${length} ${type === T_MAP || type === T_ATTRIBUTE ? 'pairs' : 'elements'} exceeds maxAggregateLength ${this.maxAggregateLength}`,
              buf,
              start,
              base,
              'ERR_RESP_LIMIT',
            );
          }
          if (length === 0) {
            if (type === T_ATTRIBUTE) {
              // Annotates with nothing, but a value must still follow it.
              this.pendAttributes(NO_ITEMS);
              continue;
            }
            value = this.finishAggregate(type, [], false);
            if (type === T_PUSH && this.depth === 0) this.topPush = true;
            break;
          }
          this.open(
            type,
            length === LEN_STREAMED ? -1 : type === T_MAP || type === T_ATTRIBUTE ? length * 2 : length,
            buf,
            start,
            base,
            pos,
          );
          if (type === T_PUSH) this.topPush = true;
          continue;
        }
        case T_NULL: {
          if (pos + 1 < end && buf[pos + 1] !== CR) this.badByte('null (_ takes no content)', buf, pos + 1, base);
          if (pos + 2 < end && buf[pos + 2] !== LF) this.badByte('null (_ takes no content)', buf, pos + 1, base);
          if (pos + 3 > end) return this.cut(buf, start, base);
          value = typed ? { type: 'null', value: null } : null;
          pos += 3;
          break;
        }
        case T_BOOLEAN: {
          const c = buf[pos + 1];
          if (pos + 1 < end && c !== 116 && c !== 102) this.fail('boolean must be #t or #f', buf, start, base);
          if (pos + 2 < end && buf[pos + 2] !== CR) this.fail('boolean must be #t or #f', buf, start, base);
          if (pos + 3 < end && buf[pos + 3] !== LF) this.badByte('boolean', buf, pos + 2, base);
          if (pos + 4 > end) return this.cut(buf, start, base);
          value = typed ? { type: 'boolean', value: c === 116 } : c === 116;
          pos += 4;
          break;
        }
        case T_DOUBLE:
        case T_BIG: {
          const p = this.lineCR(buf, pos, base);
          if (p < 0) return this.cut(buf, start, base);
          value = type === T_DOUBLE ? this.double(buf, pos + 1, p, base) : this.bigNumber(buf, pos + 1, p, base);
          pos = p + 2;
          break;
        }
        case T_END: {
          if (pos + 1 < end && buf[pos + 1] !== CR) this.badByte('end marker (. takes no content)', buf, pos + 1, base);
          if (pos + 2 < end && buf[pos + 2] !== LF) this.badByte('end marker (. takes no content)', buf, pos + 1, base);
          if (pos + 3 > end) return this.cut(buf, start, base);
          const frame = this.depth > 0 ? (this.frames[this.depth - 1] as Frame) : undefined;
          if (frame === undefined || frame.length !== -1 || frame.kind === T_BULK) {
            this.fail('end marker (.) outside a streamed aggregate', buf, start, base);
          }
          if (frame.attrs !== null)
            this.fail('attribute not followed by a value before the end marker', buf, start, base);
          if (frame.kind === T_MAP && (frame.index & 1) === 1)
            this.fail('streamed map ends between a key and its value', buf, start, base);
          pos += 3;
          value = this.close();
          if (this.add(value, buf, pos, base)) return pos;
          continue;
        }
        case T_CHUNK: {
          if (!this.inStreamedString) this.fail('chunk (;) outside a streamed string', buf, start, base);
          const length = this.parseLength(buf, pos, end, base, false, false);
          if (length === LEN_INCOMPLETE) return this.cut(buf, start, base);
          const q = this.lineEnd;
          const frame = this.frames[this.depth - 1] as Frame;
          if (length === 0) {
            pos = q;
            value = this.close();
            if (this.add(value, buf, pos, base)) return pos;
            continue;
          }
          if (frame.bytes + length > this.maxBulkLength)
            this.bulkTooLong(T_BULK, frame.bytes + length, buf, start, base);
          frame.bytes += length;
          const payloadEnd = q + length;
          if (payloadEnd + 2 <= end) {
            if (buf[payloadEnd] !== CR || buf[payloadEnd + 1] !== LF) {
              this.fail(
                `missing CRLF after the ${length}-byte chunk payload`,
                buf,
                payloadEnd + (buf[payloadEnd] === CR ? 1 : 0),
                base,
              );
            }
            frame.items[frame.index++] = view(buf, q, payloadEnd);
            pos = payloadEnd + 2;
            continue;
          }
          return this.startBulk(T_CHUNK, length, buf, q, base);
        }
        default:
          this.fail(`unknown type byte 0x${type.toString(16).padStart(2, '0')}`, buf, start, base);
      }
      // A complete value: store it in the open aggregate, or deliver it.
      const frame = this.top;
      if (frame !== null) {
        if (frame.attrs === null && frame.index + 1 !== frame.length) {
          frame.items[frame.index++] = value;
          continue;
        }
      } else if (this.topAttrs === null && !this.topPush) {
        const at = base + pos;
        this.lastLength = at - this.consumed;
        this.consumed = at;
        if (buf === this.buf) this.pos = pos;
        this.onReply(value as Value);
        if (this.halt) return pos;
        continue;
      }
      if (this.add(value, buf, pos, base)) return pos;
    }
    return pos;
  }

  /**
   * Stores `first` in the innermost aggregate, then decodes the bulk strings that follow it
   * there in a tight loop (LRANGE, HGETALL, XRANGE fields...). Stops before the aggregate's
   * last element and before anything unusual, which the general path then decodes (or rejects).
   */
  private bulkRun(buf: Buffer, pos: number, first: unknown): number {
    const frame = this.top as Frame;
    const items = frame.items;
    const last = frame.length - 1;
    const end = buf.length;
    const max = this.maxBulkLength;
    const buffers = this.buffers;
    const arrayBuffer = buf.buffer as ArrayBuffer;
    const byteOffset = buf.byteOffset;
    let index = frame.index;
    items[index++] = first;
    while (index !== last && pos < end && buf[pos] === T_BULK) {
      // `$<digits>\r\n<payload>\r\n`, inline; anything else is left to the general path.
      let p = pos + 1;
      let n = 0;
      let c = 0;
      for (; p < end; p++) {
        c = buf[p] as number;
        if (c < 48 || c > 57) break;
        n = n * 10 + (c - 48);
      }
      if (p === pos + 1 || p - pos > 16 || n > max || p + 1 >= end || c !== CR || buf[p + 1] !== LF) break;
      const q = p + 2;
      const payloadEnd = q + n;
      if (payloadEnd + 2 > end || buf[payloadEnd] !== CR || buf[payloadEnd + 1] !== LF) break;
      if (buffers) items[index++] = new BufferView(arrayBuffer, byteOffset + q, n);
      else if (n <= SHORT_STRING) items[index++] = this.shortString(buf, q, payloadEnd);
      else items[index++] = (buf as unknown as NativeSlices).utf8Slice(q, payloadEnd);
      pos = payloadEnd + 2;
    }
    frame.index = index;
    return pos;
  }

  /**
   * The header nearly every bulk string and aggregate has, `<digits>\r\n` after the type byte
   * at `start`: its length (the position after the LF in `lineEnd`), or -1 for anything else,
   * which parseLength then decodes or rejects.
   */
  private quickLength(buf: Buffer, start: number): number {
    const end = buf.length;
    let p = start + 1;
    let n = 0;
    while (p < end) {
      const c = buf[p] as number;
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
      p++;
    }
    if (p === start + 1 || p - start > 16 || p + 1 >= end || buf[p] !== CR || buf[p + 1] !== LF) return -1;
    this.lineEnd = p + 2;
    return n;
  }

  /**
   * Finds the CR that ends the line starting at `start` (the type byte) and checks the LF after
   * it; -1 when the line goes on past the end of `buf`. A bare LF, a CR without LF, or a line
   * longer than its limit is an error. The scan stops where the limit is passed, so the error
   * is the one a byte-by-byte reader meets first, whatever follows.
   */
  private lineCR(buf: Buffer, start: number, base: number): number {
    const end = buf.length;
    const type = buf[start] as number;
    // The first position that cannot hold content any more: past it only the CR may come.
    const limit = start + 2 + (type === T_DOUBLE ? DOUBLE_CONTENT : this.maxLineLength);
    const stop = Math.min(limit, end);
    for (let p = start + 1; p < stop; p++) {
      const c = buf[p] as number;
      if (c === CR) {
        if (p + 1 >= end) return -1;
        if (buf[p + 1] !== LF) this.badByte(lineName(type), buf, p, base);
        return p;
      }
      if (c === LF) this.badByte(lineName(type), buf, p, base);
    }
    if (stop === limit) {
      if (type === T_DOUBLE) this.fail(`double longer than ${DOUBLE_LINE} bytes`, buf, start, base);
      this.lineTooLong(buf, start, base);
    }
    return -1;
  }

  /**
   * Reads the length line at `start` (the type byte): digits, or `-1` when `allowNull`, or `?`
   * when `allowStreamed`. Leaves the position after the LF in `lineEnd`.
   */
  private parseLength(
    buf: Buffer,
    start: number,
    end: number,
    base: number,
    allowNull: boolean,
    allowStreamed: boolean,
  ): number {
    let p = start + 1;
    if (p >= end) return LEN_INCOMPLETE;
    let c = buf[p] as number;
    if (c === 63 /* ? */) {
      if (!allowStreamed) this.fail(`a ${typeName(buf[start] as number)} cannot be streamed (?)`, buf, p, base);
      if (p + 1 >= end) return LEN_INCOMPLETE;
      if (buf[p + 1] !== CR) this.badByte(`length of a ${typeName(buf[start] as number)}`, buf, p + 1, base);
      if (p + 2 >= end) return LEN_INCOMPLETE;
      if (buf[p + 2] !== LF) this.badByte(`length of a ${typeName(buf[start] as number)}`, buf, p + 1, base);
      this.lineEnd = p + 3;
      return LEN_STREAMED;
    }
    if (c === 45 /* - */) {
      const negative = `negative length of a ${typeName(buf[start] as number)}${allowNull ? ' (only -1 means null)' : ''}`;
      if (!allowNull) this.fail(negative, buf, p, base);
      if (p + 1 >= end) return LEN_INCOMPLETE;
      if (buf[p + 1] !== 49) this.fail(negative, buf, p, base);
      if (p + 2 >= end) return LEN_INCOMPLETE;
      c = buf[p + 2] as number;
      if (c >= 48 && c <= 57) this.fail(negative, buf, p, base);
      if (c !== CR) this.badByte(`length of a ${typeName(buf[start] as number)}`, buf, p + 2, base);
      if (p + 3 >= end) return LEN_INCOMPLETE;
      if (buf[p + 3] !== LF) this.badByte(`length of a ${typeName(buf[start] as number)}`, buf, p + 2, base);
      this.lineEnd = p + 4;
      return LEN_NULL;
    }
    let n = 0;
    const digits = p;
    for (;;) {
      if (p >= end) return LEN_INCOMPLETE;
      c = buf[p] as number;
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
      if (++p - digits > 15) {
        this.fail(`length of a ${typeName(buf[start] as number)} too large`, buf, digits, base, 'ERR_RESP_LIMIT');
      }
    }
    if (c !== CR || p === digits) {
      if (p === digits && c === CR)
        this.fail(`length of a ${typeName(buf[start] as number)} without digits`, buf, p, base);
      this.badByte(`length of a ${typeName(buf[start] as number)}`, buf, p, base);
    }
    if (p + 1 >= end) return LEN_INCOMPLETE;
    if (buf[p + 1] !== LF) this.badByte(`length of a ${typeName(buf[start] as number)}`, buf, p, base);
    this.lineEnd = p + 2;
    return n;
  }

  /** An integer of 16+ digits: exact, as number, bigint or string; int64 range enforced. */
  private exactInteger(
    buf: Buffer,
    start: number,
    digits: number,
    end: number,
    base: number,
  ): number | bigint | string {
    if (end - digits > 19) this.fail('integer out of the 64-bit range', buf, start, base);
    const big = BigInt((buf as unknown as NativeSlices).latin1Slice(start + 1, end));
    if (big < INT64_MIN || big > INT64_MAX) this.fail('integer out of the 64-bit range', buf, start, base);
    if (big >= -MAX_SAFE && big <= MAX_SAFE) return Number(big);
    return this.bigIntegers === 'string' ? big.toString() : big;
  }

  private double(buf: Buffer, s: number, e: number, base: number): unknown {
    // Grammar: [+-] (inf | nan | digits [. digits] [(e|E) [+-] digits]), case-insensitive words.
    let p = s;
    let negative = false;
    if (buf[p] === 45) {
      negative = true;
      p++;
    } else if (buf[p] === 43) p++;
    const unsigned = p;
    let value: number;
    const rest = e - p;
    const word = rest === 3 ? (buf as unknown as NativeSlices).latin1Slice(p, e).toLowerCase() : '';
    if (word === 'inf') value = negative ? -Infinity : Infinity;
    else if (word === 'nan') value = Number.NaN;
    else {
      let mantissa = 0;
      let count = 0;
      let fraction = 0;
      const intStart = p;
      while (p < e && (buf[p] as number) >= 48 && (buf[p] as number) <= 57) {
        mantissa = mantissa * 10 + ((buf[p] as number) - 48);
        p++;
      }
      count = p - intStart;
      if (count === 0) this.fail('double without digits before the point', buf, s - 1, base);
      if (p < e && buf[p] === 46) {
        p++;
        const fracStart = p;
        while (p < e && (buf[p] as number) >= 48 && (buf[p] as number) <= 57) {
          mantissa = mantissa * 10 + ((buf[p] as number) - 48);
          p++;
        }
        fraction = p - fracStart;
        if (fraction === 0) this.fail('double without digits after the point', buf, s - 1, base);
        count += fraction;
      }
      let exponent = false;
      if (p < e && (buf[p] === 101 || buf[p] === 69)) {
        exponent = true;
        p++;
        if (p < e && (buf[p] === 43 || buf[p] === 45)) p++;
        const expStart = p;
        while (p < e && (buf[p] as number) >= 48 && (buf[p] as number) <= 57) p++;
        if (p === expStart) this.fail('double without digits in the exponent', buf, s - 1, base);
      }
      if (p !== e) this.fail('invalid double', buf, s - 1, base);
      // Exact fast path (both operands exact, one rounding); else the engine's correctly rounded parse.
      if (!exponent && count <= 15) value = fraction === 0 ? mantissa : mantissa / (POW10[fraction] as number);
      else {
        value = Number((buf as unknown as NativeSlices).latin1Slice(unsigned, e));
        // Overflow is an error, as in hiredis: only the word inf stands for infinity.
        if (value === Infinity) this.fail('double out of range (only inf means infinity)', buf, s - 1, base);
      }
      if (negative) value = -value;
    }
    return this.typed ? { type: 'double', value } : value;
  }

  private bigNumber(buf: Buffer, s: number, e: number, base: number): unknown {
    let p = s;
    if (buf[p] === 45 || buf[p] === 43) p++;
    if (p === e) this.fail('big number without digits', buf, s - 1, base);
    for (; p < e; p++) {
      const c = buf[p] as number;
      if (c < 48 || c > 57) this.fail('invalid digit in a big number', buf, p, base);
    }
    let value: bigint | string;
    if (this.bigIntegers === 'string') {
      // The canonical decimal text without a BigInt round trip (which costs seconds at 1 MiB).
      const negative = buf[s] === 45;
      let d = buf[s] === 45 || buf[s] === 43 ? s + 1 : s;
      while (d < e - 1 && buf[d] === 48) d++;
      const digits = (buf as unknown as NativeSlices).latin1Slice(d, e);
      value = negative && digits !== '0' ? `-${digits}` : digits;
    } else value = BigInt((buf as unknown as NativeSlices).latin1Slice(s, e));
    return this.typed ? { type: 'big-number', value } : value;
  }

  /**
   * A bulk string of at most 12 bytes. Inside an aggregate, an ASCII region of the chunk is
   * decoded once and each short string is sliced from it (a copy, never a view); a region that
   * serves few strings turns the scheme off for a while.
   */
  private shortString(buf: Buffer, s: number, e: number): string {
    if (buf === this.regionBuf && s >= this.regionStart && e <= this.regionEnd) {
      const text = this.regionText;
      if (text !== null) {
        this.regionHits++;
        return stringSlice.call(text, s - this.regionStart, e - this.regionStart);
      }
    } else if (this.depth > 0) {
      if (this.regionCooldown > 0) this.regionCooldown--;
      else if (this.regionBuf !== null && this.regionHits < 4) {
        this.regionCooldown = 32;
        this.regionBuf = null;
      } else {
        const regionEnd = Math.min(buf.length, s + REGION);
        this.regionBuf = buf;
        this.regionStart = s;
        this.regionEnd = regionEnd;
        this.regionHits = 1;
        this.regionText = isAscii(buf.subarray(s, regionEnd))
          ? (buf as unknown as NativeSlices).latin1Slice(s, regionEnd)
          : null;
        if (this.regionText !== null) return stringSlice.call(this.regionText, 0, e - s);
      }
    }
    return (buf as unknown as NativeSlices).utf8Slice(s, e);
  }

  private lineTooLong(buf: Buffer, start: number, base: number): never {
    this.fail(
      `line longer than maxLineLength ${this.maxLineLength} bytes (raise the decoder option if the server really sends that)`,
      buf,
      start,
      base,
      'ERR_RESP_LIMIT',
    );
  }

  private bulkTooLong(type: number, length: number, buf: Buffer, start: number, base: number): never {
    this.fail(
      `${typeName(type)} of ${length} bytes exceeds maxBulkLength ${this.maxBulkLength}`,
      buf,
      start,
      base,
      'ERR_RESP_LIMIT',
    );
  }

  /** The value of a bulk string, bulk error or verbatim string whose payload is `buf[s, e)`. */
  private bulkValueOf(type: number, buf: Buffer, s: number, e: number, base: number): unknown {
    if (type === T_BULK) {
      const value = this.buffers ? view(buf, s, e) : (buf as unknown as NativeSlices).utf8Slice(s, e);
      return this.typed ? { type: 'bulk-string', value } : value;
    }
    if (type === T_BULK_ERROR) {
      const value = new ReplyError((buf as unknown as NativeSlices).utf8Slice(s, e), true);
      return this.typed ? { type: 'bulk-error', value } : value;
    }
    if (e - s < 4 || buf[s + 3] !== 58) {
      this.fail('verbatim string must start with a 3-byte format and ":"', buf, s, base);
    }
    const format = (buf as unknown as NativeSlices).latin1Slice(s, s + 3);
    const text = this.buffers ? view(buf, s + 4, e) : (buf as unknown as NativeSlices).utf8Slice(s + 4, e);
    if (this.typed) return { type: 'verbatim-string', format, value: text };
    return this.verbatim === 'text' ? text : new VerbatimString(format, text);
  }

  // ---------------------------------------------------------------------------------------------
  // Values cut by the end of a chunk

  /**
   * Keeps the line from `start` to the end of `buf` until the rest arrives. parse() has scanned
   * it already: it holds no error yet (a CR can only be its last byte).
   */
  private cut(buf: Buffer, start: number, base: number): number {
    if (buf !== this.buf) {
      if (this.probing) return buf.length;
      // A reassembled line ends at its LF: if its token still looks unfinished, the line is malformed.
      this.fail('malformed line', buf, start, base);
    }
    const type = buf[start] as number;
    const part = buf.subarray(start);
    this.lineParts = [part];
    this.lineLength = part.length;
    this.lineOffset = base + start;
    // The length from which a line without its CR is over its limit (number lines are re-checked whole).
    this.lineCap =
      type === T_SIMPLE || type === T_ERROR || type === T_BIG
        ? this.maxLineLength + 2
        : type === T_DOUBLE
          ? DOUBLE_CONTENT + 2
          : NUMBER_LINE;
    return buf.length;
  }

  /** Continues a cut line with the current chunk; decodes it once it is whole. */
  private continueLine(): void {
    const buf = this.buf;
    const pos = this.pos;
    const parts = this.lineParts as Buffer[];
    const lf = buf.indexOf(LF, pos);
    if (lf < 0) {
      const last = parts[parts.length - 1] as Buffer;
      const part = buf.subarray(pos);
      parts.push(part);
      this.lineLength += part.length;
      this.pos = buf.length;
      // Anything that may be wrong (a CR with something after it, a line past its limit, a
      // number line at all) is judged by parse() on the whole line so far, so that the error is
      // exactly the one the same bytes in one chunk give.
      const cr = part.indexOf(CR);
      if (
        this.lineCap === NUMBER_LINE ||
        last[last.length - 1] === CR ||
        (cr >= 0 && cr < part.length - 1) ||
        this.lineLength >= this.lineCap
      ) {
        this.probeLine();
      }
      return;
    }
    parts.push(buf.subarray(pos, lf + 1));
    this.lineLength += lf + 1 - pos;
    const line = Buffer.concat(parts, this.lineLength);
    const offset = this.lineOffset;
    this.lineParts = null;
    this.pos = lf + 1;
    // The line holds exactly one token: parse() decodes it (a bulk header opens the payload state).
    this.parse(line, 0, offset);
  }

  /** Runs parse() over the partial line: it throws what is wrong with it, or finds it unfinished. */
  private probeLine(): void {
    const line = Buffer.concat(this.lineParts as Buffer[], this.lineLength);
    this.probing = true;
    try {
      this.parse(line, 0, this.lineOffset);
    } finally {
      this.probing = false;
    }
    // Guards: parse() rejects these itself, so they are never reached.
    if (this.lineCap === NUMBER_LINE) {
      if (line.length > NUMBER_LINE)
        this.fail(`number line without CRLF within ${NUMBER_LINE} bytes`, line, 0, this.lineOffset);
    } else {
      const cr = line.indexOf(CR);
      if ((cr >= 0 && cr < line.length - 1) || (cr < 0 && line.length >= this.lineCap)) {
        this.fail('malformed line', line, 0, this.lineOffset);
      }
    }
  }

  /** Opens the payload state for a bulk whose payload starts at `q` and does not end in `buf`. */
  private startBulk(type: number, length: number, buf: Buffer, q: number, base: number): number {
    const end = buf.length;
    this.bulkType = type;
    this.bulkLength = length;
    this.bulkOffset = base + q;
    if (q + length <= end) {
      // The payload is here, only (part of) the CRLF is missing: keep a view, check what CRLF there is.
      this.bulkValue = type === T_CHUNK ? view(buf, q, q + length) : this.bulkValueOf(type, buf, q, q + length, base);
      this.bulkTrailer = 2;
      const p = q + length;
      if (p < end) {
        if (buf[p] !== CR) this.fail(`missing CRLF after the ${length}-byte ${typeName(type)} payload`, buf, p, base);
        this.bulkTrailer = 1;
      }
      return end;
    }
    const have = end - q;
    this.bulkFilled = have;
    if (have === 0) {
      // Only the header is here (a header cut by a chunk boundary): the payload may well lie
      // whole in the next chunk, and then it is a view of it, not a copy.
      this.bulkParts = [];
    } else if (length <= BULK_PREALLOC || have * 2 >= length) {
      // Copied once into a buffer of the declared size.
      const target = Buffer.allocUnsafe(length);
      buf.copy(target, 0, q, end);
      this.bulkTarget = target;
    } else {
      // Declared far beyond what arrived: keep the chunks until half of it is here.
      this.bulkParts = [buf];
      this.bulkPartsStart = q;
    }
    return end;
  }

  /** Continues a payload (and its CRLF) with the current chunk. */
  private continueBulk(): void {
    const buf = this.buf;
    let pos = this.pos;
    const end = buf.length;
    const parts = this.bulkParts;
    if (parts !== null) {
      const length = this.bulkLength;
      if (parts.length === 0 && pos + length <= end) {
        // The whole payload is in this chunk: a view, as if the header had come with it.
        this.bulkParts = null;
        this.bulkValue =
          this.bulkType === T_CHUNK
            ? view(buf, pos, pos + length)
            : this.bulkValueOf(this.bulkType, buf, pos, pos + length, this.base);
        this.bulkTrailer = 2;
        pos += length;
        this.bulkFilled = length;
      }
    }
    if (this.bulkParts !== null) {
      const parts = this.bulkParts;
      const n = Math.min(this.bulkLength - this.bulkFilled, end - pos);
      if ((this.bulkFilled + n) * 2 < this.bulkLength && this.bulkLength > BULK_PREALLOC) {
        // Still less than half: keep the chunk (all payload from pos: it cannot hold the end).
        if (parts.length === 0) this.bulkPartsStart = pos;
        parts.push(buf);
        this.bulkFilled += n;
        this.pos = end;
        return;
      }
      const target = Buffer.allocUnsafe(this.bulkLength);
      let o = 0;
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i] as Buffer;
        o += part.copy(target, o, i === 0 ? this.bulkPartsStart : 0);
      }
      this.bulkParts = null;
      this.bulkTarget = target;
    }
    const target = this.bulkTarget;
    if (target !== null) {
      const n = Math.min(this.bulkLength - this.bulkFilled, end - pos);
      buf.copy(target, this.bulkFilled, pos, pos + n);
      this.bulkFilled += n;
      pos += n;
      if (this.bulkFilled < this.bulkLength) {
        this.pos = pos;
        return;
      }
      this.bulkTarget = null;
      this.bulkValue =
        this.bulkType === T_CHUNK ? target : this.bulkValueOf(this.bulkType, target, 0, target.length, this.bulkOffset);
      this.bulkTrailer = 2;
    }
    while (this.bulkTrailer > 0 && pos < end) {
      if (buf[pos] !== (this.bulkTrailer === 2 ? CR : LF)) {
        this.fail(
          `missing CRLF after the ${this.bulkLength}-byte ${typeName(this.bulkType)} payload`,
          buf,
          pos,
          this.base,
        );
      }
      this.bulkTrailer--;
      pos++;
    }
    this.pos = pos;
    if (this.bulkTrailer > 0) return;
    const value = this.bulkValue;
    this.bulkValue = undefined;
    if (this.bulkType === T_CHUNK) {
      const frame = this.frames[this.depth - 1] as Frame;
      frame.items[frame.index++] = value;
      return;
    }
    this.add(value, buf, pos, this.base);
  }

  // ---------------------------------------------------------------------------------------------
  // The frame stack

  /** Opens an aggregate of `length` elements (-1: streamed) whose header ends at `after` in `buf`. */
  private open(kind: number, length: number, buf: Buffer, start: number, base: number, after: number): void {
    if (this.depth >= this.maxDepth) {
      this.fail(`nesting deeper than maxDepth ${this.maxDepth}`, buf, start, base, 'ERR_RESP_LIMIT');
    }
    let frame = this.frames[this.depth];
    if (frame === undefined) {
      frame = new Frame();
      this.frames.push(frame);
    }
    frame.kind = kind;
    frame.length = length;
    frame.index = 0;
    if (length <= SMALL_AGGREGATE) {
      frame.items = length > 0 ? new Array(length) : [];
      frame.reserved = 0;
    } else {
      // Never more slots than the rest of this chunk could fill, net of what open frames hold.
      let slots = (((buf.length - after) / MIN_ELEMENT) | 0) - this.reserved;
      if (slots > length) slots = length;
      if (slots > SMALL_AGGREGATE) {
        frame.items = new Array(slots);
        frame.reserved = slots;
        this.reserved += slots;
      } else {
        frame.items = [];
        frame.reserved = 0;
      }
    }
    frame.attrs = null;
    frame.bytes = 0;
    this.depth++;
    this.top = frame;
  }

  /** Closes the innermost frame and returns its value (or NO_VALUE for an attribute). */
  private close(): unknown {
    const frame = this.frames[--this.depth] as Frame;
    this.top = this.depth === 0 ? null : (this.frames[this.depth - 1] as Frame);
    const items = frame.items;
    frame.items = NO_ITEMS;
    if (frame.reserved !== 0) {
      this.reserved -= frame.reserved;
      frame.reserved = 0;
    }
    if (frame.kind === T_ARRAY && !this.typed) return items;
    const streamed = frame.length === -1;
    if (frame.kind === T_BULK) {
      this.inStreamedString = false;
      const data = Buffer.concat(items as Buffer[], frame.bytes);
      const value = this.buffers ? data : data.toString('utf8');
      return this.typed ? { type: 'bulk-string', value, streamed: true } : value;
    }
    if (frame.kind === T_ATTRIBUTE) {
      this.pendAttributes(this.keepAttributes ? items : NO_ITEMS);
      return NO_VALUE;
    }
    return this.finishAggregate(frame.kind, items, streamed);
  }

  /**
   * Holds attribute pairs for the next value of the innermost aggregate (or the next top-level
   * value). Dropped and empty attributes leave an empty list: a value must follow them all the
   * same, and the bytes stay part of that value. Consecutive attributes merge in place
   * (appending keeps a long run of them linear).
   */
  private pendAttributes(items: unknown[]): void {
    const parent = this.depth === 0 ? null : (this.frames[this.depth - 1] as Frame);
    const held = parent === null ? this.topAttrs : parent.attrs;
    if (held === null) {
      const fresh = items === NO_ITEMS ? [] : items;
      if (parent === null) this.topAttrs = fresh;
      else parent.attrs = fresh;
    } else for (let i = 0; i < items.length; i++) held.push(items[i]);
  }

  private finishAggregate(kind: number, items: unknown[], streamed: boolean): unknown {
    if (this.typed) {
      switch (kind) {
        case T_ARRAY:
          return streamed ? { type: 'array', value: items, streamed } : { type: 'array', value: items };
        case T_SET:
          return streamed ? { type: 'set', value: items, streamed } : { type: 'set', value: items };
        case T_PUSH:
          return { type: 'push', value: items };
        default: {
          const pairs = this.pairs(items);
          return streamed ? { type: 'map', value: pairs, streamed } : { type: 'map', value: pairs };
        }
      }
    }
    switch (kind) {
      case T_ARRAY:
      case T_PUSH:
        return items;
      case T_SET:
        return this.sets === 'set' ? new Set(items) : items;
      default:
        return this.mapOf(items);
    }
  }

  private pairs(items: unknown[]): [RespNode, RespNode][] {
    const pairs: [RespNode, RespNode][] = new Array(items.length >> 1);
    for (let i = 0; i < items.length; i += 2) pairs[i >> 1] = [items[i] as RespNode, items[i + 1] as RespNode];
    return pairs;
  }

  private mapOf(items: unknown[]): RespMapValue {
    if (this.maps === 'array') return items as RespValue[];
    if (this.maps === 'map') {
      const map = new Map<RespValue, RespValue>();
      for (let i = 0; i < items.length; i += 2) map.set(items[i] as RespValue, items[i + 1] as RespValue);
      return map;
    }
    const object: { [key: string]: RespValue } = {};
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      const name = typeof key === 'string' ? key : keyText(key);
      // A server-chosen "__proto__" must stay a plain key, never a prototype change.
      if (name === '__proto__') {
        Object.defineProperty(object, name, {
          value: items[i + 1],
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else object[name] = items[i + 1] as RespValue;
    }
    return object;
  }

  /** Adds `value` to the innermost aggregate, closing those it completes; delivers a top-level value. Returns true to stop. */
  private add(value: unknown, buf: Buffer, pos: number, base: number): boolean {
    for (;;) {
      if (this.depth === 0) {
        if (this.topAttrs !== null) {
          value = this.attach(value, this.topAttrs);
          this.topAttrs = null;
        }
        const at = base + pos;
        this.lastLength = at - this.consumed;
        this.consumed = at;
        if (buf === this.buf) this.pos = pos;
        const push = this.topPush;
        this.topPush = false;
        if (push) this.onPush(value as Value);
        else this.onReply(value as Value);
        return this.halt;
      }
      const frame = this.frames[this.depth - 1] as Frame;
      if (frame.attrs !== null) {
        value = this.attach(value, frame.attrs);
        frame.attrs = null;
      }
      frame.items[frame.index++] = value;
      if (frame.index !== frame.length) return false;
      value = this.close();
      if (value === NO_VALUE) return false;
    }
  }

  private attach(value: unknown, attrs: unknown[]): unknown {
    if (attrs.length === 0) return value;
    if (this.typed) return { ...(value as RespNode), attributes: this.pairs(attrs) };
    return new Attributed(value as RespValue, this.mapOf(attrs));
  }
}
