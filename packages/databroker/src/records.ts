/**
 * Any value `JSON.stringify` writes and `JSON.parse` reads back unchanged: the data of the default
 * codec.
 *
 * @example
 * ```ts
 * const data: JsonValue = { user: 'ada', roles: ['admin'], active: true };
 * ```
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Fields every stored record has. */
interface RecordBase {
  /** The record's type, for example `session` or `type.googleapis.com/user.User`. */
  readonly type: string;
  /** The record's id, unique within its type. */
  readonly id: string;
  /** The version the backend assigned at the record's last change: unique and increasing across all types. */
  readonly version: number;
  /** When the backend wrote this change (the Redis server's clock). */
  readonly modifiedAt: Date;
}

/**
 * A live record: what `get`, `syncLatest` and the puts in `sync` return.
 *
 * @example
 * ```ts
 * const record = await broker.get('user', 'u1');
 * if (record && !record.deletedAt) console.log(record.data); // LiveRecord: data is there
 * ```
 */
export interface LiveRecord<T> extends RecordBase {
  readonly deletedAt?: undefined;
  readonly data: T;
}

/**
 * A tombstone: the change that deleted a record, as `sync` streams it. Explicit deletes carry the
 * data given to the delete (often none); evictions by capacity carry the evicted record's data.
 *
 * @example
 * ```ts
 * for await (const change of broker.sync('user', serverVersion, recordVersion)) {
 *   if (change.deletedAt) console.log('deleted at', change.deletedAt.toISOString(), change.data);
 * }
 * ```
 */
export interface DeletedRecord<T> extends RecordBase {
  /** The time given to the delete, or the time of the eviction. */
  readonly deletedAt: Date;
  readonly data?: T | undefined;
}

/**
 * A record as the backend returns it: live, or a tombstone when `deletedAt` is set.
 *
 * @example
 * ```ts
 * for await (const record of broker.sync('session', serverVersion, recordVersion)) {
 *   if (record.deletedAt) cache.delete(record.id);
 *   else cache.set(record.id, record.data);
 * }
 * ```
 */
export type DataRecord<T> = LiveRecord<T> | DeletedRecord<T>;

/**
 * A change to write with `put`: a record with its data, or a delete (`deletedAt` set). The backend
 * assigns `version` and `modifiedAt`.
 *
 * @example
 * ```ts
 * await broker.put([
 *   { type: 'session', id: 's1', data: { user: 'ada' } },
 *   { type: 'session', id: 's0', deletedAt: new Date() },
 * ]);
 * ```
 */
export type RecordInput<T> =
  | {
      readonly type: string;
      readonly id: string;
      readonly data: T;
      readonly deletedAt?: undefined;
    }
  | {
      readonly type: string;
      readonly id: string;
      readonly deletedAt: Date;
      /** Data kept in the tombstone, for consumers that want to know what was deleted. */
      readonly data?: T | undefined;
    };

/**
 * What `put` resolves to.
 *
 * @example
 * ```ts
 * const { serverVersion, records }: PutResult<JsonValue> = await broker.put([{ type: 't', id: 'a', data: 1 }]);
 * ```
 */
export interface PutResult<T> {
  /** The server version the records were written under. */
  readonly serverVersion: number;
  /** The written records, in input order, with their versions and modification times. */
  readonly records: readonly DataRecord<T>[];
}

/**
 * Options of one record type.
 *
 * @example
 * ```ts
 * const options: TypeOptions = { capacity: 1000, indexableFields: ['email', 'team.name'] };
 * await broker.setOptions('user', options);
 * ```
 */
export interface TypeOptions {
  /**
   * The most live records the type may hold. When a put or `setOptions` exceeds it, the least
   * recently modified records are deleted (their tombstones carry their data). `0` keeps none;
   * leave it out for no limit.
   */
  readonly capacity?: number | undefined;
  /**
   * Data fields that filter expressions may compare with `equals` (dotted paths into the data,
   * for example `user.email`). A filter on a field that is not listed matches nothing.
   */
  readonly indexableFields?: readonly string[] | undefined;
}

/**
 * The versions of a backend, from `versions()`.
 *
 * @example
 * ```ts
 * const { serverVersion, latestRecordVersion, earliestRecordVersion }: Versions = await broker.versions();
 * ```
 */
export interface Versions {
  /** Changes when Redis loses the backend's data (flush, replacement, `clear()`). */
  readonly serverVersion: number;
  /** The version of the last change, or 0 when nothing was written yet. */
  readonly latestRecordVersion: number;
  /**
   * The oldest `recordVersion` that `sync` accepts: changes up to it were removed by expiry. 0 when
   * nothing was removed yet.
   */
  readonly earliestRecordVersion: number;
}
