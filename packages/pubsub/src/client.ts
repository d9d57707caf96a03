import { type Command, ReplyError, RespConnection, RespError } from '@redis-events/resp';
import { type ClusterNode, ClusterTopology } from './cluster-topology.ts';
import { type PublishTrace, publishChannel } from './diagnostics.ts';
import { PubSubError } from './errors.ts';
import { keySlot } from './key-slot.ts';
import {
  type BufferOptions,
  type PubSubClientOptions,
  type ResolvedOptions,
  resolveBuffer,
  resolveOptions,
} from './options.ts';
import { parseRedirect } from './subscriber-connection.ts';
import { Subscription } from './subscription.ts';

/** How often a command is redirected (MOVED, ASK) or retried at a refreshed owner before it fails. */
const MAX_REDIRECTS = 5;

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

function checkName(method: string, name: unknown): string {
  if (typeof name !== 'string') {
    throw new PubSubError(
      'ERR_PUBSUB_ARGUMENT',
      `${method}() takes a string channel, got ${name === null ? 'null' : typeof name}`,
    );
  }
  return name;
}

function checkPayload(method: string, message: unknown): string | Buffer {
  if (typeof message !== 'string' && !Buffer.isBuffer(message)) {
    throw new PubSubError(
      'ERR_PUBSUB_ARGUMENT',
      `${method}() takes the message as a string or a Buffer, got ${message === null ? 'null' : typeof message}; serialize objects first (JSON.stringify)`,
    );
  }
  return message;
}

/** Reads `[name, count, name, count...]` (NUMSUB, SHARDNUMSUB) into a Map. */
function counts(reply: unknown, into: Map<string, number> = new Map()): Map<string, number> {
  const flat = reply instanceof Map ? [...reply].flat() : Array.isArray(reply) ? reply : [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = text(flat[i]);
    into.set(name, (into.get(name) ?? 0) + Number(flat[i + 1]));
  }
  return into;
}

function names(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.map(text) : [];
}

/**
 * A Redis Pub/Sub client: subscriptions on dedicated connections (standalone or Redis Cluster),
 * and `publish`, `spublish` and the PUBSUB commands on a separate command connection.
 *
 * Nothing connects until it is used. Each subscription opens its own subscriber connection(s)
 * and is an async iterator of messages; {@link close} closes every subscription and the command
 * connection.
 *
 * @example
 * ```ts
 * import { createPubSubClient } from '@redis-events/pubsub';
 *
 * const client = createPubSubClient('redis://127.0.0.1:6379');
 * const subscription = await client.subscribe('orders');
 * await client.publish('orders', JSON.stringify({ id: 1 }));
 * for await (const event of subscription) {
 *   if (event.kind === 'gap') continue; // reconnects and drops are marked, see PubSubGap
 *   console.log(event.channel, JSON.parse(event.payload));
 *   break; // closes the subscription
 * }
 * await client.close();
 * ```
 */
export class PubSubClient<Payload extends string | Buffer = string> implements AsyncDisposable {
  readonly #options: ResolvedOptions;
  readonly #topology: ClusterTopology | undefined;
  #commands: RespConnection<unknown> | undefined;
  readonly #subscriptions = new Set<Subscription<Payload>>();
  #closing: Promise<void> | undefined;

  /**
   * @param options A URL (`redis://`, `rediss://`, `unix://`) or options. Payloads are strings
   * unless `payloads: 'buffer'` (then use `PubSubClient<Buffer>`, or {@link createPubSubClient}
   * which infers it).
   * @throws {PubSubError} `ERR_PUBSUB_ARGUMENT` for a bad option or URL.
   */
  constructor(options: PubSubClientOptions | string = {}) {
    this.#options = resolveOptions(options);
    this.#topology = this.#options.cluster ? new ClusterTopology(this.#options) : undefined;
  }

