// DUMP payloads built from parsed entries, for RESTORE on a target. The payload uses the plain,
// oldest encodings of each type (a string, a list of strings, a set, a hash table, ZSET_2 with
// binary doubles, MODULE_2), which every server since Redis 4.0 reads whatever its own RDB
// version, and which the target re-encodes to its compact forms on load. So a snapshot from a
// Redis 8.6 or Valkey 9 source restores into a Redis 7.0 target: the payload's footer claims
// RDB 9, the version of the types it uses, not the source's.

import { Crc64 } from '../crc64.ts';
import type { ModuleItem, RdbEntryEvent } from '../rdb-events.ts';

/** The RDB version of the footer: the types used here all exist in RDB 9 (Redis 5.0). */
export const PORTABLE_DUMP_VERSION = 9;

const T_STRING = 0;
const T_LIST = 1;
const T_SET = 2;
const T_HASH = 4;
const T_ZSET_2 = 5;
const T_MODULE_2 = 7;

const M_EOF = 0;
const M_SINT = 1;
const M_UINT = 2;
const M_FLOAT = 3;
const M_DOUBLE = 4;
const M_STRING = 5;

function lenSize(n: number): number {
  return n < 64 ? 1 : n < 16384 ? 2 : n <= 0xffffffff ? 5 : 9;
}

function bigLenSize(n: bigint): number {
  return n < 64n ? 1 : n < 16384n ? 2 : n <= 0xffffffffn ? 5 : 9;
}

/** Writes RDB primitives into one preallocated buffer. */
class Out {
  readonly buf: Buffer;
  at = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  byte(b: number): void {
    this.buf[this.at++] = b;
  }
  len(n: number): void {
    const buf = this.buf;
    if (n < 64) buf[this.at++] = n;
    else if (n < 16384) {
      buf[this.at++] = 0x40 | (n >>> 8);
      buf[this.at++] = n & 0xff;
    } else if (n <= 0xffffffff) {
      buf[this.at++] = 0x80;
      buf.writeUInt32BE(n, this.at);
      this.at += 4;
    } else {
      buf[this.at++] = 0x81;
      buf.writeBigUInt64BE(BigInt(n), this.at);
      this.at += 8;
    }
  }
  bigLen(n: bigint): void {
    if (n < 16384n || n <= 0xffffffffn) this.len(Number(n));
    else {
      this.buf[this.at++] = 0x81;
      this.buf.writeBigUInt64BE(n, this.at);
      this.at += 8;
    }
  }
  string(s: Buffer): void {
    this.len(s.length);
    this.at += s.copy(this.buf, this.at);
  }
  double(d: number): void {
    this.buf.writeDoubleLE(d, this.at);
    this.at += 8;
  }
  float(f: number): void {
    this.buf.writeFloatLE(f, this.at);
    this.at += 4;
  }
  /** The footer: RDB version (2 bytes LE) and the CRC64 of everything before the CRC. */
  footer(version: number): Buffer {
    this.buf.writeUInt16LE(version, this.at);
    this.at += 2;
    const crc = new Crc64();
    crc.update(this.buf, 0, this.at);
    crc.writeLE(this.buf, this.at);
    this.at += 8;
    return this.buf;
  }
}

function moduleItemSize(item: ModuleItem): number {
  switch (item.kind) {
    case 'sint':
      return 1 + bigLenSize(BigInt.asUintN(64, item.value));
    case 'uint':
      return 1 + bigLenSize(item.value);
    case 'float':
      return 1 + 4;
    case 'double':
      return 1 + 8;
    case 'string':
      return 1 + lenSize(item.value.length) + item.value.length;
  }
}

/**
 * Whether {@link encodeDumpPayload} can encode this entry (part): everything but streams, which
 * have no plain encoding, and module values without their type.
 */
export function canEncodeDump(entry: RdbEntryEvent): boolean {
  return entry.type !== 'stream';
}

/**
 * Encodes an entry (or the first part of a large one) as a DUMP payload that RESTORE accepts on
 * any Redis since 5.0 and any Valkey: plain encodings, RDB 9 footer, CRC64. Hash field expiries
 * are not part of it (a plain hash has none): send them separately. Streams have no plain
 * encoding: {@link canEncodeDump} is false for them.
 *
 * @example
 * ```ts
 * const payload = encodeDumpPayload(entry);
 * await connection.send(['RESTORE', entry.key, 0, payload, 'REPLACE']);
 * ```
 */
