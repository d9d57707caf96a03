// How binary-safe values become JSON: Redis keys and values are bytes, JSON has only text.
// Valid UTF-8 becomes a string; other bytes become { "base64": "..." }; bigint becomes a decimal
// string; Infinity, -Infinity and NaN (sorted-set scores) become "inf", "-inf" and "nan", as
// Redis writes them; Maps become objects when every key is text, else arrays of pairs. Object
// keys are defined, never assigned, so that a key named __proto__ is kept as data.
import { isUtf8 } from 'node:buffer';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Bytes as text when they are valid UTF-8, else as `{ base64 }`. */
export function bytes(value: Uint8Array): Json {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return isUtf8(buf) ? buf.toString('utf8') : { base64: buf.toString('base64') };
}

/** Any value the packages emit, as JSON (see the module comment for the mapping). */
export function toJson(value: unknown): Json {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value;
      return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return String(value);
  }
  if (value instanceof Uint8Array) return bytes(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Map) {
    const entries = [...value.entries()];
    if (entries.every(([k]) => typeof k === 'string' || (k instanceof Uint8Array && isUtf8(k)))) {
      return Object.fromEntries(
        entries.map(([k, v]) => [typeof k === 'string' ? k : Buffer.from(k).toString(), toJson(v)]),
      );
    }
    return entries.map(([k, v]) => [toJson(k), toJson(v)]);
  }
  if (value instanceof Set) return [...value].map(toJson);
  // Object.fromEntries defines properties: "__proto__" stays an ordinary key.
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, toJson(v)]),
  );
}
