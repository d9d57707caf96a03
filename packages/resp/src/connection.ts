import { EventEmitter } from 'node:events';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions as TlsConnectionOptions, connect as tlsConnect } from 'node:tls';
import { abortable } from './abort.ts';
import { type BackoffOptions, exponentialBackoff, type ReconnectStrategy } from './backoff.ts';
import { RespDecoder, type RespDecoderOptions } from './decoder.ts';
import { type CommandTraceContext, commandChannel } from './diagnostics.ts';
import { type Command, CommandEncoder } from './encoder.ts';
import { ReplyError, RespError, type RespErrorCode, RespProtocolError } from './errors.ts';
import { isLogger, type Logger, noopLogger } from './logger.ts';
import { parseRedisUrl } from './url.ts';
import type { RespNode, RespValue } from './values.ts';

/** How decoded values look: every {@link RespDecoderOptions} option except the callbacks. */
export type DecoderMapping = Omit<RespDecoderOptions, 'onReply' | 'onPush'>;

/** Where a top-level in-band value goes: to the oldest command (`reply`) or to the push handlers (`push`). */
export type Classification = 'reply' | 'push';

/** Options of {@link RespConnection}. Explicit options override what the URL says. */
export interface RespConnectionOptions<Value = RespValue> {
  /** `redis://`, `rediss://` or `unix://` URL; see {@link parseRedisUrl}. */
  readonly url?: string | undefined;
  /** Default `127.0.0.1` (when neither `url` nor `path` is given). */
  readonly host?: string | undefined;
  /** Default 6379. */
  readonly port?: number | undefined;
  /** Unix socket path. */
  readonly path?: string | undefined;
  /** TLS: `true`, or options for `tls.connect` (ca, cert, key, servername, rejectUnauthorized...). */
  readonly tls?: boolean | TlsConnectionOptions | undefined;
  /** ACL user; `default` when only a password is given. */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** Database to SELECT after the handshake. Default 0. */
  readonly db?: number | undefined;
  /** Connection name (HELLO SETNAME / CLIENT SETNAME). */
  readonly name?: string | undefined;
  /** 3 (default): HELLO 3, falling back to RESP2 when the server has no HELLO. 2: RESP2 only. */
  readonly protocol?: 2 | 3 | undefined;
  /** How replies are decoded (strings, maps, limits...); the defaults of {@link RespDecoder}. */
  readonly decoder?: DecoderMapping | undefined;
  /** Time for TCP, TLS, handshake and `onConnect` together. Default 10 000 ms. */
  readonly connectTimeout?: number | undefined;
  /** Default timeout of every command, from `send()` to its reply. Default none. */
  readonly commandTimeout?: number | undefined;
  /** TCP keep-alive initial delay in ms, or `false`. Default 30 000. */
  readonly keepAlive?: number | false | undefined;
  /** Nagle off (default true): pipelined commands are flushed per tick anyway. */
  readonly noDelay?: boolean | undefined;
  /**
   * After an established connection is lost: `true` (default, {@link exponentialBackoff} with
   * its defaults), backoff options, your own strategy, or `false` to close instead.
   */
  readonly reconnect?: boolean | BackoffOptions | ReconnectStrategy | undefined;
  /** Commands sent while not connected wait for the (re)connection (default true) or fail at once. */
  readonly queueWhileDisconnected?: boolean | undefined;
  /** Most commands waiting to be written (while connecting, reconnecting or under backpressure). Default 100 000. */
  readonly maxQueueLength?: number | undefined;
  /**
   * Runs on every (re)connect after the handshake and before any queued command is written;
   * what it sends through `session` goes first. A rejection fails this connection attempt.
   */
  readonly onConnect?: ((session: ConnectSession<Value>) => Promise<void> | void) | undefined;
  /** Routes in-band values: return `'push'` for out-of-band ones (RESP2 pub/sub messages). See {@link RespConnection.classify}. */
  readonly classify?: ((value: Value) => Classification) | undefined;
  /**
   * Where connection events go (lost, reconnecting, restored, given up): `console`, pino, or any
   * {@link Logger}. Default: nowhere (the events are also emitted).
   */
  readonly logger?: Logger | undefined;
}

/** Options of {@link RespConnection.connect}. */
export interface ConnectOptions {
  /** Stops connecting: the call rejects with `ERR_RESP_ABORTED` and the attempt is given up. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link RespConnection.close}. */
export interface CloseOptions {
  /** How long to wait for the replies of the commands sent before, in ms. Default 5000. */
  readonly timeoutMs?: number | undefined;
  /** Stops waiting for replies when it fires; what is still unanswered is abandoned. */
  readonly signal?: AbortSignal | undefined;
  /** @deprecated the former name of `timeoutMs`. */
  readonly timeout?: number | undefined;
}

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'url',
  'host',
  'port',
  'path',
  'tls',
  'username',
  'password',
  'db',
  'name',
  'protocol',
  'decoder',
  'connectTimeout',
  'commandTimeout',
  'keepAlive',
  'noDelay',
  'reconnect',
  'queueWhileDisconnected',
  'maxQueueLength',
  'onConnect',
  'classify',
  'logger',
]);
const SEND_OPTION_NAMES: ReadonlySet<string> = new Set(['timeout', 'signal', 'untilPush', 'noReply']);
const CONNECT_OPTION_NAMES: ReadonlySet<string> = new Set(['signal']);
const CLOSE_OPTION_NAMES: ReadonlySet<string> = new Set(['timeoutMs', 'signal', 'timeout']);

/** The first key of `options` that is not in `known`, if any (a typo the caller must hear about). */
function unknownOption(options: object, known: ReadonlySet<string>): string | undefined {
  for (const key in options) if (!known.has(key)) return key;
  return undefined;
}

function unknownOptionError(where: string, key: string, known: ReadonlySet<string>): RespError {
  return failure('ERR_RESP_ARGUMENT', `${where} has no option "${key}"; it knows ${[...known].join(', ')}`);
}

/** What the server said in the handshake (HELLO 3); absent after a RESP2 fallback. */
export interface ServerInfo {
  /** `redis` or `valkey`. */
  readonly server?: string | undefined;
  readonly version?: string | undefined;
  readonly proto?: number | undefined;
  /** The connection's client id. */
  readonly id?: number | undefined;
  /** `standalone`, `cluster` or `sentinel`. */
  readonly mode?: string | undefined;
  /** `master` or `replica`. */
  readonly role?: string | undefined;
}

/** Passed to the `connect` event. */
export interface ConnectInfo {
  /** The protocol in use: 3 after HELLO 3, 2 after a fallback or with `protocol: 2`. */
  readonly protocol: 2 | 3;
  readonly server: ServerInfo | undefined;
  /** 0 for the first connection, else the reconnect attempt that succeeded. */
  readonly attempt: number;
}

