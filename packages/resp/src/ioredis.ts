// `@redis-events/resp/ioredis`: what the packages that take an ioredis client share. Only types
// come from ioredis (an optional peer dependency): this module loads without it, and works with
// whichever copy of ioredis 6 the user's client comes from (clusters are told apart by flag,
// not by class).
import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions as TlsOptions, connect as tlsConnect } from 'node:tls';
import type { Cluster, ClusterOptions, Redis, RedisKey, RedisOptions } from 'ioredis';
import { RespError } from './errors.ts';

/** ioredis 6's reply mappings (its `ReplyMappingMode`, which it does not export). */
type ReplyMapping = 'legacy' | 'resp3';

/**
 * An ioredis 6 client: a `Redis` (standalone or Sentinel) or a `Cluster`, RESP2 or RESP3, with
 * either reply mapping.
 *
 * @example
 * ```ts
 * import { Cluster, Redis } from 'ioredis';
 * import type { RedisClient } from '@redis-events/resp/ioredis';
 *
 * const clients: RedisClient[] = [new Redis(), new Cluster([{ host: '127.0.0.1', port: 7000 }])];
 * ```
 */
export type RedisClient = Redis<ReplyMapping> | Cluster<ReplyMapping>;

/**
 * True for an ioredis `Cluster`. Checked by its `isCluster` flag rather than by class, so a
 * client from another copy of ioredis is recognised too.
 *
 * @example
 * ```ts
 * const nodes = isCluster(client) ? client.nodes('master') : [client];
 * ```
 */
export function isCluster(client: unknown): client is Cluster<ReplyMapping> {
  return typeof client === 'object' && client !== null && (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * True when `value` looks like an ioredis client (`Redis` or `Cluster`, any copy of ioredis):
 * for checking an argument before using it.
 *
 * @example
 * ```ts
 * if (!isRedisClient(client)) throw new TypeError('pass an ioredis Redis or Cluster');
 * ```
 */
export function isRedisClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { call?: unknown }).call === 'function' &&
    typeof (value as { duplicate?: unknown }).duplicate === 'function' &&
    typeof (value as { status?: unknown }).status === 'string'
  );
}

// -------------------------------------------------------------------------------------------------
// Addresses

type NodeLike = string | number | { host?: string | undefined; port?: number | string | undefined };

function nodeAddress(node: NodeLike): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  if (typeof node === 'string') {
    if (/^\d+$/.test(node)) return `127.0.0.1:${node}`;
    try {
      const url = new URL(node.includes('://') ? node : `redis://${node}`);
      return `${url.hostname || '127.0.0.1'}:${url.port || 6379}`;
    } catch {
      return node;
    }
  }
  return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
}

/**
 * Where a client connects, for messages: `127.0.0.1:6379`, `127.0.0.1:6380 (TLS)`,
 * `unix:/run/redis.sock`, `sentinel master "mymaster" via 10.0.0.1:26379`, or
 * `cluster 10.0.0.1:7000,10.0.0.2:7000` (its startup nodes).
 *
 * @example
 * ```ts
 * describeAddress(new Redis({ host: 'cache', port: 6380, lazyConnect: true })); // => 'cache:6380'
 * ```
 */
export function describeAddress(client: RedisClient): string {
  if (isCluster(client)) {
    const nodes = (client as unknown as { startupNodes?: NodeLike[] }).startupNodes ?? [];
    const tls = (client.options as ClusterOptions).redisOptions?.tls ? ' (TLS)' : '';
    return `cluster ${nodes.map(nodeAddress).join(',') || '(no startup nodes)'}${tls}`;
  }
  const options = client.options as RedisOptions & {
    sentinels?: NodeLike[] | null | undefined;
    name?: string | undefined;
    path?: string | undefined;
  };
  if (options.sentinels && options.sentinels.length > 0)
    return `sentinel master "${options.name ?? 'mymaster'}" via ${options.sentinels.map(nodeAddress).join(',')}`;
  if (options.path) return `unix:${options.path}`;
  return `${options.host ?? '127.0.0.1'}:${options.port ?? 6379}${options.tls ? ' (TLS)' : ''}`;
}

// -------------------------------------------------------------------------------------------------
// Failures

