// The bytes stored for one change: the member of the change log and the value in the records
// hash. A fixed header first, so that a retried transaction only rewrites the header and the
// expiry pass reads versions and times without touching the rest:
//
//   0      format (1)
//   1      flags: 1 deleted, 2 has data, 4 data encrypted
//   2..9   version, uint64 big-endian (at most 2^53 - 1)
//   10..17 modifiedAt, ms since the epoch, float64 big-endian
//   18..25 deletedAt, ms since the epoch, float64 big-endian (0 unless deleted)
//   26..   body: uint32 type length, type (UTF-8), uint32 id length, id (UTF-8), data (the rest)
import { corruptError } from './errors.ts';

export const ENTRY_FORMAT = 1;
export const HEADER_SIZE = 26;
const FLAG_DELETED = 1;
const FLAG_DATA = 2;
const FLAG_ENCRYPTED = 4;
const KNOWN_FLAGS = FLAG_DELETED | FLAG_DATA | FLAG_ENCRYPTED;
/** Longest type or id, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 65_536;
const TWO_32 = 2 ** 32;

/** One stored change, decoded. `data` is a view into the stored buffer, still encrypted when `encrypted`. */
export interface Entry {
  readonly version: number;
  readonly modifiedAt: number;
  readonly deletedAt: number | undefined;
  readonly type: string;
  readonly id: string;
  readonly data: Buffer | undefined;
  readonly encrypted: boolean;
}

/** The parts of an entry that do not change between transaction attempts. */
export interface EntryBody {
  readonly type: string;
  readonly id: string;
  /** Type, id and data encoded once. */
  readonly bytes: Buffer;
  readonly hasData: boolean;
  readonly encrypted: boolean;
}

/**
 * Encodes the body of an entry (type, id, data); {@link encodeEntry} adds the header. Data given
 * as text is written as UTF-8 straight into the body (the JSON codec's fast path).
 */
export function encodeBody(
  type: string,
  id: string,
  data: Uint8Array | string | undefined,
  encrypted: boolean,
): EntryBody {
  const typeBytes = type.length < 64 && isAscii(type) ? type.length : Buffer.byteLength(type, 'utf8');
  const idBytes = id.length < 64 && isAscii(id) ? id.length : Buffer.byteLength(id, 'utf8');
  const dataBytes =
    data === undefined ? 0 : typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
  const bytes = Buffer.allocUnsafe(8 + typeBytes + idBytes + dataBytes);
  bytes.writeUInt32BE(typeBytes, 0);
  let at = 4 + bytes.write(type, 4, 'utf8');
  bytes.writeUInt32BE(idBytes, at);
  at += 4;
  at += bytes.write(id, at, 'utf8');
  if (typeof data === 'string') bytes.write(data, at, 'utf8');
  else if (data) bytes.set(data, at);
  return { type, id, bytes, hasData: data !== undefined, encrypted: data !== undefined && encrypted };
}

/** Whether a short string is plain ASCII (its UTF-8 length is its length). */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The header flags of an entry with this body, deleted or not. */
export function entryFlags(body: EntryBody, deleted: boolean): number {
  return (deleted ? FLAG_DELETED : 0) | (body.hasData ? FLAG_DATA : 0) | (body.encrypted ? FLAG_ENCRYPTED : 0);
}

/** The full entry: a header for this version and time, then the body. */
export function encodeEntry(
  body: EntryBody,
  version: number,
  modifiedAt: number,
  deletedAt: number | undefined,
): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.bytes.length);
  out[0] = ENTRY_FORMAT;
  out[1] = entryFlags(body, deletedAt !== undefined);
  out.writeUInt32BE(Math.floor(version / TWO_32), 2);
  out.writeUInt32BE(version % TWO_32, 6);
  out.writeDoubleBE(modifiedAt, 10);
  out.writeDoubleBE(deletedAt ?? 0, 18);
  body.bytes.copy(out, HEADER_SIZE);
  return out;
}

