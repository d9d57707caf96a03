import { describeError, EventStoreError } from './errors.ts';

/**
 * Turns payloads into stored text and back. The default, {@link jsonSerializer}, writes JSON with
 * the payload rules of the README; pass your own to store BigInt, Maps, class instances or
 * another encoding. In the `timeline` layout the text is embedded in the Go extension's JSON
 * envelope, so it must be a JSON text there.
 *
 * @example
 * ```ts
 * // BigInt-safe JSON: bigints become {"$bigint":"123"}
 * const bigintJson: Serializer = {
 *   serialize: (payload) =>
 *     JSON.stringify(payload, (_key, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v)),
 *   deserialize: (text) =>
 *     JSON.parse(text, (_key, v) => (v && typeof v.$bigint === 'string' ? BigInt(v.$bigint) : v)),
 * };
 * const store = new RedisEventStore(redis, { serializer: bigintJson });
 * ```
 */
export interface Serializer {
  /** Text to store for this payload. Throw to refuse the payload. */
  serialize(payload: unknown): string;
  /** The payload for a stored text. */
  deserialize(text: string): unknown;
}

/** Why a value cannot be stored as JSON, or `undefined` when it can. */
function refusal(value: unknown, original: unknown): string | undefined {
  switch (typeof value) {
    case 'bigint':
      return `is a BigInt (${String(value)}n), which JSON cannot hold: convert it to a string (or a number when it is small enough), or pass a serializer that supports BigInt`;
    case 'function':
      return 'is a function, which is not data: leave it out of the payload';
    case 'symbol':
      return 'is a symbol, which JSON cannot hold: use a string';
    case 'number':
      return Number.isFinite(value)
        ? undefined
        : `is ${String(value)}, which JSON cannot hold (JSON.stringify would write null): use null or a string`;
    case 'object':
      if (value === null)
        return original instanceof Date ? 'is an invalid Date: store a valid Date or null' : undefined;
      if (value instanceof Map || value instanceof WeakMap)
        return 'is a Map, which JSON would write as {}: convert it with Object.fromEntries(map)';
      if (value instanceof Set || value instanceof WeakSet)
        return 'is a Set, which JSON would write as {}: convert it with [...set]';
      if (value instanceof RegExp) return 'is a RegExp, which JSON would write as {}: store its source as a string';
      if (value instanceof ArrayBuffer || (ArrayBuffer.isView(value) && !(value instanceof DataView)))
        return 'is binary data (ArrayBuffer or typed array), which JSON would garble: use a Buffer (written as {"type":"Buffer","data":[...]}), base64, or Array.from()';
      if (value instanceof DataView) return 'is a DataView, which JSON would write as {}: store its bytes instead';
      return undefined;
    default:
      return undefined;
  }
}

class Refused extends Error {}

function replacer(this: unknown, key: string, value: unknown): unknown {
  const type = typeof value;
  // Fast path: strings, booleans, finite numbers, undefined, plain objects and arrays.
  if (type === 'string' || type === 'boolean' || type === 'undefined') return value;
  if (type === 'number' && Number.isFinite(value)) return value;
  if (
    type === 'object' &&
    value !== null &&
    (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype)
  )
    return value;
  const original = (this as Record<string, unknown>)[key];
  if (refusal(value, original) !== undefined) throw new Refused();
  return value;
}

/** Finds the first refused value the way JSON.stringify walks (toJSON applied), without recursion. */
function findRefusal(payload: unknown): { path: string; reason: string } | undefined {
  const stack: { holder: Record<string, unknown>; key: string; path: string; depth: number }[] = [
    { holder: { '': payload }, key: '', path: 'payload', depth: 0 },
  ];
  const seen = new Set<unknown>();
  while (stack.length > 0) {
    const { holder, key, path, depth } = stack.pop() as (typeof stack)[number];
    const original = holder[key];
    let value = original;
    if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      value = (value as { toJSON(key: string): unknown }).toJSON(key);
    }
    const reason = refusal(value, original);
    if (reason !== undefined) return { path, reason };
    if (value === null || typeof value !== 'object' || seen.has(value) || depth > 10_000) continue;
    seen.add(value);
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const child = keys[i] as string;
      const childPath = Array.isArray(value)
        ? `${path}[${child}]`
        : `${path}${/^[A-Za-z_$][\w$]*$/.test(child) ? `.${child}` : `[${JSON.stringify(child)}]`}`;
      stack.push({ holder: value as Record<string, unknown>, key: child, path: childPath, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * Serializes a payload as JSON under the package's payload rules:
 * - `Date` (and anything with `toJSON`) is written as its `toJSON()` result: an ISO string;
 * - `undefined` object properties are dropped, `undefined` array items become `null`, and an
 *   `undefined` payload is stored as `null`;
 * - BigInt, NaN, ±Infinity, invalid Dates, functions, symbols, Map, Set, RegExp and binary
 *   views are refused with an {@link EventStoreError} `ERR_EVENT_STORE_PAYLOAD` naming the path,
 *   instead of being silently changed the way `JSON.stringify` would;
 * - circular structures are refused.
 *
 * @example
 * ```ts
 * serializePayload({ at: new Date(0), skip: undefined }); // '{"at":"1970-01-01T00:00:00.000Z"}'
 * serializePayload({ amount: 1n }); // throws ERR_EVENT_STORE_PAYLOAD: payload.amount is a BigInt...
 * ```
 */
export function serializePayload(payload: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload, replacer);
  } catch (err) {
    const found = findRefusal(payload);
    if (found) throw new EventStoreError('ERR_EVENT_STORE_PAYLOAD', `${found.path} ${found.reason}`);
    if (err instanceof Refused)
      throw new EventStoreError('ERR_EVENT_STORE_PAYLOAD', 'the payload holds a value JSON cannot hold');
    const circular = err instanceof TypeError && /circular/i.test(err.message);
    throw new EventStoreError(
      'ERR_EVENT_STORE_PAYLOAD',
      circular
        ? 'the payload is circular (an object refers to itself): store a tree of plain values'
        : `the payload cannot be written as JSON: ${describeError(err)}`,
      { cause: err },
    );
  }
  return text ?? 'null';
}

/**
 * The default serializer: JSON with the payload rules of {@link serializePayload};
 * `deserialize` is `JSON.parse`.
 *
 * @example
 * ```ts
 * const store = new RedisEventStore(redis, { serializer: jsonSerializer }); // the default
 * ```
 */
export const jsonSerializer: Serializer = Object.freeze({
  serialize: serializePayload,
  deserialize: (text: string): unknown => JSON.parse(text),
});