/** Options of {@link RespConnection.send}. */
export interface SendOptions<Value = RespValue> {
  /** Milliseconds from now until the command fails with `ERR_RESP_TIMEOUT`; overrides `commandTimeout`. */
  readonly timeout?: number | undefined;
  /** Fails the command with `ERR_RESP_ABORTED` when it fires. */
  readonly signal?: AbortSignal | undefined;
  /**
   * The command has no in-band reply: its confirmations arrive as pushes (RESP3 SUBSCRIBE,
   * UNSUBSCRIBE...). While this command is the oldest unanswered one, every push (and every
   * in-band value routed to it) is passed here; return `true` for the last confirmation, which
   * resolves the promise with it. An in-band error reply rejects it. Pushes also reach the
   * `push` event as usual.
   */
  readonly untilPush?: ((value: Value) => boolean) | undefined;
  /**
   * The server sends nothing back (CLIENT REPLY OFF, REPLCONF ACK): the promise resolves once
   * the command is handed to the socket.
   */
  readonly noReply?: boolean | undefined;
}

/** The connection as `onConnect` sees it: commands sent here go before the queued ones. */
export interface ConnectSession<Value = RespValue> {
  readonly protocol: 2 | 3;
  readonly server: ServerInfo | undefined;
  /** 0 on the first connection, else the reconnect attempt. */
  readonly attempt: number;
  send<T = Value>(command: Command, options?: SendOptions<Value>): Promise<T>;
}

/** What {@link RespConnection.takeOver} hands over. */
export interface TakeOver<Value = RespValue> {
  /** The socket, paused, with no listener of ours left: attach yours (`error` first), then `resume()`. */
  readonly socket: Socket;
  /** Bytes read after the last reply and not decoded (for PSYNC: `$<len>\r\n` and RDB bytes). */
  readonly head: Buffer;
  /** The reply to the command given to `takeOver`, if any. */
  readonly reply: Value | undefined;
}

/** The state of a {@link RespConnection}. */
export type ConnectionStatus = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closing' | 'closed' | 'taken-over';

/** Events of {@link RespConnection}. */
export interface RespConnectionEvents<Value = RespValue> {
  /** Handshake and `onConnect` done; queued commands are being written. */
  connect: [info: ConnectInfo];
  /** A push (`>`) or an in-band value classified as `push`. */
  push: [value: Value];
  /** An established connection was lost; `reconnect` tells whether a reconnect follows. */
  disconnect: [info: { readonly cause: Error; readonly reconnect: boolean }];
  /** A reconnect attempt is scheduled after `delay` ms. */
  reconnecting: [info: { readonly attempt: number; readonly delay: number; readonly cause: Error }];
  /** The connection is over for good: closed, destroyed, given up, or taken over. */
  end: [info: { readonly cause: Error | undefined; readonly takenOver: boolean }];
  /** The socket accepts writes again after backpressure. */
  drain: [];
}

type Settle = (value: unknown) => void;

/** The upper-case name of a command, as errors and traces show it. */
function commandName(command: Command): string {
  const first = command[0];
  return typeof first === 'string'
    ? first.toUpperCase()
    : Buffer.isBuffer(first)
      ? first.toString('latin1').toUpperCase()
      : String(first);
}

/** A command between `send()` and its reply. */
class Pending {
  command: Command | null;
  readonly name: string;
  resolve: Settle;
  reject: (err: Error) => void;
  /** The promise is settled (reply, timeout, abort); a written command still expects its reply. */
  done = false;
  /** Never written: skip it when the queue is flushed. */
  cancelled = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  untilPush: ((value: never) => boolean) | undefined;
  noReply: boolean;
  takeOver = false;
  /** Called once settled: `close()` counts the replies it waits for. */
  onSettled: (() => void) | undefined = undefined;

  constructor(command: Command, resolve: Settle, reject: (err: Error) => void, options: SendOptions<never>) {
    this.command = command;
    this.name = commandName(command);
    this.resolve = resolve;
    this.reject = reject;
    this.untilPush = options.untilPush;
    this.noReply = options.noReply === true;
  }

  settle(err: Error | null, value?: unknown): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    if (err !== null) this.reject(err);
    else this.resolve(value);
    this.onSettled?.();
  }
}

/** A FIFO with O(1) shift. */
class Fifo<T> {
  items: (T | undefined)[] = [];
  head = 0;

  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  toArray(): T[] {
    return this.items.slice(this.head) as T[];
  }
  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}

function isErrorReply(value: unknown): ReplyError | undefined {
  if (value instanceof ReplyError) return value;
  if (typeof value === 'object' && value !== null && 'type' in value) {
    const node = value as RespNode;
    if (node.type === 'simple-error' || node.type === 'bulk-error') return node.value;
  }
  return undefined;
}

/** HELLO's map, whatever the decoder mapping, as a record with string keys. */
function helloFields(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const plain = (v: unknown): unknown => {
    if (typeof v === 'object' && v !== null && 'type' in v && !Array.isArray(v)) return (v as RespNode).value;
    return Buffer.isBuffer(v) ? v.toString('utf8') : v;
  };
  const put = (k: unknown, v: unknown) => {
    out[String(plain(k))] = plain(v);
  };
  const node = value as RespNode;
  if (value instanceof Map) for (const [k, v] of value) put(k, v);
  else if (Array.isArray(value)) for (let i = 0; i + 1 < value.length; i += 2) put(value[i], value[i + 1]);
  else if (typeof value === 'object' && value !== null && 'type' in value && node.type === 'map') {
    for (const [k, v] of node.value) put(k, v);
  } else if (typeof value === 'object' && value !== null) Object.assign(out, value);
  return out;
}

function serverInfo(reply: unknown): ServerInfo {
  const f = helloFields(reply);
  const info: Record<string, unknown> = {};
  for (const key of ['server', 'version', 'mode', 'role'] as const) if (typeof f[key] === 'string') info[key] = f[key];
  for (const key of ['proto', 'id'] as const) if (typeof f[key] === 'number') info[key] = f[key];
  return info as ServerInfo;
}

/**
 * Whether HELLO's refusal means "speak RESP2": the command is unknown (Redis < 6, or renamed
 * away), RESP3 is refused (NOPROTO), the ACL user may not run it (NOPERM), or the server asks
 * for authentication although HELLO carried it (servers that check auth before looking the
 * command up answer an unknown HELLO with NOAUTH).
 */
function helloUnavailable(err: ReplyError, sentAuth: boolean): boolean {
  if (/^ERR unknown command/i.test(err.message)) return true;
  if (err.prefix === 'NOPROTO' || err.prefix === 'NOPERM') return true;
  return err.prefix === 'NOAUTH' && sentAuth;
}

