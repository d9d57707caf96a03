// Decoders of the compact encodings Redis stores as one RDB string: listpack (src/listpack.c),
// ziplist (src/ziplist.c), intset (src/intset.c) and zipmap (src/zipmap.c). Each is a flat loop
// over the blob with every length checked against the blob's end; strings are sliced, not copied.

/** One element of a compact encoding: bytes (a slice of the blob), or an integer. */
export type CompactValue = Buffer | number | bigint;

/** Why a blob is bad, for the caller to wrap with the RDB offset and key. */
export class EncodingError extends Error {}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function int64(value: bigint): number | bigint {
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
}

/**
 * Where the elements of one listpack or ziplist are: byte ranges of the blob, or integers. Reused
 * from blob to blob, so reading one allocates nothing per element.
 */
export class CompactTape {
  /** Elements recorded. */
  count = 0;
  /** 0: bytes `start[i]..end[i]` of the blob; 1: the integer `value[i]`; 2: the bigint `bigs[i]`. */
  kind: Uint8Array = new Uint8Array(64);
  start: Uint32Array = new Uint32Array(64);
  end: Uint32Array = new Uint32Array(64);
  value: Float64Array = new Float64Array(64);
  readonly bigs: Map<number, bigint> = new Map();

  reset(): void {
    this.count = 0;
    if (this.bigs.size > 0) this.bigs.clear();
    // A very large blob is rare: do not keep its room for the rest of the file.
    if (this.kind.length > 1 << 16) this.#allocate(64);
  }

  bytes(start: number, end: number): void {
    const i = this.#next();
    this.kind[i] = 0;
    this.start[i] = start;
    this.end[i] = end;
  }

  int(value: number): void {
    const i = this.#next();
    this.kind[i] = 1;
    this.value[i] = value;
  }

  int64(value: bigint): void {
    if (value >= MIN_SAFE && value <= MAX_SAFE) {
      this.int(Number(value));
      return;
    }
    const i = this.#next();
    this.kind[i] = 2;
    this.bigs.set(i, value);
  }

  /** Element `i` as bytes: a slice of `blob`, or an integer's decimal text. */
  bytesOf(blob: Buffer, i: number): Buffer {
    const kind = this.kind[i];
    if (kind === 0) return blob.subarray(this.start[i], this.end[i]);
    return Buffer.from(String(kind === 1 ? this.value[i] : this.bigs.get(i)), 'latin1');
  }

  /** Element `i` as a number (scores, counters): integers as they are, text parsed as a score. */
  numberOf(blob: Buffer, i: number): number {
    const kind = this.kind[i];
    if (kind === 0) return parseScore(blob, this.start[i], this.end[i]);
    return kind === 1 ? (this.value[i] as number) : Number(this.bigs.get(i));
  }

  /** Element `i` as a value of {@link decodeListpack}. */
  valueOf(blob: Buffer, i: number): CompactValue {
    const kind = this.kind[i];
    if (kind === 0) return blob.subarray(this.start[i], this.end[i]);
    return kind === 1 ? (this.value[i] as number) : (this.bigs.get(i) as bigint);
  }

  #next(): number {
    const i = this.count++;
    if (i === this.kind.length) this.#allocate(i * 2);
    return i;
  }

  /** New arrays of `size` elements, keeping the elements recorded so far. */
  #allocate(size: number): void {
    const kind = new Uint8Array(size);
    const start = new Uint32Array(size);
    const end = new Uint32Array(size);
    const value = new Float64Array(size);
    const keep = Math.min(this.count, size);
    kind.set(this.kind.subarray(0, keep));
    start.set(this.start.subarray(0, keep));
    end.set(this.end.subarray(0, keep));
    value.set(this.value.subarray(0, keep));
    this.kind = kind;
    this.start = start;
    this.end = end;
    this.value = value;
  }
}

/** Decodes a listpack into its elements. */
export function decodeListpack(lp: Buffer): CompactValue[] {
  return materialize(lp, scanListpack);
}

