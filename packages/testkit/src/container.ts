import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TestkitError } from './errors.ts';
import { RedisServer, type ServerKind } from './server.ts';
import type { TlsMaterial } from './tls.ts';
import type { ServerVersion } from './version.ts';
import { waitFor } from './wait.ts';

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
  readonly image?: string | undefined;
  /**
   * Never pull from a registry: a missing image is an error. Default from
   * `REDIS_TESTKIT_OFFLINE=1`.
   */
  readonly offline?: boolean | undefined;
  /** More `redis-server` arguments. */
  readonly args?: readonly string[] | undefined;
}

/**
 * What {@link ContainerRedis} needs from the engine. Built from testcontainers objects inside
 * {@link startContainerRedis}, so that no testcontainers type reaches this package's declarations
 * (it is an optional peer: users without it must still typecheck).
 */
export interface ContainerControl {
  readonly id: string;
  readonly host: string;
  /** The host port bound to the container's 6379; engines may bind a new one at each start. */
  mappedPort(): Promise<number>;
  restart(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  remove(): Promise<void>;
}

/** A Redis in a container started through testcontainers. */
export class ContainerRedis extends RedisServer {
  readonly kind: ServerKind = 'container';
  readonly tls: TlsMaterial | undefined = undefined;
  readonly password: string | undefined = undefined;
  readonly image: string;
  readonly #control: ContainerControl;
  #port: number;
  #version: ServerVersion | undefined;
  #stopped = false;

  /** Use {@link startContainerRedis}. */
  constructor(control: ContainerControl, port: number, image: string) {
    super();
    this.#control = control;
    this.#port = port;
    this.image = image;
  }

  get host(): string {
    return this.#control.host;
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
    return this.#control.id;
  }

  /** @internal */
  async init(): Promise<this> {
    this.#version = await this.readVersion();
    return this;
  }

  async #afterStart(): Promise<void> {
    this.#port = await this.#control.mappedPort();
    await waitFor(`container ${this.id} to answer after a start`, async () => {
      this.dropAdmin();
      return (await this.command('PING')) === 'PONG';
    });
  }

  async restart(options: { keepData?: boolean | undefined } = {}): Promise<void> {
    await this.command((options.keepData ?? true) ? 'SAVE' : 'FLUSHALL');
    this.dropAdmin();
    await this.#control.restart();
    await this.#afterStart();
  }

  async kill(): Promise<void> {
    this.dropAdmin();
    await this.#control.kill();
  }

  async start(): Promise<void> {
    await this.#control.start();
    await this.#afterStart();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.closeClients();
    await this.#control.remove();
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
  const control: ContainerControl = {
    id: started.getId(),
    host: started.getHost(),
    async mappedPort() {
      const inspect = await client.container.inspect(client.container.getById(started.getId()));
      return Number(inspect.NetworkSettings.Ports['6379/tcp']?.[0]?.HostPort ?? started.getMappedPort(6379));
    },
    restart: () => started.restart(),
    kill: () => client.container.getById(started.getId()).kill({ signal: 'SIGKILL' }),
    start: () => client.container.getById(started.getId()).start(),
    remove: async () => {
      await started.stop({ timeout: 0, remove: true });
    },
  };
  const server = new ContainerRedis(control, started.getMappedPort(6379), image);
  try {
    return await server.init();
  } catch (err) {
    await server.stop();
    throw err;
  }
}
