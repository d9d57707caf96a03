import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { binaryVersion, findServer, type ServerBinary } from './binaries.ts';
import { abortedError, TestkitError, throwIfAborted } from './errors.ts';
import { type Logger, noopLogger } from './logger.ts';
import { freePort } from './ports.ts';
import { endProcess, spawnTracked } from './processes.ts';
import { RedisServer, type ServerKind } from './server.ts';
import { type TlsMaterial, testCertificates } from './tls.ts';
import type { ServerVersion } from './version.ts';

/** What survives a restart: nothing, RDB snapshots, or an AOF fsynced on every write. */
export type Persistence = 'none' | 'rdb' | 'aof';

/** Options of {@link spawnRedis}. */
export interface SpawnRedisOptions {
  /** The binary: a path, a {@link ServerBinary}, or by default the one selected by the environment. */
  readonly binary?: string | ServerBinary | undefined;
  /** Port (or TLS port) to listen on; a free one by default. */
  readonly port?: number | undefined;
  /** Default `none`. `aof` uses `appendfsync always`, so an acknowledged write survives kill -9. */
  readonly persistence?: Persistence | undefined;
  /** Serve TLS only (`tls-port`, no plain port) with certificates from {@link testCertificates}. */
  readonly tls?: boolean | undefined;
  /** `tls-auth-clients`: whether clients must present a certificate. Default `optional`. */
  readonly tlsAuthClients?: 'yes' | 'no' | 'optional' | undefined;
  /** Password of the default user (`requirepass`). */
  readonly password?: string | undefined;
  /** Start as a replica of this server. */
  readonly replicaOf?: RedisServer | undefined;
  /** More configuration, passed as `--name value` (arrays give several values). */
  readonly config?: Readonly<Record<string, string | number | readonly (string | number)[]>> | undefined;
  /**
   * How long to wait for "Ready to accept connections". Default 20 s. A server that is not ready
   * by then is killed and the start fails with `ERR_TESTKIT_START` and its last log lines.
   */
  readonly startTimeoutMs?: number | undefined;
  /**
   * Ends the start early (the process is killed, its folder removed) with `ERR_TESTKIT_ABORTED`,
   * `name` `'AbortError'`. It concerns this call only: later restarts take their own.
   */
  readonly signal?: AbortSignal | undefined;
  /** Told about starts and stops (debug) and a server killed because it would not stop (warn). */
  readonly logger?: Logger | undefined;
}

const LOG_LINES = 400;

/**
 * A `redis-server` process owned by the testkit: a free loopback port, a temporary directory,
 * and a guaranteed end at teardown. It can restart keeping port and data, die with kill -9,
 * freeze with SIGSTOP, and start again.
 */
export class SpawnedRedis extends RedisServer {
  readonly kind: ServerKind = 'spawned';
  readonly binary: ServerBinary;
  /** The server's working directory (`dump.rdb`, `appendonlydir`, `nodes.conf`). */
  readonly dir: string;
  readonly tls: TlsMaterial | undefined;
  readonly password: string | undefined;
  readonly persistence: Persistence;
  readonly #options: Omit<SpawnRedisOptions, 'signal'>;
  readonly #logger: Logger;
  #port: number;
  #portFixed: boolean;
  #child: ChildProcess | undefined;
  #logs: string[] = [];
  #stopped = false;

  /** Use {@link spawnRedis}. */
  constructor(binary: ServerBinary, port: number, tls: TlsMaterial | undefined, options: SpawnRedisOptions) {
    super();
    this.binary = binary;
    this.#port = port;
    this.#portFixed = options.port !== undefined;
    this.tls = tls;
    this.password = options.password;
    this.persistence = options.persistence ?? 'none';
    const { signal: _signal, ...kept } = options;
    this.#options = kept;
    this.#logger = options.logger ?? noopLogger;
    this.dir = mkdtempSync(join(tmpdir(), 'redis-events-server-'));
  }