/** Decodes a ziplist into its elements. */
export function decodeZiplist(zl: Buffer): CompactValue[] {
  return materialize(zl, scanZiplist);
}

function materialize(blob: Buffer, scan: (blob: Buffer, tape: CompactTape) => void): CompactValue[] {
  const tape = new CompactTape();
  scan(blob, tape);
  const out: CompactValue[] = new Array(tape.count);
  for (let i = 0; i < tape.count; i++) out[i] = tape.valueOf(blob, i);
  return out;
}

/**
 * Checks a listpack whole and records where its elements are in `tape` (nothing is allocated per
 * element): the caller makes Buffers of only what it keeps, once the listpack is known to be sound.
 */
export function scanListpack(lp: Buffer, tape: CompactTape): void {
  tape.reset();
  if (lp.length < 7) throw new EncodingError(`listpack of ${lp.length} bytes is shorter than its 7-byte frame`);
  const total = lp.readUInt32LE(0);
  if (total !== lp.length)
    throw new EncodingError(`listpack says ${total} bytes but the RDB string holds ${lp.length}`);
  const declared = lp.readUInt16LE(4);
  let p = 6;
  const end = lp.length - 1;
  while (p < end) {
    const b = lp[p] as number;
    let entryLen: number; // encoding byte(s) + data, without the back length
    if (b < 0x80) {
      tape.int(b);
      entryLen = 1;
    } else if (b < 0xc0) {
      const len = b & 0x3f;
      entryLen = 1 + len;
      if (p + entryLen > end) throw new EncodingError('listpack string runs past the end');
      tape.bytes(p + 1, p + entryLen);
    } else if (b < 0xe0) {
      if (p + 2 > end) throw new EncodingError('listpack integer runs past the end');
      let v = ((b & 0x1f) << 8) | (lp[p + 1] as number);
      if (v >= 4096) v -= 8192;
      tape.int(v);
      entryLen = 2;
    } else if (b < 0xf0) {
      if (p + 2 > end) throw new EncodingError('listpack string length runs past the end');
      const len = ((b & 0x0f) << 8) | (lp[p + 1] as number);
      entryLen = 2 + len;
      if (p + entryLen > end) throw new EncodingError('listpack string runs past the end');
      tape.bytes(p + 2, p + entryLen);
    } else {
      switch (b) {
        case 0xf0: {
          if (p + 5 > end) throw new EncodingError('listpack string length runs past the end');
          const len = lp.readUInt32LE(p + 1);
          entryLen = 5 + len;
          if (p + entryLen > end) throw new EncodingError('listpack string runs past the end');
          tape.bytes(p + 5, p + entryLen);
          break;
        }
        case 0xf1:
          if (p + 3 > end) throw new EncodingError('listpack integer runs past the end');
          tape.int(lp.readInt16LE(p + 1));
          entryLen = 3;
          break;
        case 0xf2:
          if (p + 4 > end) throw new EncodingError('listpack integer runs past the end');
          tape.int(lp.readIntLE(p + 1, 3));
          entryLen = 4;
          break;
        case 0xf3:
          if (p + 5 > end) throw new EncodingError('listpack integer runs past the end');
          tape.int(lp.readInt32LE(p + 1));
          entryLen = 5;
          break;
        case 0xf4:
          if (p + 9 > end) throw new EncodingError('listpack integer runs past the end');
          tape.int64(lp.readBigInt64LE(p + 1));
          entryLen = 9;
          break;
        default:
          throw new EncodingError(`listpack entry has the unknown encoding byte 0x${b.toString(16)}`);
      }
    }
    p += entryLen + (entryLen < 128 ? 1 : entryLen < 16383 ? 2 : entryLen < 2097151 ? 3 : entryLen < 268435455 ? 4 : 5);
  }
  if (p !== end || lp[end] !== 0xff) throw new EncodingError('listpack does not end with its 0xFF terminator');
  // 65535 means "too many to count in 16 bits".
  if (declared !== 65535 && declared !== tape.count)
    throw new EncodingError(`listpack says ${declared} elements but holds ${tape.count}`);
}