/**
 * The first word of a Redis error reply (`NOSCRIPT`, `WRONGTYPE`, `MOVED`...) when it is an
 * upper-case code, else undefined. Reads the error's message, so it works for ioredis's and
 * this package's `ReplyError`, and for an error that carries a reply's text.
 *
 * @example
 * ```ts
 * replyPrefix(new Error('LOADING Redis is loading the dataset in memory')); // => 'LOADING'
 * replyPrefix(new Error('connect ECONNREFUSED 127.0.0.1:6379')); // => undefined
 * ```
 */
export function replyPrefix(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const message = err.message;
  const space = message.indexOf(' ');
  const first = space === -1 ? message : message.slice(0, space);
  return /^[A-Z][A-Z0-9_-]+$/.test(first) ? first : undefined;
}

// Error reply codes that mean "the server cannot do it now; the same call can succeed later".
const TRANSIENT_REPLIES = new Set([
  'LOADING',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'MASTERDOWN',
  'READONLY',
  'BUSY',
  'UNBLOCKED',
  'MOVED',
  'ASK',
  'NOREPLICAS',
  'NOTREADY',
]);

// errno codes of a connection that was lost, refused, or could not be opened yet.
const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

// What ioredis says when a connection is gone or not there yet (its errors carry no code).
const TRANSIENT_MESSAGES = [
  'Connection is closed',
  'Command timed out',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'max retries per request',
  'MaxRetriesPerRequest',
  'None of startup nodes is available',
  'Failed to refresh slots cache',
  "Cluster isn't ready",
  // A Cluster client stops following MOVED/ASK while nodes disagree about a moving slot.
  'Too many Cluster redirections',
  'socket closed unexpectedly',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
];

// This package's own codes for the same situations (a RespConnection under a package).
const TRANSIENT_RESP_CODES = new Set(['ERR_RESP_CONNECT', 'ERR_RESP_CONNECTION_LOST', 'ERR_RESP_TIMEOUT']);

/**
 * True for a failure that goes away on its own, so that the same call can succeed later: a lost,
 * refused or timed-out connection, a server that is loading, failing over or busy (`LOADING`,
 * `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`, `BUSY`, `UNBLOCKED`, `MOVED`/`ASK` that
 * reached the caller, "Too many Cluster redirections"...). False for everything else, including
 * errors that retrying cannot fix (`WRONGTYPE`, `NOPERM`, `OOM`, a syntax error) and aborts.
 *
 * Whether a write that failed this way may have been applied is another question: a command
 * whose connection dropped after it was sent may have run.
 *
 * @example
 * ```ts
 * try {
 *   await client.xadd('orders', '*', 'body', '1');
 * } catch (err) {
 *   if (isTransientError(err)) await delay(backoff(attempt, err as Error) || 0, { signal });
 *   else throw err;
 * }
 * ```
 */
export function isTransientError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError') return false;
  if (err instanceof RespError) {
    if (err.code === 'ERR_RESP_REPLY') return TRANSIENT_REPLIES.has(replyPrefix(err) ?? '');
    return TRANSIENT_RESP_CODES.has(err.code);
  }
  const prefix = replyPrefix(err);
  if (prefix !== undefined && TRANSIENT_REPLIES.has(prefix)) return true;
  const errno = (err as { code?: unknown }).code;
  if (typeof errno === 'string' && TRANSIENT_ERRNO.has(errno)) return true;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  const message = err.message;
  return TRANSIENT_MESSAGES.some((m) => message.includes(m));
}

// -------------------------------------------------------------------------------------------------
// Scripts

/**
 * Options of a {@link LuaScript}.
 *
 * @example
 * ```ts
 * const options: LuaScriptOptions = { name: 'append', keys: 1 };
 * ```
 */
export interface LuaScriptOptions {
  /** A name for messages. Default `script <first 8 hex digits of the SHA1>`. */
  readonly name?: string | undefined;
  /** How many keys every call passes; checked on each call. Default: any number. */
  readonly keys?: number | undefined;
}

/**
 * A Lua script and its SHA1, run with {@link runScript}.
 *
 * @example
 * ```ts
 * const INCR_BY_TWO = new LuaScript("return redis.call('INCRBY', KEYS[1], 2)", { name: 'incr-by-two', keys: 1 });
 * ```
 */
export class LuaScript {
  readonly source: string;
  readonly sha: string;
  readonly name: string;
  readonly keys: number | undefined;

