// An RDB writer for tests, built byte by byte from the format (Redis src/rdb.c, rdb.h; Valkey
// src/rdb.c for VALKEY080). It makes the files no available server writes: RDB versions below
// 10, zipmaps, ziplists, linked lists, text scores, the 7.4 release-candidate hashes, module
// values, module aux data, key metadata, Valkey slot imports, and broken files.

import { crc64 } from '../src/crc64.ts';
import { type Element, intset, listpack, lzfCompress, ziplist, zipmap } from './encoders.ts';

const MODULE_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const KEY_META_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

export type ModuleValueItem =
  | { kind: 'sint' | 'uint'; value: bigint }
  | { kind: 'float' | 'double'; value: number }
  | { kind: 'string'; value: Buffer };

export interface StreamEntrySpec {
  ms: number;
  seq: number;
  fields: [string, string][];
  deleted?: boolean;
}

export interface StreamSpec {
  /** Entries per listpack node. */
  nodes: StreamEntrySpec[][];
  length: number;
  lastId: [number, number];
  firstId?: [number, number];
  maxDeletedId?: [number, number];
  entriesAdded?: number;
  groups?: {
    name: string;
    lastId: [number, number];
    entriesRead?: number | bigint;
    pending: { ms: number; seq: number; deliveryTime: number; deliveryCount: number }[];
    consumers: { name: string; seenTime: number; activeTime?: number; pending: [number, number][] }[];
  }[];
  idmp?: {
    duration: number;
    maxEntries: number;
    producers: { pid: string; entries: { iid: string; id: [number, number] }[] }[];
    iidsAdded: number;
    iidsDuplicates: number;
  };
}

export function moduleId(name: string, version: number): bigint {
  let id = 0n;
  for (const ch of name) id = (id << 6n) | BigInt(MODULE_CHARSET.indexOf(ch));
  return (id << 10n) | BigInt(version);
}

export function keyMetaSpec(name: string, version: number, flags: number): number {
  let n = 0;
  for (const ch of name) n = (n << 6) | KEY_META_CHARSET.indexOf(ch);
  return (((n << 5) | version) << 3) | flags;
}

export class RdbWriter {
  readonly #parts: Buffer[] = [];
  readonly #lengths: [at: number, size: number][] = [];
  #size = 0;
  readonly version: number;

  constructor(version: number, magic: 'REDIS' | 'VALKEY' = 'REDIS') {
    this.version = version;
    this.raw(
      Buffer.from(
        magic === 'REDIS' ? `REDIS${String(version).padStart(4, '0')}` : `VALKEY${String(version).padStart(3, '0')}`,
      ),
    );
  }

  raw(...bytes: (Buffer | number)[]): this {
    for (const b of bytes) {
      const part = typeof b === 'number' ? Buffer.from([b]) : b;
      this.#parts.push(part);
      this.#size += part.length;
    }
    return this;
  }

  /** Where each RDB length was written, and its encoded size (the fuzzer inflates them). */
  get lengths(): readonly (readonly [at: number, size: number])[] {
    return this.#lengths;
  }

  len(n: number | bigint): this {
    const v = BigInt(n);
    this.#lengths.push([this.#size, v < 64n ? 1 : v < 16384n ? 2 : v <= 0xffffffffn ? 5 : 9]);
    if (v < 64n) return this.raw(Number(v));
    if (v < 16384n) return this.raw(0x40 | Number(v >> 8n), Number(v & 0xffn));
    if (v <= 0xffffffffn) {
      const b = Buffer.alloc(5);
      b[0] = 0x80;
      b.writeUInt32BE(Number(v), 1);
      return this.raw(b);
    }
    const b = Buffer.alloc(9);
    b[0] = 0x81;
    b.writeBigUInt64BE(v, 1);
    return this.raw(b);
  }