/**
 * Checks a ziplist whole and records where its elements are in `tape` (nothing is allocated per
 * element): the caller makes Buffers of only what it keeps, once the ziplist is known to be sound.
 */
export function scanZiplist(zl: Buffer, tape: CompactTape): void {
  tape.reset();
  if (zl.length < 11) throw new EncodingError(`ziplist of ${zl.length} bytes is shorter than its 11-byte frame`);
  const total = zl.readUInt32LE(0);
  if (total !== zl.length) throw new EncodingError(`ziplist says ${total} bytes but the RDB string holds ${zl.length}`);
  const declared = zl.readUInt16LE(8);
  let p = 10;
  const end = zl.length - 1;
  while (p < end) {
    // prevlen: 1 byte, or 0xFE and 4 bytes.
    if ((zl[p] as number) === 0xfe) p += 5;
    else p += 1;
    if (p >= end) throw new EncodingError('ziplist entry header runs past the end');
    const b = zl[p] as number;
    const kind = b >> 6;
    if (kind === 0) {
      const len = b & 0x3f;
      if (p + 1 + len > end) throw new EncodingError('ziplist string runs past the end');
      tape.bytes(p + 1, p + 1 + len);
      p += 1 + len;
    } else if (kind === 1) {
      if (p + 2 > end) throw new EncodingError('ziplist string length runs past the end');
      const len = ((b & 0x3f) << 8) | (zl[p + 1] as number);
      if (p + 2 + len > end) throw new EncodingError('ziplist string runs past the end');
      tape.bytes(p + 2, p + 2 + len);
      p += 2 + len;
    } else if (kind === 2) {
      if (p + 5 > end) throw new EncodingError('ziplist string length runs past the end');
      const len = zl.readUInt32BE(p + 1);
      if (p + 5 + len > end) throw new EncodingError('ziplist string runs past the end');
      tape.bytes(p + 5, p + 5 + len);
      p += 5 + len;
    } else {
      switch (b) {
        case 0xc0:
          if (p + 3 > end) throw new EncodingError('ziplist integer runs past the end');
          tape.int(zl.readInt16LE(p + 1));
          p += 3;
          break;
        case 0xd0:
          if (p + 5 > end) throw new EncodingError('ziplist integer runs past the end');
          tape.int(zl.readInt32LE(p + 1));
          p += 5;
          break;
        case 0xe0:
          if (p + 9 > end) throw new EncodingError('ziplist integer runs past the end');
          tape.int64(zl.readBigInt64LE(p + 1));
          p += 9;
          break;
        case 0xf0:
          if (p + 4 > end) throw new EncodingError('ziplist integer runs past the end');
          tape.int(zl.readIntLE(p + 1, 3));
          p += 4;
          break;
        case 0xfe:
          if (p + 2 > end) throw new EncodingError('ziplist integer runs past the end');
          tape.int(zl.readInt8(p + 1));
          p += 2;
          break;
        default:
          // 1111xxxx with xxxx in 0001..1101: the value xxxx - 1, no data bytes.
          if (b >= 0xf1 && b <= 0xfd) {
            tape.int((b & 0x0f) - 1);
            p += 1;
          } else {
            throw new EncodingError(`ziplist entry has the unknown encoding byte 0x${b.toString(16)}`);
          }
      }
    }
  }
  if (p !== end || zl[end] !== 0xff) throw new EncodingError('ziplist does not end with its 0xFF terminator');
  if (declared !== 65535 && declared !== tape.count)
    throw new EncodingError(`ziplist says ${declared} entries but holds ${tape.count}`);
}

/** Decodes an intset into its integers. */
export function decodeIntset(is: Buffer): (number | bigint)[] {
  if (is.length < 8) throw new EncodingError(`intset of ${is.length} bytes is shorter than its 8-byte header`);
  const width = is.readUInt32LE(0);
  const count = is.readUInt32LE(4);
  if (width !== 2 && width !== 4 && width !== 8) throw new EncodingError(`intset has the unknown width ${width}`);
  if (8 + count * width !== is.length)
    throw new EncodingError(`intset of ${count} x ${width} bytes does not fill the ${is.length}-byte string`);
  const out: (number | bigint)[] = new Array(count);
  for (let i = 0, p = 8; i < count; i++, p += width) {
    out[i] = width === 2 ? is.readInt16LE(p) : width === 4 ? is.readInt32LE(p) : int64(is.readBigInt64LE(p));
  }
  return out;
}

