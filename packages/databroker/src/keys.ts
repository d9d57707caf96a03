import { keySlot } from '@redis-events/resp';
import { argumentError } from './errors.ts';

/**
 * Where a backend keeps its data. Every key starts with the hash tag `{name}`, so that all of
 * them live in one Redis Cluster slot and one transaction can touch them together.
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
  /** String: a random number, created on first use; it changes when the data is lost. */
  readonly serverVersion: string;
  /** String: the version of the last change. */
  readonly lastVersion: string;
  /** Hash: record field (see `recordField`) to the stored entry of each live record. */
  readonly records: string;
  /** Sorted set: every change (puts and tombstones), score = version, member = the stored entry. */
  readonly changes: string;
  /** Set: every type ever written. */
  readonly types: string;
  /** Hash: type to its options (JSON). */
  readonly options: string;
  /** Sorted set of markers: `trimmed` = the highest version removed from the change log. */
  readonly marks: string;
  /** List: the tokens of the last scripted commits (`scripting: true`), newest first. */
  readonly commits: string;
  /** String with a short time to live: the writer whose turn it is, when writers contend. */
  readonly turn: string;
  /** Pub/Sub channel that every commit publishes its last version on. */
  readonly channel: string;
  /** Sorted set of one type's live record ids, score = the version of their last change. */
  typeKey(type: string): string;
  /** String: the holder of a lease, with the lease's time to live. */
  leaseKey(name: string): string;
}

/** Longest backend name. */
export const MAX_NAME_LENGTH = 256;

/**
 * The key space of a backend named `name`. `channelPrefix` is the client's `keyPrefix`, so that
 * backends under different prefixes do not wake each other (ioredis prefixes keys, not channels).
 */
export function keySpace(name: string, channelPrefix = ''): KeySpace {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || /[{}]/.test(name)) {
    throw argumentError(
      `the backend name must be 1 to ${MAX_NAME_LENGTH} characters without { or } (it becomes the cluster hash tag), not ${JSON.stringify(name)}`,
    );
  }
  const tag = `{${name}}`;
  return {
    name,
    slot: keySlot(tag),
    serverVersion: `${tag}:server_version`,
    lastVersion: `${tag}:last_version`,
    records: `${tag}:records`,
    changes: `${tag}:changes`,
    types: `${tag}:types`,
    options: `${tag}:options`,
    marks: `${tag}:marks`,
    turn: `${tag}:turn`,
    commits: `${tag}:commits`,
    channel: `${channelPrefix}${tag}:changed`,
    typeKey: (type) => `${tag}:type:${type}`,
    leaseKey: (lease) => `${tag}:lease:${lease}`,
  };
}
