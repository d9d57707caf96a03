import { RespError } from './errors.ts';
import { Attributed, type RespNode, type RespValue, VerbatimString } from './values.ts';

/** What a command argument may be. Numbers are written in decimal (`Infinity` as `inf`), bigints exactly. */
export type CommandArgument = string | Buffer | Uint8Array | number | bigint;

/** A command: its name and arguments, for example `['SET', 'k', 'v']`. */
export type Command = readonly CommandArgument[];

/** Options of {@link CommandEncoder}. */
export interface CommandEncoderOptions {
  /** Buffers at least this long are passed through (not copied) in {@link CommandEncoder.take}'s chunks. Default 16 KiB. */
  readonly passThroughBytes?: number | undefined;
  /** Size of the buffers small commands are packed into. Default 64 KiB. */
  readonly slabBytes?: number | undefined;
}

interface NativeWrites {
  utf8Write(text: string, offset: number, length?: number): number;
}

const CRLF_0 = 13;
const CRLF_1 = 10;

/**
 * Called as `charCodeAt.call(text, i)`, not `text.charCodeAt(i)`: once any code defines a
 * subclass of String (ioredis and @redis/client both do, for verbatim strings), V8 drops a fast
 * path of the method call on primitives and the copy loop below gets about 5 times slower.
 */
const charCodeAt = String.prototype.charCodeAt;

function argumentError(index: number, value: unknown, why: string): RespError {
  const shown = typeof value === 'object' && value !== null ? (value.constructor?.name ?? 'object') : String(value);
  return new RespError(
    'ERR_RESP_ARGUMENT',
    `command argument ${index} (${typeof value} ${shown.slice(0, 40)}) ${why}; use a string, Buffer, Uint8Array, number or bigint`,
  );
}

/** Decimal text of a number argument (integers exactly, floats shortest round-trip, ±inf as Redis spells it). */
function numberText(value: number): string {
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  return String(value);
}

/**
 * Encodes commands as RESP arrays of bulk strings into shared slabs: small commands cost no
 * allocation of their own (a view of the slab), consecutive commands come out as one
 * contiguous chunk, and large Buffers are passed through untouched for `writev`.
 *
 * @example
 * ```ts
 * const encoder = new CommandEncoder();
 * encoder.push(['SET', 'k', 'v']);
 * encoder.push(['GET', 'k']);
 * socket.write(Buffer.concat(encoder.take())); // or cork() + write each chunk
 * ```
 */
export class CommandEncoder {
  readonly passThroughBytes: number;
  readonly slabBytes: number;
  private slab: Buffer;
  private cursor = 0;
  /** Start of the part of the slab not yet handed out by take(). */
  private chunkStart = 0;
  private chunks: Buffer[] = [];
  /** Bytes pushed and not yet taken. */
  pendingBytes = 0;

  constructor(options: CommandEncoderOptions = {}) {
    this.passThroughBytes = options.passThroughBytes ?? 16 * 1024;
    this.slabBytes = options.slabBytes ?? 64 * 1024;
    if (!(this.passThroughBytes >= 0) || !(this.slabBytes >= 64)) {
      throw new RespError('ERR_RESP_ARGUMENT', 'passThroughBytes must be >= 0 and slabBytes >= 64');
    }
    this.slab = Buffer.allocUnsafe(this.slabBytes);
  }

