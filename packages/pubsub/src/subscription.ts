import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterNode, ClusterTopology } from './cluster-topology.ts';
import {
  type DropEvent,
  dropChannel,
  type GapEvent,
  gapChannel,
  type MessageEvent,
  messageChannel,
  type SubscribeTrace,
  subscribeChannel,
} from './diagnostics.ts';
import { PubSubError } from './errors.ts';
import { type MessageKind, SUBSCRIBE_COMMAND, type SubscriptionKind, UNSUBSCRIBE_COMMAND } from './frames.ts';
import { groupBySlot, keySlot } from './key-slot.ts';
import {
  abortError,
  type CallOptions,
  type CloseOptions,
  checkSignal,
  closeBound,
  splitOptions,
  within,
} from './lifecycle.ts';
import { type GapInput, MessageBuffer, type OpenGap, type PubSubGap } from './message-buffer.ts';
import { nodeConnection, type ResolvedOptions } from './options.ts';
import {
  MovedError,
  type ReconnectingInfo,
  type RestoredInfo,
  SubscriberConnection,
  type SubscriberHost,
} from './subscriber-connection.ts';

/**
 * A message received by a subscription.
 *
 * @example
 * ```ts
 * for await (const event of subscription) {
 *   if (event.kind === 'gap') continue;
 *   // event.kind: 'message' (a channel), 'pmessage' (a pattern) or 'smessage' (a shard channel)
 *   console.log(event.channel, event.pattern, event.payload);
 * }
 * ```
 */
export interface PubSubMessage<Payload extends string | Buffer = string> {
  readonly kind: MessageKind;
  /** The channel it was published to. */
  readonly channel: string;
  /** The pattern that matched (`pmessage`), else `undefined`. */
  readonly pattern: string | undefined;
  /** A string (UTF-8), or a Buffer with the client option `payloads: 'buffer'`. */
  readonly payload: Payload;
}

/**
 * What a subscription's async iterator yields: messages, and gaps where messages may be missing.
 *
 * @example
 * ```ts
 * function handle(event: SubscriptionEvent) {
 *   if (event.kind === 'gap') reload(event.channels);
 *   else apply(event.channel, event.payload);
 * }
 * ```
 */
export type SubscriptionEvent<Payload extends string | Buffer = string> = PubSubMessage<Payload> | PubSubGap;

/**
 * Events of a {@link Subscription}. Each names the node (`host:port`) concerned.
 *
 * @example
 * ```ts
 * subscription.on('disconnect', ({ node, cause }) => log.warn({ node }, cause.message));
 * subscription.on('reconnect', ({ node, since }) => log.info({ node, downMs: Date.now() - since }));
 * ```
 */
export interface SubscriptionEvents {
  /** A subscriber connection was lost: messages published from now on are missed until `reconnect`. */
  disconnect: [info: { readonly node: string; readonly cause: PubSubError }];
  /** A reconnect attempt is scheduled in `delay` ms. */
  reconnecting: [
    info: { readonly node: string; readonly attempt: number; readonly delay: number; readonly cause: PubSubError },
  ];
  /** Connected again and every subscription restored; a `reconnect` gap is in the iterator. */
  reconnect: [
    info: { readonly node: string; readonly attempt: number; readonly since: number; readonly cause: PubSubError },
  ];
  /** A gap was added to the stream (`reconnect` or `moved`; drops are counted in `dropped`). */
  gap: [gap: PubSubGap];
  /** Subscriptions the server took away and that could not be restored (an ACL change refused them). */
  lost: [info: { readonly kind: SubscriptionKind; readonly names: readonly string[]; readonly error: PubSubError }];
  /** The subscription ended: closed (`error` undefined), overflow, or reconnecting gave up. */
  end: [info: { readonly error: PubSubError | undefined }];
}

/** What a subscription needs from its client. */
export interface SubscriptionContext {
  readonly options: ResolvedOptions;
  readonly buffer: ResolvedOptions['buffer'];
  readonly topology: ClusterTopology | undefined;
  /** Ends the subscription when it fires. */
  readonly signal?: AbortSignal | undefined;
  /** Called once the subscription is closed or ended. */
  readonly closed: () => void;
}

/** Subscription ids, unique in the process (diagnostics contexts carry them). */
let nextId = 1;

/** How often a shard channel is redirected before the call fails. */
const MAX_REDIRECTS = 5;
/** Failed reconnects of a cluster node's connection before the slot map is consulted. */
const EVACUATE_AFTER = 3;

/** A failure as this package's error (they all are; anything else is wrapped once). */
function asPubSubError(err: unknown): PubSubError {
  return err instanceof PubSubError
    ? err
    : new PubSubError('ERR_PUBSUB_CONNECTION', (err as Error)?.message ?? String(err), { cause: err });
}

/** The server refused the names for good (ACL, unknown command...): they are not asked any more. */
function isRefusal(err: unknown): boolean {
  return err instanceof PubSubError && (err.code === 'ERR_PUBSUB_NOPERM' || err.code === 'ERR_PUBSUB_REFUSED');
}

/** A subscribe that failed for good: refused, or its connection could not be opened at all. */
function isWithdrawn(err: unknown, connection: SubscriberConnection<string | Buffer>): boolean {
  return (
    isRefusal(err) ||
    (err instanceof PubSubError && err.code === 'ERR_PUBSUB_CONNECTION' && connection.status === 'idle')
  );
}

function closedError(): PubSubError {
  return new PubSubError('ERR_PUBSUB_CLOSED', 'the subscription is closed; create a new one with client.subscribe()');
}