/** The same change as a tombstone at a new version: evictions delete a record and keep its data. */
export function tombstoneOf(stored: Buffer, version: number, modifiedAt: number): Buffer {
  readHeader(stored); // validates before copying
  const out = Buffer.allocUnsafe(stored.length);
  stored.copy(out);
  out[1] = (out[1] ?? 0) | FLAG_DELETED;
  out.writeUInt32BE(Math.floor(version / TWO_32), 2);
  out.writeUInt32BE(version % TWO_32, 6);
  out.writeDoubleBE(modifiedAt, 10);
  out.writeDoubleBE(modifiedAt, 18);
  return out;
}

/** Version and modification time, read from the header alone. */
export function readHeader(bytes: Buffer): { version: number; modifiedAt: number; flags: number } {
  if (bytes.length < HEADER_SIZE + 8) {
    throw corruptError(`a stored change of ${bytes.length} bytes is shorter than the smallest entry`);
  }
  const format = bytes[0];
  if (format !== ENTRY_FORMAT) {
    throw corruptError(
      `a stored change has format ${format}, this version reads format ${ENTRY_FORMAT}; was it written by a newer @redis-events/databroker, or by another program?`,
    );
  }
  const flags = bytes[1] ?? 0;
  if ((flags & ~KNOWN_FLAGS) !== 0 || (flags & FLAG_ENCRYPTED && !(flags & FLAG_DATA))) {
    throw corruptError(`a stored change has unknown flags 0x${flags.toString(16)}`);
  }
  const high = bytes.readUInt32BE(2);
  const version = high * TWO_32 + bytes.readUInt32BE(6);
  if (high >= 2 ** 21 || version === 0) {
    throw corruptError(`a stored change has version ${version}, outside 1..2^53-1`);
  }
  const modifiedAt = bytes.readDoubleBE(10);
  if (!Number.isFinite(modifiedAt)) throw corruptError('a stored change has no valid modification time');
  return { version, modifiedAt, flags };
}

/** Decodes a stored entry, checking every length against the buffer. Throws `ERR_DATABROKER_CORRUPT`. */
export function decodeEntry(bytes: Buffer): Entry {
  const { version, modifiedAt, flags } = readHeader(bytes);
  const deleted = (flags & FLAG_DELETED) !== 0;
  const deletedAt = deleted ? bytes.readDoubleBE(18) : undefined;
  if (deletedAt !== undefined && !Number.isFinite(deletedAt)) {
    throw corruptError(`the stored change at version ${version} has no valid deletion time`);
  }
  let at = HEADER_SIZE;
  const typeLength = bytes.readUInt32BE(at);
  at += 4;
  if (typeLength > MAX_NAME_BYTES || typeLength > bytes.length - at - 4) {
    throw corruptError(`the stored change at version ${version} declares a type of ${typeLength} bytes`);
  }
  const type = bytes.toString('utf8', at, at + typeLength);
  at += typeLength;
  const idLength = bytes.readUInt32BE(at);
  at += 4;
  if (idLength > MAX_NAME_BYTES || idLength > bytes.length - at) {
    throw corruptError(`the stored change at version ${version} declares an id of ${idLength} bytes`);
  }
  const id = bytes.toString('utf8', at, at + idLength);
  at += idLength;
  const hasData = (flags & FLAG_DATA) !== 0;
  if (!hasData && at !== bytes.length) {
    throw corruptError(`the stored change at version ${version} has ${bytes.length - at} bytes after its id`);
  }
  return {
    version,
    modifiedAt,
    deletedAt,
    type,
    id,
    data: hasData ? bytes.subarray(at) : undefined,
    encrypted: (flags & FLAG_ENCRYPTED) !== 0,
  };
}

/**
 * The records-hash field of a record: the type's length first, so that no (type, id) pair can
 * collide with another whatever characters they hold.
 */
export function recordField(type: string, id: string): string {
  return `${type.length}:${type}:${id}`;
}

/** The part of a record field before the id: every record of a type shares it. */
export function fieldPrefix(type: string): string {
  return `${type.length}:${type}:`;
}