/** Decodes a zipmap (Redis < 2.6 hashes) into field, value, field, value... */
export function decodeZipmap(zm: Buffer): Buffer[] {
  if (zm.length < 2) throw new EncodingError('zipmap is shorter than its 2-byte frame');
  const out: Buffer[] = [];
  let p = 1;
  const readLen = (): number => {
    if (p >= zm.length) throw new EncodingError('zipmap length runs past the end');
    const b = zm[p] as number;
    if (b < 254) {
      p += 1;
      return b;
    }
    if (b === 254) {
      if (p + 5 > zm.length) throw new EncodingError('zipmap length runs past the end');
      const len = zm.readUInt32LE(p + 1);
      p += 5;
      return len;
    }
    p += 1; // 255: end
    return -1;
  };
  for (;;) {
    const flen = readLen();
    if (flen === -1) break;
    if (p + flen > zm.length) throw new EncodingError('zipmap field runs past the end');
    const field = zm.subarray(p, p + flen);
    p += flen;
    const vlen = readLen();
    if (vlen === -1) throw new EncodingError('zipmap ends between a field and its value');
    if (p >= zm.length) throw new EncodingError('zipmap value runs past the end');
    const free = zm[p] as number;
    p += 1;
    if (p + vlen + free > zm.length) throw new EncodingError('zipmap value runs past the end');
    out.push(field, zm.subarray(p, p + vlen));
    p += vlen + free;
  }
  if (p !== zm.length) throw new EncodingError('zipmap has bytes after its 0xFF terminator');
  return out;
}

/** An element as bytes: integers become their decimal text, as Redis shows them. */
export function valueBytes(v: CompactValue): Buffer {
  return typeof v === 'object' ? v : Buffer.from(String(v), 'latin1');
}

/** An element as a number (listpack scores, stream counters). */
export function valueNumber(v: CompactValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return parseScore(v);
}

/** An element as a bigint (stream ID parts). */
export function valueBigInt(v: CompactValue): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  const text = v.toString('latin1');
  if (!/^-?\d+$/.test(text)) throw new EncodingError(`expected an integer, found "${text.slice(0, 40)}"`);
  return BigInt(text);
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/** Parses a score stored as text the way Redis prints doubles ("inf", "-inf", "nan" included). */
export function parseScore(text: Buffer, from = 0, to: number = text.length): number {
  // Most scores are short decimals: with at most 15 digits the integer of the digits and the
  // power of ten are exact doubles, so one division is correctly rounded (as Number() rounds).
  if (to - from <= 17) {
    const negative = (text[from] as number) === 45;
    let i = negative ? from + 1 : from;
    let mantissa = 0;
    let digits = 0;
    let decimals = -1;
    for (; i < to; i++) {
      const c = text[i] as number;
      if (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        if (decimals >= 0) decimals++;
      } else if (c === 46 && decimals < 0) decimals = 0;
      else break;
    }
    if (i === to && digits > 0 && digits <= 15 && decimals !== 0) {
      const value = decimals > 0 ? mantissa / (POW10[decimals] as number) : mantissa;
      return negative ? -value : value;
    }
  }
  const s = text.toString('latin1', from, to);
  switch (s) {
    case 'inf':
    case '+inf':
      return Number.POSITIVE_INFINITY;
    case '-inf':
      return Number.NEGATIVE_INFINITY;
    case 'nan':
    case '-nan':
      return Number.NaN;
  }
  const n = Number(s);
  if (s.length === 0 || (Number.isNaN(n) && s.toLowerCase() !== 'nan'))
    throw new EncodingError(`score "${s.slice(0, 40)}" is not a number`);
  return n;
}
