// The events an RDB turns into. The offline parser emits them, and the live listener emits the
// same objects for the snapshot of a full sync, so code written against these types works for
// files and for replicas alike.

/** The first event: which format the bytes are in. */
export interface RdbHeaderEvent {
  readonly kind: 'header';
  /** `REDIS` (Redis, Valkey <= 8, and Valkey 9 to old replicas) or `VALKEY` (Valkey 9 `VALKEY080`). */
  readonly magic: 'REDIS' | 'VALKEY';
  /** The format version: 1 to 13 for `REDIS`, 80 for `VALKEY`. */
  readonly version: number;
  readonly offset: number;
}

/**
 * An AUX field: server facts saved with the snapshot (`redis-ver`, `valkey-ver`, `redis-bits`,
 * `ctime`, `used-mem`, `repl-id`, `repl-offset`, `repl-stream-db`, `aof-base`, `lua`...).
 * Unknown fields are delivered too, as the format asks readers to skip them, not fail.
 */
export interface RdbAuxEvent {
  readonly kind: 'aux';
  /** The field name (ASCII in every known server). */
  readonly name: string;
  /** The raw value; most are ASCII numbers or words: `value.toString()`. */
  readonly value: Buffer;
  readonly offset: number;
}

/** `SELECTDB`: the entries that follow belong to this database. */
export interface RdbSelectDbEvent {
  readonly kind: 'selectdb';
  readonly db: number;
  readonly offset: number;
}

/** `RESIZEDB`: how many keys (and keys with an expiry) the current database holds. */
export interface RdbResizeDbEvent {
  readonly kind: 'resizedb';
  readonly db: number;
  readonly size: number;
  readonly expiresSize: number;
  readonly offset: number;
}

/** `SLOT_INFO` (Redis 7.4+ cluster nodes): the entries that follow are in this hash slot. */
export interface RdbSlotInfoEvent {
  readonly kind: 'slot-info';
  readonly db: number;
  readonly slot: number;
  readonly size: number;
  readonly expiresSize: number;
  readonly offset: number;
}

/**
 * One function library (Redis 7.0+, Valkey), as its source code with the `#!<engine> name=<library>`
 * line: what `FUNCTION LOAD` takes.
 */
export interface RdbFunctionEvent {
  readonly kind: 'function';
  /** The library's source, first line `#!<engine> name=<library>`. */
  readonly code: Buffer;
  /**
   * Only for libraries saved by Redis 7.0-rc1 and rc2 (opcode 246), which stored the name, engine
   * and description apart from the code: those fields as saved. `code` above is rebuilt from them
   * as Redis 7.0 GA loaded such files (`#!<engine> name=<name>`, a newline, the code; the
   * description, which later versions do not have, is dropped).
   */
  readonly preGa?: RdbFunctionPreGa | undefined;
  readonly offset: number;
}

/** A function library in the Redis 7.0 release-candidate format (opcode 246), field by field. */
export interface RdbFunctionPreGa {
  /** The library name. */
  readonly name: Buffer;
  /** The engine name, as saved (`LUA`). */
  readonly engine: Buffer;
  /** The library's description, when it had one. */
  readonly description?: Buffer | undefined;
  /** The code without a shebang line (`redis.register_function(...)` calls). */
  readonly code: Buffer;
}

/** One item of a module-serialized value, in the order the module saved them. */
export type ModuleItem =
  | { readonly kind: 'sint'; readonly value: bigint }
  | { readonly kind: 'uint'; readonly value: bigint }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'string'; readonly value: Buffer };

/** The type of a module value: its 9-character name and 10-bit encoding version. */
export interface ModuleTypeInfo {
  readonly id: bigint;
  readonly name: string;
  readonly version: number;
}

/**
 * `MODULE_AUX`: data a module saved outside the keyspace. Delivered as its serialized items, in
 * parts like a large value (`part`, `last`), since the module that could interpret it is not here.
 */
export interface RdbModuleAuxEvent {
  readonly kind: 'module-aux';
  readonly module: ModuleTypeInfo;
  /** `when`: 1 before the keyspace (`REDISMODULE_AUX_BEFORE_RDB`), 2 after it. */
  readonly when: number;
  readonly items: readonly ModuleItem[];
  readonly part: number;
  readonly last: boolean;
  readonly offset: number;
}

