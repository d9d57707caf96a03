// Redis Cluster key slots: CRC16 (XMODEM: polynomial 0x1021, initial 0) of the key's hash tag,
// or of the whole key, modulo 16384. The dead-letter stream must share its topic's slot so that
// moving an entry there and acknowledging it at the source is one atomic script.

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0);
  return crc;
}

/** The bytes Redis hashes: the content of the first non-empty `{...}`, else the whole key. */
function hashedPart(key: Buffer): Buffer {
  const open = key.indexOf(0x7b); // {
  if (open === -1) return key;
  const close = key.indexOf(0x7d, open + 1); // }
  if (close === -1 || close === open + 1) return key;
  return key.subarray(open + 1, close);
}

/** The cluster slot (0 to 16383) of a key, as `CLUSTER KEYSLOT` computes it. */
export function keySlot(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  return crc16(hashedPart(bytes)) & 16383;
}

/** True when the key carries a hash tag Redis uses (a non-empty first `{...}`). */
export function hasHashTag(key: string): boolean {
  const bytes = Buffer.from(key);
  return hashedPart(bytes) !== bytes;
}

/**
 * The default dead-letter stream of a topic, in the same cluster slot: `<key>:dead` when the key
 * has a hash tag (the tag stays first), else `{<key>}:dead`. Returns `undefined` when no such
 * name shares the slot (a key with braces but no usable tag); the caller then asks for an
 * explicit name.
 */
export function defaultDeadLetterKey(topic: string): string | undefined {
  const candidate = hasHashTag(topic) ? `${topic}:dead` : `{${topic}}:dead`;
  return keySlot(candidate) === keySlot(topic) ? candidate : undefined;
}
