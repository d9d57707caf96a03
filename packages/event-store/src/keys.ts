import { EventStoreError } from './errors.ts';

/**
 * Longest event name or prefix accepted, in UTF-8 bytes: keys stay small and readable.
 *
 * @example
 * ```ts
 * if (Buffer.byteLength(name) > MAX_NAME_BYTES) name = hash(name);
 * ```
 */
export const MAX_NAME_BYTES = 1024;

/**
 * How the `timeline` layout names its keys:
 * - `go`: exactly the Go extension's keys, `{prefix}:{name}:{unixNano}` and
 *   `{prefix}:{name}:timeline`, with the name as is. Standalone Redis only: each event key
 *   hashes to its own slot.
 * - `tagged`: `{prefix}:{<escaped name>}:{unixNano}` and `{prefix}:{<escaped name>}:timeline`, a
 *   hash tag per name so that a name's keys share one slot (Redis Cluster). A Go service reads
 *   and writes the same keys when it names the event `{name}` (for names without `%`, `:`, `{`, `}`).
 *
 * @example
 * ```ts
 * const store = new RedisEventStore(cluster, { layout: 'timeline', timelineKeys: 'tagged' });
 * ```
 */
export type TimelineKeys = 'go' | 'tagged';

const ESCAPES: Readonly<Record<string, string>> = { '%': '%25', ':': '%3A', '{': '%7B', '}': '%7D' };

/**
 * Escapes an event name for use inside a key and a hash tag: `%`, `:`, `{` and `}` become
 * `%25`, `%3A`, `%7B` and `%7D`. The mapping is one to one, so two names never share keys, and
 * the result holds no brace, so it cannot open or close a hash tag.
 *
 * @example
 * ```ts
 * escapeName('orders:{eu}'); // 'orders%3A%7Beu%7D'
 * ```
 */
export function escapeName(name: string): string {
  return /[%:{}]/.test(name) ? name.replace(/[%:{}]/g, (c) => ESCAPES[c] as string) : name;
}

function utf8Length(text: string): number {
  return text.length * 3 <= MAX_NAME_BYTES ? text.length : Buffer.byteLength(text);
}

/** Throws `ERR_EVENT_STORE_ARGUMENT` unless `name` is a usable event name. */
export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', `an event name must be a string, not ${typeof name}`);
  }
  if (name.length === 0) throw new EventStoreError('ERR_EVENT_STORE_ARGUMENT', 'an event name must not be empty');
  if (utf8Length(name) > MAX_NAME_BYTES) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_ARGUMENT',
      `the event name "${name.slice(0, 40)}..." is longer than ${MAX_NAME_BYTES} bytes in UTF-8; use a shorter name`,
    );
  }
  if (!name.isWellFormed()) {
    // A lone surrogate becomes U+FFFD in UTF-8, so two different names would share keys.
    throw new EventStoreError(
      'ERR_EVENT_STORE_ARGUMENT',
      `the event name ${JSON.stringify(name)} holds a lone UTF-16 surrogate, which Redis keys cannot keep apart from U+FFFD; use name.toWellFormed()`,
    );
  }
}

/** Throws `ERR_EVENT_STORE_CONFIG` unless `prefix` is usable for keys of every layout. */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new EventStoreError('ERR_EVENT_STORE_CONFIG', 'prefix must be a non-empty string, like "mediator:events"');
  }
  if (utf8Length(prefix) > MAX_NAME_BYTES || !prefix.isWellFormed()) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      `prefix must be well-formed text of at most ${MAX_NAME_BYTES} bytes`,
    );
  }
  const open = prefix.indexOf('{');
  if (open >= 0 && prefix[open + 1] === '}') {
    // Redis hashes the whole key when the first tag is empty, so a name's keys would scatter.
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      `prefix "${prefix}" holds an empty hash tag "{}", which would scatter one name's keys over several slots; remove it`,
    );
  }
}

/** The hash tag part of a key as Redis Cluster computes it (the whole key when there is none). */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** The key of a name's stream in the `stream` layout: `{prefix}:{<escaped name>}`. */
export function streamKey(prefix: string, name: string): string {
  return `${prefix}:{${escapeName(name)}}`;
}

/** The common start of a name's keys in the `timeline` layout (value keys add `:{unixNano}`). */
export function timelineBase(prefix: string, name: string, keys: TimelineKeys): string {
  return keys === 'go' ? `${prefix}:${name}` : `${prefix}:{${escapeName(name)}}`;
}