/** Valkey 9 `SLOT_IMPORT`: an atomic slot migration that was in progress when the snapshot was taken. */
export interface RdbSlotImportEvent {
  readonly kind: 'slot-import';
  readonly jobName: Buffer;
  readonly ranges: readonly (readonly [start: number, end: number])[];
  readonly offset: number;
}

/** The last event: the EOF opcode and the checksum trailer. */
export interface RdbEndEvent {
  readonly kind: 'end';
  /** The CRC64 stored in the file (0n when the server had `rdbchecksum no`, or RDB < 5). */
  readonly checksum: bigint;
  /** True when the stored checksum was compared with the bytes and matched. */
  readonly checksumVerified: boolean;
  /** Total RDB bytes, magic to trailer. */
  readonly size: number;
  readonly offset: number;
}

/** Redis 8.6 per-key metadata (`KEY_META`, opcode 243): one module metadata class and its saved items. */
export interface KeyMetaClass {
  readonly name: string;
  readonly version: number;
  readonly flags: number;
  readonly items: readonly ModuleItem[];
}

/** What every part of an entry carries: where the key is, and its per-key attributes. */
export interface RdbEntryBase {
  readonly kind: 'entry';
  readonly db: number;
  readonly key: Buffer;
  /** The type byte as stored. */
  readonly rdbType: number;
  /** The type byte's name as Redis or Valkey spells it (`RDB_TYPE_HASH_LISTPACK`...). */
  readonly rdbTypeName: string;
  /** Absolute expiry in Unix milliseconds, when the key has one. */
  readonly expireAt?: number | undefined;
  /** Seconds since last access (LRU policies), when saved. */
  readonly idle?: number | undefined;
  /** Logarithmic access counter (LFU policies), when saved. */
  readonly freq?: number | undefined;
  /** The hash slot from the last `SLOT_INFO` (cluster nodes, Redis 7.4+), when present. */
  readonly slot?: number | undefined;
  /** Redis 8.6 module key metadata, when present. */
  readonly meta?: readonly KeyMetaClass[] | undefined;
  /**
   * Large values come in several parts, so that a huge key never sits whole in memory: parts
   * are numbered from 0 and the last one has `last: true`. Most keys are one part.
   */
  readonly part: number;
  readonly last: boolean;
  /** Byte offset of the entry (its first opcode or type byte). */
  readonly offset: number;
}

/** A string. A large one comes in parts, each a consecutive piece of the bytes. */
export interface RdbStringEntry extends RdbEntryBase {
  readonly type: 'string';
  readonly value: Buffer;
}

/** A list: elements in order, `part` by `part`. */
export interface RdbListEntry extends RdbEntryBase {
  readonly type: 'list';
  readonly value: readonly Buffer[];
}

/** A set: members (integers from an intset as their decimal text). */
export interface RdbSetEntry extends RdbEntryBase {
  readonly type: 'set';
  readonly value: readonly Buffer[];
}

/** A member of a sorted set with its score (`Infinity`, `-Infinity` and `NaN` included). */
export interface ZSetMember {
  readonly member: Buffer;
  readonly score: number;
}

/** A sorted set, in the order stored (ascending score for compact encodings). */
export interface RdbZSetEntry extends RdbEntryBase {
  readonly type: 'zset';
  readonly value: readonly ZSetMember[];
}

/** A hash field, with its own expiry in Unix milliseconds when it has one (Redis 7.4+, Valkey 9). */
export interface HashField {
  readonly field: Buffer;
  readonly value: Buffer;
  readonly expireAt?: number | undefined;
}

/** A hash. */
export interface RdbHashEntry extends RdbEntryBase {
  readonly type: 'hash';
  readonly value: readonly HashField[];
}

/** A stream entry: its ID (`ms-seq`) and its field-value pairs in order. */
export interface StreamItem {
  readonly id: string;
  readonly fields: readonly (readonly [field: Buffer, value: Buffer])[];
}

