// Encoders for the compact formats, written from the format descriptions in Redis' sources
// (listpack.c, ziplist.c, intset.c, zipmap.c, lzf_c.c). Tests use them to build blobs and RDB
// files that no available server writes (ziplists, zipmaps, old RDB versions), byte by byte.

export type Element = Buffer | string | number | bigint;

function isInt(e: Element): e is number | bigint {
  return typeof e === 'number' || typeof e === 'bigint';
}

function bytesOf(e: Element): Buffer {
  return Buffer.isBuffer(e) ? e : Buffer.from(String(e), 'latin1');
}

function backlen(len: number): Buffer {
  // The entry length written backwards, 7 bits per byte, for reverse traversal.
  if (len < 128) return Buffer.from([len]);
  if (len < 16383) return Buffer.from([len >> 7, (len & 127) | 128]);
  if (len < 2097151) return Buffer.from([len >> 14, ((len >> 7) & 127) | 128, (len & 127) | 128]);
  if (len < 268435455)
    return Buffer.from([len >> 21, ((len >> 14) & 127) | 128, ((len >> 7) & 127) | 128, (len & 127) | 128]);
  return Buffer.from([
    Math.floor(len / 268435456),
    ((len >> 21) & 127) | 128,
    ((len >> 14) & 127) | 128,
    ((len >> 7) & 127) | 128,
    (len & 127) | 128,
  ]);
}

/** One listpack entry (encoding + data + backlen). Integers take the smallest integer encoding. */
export function listpackEntry(e: Element): Buffer {
  let enc: Buffer;
  if (isInt(e)) {
    const v = BigInt(e);
    if (v >= 0n && v <= 127n) enc = Buffer.from([Number(v)]);
    else if (v >= -4096n && v <= 4095n) {
      const u = Number(v) & 0x1fff;
      enc = Buffer.from([0xc0 | (u >> 8), u & 0xff]);
    } else if (v >= -32768n && v <= 32767n) {
      enc = Buffer.alloc(3);
      enc[0] = 0xf1;
      enc.writeInt16LE(Number(v), 1);
    } else if (v >= -8388608n && v <= 8388607n) {
      enc = Buffer.alloc(4);
      enc[0] = 0xf2;
      enc.writeIntLE(Number(v), 1, 3);
    } else if (v >= -2147483648n && v <= 2147483647n) {
      enc = Buffer.alloc(5);
      enc[0] = 0xf3;
      enc.writeInt32LE(Number(v), 1);
    } else {
      enc = Buffer.alloc(9);
      enc[0] = 0xf4;
      enc.writeBigInt64LE(v, 1);
    }
  } else {
    const s = bytesOf(e);
    if (s.length < 64) enc = Buffer.concat([Buffer.from([0x80 | s.length]), s]);
    else if (s.length < 4096) enc = Buffer.concat([Buffer.from([0xe0 | (s.length >> 8), s.length & 0xff]), s]);
    else {
      const h = Buffer.alloc(5);
      h[0] = 0xf0;
      h.writeUInt32LE(s.length, 1);
      enc = Buffer.concat([h, s]);
    }
  }
  return Buffer.concat([enc, backlen(enc.length)]);
}

/** A listpack of these elements. */
export function listpack(elements: readonly Element[]): Buffer {
  const body = Buffer.concat(elements.map(listpackEntry));
  const head = Buffer.alloc(6);
  head.writeUInt32LE(6 + body.length + 1, 0);
  head.writeUInt16LE(Math.min(elements.length, 65535), 4);
  return Buffer.concat([head, body, Buffer.from([0xff])]);
}

