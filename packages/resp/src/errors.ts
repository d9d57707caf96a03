/** Stable codes carried by {@link RespError} and its subclasses. */
export type RespErrorCode =
  /** The bytes are not valid RESP (bad type byte, bad length, missing CRLF...). See {@link RespProtocolError}. */
  | 'ERR_RESP_PROTOCOL'
  /** The bytes are valid RESP but exceed a configured limit (bulk length, aggregate length, depth, line length). */
  | 'ERR_RESP_LIMIT'
  /** The decoder failed earlier and refuses input until `reset()`. */
  | 'ERR_RESP_DECODER_FAILED'
  /** The server answered with an error reply (`-ERR ...`, `!21\r\n...`). See {@link ReplyError}. */
  | 'ERR_RESP_REPLY'
  /** A wrong argument to a function of this package (a command argument, an option, a URL). */
  | 'ERR_RESP_ARGUMENT'
  /** The call does not fit the current state (for example taking over a socket twice). */
  | 'ERR_RESP_STATE'
  /** The socket could not be opened (refused, DNS, TLS) or the connect timeout ran out. */
  | 'ERR_RESP_CONNECT'
  /** The server rejected the handshake (HELLO, AUTH, SELECT, CLIENT SETNAME) or `onConnect` failed. */
  | 'ERR_RESP_HANDSHAKE'
  /** The connection dropped after the command was written: the server may or may not have run it. */
  | 'ERR_RESP_CONNECTION_LOST'
  /** The connection was closed (`close()`, `destroy()`) or gave up reconnecting. */
  | 'ERR_RESP_CLOSED'
  /** The command's timeout ran out before its reply arrived. */
  | 'ERR_RESP_TIMEOUT'
  /** The command's AbortSignal fired before its reply arrived. */
  | 'ERR_RESP_ABORTED'
  /** The socket was handed over by `takeOver()`; this connection no longer sends commands. */
  | 'ERR_RESP_TAKEN_OVER'
  /** The queue of commands waiting for a connection is full (`maxQueueLength`). */
  | 'ERR_RESP_QUEUE_FULL';

const brand: unique symbol = Symbol.for('@redis-events/resp.error');

/**
 * The base class of every error this package throws or rejects with. `code` is stable and
 * `message` says what went wrong and what to do. `instanceof` works across duplicate installs
 * of the package.
 *
 * @example
 * ```ts
 * try {
 *   await connection.send(['GET', 'k'], { timeout: 100 });
 * } catch (err) {
 *   if (err instanceof RespError && err.code === 'ERR_RESP_TIMEOUT') retryLater();
 * }
 * ```
 */
export class RespError extends Error {
  override readonly name: string = 'RespError';
  readonly code: RespErrorCode;

  constructor(code: RespErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  /** The `name` that instances of this class carry; `instanceof` compares it across installs. */
  static readonly errorName: string = 'RespError';

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || !(brand in value)) return false;
    // `this` is the class that instanceof was called on, possibly a subclass.
    // biome-ignore lint/complexity/noThisInStatic: dispatch on the receiving class is the point
    const target = this as typeof RespError;
    return target === RespError || (value as { name?: unknown }).name === target.errorName;
  }
}

/** Shows up to `max` bytes as printable ASCII, with `\r`, `\n` and `\xNN` escapes. */
export function printable(bytes: Uint8Array, max = 32): string {
  let out = '';
  const end = Math.min(bytes.length, max);
  for (let i = 0; i < end; i++) {
    const b = bytes[i] as number;
    if (b === 13) out += '\\r';
    else if (b === 10) out += '\\n';
    else if (b >= 32 && b < 127 && b !== 92) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > max ? `${out}...` : out;
}

/**
 * The server sent bytes that are not valid RESP (`code` `ERR_RESP_PROTOCOL`), or valid RESP
 * beyond a configured limit (`code` `ERR_RESP_LIMIT`). The decoder that threw it refuses further
 * input until `reset()`; a connection closes and reconnects.
 *
 * @example
 * ```ts
 * try {
 *   decoder.feed(Buffer.from(':12a\r\n'));
 * } catch (err) {
 *   if (err instanceof RespProtocolError) console.log(err.offset, err.reason); // 3 "invalid digit ..."
 * }
 * ```
 */
export class RespProtocolError extends RespError {
  static override readonly errorName: string = 'RespProtocolError';
  override readonly name: string = 'RespProtocolError';
  /** Offset in the stream (bytes fed since construction or `reset()`) of the offending byte. */
  readonly offset: number;
  /** What is wrong, without the offset. */
  readonly reason: string;
  /** Up to 32 bytes of input from the offending byte on, escaped (`\r`, `\n`, `\xNN`). */
  readonly excerpt: string;

  constructor(
    code: 'ERR_RESP_PROTOCOL' | 'ERR_RESP_LIMIT',
    reason: string,
    offset: number,
    excerpt: string,
    options?: ErrorOptions,
  ) {
    super(
      code,
      `${code === 'ERR_RESP_LIMIT' ? 'RESP limit exceeded' : 'invalid RESP'} at byte ${offset}: ${reason}${excerpt ? ` (input: "${excerpt}")` : ''}`,
      options,
    );
    this.offset = offset;
    this.reason = reason;
    this.excerpt = excerpt;
  }
}

const PREFIX = /^[A-Z][A-Z0-9_-]*$/;

/**
 * An error reply from the server (`-WRONGTYPE ...` or the RESP3 bulk error `!`). Inside decoded
 * values it is a value like any other (an element of an EXEC result, for example); a
 * connection rejects a command's promise with it when it is the whole reply.
 *
 * Construction skips the stack trace: it would only show decoder internals.
 *
 * @example
 * ```ts
 * try {
 *   await connection.send(['INCR', 'a-list']);
 * } catch (err) {
 *   if (err instanceof ReplyError && err.prefix === 'WRONGTYPE') console.log(err.command); // "INCR"
 * }
 * ```
 */
export class ReplyError extends RespError {
  static override readonly errorName: string = 'ReplyError';
  override readonly name: string = 'ReplyError';
  /**
   * The first word of the message when it is an upper-case code (`ERR`, `WRONGTYPE`, `MOVED`,
   * `NOGROUP`, `NOPERM`...), else `undefined` (for example a Lua error text).
   */
  readonly prefix: string | undefined;
  /** True for a RESP3 bulk error (`!`), false for a simple error (`-`). */
  readonly bulk: boolean;
  /** The command that got this reply, set by a connection (name only, arguments are never kept). */
  command: string | undefined;

  constructor(message: string, bulk = false) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super('ERR_RESP_REPLY', message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    const space = message.indexOf(' ');
    const first = space < 0 ? message : message.slice(0, space);
    this.prefix = PREFIX.test(first) ? first : undefined;
    this.bulk = bulk;
    this.command = undefined;
  }
}
