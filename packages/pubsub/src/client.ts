import { abortable, type Command, ReplyError, RespConnection, RespError } from '@redis-events/resp';
import { type ClusterNode, ClusterTopology } from './cluster-topology.ts';
import { type PublishTrace, publishChannel } from './diagnostics.ts';
import { PubSubError } from './errors.ts';
import { keySlot } from './key-slot.ts';
import {
  abortError,
  type CallOptions,
  type CloseOptions,
  checkFields,
  checkSignal,
  closeBound,
  splitOptions,
  within,
} from './lifecycle.ts';
import {
  type PubSubClientOptions,
  provenConnection,
  type ResolvedOptions,
  resolveBuffer,
  resolveOptions,
  SUBSCRIPTION_FIELDS,
  type SubscriptionOptions,
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

/** The signal of a call's options, checked. */
function callSignal(method: string, options: CallOptions | undefined): AbortSignal | undefined {
  checkFields(`the options of ${method}()`, options, ['signal']);
  return checkSignal(`${method}()`, options?.signal);
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
  /** Commands sent and not answered yet (publish, PUBSUB): what close() waits for, or abandons. */
  #inflight = 0;
  #idle: (() => void) | undefined;

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
   * Buffer options override the client's for this subscription; a `signal` closes it when it
   * fires (its iterator ends).
   *
   * @example
   * ```ts
   * const ticks = client.createSubscription({ highWaterMark: 100, overflow: 'drop-oldest' });
   * await ticks.subscribe('prices');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (a signal that already fired).
   */
  createSubscription(options: SubscriptionOptions = {}): Subscription<Payload> {
    this.#check();
    const buffer = resolveBuffer(options, this.#options.buffer);
    const signal = checkSignal('createSubscription()', options.signal);
    if (signal?.aborted) throw abortError('createSubscription()')(signal.reason);
    const subscription: Subscription<Payload> = new Subscription<Payload>({
      options: this.#options,
      buffer,
      topology: this.#topology,
      signal,
      closed: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async #start(
    method: string,
    args: readonly (string | SubscriptionOptions)[],
    subscribe: (subscription: Subscription<Payload>, names: string[], options: CallOptions) => Promise<void>,
  ): Promise<Subscription<Payload>> {
    const { names, options } = splitOptions(method, args, SUBSCRIPTION_FIELDS);
    const subscription = this.createSubscription(options as SubscriptionOptions);
    try {
      await subscribe(subscription, names as string[], { signal: (options as SubscriptionOptions).signal });
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
  subscribe(...channels: string[]): Promise<Subscription<Payload>>;
  subscribe(...args: [...channels: string[], options: SubscriptionOptions]): Promise<Subscription<Payload>>;
  subscribe(...args: (string | SubscriptionOptions)[]): Promise<Subscription<Payload>> {
    return this.#start('subscribe', args, (s, names, options) => s.subscribe(...names, options));
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
  psubscribe(...patterns: string[]): Promise<Subscription<Payload>>;
  psubscribe(...args: [...patterns: string[], options: SubscriptionOptions]): Promise<Subscription<Payload>>;
  psubscribe(...args: (string | SubscriptionOptions)[]): Promise<Subscription<Payload>> {
    return this.#start('psubscribe', args, (s, names, options) => s.psubscribe(...names, options));
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
  ssubscribe(...shardChannels: string[]): Promise<Subscription<Payload>>;
  ssubscribe(...args: [...shardChannels: string[], options: SubscriptionOptions]): Promise<Subscription<Payload>>;
  ssubscribe(...args: (string | SubscriptionOptions)[]): Promise<Subscription<Payload>> {
    return this.#start('ssubscribe', args, (s, names, options) => s.ssubscribe(...names, options));
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  /** The standalone command connection, made and connected on first use. */
  #standalone(): RespConnection<unknown> {
    let connection = this.#commands;
    if (connection === undefined) {
      connection = new RespConnection<unknown>(
        provenConnection({ ...this.#options.connection, commandTimeout: this.#options.commandTimeout || undefined }),
      );
      connection.on('disconnect', ({ cause }) =>
        this.#options.logger.warn(
          { package: '@redis-events/pubsub', address: this.#options.where, err: cause },
          `command connection to ${this.#options.where} lost; reconnecting`,
        ),
      );
      this.#commands = connection;
    }
    if (connection.status === 'idle') connection.connect().catch(() => {}); // commands waiting fail with the error
    return connection;
  }

  /** A failure of a command as this package's error, wrapped once. */
  #commandError(err: unknown, what: string, signal: AbortSignal | undefined): PubSubError {
    if (err instanceof PubSubError) return err;
    if (err instanceof RespError && err.code === 'ERR_RESP_ABORTED')
      return abortError(what)(signal?.reason ?? err.cause);
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
    if (err instanceof RespError && (err.code === 'ERR_RESP_CONNECT' || err.code === 'ERR_RESP_HANDSHAKE')) {
      const where = this.#topology ? 'the cluster' : this.#options.where;
      return new PubSubError('ERR_PUBSUB_CONNECTION', `${what}: cannot reach ${where}: ${err.message}`, { cause: err });
    }
    const code =
      err instanceof RespError && err.code === 'ERR_RESP_TIMEOUT' ? 'ERR_PUBSUB_TIMEOUT' : 'ERR_PUBSUB_COMMAND';
    return new PubSubError(code, `${what} failed: ${(err as Error).message}`, { cause: err });
  }

  /**
   * Runs a command call: refused once the client closes, counted while in flight (what close()
   * waits for), its signal checked first and followed while it waits.
   */
  #command<T>(what: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    try {
      this.#check();
      if (signal?.aborted) throw abortError(what)(signal.reason);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#inflight++;
    const settled = () => {
      if (--this.#inflight === 0) this.#idle?.();
    };
    const work = run();
    work.then(settled, settled);
    return abortable(work, signal, abortError(what));
  }

  async #send<T>(command: Command, what: string, signal: AbortSignal | undefined): Promise<T> {
    try {
      return await this.#standalone().send<T>(command, signal ? { signal } : {});
    } catch (err) {
      throw this.#commandError(err, what, signal);
    }
  }

  /** Cluster: a command for the owner of a slot, following MOVED and ASK. */
  async #toSlot<T>(slot: number, command: Command, what: string, signal: AbortSignal | undefined): Promise<T> {
    const topology = this.#topology as ClusterTopology;
    let target: ClusterNode | undefined;
    let asking = false;
    for (let attempt = 0; ; attempt++) {
      try {
        if (signal?.aborted) throw abortError(what)(signal.reason);
        const node = target ?? (await topology.ownerOf(slot));
        if (asking) {
          const connection = topology.connection(node);
          if (connection.status === 'idle') await connection.connect();
          const [, reply] = await Promise.all([
            connection.send(['ASKING']),
            connection.send<T>(command, signal ? { signal } : {}),
          ]);
          return reply;
        }
        return await topology.command<T>(node, command as (string | number | Buffer)[], undefined, signal);
      } catch (err) {
        if (attempt >= MAX_REDIRECTS) throw this.#commandError(err, what, signal);
        if (err instanceof ReplyError && (err.prefix === 'MOVED' || err.prefix === 'ASK')) {
          const redirect = parseRedirect(err);
          if (redirect === undefined) throw this.#commandError(err, what, signal);
          asking = err.prefix === 'ASK';
          target = asking
            ? { host: redirect.host, port: redirect.port, key: `${redirect.host}:${redirect.port}` }
            : topology.noteRedirect(slot, redirect.host, redirect.port);
          if (!asking) topology.refresh().catch(() => {});
          continue;
        }
        if (
          err instanceof RespError &&
          !(err instanceof ReplyError) &&
          err.code !== 'ERR_RESP_TIMEOUT' &&
          err.code !== 'ERR_RESP_ABORTED'
        ) {
          // The node is unreachable: a failover may have moved the slot.
          target = undefined;
          asking = false;
          await topology.refresh().catch(() => {});
          continue;
        }
        throw this.#commandError(err, what, signal);
      }
    }
  }

  /** Cluster: the slot map, loaded. */
  async #loadedTopology(what: string, signal: AbortSignal | undefined): Promise<ClusterTopology> {
    const topology = this.#topology as ClusterTopology;
    try {
      await abortable(topology.ready(), signal, abortError(what));
    } catch (err) {
      throw this.#commandError(err, what, signal);
    }
    return topology;
  }

  /** Cluster: a command for any master. */
  async #toAny<T>(command: Command, what: string, signal: AbortSignal | undefined): Promise<T> {
    const topology = await this.#loadedTopology(what, signal);
    let last: unknown;
    for (const node of topology.masters) {
      try {
        return await topology.command<T>(node, command as (string | number | Buffer)[], undefined, signal);
      } catch (err) {
        if (err instanceof ReplyError || (err instanceof RespError && err.code === 'ERR_RESP_ABORTED'))
          throw this.#commandError(err, what, signal);
        last = err;
      }
    }
    throw this.#commandError(last ?? new PubSubError('ERR_PUBSUB_CLUSTER', 'no master is known'), what, signal);
  }

  /** Cluster: a command on every node (masters and replicas), answers in node order. */
  async #toEvery(command: Command, what: string, signal: AbortSignal | undefined): Promise<unknown[]> {
    const topology = await this.#loadedTopology(what, signal);
    const targets = topology.nodes;
    try {
      return await Promise.all(
        targets.map((n) => topology.command(n, command as (string | number | Buffer)[], undefined, signal)),
      );
    } catch (err) {
      throw this.#commandError(err, `${what} (asked on every node)`, signal);
    }
  }

  /**
   * Publishes a message to a channel; resolves with the number of subscribers that received it
   * (in a cluster: those connected to the node that took the command).
   *
   * @example
   * ```ts
   * const receivers = await client.publish('orders', JSON.stringify({ id: 1 }));
   * await client.publish('orders', 'hi', { signal: AbortSignal.timeout(1000) });
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND` (connection lost), `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  publish(channel: string, message: string | Buffer, options?: CallOptions): Promise<number> {
    try {
      const command: Command = ['PUBLISH', checkName('publish', channel), checkPayload('publish', message)];
      const what = `PUBLISH to ${JSON.stringify(channel)}`;
      const signal = callSignal('publish', options);
      const run = () =>
        this.#command(what, signal, () =>
          this.#topology ? this.#toAny<number>(command, what, signal) : this.#send<number>(command, what, signal),
        );
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
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_CLUSTER`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  spublish(shardChannel: string, message: string | Buffer, options?: CallOptions): Promise<number> {
    try {
      const command: Command = ['SPUBLISH', checkName('spublish', shardChannel), checkPayload('spublish', message)];
      const what = `SPUBLISH to ${JSON.stringify(shardChannel)}`;
      const signal = callSignal('spublish', options);
      const run = () =>
        this.#command(what, signal, () =>
          this.#topology
            ? this.#toSlot<number>(keySlot(shardChannel), command, what, signal)
            : this.#send<number>(command, what, signal),
        );
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
   * await client.pubSubChannels(undefined, { signal: AbortSignal.timeout(1000) }); // every channel
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ABORTED`.
   */
  pubSubChannels(pattern?: string, options?: CallOptions): Promise<string[]> {
    return this.#listing('CHANNELS', 'pubSubChannels', pattern, options);
  }

  /**
   * `PUBSUB NUMSUB channel...`: subscribers per channel (pattern subscribers do not count). In a
   * cluster, summed over every node.
   *
   * @example
   * ```ts
   * await client.pubSubNumSub('orders', 'invoices'); // Map { 'orders' => 2, 'invoices' => 0 }
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ABORTED`.
   */
  pubSubNumSub(...channels: string[]): Promise<Map<string, number>>;
  pubSubNumSub(...args: [...channels: string[], options: CallOptions]): Promise<Map<string, number>>;
  pubSubNumSub(...args: (string | CallOptions)[]): Promise<Map<string, number>> {
    return this.#counting('NUMSUB', 'pubSubNumSub', args);
  }

  /**
   * `PUBSUB NUMPAT`: pattern subscriptions (of all clients). In a cluster, summed over every node.
   *
   * @example
   * ```ts
   * await client.pubSubNumPat(); // 3
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ABORTED`.
   */
  pubSubNumPat(options?: CallOptions): Promise<number> {
    let signal: AbortSignal | undefined;
    try {
      signal = callSignal('pubSubNumPat', options);
    } catch (err) {
      return Promise.reject(err);
    }
    const command: Command = ['PUBSUB', 'NUMPAT'];
    const what = 'PUBSUB NUMPAT';
    return this.#command(what, signal, async () => {
      if (!this.#topology) return Number(await this.#send(command, what, signal));
      const replies = await this.#toEvery(command, what, signal);
      return replies.reduce<number>((sum, n) => sum + Number(n), 0);
    });
  }

  /**
   * `PUBSUB SHARDCHANNELS [pattern]` (Redis 7+): shard channels with at least one subscriber. In
   * a cluster, the union over every node.
   *
   * @example
   * ```ts
   * await client.pubSubShardChannels('{user:*'); // ['{user:42}:events']
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ABORTED`.
   */
  pubSubShardChannels(pattern?: string, options?: CallOptions): Promise<string[]> {
    return this.#listing('SHARDCHANNELS', 'pubSubShardChannels', pattern, options);
  }

  /**
   * `PUBSUB SHARDNUMSUB shardchannel...` (Redis 7+): subscribers per shard channel. In a cluster,
   * summed over every node.
   *
   * @example
   * ```ts
   * await client.pubSubShardNumSub('{user:42}:events'); // Map { '{user:42}:events' => 1 }
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_COMMAND`, `ERR_PUBSUB_REFUSED`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ABORTED`.
   */
  pubSubShardNumSub(...shardChannels: string[]): Promise<Map<string, number>>;
  pubSubShardNumSub(...args: [...shardChannels: string[], options: CallOptions]): Promise<Map<string, number>>;
  pubSubShardNumSub(...args: (string | CallOptions)[]): Promise<Map<string, number>> {
    return this.#counting('SHARDNUMSUB', 'pubSubShardNumSub', args);
  }

  /** `PUBSUB CHANNELS` / `SHARDCHANNELS`: in a cluster, the union of every node's answer. */
  #listing(
    sub: 'CHANNELS' | 'SHARDCHANNELS',
    method: string,
    pattern: string | undefined,
    options: CallOptions | undefined,
  ): Promise<string[]> {
    let command: Command;
    let signal: AbortSignal | undefined;
    try {
      signal = callSignal(method, options);
      command = pattern === undefined ? ['PUBSUB', sub] : ['PUBSUB', sub, checkName(method, pattern)];
    } catch (err) {
      return Promise.reject(err);
    }
    const what = `PUBSUB ${sub}`;
    return this.#command(what, signal, async () => {
      if (!this.#topology) return names(await this.#send(command, what, signal));
      const replies = await this.#toEvery(command, what, signal);
      return [...new Set(replies.flatMap(names))];
    });
  }

  /**
   * `PUBSUB NUMSUB` / `SHARDNUMSUB`: in a cluster, summed over every node, since each counts its
   * own clients (a shard channel's subscribers sit on its slot's master or replicas).
   */
  #counting(
    sub: 'NUMSUB' | 'SHARDNUMSUB',
    method: string,
    args: readonly (string | CallOptions)[],
  ): Promise<Map<string, number>> {
    let channels: string[];
    let signal: AbortSignal | undefined;
    try {
      const split = splitOptions(method, args);
      signal = checkSignal(`${method}()`, split.options.signal);
      channels = split.names.map((channel) => checkName(method, channel));
    } catch (err) {
      return Promise.reject(err);
    }
    const command: Command = ['PUBSUB', sub, ...channels];
    const what = `PUBSUB ${sub}`;
    return this.#command(what, signal, async () => {
      if (!this.#topology) return counts(await this.#send(command, what, signal));
      const total = new Map<string, number>(channels.map((c) => [c, 0]));
      for (const reply of await this.#toEvery(command, what, signal)) counts(reply, total);
      return total;
    });
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Closes the client: new calls fail with `ERR_PUBSUB_CLOSED`, every subscription closes (their
   * iterators end), then the commands still in flight (publish, PUBSUB) get until the bound
   * (`timeoutMs`, default `closeTimeout`, or until `signal` fires) to be answered, and the
   * command connections close. Resolves when nothing was abandoned; otherwise rejects with
   * `ERR_PUBSUB_ABANDONED`, whose `abandoned` says how many commands were given up (the server
   * may or may not have run them). A second call returns the first one's promise.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => {
   *   client.close({ timeoutMs: 5000 }).catch((err) => console.error(err.message, err.abandoned));
   * });
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_ABANDONED`, `ERR_PUBSUB_ARGUMENT` (a bad option).
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    let bound: { timeoutMs: number; signal: AbortSignal | undefined };
    try {
      bound = closeBound(options, this.#options.closeTimeout);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#closing = (async () => {
      const deadline = Date.now() + bound.timeoutMs;
      const left = () => Math.max(0, deadline - Date.now());
      const subscriptions = [...this.#subscriptions];
      await Promise.allSettled(subscriptions.map((s) => s.close({ timeoutMs: left(), signal: bound.signal })));
      const idle = new Promise<void>((resolve) => {
        this.#idle = resolve;
        if (this.#inflight === 0) resolve();
      });
      await within(idle, left(), bound.signal);
      const abandoned = this.#inflight;
      const commands = this.#commands;
      if (abandoned > 0) {
        commands?.destroy();
        await this.#topology?.close(0);
      } else {
        await Promise.allSettled([commands?.close({ timeout: left() }), this.#topology?.close(left())]);
      }
      if (abandoned > 0) {
        const error = new PubSubError(
          'ERR_PUBSUB_ABANDONED',
          `the client closed with ${abandoned} command${abandoned === 1 ? '' : 's'} (publish, PUBSUB) still unanswered after ${bound.timeoutMs} ms: the server may or may not have run ${abandoned === 1 ? 'it' : 'them'}`,
          { abandoned: { commands: abandoned } },
        );
        this.#options.logger.warn({ package: '@redis-events/pubsub', err: error }, error.message);
        throw error;
      }
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