/** A ziplist of these elements. Integers take the smallest integer encoding. */
export function ziplist(elements: readonly Element[]): Buffer {
  const entries: Buffer[] = [];
  let prevlen = 0;
  for (const e of elements) {
    const prev = prevlen < 254 ? Buffer.from([prevlen]) : Buffer.concat([Buffer.from([0xfe]), u32le(prevlen)]);
    let enc: Buffer;
    if (isInt(e)) {
      const v = BigInt(e);
      if (v >= 0n && v <= 12n) enc = Buffer.from([0xf1 + Number(v)]);
      else if (v >= -128n && v <= 127n) enc = Buffer.from([0xfe, Number(v) & 0xff]);
      else if (v >= -32768n && v <= 32767n) {
        enc = Buffer.alloc(3);
        enc[0] = 0xc0;
        enc.writeInt16LE(Number(v), 1);
      } else if (v >= -8388608n && v <= 8388607n) {
        enc = Buffer.alloc(4);
        enc[0] = 0xf0;
        enc.writeIntLE(Number(v), 1, 3);
      } else if (v >= -2147483648n && v <= 2147483647n) {
        enc = Buffer.alloc(5);
        enc[0] = 0xd0;
        enc.writeInt32LE(Number(v), 1);
      } else {
        enc = Buffer.alloc(9);
        enc[0] = 0xe0;
        enc.writeBigInt64LE(v, 1);
      }
    } else {
      const s = bytesOf(e);
      if (s.length < 64) enc = Buffer.concat([Buffer.from([s.length]), s]);
      else if (s.length < 16384) enc = Buffer.concat([Buffer.from([0x40 | (s.length >> 8), s.length & 0xff]), s]);
      else {
        const h = Buffer.alloc(5);
        h[0] = 0x80;
        h.writeUInt32BE(s.length, 1);
        enc = Buffer.concat([h, s]);
      }
    }
    const entry = Buffer.concat([prev, enc]);
    entries.push(entry);
    prevlen = entry.length;
  }
  const body = Buffer.concat(entries);
  const head = Buffer.alloc(10);
  head.writeUInt32LE(10 + body.length + 1, 0);
  head.writeUInt32LE(entries.length ? 10 + body.length - prevlen : 10, 4);
  head.writeUInt16LE(Math.min(elements.length, 65535), 8);
  return Buffer.concat([head, body, Buffer.from([0xff])]);
}

/** An intset of these integers (sorted, as Redis keeps them), in the smallest width that fits. */
export function intset(values: readonly (number | bigint)[]): Buffer {
  const sorted = [...values].map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const fits = (lo: bigint, hi: bigint) => sorted.every((v) => v >= lo && v <= hi);
  const width = fits(-32768n, 32767n) ? 2 : fits(-2147483648n, 2147483647n) ? 4 : 8;
  const out = Buffer.alloc(8 + width * sorted.length);
  out.writeUInt32LE(width, 0);
  out.writeUInt32LE(sorted.length, 4);
  sorted.forEach((v, i) => {
    const at = 8 + i * width;
    if (width === 2) out.writeInt16LE(Number(v), at);
    else if (width === 4) out.writeInt32LE(Number(v), at);
    else out.writeBigInt64LE(v, at);
  });
  return out;
}

/** A zipmap (Redis < 2.6 small hashes), with `free` unused bytes after each value. */
export function zipmap(pairs: readonly (readonly [Element, Element])[], free = 0): Buffer {
  const len = (n: number) => (n < 254 ? Buffer.from([n]) : Buffer.concat([Buffer.from([254]), u32le(n)]));
  const parts: Buffer[] = [Buffer.from([Math.min(pairs.length, 254)])];
  for (const [f, v] of pairs) {
    const fb = bytesOf(f);
    const vb = bytesOf(v);
    parts.push(len(fb.length), fb, len(vb.length), Buffer.from([free]), vb, Buffer.alloc(free, 0));
  }
  parts.push(Buffer.from([0xff]));
  return Buffer.concat(parts);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/**
 * An LZF compressor (greedy, 3-byte hash matches, distances up to 8 KiB, lengths up to 264),
 * producing the token stream Redis' lzf_c.c produces. Returns undefined when compression does
 * not shrink the input, as Redis then stores the string raw.
 */
export function lzfCompress(input: Buffer): Buffer | undefined {
  const out: number[] = [];
  const table = new Map<number, number>();
  let literals: number[] = [];
  const flush = () => {
    for (let i = 0; i < literals.length; i += 32) {
      const run = literals.slice(i, i + 32);
      out.push(run.length - 1, ...run);
    }
    literals = [];
  };
  let ip = 0;
  while (ip < input.length) {
    if (ip + 2 < input.length) {
      const h = ((input[ip] as number) << 16) | ((input[ip + 1] as number) << 8) | (input[ip + 2] as number);
      const ref = table.get(h);
      table.set(h, ip);
      if (ref !== undefined && ip - ref - 1 < 8192) {
        let len = 0;
        while (len < 264 && ip + len < input.length && input[ref + len] === input[ip + len]) len++;
        if (len >= 3) {
          flush();
          const off = ip - ref - 1;
          const l = len - 2;
          if (l < 7) out.push((l << 5) | (off >> 8), off & 0xff);
          else out.push((7 << 5) | (off >> 8), l - 7, off & 0xff);
          ip += len;
          continue;
        }
      }
    }
    literals.push(input[ip] as number);
    ip++;
  }
  flush();
  return out.length < input.length ? Buffer.from(out) : undefined;
}