  constructor(source: string, options: LuaScriptOptions = {}) {
    if (typeof source !== 'string' || source.length === 0)
      throw new RespError('ERR_RESP_ARGUMENT', 'a LuaScript needs the script source as a non-empty string');
    if (options.keys !== undefined && !(Number.isSafeInteger(options.keys) && options.keys >= 0))
      throw new RespError('ERR_RESP_ARGUMENT', `keys must be a whole number >= 0, got ${options.keys}`);
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
    this.name = options.name ?? `script ${this.sha.slice(0, 8)}`;
    this.keys = options.keys;
  }
}

/**
 * Options of {@link runScript}.
 *
 * @example
 * ```ts
 * const reply = await runScript(client, READ, ['k'], [], { buffers: true }); // bulk strings as Buffers
 * ```
 */
export interface RunScriptOptions {
  /** Bulk strings of the reply as Buffers (ioredis's `callBuffer`). Default false: strings. */
  readonly buffers?: boolean | undefined;
}

type Call = (command: string, ...args: (RedisKey | string | number | Buffer)[]) => Promise<unknown>;

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

function isNoPermission(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOPERM');
}

/**
 * Runs Lua scripts on one client with EVALSHA, in the order of the calls. Get the runner of a
 * client with {@link ScriptRunner.for} (one per client, shared by every caller), or call
 * {@link runScript}.
 *
 * "EVALSHA, and on NOSCRIPT send it again as EVAL" alone lets later calls overtake the one sent
 * again (a clear sent after an append whose script was not cached yet). ioredis's own
 * `defineCommand` has the same gap in another form: it sends a script's first call on each
 * connection as EVAL, so after a SCRIPT FLUSH a script new to the connection runs at once while
 * calls of the scripts it knew come back NOSCRIPT and run later. So the runner keeps every call
 * uniform:
 *
 * - before its first call, and whenever a script new to it is run, it loads every script it
 *   knows (SCRIPT LOAD, on every master of a Cluster); calls made meanwhile wait and then go out
 *   in the order they were made;
 * - a call that meets NOSCRIPT (the server restarted, failed over, or flushed its scripts) is
 *   sent again as EVAL; the calls already on their way meet it too and follow in order, and the
 *   scripts are loaded again for the calls after them;
 * - for a user without the SCRIPT command (ACL), calls go as EVALSHA and are sent again as EVAL
 *   on NOSCRIPT (once per script per server): in order except when the server has some of the
 *   scripts and not others (a script first run after a SCRIPT FLUSH while others are in flight).
 *
 * Commands that are not scripts can still overtake a call sent again: keep a sequence that must
 * stay ordered in scripts, or await each call.
 */
export class ScriptRunner {
  readonly #client: RedisClient;
  readonly #scripts = new Map<string, LuaScript>();
  #loaded = false;
  #loading: Promise<void> | undefined;
  /** SCRIPT LOAD was refused (NOPERM): no more loads; NOSCRIPT is met with EVAL. */
  #canLoad = true;

  private constructor(client: RedisClient) {
    this.#client = client;
  }

  static readonly #runners = new WeakMap<object, ScriptRunner>();

  /**
   * The runner of a client (created on first use), knowing `scripts` from now on so that they are
   * loaded together before the first call.
   *
   * @example
   * ```ts
   * const runner = ScriptRunner.for(client, [APPEND, READ, CLEAR]);
   * await runner.run(APPEND, ['events:orders'], [payload]);
   * ```
   */
  static for(client: RedisClient, scripts: readonly LuaScript[] = []): ScriptRunner {
    let runner = ScriptRunner.#runners.get(client);
    if (runner === undefined) {
      runner = new ScriptRunner(client);
      ScriptRunner.#runners.set(client, runner);
    }
    for (const script of scripts) runner.#know(script);
    return runner;
  }

  #know(script: LuaScript): void {
    if (this.#scripts.has(script.sha)) return;
    this.#scripts.set(script.sha, script);
    // A script the server may not have: load it (with the others) before the next call.
    this.#loaded = false;
    this.#loading = undefined;
  }

