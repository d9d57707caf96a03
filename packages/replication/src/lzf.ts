// LZF decompression as Redis writes it (deps/lzf_d.c). A token is a control byte: below 32 it
// starts a run of ctrl+1 literal bytes; otherwise it is a back reference of length (ctrl >> 5) + 2
// (7 means "plus the next byte") at distance ((ctrl & 31) << 8 | next byte) + 1, at most 8 KiB.

/** Why LZF data is bad, for the caller to wrap with its own context. */
export class LzfError extends Error {
  /** Where in the compressed bytes the failing token starts (streamed decoding only). */
  readonly at: number | undefined;
  constructor(message: string, at?: number) {
    super(message);
    this.at = at;
  }
}

/**
 * The most output one compressed byte can yield: the longest token, a 3-byte back reference,
 * produces 264 bytes. A declared length above `compressed * 88` is a lie, and is refused before
 * any memory is set aside for it.
 */
export const LZF_MAX_EXPANSION = 88;

/** Why `length` bytes cannot come out of `compressed` bytes, or undefined when they can. */
export function lzfLengthProblem(compressed: number, length: number): string | undefined {
  if (length > compressed * LZF_MAX_EXPANSION)
    return `an LZF string of ${compressed} compressed bytes cannot hold ${length} bytes (at most ${compressed * LZF_MAX_EXPANSION})`;
  return undefined;
}

/**
 * Decompresses one LZF block whose decompressed length is known (as the RDB stores it): the
 * compressed bytes are `input[start..end)` (the whole input by default), read in place.
 * Throws {@link LzfError} when the data is corrupt or does not produce exactly `length` bytes.
 */
export function lzfDecompress(input: Uint8Array, length: number, start = 0, end: number = input.length): Buffer {
  const problem = lzfLengthProblem(end - start, length);
  if (problem) throw new LzfError(problem);
  const out = Buffer.allocUnsafe(length);
  let ip = start;
  let op = 0;
  while (ip < end) {
    let ctrl = input[ip++] as number;
    if (ctrl < 32) {
      // A literal run of at most 32 bytes: a loop beats making a view to copy from.
      ctrl++;
      if (op + ctrl > length) throw new LzfError('literal run overflows the declared length');
      if (ip + ctrl > end) throw new LzfError('literal run overflows the compressed data');
      const stop = ip + ctrl;
      while (ip < stop) out[op++] = input[ip++] as number;
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= end) throw new LzfError('back reference cut short');
        len += input[ip++] as number;
      }
      if (ip >= end) throw new LzfError('back reference cut short');
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - (input[ip++] as number);
      len += 2;
      if (ref < 0) throw new LzfError('back reference before the start of the output');
      if (op + len > length) throw new LzfError('back reference overflows the declared length');
      if (len < 64 || op - ref < 32) {
        for (let r = ref, stop = op + len; op < stop; ) out[op++] = out[r++] as number;
      } else {
        // A long match from far enough back: block copies. When it overlaps its source (a pattern
        // of period op - ref), each copy takes what is already written, so the run doubles each time.
        let done = 0;
        while (done < len) {
          const n = Math.min(op - ref, len - done);
          out.copyWithin(op, ref, ref + n);
          op += n;
          done += n;
        }
      }
    }
  }
  if (op !== length) throw new LzfError(`decompressed to ${op} bytes, the RDB declared ${length}`);
  return out;
}

const WINDOW = 8192;
const MAX_TOKEN_OUT = 264;

/**
 * Decompresses an LZF block fed in pieces, handing out the result in pieces, so that a huge
 * compressed string never sits whole in memory: only the last 8 KiB of output (the largest
 * back-reference distance) and one output chunk are kept.
 */
export class LzfStreamDecoder {
  readonly #length: number;
  readonly #chunkSize: number;
  readonly #out: Buffer;
  #outPos = 0;
  #emitFrom = 0;
  #total = 0;
  // Token state across input pieces: 0 control byte, 1 literal bytes, 2 length byte, 3 distance byte.
  #state = 0;
  #ctrl = 0;
  #count = 0;
  /** Compressed bytes fed before the current write, and where the token in progress started. */
  #fed = 0;
  #tokenAt = 0;

  constructor(length: number, chunkSize: number, compressed: number) {
    const problem = lzfLengthProblem(compressed, length);
    if (problem) throw new LzfError(problem);
    this.#length = length;
    this.#chunkSize = Math.max(chunkSize, WINDOW);
    this.#out = Buffer.allocUnsafe(this.#chunkSize + WINDOW + MAX_TOKEN_OUT + 64);
  }

  /** Bytes produced so far. */
  get produced(): number {
    return this.#total;
  }

  /** Feeds compressed bytes; calls `emit` with each completed output chunk (a copy). */
  write(input: Uint8Array, emit: (chunk: Buffer) => void): void {
    const out = this.#out;
    let ip = 0;
    const end = input.length;
    while (ip < end) {
      switch (this.#state) {
        case 0: {
          this.#tokenAt = this.#fed + ip;
          const ctrl = input[ip++] as number;
          if (ctrl < 32) {
            this.#count = ctrl + 1;
            if (this.#total + this.#count > this.#length)
              throw new LzfError('literal run overflows the declared length', this.#tokenAt);
            this.#state = 1;
          } else {
            this.#ctrl = ctrl;
            this.#count = ctrl >> 5;
            this.#state = this.#count === 7 ? 2 : 3;
          }
          break;
        }
        case 1: {
          const n = Math.min(this.#count, end - ip);
          out.set(input.subarray(ip, ip + n), this.#outPos);
          this.#outPos += n;
          this.#total += n;
          this.#count -= n;
          ip += n;
          if (this.#count === 0) {
            this.#state = 0;
            this.#maybeFlush(emit);
          }
          break;
        }
        case 2:
          this.#count += input[ip++] as number;
          this.#state = 3;
          break;
        default: {
          const distance = ((this.#ctrl & 0x1f) << 8) + (input[ip++] as number) + 1;
          const len = this.#count + 2;
          if (distance > this.#total)
            throw new LzfError('back reference before the start of the output', this.#tokenAt);
          if (this.#total + len > this.#length)
            throw new LzfError('back reference overflows the declared length', this.#tokenAt);
          let ref = this.#outPos - distance;
          let op = this.#outPos;
          for (let k = 0; k < len; k++) out[op++] = out[ref++] as number;
          this.#outPos = op;
          this.#total += len;
          this.#state = 0;
          this.#maybeFlush(emit);
        }
      }
    }
    this.#fed += end;
  }

  /** Ends the block: emits what is left and checks the length. */
  finish(emit: (chunk: Buffer) => void): void {
    if (this.#state !== 0) throw new LzfError('compressed data ends inside a token', this.#tokenAt);
    if (this.#total !== this.#length)
      throw new LzfError(`decompressed to ${this.#total} bytes, the RDB declared ${this.#length}`, this.#fed);
    if (this.#outPos > this.#emitFrom) emit(Buffer.from(this.#out.subarray(this.#emitFrom, this.#outPos)));
    this.#emitFrom = this.#outPos;
  }

  #maybeFlush(emit: (chunk: Buffer) => void): void {
    if (this.#outPos - this.#emitFrom < this.#chunkSize) return;
    emit(Buffer.from(this.#out.subarray(this.#emitFrom, this.#outPos)));
    // Keep the window that later back references may reach.
    this.#out.copyWithin(0, this.#outPos - WINDOW, this.#outPos);
    this.#outPos = WINDOW;
    this.#emitFrom = WINDOW;
  }
}
