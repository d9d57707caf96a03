import { keySlot } from '@redis-events/resp';
import { argumentError } from './errors.ts';

/**
 * Where a backend keeps its data: the full key names, as Redis sees them (the client's
 * `keyPrefix` included). Every key holds the hash tag `{name}`, so that all of them live in one
 * Redis Cluster slot and one transaction or script can touch them together.
 *
 * @example
 * ```ts
 * console.log(broker.keys.records); // {databroker}:records
 * ```
 */
export interface KeySpace {
  readonly name: string;
  /** The cluster slot every key of this backend lives in. */
  readonly slot: number;
  /**
   * Hash: `server` = the server version (a random number, created on first use; it changes when
   * the data is lost), `last` = the version of the last change, `trimmed` = the highest version
   * removed from the change log by expiry, `capped` = how many types have a capacity, and
   * `cap:<type>` = the capacity of each.
   */
  readonly meta: string;
  /** Hash: record field (`<type length>:<type>:<id>`) to the stored entry of each live record. */
  readonly records: string;
  /** Sorted set, every score 0: the record field of each live record, so in (type, id) order. */
  readonly index: string;
  /** Sorted set: every change (puts and tombstones), score = version, member = the stored entry. */
  readonly changes: string;
  /** Set: every type ever written. */
  readonly types: string;
  /** Hash: type to its options (JSON). */
  readonly options: string;
  /** List: the tokens of the last scripted commits, newest first. */
  readonly commits: string;
  /** String with a short time to live: the writer whose turn it is, when WATCH/MULTI writers contend. */
  readonly turn: string;
  /** Pub/Sub channel that every commit publishes on. */
  readonly channel: string;
  /** Sorted set of a capped type's live record fields, score = the version of their last change. */
  recentKey(type: string): string;
  /** What `recentKey` puts before the type. */
  readonly recencyPrefix: string;
  /** String: the holder of a lease, with the lease's time to live. */
  leaseKey(name: string): string;
}

/** Longest backend name. */
export const MAX_NAME_LENGTH = 256;

/**
 * The key space of a backend named `name` under the client's key prefix (ioredis prefixes keys,
 * not channels, and the backend's own connections prefix nothing: both get it here).
 */
export function keySpace(name: string, prefix = ''): KeySpace {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || /[{}]/.test(name)) {
    throw argumentError(
      `the backend name must be 1 to ${MAX_NAME_LENGTH} characters without { or } (it becomes the cluster hash tag), not ${JSON.stringify(name)}`,
    );
  }
  const tag = `${prefix}{${name}}`;
  return {
    name,
    slot: keySlot(`{${name}}`),
    meta: `${tag}:meta`,
    records: `${tag}:records`,
    index: `${tag}:index`,
    changes: `${tag}:changes`,
    types: `${tag}:types`,
    options: `${tag}:options`,
    turn: `${tag}:turn`,
    commits: `${tag}:commits`,
    channel: `${tag}:changed`,
    recentKey: (type) => `${tag}:recent:${type}`,
    recencyPrefix: `${tag}:recent:`,
    leaseKey: (lease) => `${tag}:lease:${lease}`,
  };
}
