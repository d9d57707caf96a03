import {
  type BackoffOptions,
  exponentialBackoff,
  isLogger,
  type Logger,
  noopLogger,
  parseRedisUrl,
  type ReconnectStrategy,
  type RespConnectionOptions,
  type RespError,
} from '@redis-events/resp';
import { PubSubError } from './errors.ts';
import { checkFields } from './lifecycle.ts';
import type { OverflowPolicy } from './message-buffer.ts';

/**
 * A cluster node: `host:port`, a `redis://` / `rediss://` URL, or host and port.
 *
 * @example
 * ```ts
 * const nodes: NodeAddress[] = ['10.0.0.1:7000', 'redis://10.0.0.2:7000', { host: '10.0.0.3', port: 7000 }];
 * ```
 */
export type NodeAddress = string | { readonly host: string; readonly port: number };

/**
 * Redis Cluster settings of a {@link PubSubClientOptions}.
 *
 * @example
 * ```ts
 * const client = createPubSubClient({ cluster: { nodes: ['10.0.0.1:7000'], refreshInterval: 10_000 } });
 * ```
 */
export interface ClusterOptions {
  /** Nodes to discover the cluster from (any node will do; several in case one is down). Default: the client's `url` or `host`/`port`. */
  readonly nodes?: readonly NodeAddress[] | undefined;
  /** Re-read the slot map this often (ms), to notice failovers that send no redirection. Default 30 000; 0 turns it off. */
  readonly refreshInterval?: number | undefined;
}

/**
 * How each subscription buffers messages its consumer has not read yet.
 *
 * @example
 * ```ts
 * const subscription = client.createSubscription({ highWaterMark: 500, maxBufferedBytes: 1 << 20, overflow: 'drop-newest' });
 * ```
 */
export interface BufferOptions {
  /** Most messages a subscription holds for its consumer. Default 10 000. */
  readonly highWaterMark?: number | undefined;
  /** Most payload bytes (string length for strings) a subscription holds. Default 16 MiB. */
  readonly maxBufferedBytes?: number | undefined;
  /**
   * What to do with a message that arrives while the buffer is full: `drop-oldest` (default),
   * `drop-newest`, or `error` (the subscription closes; its iterator throws `ERR_PUBSUB_OVERFLOW`
   * after the buffered messages). Drops are counted (`dropped`) and marked by an `overflow` gap.
   */
  readonly overflow?: OverflowPolicy | undefined;
}

/**
 * Options of a {@link PubSubClient}. Explicit options override what the URL says.
 *
 * @example
 * ```ts
 * const client = createPubSubClient({
 *   url: 'rediss://app:secret@cache.internal:6380',
 *   name: 'billing-listener',
 *   healthCheckInterval: 3000,
 *   reconnect: { maxDelay: 5000 },
 * });
 * ```
 */
export interface PubSubClientOptions
  extends BufferOptions,
    // Where and how to connect: the same options as a resp connection, passed on as they are.
    Pick<RespConnectionOptions, 'url' | 'host' | 'port' | 'path' | 'tls' | 'username' | 'password'> {
  /** Connection name (`CLIENT SETNAME`), shown by `CLIENT LIST`, on every connection of the client. */
  readonly name?: string | undefined;
  /** 3 (default): RESP3 (HELLO 3), falling back to RESP2 when the server has no HELLO. 2: RESP2 only. */
  readonly protocol?: 2 | 3 | undefined;
  /** Payloads as strings (UTF-8, default) or as Buffers (binary safe). */
  readonly payloads?: 'string' | 'buffer' | undefined;
  /** Time for TCP, TLS, handshake and resubscription together. Default 10 000 ms. */
  readonly connectTimeout?: number | undefined;
  /** TCP keep-alive initial delay in ms, or `false`. Default 30 000. */
  readonly keepAlive?: number | false | undefined;
  /**
   * After a connection is lost: `true` (default: capped exponential backoff with jitter, 50 ms
   * doubling up to 2 s, forever), backoff options, your own `(attempt, cause) => delay | false`,
   * or `false` to end the subscription instead.
   */
  readonly reconnect?: boolean | BackoffOptions | ReconnectStrategy | undefined;
  /** PING a subscriber connection after this many ms without traffic. Default 5 000; 0 turns it off. */
  readonly healthCheckInterval?: number | undefined;
  /** A health-check PING unanswered after this many ms replaces the connection. Default 5 000. */
  readonly healthCheckTimeout?: number | undefined;
  /**
   * Time given to each call, from the call to the answer: `publish`, `spublish`, the PUBSUB
   * commands, and each (un)subscribe until the server confirmed it. Default 10 000 ms; 0 for none.
   * An (un)subscribe that times out stays asked: it takes effect when the connection is back.
   */
  readonly commandTimeout?: number | undefined;
  /** Time given to UNSUBSCRIBE and the connection's orderly close at `close()`. Default 2 000 ms. */
  readonly closeTimeout?: number | undefined;
  /** Largest payload accepted from the server, in bytes. Default 512 MiB (the server's `proto-max-bulk-len`). */
  readonly maxPayloadLength?: number | undefined;
  /** Redis Cluster: `true` to discover it from `url`/`host`, or settings with seed nodes. */
  readonly cluster?: boolean | ClusterOptions | undefined;
  /**
   * Where what happens in the background goes (a connection lost and restored, subscriptions
   * lost, messages dropped, a subscription ended by an error): `console`, a pino logger, or
   * anything with `debug`, `warn` and `error` taking `(context, message)`. Default: nowhere.
   */
  readonly logger?: Logger | undefined;
}