  async #load(): Promise<void> {
    const client = this.#client;
    const sources = [...this.#scripts.values()].map((s) => s.source);
    try {
      let nodes: { call: Call }[] = [client as unknown as { call: Call }];
      if (isCluster(client)) {
        if (client.status !== 'ready') await client.call('PING');
        nodes = client.nodes('master') as unknown as { call: Call }[];
      }
      await Promise.all(nodes.flatMap((node) => sources.map((source) => node.call('SCRIPT', 'LOAD', source))));
    } catch (err) {
      // The server is away (calls fail on their own, or meet NOSCRIPT once it is back), or the
      // user may not run SCRIPT: then calls go EVALSHA, and EVAL where the server lacks the script.
      if (isNoPermission(err)) this.#canLoad = false;
    }
  }

  #ready(): Promise<void> {
    if (this.#loading === undefined) {
      const loading = this.#load();
      // The first reaction: calls waiting on the load resume after `loaded` is set, in order.
      void loading.then(() => {
        if (this.#loading === loading) this.#loaded = true;
      });
      this.#loading = loading;
    }
    return this.#loading;
  }

  /**
   * Runs a script: `keys` are its KEYS, `args` its ARGV.
   *
   * @example
   * ```ts
   * const swapped = await ScriptRunner.for(client).run(SWAP, ['config:mode'], ['maintenance']);
   * ```
   * @throws {RespError} `ERR_RESP_ARGUMENT` when the number of keys differs from the script's `keys`;
   *   otherwise whatever ioredis rejects with (the script's error reply, a connection error).
   */
  async run(
    script: LuaScript,
    keys: readonly RedisKey[],
    args: readonly (string | number | Buffer)[],
    options: RunScriptOptions = {},
  ): Promise<unknown> {
    if (script.keys !== undefined && keys.length !== script.keys)
      throw new RespError('ERR_RESP_ARGUMENT', `${script.name} takes ${script.keys} keys, got ${keys.length}`);
    this.#know(script);
    if (!this.#loaded && this.#canLoad) await this.#ready();
    const client = this.#client;
    const call = (options.buffers === true ? client.callBuffer : client.call).bind(client) as Call;
    try {
      return await call('EVALSHA', script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      this.#loaded = false;
      this.#loading = undefined;
      return call('EVAL', script.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Runs a Lua script with EVALSHA on a `Redis` or a `Cluster`, in the order of the calls:
 * `ScriptRunner.for(client).run(...)` (see {@link ScriptRunner} for how the order is kept).
 * Keys go through ioredis's `keyPrefix` and Cluster slot routing like any command's.
 *
 * @example
 * ```ts
 * const SWAP = new LuaScript("return redis.call('SET', KEYS[1], ARGV[1], 'GET')", { keys: 1 });
 * const previous = await runScript(client, SWAP, ['config:mode'], ['maintenance']);
 * ```
 * @throws {RespError} `ERR_RESP_ARGUMENT` when the number of keys differs from the script's `keys`.
 */
export function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly RedisKey[],
  args: readonly (string | number | Buffer)[],
  options: RunScriptOptions = {},
): Promise<unknown> {
  return ScriptRunner.for(client).run(script, keys, args, options);
}

// -------------------------------------------------------------------------------------------------
// Waiting for a client

/** Why {@link waitUntilReady} failed. */
export type ConnectFailureReason =
  /** The bound ran out before the client was ready. */
  | 'timeout'
  /** The server refused what retrying cannot fix: credentials, an ACL permission, a TLS certificate. */
  | 'rejected'
  /** The client gave up (its retry strategy returned null) or was closed (`quit()`, `disconnect()`). */
  | 'ended'
  /** The caller's AbortSignal fired. */
  | 'aborted';

/**
 * What {@link waitUntilReady} hands to its `error` option to build the error it rejects with.
 *
 * @example
 * ```ts
 * const toError = (failure: ConnectFailure) =>
 *   new EventStoreError(failure.reason === 'aborted' ? 'ERR_EVENT_STORE_ABORTED' : 'ERR_EVENT_STORE_CONNECT', failure.message, {
 *     cause: failure.cause,
 *     name: failure.reason === 'aborted' ? 'AbortError' : undefined,
 *   });
 * ```
 */
export interface ConnectFailure {
  readonly reason: ConnectFailureReason;
  /** Where the client connects ({@link describeAddress}). */
  readonly address: string;
  /** A sentence naming the address, the cause and what to do. */
  readonly message: string;
  /** The underlying error (the last one the client reported, or the signal's reason). */
  readonly cause: unknown;
  /** Milliseconds from the call to the failure. */
  readonly elapsedMs: number;
}

/**
 * Options of {@link waitUntilReady}.
 *
 * @example
 * ```ts
 * const options: WaitUntilReadyOptions = { timeoutMs: 5000, signal: AbortSignal.timeout(60_000) };
 * ```
 */
export interface WaitUntilReadyOptions {
  /** The bound, in milliseconds. Default 10 000 (ioredis's own `connectTimeout`). */
  readonly timeoutMs?: number | undefined;
  /** Stops waiting when it fires. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Builds the error to reject with (your package's own class). Default: a {@link RespError}
   * `ERR_RESP_CONNECT`, `ERR_RESP_HANDSHAKE` (credentials, permissions) or `ERR_RESP_ABORTED`.
   */
  readonly error?: ((failure: ConnectFailure) => Error) | undefined;
}

// Error codes and reply prefixes that retrying with the same settings cannot fix.
const REJECTED_REPLIES = new Set(['WRONGPASS', 'NOAUTH', 'NOPERM']);
const TLS_REJECTIONS = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
]);

/** The error inside ioredis's wrappers (ClusterAllFailedError keeps the node's in `lastNodeError`). */
function innermost(err: unknown): unknown {
  const last = (err as { lastNodeError?: unknown } | undefined)?.lastNodeError;
  return last instanceof Error ? last : err;
}

/** A TLS client that reached a port without TLS: the server hangs up on the handshake, or answers in plain text. */
function plainServer(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    (code === 'ECONNRESET' && err.message.includes('before secure TLS connection was established'))
  );
}

function isRejection(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if ((typeof code === 'string' && TLS_REJECTIONS.has(code)) || plainServer(err)) return true;
  const prefix = replyPrefix(err);
  if (prefix !== undefined && REJECTED_REPLIES.has(prefix)) return true;
  // A password sent to a server without one (Redis < 6 wording, and AUTH on the default user).
  return /^ERR (AUTH|invalid password|Client sent AUTH)/.test(err.message);
}

/** True for ioredis's messages that say nothing about why ("Connection is closed."). */
function uninformative(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  return /^(Connection is closed|Failed to refresh slots cache|None of startup nodes is available)/.test(err.message);
}

/** What to do about a cause, for the message. */
function hint(cause: unknown, status: string, tls: boolean): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const prefix = replyPrefix(cause);
    if (code === 'ECONNREFUSED')
      return 'nothing accepts connections there: is the server up, and are host and port right?';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME')
      return 'the host name does not resolve: check the host, or the DNS';
    if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
      return 'the address does not answer: a wrong host, a firewall, or a network that drops the packets';
    if (plainServer(cause))
      return 'the server does not speak TLS on that port: use redis:// rather than rediss://, or the TLS port';
    if (code === 'ECONNRESET' || code === 'EPIPE')
      return 'the server cut the connection: a TLS-only port reached without TLS (use rediss://), a proxy, or a server at its maxclients';
    if (typeof code === 'string' && TLS_REJECTIONS.has(code))
      return 'the TLS handshake failed: give the client the CA that signed the server certificate (tls.ca), and a host name the certificate names';
    if (prefix === 'WRONGPASS') return 'wrong user name or password';
    if (prefix === 'NOAUTH')
      return 'the server requires a password (the password option, or redis://user:password@host)';
    if (prefix === 'NOPERM')
      return 'the ACL user may not run a command the client needs to connect (HELLO, AUTH, SELECT, CLUSTER SLOTS...)';
    if (prefix === 'LOADING') return 'the server is loading its data set; it answers once loaded';
    if (/^ERR (AUTH|invalid password|Client sent AUTH)/.test(cause.message))
      return 'a password was sent to a server that has none: remove the password';
  }
  if (status === 'connect')
    return 'the connection is open but the handshake did not complete: a server that does not answer (frozen, or not Redis), or one that expects TLS (use rediss://)';
  if (tls)
    return 'no answer to the TLS handshake: the server is down, frozen or unreachable, or the port does not speak TLS (use redis://)';
  return 'no answer: the server is down, frozen or unreachable';
}

