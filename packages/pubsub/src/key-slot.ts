// Redis Cluster's hash slot of a key or shard channel: CRC16 (XModem: polynomial 0x1021, initial
// value 0) of the key, or of its hash tag, modulo 16384.

/** Hash slots in a Redis Cluster. */
export const SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[i] = crc;
}

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++)
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return crc;
}

/**
 * The hash slot of a key or shard channel, as `CLUSTER KEYSLOT` computes it: when the name holds
 * a `{...}` with at least one character between the first `{` and the next `}`, only that part
 * is hashed, so `{user:1}:inbox` and `{user:1}:events` share a slot.
 *
 * @example
 * ```ts
 * keySlot('news'); // 5161
 * keySlot('{news}:sports') === keySlot('news'); // true
 * ```
 */
export function keySlot(name: string | Uint8Array): number {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  return crc16(bytes, start, end) & (SLOTS - 1);
}

/** Names grouped by their hash slot, in first-seen order: one SSUBSCRIBE per group in a cluster. */
export function groupBySlot(names: readonly string[]): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const name of names) {
    const slot = keySlot(name);
    const group = groups.get(slot);
    if (group) group.push(name);
    else groups.set(slot, [name]);
  }
  return groups;
}
