// Redis Cluster's hash slot of a key: CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the
// key, or of its hash tag, modulo 16384, as the cluster specification defines it.

/**
 * The number of hash slots of a Redis Cluster.
 *
 * @example
 * ```ts
 * const owners = new Array<string | undefined>(CLUSTER_SLOTS);
 * ```
 */
export const CLUSTER_SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[i] = crc;
}

function step(crc: number, byte: number): number {
  return ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
}

function crc16Bytes(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = step(crc, bytes[i] as number);
  return crc;
}

const encoder = new TextEncoder();

function crc16Encoded(bytes: Uint8Array): number {
  return crc16Bytes(bytes, 0, bytes.length);
}

/** CRC16 of the UTF-8 bytes of `text.slice(start, end)`, without encoding when it is ASCII. */
function crc16Text(text: string, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return crc16Encoded(encoder.encode(text.slice(start, end)));
    crc = step(crc, code);
  }
  return crc;
}

/**
 * The hash slot (0 to 16383) of a key, as `CLUSTER KEYSLOT` computes it: when the key holds a
 * `{` followed later by a `}` with at least one character between them, only the characters
 * between the first `{` and the first `}` after it are hashed, so `{user:1}:inbox` and
 * `{user:1}:events` share a slot. Strings are hashed as UTF-8; `Uint8Array` keys (Buffers) as
 * they are. Shard channels (SPUBLISH) use the same slots.
 *
 * @example
 * ```ts
 * keySlot('news'); // => 5161
 * keySlot('{user:1}:inbox') === keySlot('user:1'); // => true
 * keySlot(Buffer.from([0xff, 0x00])); // => 7934
 * ```
 */
export function keySlot(key: string | Uint8Array): number {
  // `{` and `}` are single bytes in UTF-8 and never part of a multi-byte sequence, so finding
  // the tag on the string's characters finds it on its bytes.
  const text = typeof key === 'string';
  const open = text ? key.indexOf('{') : key.indexOf(0x7b);
  let start = 0;
  let end = key.length;
  if (open >= 0) {
    const close = text ? key.indexOf('}', open + 1) : key.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  return (text ? crc16Text(key, start, end) : crc16Bytes(key as Uint8Array, start, end)) & (CLUSTER_SLOTS - 1);
}