export function encodeDumpPayload(entry: RdbEntryEvent): Buffer {
  let out: Out;
  switch (entry.type) {
    case 'string': {
      const v = entry.value;
      out = new Out(1 + lenSize(v.length) + v.length + 10);
      out.byte(T_STRING);
      out.string(v);
      break;
    }
    case 'list':
    case 'set': {
      const items = entry.value;
      let size = 1 + lenSize(items.length) + 10;
      for (const item of items) size += lenSize(item.length) + item.length;
      out = new Out(size);
      out.byte(entry.type === 'list' ? T_LIST : T_SET);
      out.len(items.length);
      for (const item of items) out.string(item);
      break;
    }
    case 'hash': {
      const fields = entry.value;
      let size = 1 + lenSize(fields.length) + 10;
      for (const f of fields)
        size += lenSize(f.field.length) + f.field.length + lenSize(f.value.length) + f.value.length;
      out = new Out(size);
      out.byte(T_HASH);
      out.len(fields.length);
      for (const f of fields) {
        out.string(f.field);
        out.string(f.value);
      }
      break;
    }
    case 'zset': {
      const members = entry.value;
      let size = 1 + lenSize(members.length) + 10;
      for (const m of members) size += lenSize(m.member.length) + m.member.length + 8;
      out = new Out(size);
      out.byte(T_ZSET_2);
      out.len(members.length);
      for (const m of members) {
        out.string(m.member);
        out.double(m.score);
      }
      break;
    }
    case 'module': {
      let size = 1 + bigLenSize(entry.module.id) + 1 + 10;
      for (const item of entry.value) size += moduleItemSize(item);
      out = new Out(size);
      out.byte(T_MODULE_2);
      out.bigLen(entry.module.id);
      for (const item of entry.value) {
        switch (item.kind) {
          case 'sint':
            out.len(M_SINT);
            out.bigLen(BigInt.asUintN(64, item.value));
            break;
          case 'uint':
            out.len(M_UINT);
            out.bigLen(item.value);
            break;
          case 'float':
            out.len(M_FLOAT);
            out.float(item.value);
            break;
          case 'double':
            out.len(M_DOUBLE);
            out.double(item.value);
            break;
          case 'string':
            out.len(M_STRING);
            out.string(item.value);
            break;
        }
      }
      out.len(M_EOF);
      break;
    }
    case 'stream':
      throw new TypeError('streams have no plain DUMP encoding; write them as commands');
  }
  return out.footer(PORTABLE_DUMP_VERSION);
}

/**
 * A DUMP payload of a value in the encoding it was stored with (an entry's `encoded` bytes: a
 * listpack, ziplist, intset or zipmap), for a target that reads that encoding: no decoding, and
 * the target loads it as is.
 *
 * @example
 * ```ts
 * if (entry.encoded) await connection.send(['RESTORE', entry.key, 0, encodeStoredPayload(entry.rdbType, entry.encoded)]);
 * ```
 */
export function encodeStoredPayload(rdbType: number, stored: Buffer): Buffer {
  const out = new Out(1 + lenSize(stored.length) + stored.length + 10);
  out.byte(rdbType);
  out.string(stored);
  return out.footer(PORTABLE_DUMP_VERSION);
}

/**
 * The compact encodings a target can load from a RESTORE payload as stored: the legacy ones
 * (zipmap, ziplists, intset) on every version, listpacks from Redis 7.0, set listpacks from Redis
 * 7.2 (and every Valkey).
 */
export function storedEncodingsFor(server: {
  readonly flavor: 'redis' | 'valkey';
  readonly major: number;
  readonly minor: number;
}): number[] {
  const types = [9, 10, 11, 12, 13];
  if (server.flavor === 'valkey' || server.major >= 7) types.push(16, 17);
  if (server.flavor === 'valkey' || server.major > 7 || (server.major === 7 && server.minor >= 2)) types.push(20);
  return types;
}
