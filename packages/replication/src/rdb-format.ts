// The numbers of the RDB format (Redis src/rdb.h, Valkey src/rdb.h). Redis and Valkey agree up to
// type 21 and opcode 244; above that the same numbers mean different things, so the magic decides.

/**
 * Value type bytes, as `rdbType` carries them on entries.
 *
 * @example
 * ```ts
 * if (event.kind === 'entry' && event.rdbType === RDB_TYPE.HASH_LISTPACK_EX) console.log('small hash with field TTLs');
 * ```
 */
export const RDB_TYPE = {
  STRING: 0,
  LIST: 1,
  SET: 2,
  ZSET: 3,
  HASH: 4,
  ZSET_2: 5,
  MODULE_PRE_GA: 6,
  MODULE_2: 7,
  HASH_ZIPMAP: 9,
  LIST_ZIPLIST: 10,
  SET_INTSET: 11,
  ZSET_ZIPLIST: 12,
  HASH_ZIPLIST: 13,
  LIST_QUICKLIST: 14,
  STREAM_LISTPACKS: 15,
  HASH_LISTPACK: 16,
  ZSET_LISTPACK: 17,
  LIST_QUICKLIST_2: 18,
  STREAM_LISTPACKS_2: 19,
  SET_LISTPACK: 20,
  STREAM_LISTPACKS_3: 21,
  /** Redis 7.4 release candidates: hash with field expiry, absolute TTLs. Valkey 9: {@link RDB_TYPE.VALKEY_HASH_2}. */
  HASH_METADATA_PRE_GA: 22,
  /** Redis 7.4 release candidates: listpack hash with field expiry. */
  HASH_LISTPACK_EX_PRE_GA: 23,
  /** Redis 7.4+: hash with field expiry, TTLs relative to a minimum. */
  HASH_METADATA: 24,
  /** Redis 7.4+: listpack hash with field expiry. */
  HASH_LISTPACK_EX: 25,
  /** Redis 8.6 (RDB 13): stream with idempotent-producer (IDMP) state. */
  STREAM_LISTPACKS_4: 26,
  /** Valkey 9 (RDB 80): hash whose fields carry an expiry (-1 = none). */
  VALKEY_HASH_2: 22,
} as const;

/**
 * Opcode bytes, which share the type byte's position (errors carry them as `rdbType`).
 *
 * @example
 * ```ts
 * if (err instanceof RdbError && err.rdbType === RDB_OPCODE.FUNCTION_PRE_GA) console.error('re-save with Redis 7.0 GA');
 * ```
 */
export const RDB_OPCODE = {
  /** Redis 8.6 (RDB 13): per-key metadata before the type byte. Valkey 9: {@link RDB_OPCODE.VALKEY_SLOT_IMPORT}. */
  KEY_META: 243,
  /** Valkey 9: an atomic slot migration in progress. */
  VALKEY_SLOT_IMPORT: 243,
  SLOT_INFO: 244,
  FUNCTION2: 245,
  FUNCTION_PRE_GA: 246,
  MODULE_AUX: 247,
  IDLE: 248,
  FREQ: 249,
  AUX: 250,
  RESIZEDB: 251,
  EXPIRETIME_MS: 252,
  EXPIRETIME: 253,
  SELECTDB: 254,
  EOF: 255,
} as const;

/**
 * Sub-opcodes of module-serialized values (module types, module aux data, key metadata); a
 * `ModuleItem`'s `kind` names them.
 *
 * @example
 * ```ts
 * MODULE_OPCODE.STRING; // 5
 * ```
 */
export const MODULE_OPCODE = { EOF: 0, SINT: 1, UINT: 2, FLOAT: 3, DOUBLE: 4, STRING: 5 } as const;

/**
 * The highest `REDISnnnn` version this parser reads (Redis 8.6 writes 13).
 *
 * @example
 * ```ts
 * if (version > MAX_REDIS_RDB_VERSION) console.error('upgrade @redis-events/replication');
 * ```
 */
