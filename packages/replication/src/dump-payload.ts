// DUMP payloads (what `DUMP` returns and `RESTORE` takes, also inside replicated RESTORE
// commands): one RDB value without key, then the RDB version (2 bytes) and a CRC64 (8 bytes).
import { crc64 } from './crc64.ts';
import { RdbError } from './errors.ts';
import { PARSER_OPTIONS, rejectUnknownOptions } from './options.ts';
import type { RdbEntryEvent } from './rdb-events.ts';
import { MAX_REDIS_RDB_VERSION, VALKEY_RDB_VERSIONS } from './rdb-format.ts';
import { beginValueOnly, RdbParser, type RdbParserOptions } from './rdb-parser.ts';

/** A decoded DUMP payload. */
export interface DumpPayload {
  /** The RDB version in the footer: 1 to 13 for Redis, 80 for Valkey 9 (payloads carry no magic). */
  readonly version: number;
  readonly checksum: bigint;
  /** False when the footer's checksum is 0 (a server with `rdbchecksum no`). */
  readonly checksumVerified: boolean;
  /** The value, as entry events (`key` empty, `db` 0), in parts when large. */
  readonly parts: readonly RdbEntryEvent[];
}

/**
 * Decodes a DUMP payload: the value of a `RESTORE` command in a replication stream, or what
 * `DUMP key` returns. Offsets in errors count from the payload's first byte.
 *
 * @example
 * ```ts
 * const view = commandView(event.name, event.args);
 * if (view.type === 'restore') {
 *   const { parts } = parseDumpPayload(view.payload);
 *   console.log(view.key.toString(), parts[0]?.type);
 * }
 * ```
 * @throws {RdbError} `ERR_RDB_CORRUPT` (short payload), `ERR_RDB_CHECKSUM`, `ERR_RDB_VERSION`, and the parser's errors.
 */
export function parseDumpPayload(payload: Uint8Array, options: RdbParserOptions = {}): DumpPayload {
  rejectUnknownOptions(options, PARSER_OPTIONS, 'parseDumpPayload');
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  if (bytes.length < 11)
    throw new RdbError('ERR_RDB_CORRUPT', `a DUMP payload has at least 11 bytes, this one ${bytes.length}`, {
      offset: 0,
    });
  const footer = bytes.length - 10;
  const version = bytes.readUInt16LE(footer);
  const checksum = bytes.readBigUInt64LE(footer + 2);
  const valkey = version >= 80;
  if (version < 1 || (version > MAX_REDIS_RDB_VERSION && !VALKEY_RDB_VERSIONS.includes(version)))
    throw new RdbError('ERR_RDB_VERSION', `DUMP payload version ${version} is not supported`, { offset: footer });
  const verify = (options.verifyChecksum ?? true) && checksum !== 0n;
  if (verify) {
    const expected = crc64(bytes.subarray(0, footer + 2));
    if (expected !== checksum)
      throw new RdbError(
        'ERR_RDB_CHECKSUM',
        `the DUMP payload's CRC64 is 0x${checksum.toString(16)} but its bytes give 0x${expected.toString(16)}`,
        { offset: footer + 2 },
      );
  }
  const parser = new RdbParser({ ...options, verifyChecksum: false });
  beginValueOnly(parser, version, valkey);
  const events = parser.write(bytes.subarray(0, footer));
  if (!parser.done)
    throw new RdbError('ERR_RDB_TRUNCATED', 'the DUMP payload ends inside its value', {
      offset: footer,
      rdbType: bytes[0],
    });
  if (parser.takeRemainder().length > 0)
    throw new RdbError('ERR_RDB_CORRUPT', 'the DUMP payload has bytes between its value and its footer', {
      offset: parser.offset,
      rdbType: bytes[0],
    });
  return { version, checksum, checksumVerified: verify, parts: events as RdbEntryEvent[] };
}
