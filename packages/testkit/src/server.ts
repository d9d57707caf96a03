import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { abortedError, TestkitError, throwIfAborted } from './errors.ts';
import type { TlsMaterial } from './tls.ts';
import { type ServerVersion, versionFromInfo } from './version.ts';

/** How a server came to be: spawned by the testkit, run in a container, or given by `REDIS_URL`. */
export type ServerKind = 'spawned' | 'container' | 'external';

/** Where and how to connect; spreads into ioredis options (`new Redis({ ...server.connectionOptions() })`). */
export interface ConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly db?: number | undefined;
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string } | undefined;
}

/** An ACL user to create with {@link RedisServer.createUser}. */
export interface AclUserSpec {
  readonly username: string;
  readonly password: string;
  /** ACL rules after `reset on >password`, for example `['~app:*', '&app:*', '+@all']`. */
  readonly rules: readonly string[];
}

/** A created ACL user and a URL that logs in as it. */
export interface AclUser extends AclUserSpec {
  readonly url: string;
  /** Connection options that log in as this user. */
  readonly connection: ConnectionOptions;
}

/** Parses `INFO` text into a flat record of `field: value`. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

/**
 * ioredis' constructor types declare `replyMapping?: T` without `| undefined`, which rejects any
 * `RedisOptions` value under `exactOptionalPropertyTypes`; the options are right, the cast is safe.
 */
export function newRedis(options: RedisOptions): Redis {
  return new Redis(options as never);
}

/** Admin connections fail fast instead of queueing: a test wants to know at once. */
const ADMIN_OPTIONS: RedisOptions = {
  protocol: 2,
  lazyConnect: true,
  maxRetriesPerRequest: 0,
  retryStrategy: () => null,
  connectionName: 'testkit-admin',
  disableClientInfo: true,
  connectTimeout: 5_000,
};

/**
 * A Redis server handed out by the testkit. Every kind answers commands, creates tracked ioredis
 * clients (closed at {@link stop}) and ACL users; spawned servers also restart, crash and come
 * back. Dispose it with `await using` or call {@link stop}.
 *
 * @example
 * ```ts
 * await using server = await startRedis();
 * const client = server.createClient();
 * await client.set('k', 'v');
 * ```
 */
export abstract class RedisServer implements AsyncDisposable {
  abstract readonly kind: ServerKind;
  /** The server's flavour and version. */
  abstract readonly version: ServerVersion;
  /** Certificates when the server speaks TLS. */
  abstract readonly tls: TlsMaterial | undefined;
  abstract get host(): string;
  abstract get port(): number;
  /** Password of the default user, when one is set. */
  abstract readonly password: string | undefined;

  readonly #clients = new Set<Redis>();
  #admin: Redis | undefined;
  #adminError: Error | undefined;

  /** A URL for this server: `redis://` or `rediss://`, with the password when there is one. */
  get url(): string {
    const auth = this.password ? `:${encodeURIComponent(this.password)}@` : '';
    return `${this.tls ? 'rediss' : 'redis'}://${auth}${this.host}:${this.port}`;
  }

  /** Connection options for ioredis or for a raw socket (`net.connect` / `tls.connect`). */
  connectionOptions(): ConnectionOptions {
    return {
      host: this.host,
      port: this.port,
      ...(this.password ? { password: this.password } : {}),
      ...(this.tls ? { tls: { ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key } } : {}),
    };
  }