/**
 * Options of {@link PubSubClient.createSubscription} and of the client's `subscribe`,
 * `psubscribe` and `ssubscribe`: buffer options for this subscription, and a signal that ends it.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const subscription = await client.subscribe('orders', { signal: controller.signal, highWaterMark: 100 });
 * controller.abort(); // closes the subscription: its iterator ends
 * ```
 */
export interface SubscriptionOptions extends BufferOptions {
  /**
   * Ends the subscription when it fires (as `close()` does: its iterator ends). For the client's
   * `subscribe` methods, it also aborts the first call while it waits.
   */
  readonly signal?: AbortSignal | undefined;
}

const BUFFER_FIELDS: readonly string[] = ['highWaterMark', 'maxBufferedBytes', 'overflow'];
/** The fields of {@link SubscriptionOptions}. */
export const SUBSCRIPTION_FIELDS: readonly string[] = [...BUFFER_FIELDS, 'signal'];
const CLIENT_FIELDS: readonly string[] = [
  'url',
  'host',
  'port',
  'path',
  'tls',
  'username',
  'password',
  'name',
  'protocol',
  'payloads',
  'connectTimeout',
  'keepAlive',
  'reconnect',
  'healthCheckInterval',
  'healthCheckTimeout',
  'commandTimeout',
  'closeTimeout',
  'maxPayloadLength',
  'cluster',
  'logger',
  ...BUFFER_FIELDS,
];
const BACKOFF_FIELDS: readonly string[] = ['initialDelay', 'maxDelay', 'factor', 'jitter', 'maxAttempts', 'random'];

/** Options resolved once per client. */
export interface ResolvedOptions {
  /** Connection options of the configured server (standalone), without the URL. */
  readonly connection: RespConnectionOptions<unknown>;
  readonly buffers: boolean;
  readonly buffer: Required<{ [K in keyof BufferOptions]-?: NonNullable<BufferOptions[K]> }>;
  readonly healthCheckInterval: number;
  readonly healthCheckTimeout: number;
  readonly commandTimeout: number;
  readonly closeTimeout: number;
  readonly maxPayloadLength: number | undefined;
  readonly strategy: ReconnectStrategy | undefined;
  readonly cluster:
    | { readonly seeds: readonly { host: string; port: number }[]; readonly refreshInterval: number }
    | undefined;
  readonly where: string;
  readonly logger: Logger;
}

function bad(message: string): PubSubError {
  return new PubSubError('ERR_PUBSUB_ARGUMENT', message);
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value))
    throw bad(`${name} must be a finite number >= 0, got ${String(value)}`);
  return value;
}

/** Checks and resolves the buffer options of a client or a subscription. */
export function resolveBuffer(options: BufferOptions, base?: ResolvedOptions['buffer']): ResolvedOptions['buffer'] {
  if (base !== undefined) checkFields('the subscription options', options, SUBSCRIPTION_FIELDS);
  const highWaterMark = nonNegative('highWaterMark', options.highWaterMark, base?.highWaterMark ?? 10_000);
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1)
    throw bad(`highWaterMark must be an integer >= 1, got ${highWaterMark}`);
  const maxBufferedBytes = nonNegative(
    'maxBufferedBytes',
    options.maxBufferedBytes,
    base?.maxBufferedBytes ?? 16 * 1024 * 1024,
  );
  const overflow = options.overflow ?? base?.overflow ?? 'drop-oldest';
  if (overflow !== 'drop-oldest' && overflow !== 'drop-newest' && overflow !== 'error')
    throw bad(`overflow must be 'drop-oldest', 'drop-newest' or 'error', got ${JSON.stringify(overflow)}`);
  return { highWaterMark, maxBufferedBytes, overflow };
}