  /**
   * Appends one command. Throws before writing anything when an argument has a wrong type.
   *
   * @throws {RespError} `ERR_RESP_ARGUMENT` for an empty command or an argument that is not a string, Buffer, Uint8Array, number or bigint.
   */
  push(command: Command): void {
    const count = command.length;
    if (count === 0) throw new RespError('ERR_RESP_ARGUMENT', 'a command needs at least its name');
    // Pass 1 checks every argument and bounds the size, so that pass 2 cannot fail halfway.
    let room = 16;
    for (let i = 0; i < count; i++) {
      const arg = command[i];
      if (typeof arg === 'string') room += arg.length * 3 + 16;
      else if (arg instanceof Uint8Array) room += (arg.length >= this.passThroughBytes ? 0 : arg.length) + 16;
      else if (typeof arg === 'number') {
        if (Number.isNaN(arg)) throw argumentError(i, arg, 'is NaN, which Redis does not accept');
        room += 48;
      } else if (typeof arg === 'bigint') room += arg.toString().length + 16;
      else throw argumentError(i, arg, 'has a type that cannot be sent');
    }
    if (this.cursor + room > this.slab.length) this.newSlab(room);
    let o = this.writeHeader(42, count, this.cursor);
    for (let i = 0; i < count; i++) {
      const arg = command[i] as CommandArgument;
      if (typeof arg === 'string') o = this.writeString(arg, o);
      else if (typeof arg === 'number') o = this.writeString(numberText(arg), o);
      else if (typeof arg === 'bigint') o = this.writeString(arg.toString(), o);
      else if (arg.length >= this.passThroughBytes) o = this.passThrough(arg, o);
      else {
        const slab = this.slab;
        o = this.writeHeader(36, arg.length, o);
        slab.set(arg, o);
        o += arg.length;
        slab[o++] = CRLF_0;
        slab[o++] = CRLF_1;
      }
    }
    this.pendingBytes += o - this.cursor;
    this.cursor = o;
  }

  /** Ends the slab chunk after the header and hands the Buffer itself to writev. */
  private passThrough(arg: Uint8Array, o: number): number {
    o = this.writeHeader(36, arg.length, o);
    this.pendingBytes += o - this.cursor + arg.length;
    this.cursor = o;
    this.cut();
    this.chunks.push(Buffer.isBuffer(arg) ? arg : Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength));
    this.slab[o++] = CRLF_0;
    this.slab[o++] = CRLF_1;
    return o;
  }

  /** Hands out everything pushed since the last take, as chunks for `writev`, and starts afresh. */
  take(): Buffer[] {
    this.cut();
    const chunks = this.chunks;
    this.chunks = [];
    this.pendingBytes = 0;
    return chunks;
  }

  /** Ends the current chunk of the slab (before a passed-through Buffer, or at take). */
  private cut(): void {
    if (this.cursor > this.chunkStart) this.chunks.push(this.slab.subarray(this.chunkStart, this.cursor));
    this.chunkStart = this.cursor;
  }

  private newSlab(room: number): void {
    this.cut();
    this.slab = Buffer.allocUnsafe(Math.max(this.slabBytes, room));
    this.cursor = 0;
    this.chunkStart = 0;
  }

  /** Writes `<prefix><n>\r\n` at `o`. */
  private writeHeader(prefix: number, n: number, o: number): number {
    const slab = this.slab;
    slab[o++] = prefix;
    if (n < 10) slab[o++] = 48 + n;
    else if (n < 100) {
      slab[o++] = 48 + ((n / 10) | 0);
      slab[o++] = 48 + (n % 10);
    } else {
      const digits = String(n);
      for (let i = 0; i < digits.length; i++) slab[o++] = charCodeAt.call(digits, i);
    }
    slab[o++] = CRLF_0;
    slab[o++] = CRLF_1;
    return o;
  }

  /** Writes a bulk string holding `text` as UTF-8. */
  private writeString(text: string, o: number): number {
    const slab = this.slab;
    const n = text.length;
    if (n < 64) {
      // Short strings: assume ASCII and write in one pass (a loop beats two native calls); on the
      // first other character, start over with the UTF-8 length.
      const start = o;
      o = this.writeHeader(36, n, o);
      let i = 0;
      for (; i < n; i++) {
        const c = charCodeAt.call(text, i);
        if (c > 127) break;
        slab[o++] = c;
      }
      if (i === n) {
        slab[o++] = CRLF_0;
        slab[o++] = CRLF_1;
        return o;
      }
      o = start;
    }
    const length = Buffer.byteLength(text, 'utf8');
    o = this.writeHeader(36, length, o);
    o += (slab as unknown as NativeWrites).utf8Write(text, o, length);
    slab[o++] = CRLF_0;
    slab[o++] = CRLF_1;
    return o;
  }
}

const shared = new CommandEncoder();

