// The Redis Cluster hash slot of a hash tag: CRC16-CCITT (XMODEM) modulo 16384, as in the
// cluster specification. Table-driven; a few lines rather than a dependency.
const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[i] = crc;
}

/** CRC16 (XMODEM) of bytes. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The slot of every key whose hash tag is `tag` (the text between the braces). */
export function hashSlot(tag: string): number {
  return crc16(Buffer.from(tag, 'utf8')) % 16384;
}