/** A pending entry of a consumer group: delivered, not yet acknowledged. */
export interface StreamPendingEntry {
  readonly id: string;
  /** Unix milliseconds of the last delivery. */
  readonly deliveryTime: number;
  readonly deliveryCount: number;
  /** The consumer that owns it (from the consumers' lists), when one does. */
  readonly consumer?: Buffer | undefined;
}

/** A consumer of a group. */
export interface StreamConsumer {
  readonly name: Buffer;
  /** Unix milliseconds of the last interaction. */
  readonly seenTime: number;
  /** Unix milliseconds of the last successful read (Redis 7.2+ RDB 11; else equals `seenTime`). */
  readonly activeTime?: number | undefined;
  /** IDs of the pending entries this consumer owns. */
  readonly pending: readonly string[];
}

/** A consumer group. */
export interface StreamGroup {
  readonly name: Buffer;
  readonly lastDeliveredId: string;
  /** Logical read counter (RDB 10+); -1 when Redis marks it unknown. */
  readonly entriesRead?: number | undefined;
  readonly pending: readonly StreamPendingEntry[];
  readonly consumers: readonly StreamConsumer[];
}

/** Idempotent producers of a Redis 8.6 stream (`XADD ... IDMP`). */
export interface StreamIdmp {
  /** Seconds an idempotent ID is remembered. */
  readonly duration: number;
  /** Most recent IDs kept per producer. */
  readonly maxEntries: number;
  readonly producers: readonly {
    readonly pid: Buffer;
    readonly entries: readonly { readonly iid: Buffer; readonly id: string }[];
  }[];
  readonly iidsAdded: number;
  readonly iidsDuplicates: number;
}

/** The stream's bookkeeping, in its last part. */
export interface StreamMeta {
  readonly length: number;
  readonly lastId: string;
  /** RDB 10+ (type 19 and later). */
  readonly firstId?: string | undefined;
  readonly maxDeletedId?: string | undefined;
  readonly entriesAdded?: number | undefined;
  readonly groups: readonly StreamGroup[];
  /** Redis 8.6 (type 26). */
  readonly idmp?: StreamIdmp | undefined;
}

/** One part of a stream: a batch of entries, and in the last part the metadata and groups. */
export interface StreamPart {
  readonly entries: readonly StreamItem[];
  readonly meta?: StreamMeta | undefined;
}

/** A stream. */
export interface RdbStreamEntry extends RdbEntryBase {
  readonly type: 'stream';
  readonly value: StreamPart;
}

/** A module value (type 7), delivered as its serialized items: the module itself is not here. */
export interface RdbModuleEntry extends RdbEntryBase {
  readonly type: 'module';
  readonly module: ModuleTypeInfo;
  readonly value: readonly ModuleItem[];
}

/**
 * One key of the snapshot (or one part of a large one). Narrow on `type`.
 *
 * @example
 * ```ts
 * function size(entry: RdbEntryEvent): number {
 *   switch (entry.type) {
 *     case 'string':
 *       return entry.value.length;
 *     case 'stream':
 *       return entry.value.entries.length;
 *     default:
 *       return entry.value.length;
 *   }
 * }
 * ```
 */
export type RdbEntryEvent =
  | RdbStringEntry
  | RdbListEntry
  | RdbSetEntry
  | RdbZSetEntry
  | RdbHashEntry
  | RdbStreamEntry
  | RdbModuleEntry;

/**
 * Everything an RDB turns into, in file order. Narrow on `kind`.
 *
 * @example
 * ```ts
 * for await (const event of parseRdbFile('dump.rdb')) {
 *   if (event.kind === 'selectdb') console.log('db', event.db);
 *   else if (event.kind === 'entry' && event.last) console.log(event.key.toString(), event.type);
 *   else if (event.kind === 'end') console.log('checksum ok:', event.checksumVerified);
 * }
 * ```
 */
export type RdbEvent =
  | RdbHeaderEvent
  | RdbAuxEvent
  | RdbSelectDbEvent
  | RdbResizeDbEvent
  | RdbSlotInfoEvent
  | RdbFunctionEvent
  | RdbModuleAuxEvent
  | RdbSlotImportEvent
  | RdbEntryEvent
  | RdbEndEvent;