/**
 * Encodes one command as a single Buffer (a view of a shared slab for small commands).
 *
 * @example
 * ```ts
 * encodeCommand(['SET', 'counter', 42]).toString(); // '*3\r\n$3\r\nSET\r\n$7\r\ncounter\r\n$2\r\n42\r\n'
 * ```
 * @throws {RespError} `ERR_RESP_ARGUMENT` for an argument that cannot be sent.
 */
export function encodeCommand(command: Command): Buffer {
  shared.push(command);
  const chunks = shared.take();
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/**
 * Encodes a pipeline of commands as chunks for `writev`: small commands packed together,
 * Buffers of 16 KiB and more passed through without a copy.
 *
 * @example
 * ```ts
 * const chunks = encodePipeline([['INCR', 'a'], ['SET', 'blob', bigBuffer]]);
 * socket.cork();
 * for (const chunk of chunks) socket.write(chunk);
 * socket.uncork();
 * ```
 */
export function encodePipeline(commands: readonly Command[]): Buffer[] {
  for (const command of commands) shared.push(command);
  return shared.take();
}

// -------------------------------------------------------------------------------------------------
// Values: every RESP3 type, for test servers, proxies and tools

/** Options of {@link encodeValue}. */
export interface EncodeValueOptions {
  /** 3 (default) writes RESP3 types; 2 maps them to RESP2 (maps and sets as arrays, null as `$-1`, booleans as 1/0...). */
  readonly protocol?: 2 | 3 | undefined;
  /** Deepest nesting accepted (a cycle in the value hits it). Default 1024. */
  readonly maxDepth?: number | undefined;
}

class Writer {
  parts: (Buffer | string)[] = [];
  text = '';

  str(s: string): undefined {
    this.text += s;
  }
  bytes(b: Uint8Array): void {
    if (this.text) {
      this.parts.push(this.text);
      this.text = '';
    }
    this.parts.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  blob(prefix: string, payload: string | Uint8Array): undefined {
    if (typeof payload === 'string') this.str(`${prefix}${Buffer.byteLength(payload)}\r\n${payload}\r\n`);
    else {
      this.str(`${prefix}${payload.length}\r\n`);
      this.bytes(payload);
      this.str('\r\n');
    }
  }
  done(): Buffer {
    if (this.text) this.parts.push(this.text);
    return Buffer.concat(this.parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
  }
}

function doubleText(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Object.is(value, -0)) return '-0';
  return String(value);
}

function hasLineBreak(text: string): boolean {
  return text.includes('\r') || text.includes('\n');
}

function depthError(max: number): RespError {
  return new RespError('ERR_RESP_ARGUMENT', `value nested deeper than maxDepth ${max} (is it cyclic?)`);
}

function writeValue(w: Writer, value: unknown, resp3: boolean, depth: number, max: number): undefined {
  if (depth > max) throw depthError(max);
  if (value === null || value === undefined) return w.str(resp3 ? '_\r\n' : '$-1\r\n');
  switch (typeof value) {
    case 'string':
      return w.blob('$', value);
    case 'number':
      if (Number.isSafeInteger(value)) return w.str(`:${value}\r\n`);
      return resp3 ? w.str(`,${doubleText(value)}\r\n`) : w.blob('$', doubleText(value));
    case 'bigint':
      if (value >= -(2n ** 63n) && value < 2n ** 63n) return w.str(`:${value}\r\n`);
      return resp3 ? w.str(`(${value}\r\n`) : w.blob('$', value.toString());
    case 'boolean':
      return w.str(resp3 ? (value ? '#t\r\n' : '#f\r\n') : value ? ':1\r\n' : ':0\r\n');
    default:
      break;
  }
  if (value instanceof Uint8Array) return w.blob('$', value);
  if (value instanceof Error) {
    const message = value.message;
    if (!hasLineBreak(message)) return w.str(`-${message}\r\n`);
    return resp3 ? w.blob('!', message) : w.str(`-${message.replace(/[\r\n]+/g, ' ')}\r\n`);
  }
  if (value instanceof VerbatimString) {
    const text = typeof value.text === 'string' ? Buffer.from(value.text, 'utf8') : value.text;
    if (!resp3) return w.blob('$', text);
    if (!/^[\x21-\x7e]{3}$/.test(value.format)) {
      throw new RespError(
        'ERR_RESP_ARGUMENT',
        `verbatim format must be 3 printable ASCII bytes, got "${value.format}"`,
      );
    }
    w.str(`=${text.length + 4}\r\n${value.format}:`);
    w.bytes(text);
    return w.str('\r\n');
  }
  if (value instanceof Attributed) {
    if (resp3) writePairs(w, '|', mapEntries(value.attributes), resp3, depth, max);
    return writeValue(w, value.value, resp3, depth, max);
  }
  if (Array.isArray(value)) {
    w.str(`*${value.length}\r\n`);
    for (const item of value) writeValue(w, item, resp3, depth + 1, max);
    return;
  }
  if (value instanceof Set) {
    w.str(`${resp3 ? '~' : '*'}${value.size}\r\n`);
    for (const item of value) writeValue(w, item, resp3, depth + 1, max);
    return;
  }
  if (
    value instanceof Map ||
    Object.getPrototypeOf(value) === Object.prototype ||
    Object.getPrototypeOf(value) === null
  ) {
    return writePairs(w, resp3 ? '%' : '*', mapEntries(value as Map<unknown, unknown>), resp3, depth, max);
  }
  throw new RespError(
    'ERR_RESP_ARGUMENT',
    `cannot encode a ${(value as object).constructor?.name ?? typeof value} as RESP; use strings, Buffers, numbers, bigints, booleans, null, arrays, Sets, Maps, plain objects, errors, VerbatimString or Attributed`,
  );
}

function mapEntries(map: unknown): [unknown, unknown][] {
  if (map instanceof Map) return [...map.entries()];
  if (Array.isArray(map)) {
    const pairs: [unknown, unknown][] = [];
    for (let i = 0; i + 1 < map.length; i += 2) pairs.push([map[i], map[i + 1]]);
    return pairs;
  }
  return Object.entries(map as object);
}

function writePairs(
  w: Writer,
  prefix: '%' | '|' | '*',
  pairs: [unknown, unknown][],
  resp3: boolean,
  depth: number,
  max: number,
): undefined {
  w.str(`${prefix}${prefix === '*' ? pairs.length * 2 : pairs.length}\r\n`);
  for (const [k, v] of pairs) {
    writeValue(w, k, resp3, depth + 1, max);
    writeValue(w, v, resp3, depth + 1, max);
  }
}

/**
 * Encodes a plain JS value as a RESP3 (or RESP2) reply: strings and Buffers as bulk strings,
 * safe integers as integers, other numbers as doubles, bigints as integers or big numbers,
 * booleans, `null` as null, arrays, Sets, Maps and plain objects, `Error`s as error replies,
 * {@link VerbatimString} and {@link Attributed}. For exact control (simple strings, pushes,
 * the RESP2 nulls) encode a {@link RespNode} with {@link encodeNode}.
 *
 * @example
 * ```ts
 * encodeValue(new Map([['proto', 3]])).toString(); // '%1\r\n$5\r\nproto\r\n:3\r\n'
 * encodeValue([1, null], { protocol: 2 }).toString(); // '*2\r\n:1\r\n$-1\r\n'
 * ```
 * @throws {RespError} `ERR_RESP_ARGUMENT` for a value with no RESP form, or nested beyond `maxDepth`.
 */
export function encodeValue(value: RespValue | undefined, options: EncodeValueOptions = {}): Buffer {
  const w = new Writer();
  writeValue(w, value, options.protocol !== 2, 0, options.maxDepth ?? 1024);
  return w.done();
}

function writeNode(w: Writer, node: RespNode, depth: number, max: number): undefined {
  if (depth > max) throw depthError(max);
  if (node.attributes !== undefined && node.attributes.length > 0) {
    w.str(`|${node.attributes.length}\r\n`);
    for (const [k, v] of node.attributes) {
      writeNode(w, k, depth + 1, max);
      writeNode(w, v, depth + 1, max);
    }
  }
  switch (node.type) {
    case 'simple-string':
      if (hasLineBreak(node.value))
        throw new RespError('ERR_RESP_ARGUMENT', 'a simple string cannot hold CR or LF; use a bulk string');
      return w.str(`+${node.value}\r\n`);
    case 'simple-error':
      if (hasLineBreak(node.value.message))
        throw new RespError('ERR_RESP_ARGUMENT', 'a simple error cannot hold CR or LF; use a bulk error');
      return w.str(`-${node.value.message}\r\n`);
    case 'integer':
      return w.str(`:${node.value}\r\n`);
    case 'bulk-string':
      if (node.value === null) return w.str('$-1\r\n');
      if (node.streamed) {
        const payload = typeof node.value === 'string' ? Buffer.from(node.value, 'utf8') : node.value;
        w.str('$?\r\n');
        if (payload.length > 0) w.blob(';', payload);
        return w.str(';0\r\n');
      }
      return w.blob('$', node.value);
    case 'array':
      if (node.value === null) return w.str('*-1\r\n');
      return writeList(w, '*', node.value, node.streamed === true, depth, max);
    case 'null':
      return w.str('_\r\n');
    case 'boolean':
      return w.str(node.value ? '#t\r\n' : '#f\r\n');
    case 'double':
      return w.str(`,${doubleText(node.value)}\r\n`);
    case 'big-number':
      return w.str(`(${node.value}\r\n`);
    case 'bulk-error':
      return w.blob('!', node.value.message);
    case 'verbatim-string': {
      const text = typeof node.value === 'string' ? Buffer.from(node.value, 'utf8') : node.value;
      // The format is 3 bytes, as the decoder reads them (latin1): any byte comes back unchanged.
      const format = node.format;
      if (
        format.length !== 3 ||
        format.charCodeAt(0) > 255 ||
        format.charCodeAt(1) > 255 ||
        format.charCodeAt(2) > 255
      ) {
        throw new RespError(
          'ERR_RESP_ARGUMENT',
          `a verbatim format is 3 bytes (3 characters up to U+00FF), got "${node.format.slice(0, 16)}"`,
        );
      }
      w.str(`=${text.length + 4}\r\n`);
      w.bytes(Buffer.from(`${node.format}:`, 'latin1'));
      w.bytes(text);
      return w.str('\r\n');
    }
    case 'map':
      w.str(node.streamed ? '%?\r\n' : `%${node.value.length}\r\n`);
      for (const [k, v] of node.value) {
        writeNode(w, k, depth + 1, max);
        writeNode(w, v, depth + 1, max);
      }
      if (node.streamed) w.str('.\r\n');
      return;
    case 'set':
      return writeList(w, '~', node.value, node.streamed === true, depth, max);
    case 'push':
      return writeList(w, '>', node.value, false, depth, max);
  }
}

function writeList(
  w: Writer,
  prefix: string,
  items: readonly RespNode[],
  streamed: boolean,
  depth: number,
  max: number,
): undefined {
  w.str(streamed ? `${prefix}?\r\n` : `${prefix}${items.length}\r\n`);
  for (const item of items) writeNode(w, item, depth + 1, max);
  if (streamed) w.str('.\r\n');
}

/**
 * Encodes a typed {@link RespNode} exactly: each node type has one wire form, so decoding in
 * typed mode and encoding again gives the same bytes (doubles in their shortest form).
 *
 * @example
 * ```ts
 * encodeNode({ type: 'push', value: [{ type: 'bulk-string', value: 'message' }] }).toString(); // '>1\r\n$7\r\nmessage\r\n'
 * encodeNode({ type: 'simple-string', value: 'OK' }).toString(); // '+OK\r\n'
 * ```
 * @throws {RespError} `ERR_RESP_ARGUMENT` for a simple string or error with CR/LF, or nesting beyond `maxDepth`.
 */
export function encodeNode(node: RespNode, options: { readonly maxDepth?: number | undefined } = {}): Buffer {
  const w = new Writer();
  writeNode(w, node, 0, options.maxDepth ?? 1024);
  return w.done();
}
