// Writes a large RDB straight to disk, in 1 MiB pieces, so that even a 1 GiB file with a
// 200 MB key never sits in the test's memory: one big hash (hash-table encoding, ~100-byte
// fields), one big list (listpack nodes, as Redis 7+ writes them), one big string, then small
// keys of mixed types until the file reaches its size.
import { closeSync, openSync, writeSync } from 'node:fs';
import { Crc64 } from '../src/crc64.ts';
import { listpack } from './encoders.ts';

export interface LargeRdbSpec {
  readonly path: string;
  readonly totalBytes: number;
  /** Size of the big hash; the big list gets half of it, the big string a quarter. */
  readonly bigKeyBytes: number;
  /** RDB version: 11 (default) writes small sets as listpacks, 10 (what Redis 7.0 loads) as hash tables. */
  readonly version?: 10 | 11;
}

export interface LargeRdbInfo {
  readonly bytes: number;
  readonly keys: number;
  readonly bigHashFields: number;
}

class FileSink {
  readonly #fd: number;
  readonly #buf = Buffer.allocUnsafe(1 << 20);
  #pos = 0;
  readonly crc = new Crc64();
  written = 0;

  constructor(path: string) {
    this.#fd = openSync(path, 'w');
  }

  #flush(): void {
    this.crc.update(this.#buf, 0, this.#pos);
    writeSync(this.#fd, this.#buf, 0, this.#pos);
    this.#pos = 0;
  }

  bytes(b: Buffer): void {
    if (b.length > this.#buf.length) {
      this.#flush();
      this.crc.update(b);
      writeSync(this.#fd, b);
      this.written += b.length;
      return;
    }
    if (this.#pos + b.length > this.#buf.length) this.#flush();
    b.copy(this.#buf, this.#pos);
    this.#pos += b.length;
    this.written += b.length;
  }

  byte(n: number): void {
    if (this.#pos + 1 > this.#buf.length) this.#flush();
    this.#buf[this.#pos++] = n;
    this.written++;
  }

  len(n: number): void {
    if (n < 64) this.byte(n);
    else if (n < 16384) {
      this.byte(0x40 | (n >> 8));
      this.byte(n & 0xff);
    } else {
      const b = Buffer.alloc(5);
      b[0] = 0x80;
      b.writeUInt32BE(n, 1);
      this.bytes(b);
    }
  }

  string(s: Buffer | string): void {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    this.len(b.length);
    this.bytes(b);
  }

  close(): void {
    this.#flush();
    const trailer = Buffer.alloc(8);
    trailer.writeBigUInt64LE(this.crc.digest());
    writeSync(this.#fd, trailer);
    this.written += 8;
    closeSync(this.#fd);
  }
}

export function writeLargeRdb(spec: LargeRdbSpec): LargeRdbInfo {
  const out = new FileSink(spec.path);
  const version = spec.version ?? 11;
  out.bytes(Buffer.from(`REDIS00${version}`));
  out.byte(250);
  out.string('redis-ver');
  out.string('7.2.6');
  out.byte(254);
  out.len(0);
  let keys = 0;

  // The big hash: fields of ~100 bytes in total.
  const value = 'v'.repeat(80);
  const fields = Math.floor(spec.bigKeyBytes / 100);
  out.byte(4);
  out.string('big:hash');
  out.len(fields);
  for (let i = 0; i < fields; i++) {
    out.string(`field:${String(i).padStart(12, '0')}`);
    out.string(value);
  }
  keys++;

  // The big list: quicklist 2 of 8 KiB-ish listpack nodes.
  const node = listpack(Array.from({ length: 100 }, (_, i) => `element-${i}-${'e'.repeat(60)}`));
  const nodes = Math.max(1, Math.floor(spec.bigKeyBytes / 2 / node.length));
  out.byte(18);
  out.string('big:list');
  out.len(nodes);
  for (let i = 0; i < nodes; i++) {
    out.len(2);
    out.string(node);
  }
  keys++;

  // The big string, streamed by the parser in parts.
  const stringBytes = Math.floor(spec.bigKeyBytes / 4);
  out.byte(0);
  out.string('big:string');
  out.len(stringBytes);
  const piece = Buffer.alloc(1 << 20, 's');
  for (let left = stringBytes; left > 0; left -= piece.length)
    out.bytes(left >= piece.length ? piece : piece.subarray(0, left));
  keys++;

  // Small keys of mixed types up to the size.
  const small = listpack(['a', 'b', 'c', 1, 2, 3]);
  while (out.written < spec.totalBytes - 64) {
    const k = keys++;
    switch (k % 4) {
      case 0:
        out.byte(0);
        out.string(`key:${k}`);
        out.string(`value-${k}-${'x'.repeat(40)}`);
        break;
      case 1:
        out.byte(16);
        out.string(`hash:${k}`);
        out.string(small);
        break;
      case 2:
        out.byte(18);
        out.string(`list:${k}`);
        out.len(1);
        out.len(2);
        out.string(small);
        break;
      default:
        if (version >= 11) {
          out.byte(20);
          out.string(`set:${k}`);
          out.string(small);
        } else {
          out.byte(2);
          out.string(`set:${k}`);
          out.len(3);
          for (const member of ['a', 'b', 'c']) out.string(member);
        }
    }
  }
  out.byte(255);
  out.close();
  return { bytes: out.written, keys, bigHashFields: fields };
}