function causeText(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return cause === undefined ? 'no error was reported' : String(cause);
}

/** Where to open a probe connection: a host and port, or a unix socket; with TLS options or not. */
interface ProbeTarget {
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly path?: string | undefined;
  readonly tls?: TlsOptions | undefined;
}

/** One TCP (or TLS) connection attempt to find out why a server cannot be reached. */
function probe(target: ProbeTarget, timeoutMs: number): { result: Promise<Error | undefined>; cancel(): void } {
  let socket: Socket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finish: (err: Error | undefined) => void = () => {};
  const result = new Promise<Error | undefined>((resolve) => {
    finish = (err) => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(err);
    };
  });
  try {
    const where = target.path !== undefined ? { path: target.path } : { host: target.host, port: target.port };
    const { tls } = target;
    socket = tls
      ? tlsConnect({ ...where, ...tls, servername: tls.servername ?? target.host })
      : netConnect(where as { host: string; port: number });
    socket.once(tls ? 'secureConnect' : 'connect', () => finish(undefined));
    socket.once('error', (err) => finish(err));
    timer = setTimeout(() => finish(undefined), timeoutMs);
  } catch (err) {
    finish(err instanceof Error ? err : new Error(String(err)));
  }
  return { result, cancel: () => finish(undefined) };
}