export const MAX_REDIS_RDB_VERSION = 13;
/**
 * The `VALKEYnnn` versions this parser reads (Valkey 9.0 and 9.1 write 80).
 *
 * @example
 * ```ts
 * VALKEY_RDB_VERSIONS.includes(80); // true
 * ```
 */
export const VALKEY_RDB_VERSIONS: readonly number[] = [80];

/**
 * The name of a type byte as Redis or Valkey spells it (entries carry it as `rdbTypeName`). Type
 * 22 is a Redis 7.4 release-candidate hash, or Valkey 9's `RDB_TYPE_HASH_2`.
 *
 * @example
 * ```ts
 * rdbTypeName(18, false); // 'RDB_TYPE_LIST_QUICKLIST_2'
 * rdbTypeName(22, true); // 'RDB_TYPE_HASH_2'
 * ```
 */
export function rdbTypeName(type: number, valkey: boolean): string {
  if (valkey && type === 22) return 'RDB_TYPE_HASH_2';
  return TYPE_NAMES[type] ?? `unknown type ${type}`;
}

const TYPE_NAMES: Record<number, string> = {
  0: 'RDB_TYPE_STRING',
  1: 'RDB_TYPE_LIST',
  2: 'RDB_TYPE_SET',
  3: 'RDB_TYPE_ZSET',
  4: 'RDB_TYPE_HASH',
  5: 'RDB_TYPE_ZSET_2',
  6: 'RDB_TYPE_MODULE_PRE_GA',
  7: 'RDB_TYPE_MODULE_2',
  9: 'RDB_TYPE_HASH_ZIPMAP',
  10: 'RDB_TYPE_LIST_ZIPLIST',
  11: 'RDB_TYPE_SET_INTSET',
  12: 'RDB_TYPE_ZSET_ZIPLIST',
  13: 'RDB_TYPE_HASH_ZIPLIST',
  14: 'RDB_TYPE_LIST_QUICKLIST',
  15: 'RDB_TYPE_STREAM_LISTPACKS',
  16: 'RDB_TYPE_HASH_LISTPACK',
  17: 'RDB_TYPE_ZSET_LISTPACK',
  18: 'RDB_TYPE_LIST_QUICKLIST_2',
  19: 'RDB_TYPE_STREAM_LISTPACKS_2',
  20: 'RDB_TYPE_SET_LISTPACK',
  21: 'RDB_TYPE_STREAM_LISTPACKS_3',
  22: 'RDB_TYPE_HASH_METADATA_PRE_GA',
  23: 'RDB_TYPE_HASH_LISTPACK_EX_PRE_GA',
  24: 'RDB_TYPE_HASH_METADATA',
  25: 'RDB_TYPE_HASH_LISTPACK_EX',
  26: 'RDB_TYPE_STREAM_LISTPACKS_4',
};

const MODULE_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const KEY_META_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

/**
 * Decodes a 64-bit module type id: a 9-character name (6 bits each) and a 10-bit encoding version.
 *
 * @example
 * ```ts
 * const { name, version } = moduleTypeFromId(event.module.id); // 'ReJSON-RL', 3
 * ```
 */
export function moduleTypeFromId(id: bigint): { readonly name: string; readonly version: number } {
  let rest = id >> 10n;
  let name = '';
  for (let i = 0; i < 9; i++) {
    name = MODULE_CHARSET.charAt(Number(rest & 63n)) + name;
    rest >>= 6n;
  }
  return { name, version: Number(id & 1023n) };
}

/** Decodes a Redis 8.6 key-metadata class spec: 4-character name (24 bits), version (5), flags (3). */
export function keyMetaClassFromSpec(spec: number): {
  readonly name: string;
  readonly version: number;
  readonly flags: number;
} {
  const flags = spec & 7;
  const version = (spec >>> 3) & 31;
  let rest = spec >>> 8;
  let name = '';
  for (let i = 0; i < 4; i++) {
    name = KEY_META_CHARSET.charAt(rest & 63) + name;
    rest >>>= 6;
  }
  return { name, version, flags };
}
