// Stream entry IDs are two unsigned 64-bit numbers, `<ms>-<seq>`. Both parts can exceed 2^53,
// so comparisons use BigInt, never floating point.

const MAX_U64 = (1n << 64n) - 1n;
const ID_PATTERN = /^(\d{1,20})(?:-(\d{1,20}))?$/;

/** A parsed stream entry ID. */
export interface StreamId {
  readonly ms: bigint;
  readonly seq: bigint;
}

/**
 * Parses `1526919030474-55` (or `1526919030474`, meaning sequence 0). Returns `undefined` for
 * anything else, including numbers beyond 64 bits.
 */
export function parseStreamId(text: string): StreamId | undefined {
  const match = ID_PATTERN.exec(text);
  if (!match?.[1]) return undefined;
  const ms = BigInt(match[1]);
  const seq = BigInt(match[2] ?? '0');
  if (ms > MAX_U64 || seq > MAX_U64) return undefined;
  return { ms, seq };
}

/** True when `text` is a complete or millisecond-only stream entry ID. */
export function isStreamId(text: string): boolean {
  return parseStreamId(text) !== undefined;
}

/** Orders two IDs: negative when `a` comes first, 0 when equal, positive otherwise. Invalid IDs sort first. */
export function compareStreamIds(a: string, b: string): number {
  const x = parseStreamId(a);
  const y = parseStreamId(b);
  if (!x || !y) return (x ? 1 : 0) - (y ? 1 : 0);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  if (x.seq !== y.seq) return x.seq < y.seq ? -1 : 1;
  return 0;
}

/** The smallest ID still kept when entries older than `maxAgeMs` (by their ID time) are trimmed. */
export function minIdForAge(nowMs: number, maxAgeMs: number): string {
  const ms = Math.max(0, Math.floor(nowMs - maxAgeMs));
  return `${ms}-0`;
}