/**
 * A set of channels, patterns and shard channels on a dedicated subscriber connection (in a
 * cluster: one for channels and patterns, one per node for shard channels), read as an async
 * iterator of messages and gaps. Create one with {@link PubSubClient.subscribe},
 * {@link PubSubClient.psubscribe}, {@link PubSubClient.ssubscribe} or
 * {@link PubSubClient.createSubscription}.
 *
 * Each (un)subscribe method resolves once the server confirmed it. After a reconnect every
 * subscription is restored before anything else, and a `reconnect` gap marks where messages
 * may be missing. The buffer between the connection and your loop is bounded: what does not fit
 * is dropped per the overflow policy and counted in {@link dropped}.
 *
 * Breaking out of a `for await` loop closes the subscription.
 *
 * @example
 * ```ts
 * await using subscription = await client.subscribe('orders');
 * await subscription.psubscribe('audit:*');
 * for await (const event of subscription) {
 *   if (event.kind === 'gap') console.warn('messages may be missing', event.reason);
 *   else console.log(event.channel, event.payload);
 * }
 * ```
 */
export class Subscription<Payload extends string | Buffer = string>
  extends EventEmitter<SubscriptionEvents>
  implements AsyncIterableIterator<SubscriptionEvent<Payload>, undefined>, AsyncDisposable
{
  /**
   * A number unique in the process, carried by the diagnostics channels' contexts of this
   * subscription (its calls, messages, drops and gaps).
   */
  readonly id: number = nextId++;
  readonly #context: SubscriptionContext;
  readonly #buffer: MessageBuffer<PubSubMessage<Payload>>;
  readonly #host: SubscriberHost<Payload>;
  /** Standalone: the one connection. */
  #single: SubscriberConnection<Payload> | undefined;
  /** Cluster: the connection for channels and patterns. */
  #classic: SubscriberConnection<Payload> | undefined;
  #classicPending: Promise<SubscriberConnection<Payload>> | undefined;
  /** Cluster: the node the classic connection is moving away from, while it moves. */
  #classicAvoid: string | undefined;
  /** Cluster: one connection per node for shard channels. */
  readonly #shards = new Map<string, SubscriberConnection<Payload>>();
  /** What was asked, per kind, wherever it lives now: the truth that connections follow. */
  readonly #asked: Record<SubscriptionKind, Set<string>> = { channel: new Set(), pattern: new Set(), shard: new Set() };
  readonly #evacuating = new WeakSet<SubscriberConnection<Payload>>();
  readonly #lostAt = new WeakMap<SubscriberConnection<Payload>, { since: number; cause: PubSubError }>();
  /** Cluster: the node of each connection. */
  readonly #nodes = new WeakMap<SubscriberConnection<Payload>, ClusterNode>();
  /** The open gap of each connection being restored. */
  readonly #openGaps = new Map<SubscriberConnection<Payload>, OpenGap>();
  #closing: Promise<void> | undefined;
  #ended = false;
  #stopTopology: (() => void) | undefined;
  /** The subscribe call that asked each name last (`kind\0name`): an aborted call withdraws only its own. */
  readonly #askedBy = new Map<string, object>();
  /** Removes the listener on the lifetime signal. */
  #unlisten: (() => void) | undefined;

  /** Use {@link PubSubClient.createSubscription}. */
  constructor(context: SubscriptionContext) {
    super();
    this.#context = context;
    const limits = context.buffer;
    this.#buffer = new MessageBuffer(
      {
        highWaterMark: limits.highWaterMark,
        maxBytes: limits.maxBufferedBytes,
        overflow: limits.overflow,
      },
      (message, size) => {
        if (dropChannel.hasSubscribers) this.#publishDrop(message, size);
        this.#noteDrop();
      },
    );
    const buffer = this.#buffer;
    this.#host = {
      message: (connection, kind, channel, pattern, payload) => {
        if (messageChannel.hasSubscribers) this.#publishMessage(connection, kind, channel, pattern, payload);
        const kept = buffer.push({ kind, channel, pattern, payload }, payload.length);
        if (kept === 'overflow') {
          if (dropChannel.hasSubscribers) this.#publishDrop({ kind, channel, pattern, payload }, payload.length);
          this.#overflow();
        }
      },
      disconnected: (connection, cause) => {
        this.#lostAt.set(connection, { since: Date.now(), cause });
        this.#context.options.logger.warn(
          this.#log({ address: connection.where, err: cause }),
          `subscriber connection to ${connection.where} lost; messages are missed until it is back`,
        );
        this.emit('disconnect', { node: connection.where, cause });
      },
      reconnecting: (connection, info) => this.#reconnecting(connection, info),
      resyncing: (connection, info) => {
        this.#closeGap(connection);
        this.#openGaps.set(
          connection,
          this.#buffer.openGap({ reason: 'reconnect', since: info.since, cause: info.cause }),
        );
      },
      restored: (connection, info) => this.#restored(connection, info),
      lost: (connection, kind, names, cause) => this.#lost(connection, kind, names, cause),
      ended: (connection, cause) => this.#connectionEnded(connection, cause),
    };
    if (context.topology === undefined) this.#single = this.#connect(undefined);
    else this.#stopTopology = context.topology.onChange(() => this.#verifyShardHomes());
    const signal = context.signal;
    if (signal !== undefined) {
      const onAbort = () => {
        this.close().catch(() => {});
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** Context fields of every log line of this subscription. */
  #log(fields: object = {}): object {
    return { package: '@redis-events/pubsub', subscriptionId: this.id, ...fields };
  }

  // -------------------------------------------------------------------------------------------
  // What is asked, what is confirmed

  /**
   * The channels asked (subscribed, or being subscribed); see {@link confirmed} for the server's view.
   *
   * @example
   * ```ts
   * void subscription.subscribe('a');
   * subscription.channels; // ['a'] at once
   * ```
   */
  get channels(): string[] {
    return [...this.#asked.channel];
  }

  /** The patterns asked. */
  get patterns(): string[] {
    return [...this.#asked.pattern];
  }

  /** The shard channels asked. */
  get shardChannels(): string[] {
    return [...this.#asked.shard];
  }

  /**
   * What the server confirmed on the current connection(s): lags behind what was asked while
   * a call is in flight or a connection is down.
   *
   * @example
   * ```ts
   * await subscription.subscribe('a');
   * subscription.confirmed().channels; // ['a']
   * ```
   */
  confirmed(): { channels: string[]; patterns: string[]; shardChannels: string[] } {
    const classic = this.#single ?? this.#classic;
    const shard = new Set<string>(this.#single?.confirmed.shard ?? []);
    for (const connection of this.#shards.values()) for (const name of connection.confirmed.shard) shard.add(name);
    return {
      channels: [...(classic?.confirmed.channel ?? [])],
      patterns: [...(classic?.confirmed.pattern ?? [])],
      shardChannels: [...shard],
    };
  }

  /**
   * Messages dropped by the overflow policy since the subscription started.
   *
   * @example
   * ```ts
   * setInterval(() => metrics.gauge('pubsub.dropped', subscription.dropped), 10_000).unref();
   * ```
   */
  get dropped(): number {
    return this.#buffer.dropped;
  }

  /**
   * Messages waiting to be read.
   *
   * @example
   * ```ts
   * if (subscription.buffered > 1000) log.warn('the consumer falls behind');
   * ```
   */
  get buffered(): number {
    return this.#buffer.messages;
  }

  /** Payload bytes (string length for strings) waiting to be read. */
  get bufferedBytes(): number {
    return this.#buffer.bytes;
  }

  /** True once closed or ended; no more calls are accepted. */
  get closed(): boolean {
    return this.#closing !== undefined || this.#ended;
  }

  // -------------------------------------------------------------------------------------------
  // Subscribing

  #names(names: readonly unknown[], method: string, required: boolean): string[] {
    if (this.closed) throw closedError();
    if (required && names.length === 0)
      throw new PubSubError('ERR_PUBSUB_ARGUMENT', `${method}() needs at least one name`);
    for (const name of names) {
      if (typeof name !== 'string') {
        throw new PubSubError(
          'ERR_PUBSUB_ARGUMENT',
          `${method}() takes strings, got ${name === null ? 'null' : typeof name}`,
        );
      }
    }
    return names as string[];
  }

  #run(
    method: string,
    kind: SubscriptionKind,
    subscribe: boolean,
    args: readonly unknown[],
    body: (names: string[]) => Promise<void>,
  ): Promise<void> {
    let list: string[];
    let signal: AbortSignal | undefined;
    try {
      const { names, options } = splitOptions(method, args);
      signal = checkSignal(`${method}()`, options.signal);
      list = this.#names(names, method, subscribe);
      if (signal?.aborted) throw abortError(`${method}()`)(signal.reason);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!subscribeChannel.hasSubscribers) return this.#call(method, kind, subscribe, list, signal, body);
    const single = this.#context.topology === undefined;
    const connection = this.#context.options.connection;
    const trace: SubscribeTrace = {
      command: (subscribe ? SUBSCRIBE_COMMAND : UNSUBSCRIBE_COMMAND)[kind],
      kind,
      destinations: list,
      subscriptionId: this.id,
      serverAddress: single ? (connection.path ?? connection.host) : undefined,
      serverPort: single && connection.path === undefined ? connection.port : undefined,
    };
    return subscribeChannel.tracePromise(() => this.#call(method, kind, subscribe, list, signal, body), trace);
  }

  /**
   * Runs a call with what it asked, within `commandTimeout` and until its signal fires. A
   * subscribe that is aborted withdraws the names it asked (unless a later call asked them
   * again): nothing it started goes on behind the caller's back. An aborted unsubscribe still
   * unsubscribes; it only stops waiting for the confirmation.
   */
  #call(
    method: string,
    kind: SubscriptionKind,
    subscribe: boolean,
    list: string[],
    signal: AbortSignal | undefined,
    body: (names: string[]) => Promise<void>,
  ): Promise<void> {
    const token = {};
    if (subscribe) for (const name of list) this.#askedBy.set(`${kind}\0${name}`, token);
    const work = body(list);
    const timeout = this.#context.options.commandTimeout;
    const release = () => {
      if (!subscribe) return;
      for (const name of list) {
        const key = `${kind}\0${name}`;
        if (this.#askedBy.get(key) === token) this.#askedBy.delete(key);
      }
    };
    if (timeout <= 0 && signal === undefined) return work.finally(release);
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        settle();
        if (subscribe) this.#withdraw(kind, list, token);
        reject(abortError(`${method}()`)(signal?.reason));
      };
      const timer =
        timeout > 0
          ? setTimeout(() => {
              settle();
              release();
              reject(
                new PubSubError(
                  'ERR_PUBSUB_TIMEOUT',
                  `${method}() was not confirmed within ${timeout} ms (commandTimeout): the server is unreachable or slow. What was asked stays asked and takes effect when the connection is back; call the opposite method to cancel it.`,
                ),
              );
            }, timeout)
          : undefined;
      signal?.addEventListener('abort', onAbort, { once: true });
      work.then(
        () => {
          settle();
          release();
          resolve();
        },
        (err: unknown) => {
          settle();
          release();
          reject(err);
        },
      );
    });
  }

  /** An aborted subscribe: what it asked and nothing later asked again is unsubscribed. */
  #withdraw(kind: SubscriptionKind, names: readonly string[], token: object): void {
    const mine = names.filter((name) => {
      const key = `${kind}\0${name}`;
      if (this.#askedBy.get(key) !== token) return false;
      this.#askedBy.delete(key);
      return this.#asked[kind].has(name);
    });
    if (mine.length === 0 || this.closed) return;
    const undo =
      kind === 'channel'
        ? this.unsubscribe(...mine)
        : kind === 'pattern'
          ? this.punsubscribe(...mine)
          : this.sunsubscribe(...mine);
    undo.catch((err: unknown) =>
      this.#context.options.logger.debug(
        this.#log({ kind, names: mine, err }),
        'withdrawing an aborted subscribe failed',
      ),
    );
  }

  /**
   * Subscribes to channels; resolves once the server confirmed each one.
   *
   * @example
   * ```ts
   * await subscription.subscribe('orders', 'invoices');
   * await subscription.subscribe('audit', { signal: AbortSignal.timeout(5000) }); // gives up (and withdraws) after 5 s
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM` (ACL), `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  subscribe(...channels: string[]): Promise<void>;
  subscribe(...args: [...channels: string[], options: CallOptions]): Promise<void>;
  subscribe(...channels: (string | CallOptions)[]): Promise<void> {
    return this.#run('subscribe', 'channel', true, channels, (names) => this.#classicChange('channel', true, names));
  }

  /**
   * Unsubscribes from channels, or from every channel of this subscription when called without
   * arguments; resolves once the server confirmed.
   *
   * @example
   * ```ts
   * await subscription.unsubscribe('orders');
   * await subscription.unsubscribe(); // every channel; patterns and shard channels stay
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  unsubscribe(...channels: string[]): Promise<void>;
  unsubscribe(...args: [...channels: string[], options: CallOptions]): Promise<void>;
  unsubscribe(...channels: (string | CallOptions)[]): Promise<void> {
    return this.#run('unsubscribe', 'channel', false, channels, (names) =>
      this.#classicChange('channel', false, names),
    );
  }

  /**
   * Subscribes to glob-style patterns (`news.*`, `user:?:events`); resolves once confirmed.
   *
   * @example
   * ```ts
   * await subscription.psubscribe('audit:*');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  psubscribe(...patterns: string[]): Promise<void>;
  psubscribe(...args: [...patterns: string[], options: CallOptions]): Promise<void>;
  psubscribe(...patterns: (string | CallOptions)[]): Promise<void> {
    return this.#run('psubscribe', 'pattern', true, patterns, (names) => this.#classicChange('pattern', true, names));
  }

  /**
   * Unsubscribes from patterns, or from every pattern when called without arguments.
   *
   * @example
   * ```ts
   * await subscription.punsubscribe('audit:*');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  punsubscribe(...patterns: string[]): Promise<void>;
  punsubscribe(...args: [...patterns: string[], options: CallOptions]): Promise<void>;
  punsubscribe(...patterns: (string | CallOptions)[]): Promise<void> {
    return this.#run('punsubscribe', 'pattern', false, patterns, (names) =>
      this.#classicChange('pattern', false, names),
    );
  }

  /**
   * Channels and patterns: what is asked changes now (synchronously), the connection follows.
   * Standalone, an argument-less unsubscribe is sent as such (it settles on the count the
   * server reports); in a cluster, as the names the connection holds that are not asked.
   */
  async #classicChange(kind: 'channel' | 'pattern', subscribe: boolean, names: string[]): Promise<void> {
    const asked = this.#asked[kind];
    const all = !subscribe && names.length === 0;
    if (subscribe) for (const name of names) asked.add(name);
    else if (all) asked.clear();
    else for (const name of names) asked.delete(name);
    let connection = this.#single ?? this.#classic;
    let list: string[] | null = all ? null : names;
    for (let attempt = 0; ; attempt++) {
      if (connection === undefined) {
        // Cluster: nothing to unsubscribe before the connection exists, unless it is being made.
        if (!subscribe && this.#classicPending === undefined) return;
        connection = await this.#classicConnection();
      }
      if (connection !== this.#single) {
        // Cluster: calls made while this one waited (for the connection, or for another one
        // after its connection was replaced) may have reached the connection first: what it
        // still has to do is what is asked now (the last call for a name wins).
        list = subscribe
          ? names.filter((n) => asked.has(n))
          : (all ? [...connection.asked[kind], ...connection.confirmed[kind]] : names).filter((n) => !asked.has(n));
        if (list.length === 0) return;
      }
      try {
        await connection.change(kind, subscribe, list);
        return;
      } catch (err) {
        if (subscribe && isWithdrawn(err, connection)) for (const name of list ?? []) asked.delete(name);
        // Cluster: the connection was replaced (moved to another node) while the call waited;
        // its replacement subscribes what is asked, and the call settles there.
        if (this.#replaced(err, connection) && attempt < MAX_REDIRECTS) {
          connection = this.#classic;
          continue;
        }
        throw err;
      }
    }
  }

  /** A call failed because the subscription (not itself) moved it away from its connection. */
  #replaced(err: unknown, connection: SubscriberConnection<Payload>): boolean {
    return (
      this.#context.topology !== undefined &&
      !this.closed &&
      connection.isClosing &&
      err instanceof PubSubError &&
      err.code === 'ERR_PUBSUB_CLOSED'
    );
  }

  /**
   * Subscribes to shard channels (Redis 7+): in a cluster, at the master that owns each
   * channel's slot, with one SSUBSCRIBE per slot. Resolves once confirmed.
   *
   * @example
   * ```ts
   * await subscription.ssubscribe('{user:42}:events', '{user:42}:presence');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_NOPERM`, `ERR_PUBSUB_REFUSED` (server older than 7.0), `ERR_PUBSUB_CLUSTER`, `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  ssubscribe(...shardChannels: string[]): Promise<void>;
  ssubscribe(...args: [...shardChannels: string[], options: CallOptions]): Promise<void>;
  ssubscribe(...shardChannels: (string | CallOptions)[]): Promise<void> {
    return this.#run('ssubscribe', 'shard', true, shardChannels, async (names) => {
      for (const name of names) this.#asked.shard.add(name);
      const single = this.#single;
      if (single) {
        await single.change('shard', true, names).catch((err: unknown) => {
          if (err instanceof MovedError || isWithdrawn(err, single))
            for (const name of names) this.#asked.shard.delete(name);
          throw err instanceof MovedError ? this.#notCluster(err) : err;
        });
        return;
      }
      const groups = [...groupBySlot(names)];
      const results = await Promise.allSettled(groups.map(([slot, group]) => this.#homeShard(slot, group)));
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    });
  }

  /**
   * Unsubscribes from shard channels, or from every shard channel when called without arguments.
   *
   * @example
   * ```ts
   * await subscription.sunsubscribe('{user:42}:presence');
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_TIMEOUT`, `ERR_PUBSUB_CONNECTION`, `ERR_PUBSUB_CLOSED`, `ERR_PUBSUB_ARGUMENT`, `ERR_PUBSUB_ABORTED` (its `signal`).
   */
  sunsubscribe(...shardChannels: string[]): Promise<void>;
  sunsubscribe(...args: [...shardChannels: string[], options: CallOptions]): Promise<void>;
  sunsubscribe(...shardChannels: (string | CallOptions)[]): Promise<void> {
    return this.#run('sunsubscribe', 'shard', false, shardChannels, async (names) => {
      const list = names.length === 0 ? [...this.#asked.shard] : names;
      for (const name of list) this.#asked.shard.delete(name);
      if (this.#single) {
        await this.#single.change('shard', false, names.length === 0 ? null : names);
        return;
      }
      const work: Promise<void>[] = [];
      for (const connection of this.#shards.values()) {
        const here = list.filter((n) => connection.asked.shard.has(n) || connection.confirmed.shard.has(n));
        if (here.length === 0) continue;
        work.push(
          this.#shardChange(connection, false, here).catch((err: unknown) => {
            // A connection closed meanwhile holds nothing any more.
            if (!(err instanceof PubSubError && err.code === 'ERR_PUBSUB_CLOSED')) throw err;
          }),
        );
      }
      const results = await Promise.allSettled(work);
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    });
  }

  #notCluster(err: MovedError): PubSubError {
    return new PubSubError(
      'ERR_PUBSUB_CLUSTER',
      `${this.#context.options.where} is a Redis Cluster node (${err.message}); create the client with cluster: true to route shard channels to their nodes`,
      { cause: err.cause },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Connections

  #connect(node: ClusterNode | undefined): SubscriberConnection<Payload> {
    const o = this.#context.options;
    const connection = new SubscriberConnection<Payload>(this.#host, {
      connection: node === undefined ? o.connection : nodeConnection(o, node),
      buffers: o.buffers,
      maxPayloadLength: o.maxPayloadLength,
      healthCheckInterval: o.healthCheckInterval,
      healthCheckTimeout: o.healthCheckTimeout,
      closeTimeout: o.closeTimeout,
      where: node?.key ?? o.where,
    });
    if (node !== undefined) this.#nodes.set(connection, node);
    return connection;
  }

  /** The connection for channels and patterns (in a cluster: on a random master, made on first use). */
  #classicConnection(avoid: string | undefined = this.#classicAvoid): Promise<SubscriberConnection<Payload>> {
    if (this.#single) return Promise.resolve(this.#single);
    if (this.#classic && !this.#classic.isClosing) return Promise.resolve(this.#classic);
    const topology = this.#context.topology as ClusterTopology;
    this.#classicPending ??= (async () => {
      await topology.ready();
      const masters = topology.masters;
      const choices = masters.length > 1 && avoid !== undefined ? masters.filter((m) => m.key !== avoid) : masters;
      const node = choices[Math.floor(Math.random() * choices.length)] as ClusterNode;
      if (this.closed) throw closedError();
      this.#classic = this.#connect(node);
      return this.#classic;
    })().finally(() => {
      this.#classicPending = undefined;
    });
    return this.#classicPending;
  }

  /** The shard connection of a node (made on first use). */
  #shardConnection(node: ClusterNode): SubscriberConnection<Payload> {
    let connection = this.#shards.get(node.key);
    if (connection === undefined || connection.isClosing) {
      connection = this.#connect(node);
      this.#shards.set(node.key, connection);
    }
    return connection;
  }

  /**
   * Closes a shard connection that holds nothing and has no call in progress (at once when it
   * is not connected). Called whenever a call on it settles, so the last one closes it; a call
   * still waiting there (a subscribe overtaken by an unsubscribe) settles normally first.
   */
  #release(connection: SubscriberConnection<Payload>): void {
    if (
      !connection.empty ||
      connection.busy ||
      connection.isClosing ||
      this.#shards.get(connection.where) !== connection
    )
      return;
    this.#shards.delete(connection.where);
    this.#closeGap(connection);
    if (connection.status === 'ready') connection.close().catch(() => {});
    else connection.destroy();
  }

  /** A change on a shard connection; the connection is released once it holds nothing and is idle. */
  #shardChange(connection: SubscriberConnection<Payload>, subscribe: boolean, names: readonly string[]): Promise<void> {
    const change = connection.change('shard', subscribe, names);
    change.then(
      () => this.#release(connection),
      () => this.#release(connection),
    );
    return change;
  }

  /**
   * Subscribes shard channels of one slot at the slot's master, following redirections. What
   * is still asked is read right before the command goes to its connection, in the same tick:
   * an unsubscribe made while the slot's owner was being looked up wins, as it was called later.
   */
  async #homeShard(slot: number, names: readonly string[]): Promise<void> {
    const topology = this.#context.topology as ClusterTopology;
    let target: ClusterNode | undefined;
    for (let redirects = 0; ; redirects++) {
      if (this.closed) return;
      const node = target ?? topology.knownOwner(slot) ?? (await topology.ownerOf(slot));
      const wanted = names.filter((n) => this.#asked.shard.has(n));
      if (wanted.length === 0 || this.closed) return;
      const connection = this.#shardConnection(node);
      try {
        await this.#shardChange(connection, true, wanted);
        return;
      } catch (err) {
        if (this.#replaced(err, connection) && redirects < MAX_REDIRECTS) {
          // Evacuated (its node failed) while the call waited: go where the slot is now.
          target = undefined;
          continue;
        }
        if (err instanceof MovedError && redirects < MAX_REDIRECTS) {
          target = topology.noteRedirect(slot, err.host, err.port);
          this.#release(connection);
          topology.refresh().catch(() => {}); // the map is stale; the redirection tells enough to go on
          continue;
        }
        if (isWithdrawn(err, connection)) for (const name of wanted) this.#asked.shard.delete(name);
        if (err instanceof MovedError) {
          throw new PubSubError(
            'ERR_PUBSUB_CLUSTER',
            `shard channels ${wanted.join(', ')} were redirected ${MAX_REDIRECTS} times (last: ${err.message}); is a slot migration stuck?`,
            { cause: err.cause },
          );
        }
        throw err;
      }
    }
  }

  /**
   * Moves shard channels to the current owner of their slot, retrying with the reconnect
   * backoff while nodes are unreachable. An open gap marks the place in the stream; it closes
   * once every slot is subscribed again (or given up).
   */
  #rehome(names: readonly string[], reason: 'moved' | 'reconnect', since: number, cause: PubSubError): void {
    const topology = this.#context.topology as ClusterTopology;
    const open = this.#buffer.openGap({ reason, shardChannels: names, since, cause });
    const slots = [...groupBySlot(names)].map(async ([slot, group]) => {
      for (let attempt = 1; !this.closed; attempt++) {
        await topology.refresh().catch(() => {});
        try {
          await this.#homeShard(slot, group);
          return;
        } catch (err) {
          if (this.closed) return;
          const error = asPubSubError(err);
          const delay = isRefusal(err) ? false : this.#delay(attempt, error);
          if (delay === false) {
            for (const name of group) this.#asked.shard.delete(name);
            this.#emitLost('shard', group, error);
            return;
          }
          await sleep(delay);
        }
      }
    });
    void Promise.allSettled(slots).then(() => {
      const restored = names.filter((n) => this.#asked.shard.has(n));
      const gap = this.#buffer.closeGap(open);
      if (restored.length > 0 && !this.closed) this.#emitGap({ ...gap, shardChannels: restored });
    });
  }

  #delay(attempt: number, cause: Error): number | false {
    const strategy = this.#context.options.strategy;
    if (strategy === undefined) return false;
    try {
      return strategy(attempt, cause);
    } catch {
      return false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // What connections report

  /** A `reconnect` or `moved` gap is complete: the `gap` event, and its diagnostics channel. */
  #emitGap(gap: PubSubGap): void {
    this.emit('gap', gap);
    if (!gapChannel.hasSubscribers) return;
    const event: GapEvent = {
      subscriptionId: this.id,
      reason: gap.reason,
      channels: gap.channels,
      patterns: gap.patterns,
      shardChannels: gap.shardChannels,
      cause: gap.cause,
      since: gap.since,
      until: gap.until,
    };
    gapChannel.publish(event);
  }

  #publishMessage(
    connection: SubscriberConnection<Payload>,
    kind: MessageKind,
    channel: string,
    pattern: string | undefined,
    payload: Payload,
  ): void {
    const event: MessageEvent = {
      subscriptionId: this.id,
      kind,
      destination: channel,
      pattern,
      bodySize: typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length,
      serverAddress: connection.serverAddress,
      serverPort: connection.serverPort,
    };
    messageChannel.publish(event);
  }

  #publishDrop(message: PubSubMessage<Payload>, size: number): void {
    const limits = this.#context.buffer;
    const event: DropEvent = {
      subscriptionId: this.id,
      policy: limits.overflow,
      count: 1,
      dropped: this.#buffer.dropped + (limits.overflow === 'error' ? 1 : 0),
      kind: message.kind,
      destination: message.channel,
      bodySize: size,
      buffered: this.#buffer.messages,
      bufferedBytes: this.#buffer.bytes,
      highWaterMark: limits.highWaterMark,
      maxBufferedBytes: limits.maxBufferedBytes,
    };
    dropChannel.publish(event);
  }

  #gap(input: GapInput): void {
    this.#emitGap(this.#buffer.gap(input));
  }

  #reconnecting(connection: SubscriberConnection<Payload>, info: ReconnectingInfo): void {
    this.#context.options.logger.debug(
      this.#log({ address: connection.where, attempt: info.attempt, delayMs: info.delay, err: info.cause }),
      `reconnecting to ${connection.where} in ${info.delay} ms (attempt ${info.attempt})`,
    );
    this.emit('reconnecting', { node: connection.where, attempt: info.attempt, delay: info.delay, cause: info.cause });
    if (this.#context.topology !== undefined && info.attempt >= EVACUATE_AFTER) void this.#evacuate(connection, false);
  }

  /** Closes the open gap of a connection (it is restored, or abandoned). */
  #closeGap(connection: SubscriberConnection<Payload>, update: Omit<GapInput, 'reason'> = {}): PubSubGap | undefined {
    const open = this.#openGaps.get(connection);
    if (open === undefined) return undefined;
    this.#openGaps.delete(connection);
    return this.#buffer.closeGap(open, update);
  }

  #restored(connection: SubscriberConnection<Payload>, info: RestoredInfo): void {
    this.#lostAt.delete(connection);
    const update = {
      channels: info.channels,
      patterns: info.patterns,
      shardChannels: info.shardChannels,
      cause: info.cause,
    };
    const gap = this.#closeGap(connection, update);
    if (gap) this.#emitGap(gap);
    else this.#gap({ reason: 'reconnect', since: info.since, ...update });
    this.#context.options.logger.debug(
      this.#log({ address: connection.where, attempt: info.attempt, downMs: Date.now() - info.since }),
      `subscriptions restored on ${connection.where}`,
    );
    this.emit('reconnect', { node: connection.where, attempt: info.attempt, since: info.since, cause: info.cause });
  }

  /** Subscriptions taken away for good: the `lost` event, and a warning. */
  #emitLost(kind: SubscriptionKind, names: readonly string[], error: PubSubError): void {
    this.#context.options.logger.warn(this.#log({ kind, names, err: error }), `subscriptions lost: ${error.message}`);
    this.emit('lost', { kind, names, error });
  }

  /** A message was dropped: a warning at the 1st, 10th, 100th... drop (bounded, however many). */
  #noteDrop(): void {
    const dropped = this.#buffer.dropped;
    if (dropped !== 10 ** Math.round(Math.log10(dropped))) return;
    const { overflow, highWaterMark, maxBufferedBytes } = this.#context.buffer;
    this.#context.options.logger.warn(
      this.#log({ dropped, overflow, highWaterMark, maxBufferedBytes }),
      `the consumer reads slower than messages arrive: ${dropped} dropped so far (overflow: ${overflow})`,
    );
  }

  #lost(connection: SubscriberConnection<Payload>, kind: SubscriptionKind, names: string[], cause: PubSubError): void {
    if (this.closed) return;
    const moved = kind === 'shard' && cause instanceof PubSubError && cause.code === 'ERR_PUBSUB_CLUSTER';
    if (moved && this.#context.topology !== undefined) {
      const wanted = names.filter((n) => this.#asked.shard.has(n));
      if (wanted.length > 0) this.#rehome(wanted, 'moved', Date.now(), cause);
      this.#release(connection);
      return;
    }
    for (const name of names) this.#asked[kind].delete(name);
    this.#emitLost(kind, names, moved && cause instanceof MovedError ? this.#notCluster(cause) : cause);
  }

  #connectionEnded(connection: SubscriberConnection<Payload>, cause: PubSubError): void {
    if (this.closed) return;
    if (this.#context.topology === undefined) {
      this.#fail(cause);
      return;
    }
    void this.#evacuate(connection, true);
  }

  /**
   * Cluster: a connection keeps failing (or gave up). Consults the slot map and moves what it
   * holds to nodes that serve it now; the classic connection moves to another master.
   */
  async #evacuate(connection: SubscriberConnection<Payload>, ended: boolean): Promise<void> {
    if (this.#evacuating.has(connection) || this.closed) return;
    this.#evacuating.add(connection);
    const topology = this.#context.topology as ClusterTopology;
    const lost = this.#lostAt.get(connection) ?? {
      since: Date.now(),
      cause: new PubSubError('ERR_PUBSUB_CONNECTION', `lost ${connection.where}`),
    };
    try {
      await topology.refresh().catch(() => {});
      if (this.closed) return;
      if (connection === this.#classic) {
        if (!ended && !topology.masters.some((m) => m.key !== connection.where)) return; // nowhere else to go
        const channels = [...this.#asked.channel];
        const patterns = [...this.#asked.pattern];
        this.#classic = undefined;
        this.#closeGap(connection);
        connection.destroy();
        const open = this.#buffer.openGap({ reason: 'reconnect', channels, patterns, ...lost });
        try {
          this.#classicAvoid = connection.where;
          await this.#moveClassic(connection.where);
        } finally {
          this.#classicAvoid = undefined;
          const gap = this.#buffer.closeGap(open);
          if (!this.closed) this.#emitGap(gap);
        }
        return;
      }
      const names = [...connection.asked.shard];
      const moving = ended ? names : names.filter((n) => topology.knownOwner(keySlot(n))?.key !== connection.where);
      if (moving.length === 0) return;
      for (const name of moving) connection.asked.shard.delete(name);
      if (connection.empty || ended) {
        if (this.#shards.get(connection.where) === connection) this.#shards.delete(connection.where);
        this.#closeGap(connection);
        connection.destroy();
      }
      this.#rehome(moving, 'reconnect', lost.since, lost.cause);
    } finally {
      this.#evacuating.delete(connection);
    }
  }

  /**
   * Cluster: subscribes channels and patterns on a new classic connection, away from `avoid`,
   * until it works. What is asked is read when each attempt reaches its connection, so calls
   * made meanwhile (an unsubscribe while the move waits) are not undone by it.
   */
  async #moveClassic(avoid: string): Promise<void> {
    const topology = this.#context.topology as ClusterTopology;
    for (let attempt = 1; !this.closed; attempt++) {
      let channels: string[] = [];
      let patterns: string[] = [];
      try {
        const next = await this.#classicConnection(avoid);
        channels = [...this.#asked.channel];
        patterns = [...this.#asked.pattern];
        await Promise.all([
          channels.length > 0 ? next.change('channel', true, channels) : undefined,
          patterns.length > 0 ? next.change('pattern', true, patterns) : undefined,
        ]);
        return;
      } catch (err) {
        const code = (err as PubSubError).code;
        if (code === 'ERR_PUBSUB_CLOSED' && this.closed) return;
        const delay = isRefusal(err) ? false : this.#delay(attempt, err as Error);
        if (delay === false) {
          channels = channels.filter((n) => this.#asked.channel.delete(n));
          patterns = patterns.filter((n) => this.#asked.pattern.delete(n));
          if (channels.length > 0) this.#emitLost('channel', channels, asPubSubError(err));
          if (patterns.length > 0) this.#emitLost('pattern', patterns, asPubSubError(err));
          return;
        }
        const failed = this.#classic as SubscriberConnection<Payload> | undefined;
        this.#classic = undefined;
        if (failed) this.#closeGap(failed);
        failed?.destroy();
        await sleep(delay);
        await topology.refresh().catch(() => {});
      }
    }
  }

  /**
   * Cluster: after the slot map changed, moves shard channels whose slot has a new master. A
   * connection that is up is asked first whether it still serves the slot (the shared map may
   * lag its own view during a migration, and a node that gives a slot away says so itself).
   */
  #verifyShardHomes(): void {
    if (this.closed) return;
    const topology = this.#context.topology as ClusterTopology;
    for (const connection of [...this.#shards.values()]) {
      const candidates = [...connection.asked.shard].filter((n) => {
        const owner = topology.knownOwner(keySlot(n));
        return owner !== undefined && owner.key !== connection.where;
      });
      if (candidates.length === 0) continue;
      void (async () => {
        let moved = candidates;
        const lost = this.#lostAt.get(connection);
        if (connection.status === 'ready') {
          const node = this.#nodes.get(connection) as ClusterNode;
          const kept: string[] = [];
          for (const [slot, group] of groupBySlot(candidates)) {
            const owner = await topology.ownerAccordingTo(node, slot).catch(() => undefined);
            if (owner === undefined || owner.key === connection.where) kept.push(...group);
          }
          moved = candidates.filter((n) => !kept.includes(n) && connection.asked.shard.has(n));
        }
        if (moved.length === 0 || this.closed) return;
        // What is asked changes at once; a connection that is down holds nothing to unsubscribe.
        this.#shardChange(connection, false, moved).catch(() => {});
        this.#release(connection);
        if (lost !== undefined && connection.status !== 'ready')
          this.#rehome(moved, 'reconnect', lost.since, lost.cause);
        else {
          const cause = new PubSubError(
            'ERR_PUBSUB_CLUSTER',
            `the slots of ${moved.join(', ')} moved away from ${connection.where}`,
          );
          this.#rehome(moved, 'moved', Date.now(), cause);
        }
      })();
    }
  }

  #overflow(): void {
    const { highWaterMark, maxBufferedBytes } = this.#context.buffer;
    this.#fail(
      new PubSubError(
        'ERR_PUBSUB_OVERFLOW',
        `the subscription's buffer is full (${highWaterMark} messages or ${maxBufferedBytes} bytes) and its overflow policy is 'error': the consumer reads slower than messages arrive. Read faster, raise highWaterMark / maxBufferedBytes, or choose overflow 'drop-oldest' or 'drop-newest'.`,
      ),
    );
  }

  /** Ends the subscription with an error: buffered messages are still delivered, then it is thrown. */
  #fail(error: PubSubError): void {
    if (this.closed) return;
    this.#ended = true;
    this.#buffer.end(error);
    this.#stopTopology?.();
    this.#unlisten?.();
    const { closeTimeout } = this.#context.options;
    this.#closing = this.#closeConnections(closeTimeout, undefined).finally(() => this.#context.closed());
    this.#context.options.logger.error(this.#log({ err: error }), `subscription ended: ${error.message}`);
    this.emit('end', { error });
  }

  /** Unsubscribes and closes every connection, within the bound; then what is left is destroyed. */
  async #closeConnections(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    this.#openGaps.clear();
    const connections = [this.#single, this.#classic, ...this.#shards.values()].filter(
      (c): c is SubscriberConnection<Payload> => c !== undefined,
    );
    this.#classic = undefined;
    this.#shards.clear();
    const closing = Promise.allSettled(connections.map((c) => c.close(timeoutMs)));
    // Within the bound: nothing is lost by destroying a subscriber connection (the server drops
    // its subscriptions with it), so the bound only limits how long close() waits.
    if (!(await within(closing, timeoutMs + 100, signal))) for (const c of connections) c.destroy();
  }

  // -------------------------------------------------------------------------------------------
  // Iterating and closing

  /**
   * The next message or gap. Waits when none is buffered; `done` once the subscription is
   * closed; throws the error that ended it (`ERR_PUBSUB_OVERFLOW`, `ERR_PUBSUB_CONNECTION`)
   * after the messages buffered before it. A `signal` that fires while it waits rejects it with
   * `ERR_PUBSUB_ABORTED` (named `AbortError`); nothing is taken, the next read goes on.
   *
   * @example
   * ```ts
   * const result = await subscription.next({ signal: AbortSignal.timeout(1000) }).catch(() => undefined);
   * if (result === undefined) console.log('nothing within a second');
   * ```
   */
  next(options?: CallOptions): Promise<IteratorResult<SubscriptionEvent<Payload>, undefined>> {
    if (options === undefined) return this.#buffer.next();
    let signal: AbortSignal | undefined;
    try {
      signal = checkSignal('next()', splitOptions('next', [options]).options.signal);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#buffer.next(signal, abortError('next()'));
  }

  /** Closes the subscription (what `break` in a `for await` loop calls). */
  async return(): Promise<IteratorResult<SubscriptionEvent<Payload>, undefined>> {
    await this.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Unsubscribes, closes the subscriber connection(s) and ends the iterator: a consumer waiting
   * in `next()` gets `done`, buffered messages are discarded, calls in flight fail with
   * `ERR_PUBSUB_CLOSED`. The orderly part (UNSUBSCRIBE and the connections' close) gets
   * `timeoutMs` (default: the client's `closeTimeout`) or until `signal` fires; then the
   * connections are destroyed, which loses nothing (the server drops their subscriptions), so it
   * resolves either way. A second call returns the first one's promise.
   *
   * @example
   * ```ts
   * const subscription = await client.subscribe('orders');
   * setTimeout(() => subscription.close({ timeoutMs: 1000 }), 60_000);
   * for await (const event of subscription) handle(event); // ends after close()
   * ```
   * @throws {PubSubError} `ERR_PUBSUB_ARGUMENT` for a bad option.
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    let bound: { timeoutMs: number; signal: AbortSignal | undefined };
    try {
      bound = closeBound(options, this.#context.options.closeTimeout);
    } catch (err) {
      return Promise.reject(err);
    }
    const discarded = this.#buffer.messages;
    this.#buffer.close();
    this.#stopTopology?.();
    this.#unlisten?.();
    if (discarded > 0)
      this.#context.options.logger.debug(this.#log({ discarded }), `closed with ${discarded} unread messages`);
    this.#closing = this.#closeConnections(bound.timeoutMs, bound.signal).finally(() => {
      this.#context.closed();
      if (!this.#ended) {
        this.#ended = true;
        this.emit('end', { error: undefined });
      }
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
