// Reading replies defensively: the client may speak RESP2 or RESP3 (with either reply mapping),
// and a broken or hostile server may answer anything. Every helper throws ERR_DATABROKER_CORRUPT
// with the command's context instead of returning garbage.
import { corruptError } from './errors.ts';

/** A reply as bytes; `undefined` for a null reply. */
export function bytesReply(reply: unknown, what: string): Buffer | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (Buffer.isBuffer(reply)) return reply;
  if (typeof reply === 'string') return Buffer.from(reply, 'utf8');
  throw corruptError(`${what}: expected a string reply, got ${describe(reply)}`);
}

/** A reply as text; `undefined` for a null reply. */
export function textReply(reply: unknown, what: string): string | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (typeof reply === 'number') return String(reply);
  throw corruptError(`${what}: expected a string reply, got ${describe(reply)}`);
}

/** A non-negative safe integer; `undefined` for a null reply. Accepts numbers and decimal text. */
export function integerReply(reply: unknown, what: string): number | undefined {
  if (reply === null || reply === undefined) return undefined;
  let value: number;
  if (typeof reply === 'number') {
    value = reply;
  } else {
    const text = textReply(reply, what) as string;
    if (!/^\d{1,16}$/.test(text))
      throw corruptError(`${what}: expected a non-negative integer, got "${text.slice(0, 40)}"`);
    value = Number(text);
  }
  if (!Number.isSafeInteger(value) || value < 0)
    throw corruptError(`${what}: ${value} is not a version this library reads`);
  return value;
}

/** A score (ZSCORE): RESP3 gives a number, RESP2 text. */
export function scoreReply(reply: unknown, what: string): number | undefined {
  if (reply === null || reply === undefined) return undefined;
  const value = typeof reply === 'number' ? reply : Number(textReply(reply, what));
  if (!Number.isFinite(value)) throw corruptError(`${what}: expected a score, got ${describe(reply)}`);
  return value;
}

/** An array reply. */
export function arrayReply(reply: unknown, what: string): unknown[] {
  if (Array.isArray(reply)) return reply;
  if (reply instanceof Set) return [...reply]; // a RESP3 set under some reply mappings
  throw corruptError(`${what}: expected an array reply, got ${describe(reply)}`);
}

/** Members of an array reply, as bytes, none null. */
export function bytesArrayReply(reply: unknown, what: string): Buffer[] {
  return arrayReply(reply, what).map((item, i) => {
    const bytes = bytesReply(item, `${what} [${i}]`);
    if (!bytes) throw corruptError(`${what}: element ${i} is null`);
    return bytes;
  });
}

/**
 * `member, score` pairs of a WITHSCORES reply: RESP2 (and RESP3's legacy mapping) flatten them,
 * RESP3 nests `[member, score]` pairs.
 */
export function scoredMembersReply(reply: unknown, what: string): { member: Buffer; score: number }[] {
  const items = arrayReply(reply, what);
  const out: { member: Buffer; score: number }[] = [];
  if (items.length > 0 && Array.isArray(items[0])) {
    for (const [i, pair] of items.entries()) {
      const [member, score] = arrayReply(pair, `${what} [${i}]`);
      out.push({
        member: bytesReply(member, what) ?? Buffer.alloc(0),
        score: scoreReply(score, what) ?? Number.NaN,
      });
    }
  } else {
    if (items.length % 2 !== 0) throw corruptError(`${what}: a WITHSCORES reply of odd length ${items.length}`);
    for (let i = 0; i < items.length; i += 2) {
      out.push({
        member: bytesReply(items[i], what) ?? Buffer.alloc(0),
        score: scoreReply(items[i + 1], what) ?? Number.NaN,
      });
    }
  }
  for (const { score } of out) if (!Number.isFinite(score)) throw corruptError(`${what}: a member without a score`);
  return out;
}

/** TIME as milliseconds since the epoch. */
export function timeReply(reply: unknown, what = 'TIME'): number {
  const [seconds, micros] = arrayReply(reply, what).map((part) => integerReply(part, what));
  if (seconds === undefined || micros === undefined || micros >= 1_000_000) {
    throw corruptError(`${what}: expected [seconds, microseconds], got ${describe(reply)}`);
  }
  return seconds * 1000 + Math.floor(micros / 1000);
}

/** A short description of an unexpected reply, for error messages. */
export function describe(reply: unknown): string {
  if (reply === null || reply === undefined) return 'null';
  if (Buffer.isBuffer(reply)) return `${reply.length} bytes`;
  if (Array.isArray(reply)) return `an array of ${reply.length}`;
  if (typeof reply === 'string') return `"${reply.slice(0, 40)}"`;
  return typeof reply;
}
