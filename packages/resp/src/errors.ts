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
  /** The call's AbortSignal fired before it completed (the error's `name` is `'AbortError'`). */
  | 'ERR_RESP_ABORTED'
  /** `close()` gave up commands that were still waiting for their replies at its bound (see `abandoned`). */
  | 'ERR_RESP_ABANDONED'
  /** The socket was handed over by `takeOver()`; this connection no longer sends commands. */
  | 'ERR_RESP_TAKEN_OVER'
  /** The queue of commands waiting for a connection is full (`maxQueueLength`). */
  | 'ERR_RESP_QUEUE_FULL';

/**
 * Options of {@link RedisEventsError} and of every package error built on it.
 *
 * @example
 * ```ts
 * new PubSubError('ERR_PUBSUB_ABORTED', 'subscribe was aborted', { cause: signal.reason, name: 'AbortError' });
 * ```
 */
export interface RedisEventsErrorOptions extends ErrorOptions {
  /**
   * `'AbortError'` for the error of a call that its AbortSignal ended, so that code written for
   * `AbortSignal` (`err.name === 'AbortError'`) works; default: the class's name.
   */
  readonly name?: 'AbortError' | undefined;
  /**
   * What a `close()` or `shutdown()` had to give up, by kind, with how many of each
   * (`{ commands: 3 }`, `{ messages: 2, acks: 5 }`). Only on the error such a call rejects with.
   */
  readonly abandoned?: Readonly<Record<string, number>> | undefined;
}

/**
 * The base class of every error of every `@redis-events` package: `err instanceof
 * RedisEventsError` is the one check for "an error of ours", whichever package threw it and even
 * when two copies of a package are installed (instances carry a registered-symbol brand).
 *
 * - `code`: stable, `ERR_<PACKAGE>_<WHAT>` (`ERR_RESP_TIMEOUT`, `ERR_PUBSUB_NOPERM`...);
 * - `package`: the npm name of the package that threw it (`'@redis-events/pubsub'`);
 * - `cause`: the underlying error, if any (a failure is wrapped once, by the package the caller
 *   called);
 * - `name`: the class name, or `'AbortError'` when the caller's AbortSignal ended the call;
 * - `abandoned`: on the error of a `close()` that gave up work, what and how many.
 *
 * A package's base class passes its name and declares its codes; a subclass that wants
 * `instanceof` across duplicate installs declares its own `static brand` (a `Symbol.for` name),
 * and its `static errorName` gives instances their `name`.
 *
 * @example
 * ```ts
 * try {
 *   await subscription.close({ timeoutMs: 2000 });
 * } catch (err) {
 *   if (err instanceof RedisEventsError) logger.error({ code: err.code, package: err.package, abandoned: err.abandoned }, err.message);
 *   else throw err;
 * }
 * ```
 */
export class RedisEventsError extends Error {
  /** The registered symbol that marks instances of this class; subclasses may declare their own. */
  static readonly brand: symbol = Symbol.for('@redis-events/error');
  /** The `name` that instances of this class carry (unless they are abort errors). */
  static readonly errorName: string = 'RedisEventsError';

  /** The stable code of the error. */
  readonly code: string;
  /** The npm name of the package that threw it, `'@redis-events/resp'`... */
  readonly package: string;
  /** What a `close()` or `shutdown()` gave up, by kind (`{ commands: 3 }`); undefined otherwise. */
  readonly abandoned: Readonly<Record<string, number>> | undefined;

  constructor(packageName: string, code: string, message: string, options?: RedisEventsErrorOptions) {
    super(message, options !== undefined && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = options?.name ?? new.target.errorName;
    this.code = code;
    this.package = packageName;
    this.abandoned = options?.abandoned;
    // Every class on the way up that declares a brand marks the instance with it.
    for (let c: unknown = new.target; c !== Error && typeof c === 'function'; c = Object.getPrototypeOf(c)) {
      if (Object.hasOwn(c, 'brand')) Object.defineProperty(this, (c as typeof RedisEventsError).brand, { value: true });
    }
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this` is the class that instanceof was called on, possibly a subclass.
    // biome-ignore lint/complexity/noThisInStatic: dispatch on the receiving class is the point
    const target = this as typeof RedisEventsError;
    if (!Object.hasOwn(target, 'brand')) return Function.prototype[Symbol.hasInstance].call(target, value);
    return typeof value === 'object' && value !== null && target.brand in value;
  }
}

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
export class RespError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/resp.error');
  static override readonly errorName: string = 'RespError';
  declare readonly code: RespErrorCode;

  constructor(code: RespErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super('@redis-events/resp', code, message, options);
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
  static override readonly brand: symbol = Symbol.for('@redis-events/resp.error.protocol');
  static override readonly errorName: string = 'RespProtocolError';
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
  static override readonly brand: symbol = Symbol.for('@redis-events/resp.error.reply');
  static override readonly errorName: string = 'ReplyError';
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
