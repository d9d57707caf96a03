import { RedisEventsError, type RedisEventsErrorOptions } from '@redis-events/resp';

/** Stable codes carried by {@link ReplicationError} and {@link RdbError}. */
export type ReplicationErrorCode =
  /** The input ended before the RDB did (no EOF opcode, or a value cut in the middle). */
  | 'ERR_RDB_TRUNCATED'
  /** The bytes break the RDB format: a bad length (an LZF length its compressed bytes cannot produce), a damaged listpack, an impossible value. */
  | 'ERR_RDB_CORRUPT'
  /** Neither `REDIS` nor `VALKEY` magic, or a format version this parser does not know. */
  | 'ERR_RDB_VERSION'
  /** A value type byte this parser does not know for this format (the value cannot be skipped). */
  | 'ERR_RDB_UNKNOWN_TYPE'
  /** An opcode byte this parser does not know for this format. */
  | 'ERR_RDB_UNKNOWN_OPCODE'
  /** A known but unsupported construct: module values in the Redis 4.0 release-candidate format (type 6). */
  | 'ERR_RDB_UNSUPPORTED'
  /** The CRC64 trailer does not match the bytes. */
  | 'ERR_RDB_CHECKSUM'
  /** A length is above a configured limit (`maxBlobBytes`), so it was refused rather than buffered. */
  | 'ERR_RDB_LIMIT'
  /** Bytes arrived after the RDB ended, or the parser was used after it failed. */
  | 'ERR_RDB_STATE'
  /** A file could not be read. */
  | 'ERR_RDB_IO'
  /** The master broke the replication protocol (the framing of a snapshot transfer, the command stream...). */
  | 'ERR_REPLICATION_PROTOCOL'
  /** A wrong argument to a function of this package. */
  | 'ERR_REPLICATION_ARGUMENT'
  /** The master could not be reached or the connection failed during the handshake (retried). */
  | 'ERR_REPLICATION_CONNECT'
  /** The master refused the credentials, or the ACL user lacks a command replication needs. */
  | 'ERR_REPLICATION_AUTH'
  /** The master refuses to replicate to this listener (PSYNC unknown, disabled or refused). */
  | 'ERR_REPLICATION_REFUSED'
  /** The master cannot serve a replica right now (`-LOADING`, `-NOMASTERLINK`...): retried. */
  | 'ERR_REPLICATION_UNAVAILABLE'
  /** Nothing arrived within `readTimeout`, or a write waited longer than `writeTimeout` (retried). */
  | 'ERR_REPLICATION_TIMEOUT'
  /** The master closed or reset the connection (retried). */
  | 'ERR_REPLICATION_CONNECTION_LOST'
  /** The reconnect strategy gave up; the message says the last failure, `cause` is what it was caused by. */
  | 'ERR_REPLICATION_GAVE_UP'
  /** A call that does not fit the listener's state (a second consumer, start after close). */
  | 'ERR_REPLICATION_STATE'
  /** The call's AbortSignal fired (the error's `name` is `'AbortError'`, `cause` the signal's reason). */
  | 'ERR_REPLICATION_ABORTED'
  /** `close()` gave up events that had not been delivered at its bound (see `abandoned`). */
  | 'ERR_REPLICATION_ABANDONED';

const PACKAGE = '@redis-events/replication';
const BRAND = '@redis-events/replication.error';

/**
 * The base class of every error thrown by `@redis-events/replication`, a `RedisEventsError` of
 * `@redis-events/resp` (so `err instanceof RedisEventsError` is the one check for an error of any
 * redis-events package). `code` is stable; `message` says what went wrong and what to do;
 * `package` is `'@redis-events/replication'`. `instanceof` works across duplicate installs.
 *
 * @example
 * ```ts
 * try {
 *   for await (const event of parseRdbFile('dump.rdb')) handle(event);
 * } catch (err) {
 *   if (err instanceof ReplicationError && err.code === 'ERR_RDB_TRUNCATED') console.error('incomplete dump');
 *   else throw err;
 * }
 * ```
 */