  /** A string: `raw` bytes, an integer encoding (`int`, when the text is a small integer), or `lzf`. */
  string(s: Element, encoding: 'raw' | 'int' | 'lzf' = 'raw'): this {
    const bytes = Buffer.isBuffer(s) ? s : Buffer.from(String(s), 'latin1');
    if (encoding === 'int') {
      const v = Number(bytes.toString());
      if (v >= -128 && v <= 127) return this.raw(0xc0, Buffer.from([v & 0xff]));
      if (v >= -32768 && v <= 32767) {
        const b = Buffer.alloc(2);
        b.writeInt16LE(v);
        return this.raw(0xc1, b);
      }
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      return this.raw(0xc2, b);
    }
    if (encoding === 'lzf') {
      const c = lzfCompress(bytes);
      if (!c) throw new Error('test data does not compress');
      return this.raw(0xc3).len(c.length).len(bytes.length).raw(c);
    }
    return this.len(bytes.length).raw(bytes);
  }

  millis(ms: number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(ms));
    return this.raw(b);
  }

  aux(name: string, value: Element): this {
    return this.raw(250).string(name).string(value);
  }
  selectDb(db: number): this {
    return this.raw(254).len(db);
  }
  resizeDb(size: number, expires: number): this {
    return this.raw(251).len(size).len(expires);
  }
  slotInfo(slot: number, size: number, expires: number): this {
    return this.raw(244).len(slot).len(size).len(expires);
  }
  expireMs(ms: number): this {
    return this.raw(252).millis(ms);
  }
  expireSeconds(s: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(s);
    return this.raw(253, b);
  }
  idle(seconds: number): this {
    return this.raw(248).len(seconds);
  }
  freq(f: number): this {
    return this.raw(249, f);
  }
  function2(code: string): this {
    return this.raw(245).string(code);
  }
  /** A function library as Redis 7.0-rc1 and rc2 saved it (opcode 246): name, engine, optional description, code. */
  functionPreGa(name: string, engine: string, description: string | undefined, code: string): this {
    this.raw(246).string(name).string(engine);
    return (description === undefined ? this.len(0) : this.len(1).string(description)).string(code);
  }
  moduleItems(items: readonly ModuleValueItem[]): this {
    for (const item of items) {
      switch (item.kind) {
        case 'sint':
          this.len(1).len(BigInt.asUintN(64, item.value));
          break;
        case 'uint':
          this.len(2).len(item.value);
          break;
        case 'float': {
          const b = Buffer.alloc(4);
          b.writeFloatLE(item.value);
          this.len(3).raw(b);
          break;
        }
        case 'double': {
          const b = Buffer.alloc(8);
          b.writeDoubleLE(item.value);
          this.len(4).raw(b);
          break;
        }
        case 'string':
          this.len(5).string(item.value);
      }
    }
    return this.len(0);
  }
  moduleAux(name: string, version: number, when: number, items: readonly ModuleValueItem[]): this {
    return this.raw(247).len(moduleId(name, version)).len(2).len(when).moduleItems(items);
  }
  keyMeta(classes: { name: string; version: number; flags: number; items: ModuleValueItem[] }[]): this {
    this.raw(243).len(classes.length);
    for (const c of classes) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(keyMetaSpec(c.name, c.version, c.flags) >>> 0);
      this.raw(b).moduleItems(c.items);
    }
    return this;
  }
  slotImport(job: string, ranges: [number, number][]): this {
    this.raw(243).string(job).len(ranges.length);
    for (const [a, b] of ranges) this.len(a).len(b);
    return this;
  }

  key(type: number, key: Element): this {
    return this.raw(type).string(key);
  }

  // Values, each preceded by its type byte and key.
  stringValue(key: Element, value: Element, encoding: 'raw' | 'int' | 'lzf' = 'raw'): this {
    return this.key(0, key).string(value, encoding);
  }
  linkedList(key: Element, elements: readonly Element[]): this {
    this.key(1, key).len(elements.length);
    for (const e of elements) this.string(e);
    return this;
  }
  hashSet(key: Element, members: readonly Element[]): this {
    this.key(2, key).len(members.length);
    for (const m of members) this.string(m);
    return this;
  }
  zsetText(key: Element, members: readonly [Element, number][]): this {
    this.key(3, key).len(members.length);
    for (const [m, score] of members) {
      this.string(m);
      if (Number.isNaN(score)) this.raw(253);
      else if (score === Number.POSITIVE_INFINITY) this.raw(254);
      else if (score === Number.NEGATIVE_INFINITY) this.raw(255);
      else {
        const t = Buffer.from(String(score));
        this.raw(t.length, t);
      }
    }
    return this;
  }
  zsetBinary(key: Element, members: readonly [Element, number][]): this {
    this.key(5, key).len(members.length);
    for (const [m, score] of members) {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(score);
      this.string(m).raw(b);
    }
    return this;
  }
  hashTable(key: Element, fields: readonly [Element, Element][]): this {
    this.key(4, key).len(fields.length);
    for (const [f, v] of fields) this.string(f).string(v);
    return this;
  }
  hashZipmap(key: Element, fields: readonly [Element, Element][], free = 0): this {
    return this.key(9, key).string(zipmap(fields, free));
  }
  listZiplist(key: Element, elements: readonly Element[]): this {
    return this.key(10, key).string(ziplist(elements));
  }
  setIntset(key: Element, values: readonly (number | bigint)[]): this {
    return this.key(11, key).string(intset(values));
  }
  zsetZiplist(key: Element, members: readonly [Element, Element][]): this {
    return this.key(12, key).string(ziplist(members.flat()));
  }
  hashZiplist(key: Element, fields: readonly [Element, Element][]): this {
    return this.key(13, key).string(ziplist(fields.flat()));
  }
  quicklist(key: Element, nodes: readonly Element[][], compress = false): this {
    this.key(14, key).len(nodes.length);
    for (const n of nodes) this.string(ziplist(n), compress && lzfCompress(ziplist(n)) ? 'lzf' : 'raw');
    return this;
  }
  hashListpack(key: Element, fields: readonly [Element, Element][]): this {
    return this.key(16, key).string(listpack(fields.flat()));
  }
  zsetListpack(key: Element, members: readonly [Element, Element][]): this {
    return this.key(17, key).string(listpack(members.flat()));
  }
  quicklist2(key: Element, nodes: readonly ({ plain: Element } | Element[])[], compress = false): this {
    this.key(18, key).len(nodes.length);
    for (const n of nodes) {
      if (Array.isArray(n)) this.len(2).string(listpack(n), compress && lzfCompress(listpack(n)) ? 'lzf' : 'raw');
      else this.len(1).string(n.plain);
    }
    return this;
  }
  setListpack(key: Element, members: readonly Element[]): this {
    return this.key(20, key).string(listpack(members));
  }
  /** Redis 7.4 GA (24): min expiry, then ttl relative to it (0 none) + field + value. */
  hashMetadata(key: Element, fields: readonly [Element, Element, number | undefined][]): this {
    const ttls = fields.map((f) => f[2]).filter((t): t is number => t !== undefined);
    const min = ttls.length ? Math.min(...ttls) : 0xffffffffffff + 1;
    this.key(24, key).millis(min).len(fields.length);
    for (const [f, v, t] of fields)
      this.len(t === undefined ? 0 : t - min + 1)
        .string(f)
        .string(v);
    return this;
  }
  /** Redis 7.4 RC (22): absolute ttl (0 none) + field + value. */
  hashMetadataPreGa(key: Element, fields: readonly [Element, Element, number | undefined][]): this {
    this.key(22, key).len(fields.length);
    for (const [f, v, t] of fields)
      this.len(t ?? 0)
        .string(f)
        .string(v);
    return this;
  }
  /** 25 (with a min expiry first) or 23 (RC): listpack of field, value, ttl (0 none). */
  hashListpackEx(key: Element, fields: readonly [Element, Element, number | undefined][], preGa = false): this {
    const ttls = fields.map((f) => f[2]).filter((t): t is number => t !== undefined);
    this.key(preGa ? 23 : 25, key);
    if (!preGa) this.millis(ttls.length ? Math.min(...ttls) : 0xffffffffffff + 1);
    return this.string(listpack(fields.flatMap(([f, v, t]) => [f, v, t ?? 0])));
  }
  /** Valkey 9 (22 under VALKEY080): field + value + 8-byte expiry (-1 none). */
  valkeyHash2(key: Element, fields: readonly [Element, Element, number | undefined][]): this {
    this.key(22, key).len(fields.length);
    for (const [f, v, t] of fields)
      this.string(f)
        .string(v)
        .millis(t ?? -1);
    return this;
  }
  module2(key: Element, name: string, version: number, items: readonly ModuleValueItem[]): this {
    return this.key(7, key).len(moduleId(name, version)).moduleItems(items);
  }

  stream(key: Element, type: 15 | 19 | 21 | 26, spec: StreamSpec): this {
    this.key(type, key).len(spec.nodes.length);
    for (const node of spec.nodes) {
      const first = node[0];
      if (!first) throw new Error('empty stream node');
      const master = Buffer.alloc(16);
      master.writeBigUInt64BE(BigInt(first.ms), 0);
      master.writeBigUInt64BE(BigInt(first.seq), 8);
      const masterFields = first.fields.map(([f]) => f);
      const elements: Element[] = [
        node.filter((e) => !e.deleted).length,
        node.filter((e) => e.deleted).length,
        masterFields.length,
        ...masterFields,
        0,
      ];
      for (const e of node) {
        const same = e.fields.length === masterFields.length && e.fields.every(([f], i) => f === masterFields[i]);
        const flags = (e.deleted ? 1 : 0) | (same ? 2 : 0);
        elements.push(flags, e.ms - first.ms, e.seq - first.seq);
        if (same) elements.push(...e.fields.map(([, v]) => v));
        else elements.push(e.fields.length, ...e.fields.flat());
        elements.push(e.fields.length + 3 + (same ? 0 : e.fields.length + 1));
      }
      this.string(master).string(listpack(elements));
    }
    this.len(spec.length).len(spec.lastId[0]).len(spec.lastId[1]);
    if (type !== 15) {
      const f = spec.firstId ?? [0, 0];
      const d = spec.maxDeletedId ?? [0, 0];
      this.len(f[0])
        .len(f[1])
        .len(d[0])
        .len(d[1])
        .len(spec.entriesAdded ?? spec.length);
    }
    const groups = spec.groups ?? [];
    this.len(groups.length);
    for (const g of groups) {
      this.string(g.name).len(g.lastId[0]).len(g.lastId[1]);
      if (type !== 15) this.len(BigInt.asUintN(64, BigInt(g.entriesRead ?? 0)));
      this.len(g.pending.length);
      for (const p of g.pending) {
        const id = Buffer.alloc(16);
        id.writeBigUInt64BE(BigInt(p.ms), 0);
        id.writeBigUInt64BE(BigInt(p.seq), 8);
        this.raw(id).millis(p.deliveryTime).len(p.deliveryCount);
      }
      this.len(g.consumers.length);
      for (const c of g.consumers) {
        this.string(c.name).millis(c.seenTime);
        if (type === 21 || type === 26) this.millis(c.activeTime ?? c.seenTime);
        this.len(c.pending.length);
        for (const [ms, seq] of c.pending) {
          const id = Buffer.alloc(16);
          id.writeBigUInt64BE(BigInt(ms), 0);
          id.writeBigUInt64BE(BigInt(seq), 8);
          this.raw(id);
        }
      }
    }
    if (type === 26) {
      const idmp = spec.idmp ?? { duration: 100, maxEntries: 100, producers: [], iidsAdded: 0, iidsDuplicates: 0 };
      this.len(idmp.duration).len(idmp.maxEntries).len(idmp.producers.length);
      for (const p of idmp.producers) {
        this.string(p.pid).len(p.entries.length);
        for (const e of p.entries) this.string(e.iid).len(e.id[0]).len(e.id[1]);
      }
      this.len(idmp.iidsAdded).len(idmp.iidsDuplicates);
    }
    return this;
  }

  /** Ends the file: EOF opcode, then (RDB 5+) the CRC64 of everything before it, or zeros. */
  end(checksum: 'crc' | 'zero' | 'none' = 'crc'): Buffer {
    this.raw(255);
    const body = Buffer.concat(this.#parts);
    if (this.version < 5 || checksum === 'none') return body;
    const trailer = Buffer.alloc(8);
    if (checksum === 'crc') trailer.writeBigUInt64LE(crc64(body));
    return Buffer.concat([body, trailer]);
  }

  /** The bytes so far, without an end (for truncated files). */
  bytes(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
