// CRC-64/Jones as Redis computes it (src/crc64.c): reflected, polynomial 0xad93d23594c935a9,
// initial value 0, no final xor. JavaScript has no fast 64-bit integers, so the register is kept
// as two 32-bit halves and the input is consumed 8 bytes at a time (slicing-by-8).

const POLY_REFLECTED_HI = 0x95ac9329;
const POLY_REFLECTED_LO = 0xac4bc9b5;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** `count` 32-bit little-endian words of `data` from `from`, on a big-endian machine. */
function littleEndianWords(data: Uint8Array, from: number, count: number): Int32Array {
  const view = new DataView(data.buffer, data.byteOffset + from, count * 4);
  const words = new Int32Array(count);
  for (let k = 0; k < count; k++) words[k] = view.getInt32(k * 4, true);
  return words;
}
// Int32Array, not Uint32Array: its values stay small integers for V8, never heap doubles.
const HI = new Int32Array(8 * 256);
const LO = new Int32Array(8 * 256);

for (let n = 0; n < 256; n++) {
  let hi = 0;
  let lo = n;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi >>>= 1;
    if (carry) {
      hi = (hi ^ POLY_REFLECTED_HI) >>> 0;
      lo = (lo ^ POLY_REFLECTED_LO) >>> 0;
    }
  }
  HI[n] = hi;
  LO[n] = lo;
}
for (let t = 1; t < 8; t++) {
  for (let n = 0; n < 256; n++) {
    const prevHi = HI[(t - 1) * 256 + n] as number;
    const prevLo = LO[(t - 1) * 256 + n] as number;
    const idx = prevLo & 0xff;
    HI[t * 256 + n] = ((prevHi >>> 8) ^ (HI[idx] as number)) >>> 0;
    LO[t * 256 + n] = (((prevLo >>> 8) | (prevHi << 24)) ^ (LO[idx] as number)) >>> 0;
  }
}

/**
 * An incremental CRC-64/Jones, the checksum at the end of an RDB file.
 *
 * @example
 * ```ts
 * const crc = new Crc64();
 * crc.update(Buffer.from('123456789'));
 * crc.digest(); // 0xe9c6d914c4b8d9can
 * ```
 */
export class Crc64 {
  #hi = 0;
  #lo = 0;

  /** Adds `data[start..end)` to the checksum. */
  update(data: Uint8Array, start = 0, end: number = data.length): void {
    if (end - start >= 64) {
      // Aligned 4-byte words are read as Int32s (two loads per 8 bytes), on big-endian machines
      // through a DataView in little-endian order.
      const head = (4 - ((data.byteOffset + start) & 3)) & 3;
      this.#bytes(data, start, start + head);
      const from = start + head;
      const count = ((end - from) >> 3) << 1;
      this.#words(
        LITTLE_ENDIAN
          ? new Int32Array(data.buffer, data.byteOffset + from, count)
          : littleEndianWords(data, from, count),
      );
      this.#bytes(data, from + count * 4, end);
      return;
    }
    this.#bytes(data, start, end);
  }

  #words(words: Int32Array): void {
    let hi = this.#hi;
    let lo = this.#lo;
    for (let k = 0; k < words.length; k += 2) {
      const a = lo ^ (words[k] as number);
      const b = hi ^ (words[k + 1] as number);
      const i0 = 1792 + (a & 0xff);
      const i1 = 1536 + ((a >> 8) & 0xff);
      const i2 = 1280 + ((a >> 16) & 0xff);
      const i3 = 1024 + ((a >> 24) & 0xff);
      const i4 = 768 + (b & 0xff);
      const i5 = 512 + ((b >> 8) & 0xff);
      const i6 = 256 + ((b >> 16) & 0xff);
      const i7 = (b >> 24) & 0xff;
      hi =
        (HI[i0] as number) ^
        (HI[i1] as number) ^
        (HI[i2] as number) ^
        (HI[i3] as number) ^
        (HI[i4] as number) ^
        (HI[i5] as number) ^
        (HI[i6] as number) ^
        (HI[i7] as number);
      lo =
        (LO[i0] as number) ^
        (LO[i1] as number) ^
        (LO[i2] as number) ^
        (LO[i3] as number) ^
        (LO[i4] as number) ^
        (LO[i5] as number) ^
        (LO[i6] as number) ^
        (LO[i7] as number);
    }
    this.#hi = hi;
    this.#lo = lo;
  }

  /** Byte at a time: the unaligned head and tail of a long input, and short inputs. */
  #bytes(data: Uint8Array, start: number, end: number): void {
    let hi = this.#hi;
    let lo = this.#lo;
    for (let i = start; i < end; i++) {
      const idx = (lo ^ (data[i] as number)) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ (LO[idx] as number);
      hi = (hi >>> 8) ^ (HI[idx] as number);
    }
    this.#hi = hi;
    this.#lo = lo;
  }

  /** The checksum so far, as an unsigned 64-bit integer. */
  digest(): bigint {
    return (BigInt(this.#hi >>> 0) << 32n) | BigInt(this.#lo >>> 0);
  }
}

/**
 * CRC-64/Jones of one buffer.
 *
 * @example
 * ```ts
 * crc64(Buffer.from('123456789')) === 0xe9c6d914c4b8d9can; // true
 * ```
 */
export function crc64(data: Uint8Array): bigint {
  const crc = new Crc64();
  crc.update(data);
  return crc.digest();
}