/** The servers a client connects to first: a Cluster's startup nodes, a Redis's address (not Sentinel's). */
function probeTargets(client: RedisClient): ProbeTarget[] {
  if (isCluster(client)) {
    const tls = (client.options as ClusterOptions).redisOptions?.tls as TlsOptions | undefined;
    const nodes = (client as unknown as { startupNodes?: NodeLike[] }).startupNodes ?? [];
    return nodes.map((node) => {
      const [host = '127.0.0.1', port = '6379'] = nodeAddress(node).split(/:(?=\d+$)/);
      return { host, port: Number(port), tls };
    });
  }
  const options = client.options as RedisOptions & {
    sentinels?: unknown[] | null | undefined;
    path?: string | undefined;
  };
  if (options.sentinels && options.sentinels.length > 0) return [];
  const tls = options.tls as TlsOptions | undefined;
  if (options.path) return [{ path: options.path, tls }];
  return [{ host: options.host ?? '127.0.0.1', port: options.port ?? 6379, tls }];
}

/**
 * Waits until an ioredis client is ready, within a bound: the "connect" step of the lifecycle
 * contract for packages that take a client. Resolves at once when it is ready already; connects
 * a `lazyConnect` client that has not started.
 *
 * Rejects, with the address and the real cause rather than ioredis's "Connection is closed.":
 * - at once when the server refuses what retrying cannot fix: a wrong password (`WRONGPASS`),
 *   no password (`NOAUTH`), an ACL user without a command the handshake needs (`NOPERM`), a TLS
 *   certificate that does not verify (reason `rejected`);
 * - at once when the client gave up or was closed (reason `ended`);
 * - when `timeoutMs` runs out (reason `timeout`), naming the last error (connection refused,
 *   host not found, TLS...); for a Cluster, whose own errors hide the cause, and for a client
 *   that failed before the call, the server (the startup nodes) is probed in the background with
 *   one connection attempt to find it;
 * - when `signal` fires (reason `aborted`).
 *
 * The client itself goes on retrying by its own `retryStrategy`: disconnect it if you give up.
 * Nothing is left behind: listeners, the timer and any probe socket end with the call.
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 * try {
 *   await waitUntilReady(redis, { timeoutMs: 5000 });
 * } catch (err) {
 *   console.error((err as Error).message); // "cannot connect to 127.0.0.1:6379 within 5000 ms: connect ECONNREFUSED ..."
 *   redis.disconnect();
 * }
 * ```
 * @throws the error `options.error` builds, by default a {@link RespError} (`ERR_RESP_CONNECT`,
 *   `ERR_RESP_HANDSHAKE` or `ERR_RESP_ABORTED` named `'AbortError'`).
 */