function handshakeError(step: string, err: unknown): RespError {
  if (err instanceof ReplyError) {
    let hint = '';
    if (err.prefix === 'WRONGPASS') hint = ': wrong user name or password';
    else if (err.prefix === 'NOAUTH')
      hint = ': the server requires a password (option password, or redis://user:password@host)';
    else if (err.prefix === 'NOPERM') hint = ': the ACL user may not run it';
    return new RespError('ERR_RESP_HANDSHAKE', `${step} was refused${hint} (${err.message})`, { cause: err });
  }
  if (err instanceof RespError) return err;
  return new RespError('ERR_RESP_HANDSHAKE', `${step} failed: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  });
}

const PACKAGE = '@redis-events/resp';

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message ? `: ${reason.message}` : '';
  return reason === undefined ? '' : `: ${String(reason)}`;
}

function abandonedError(commands: number, what: string): RespError {
  return new RespError(
    'ERR_RESP_ABANDONED',
    `${what}: ${commands} command${commands === 1 ? '' : 's'} got no reply and failed with ERR_RESP_CLOSED`,
    { abandoned: { commands } },
  );
}

function failure(code: RespErrorCode, message: string, cause?: unknown): RespError {
  // An aborted call carries name 'AbortError', as code written for AbortSignal expects.
  const name = code === 'ERR_RESP_ABORTED' ? 'AbortError' : undefined;
  return new RespError(code, message, cause === undefined ? { name } : { cause, name });
}

/**
 * A lean, pipelined connection to Redis or Valkey over TCP, TLS or a unix socket. Replies are
 * matched to commands in order; pushes go to the `push` event; a lost connection is
 * re-established with backoff; the raw socket can be taken over after a command.
 *
 * Commands are written in batches once per tick. While disconnected (or under write
 * backpressure) they wait in a bounded queue; commands already written when a connection is
 * lost fail with `ERR_RESP_CONNECTION_LOST` because the server may or may not have run them.
 *
 * @example
 * ```ts
 * const connection = new RespConnection({ url: 'redis://127.0.0.1:6379', commandTimeout: 2000 });
 * connection.on('push', (push) => console.log('push', push));
 * await connection.connect();
 * await connection.send(['SET', 'greeting', 'hello']);
 * console.log(await connection.send(['GET', 'greeting'])); // 'hello'
 * await connection.close();
 * ```
 */
export class RespConnection<Value = RespValue> extends EventEmitter<RespConnectionEvents<Value>> {
  /**
   * Routes each in-band top-level value before it is matched to a command: return `'push'` to
   * deliver it to the `push` event instead (a RESP2 subscriber gets `message` arrays in-band).
   * May be replaced at any time; `undefined` routes everything as replies.
   */
  classify: ((value: Value) => Classification) | undefined;

  readonly #target: { host: string; port: number; path: string | undefined; tls: TlsConnectionOptions | undefined };
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #db: number;
  readonly #name: string | undefined;
  readonly #wantProtocol: 2 | 3;
  readonly #connectTimeout: number;
  readonly #commandTimeout: number | undefined;
  readonly #keepAlive: number | false;
  readonly #noDelay: boolean;
  readonly #strategy: ReconnectStrategy | undefined;
  readonly #queueWhileDisconnected: boolean;
  readonly #maxQueueLength: number;
  readonly #onConnect: ((session: ConnectSession<Value>) => Promise<void> | void) | undefined;
  readonly #logger: Logger;

  // Hot-path state is in plain fields (see the README on private fields).
  private decoder: RespDecoder<Value>;
  private encoder: CommandEncoder = new CommandEncoder();
  private socket: Socket | null = null;
  private inflight: Fifo<Pending> = new Fifo<Pending>();
  private waiting: Fifo<Pending> = new Fifo<Pending>();
  private noReplyWritten: Pending[] = [];
  private flushScheduled = false;
  private needDrain = false;
  /** True from socket open until handshake and onConnect are done: user commands wait. */
  private handshaking = false;

  #status: ConnectionStatus = 'idle';
  #protocol: 2 | 3 = 3;
  #server: ServerInfo | undefined = undefined;
  #attempt = 0;
  #everConnected = false;
  #connecting: Promise<ConnectInfo> | undefined;
  #opening: { fail: (err: Error) => void } | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #takeOver:
    | {
        resolve: (t: TakeOver<Value>) => void;
        reject: (err: Error) => void;
        reply: Value | undefined;
        /** The last reply is in: hand over once the current chunk is done. */
        ready: boolean;
        /** No command: hand over when nothing is pending any more. */
        whenIdle: boolean;
      }
    | undefined;
  #idleWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #lastError: Error | undefined;
  /** pause() was called: it outlives a reconnect (applied after the new handshake). */
  #userPaused = false;
  /** The close under way, shared by every caller of close(). */
  #closing: Promise<void> | undefined;

  constructor(options: RespConnectionOptions<Value> | string = {}) {
    super();
    const o: RespConnectionOptions<Value> = typeof options === 'string' ? { url: options } : options;
    const unknown = unknownOption(o, OPTION_NAMES);
    if (unknown !== undefined) throw unknownOptionError('RespConnection', unknown, OPTION_NAMES);
    if (o.logger !== undefined && !isLogger(o.logger))
      throw failure('ERR_RESP_ARGUMENT', 'logger needs debug, warn and error methods (console, pino...)');
    this.#logger = o.logger ?? noopLogger;
    const fromUrl = o.url !== undefined ? parseRedisUrl(o.url) : undefined;
    const path = o.path ?? (o.host === undefined && o.port === undefined ? fromUrl?.path : undefined);
    const tls = o.tls ?? fromUrl?.tls ?? false;
    this.#target = {
      host: o.host ?? fromUrl?.host ?? '127.0.0.1',
      port: o.port ?? fromUrl?.port ?? 6379,
      path,
      tls: tls === false ? undefined : tls === true ? {} : tls,
    };
    this.#username = o.username ?? fromUrl?.username;
    this.#password = o.password ?? fromUrl?.password;
    this.#db = o.db ?? fromUrl?.db ?? 0;
    this.#name = o.name ?? fromUrl?.name;
    this.#wantProtocol = o.protocol ?? fromUrl?.protocol ?? 3;
    this.#connectTimeout = o.connectTimeout ?? 10_000;
    this.#commandTimeout = o.commandTimeout;
    this.#keepAlive = o.keepAlive ?? 30_000;
    this.#noDelay = o.noDelay ?? true;
    const reconnect = o.reconnect ?? true;
    this.#strategy =
      reconnect === false
        ? undefined
        : reconnect === true
          ? exponentialBackoff()
          : typeof reconnect === 'function'
            ? reconnect
            : exponentialBackoff(reconnect);
    this.#queueWhileDisconnected = o.queueWhileDisconnected ?? true;
    this.#maxQueueLength = o.maxQueueLength ?? 100_000;
    this.#onConnect = o.onConnect;
    this.classify = o.classify;
    if (!Number.isSafeInteger(this.#db) || this.#db < 0)
      throw failure('ERR_RESP_ARGUMENT', `db must be a non-negative integer, got ${this.#db}`);
    if (this.#wantProtocol !== 2 && this.#wantProtocol !== 3)
      throw failure('ERR_RESP_ARGUMENT', `protocol must be 2 or 3, got ${String(this.#wantProtocol)}`);
    for (const [name, value] of [
      ['connectTimeout', this.#connectTimeout],
      ['commandTimeout', this.#commandTimeout],
      ['maxQueueLength', this.#maxQueueLength],
    ] as const) {
      if (value !== undefined && !(value >= 0))
        throw failure('ERR_RESP_ARGUMENT', `${name} must be >= 0, got ${value}`);
    }
    this.decoder = new RespDecoder<Value>({
      ...o.decoder,
      onReply: (value) => this.onReply(value),
      onPush: (value) => this.onPush(value),
    });
  }

  /** Where the connection is in its life. */
  get status(): ConnectionStatus {
    return this.#status;
  }
  /** The protocol of the current (or last) connection. */
  get protocol(): 2 | 3 {
    return this.#protocol;
  }
  /** What HELLO said on the current (or last) connection; undefined with RESP2. */
  get server(): ServerInfo | undefined {
    return this.#server;
  }
  /** Commands sent and not yet answered (written or waiting). */
  get pendingCount(): number {
    return this.inflight.length + this.waiting.length;
  }
  /** True while the socket refuses more data; commands wait in the queue. See {@link drained}. */
  get needsDrain(): boolean {
    return this.needDrain;
  }
  /** True between {@link pause} and {@link resume} (a reconnect keeps it). */
  get isPaused(): boolean {
    return this.#userPaused;
  }

  // ---------------------------------------------------------------------------------------------
  // Connecting

  /**
   * Opens the socket, runs the handshake (HELLO 3 with AUTH and SETNAME, or the RESP2
   * fallback: AUTH, CLIENT SETNAME; then SELECT) and `onConnect`, then writes the queued
   * commands. A failed first connection is not retried: the promise rejects and the
   * connection can be connected again.
   *
   * `signal` stops connecting: the call rejects with `ERR_RESP_ABORTED` (named `'AbortError'`),
   * the attempt is given up (its socket destroyed) and commands that waited for it fail with
   * `ERR_RESP_CONNECT`.
   *
   * @throws {RespError} `ERR_RESP_CONNECT` (refused, TLS, timeout), `ERR_RESP_HANDSHAKE` (auth, SELECT, onConnect), `ERR_RESP_ABORTED`, `ERR_RESP_ARGUMENT`.
   */
  connect(options: ConnectOptions = {}): Promise<ConnectInfo> {
    const unknown = unknownOption(options, CONNECT_OPTION_NAMES);
    if (unknown !== undefined) return Promise.reject(unknownOptionError('connect()', unknown, CONNECT_OPTION_NAMES));
    const { signal } = options;
    if (signal === undefined || this.#status === 'ready') return this.#connect();
    const aborted = (reason: unknown): RespError =>
      failure('ERR_RESP_ABORTED', `connecting to ${this.#where()} was aborted${reasonText(reason)}`, reason);
    if (signal.aborted) return Promise.reject(aborted(signal.reason));
    return abortable(this.#connect(), signal, (reason) => {
      // Give the attempt up: nobody waits for it any more.
      if (this.#status === 'connecting' && !this.#everConnected)
        this.#opening?.fail(
          failure('ERR_RESP_CONNECT', `connecting to ${this.#where()} was aborted${reasonText(reason)}`, reason),
        );
      return aborted(reason);
    });
  }

  #connect(): Promise<ConnectInfo> {
    if (this.#status === 'ready') return Promise.resolve(this.#info());
    if (this.#connecting !== undefined) return this.#connecting;
    if (this.#status !== 'idle') {
      return Promise.reject(
        failure('ERR_RESP_STATE', `cannot connect a connection that is ${this.#status}; create a new one`),
      );
    }
    this.#status = 'connecting';
    this.#connecting = this.#open().then(
      () => {
        this.#connecting = undefined;
        return this.#info();
      },
      (err: Error) => {
        this.#connecting = undefined;
        if (this.#status === 'connecting') this.#status = 'idle';
        this.#rejectWaiting(err);
        throw err;
      },
    );
    return this.#connecting;
  }

  #info(): ConnectInfo {
    return { protocol: this.#protocol, server: this.#server, attempt: this.#attempt };
  }

  #createSocket(): { socket: Socket; event: 'connect' | 'secureConnect' } {
    const t = this.#target;
    if (t.tls) {
      const servername = t.tls.servername ?? (t.path === undefined && isIP(t.host) === 0 ? t.host : undefined);
      const socket = tlsConnect({
        ...(t.path !== undefined ? { path: t.path } : { host: t.host, port: t.port }),
        ...t.tls,
        ...(servername !== undefined ? { servername } : {}),
      });
      return { socket, event: 'secureConnect' };
    }
    const socket = t.path !== undefined ? netConnect({ path: t.path }) : netConnect({ host: t.host, port: t.port });
    return { socket, event: 'connect' };
  }

  #where(): string {
    const t = this.#target;
    return t.path !== undefined ? `unix:${t.path}` : `${t.host}:${t.port}${t.tls ? ' (TLS)' : ''}`;
  }

  /** One connection attempt: socket, handshake, onConnect. Resolves when ready. */
  #open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const { socket, event } = this.#createSocket();
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#opening = undefined;
        this.handshaking = false;
        if (this.socket === socket) this.#lost(socket, err);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(
            failure(
              'ERR_RESP_CONNECT',
              `connecting to ${this.#where()} took longer than connectTimeout ${this.#connectTimeout} ms`,
            ),
          ),
        this.#connectTimeout,
      );
      this.#opening = { fail };
      this.socket = socket;
      this.handshaking = true;
      this.decoder.reset();
      this.needDrain = false;
      this.#lastError = undefined;
      this.#attach(socket);
      socket.once(event, () => {
        if (settled) return;
        socket.setNoDelay(this.#noDelay);
        if (this.#keepAlive !== false) socket.setKeepAlive(true, this.#keepAlive);
        this.#handshake().then(
          () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            this.#opening = undefined;
            this.handshaking = false;
            this.#status = 'ready';
            this.#everConnected = true;
            const info = this.#info();
            this.#attempt = 0;
            if (this.#userPaused) {
              this.decoder.pause();
              socket.pause();
            }
            this.#writeWaiting();
            resolve();
            if (info.attempt > 0)
              this.#logger.warn(
                { package: PACKAGE, address: this.#where(), attempt: info.attempt },
                `reconnected to ${this.#where()}`,
              );
            this.#emitSafely('connect', info);
          },
          (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
        );
      });
    });
  }

  #attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.socket) return;
      try {
        this.decoder.feed(chunk);
      } catch (err) {
        if (socket === this.socket) socket.destroy(err as Error);
        if (!(err instanceof RespError)) throw err;
        return;
      }
      if (this.#takeOver?.ready) this.#completeTakeOver();
    });
    socket.on('error', (err: Error) => {
      if (socket === this.socket) this.#lastError = err;
    });
    socket.on('close', () => {
      if (socket !== this.socket) return;
      const cause =
        this.#lastError ?? failure('ERR_RESP_CONNECTION_LOST', `the server at ${this.#where()} closed the connection`);
      if (this.#opening) {
        this.#opening.fail(
          this.#status === 'connecting' && !this.#everConnected && !(cause instanceof RespError)
            ? failure('ERR_RESP_CONNECT', `cannot connect to ${this.#where()}: ${cause.message}`, cause)
            : cause instanceof RespError
              ? cause
              : failure('ERR_RESP_CONNECT', `connection to ${this.#where()} failed: ${cause.message}`, cause),
        );
      } else this.#lost(socket, cause);
    });
    socket.on('drain', () => {
      if (socket !== this.socket) return;
      this.needDrain = false;
      this.#writeWaiting();
      if (!this.needDrain) {
        for (const wake of this.#drainWaiters.splice(0)) wake();
        this.#emitSafely('drain');
      }
    });
  }

  async #handshake(): Promise<void> {
    let protocol: 2 | 3 = this.#wantProtocol;
    let server: ServerInfo | undefined;
    if (protocol === 3) {
      const hello: (string | number)[] = ['HELLO', 3];
      if (this.#password !== undefined) hello.push('AUTH', this.#username ?? 'default', this.#password);
      if (this.#name !== undefined) hello.push('SETNAME', this.#name);
      try {
        server = serverInfo(await this.#internal(hello));
      } catch (err) {
        if (!(err instanceof ReplyError) || !helloUnavailable(err, this.#password !== undefined))
          throw handshakeError('HELLO', err);
        protocol = 2;
      }
    }
    if (protocol === 2) {
      if (this.#password !== undefined) {
        const auth = this.#username !== undefined ? ['AUTH', this.#username, this.#password] : ['AUTH', this.#password];
        await this.#internal(auth).catch((err: unknown) => {
          throw handshakeError('AUTH', err);
        });
      }
      if (this.#name !== undefined) {
        await this.#internal(['CLIENT', 'SETNAME', this.#name]).catch((err: unknown) => {
          throw handshakeError('CLIENT SETNAME', err);
        });
      }
    }
    if (this.#db !== 0) {
      await this.#internal(['SELECT', this.#db]).catch((err: unknown) => {
        throw handshakeError(`SELECT ${this.#db}`, err);
      });
    }
    this.#protocol = protocol;
    this.#server = server;
    if (this.#onConnect) {
      const session: ConnectSession<Value> = {
        protocol,
        server,
        attempt: this.#attempt,
        send: <T = Value>(command: Command, options: SendOptions<Value> = {}) =>
          commandChannel.hasSubscribers
            ? commandChannel.tracePromise(() => this.#internal<T>(command, options), this.#traceContext(command))
            : this.#internal<T>(command, options),
      };
      try {
        await this.#onConnect(session);
      } catch (err) {
        if (err instanceof RespError && err.code !== 'ERR_RESP_REPLY') throw err;
        throw failure('ERR_RESP_HANDSHAKE', `onConnect failed: ${(err as Error)?.message ?? String(err)}`, err);
      }
    }
  }

  /** Sends ahead of the queue (handshake and onConnect). */
  #internal<T>(command: Command, options: SendOptions<Value> = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.socket === null || !this.handshaking) {
        reject(failure('ERR_RESP_STATE', 'the session of onConnect is over; use connection.send()'));
        return;
      }
      const pending = new Pending(command, resolve as Settle, reject, options as SendOptions<never>);
      this.#arm(pending, options);
      if (!pending.done) this.#write(pending);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Losing and regaining the connection

  /** The socket of an established (or half-open) connection is gone. */
  #lost(socket: Socket, cause: Error): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.flushScheduled = false;
    this.encoder.take();
    this.needDrain = false;
    const lost = failure('ERR_RESP_CONNECTION_LOST', `connection to ${this.#where()} lost: ${cause.message}`, cause);
    for (const pending of this.inflight.drain()) pending.settle(lost);
    for (const pending of this.noReplyWritten.splice(0)) pending.settle(lost);
    this.decoder.reset();
    if (this.#takeOver) {
      const takeOver = this.#takeOver;
      this.#takeOver = undefined;
      takeOver.reject(lost);
    }
    if (this.#status === 'ready') {
      const reconnect = this.#strategy !== undefined;
      this.#logger.warn(
        { package: PACKAGE, address: this.#where(), err: cause, reconnect },
        `connection to ${this.#where()} lost${reconnect ? '; reconnecting' : ''}`,
      );
      this.#emitSafely('disconnect', { cause, reconnect });
      if (reconnect) this.#scheduleReconnect(cause);
      else this.#finish(failure('ERR_RESP_CLOSED', `connection to ${this.#where()} lost and reconnect is off`, cause));
    } else if (this.#status === 'closing') {
      this.#finish(failure('ERR_RESP_CLOSED', `connection to ${this.#where()} lost while closing`, cause));
    }
  }

  #scheduleReconnect(cause: Error): void {
    const strategy = this.#strategy;
    const attempt = ++this.#attempt;
    let delay: number | false = false;
    try {
      delay = strategy ? strategy(attempt, cause) : false;
    } catch (err) {
      cause = err as Error;
    }
    if (delay === false || !(delay >= 0)) {
      this.#logger.error(
        { package: PACKAGE, address: this.#where(), err: cause, attempts: attempt - 1 },
        `gave up reconnecting to ${this.#where()}`,
      );
      this.#finish(
        failure(
          'ERR_RESP_CLOSED',
          `gave up reconnecting to ${this.#where()} after ${attempt - 1} attempts: ${cause.message}`,
          cause,
        ),
      );
      return;
    }
    this.#status = 'reconnecting';
    if (!this.#queueWhileDisconnected)
      this.#rejectWaiting(
        failure('ERR_RESP_CONNECTION_LOST', `not connected to ${this.#where()}: ${cause.message}`, cause),
      );
    this.#logger.debug(
      { package: PACKAGE, address: this.#where(), attempt, delayMs: delay, err: cause },
      `reconnecting to ${this.#where()} in ${delay} ms`,
    );
    this.#emitSafely('reconnecting', { attempt, delay, cause });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#status !== 'reconnecting') return;
      this.#status = 'connecting';
      this.#open().catch((err: Error) => {
        if (this.#status === 'connecting') this.#scheduleReconnect(err);
      });
    }, delay);
  }

  /** Ends the connection for good, failing whatever waits. */
  #finish(cause: Error | undefined, takenOver = false): void {
    if (this.#status === 'closed' || this.#status === 'taken-over') return;
    this.#status = takenOver ? 'taken-over' : 'closed';
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const error = cause ?? failure('ERR_RESP_CLOSED', 'the connection was closed');
    this.#rejectWaiting(error);
    for (const pending of this.inflight.drain()) pending.settle(error);
    for (const wake of this.#idleWaiters.splice(0)) wake();
    for (const wake of this.#drainWaiters.splice(0)) wake();
    const socket = this.socket;
    this.socket = null;
    if (socket && !takenOver) socket.destroy();
    this.#emitSafely('end', { cause, takenOver });
  }

  #rejectWaiting(err: Error): void {
    for (const pending of this.waiting.drain()) pending.settle(err);
  }

  /** Drops the current socket and reconnects (per the reconnect strategy), for example after a failed health check. */
  reconnect(cause?: Error): void {
    if (this.#status !== 'ready' || this.socket === null) return;
    const socket = this.socket;
    this.#lastError = cause ?? failure('ERR_RESP_CONNECTION_LOST', 'reconnect() was called');
    socket.destroy();
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends a command and resolves with its reply; an error reply rejects with a {@link ReplyError}
   * (whose `command` names the command). Commands sent in the same tick go out in one write.
   *
   * @example
   * ```ts
   * const [a, b] = await Promise.all([connection.send(['INCR', 'a']), connection.send(['INCR', 'b'])]);
   * await connection.send(['BLPOP', 'jobs', 0], { signal: AbortSignal.timeout(5000) });
   * await connection.send(['SUBSCRIBE', 'news'], { untilPush: (push) => isSubscribeConfirmation(push) });
   * ```
   * @throws {RespError} `ERR_RESP_ARGUMENT`, `ERR_RESP_TIMEOUT`, `ERR_RESP_ABORTED`, `ERR_RESP_CONNECTION_LOST`, `ERR_RESP_CLOSED`, `ERR_RESP_QUEUE_FULL`, `ERR_RESP_TAKEN_OVER`, or a {@link ReplyError}.
   */
  send<T = Value>(command: Command, options?: SendOptions<Value>): Promise<T> {
    if (commandChannel.hasSubscribers) return this.#traced<T>(command, options);
    return this.#send<T>(command, options);
  }

  /** {@link send} on the `redis-events:resp:command` TracingChannel, while someone listens. */
  #traced<T>(command: Command, options: SendOptions<Value> | undefined): Promise<T> {
    return commandChannel.tracePromise(() => this.#send<T>(command, options), this.#traceContext(command));
  }

  #traceContext(command: Command): CommandTraceContext {
    const t = this.#target;
    const valid = Array.isArray(command) && command.length > 0;
    return {
      command: valid ? commandName(command) : '',
      argsCount: valid ? command.length - 1 : 0,
      serverAddress: t.path ?? t.host,
      serverPort: t.path !== undefined ? undefined : t.port,
      database: this.#db,
    };
  }

  #send<T>(command: Command, options: SendOptions<Value> | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const refused = this.#refusal();
      if (refused) {
        reject(refused);
        return;
      }
      if (!Array.isArray(command) || command.length === 0) {
        reject(failure('ERR_RESP_ARGUMENT', 'send() takes a non-empty array: [name, ...arguments]'));
        return;
      }
      if (options !== undefined) {
        const unknown = unknownOption(options, SEND_OPTION_NAMES);
        if (unknown !== undefined) {
          reject(unknownOptionError('send()', unknown, SEND_OPTION_NAMES));
          return;
        }
      }
      const pending = new Pending(command, resolve as Settle, reject, (options ?? {}) as SendOptions<never>);
      if (options !== undefined || this.#commandTimeout !== undefined) this.#arm(pending, options ?? {});
      if (pending.done) return;
      if (this.#status === 'ready' && !this.handshaking && !this.needDrain && this.waiting.length === 0)
        this.#write(pending);
      else this.#enqueue(pending);
    });
  }

  #refusal(): RespError | undefined {
    switch (this.#status) {
      case 'closing':
      case 'closed':
        return failure('ERR_RESP_CLOSED', `the connection to ${this.#where()} is ${this.#status}`);
      case 'taken-over':
        return failure('ERR_RESP_TAKEN_OVER', 'the socket was taken over; this connection sends no more commands');
      case 'reconnecting':
        if (!this.#queueWhileDisconnected) {
          return failure(
            'ERR_RESP_CONNECTION_LOST',
            `not connected to ${this.#where()} (reconnecting; queueWhileDisconnected is off)`,
          );
        }
        break;
      default:
        break;
    }
    if (this.#takeOver)
      return failure('ERR_RESP_TAKEN_OVER', 'the socket is being taken over; this connection sends no more commands');
    return undefined;
  }

  #enqueue(pending: Pending): void {
    if (this.waiting.length >= this.#maxQueueLength) {
      pending.settle(
        failure(
          'ERR_RESP_QUEUE_FULL',
          `${this.waiting.length} commands already wait to be written (maxQueueLength); await some replies, or drained(), before sending more`,
        ),
      );
      return;
    }
    this.waiting.push(pending);
  }

  /** Sets up the timeout and abort signal of a command. */
  #arm(pending: Pending, options: SendOptions<Value>): void {
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        pending.cancelled = true;
        pending.settle(failure('ERR_RESP_ABORTED', `${pending.name} was aborted before it was sent`, signal.reason));
        return;
      }
      pending.signal = signal;
      pending.onAbort = () => {
        const written = pending.command === null;
        pending.cancelled = true;
        pending.settle(
          failure(
            'ERR_RESP_ABORTED',
            `${pending.name} was aborted${written ? ' (its reply will be ignored)' : ' before it was sent'}`,
            signal.reason,
          ),
        );
      };
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
    const timeout = options.timeout ?? this.#commandTimeout;
    if (timeout !== undefined) {
      if (!(timeout >= 0)) {
        pending.settle(failure('ERR_RESP_ARGUMENT', `timeout must be >= 0 ms, got ${timeout}`));
        return;
      }
      pending.timer = setTimeout(() => {
        const written = pending.command === null;
        pending.cancelled = true;
        pending.settle(
          failure(
            'ERR_RESP_TIMEOUT',
            `${pending.name} got no reply within ${timeout} ms${written ? ' (its reply will be ignored when it comes)' : ' (it was never sent)'}`,
          ),
        );
      }, timeout);
    }
  }

  /** Encodes a command for the next flush. */
  #write(pending: Pending): void {
    try {
      this.encoder.push(pending.command as Command);
    } catch (err) {
      pending.settle(err as Error);
      return;
    }
    pending.command = null;
    if (pending.noReply) this.noReplyWritten.push(pending);
    else this.inflight.push(pending);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Writes what was encoded since the last flush, in one write (or one corked batch). */
  private flush(): void {
    this.flushScheduled = false;
    const socket = this.socket;
    if (socket === null) return;
    const chunks = this.encoder.take();
    if (chunks.length === 0) return;
    let ok = true;
    if (chunks.length === 1) ok = socket.write(chunks[0] as Buffer);
    else {
      socket.cork();
      for (const chunk of chunks) ok = socket.write(chunk);
      socket.uncork();
    }
    if (!ok) this.needDrain = true;
    if (this.noReplyWritten.length > 0)
      for (const pending of this.noReplyWritten.splice(0)) pending.settle(null, undefined);
  }

  /** Writes the commands that waited (for a connection, the handshake or a drain). */
  #writeWaiting(): void {
    while (this.waiting.length > 0 && !this.needDrain && this.socket !== null && !this.handshaking) {
      const pending = this.waiting.shift() as Pending;
      if (pending.cancelled || pending.done) continue;
      this.#write(pending);
      if (this.encoder.pendingBytes > 4 * 1024 * 1024) this.flush();
    }
  }

  /** Resolves when the socket accepts writes again (at once when it does now). */
  drained(): Promise<void> {
    if (!this.needDrain || this.socket === null) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  /** Stops reading from the socket and delivering replies and pushes (backpressure). */
  pause(): void {
    this.#userPaused = true;
    this.decoder.pause();
    this.socket?.pause();
  }

  /** Delivers what was held by {@link pause} and reads again. */
  resume(): void {
    this.#userPaused = false;
    this.decoder.resume();
    if (this.#takeOver?.ready) {
      this.#completeTakeOver();
      return;
    }
    this.socket?.resume();
  }

  private onReply(value: Value): void {
    if (this.classify !== undefined) {
      let route: Classification;
      try {
        route = this.classify(value);
      } catch (err) {
        this.#rethrow(err);
        route = 'reply';
      }
      if (route === 'push') {
        this.onPush(value);
        return;
      }
    }
    for (;;) {
      const pending = this.inflight.peek();
      if (pending === undefined) {
        const err = new RespProtocolError(
          'ERR_RESP_PROTOCOL',
          'a reply arrived with no command waiting for it (use classify to route out-of-band values)',
          this.decoder.bytesConsumed - this.decoder.lastValueLength,
          '',
        );
        this.decoder.pause();
        this.socket?.destroy(err);
        return;
      }
      const error = isErrorReply(value);
      if (pending.untilPush !== undefined && error === undefined) {
        if (pending.done) {
          // Timed out or aborted while waiting for pushes: an in-band reply means the server moved on.
          this.inflight.shift();
          continue;
        }
        this.#offer(pending, value);
        return;
      }
      this.inflight.shift();
      if (error !== undefined) {
        error.command ??= pending.name;
        pending.settle(error);
        if (pending.takeOver) this.#abortTakeOver(error);
      } else {
        pending.settle(null, value);
        if (pending.takeOver) this.#readyTakeOver(value);
      }
      if (this.#takeOver?.whenIdle && !this.#takeOver.ready && this.pendingCount === 0) this.#readyTakeOver(undefined);
      this.#checkIdle();
      return;
    }
  }

  private onPush(value: Value): void {
    this.#emitSafely('push', value);
    const pending = this.inflight.peek();
    if (pending?.untilPush !== undefined) this.#offer(pending, value);
  }

  /** Offers a value to the push-settled command at the head: its last confirmation settles it. */
  #offer(pending: Pending, value: Value): void {
    let last: boolean;
    try {
      last = (pending.untilPush as (value: Value) => boolean)(value) === true;
    } catch (err) {
      this.inflight.shift();
      pending.settle(err as Error);
      return;
    }
    if (!last) return;
    this.inflight.shift();
    pending.settle(null, value);
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length > 0 && this.inflight.length === 0 && this.waiting.length === 0) {
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  #emitSafely<K extends keyof RespConnectionEvents<Value>>(event: K, ...args: RespConnectionEvents<Value>[K]): void {
    try {
      (this.emit as (event: K, ...args: RespConnectionEvents<Value>[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#rethrow(err);
    }
  }

  /** A listener threw: the protocol state must stay intact, so the error surfaces on its own. */
  #rethrow(err: unknown): void {
    queueMicrotask(() => {
      throw err;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Taking the socket over

  /**
   * Hands the raw socket to the caller: after the reply to `command` (for example PSYNC), or
   * with no command once every pending reply is in. Reading stops exactly after that reply;
   * `head` holds the bytes already read beyond it. The connection then ends (`taken-over`).
   * An error reply to `command` rejects and leaves the connection as it was.
   *
   * @example
   * ```ts
   * await connection.send(['REPLCONF', 'capa', 'eof', 'capa', 'psync2']);
   * const { socket, head, reply } = await connection.takeOver(['PSYNC', '?', '-1']);
   * // reply: 'FULLRESYNC <replid> <offset>'; head starts with '$<len>\r\n' or newlines
   * socket.on('error', onError);
   * socket.on('data', onRdbBytes);
   * onRdbBytes(head);
   * socket.resume();
   * ```
   * @throws {RespError} `ERR_RESP_STATE` unless ready, or when a takeover is under way; `ERR_RESP_CONNECTION_LOST`; a {@link ReplyError}.
   */
  takeOver(
    command?: Command,
    options: Omit<SendOptions<Value>, 'untilPush' | 'noReply'> = {},
  ): Promise<TakeOver<Value>> {
    if (this.#status !== 'ready' || this.socket === null || this.handshaking) {
      return Promise.reject(
        failure('ERR_RESP_STATE', `takeOver() needs a ready connection; this one is ${this.#status}`),
      );
    }
    if (this.#takeOver) return Promise.reject(failure('ERR_RESP_STATE', 'a takeover is already under way'));
    return new Promise<TakeOver<Value>>((resolve, reject) => {
      this.#takeOver = { resolve, reject, reply: undefined, ready: false, whenIdle: command === undefined };
      if (command === undefined) {
        if (this.pendingCount === 0) {
          this.#readyTakeOver(undefined);
          this.#completeTakeOver();
        }
        return;
      }
      const pending = new Pending(
        command,
        () => {},
        (err) => this.#abortTakeOver(err),
        {},
      );
      pending.takeOver = true;
      if (options.signal !== undefined || options.timeout !== undefined || this.#commandTimeout !== undefined)
        this.#arm(pending, options);
      if (pending.done) return;
      if (this.waiting.length === 0 && !this.needDrain) this.#write(pending);
      else this.waiting.push(pending);
    });
  }

  #readyTakeOver(reply: Value | undefined): void {
    const takeOver = this.#takeOver;
    if (!takeOver) return;
    takeOver.reply = reply;
    takeOver.ready = true;
    // Stop right after this reply: what follows belongs to the new owner.
    this.decoder.pause();
  }

  #abortTakeOver(err: Error): void {
    const takeOver = this.#takeOver;
    if (!takeOver || takeOver.ready) return;
    this.#takeOver = undefined;
    takeOver.reject(err);
  }

  #completeTakeOver(): void {
    const takeOver = this.#takeOver;
    const socket = this.socket;
    if (!takeOver || socket === null) return;
    this.#takeOver = undefined;
    socket.pause();
    for (const event of ['data', 'error', 'close', 'drain', 'connect', 'secureConnect', 'end', 'timeout'])
      socket.removeAllListeners(event);
    const head = this.decoder.takeRemaining();
    this.decoder.reset();
    this.socket = null;
    this.#finish(undefined, true);
    takeOver.resolve({ socket, head, reply: takeOver.reply });
  }

  // ---------------------------------------------------------------------------------------------
  // Closing

  /**
   * Closes in order: refuses new commands, writes what waits, waits for the reply of every
   * command sent before (within `timeoutMs`, 5000 ms by default, or until `signal` fires), then
   * ends the socket. Resolves when every reply came; otherwise the commands still waiting fail
   * with `ERR_RESP_CLOSED` and `close()` rejects with `ERR_RESP_ABANDONED`, whose `abandoned`
   * counts them (`{ commands: 2 }`): the server may or may not have run them. Commands whose
   * caller gave up (timeout, abort) are not waited for. Not connected (connecting,
   * reconnecting), there is nothing to drain: commands waiting for the connection are abandoned at
   * once. Every call shares the same close.
   *
   * @example
   * ```ts
   * try {
   *   await connection.close({ timeoutMs: 2000 });
   * } catch (err) {
   *   if (err instanceof RespError && err.code === 'ERR_RESP_ABANDONED') console.warn(err.abandoned); // { commands: 1 }
   * }
   * ```
   * @throws {RespError} `ERR_RESP_ABANDONED`, `ERR_RESP_ARGUMENT`.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const unknown = unknownOption(options, CLOSE_OPTION_NAMES);
    if (unknown !== undefined) return Promise.reject(unknownOptionError('close()', unknown, CLOSE_OPTION_NAMES));
    const timeoutMs = options.timeoutMs ?? options.timeout ?? 5000;
    if (!(timeoutMs >= 0))
      return Promise.reject(failure('ERR_RESP_ARGUMENT', `close() needs timeoutMs >= 0, got ${timeoutMs}`));
    if (this.#closing !== undefined) return this.#closing;
    if (this.#status === 'closed' || this.#status === 'taken-over') return Promise.resolve();
    this.#closing = this.#close(timeoutMs, options.signal);
    return this.#closing;
  }

  /** Commands whose caller still waits: written, or waiting to be written. */
  #awaited(): Pending[] {
    const out: Pending[] = [];
    for (const pending of this.inflight.toArray()) if (!pending.done) out.push(pending);
    for (const pending of this.waiting.toArray()) if (!pending.done && !pending.cancelled) out.push(pending);
    return out;
  }

  async #close(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const where = this.#where();
    if (this.#status !== 'ready' || this.socket === null) {
      const abandoned = this.#awaited().length;
      const socket = this.socket;
      const cause =
        abandoned > 0
          ? failure('ERR_RESP_CLOSED', `close() was called while not connected to ${where}; the command was never sent`)
          : undefined;
      this.#opening?.fail(failure('ERR_RESP_CLOSED', 'close() was called while connecting'));
      this.#finish(cause);
      socket?.destroy();
      if (abandoned > 0) throw abandonedError(abandoned, `close() was called while not connected to ${where}`);
      return;
    }
    this.#status = 'closing';
    const socket = this.socket;
    const deadline = performance.now() + timeoutMs;
    const awaited = this.#awaited();
    if (awaited.length > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        let left = awaited.length;
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          for (const pending of awaited) pending.onSettled = undefined;
          resolve();
        };
        for (const pending of awaited)
          pending.onSettled = () => {
            if (--left === 0) done();
          };
        const timer = setTimeout(done, timeoutMs);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    const abandoned = awaited.filter((pending) => !pending.done).length;
    const why = signal?.aborted ? 'when its signal fired' : `after ${timeoutMs} ms`;
    const cause =
      abandoned > 0
        ? failure(
            'ERR_RESP_CLOSED',
            `close() stopped waiting for the reply ${why}; the server at ${where} may or may not have run the command`,
          )
        : undefined;
    if (this.socket === socket && socket !== null) {
      // Detached first: the server closing its side now is the end we asked for, not a loss.
      this.socket = null;
      this.#finish(cause);
      await new Promise<void>((resolve) => {
        // The server answers our FIN at once; a server that does not is cut after a short while.
        const timer = setTimeout(() => socket.destroy(), Math.min(1000, Math.max(100, deadline - performance.now())));
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.end();
      });
    } else this.#finish(cause);
    if (abandoned > 0) throw abandonedError(abandoned, `close() stopped waiting for replies from ${where} ${why}`);
  }

  /** Closes at once: every pending command fails with `ERR_RESP_CLOSED` (carrying `cause`). */
  destroy(cause?: Error): void {
    if (this.#status === 'closed' || this.#status === 'taken-over') return;
    this.#opening?.fail(failure('ERR_RESP_CLOSED', 'destroy() was called while connecting', cause));
    this.#finish(failure('ERR_RESP_CLOSED', `the connection was destroyed${cause ? `: ${cause.message}` : ''}`, cause));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates a {@link RespConnection} and connects it.
 *
 * @example
 * ```ts
 * await using connection = await connect('redis://127.0.0.1:6379');
 * await connection.send(['PING']); // 'PONG'
 * ```
 * @throws {RespError} `ERR_RESP_CONNECT` or `ERR_RESP_HANDSHAKE`.
 */
export async function connect<Value = RespValue>(
  options: RespConnectionOptions<Value> | string,
): Promise<RespConnection<Value>> {
  const connection = new RespConnection<Value>(options);
  await connection.connect();
  return connection;
}