  /**
   * A new ioredis client for this server, closed by {@link stop}. Options override the
   * connection options.
   */
  createClient(options: RedisOptions = {}): Redis {
    const client = newRedis({ ...this.connectionOptions(), ...options });
    this.#clients.add(client);
    client.once('end', () => this.#clients.delete(client));
    return client;
  }

  /**
   * Runs one command on the testkit's own admin connection (RESP2 replies). When the connection
   * fails, the rejection is the connection's own error (ECONNREFUSED, a timeout, WRONGPASS), not
   * ioredis' "Connection is closed.", which names no cause.
   */
  async command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
    if (!this.#admin) {
      const admin = newRedis({ ...this.connectionOptions(), ...ADMIN_OPTIONS });
      this.#admin = admin;
      this.#adminError = undefined;
      // Failures reach the caller through the command's rejection; the last one names the cause.
      admin.on('error', (err: Error) => {
        if (this.#admin === admin) this.#adminError = err;
      });
    }
    try {
      return await this.#admin.call(name, ...args);
    } catch (err) {
      const cause = this.#adminError;
      if (cause && err instanceof Error && /Connection is closed/.test(err.message)) throw cause;
      throw err;
    }
  }

  /** `INFO [section]` as a record of fields. */
  async info(section?: string): Promise<Record<string, string>> {
    const text = (await (section ? this.command('INFO', section) : this.command('INFO'))) as string;
    return parseInfo(text);
  }

  /**
   * Empties every database. Refused on a server given by `REDIS_URL` unless
   * `REDIS_TESTKIT_ALLOW_FLUSH=1`, since it may hold someone's data.
   */
  async flushAll(): Promise<void> {
    await this.command('FLUSHALL');
  }

  /**
   * Creates (or replaces) an ACL user.
   *
   * @example
   * ```ts
   * const reader = await server.createUser({ username: 'reader', password: 's3cret', rules: ['~*', '+get'] });
   * const client = new Redis(reader.url);
   * ```
   */
  async createUser(spec: AclUserSpec): Promise<AclUser> {
    if (!/^[\w.-]+$/.test(spec.username)) {
      throw new TestkitError(
        'ERR_TESTKIT_ARGUMENT',
        `ACL user name "${spec.username}" may only hold letters, digits, _ . -`,
      );
    }
    await this.command('ACL', 'SETUSER', spec.username, 'reset', 'on', `>${spec.password}`, ...spec.rules);
    const { password: _ignored, ...base } = this.connectionOptions();
    const connection: ConnectionOptions = { ...base, username: spec.username, password: spec.password };
    const url = `${this.tls ? 'rediss' : 'redis'}://${encodeURIComponent(spec.username)}:${encodeURIComponent(spec.password)}@${this.host}:${this.port}`;
    return { ...spec, url, connection };
  }

  /**
   * A fresh key prefix (`t:<random>:`) so that tests sharing one server never see each
   * other's keys.
   */
  keyPrefix(label = 't'): string {
    return `${label}:${randomBytes(6).toString('hex')}:`;
  }

  /** Closes every client made by {@link createClient} and the admin connection. */
  protected closeClients(): void {
    for (const client of this.#clients) client.disconnect();
    this.#clients.clear();
    this.dropAdmin();
  }

  /** Forgets the admin connection, for example after the process was replaced. */
  protected dropAdmin(): void {
    this.#admin?.disconnect();
    this.#admin = undefined;
  }

  /** Reads the version from `INFO server`. */
  protected async readVersion(): Promise<ServerVersion> {
    return versionFromInfo(await this.info('server'));
  }

  /** Restarts the server on the same port; with `keepData` (the default) its data survives. */
  abstract restart(options?: { keepData?: boolean | undefined }): Promise<void>;
  /** Ends the server abruptly (SIGKILL for a process), losing what was not persisted. */
  abstract kill(): Promise<void>;
  /** Starts a server again after {@link kill}, on the same port and directory. */
  abstract start(): Promise<void>;
  /** Closes clients and ends the server; removes its temporary files. */
  abstract stop(): Promise<void>;

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /** Allow {@link RedisServer.flushAll}; default from `REDIS_TESTKIT_ALLOW_FLUSH=1`. */
  readonly allowFlush?: boolean | undefined;
  /** PEM material when the URL is `rediss://` with a private CA. */
  readonly tls?: TlsMaterial | undefined;
  /**
   * The bound on connecting and reading the version, in ms (a server that accepts the
   * connection but never answers is found out by it). Default 10 s.
   */
  readonly connectTimeoutMs?: number | undefined;
  /** Ends the connect early with `ERR_TESTKIT_ABORTED` (`name` `'AbortError'`). */
  readonly signal?: AbortSignal | undefined;
}

/** A server the testkit did not start: it can be used, never restarted, and flushed only when allowed. */
export class ExternalRedis extends RedisServer {
  readonly kind: ServerKind = 'external';
  readonly tls: TlsMaterial | undefined;
  readonly password: string | undefined;
  readonly username: string | undefined;
  readonly db: number;
  #version: ServerVersion | undefined;
  readonly #host: string;
  readonly #port: number;
  readonly #allowFlush: boolean;
  readonly #secure: boolean;

  /** Use {@link connectRedis}. */
  constructor(url: string, options: ConnectRedisOptions = {}) {
    super();
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new TestkitError(
        'ERR_TESTKIT_ARGUMENT',
        `REDIS_URL "${url}" is not a URL; write it like redis://127.0.0.1:6379`,
        { cause: err },
      );
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new TestkitError(
        'ERR_TESTKIT_ARGUMENT',
        `REDIS_URL must start with redis:// or rediss://, not ${parsed.protocol}//`,
      );
    }
    this.#secure = parsed.protocol === 'rediss:';
    this.#host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    this.#port = parsed.port ? Number(parsed.port) : 6379;
    this.username = parsed.username ? decodeURIComponent(parsed.username) : undefined;
    this.password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
    this.db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
    this.tls = options.tls;
    this.#allowFlush = options.allowFlush ?? process.env.REDIS_TESTKIT_ALLOW_FLUSH === '1';
  }

  get host(): string {
    return this.#host;
  }
  get port(): number {
    return this.#port;
  }
  get version(): ServerVersion {
    if (!this.#version) throw new TestkitError('ERR_TESTKIT_START', 'connectRedis() has not finished');
    return this.#version;
  }

  override connectionOptions(): ConnectionOptions {
    const base = super.connectionOptions();
    return {
      ...base,
      ...(this.username ? { username: this.username } : {}),
      ...(this.db ? { db: this.db } : {}),
      // rediss:// without private material: the platform's CAs verify the server.
      ...(this.#secure && !base.tls ? { tls: {} as { ca: string; cert: string; key: string } } : {}),
    };
  }

  override get url(): string {
    const auth = this.password
      ? `${this.username ? encodeURIComponent(this.username) : ''}:${encodeURIComponent(this.password)}@`
      : '';
    return `${this.#secure ? 'rediss' : 'redis'}://${auth}${this.host}:${this.port}${this.db ? `/${this.db}` : ''}`;
  }

  /** @internal Connects and reads the version, within `connectTimeoutMs`, or until `signal`. */
  async connect(options: Pick<ConnectRedisOptions, 'connectTimeoutMs' | 'signal'> = {}): Promise<this> {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const { signal } = options;
    throwIfAborted(signal, 'connectRedis()');
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    try {
      this.#version = await Promise.race([
        this.readVersion(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
          onAbort = () => reject(abortedError('connectRedis()', signal?.reason));
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      this.closeClients();
      if (err instanceof TestkitError) throw err;
      throw new TestkitError(
        'ERR_TESTKIT_START',
        `cannot reach the server at ${this.host}:${this.port}: ${(err as Error).message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    return this;
  }

  override async flushAll(): Promise<void> {
    if (!this.#allowFlush) {
      throw new TestkitError(
        'ERR_TESTKIT_FLUSH_REFUSED',
        `refusing FLUSHALL on ${this.host}:${this.port}, a server the testkit does not own; set REDIS_TESTKIT_ALLOW_FLUSH=1 if its data may be erased, or use keyPrefix() to isolate keys`,
      );
    }
    await super.flushAll();
  }

  #unsupported(what: string): never {
    throw new TestkitError(
      'ERR_TESTKIT_UNSUPPORTED',
      `cannot ${what} a server given by REDIS_URL; use spawnRedis() for tests that need faults`,
    );
  }
  async restart(): Promise<void> {
    this.#unsupported('restart');
  }
  async kill(): Promise<void> {
    this.#unsupported('kill');
  }
  async start(): Promise<void> {
    this.#unsupported('start');
  }
  async stop(): Promise<void> {
    this.closeClients();
  }
}

/**
 * Connects to a running server (the one in `REDIS_URL` by default) and reads its version.
 *
 * @example
 * ```ts
 * const server = await connectRedis('redis://127.0.0.1:6379');
 * ```
 * @throws {TestkitError} `ERR_TESTKIT_ARGUMENT` for a bad URL, `ERR_TESTKIT_START` when unreachable.
 */
export async function connectRedis(
  url: string | undefined = process.env.REDIS_URL,
  options: ConnectRedisOptions = {},
): Promise<ExternalRedis> {
  if (!url)
    throw new TestkitError('ERR_TESTKIT_ARGUMENT', 'connectRedis() needs a URL, or REDIS_URL in the environment');
  return new ExternalRedis(url, options).connect(options);
}