export class ReplicationError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for(BRAND);
  static override readonly errorName: string = 'ReplicationError';
  declare readonly code: ReplicationErrorCode;

  constructor(code: ReplicationErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super(PACKAGE, code, message, options);
  }
}

/** The error of a call that its AbortSignal ended: `ERR_REPLICATION_ABORTED`, named `'AbortError'`. */
export function abortError(reason: unknown, what = 'the call'): ReplicationError {
  const said = reason instanceof Error ? reason.message : reason === undefined ? '' : String(reason);
  return new ReplicationError('ERR_REPLICATION_ABORTED', `${what} was aborted${said ? `: ${said}` : ''}`, {
    cause: reason,
    name: 'AbortError',
  });
}

/** Where in the RDB an {@link RdbError} happened. */
export interface RdbErrorContext {
  /** Byte offset from the start of the RDB (the magic is at 0) of the byte or value that failed. */
  readonly offset: number;
  /** The key whose value was being read, when the failure is inside a key's value. */
  readonly key?: Buffer | undefined;
  /** The type byte of that value, or the opcode byte, when known. */
  readonly rdbType?: number | undefined;
}

/**
 * An error in the RDB bytes, with the byte offset and, inside a value, the key and its type.
 * The message names all three, so a log line is enough to find the place with `xxd -s <offset>`.
 *
 * @example
 * ```ts
 * try {
 *   await collectRdb(parseRdbFile('broken.rdb'));
 * } catch (err) {
 *   if (err instanceof RdbError) console.error(err.code, err.offset, err.key?.toString());
 * }
 * ```
 */
export class RdbError extends ReplicationError {
  static override readonly brand: symbol = Symbol.for(`${BRAND}.rdb`);
  static override readonly errorName: string = 'RdbError';
  readonly offset: number;
  readonly key: Buffer | undefined;
  readonly rdbType: number | undefined;

  constructor(code: ReplicationErrorCode, message: string, context: RdbErrorContext, options?: ErrorOptions) {
    super(code, `${message} ${describeContext(context)}`, options);
    this.offset = context.offset;
    this.key = context.key;
    this.rdbType = context.rdbType;
  }
}

function describeContext(context: RdbErrorContext): string {
  const parts = [`at byte offset ${context.offset}`];
  if (context.key) parts.push(`in the value of key ${printableKey(context.key)}`);
  if (context.rdbType !== undefined) parts.push(`(type byte ${context.rdbType})`);
  return `(${parts.join(' ')})`;
}

/** A key for messages: text when printable, else hex; long keys are shortened. */
export function printableKey(key: Buffer): string {
  const head = key.subarray(0, 64);
  const text = head.toString('latin1');
  const shown = /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : `0x${head.toString('hex')}`;
  return key.length > 64 ? `${shown}... (${key.length} bytes)` : shown;
}

/**
 * Where in the life of a replica link a {@link ReplicationLinkError} happened: opening the
 * socket, the handshake, the PSYNC reply, the snapshot transfer, or the command stream.
 */
export type LinkPhase = 'connect' | 'handshake' | 'psync' | 'transfer' | 'stream';

/**
 * A failure of the link to the master, with the master's address and the phase it happened in
 * (`connect`, `handshake`, `psync`, `transfer`, `stream`). Listeners emit these in their
 * `reconnecting` events (retried failures) or as their final error.
 *
 * @example
 * ```ts
 * listener.on('error', (err) => {
 *   if (err instanceof ReplicationLinkError) console.error(err.code, err.master, err.phase, err.message);
 * });
 * ```
 */
export class ReplicationLinkError extends ReplicationError {
  static override readonly brand: symbol = Symbol.for(`${BRAND}.link`);
  static override readonly errorName: string = 'ReplicationLinkError';
  /** `host:port` (or the unix socket path) of the master. */
  readonly master: string;
  readonly phase: LinkPhase;

  constructor(code: ReplicationErrorCode, message: string, master: string, phase: LinkPhase, options?: ErrorOptions) {
    super(code, `${message} (master ${master}, ${phase})`, options);
    this.master = master;
    this.phase = phase;
  }
}