/** `host:port` or a URL, as a node address. */
export function parseNode(node: NodeAddress): { host: string; port: number } {
  if (typeof node === 'object' && node !== null) {
    if (typeof node.host !== 'string' || !Number.isInteger(node.port) || node.port <= 0 || node.port > 65535)
      throw bad(`a cluster node needs a host and a port from 1 to 65535, got ${JSON.stringify(node)}`);
    return { host: node.host, port: node.port };
  }
  if (typeof node !== 'string')
    throw bad(`a cluster node is "host:port", a URL or { host, port }, got ${String(node)}`);
  if (/^rediss?:\/\//.test(node)) {
    const parsed = parseRedisUrl(node);
    return { host: parsed.host ?? '127.0.0.1', port: parsed.port ?? 6379 };
  }
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(node);
  if (!m) throw bad(`a cluster node is "host:port" or a redis:// URL, got ${JSON.stringify(node)}`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/** Resolves and checks client options; throws `ERR_PUBSUB_ARGUMENT` with what is wrong. */
export function resolveOptions(input: PubSubClientOptions | string): ResolvedOptions {
  const o: PubSubClientOptions = typeof input === 'string' ? { url: input } : (input ?? {});
  if (typeof o !== 'object') throw bad('options must be a URL string or an options object');
  checkFields('the client options', o, CLIENT_FIELDS);
  if (typeof o.reconnect === 'object') checkFields('the reconnect option', o.reconnect, BACKOFF_FIELDS);
  if (typeof o.cluster === 'object') checkFields('the cluster option', o.cluster, ['nodes', 'refreshInterval']);
  if (o.logger !== undefined && !isLogger(o.logger))
    throw bad('logger needs debug, warn and error methods taking (context, message), as console and pino have');
  let fromUrl: ReturnType<typeof parseRedisUrl> | undefined;
  try {
    fromUrl = o.url !== undefined ? parseRedisUrl(o.url) : undefined;
  } catch (err) {
    throw new PubSubError('ERR_PUBSUB_ARGUMENT', (err as Error).message, { cause: err });
  }
  const path = o.path ?? (o.host === undefined && o.port === undefined ? fromUrl?.path : undefined);
  const host = o.host ?? fromUrl?.host ?? '127.0.0.1';
  const port = o.port ?? fromUrl?.port ?? 6379;
  const tls = o.tls ?? fromUrl?.tls ?? false;
  const protocol = o.protocol ?? fromUrl?.protocol ?? 3;
  if (protocol !== 2 && protocol !== 3) throw bad(`protocol must be 2 or 3, got ${String(protocol)}`);
  const payloads = o.payloads ?? 'string';
  if (payloads !== 'string' && payloads !== 'buffer')
    throw bad(`payloads must be 'string' or 'buffer', got ${JSON.stringify(payloads)}`);
  const reconnect = o.reconnect ?? true;
  let strategy: ReconnectStrategy | undefined;
  try {
    strategy =
      reconnect === false
        ? undefined
        : reconnect === true
          ? exponentialBackoff()
          : typeof reconnect === 'function'
            ? reconnect
            : exponentialBackoff(reconnect);
  } catch (err) {
    throw new PubSubError('ERR_PUBSUB_ARGUMENT', (err as RespError).message, { cause: err });
  }
  const username = o.username ?? fromUrl?.username;
  const password = o.password ?? fromUrl?.password;
  const name = o.name ?? fromUrl?.name;
  const connectTimeout = nonNegative('connectTimeout', o.connectTimeout, 10_000);
  const connection: RespConnectionOptions<unknown> = {
    host,
    port,
    path,
    tls,
    username,
    password,
    name,
    protocol,
    connectTimeout,
    keepAlive: o.keepAlive ?? 30_000,
    reconnect: strategy ?? false,
  };
  let cluster: ResolvedOptions['cluster'];
  if (o.cluster !== undefined && o.cluster !== false) {
    if (path !== undefined) throw bad('a cluster is reached over TCP: give cluster.nodes or url/host/port, not path');
    const settings: ClusterOptions = o.cluster === true ? {} : o.cluster;
    const seeds = (settings.nodes ?? [{ host, port }]).map(parseNode);
    if (seeds.length === 0) throw bad('cluster.nodes is empty: give at least one node');
    cluster = { seeds, refreshInterval: nonNegative('cluster.refreshInterval', settings.refreshInterval, 30_000) };
  }
  return {
    connection,
    buffers: payloads === 'buffer',
    buffer: resolveBuffer(o),
    healthCheckInterval: nonNegative('healthCheckInterval', o.healthCheckInterval, 5_000),
    healthCheckTimeout: nonNegative('healthCheckTimeout', o.healthCheckTimeout, 5_000),
    commandTimeout: nonNegative('commandTimeout', o.commandTimeout, 10_000),
    closeTimeout: nonNegative('closeTimeout', o.closeTimeout, 2_000),
    maxPayloadLength:
      o.maxPayloadLength === undefined ? undefined : nonNegative('maxPayloadLength', o.maxPayloadLength, 0),
    strategy,
    cluster,
    where: path !== undefined ? `unix:${path}` : `${host}:${port}`,
    logger: o.logger ?? noopLogger,
  };
}

/** Connection options for one node of a cluster. */
export function nodeConnection(
  options: ResolvedOptions,
  node: { host: string; port: number },
  overrides: Partial<RespConnectionOptions<unknown>> = {},
): RespConnectionOptions<unknown> {
  return { ...options.connection, path: undefined, host: node.host, port: node.port, ...overrides };
}

/**
 * A command connection's handshake ends with a PING when there was no HELLO (RESP2): without it
 * a server that accepts TCP but never answers would count as connected, and the first command
 * would wait for `commandTimeout` instead of failing within `connectTimeout`.
 */
export function provenConnection(options: RespConnectionOptions<unknown>): RespConnectionOptions<unknown> {
  return {
    ...options,
    onConnect: async (session) => {
      if (session.server === undefined) await session.send(['PING']);
    },
  };
}
