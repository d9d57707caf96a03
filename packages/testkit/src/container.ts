import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TestkitError } from './errors.ts';
import { RedisServer, type ServerKind } from './server.ts';
import type { TlsMaterial } from './tls.ts';
import type { ServerVersion } from './version.ts';

// testcontainers is an optional peer dependency, imported only when a container is wanted.
type Testcontainers = typeof import('testcontainers');
type StartedContainer = Awaited<ReturnType<InstanceType<Testcontainers['GenericContainer']>['start']>>;

async function loadTestcontainers(): Promise<Testcontainers | undefined> {
  try {
    return await import('testcontainers');
  } catch {
    return undefined;
  }
}

function socketCandidates(): string[] {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const home = homedir();
  return [
    '/var/run/docker.sock',
    '/run/podman/podman.sock',
    ...(runtime ? [join(runtime, 'docker.sock'), join(runtime, 'podman', 'podman.sock')] : []),
    join(home, '.docker', 'run', 'docker.sock'),
    join(home, '.colima', 'default', 'docker.sock'),
    join(home, '.rd', 'docker.sock'),
  ];
}

/**
 * True when a Docker-compatible engine answers and the optional `testcontainers` package is
 * installed. Without `DOCKER_HOST`, a testcontainers config or a known socket file it answers
 * false at once, without loading testcontainers.
 */
export async function containerEngineAvailable(timeoutMs = 5_000): Promise<boolean> {
  const hinted =
    Boolean(process.env.DOCKER_HOST) ||
    existsSync(join(homedir(), '.testcontainers.properties')) ||
    socketCandidates().some((path) => existsSync(path));
  if (!hinted) return false;
  const tc = await loadTestcontainers();
  if (!tc) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      tc.getContainerRuntimeClient().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Options of {@link startContainerRedis}. */
export interface ContainerRedisOptions {
  /** Image to run; default `REDIS_IMAGE`, else `redis:7.4`. */
  readonly image?: string;
  /**
   * Never pull from a registry: a missing image is an error. Default from
   * `REDIS_TESTKIT_OFFLINE=1`.
   */
  readonly offline?: boolean;
  /** More `redis-server` arguments. */
  readonly args?: readonly string[];
}

/** A Redis in a container started through testcontainers. */
export class ContainerRedis extends RedisServer {
  readonly kind: ServerKind = 'container';
  readonly tls: TlsMaterial | undefined = undefined;
  readonly password: string | undefined = undefined;
  readonly image: string;
  #container: StartedContainer;
  #tc: Testcontainers;
  #host: string;
  #port: number;
  #version: ServerVersion | undefined;
  #stopped = false;

  /** Use {@link startContainerRedis}. */
  constructor(tc: Testcontainers, container: StartedContainer, image: string) {
    super();
    this.#tc = tc;
    this.#container = container;
    this.image = image;
    this.#host = container.getHost();
    this.#port = container.getMappedPort(6379);
  }

  get host(): string {
    return this.#host;
  }
  get port(): number {
    return this.#port;
  }
  get version(): ServerVersion {
    if (!this.#version) throw new TestkitError('ERR_TESTKIT_START', 'the container has not finished starting');
    return this.#version;
  }
  /** The container id. */
  get id(): string {
    return this.#container.getId();
  }

  /** @internal */
  async init(): Promise<this> {
    this.#version = await this.readVersion();
    return this;
  }

  async #refreshPort(): Promise<void> {
    // The engine may bind a new host port when a container starts again.
    const client = await this.#tc.getContainerRuntimeClient();
    const inspect = await client.container.inspect(client.container.getById(this.id));
    const binding = inspect.NetworkSettings.Ports['6379/tcp']?.[0]?.HostPort;
    if (binding) this.#port = Number(binding);
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        this.dropAdmin();
        await this.command('PING');
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new TestkitError('ERR_TESTKIT_TIMEOUT', `container ${this.id} did not answer after a start`, {
            cause: err,
          });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async restart(options: { keepData?: boolean } = {}): Promise<void> {
    if (options.keepData ?? true) await this.command('SAVE');
    else await this.command('FLUSHALL');
    this.dropAdmin();
    await this.#container.restart();
    await this.#refreshPort();
    await this.#waitReady();
  }

  async kill(): Promise<void> {
    this.dropAdmin();
    const client = await this.#tc.getContainerRuntimeClient();
    await client.container.getById(this.id).kill({ signal: 'SIGKILL' });
  }

  async start(): Promise<void> {
    const client = await this.#tc.getContainerRuntimeClient();
    await client.container.getById(this.id).start();
    await this.#refreshPort();
    await this.#waitReady();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.closeClients();
    await this.#container.stop({ timeout: 0, remove: true });
  }
}

/**
 * Starts Redis in a container through testcontainers (an optional peer dependency).
 *
 * @example
 * ```ts
 * await using server = await startContainerRedis({ image: 'redis:7.4', offline: true });
 * ```
 * @throws {TestkitError} `ERR_TESTKIT_CONTAINER` when testcontainers is missing, the engine fails,
 * or the image is missing while pulls are forbidden.
 */
export async function startContainerRedis(options: ContainerRedisOptions = {}): Promise<ContainerRedis> {
  const tc = await loadTestcontainers();
  if (!tc) {
    throw new TestkitError(
      'ERR_TESTKIT_CONTAINER',
      'container mode needs the package "testcontainers": add it to your devDependencies',
    );
  }
  const image = options.image ?? process.env.REDIS_IMAGE ?? 'redis:7.4';
  const offline = options.offline ?? process.env.REDIS_TESTKIT_OFFLINE === '1';
  let client: Awaited<ReturnType<Testcontainers['getContainerRuntimeClient']>>;
  try {
    client = await tc.getContainerRuntimeClient();
  } catch (err) {
    throw new TestkitError('ERR_TESTKIT_CONTAINER', `no Docker-compatible engine answers: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (offline && !(await client.image.exists(tc.ImageName.fromString(image)))) {
    throw new TestkitError(
      'ERR_TESTKIT_CONTAINER',
      `image ${image} is not present and pulls are forbidden (REDIS_TESTKIT_OFFLINE=1); build or load it first, or set REDIS_IMAGE to a local image`,
    );
  }
  let container = new tc.GenericContainer(image)
    .withExposedPorts(6379)
    // Arguments only: the official image's entrypoint and a plain redis-server entrypoint both take them.
    .withCommand(['--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...(options.args ?? [])])
    .withWaitStrategy(tc.Wait.forLogMessage(/Ready to accept connections/));
  if (offline) container = container.withPullPolicy({ shouldPull: () => 'never' });
  let started: StartedContainer;
  try {
    started = await container.start();
  } catch (err) {
    throw new TestkitError('ERR_TESTKIT_CONTAINER', `container ${image} did not start: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const server = new ContainerRedis(tc, started, image);
  try {
    return await server.init();
  } catch (err) {
    await server.stop();
    throw err;
  }
}