  get host(): string {
    return '127.0.0.1';
  }
  get port(): number {
    return this.#port;
  }
  get version(): ServerVersion {
    return this.binary.version;
  }
  /** The pid of the running process, if any. */
  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }
  /** The last lines the server wrote to its log. */
  logs(): readonly string[] {
    return this.#logs;
  }

  #args(): string[] {
    const o = this.#options;
    const args: string[] = [
      ...['--bind', '127.0.0.1', '--protected-mode', 'no', '--daemonize', 'no'],
      ...['--dir', this.dir, '--logfile', '', '--loglevel', 'notice'],
      ...['--enable-debug-command', 'local'],
      // Replicas sync at once instead of waiting 5 s for more replicas to share a diskless transfer.
      ...['--repl-diskless-sync-delay', '0'],
    ];
    args.push(...(this.tls ? ['--port', '0', '--tls-port', String(this.#port)] : ['--port', String(this.#port)]));
    if (this.tls) {
      args.push(
        '--tls-cert-file',
        this.tls.certFile,
        '--tls-key-file',
        this.tls.keyFile,
        '--tls-ca-cert-file',
        this.tls.caFile,
      );
      args.push(
        '--tls-auth-clients',
        o.tlsAuthClients ?? 'optional',
        '--tls-replication',
        'yes',
        '--tls-cluster',
        'yes',
      );
    }
    if (this.persistence === 'aof') args.push('--appendonly', 'yes', '--appendfsync', 'always', '--save', '');
    else if (this.persistence === 'rdb') args.push('--appendonly', 'no', '--save', '900 1');
    else args.push('--appendonly', 'no', '--save', '');
    if (this.password) args.push('--requirepass', this.password);
    if (o.replicaOf) {
      args.push('--replicaof', o.replicaOf.host, String(o.replicaOf.port));
      if (o.replicaOf.password) args.push('--masterauth', o.replicaOf.password);
    }
    for (const [name, value] of Object.entries(o.config ?? {})) {
      args.push(`--${name}`, ...(Array.isArray(value) ? value.map(String) : [String(value)]));
    }
    return args;
  }

  #record(line: string): void {
    this.#logs.push(line);
    if (this.#logs.length > LOG_LINES) this.#logs.splice(0, this.#logs.length - LOG_LINES);
  }

  /**
   * Starts the process and resolves once it accepts connections, within `startTimeoutMs`.
   * `signal` ends the start early: the process is killed and the call rejects with
   * `ERR_TESTKIT_ABORTED`.
   */
  async start(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.pid !== undefined) return;
    this.#stopped = false;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#launch(options.signal);
        return;
      } catch (err) {
        const portTaken = this.#logs.some((l) => /Address already in use/i.test(l));
        if (!portTaken || this.#portFixed || attempt >= 5) throw err;
        this.#port = await freePort(); // lost the race for the port: take another
      }
    }
  }

  async #launch(signal: AbortSignal | undefined): Promise<void> {
    const what = `starting ${this.binary.version.text} on port ${this.#port}`;
    throwIfAborted(signal, what);
    const timeoutMs = this.#options.startTimeoutMs ?? 20_000;
    const began = performance.now();
    const child = spawnTracked(this.binary.path, this.#args(), { cwd: this.dir, dirs: [this.dir] });
    this.#child = child;
    const mark = this.#logs.length;
    const describe = (what: string) =>
      new TestkitError(
        'ERR_TESTKIT_START',
        `${this.binary.version.text} (${this.binary.path}) on port ${this.#port} ${what}. Last log lines:\n${this.#logs.slice(mark).slice(-30).join('\n') || '(none)'}`,
      );
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => {
        child.kill('SIGKILL');
        finish(abortedError(what, signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(describe(`did not become ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onLine = (line: string) => {
        this.#record(line);
        if (/Ready to accept connections/.test(line)) finish();
      };
      if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
      if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
      child.once('error', (err) =>
        finish(
          new TestkitError('ERR_TESTKIT_START', `cannot spawn ${this.binary.path}: ${err.message}`, { cause: err }),
        ),
      );
      // Let readline flush the last lines before reporting an early exit.
      child.once('close', (code, killedBy) =>
        finish(describe(`exited while starting (${killedBy ?? `code ${code}`})`)),
      );
    });
    this.#logger.debug(
      {
        port: this.#port,
        pid: child.pid,
        version: this.binary.version.text,
        ms: Math.round(performance.now() - began),
      },
      'redis-server started',
    );
  }

  /** Ends the process with `signal`, and SIGKILL after `graceMs` (with a warning). */
  async #end(signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
    if (!this.#child) return;
    const child = this.#child;
    await endProcess(child, signal, graceMs, () =>
      this.#logger.warn(
        { port: this.#port, pid: child.pid, graceMs },
        `redis-server did not end on ${signal} within ${graceMs} ms; killed with SIGKILL`,
      ),
    );
  }

  /** Sends SIGTERM (the server saves what its persistence mode keeps) and waits for the exit. */
  async #terminate(): Promise<void> {
    this.dropAdmin();
    await this.#end('SIGTERM', 10_000);
  }

  async restart(options: { keepData?: boolean | undefined; signal?: AbortSignal | undefined } = {}): Promise<void> {
    const keepData = options.keepData ?? true;
    if (keepData && this.persistence === 'none' && this.pid !== undefined) await this.command('SAVE');
    await this.#terminate();
    if (!keepData) {
      for (const name of ['dump.rdb', 'appendonlydir', 'appendonly.aof'])
        rmSync(join(this.dir, name), { recursive: true, force: true });
    }
    await this.start({ signal: options.signal });
  }

  async kill(): Promise<void> {
    this.dropAdmin();
    await this.#end('SIGKILL');
  }

  /** Freezes the process (SIGSTOP): connections stay open but nothing answers. */
  suspend(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** Thaws a process frozen by {@link suspend}. */
  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.closeClients();
    if (this.#child) {
      this.#child.kill('SIGCONT'); // a suspended process cannot handle SIGTERM
      await this.#end('SIGTERM', 5_000);
      this.#logger.debug({ port: this.#port }, 'redis-server stopped');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Spawns a `redis-server` (or `valkey-server`) on a free loopback port with a temporary
 * directory, and resolves once it accepts connections.
 *
 * @example
 * ```ts
 * await using server = await spawnRedis({ persistence: 'aof' });
 * const client = server.createClient();
 * await client.set('k', 'v');
 * await server.kill();   // kill -9
 * await server.start();  // same port, the AOF brings k back
 * ```
 * @throws {TestkitError} `ERR_TESTKIT_NO_SERVER` without a binary, `ERR_TESTKIT_START` when it fails to
 * start (within `startTimeoutMs`, with the server's last log lines), `ERR_TESTKIT_ABORTED` when
 * `signal` fires first.
 */
export async function spawnRedis(options: SpawnRedisOptions = {}): Promise<SpawnedRedis> {
  throwIfAborted(options.signal, 'spawnRedis()');
  let binary: ServerBinary;
  if (typeof options.binary === 'string') {
    binary = { name: options.binary, path: options.binary, version: await binaryVersion(options.binary) };
  } else {
    binary = options.binary ?? (await findServer());
  }
  const tls = options.tls ? await testCertificates() : undefined;
  throwIfAborted(options.signal, 'spawnRedis()');
  const server = new SpawnedRedis(binary, options.port ?? (await freePort()), tls, options);
  try {
    await server.start({ signal: options.signal });
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
