// Turns the replies ioredis hands back into plain records, whatever the client's protocol:
// RESP2 arrays, RESP3 maps flattened to arrays (`replyMapping: 'legacy'`, the default) or RESP3
// maps as objects (`replyMapping: 'resp3'`), with strings or Buffers. Anything else is a reply
// no Redis sends, and becomes ERR_STREAMS_PROTOCOL instead of a crash further down.
import { StreamsError } from './errors.ts';

/** One entry of an XREADGROUP reply. `fields` is null when the entry was deleted while pending. */
export interface RawEntry {
  readonly id: string;
  readonly fields: readonly unknown[] | null;
  /** Deliveries before this one, when the server says (XREADGROUP CLAIM). */
  readonly previousDeliveries: number | undefined;
}

export function protocolError(what: string): StreamsError {
  return new StreamsError(
    'ERR_STREAMS_PROTOCOL',
    `unexpected reply: ${what}; the server (or a proxy in between) does not speak Redis as expected`,
  );
}

/** A string from a string or Buffer reply item. */
export function asText(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString();
  throw protocolError(`${what} is not a string`);
}

/** A non-negative integer from a number or numeric-string reply item (`stringNumbers`). */
export function asCount(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw protocolError(`${what} is not a non-negative integer`);
  return n;
}

function isMapObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** The entries of the single stream in an XREAD/XREADGROUP reply (empty on timeout). */
export function streamEntries(reply: unknown, maxEntries: number): RawEntry[] {
  if (reply === null || reply === undefined) return [];
  let entries: unknown;
  if (Array.isArray(reply)) {
    if (reply.length === 0) return [];
    // RESP2: [[key, entries]]; RESP3 flattened map: [key, entries].
    entries = Array.isArray(reply[0]) ? (reply[0] as unknown[])[1] : reply[1];
  } else if (reply instanceof Map) {
    entries = [...reply.values()][0];
  } else if (isMapObject(reply)) {
    entries = Object.values(reply)[0];
  } else {
    throw protocolError('XREADGROUP did not return streams');
  }
  if (entries === null || entries === undefined) return [];
  if (!Array.isArray(entries)) throw protocolError('XREADGROUP stream entries are not a list');
  if (entries.length > maxEntries) {
    throw protocolError(`XREADGROUP returned ${entries.length} entries, more than the COUNT of ${maxEntries}`);
  }
  return entries.map((item) => parseEntry(item));
}

/** One `[id, fields]` or `[id, fields, idle, deliveries]` entry. */
export function parseEntry(item: unknown): RawEntry {
  if (!Array.isArray(item) || item.length < 2) throw protocolError('a stream entry is not [id, fields]');
  const id = asText(item[0], 'a stream entry ID');
  const fields = item[1];
  if (fields !== null && !Array.isArray(fields)) throw protocolError(`the fields of entry ${id} are not a list`);
  const previousDeliveries = item.length >= 4 ? asCount(item[3], `the delivery count of entry ${id}`) : undefined;
  return { id, fields: fields as unknown[] | null, previousDeliveries };
}

/** A record from a map reply: a flat `[k, v, k, v]` array, an object, or a Map. */
export function toRecord(reply: unknown, what: string): Record<string, unknown> {
  if (Array.isArray(reply)) {
    if (reply.length % 2 !== 0) throw protocolError(`${what} is not a list of pairs`);
    const out: Record<string, unknown> = Object.create(null);
    for (let i = 0; i < reply.length; i += 2) out[asText(reply[i], `a ${what} field name`)] = reply[i + 1];
    return out;
  }
  if (reply instanceof Map) {
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of reply) out[asText(k, `a ${what} field name`)] = v;
    return out;
  }
  if (isMapObject(reply)) return reply;
  throw protocolError(`${what} is not a map`);
}

/** A list reply (`null` counts as empty). */
export function toList(reply: unknown, what: string): unknown[] {
  if (reply === null || reply === undefined) return [];
  if (!Array.isArray(reply)) throw protocolError(`${what} is not a list`);
  return reply;
}