  /**
   * True when the client talks to a Redis Cluster.
   *
   * @example
   * ```ts
   * if (client.isCluster) await client.spublish('{user:42}:events', 'hi');
   * ```
   */
  get isCluster(): boolean {
    return this.#topology !== undefined;
  }

  /**
   * The open subscriptions.
   *
   * @example
   * ```ts
   * const dropped = client.subscriptions.reduce((n, s) => n + s.dropped, 0);
   * ```
   */
  get subscriptions(): readonly Subscription<Payload>[] {
    return [...this.#subscriptions];
  }

  #check(): void {
    if (this.#closing !== undefined)
      throw new PubSubError('ERR_PUBSUB_CLOSED', 'the client is closed; create a new one');
  }

  // -------------------------------------------------------------------------------------------
  // Subscriptions

  /**
   * A new subscription with nothing subscribed yet; it connects on its first (un)subscribe call.
   * Buffer options override the client's for this subscription.
   *
   * @example
   * ```ts
   * const ticks = client.createSubscription({ highWaterMark: 100, overflow: 'drop-oldest' });
   * await ticks.subscribe('prices');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`.
   */
  createSubscription(options: BufferOptions = {}): Subscription<Payload> {
    this.#check();
    const subscription: Subscription<Payload> = new Subscription<Payload>({
      options: this.#options,
      buffer: resolveBuffer(options, this.#options.buffer),
      topology: this.#topology,
      closed: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async #start(subscribe: (subscription: Subscription<Payload>) => Promise<void>): Promise<Subscription<Payload>> {
    const subscription = this.createSubscription();
    try {
      await subscribe(subscription);
    } catch (err) {
      await subscription.close();
      throw err;
    }
    return subscription;
  }

  /**
   * Subscribes to channels on a new subscription; resolves once the server confirmed them.
   *
   * @example
   * ```ts
   * const subscription = await client.subscribe('orders', 'invoices');
   * for await (const event of subscription) if (event.kind === 'message') console.log(event.payload);
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`.
   */
  subscribe(...channels: string[]): Promise<Subscription<Payload>> {
    return this.#start((s) => s.subscribe(...channels));
  }

  /**
   * Subscribes to patterns on a new subscription.
   *
   * @example
   * ```ts
   * const audit = await client.psubscribe('audit:*');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`.
   */
  psubscribe(...patterns: string[]): Promise<Subscription<Payload>> {
    return this.#start((s) => s.psubscribe(...patterns));
  }

  /**
   * Subscribes to shard channels on a new subscription (Redis 7+; in a cluster, at the owner of
   * each channel's slot).
   *
   * @example
   * ```ts
   * const events = await client.ssubscribe('{user:42}:events');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_CLUSTER`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`.
   */
  ssubscribe(...shardChannels: string[]): Promise<Subscription<Payload>> {
    return this.#start((s) => s.ssubscribe(...shardChannels));
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  /** The standalone command connection, made and connected on first use. */
  #standalone(): RespConnection<unknown> {
    let connection = this.#commands;
    if (connection === undefined) {
      connection = new RespConnection<unknown>({
        ...this.#options.connection,
        commandTimeout: this.#options.commandTimeout || undefined,
      });
      this.#commands = connection;
    }
    if (connection.status === 'idle') connection.connect().catch(() => {}); // commands waiting fail with the error
    return connection;
  }

  #commandError(err: unknown, what: string): PubSubError {
    if (err instanceof PubSubError) return err;
    if (err instanceof ReplyError) {
      if (err.prefix === 'NOPERM') {
        return new PubSubError(
          'ERR_PUBSUB_NOPERM',
          `${what} was refused: the ACL user may not do it (${err.message}); grant the command and channel with ACL SETUSER`,
          { cause: err },
        );
      }
      return new PubSubError('ERR_PUBSUB_REFUSED', `${what} was refused by the server: ${err.message}`, { cause: err });
    }
    const code =
      err instanceof RespError && (err.code === 'ERR_RESP_CONNECT' || err.code === 'ERR_RESP_HANDSHAKE')
        ? 'ERR_PUBSUB_CONNECTION'
        : err instanceof RespError && err.code === 'ERR_RESP_TIMEOUT'
          ? 'ERR_PUBSUB_TIMEOUT'
          : 'ERR_PUBSUB_COMMAND';
    return new PubSubError(code, `${what} failed: ${(err as Error).message}`, { cause: err });
  }

  async #send<T>(command: Command, what: string): Promise<T> {
    this.#check();
    try {
      return await this.#standalone().send<T>(command);
    } catch (err) {
      throw this.#commandError(err, what);
    }
  }

  /** Cluster: a command for the owner of a slot, following MOVED and ASK. */
  async #toSlot<T>(slot: number, command: Command, what: string): Promise<T> {
    this.#check();
    const topology = this.#topology as ClusterTopology;
    let target: ClusterNode | undefined;
    let asking = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const node = target ?? (await topology.ownerOf(slot));
        if (asking) {
          const connection = topology.connection(node);
          if (connection.status === 'idle') await connection.connect();
          const [, reply] = await Promise.all([connection.send(['ASKING']), connection.send<T>(command)]);
          return reply;
        }
        return await topology.command<T>(node, command as (string | number | Buffer)[]);
      } catch (err) {
        if (attempt >= MAX_REDIRECTS) throw this.#commandError(err, what);
        if (err instanceof ReplyError && (err.prefix === 'MOVED' || err.prefix === 'ASK')) {
          const redirect = parseRedirect(err);
          if (redirect === undefined) throw this.#commandError(err, what);
          asking = err.prefix === 'ASK';
          target = asking
            ? { host: redirect.host, port: redirect.port, key: `${redirect.host}:${redirect.port}` }
            : topology.noteRedirect(slot, redirect.host, redirect.port);
          if (!asking) topology.refresh().catch(() => {});
          continue;
        }
        if (err instanceof RespError && !(err instanceof ReplyError) && err.code !== 'ERR_RESP_TIMEOUT') {
          // The node is unreachable: a failover may have moved the slot.
          target = undefined;
          asking = false;
          await topology.refresh().catch(() => {});
          continue;
        }
        throw this.#commandError(err, what);
      }
    }
  }

  /** Cluster: the slot map, loaded. */
  async #loadedTopology(what: string): Promise<ClusterTopology> {
    this.#check();
    const topology = this.#topology as ClusterTopology;
    try {
      await topology.ready();
    } catch (err) {
      throw this.#commandError(err, what);
    }
    return topology;
  }

  /** Cluster: a command for any master. */
  async #toAny<T>(command: Command, what: string): Promise<T> {
    const topology = await this.#loadedTopology(what);
    let last: unknown;
    for (const node of topology.masters) {
      try {
        return await topology.command<T>(node, command as (string | number | Buffer)[]);
      } catch (err) {
        if (err instanceof ReplyError) throw this.#commandError(err, what);
        last = err;
      }
    }
    throw this.#commandError(last ?? new PubSubError('ERR_PUBSUB_CLUSTER', 'no master is known'), what);
  }

  /** Cluster: a command on every node (masters and replicas), answers in node order. */
  async #toEvery(command: Command, what: string): Promise<unknown[]> {
    const topology = await this.#loadedTopology(what);
    const targets = topology.nodes;
    try {
      return await Promise.all(targets.map((n) => topology.command(n, command as (string | number | Buffer)[])));
    } catch (err) {
      throw this.#commandError(err, `${what} (asked on every node)`);
    }
  }

  /**
   * Publishes a message to a channel; resolves with the number of subscribers that received it
   * (in a cluster: those connected to the node that took the command).
   *
   * @example
   * ```ts
   * const receivers = await client.publish('orders', JSON.stringify({ id: 1 }));
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND` (connection lost), `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`.
   */
  publish(channel: string, message: string | Buffer): Promise<number> {
    try {
      const command: Command = ['PUBLISH', checkName('publish', channel), checkPayload('publish', message)];
      const what = `PUBLISH to ${JSON.stringify(channel)}`;
      const run = () => (this.#topology ? this.#toAny<number>(command, what) : this.#send<number>(command, what));
      return publishChannel.hasSubscribers ? this.#traced('PUBLISH', channel, message, run) : run();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A publish on the `redis-events:pubsub:publish` tracing channel. */
  #traced(
    command: PublishTrace['command'],
    channel: string,
    message: string | Buffer,
    run: () => Promise<number>,
  ): Promise<number> {
    const standalone = this.#topology === undefined;
    const connection = this.#options.connection;
    const trace: PublishTrace = {
      command,
      destination: channel,
      bodySize: typeof message === 'string' ? Buffer.byteLength(message) : message.length,
      serverAddress: standalone ? (connection.path ?? connection.host) : undefined,
      serverPort: standalone && connection.path === undefined ? connection.port : undefined,
    };
    return publishChannel.tracePromise(run, trace);
  }

  /**
   * Publishes a message to a shard channel (Redis 7+); in a cluster, at the master of its slot.
   * Resolves with the number of shard subscribers that received it.
   *
   * @example
   * ```ts
   * await client.spublish('{user:42}:events', 'logged-in');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_CLUSTER`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`.
   */
  spublish(shardChannel: string, message: string | Buffer): Promise<number> {
    try {
      const command: Command = ['SPUBLISH', checkName('spublish', shardChannel), checkPayload('spublish', message)];
      const what = `SPUBLISH to ${JSON.stringify(shardChannel)}`;
      const run = () =>
        this.#topology ? this.#toSlot<number>(keySlot(shardChannel), command, what) : this.#send<number>(command, what);
      return publishChannel.hasSubscribers ? this.#traced('SPUBLISH', shardChannel, message, run) : run();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `PUBSUB CHANNELS [pattern]`: channels with at least one subscriber (pattern subscribers do
   * not count). In a cluster, the union over every node.
   *
   * @example
   * ```ts
   * await client.pubSubChannels('orders:*'); // ['orders:eu', 'orders:us']
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`.
   */
  pubSubChannels(pattern?: string): Promise<string[]> {
    return this.#listing('CHANNELS', 'pubSubChannels', pattern);
  }

  /**
   * `PUBSUB NUMSUB channel...`: subscribers per channel (pattern subscribers do not count). In a
   * cluster, summed over every node.
   *
   * @example
   * ```ts
   * await client.pubSubNumSub('orders', 'invoices'); // Map { 'orders' => 2, 'invoices' => 0 }
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`.
   */
  pubSubNumSub(...channels: string[]): Promise<Map<string, number>> {
    return this.#counting('NUMSUB', 'pubSubNumSub', channels);
  }

  /**
   * `PUBSUB NUMPAT`: pattern subscriptions (of all clients). In a cluster, summed over every node.
   *
   * @example
   * ```ts
   * await client.pubSubNumPat(); // 3
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`.
   */
  async pubSubNumPat(): Promise<number> {
    const command: Command = ['PUBSUB', 'NUMPAT'];
    if (!this.#topology) return Number(await this.#send(command, 'PUBSUB NUMPAT'));
    const replies = await this.#toEvery(command, 'PUBSUB NUMPAT');
    return replies.reduce<number>((sum, n) => sum + Number(n), 0);
  }

  /**
   * `PUBSUB SHARDCHANNELS [pattern]` (Redis 7+): shard channels with at least one subscriber. In
   * a cluster, the union over every node.
   *
   * @example
   * ```ts
   * await client.pubSubShardChannels('{user:*'); // ['{user:42}:events']
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`.
   */
  pubSubShardChannels(pattern?: string): Promise<string[]> {
    return this.#listing('SHARDCHANNELS', 'pubSubShardChannels', pattern);
  }

  /**
   * `PUBSUB SHARDNUMSUB shardchannel...` (Redis 7+): subscribers per shard channel. In a cluster,
   * summed over every node.
   *
   * @example
   * ```ts
   * await client.pubSubShardNumSub('{user:42}:events'); // Map { '{user:42}:events' => 1 }
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`.
   */
  pubSubShardNumSub(...shardChannels: string[]): Promise<Map<string, number>> {
    return this.#counting('SHARDNUMSUB', 'pubSubShardNumSub', shardChannels);
  }

  /** `PUBSUB CHANNELS` / `SHARDCHANNELS`: in a cluster, the union of every node's answer. */
  async #listing(sub: 'CHANNELS' | 'SHARDCHANNELS', method: string, pattern: string | undefined): Promise<string[]> {
    const command: Command = pattern === undefined ? ['PUBSUB', sub] : ['PUBSUB', sub, checkName(method, pattern)];
    if (!this.#topology) return names(await this.#send(command, `PUBSUB ${sub}`));
    const replies = await this.#toEvery(command, `PUBSUB ${sub}`);
    return [...new Set(replies.flatMap(names))];
  }

  /**
   * `PUBSUB NUMSUB` / `SHARDNUMSUB`: in a cluster, summed over every node, since each counts its
   * own clients (a shard channel's subscribers sit on its slot's master or replicas).
   */
  async #counting(
    sub: 'NUMSUB' | 'SHARDNUMSUB',
    method: string,
    channels: readonly string[],
  ): Promise<Map<string, number>> {
    for (const channel of channels) checkName(method, channel);
    const command: Command = ['PUBSUB', sub, ...channels];
    if (!this.#topology) return counts(await this.#send(command, `PUBSUB ${sub}`));
    const total = new Map<string, number>(channels.map((c) => [c, 0]));
    for (const reply of await this.#toEvery(command, `PUBSUB ${sub}`)) counts(reply, total);
    return total;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Closes every subscription (their iterators end) and the command connection(s).
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => client.close());
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const subscriptions = [...this.#subscriptions];
      await Promise.allSettled(subscriptions.map((s) => s.close()));
      const commands = this.#commands;
      await Promise.allSettled([commands?.close({ timeout: this.#options.closeTimeout }), this.#topology?.close()]);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Options of {@link createPubSubClient} that ask for Buffer payloads.
 *
 * @example
 * ```ts
 * const options: BufferPayloadOptions = { url: 'redis://127.0.0.1:6379', payloads: 'buffer' };
 * const client = createPubSubClient(options); // PubSubClient<Buffer>
 * ```
 */
export type BufferPayloadOptions = PubSubClientOptions & { readonly payloads: 'buffer' };

/**
 * Creates a {@link PubSubClient}; with `payloads: 'buffer'` its messages carry Buffers, and the
 * type says so.
 *
 * @example
 * ```ts
 * const text = createPubSubClient('redis://127.0.0.1:6379'); // PubSubClient<string>
 * const binary = createPubSubClient({ url: 'redis://127.0.0.1:6379', payloads: 'buffer' }); // PubSubClient<Buffer>
 * const cluster = createPubSubClient({ cluster: { nodes: ['10.0.0.1:7000', '10.0.0.2:7000'] } });
 * ```
 * @throws {PubSubError} `ERR_PUBSUB_ARGUMENT` for a bad option or URL.
 */
export function createPubSubClient(options: BufferPayloadOptions): PubSubClient<Buffer>;
export function createPubSubClient(options?: PubSubClientOptions | string): PubSubClient<string>;
export function createPubSubClient(
  options: PubSubClientOptions | string = {},
): PubSubClient<string> | PubSubClient<Buffer> {
  return new PubSubClient<string>(options);
}