export function waitUntilReady(client: RedisClient, options: WaitUntilReadyOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const { signal } = options;
  if (!(timeoutMs >= 0))
    return Promise.reject(new RespError('ERR_RESP_ARGUMENT', `timeoutMs must be >= 0, got ${timeoutMs}`));
  if (client.status === 'ready' || (client.status as string) === 'monitoring') return Promise.resolve();
  const started = performance.now();
  const address = describeAddress(client);
  const build = options.error ?? defaultConnectError;
  const fail = (reason: ConnectFailureReason, message: string, cause: unknown): Error =>
    build({ reason, address, message, cause, elapsedMs: Math.round(performance.now() - started) });
  if (signal?.aborted) {
    return Promise.reject(
      fail('aborted', `waiting for ${address} was aborted${abortText(signal.reason)}`, signal.reason),
    );
  }
  if (client.status === 'end') {
    return Promise.reject(
      fail('ended', `the client of ${address} is closed (${client.status}); create a new client`, undefined),
    );
  }
  return new Promise<void>((resolve, reject) => {
    let lastError: unknown;
    let diagnosed: Error | undefined;
    let probing: { cancel(): void } | undefined;
    let probed = false;
    const cluster = isCluster(client);
    const usesTls = address.endsWith('(TLS)');
    const emitter = client as unknown as NodeJS.EventEmitter;

    const settle = (err?: Error): void => {
      clearTimeout(timer);
      emitter.off('ready', onReady);
      emitter.off('end', onEnd);
      emitter.off('error', onError);
      if (cluster) emitter.off('node error', onError);
      signal?.removeEventListener('abort', onAbort);
      probing?.cancel();
      probing = undefined;
      if (err) reject(err);
      else resolve();
    };
    const cause = (): unknown => {
      const last = innermost(lastError);
      return diagnosed !== undefined && uninformative(last) ? diagnosed : last;
    };
    const onReady = (): void => settle();
    const onEnd = (): void => {
      const c = cause();
      settle(
        fail(
          'ended',
          `the client of ${address} gave up connecting or was closed: ${causeText(c)}; ${hint(c, client.status, usesTls)}`,
          c,
        ),
      );
    };
    const onError = (err: unknown): void => {
      lastError = err;
      const inner = innermost(err);
      if (isRejection(inner)) {
        settle(
          fail(
            'rejected',
            `${address} refused the connection: ${causeText(inner)}; ${hint(inner, 'connect', usesTls)}`,
            inner,
          ),
        );
        return;
      }
      if (cluster && uninformative(inner) && !probed) diagnose();
    };
    const onAbort = (): void => {
      settle(fail('aborted', `waiting for ${address} was aborted${abortText(signal?.reason)}`, signal?.reason));
    };
    // A Cluster reports "Connection is closed." for a node it could not reach, and a client that
    // failed before this call may not try again within the bound: ask the server (the startup
    // nodes) directly, in the background, what is wrong.
    const diagnose = (): void => {
      probed = true;
      const targets = probeTargets(client);
      const left = Math.max(1, timeoutMs - (performance.now() - started));
      const probes = targets.slice(0, 8).map((t) => probe(t, Math.min(left, 2000)));
      probing = {
        cancel: () => {
          for (const p of probes) p.cancel();
        },
      };
      void Promise.all(probes.map((p) => p.result)).then((results) => {
        const found = results.find((r) => r !== undefined);
        if (found) diagnosed = found;
        probing = undefined;
      });
    };
    const timer = setTimeout(() => {
      const c = cause();
      settle(
        fail(
          'timeout',
          `cannot connect to ${address} within ${timeoutMs} ms: ${causeText(c)}; ${hint(c, client.status, usesTls)}`,
          c,
        ),
      );
    }, timeoutMs);
    emitter.on('ready', onReady);
    emitter.on('end', onEnd);
    emitter.on('error', onError);
    if (cluster) emitter.on('node error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (client.status === 'wait')
      client.connect().catch(() => {}); // failures arrive as 'error' / 'end'
    else if (client.status === 'reconnecting') diagnose(); // it failed before: the error is gone
  });
}

function abortText(reason: unknown): string {
  if (reason instanceof Error && reason.message) return `: ${reason.message}`;
  return '';
}

function defaultConnectError(failure: ConnectFailure): Error {
  if (failure.reason === 'aborted')
    return new RespError('ERR_RESP_ABORTED', failure.message, { cause: failure.cause, name: 'AbortError' });
  const handshake = failure.reason === 'rejected' && replyPrefix(failure.cause) !== undefined;
  return new RespError(handshake ? 'ERR_RESP_HANDSHAKE' : 'ERR_RESP_CONNECT', failure.message, {
    cause: failure.cause,
  });
}
