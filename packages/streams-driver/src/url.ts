// URL openers in the shapes of github.com/covrom/redispubsub (the gocloud.dev/pubsub driver):
//   redis://<topic>?<options>                         a topic; the stream key is host + path
//   redis://<group>?topic=<topic>&consumer=<name>     a subscription; the group is host + path
// The connection is not in these URLs: it comes from REDIS_URL (or a client you pass).
import { Redis } from 'ioredis';
import { OWNS_CLIENT, type RedisClient } from './client.ts';
import { StreamsError } from './errors.ts';
import { Subscription, type SubscriptionOptions } from './subscription.ts';
import { Topic, type TopicOptions } from './topic.ts';

const MAX_URL_LENGTH = 65_536;
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function argument(message: string): StreamsError {
  return new StreamsError('ERR_STREAMS_ARGUMENT', message);
}

/**
 * Parses a duration: milliseconds as a plain number (`1500`) or Go-style units (`300ms`, `30s`,
 * `1m30s`, `2h`). Returns whole milliseconds.
 *
 * @example
 * ```ts
 * parseDuration('1m30s'); // 90000
 * ```
 * @throws {StreamsError} `ERR_STREAMS_ARGUMENT` for anything else.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed.length === 0 || trimmed.length > 64)
    throw argument(`"${text}" is not a duration; write it like 30s or 1500`);
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  let total = 0;
  let rest = trimmed;
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!match?.[1] || !match[2]) throw argument(`"${text}" is not a duration; write it like 30s, 1m30s or 1500 (ms)`);
    total += Number(match[1]) * (UNITS[match[2]] ?? 0);
    rest = rest.slice(match[0].length);
  }
  const ms = Math.round(total);
  if (!Number.isSafeInteger(ms)) throw argument(`duration "${text}" is too long`);
  return ms;
}

function parseBoolean(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === '' || v === '1' || v === 'true' || v === 'yes' || v === 'on') return true;
  if (v === '0' || v === 'false' || v === 'no' || v === 'off') return false;
  throw argument(`URL option ${name}=${value} is not a boolean; use true or false`);
}

function parseCount(name: string, value: string): number {
  if (!/^\d{1,15}$/.test(value.trim())) throw argument(`URL option ${name}=${value} is not a whole number`);
  return Number(value.trim());
}

interface ParsedURL {
  readonly name: string;
  readonly params: Map<string, string>;
}

function splitURL(url: string, what: string): ParsedURL {
  if (typeof url !== 'string') throw argument(`${what} URL must be a string`);
  if (url.length > MAX_URL_LENGTH) throw argument(`${what} URL is longer than ${MAX_URL_LENGTH} characters`);
  const scheme = 'redis://';
  if (!url.toLowerCase().startsWith(scheme)) {
    throw argument(`${what} URL "${url}" must start with redis:// (the connection itself comes from REDIS_URL)`);
  }
  const rest = url.slice(scheme.length).split('#', 1)[0] ?? '';
  const q = rest.indexOf('?');
  const rawName = q === -1 ? rest : rest.slice(0, q);
  let name: string;
  try {
    name = decodeURIComponent(rawName);
  } catch {
    throw argument(`${what} URL "${url}" has a bad percent-encoding`);
  }
  if (name.includes('@')) {
    throw argument(
      `${what} URL "${url}" holds credentials; put the connection in REDIS_URL and only the ${what} name here`,
    );
  }
  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(q === -1 ? '' : rest.slice(q + 1))) {
    const lower = key.toLowerCase();
    if (params.has(lower)) throw argument(`${what} URL "${url}" sets ${key} twice`);
    params.set(lower, value);
  }
  return { name, params };
}

function rejectUnknown(params: Map<string, string>, known: readonly string[], url: string): void {
  for (const key of params.keys()) {
    if (!known.includes(key))
      throw argument(`URL "${url}" has an unknown option "${key}"; known options: ${known.join(', ')}`);
  }
}

const TOPIC_OPTIONS = ['maxlen', 'maxage', 'exact', 'create', 'maxbatch', 'sendtimeout'] as const;

/**
 * Reads a topic URL: `redis://<stream key>?maxlen=100000&maxage=24h&exact=false&create=true`.
 * `create` defaults to true here (XADD creates the stream, as the Go driver does).
 *
 * @example
 * ```ts
 * parseTopicURL('redis://topics/1?maxlen=1000'); // { key: 'topics/1', options: { create: true, retention: { maxLen: 1000 } } }
 * ```
 */
export function parseTopicURL(url: string): { key: string; options: TopicOptions } {
  const { name, params } = splitURL(url, 'topic');
  if (!name) throw argument(`topic URL "${url}" names no stream: write redis://<stream key>`);
  rejectUnknown(params, TOPIC_OPTIONS, url);
  const get = (k: string) => params.get(k);
  const maxLen = get('maxlen');
  const maxAge = get('maxage');
  const exact = get('exact');
  const maxBatch = get('maxbatch');
  const sendTimeout = get('sendtimeout');
  const retention = {
    ...(maxLen !== undefined ? { maxLen: parseCount('maxlen', maxLen) } : {}),
    ...(maxAge !== undefined ? { maxAgeMs: parseDuration(maxAge) } : {}),
    ...(exact !== undefined ? { exact: parseBoolean('exact', exact) } : {}),
  };
  const create = get('create');
  const options: TopicOptions = {
    create: create === undefined ? true : parseBoolean('create', create),
    ...(maxLen !== undefined || maxAge !== undefined ? { retention } : {}),
    ...(maxBatch !== undefined ? { maxBatchSize: parseCount('maxbatch', maxBatch) } : {}),
    ...(sendTimeout !== undefined ? { sendTimeoutMs: parseDuration(sendTimeout) } : {}),
  };
  return { key: name, options };
}

const SUBSCRIPTION_OPTIONS = [
  'topic',
  'consumer',
  'from',
  'autoclaim',
  'ackdeadline',
  'claiminterval',
  'noack',
  'create',
  'maxinflight',
  'prefetch',
  'block',
  'maxdeliveries',
  'deadletter',
  'deadlettermaxlen',
  'onmalformed',
  'deleteacked',
] as const;

/**
 * Reads a subscription URL: `redis://<group>?topic=<stream key>&consumer=<name>&from=$&ackdeadline=30s`.
 * `autoclaim` (the Go driver's name) is the same as `ackdeadline`; `noack` alone means true.
 *
 * @example
 * ```ts
 * parseSubscriptionURL('redis://group1?consumer=cons1&topic=topics/1');
 * // { topic: 'topics/1', group: 'group1', consumer: 'cons1' }
 * ```
 */
export function parseSubscriptionURL(url: string): SubscriptionOptions {
  const { name, params } = splitURL(url, 'subscription');
  if (!name) throw argument(`subscription URL "${url}" names no group: write redis://<group>?topic=<stream key>`);
  rejectUnknown(params, SUBSCRIPTION_OPTIONS, url);
  const get = (k: string) => params.get(k);
  const topic = get('topic');
  if (!topic) throw argument(`subscription URL "${url}" has no topic option: add ?topic=<stream key>`);
  if (get('autoclaim') !== undefined && get('ackdeadline') !== undefined) {
    throw argument(`subscription URL "${url}" sets both autoclaim and ackdeadline; they mean the same, keep one`);
  }
  const deadline = get('ackdeadline') ?? get('autoclaim');
  const num = (k: string) => {
    const v = get(k);
    return v === undefined ? undefined : parseCount(k, v);
  };
  const dur = (k: string) => {
    const v = get(k);
    return v === undefined ? undefined : parseDuration(v);
  };
  const bool = (k: string) => {
    const v = get(k);
    return v === undefined ? undefined : parseBoolean(k, v);
  };
  const maxDeliveries = get('maxdeliveries');
  const onMalformed = get('onmalformed');
  if (onMalformed !== undefined && onMalformed !== 'dead-letter' && onMalformed !== 'ack') {
    throw argument(`URL option onmalformed=${onMalformed} must be dead-letter or ack`);
  }
  const entries: [keyof SubscriptionOptions, unknown][] = [
    ['consumer', get('consumer')],
    ['from', get('from')],
    ['ackDeadlineMs', deadline === undefined ? undefined : parseDuration(deadline)],
    ['claimIntervalMs', dur('claiminterval')],
    ['noAck', bool('noack')],
    ['create', bool('create')],
    ['maxInFlight', num('maxinflight')],
    ['prefetch', num('prefetch')],
    ['blockMs', dur('block')],
    [
      'maxDeliveries',
      maxDeliveries === undefined
        ? undefined
        : /^(inf|infinity|0)$/i.test(maxDeliveries)
          ? Number.POSITIVE_INFINITY
          : parseCount('maxdeliveries', maxDeliveries),
    ],
    ['deadLetterKey', get('deadletter')],
    ['deadLetterMaxLen', num('deadlettermaxlen')],
    ['onMalformed', onMalformed],
    ['deleteAcked', bool('deleteacked')],
  ];
  const options: Record<string, unknown> = { topic, group: name };
  for (const [key, value] of entries) if (value !== undefined) options[key] = value;
  return options as unknown as SubscriptionOptions;
}

/** Options of {@link URLOpener}. */
export interface URLOpenerOptions {
  /**
   * The client to use for every topic and subscription opened; it stays yours. Without it each
   * one opens its own client from `redisUrl` and closes it at shutdown.
   */
  readonly client?: RedisClient | undefined;
  /** Where to connect when no client is given. Default `process.env.REDIS_URL`. */
  readonly redisUrl?: string | undefined;
  /** Defaults for topics; the URL's options win. */
  readonly topicOptions?: TopicOptions | undefined;
  /** Defaults for subscriptions; the URL's options win. */
  readonly subscriptionOptions?: Partial<SubscriptionOptions> | undefined;
}

/**
 * Opens topics and subscriptions from URLs. Options given here are defaults, copied for every
 * open: one URL's options never leak into the next.
 *
 * @example
 * ```ts
 * const opener = new URLOpener({ subscriptionOptions: { ackDeadlineMs: 30_000 } }); // connects through REDIS_URL
 * const topic = opener.openTopic('redis://orders?maxlen=100000');
 * const subscription = opener.openSubscription('redis://billing?topic=orders&consumer=billing-1');
 * ```
 */
export class URLOpener {
  readonly #options: URLOpenerOptions;

  constructor(options: URLOpenerOptions = {}) {
    this.#options = options;
  }

  #connect(): { client: RedisClient; ownsClient: boolean } {
    if (this.#options.client) return { client: this.#options.client, ownsClient: false };
    const url = this.#options.redisUrl ?? process.env.REDIS_URL;
    if (!url) {
      throw argument('set REDIS_URL (like redis://127.0.0.1:6379) or give the opener a client to open URLs');
    }
    if (!/^rediss?:\/\//i.test(url)) throw argument(`REDIS_URL must start with redis:// or rediss://, got "${url}"`);
    const client = new Redis(url, { lazyConnect: false } as never);
    client.on('error', () => {}); // failures reach callers through commands; ioredis reconnects
    return { client, ownsClient: true };
  }

  /** Opens `redis://<stream key>?maxlen=..&maxage=..&exact=..&create=..`. */
  openTopic(url: string): Topic {
    const { key, options } = parseTopicURL(url);
    const { client, ownsClient } = this.#connect();
    try {
      return new Topic(client, key, {
        ...this.#options.topicOptions,
        ...options,
        [OWNS_CLIENT]: ownsClient,
      } as TopicOptions);
    } catch (err) {
      if (ownsClient) client.disconnect();
      throw err;
    }
  }

  /**
   * Opens `redis://<group>?topic=<stream key>&consumer=<name>&...`. A group it creates starts
   * when this call is made (`from=$`, as for the constructor: what is sent from then on is
   * delivered, also while the connection is still being made) unless the URL or the opener's
   * defaults say otherwise (`from=0` for everything retained).
   */
  openSubscription(url: string): Subscription {
    const options = parseSubscriptionURL(url);
    const { client, ownsClient } = this.#connect();
    try {
      return new Subscription(client, {
        ...this.#options.subscriptionOptions,
        ...options,
        [OWNS_CLIENT]: ownsClient,
      } as SubscriptionOptions);
    } catch (err) {
      if (ownsClient) client.disconnect();
      throw err;
    }
  }
}

/**
 * Opens a topic from a URL, connecting through `REDIS_URL` (or `options.client`).
 *
 * @example
 * ```ts
 * // REDIS_URL=redis://127.0.0.1:6379
 * const topic = openTopic('redis://topics/1');
 * await topic.send({ body: 'hello', metadata: { lang: 'en' } });
 * await topic.shutdown(); // also closes the connection it opened
 * ```
 */
export function openTopic(url: string, options: URLOpenerOptions = {}): Topic {
  return new URLOpener(options).openTopic(url);
}

/**
 * Opens a subscription from a URL, connecting through `REDIS_URL` (or `options.client`).
 *
 * @example
 * ```ts
 * const subscription = openSubscription('redis://group1?consumer=cons1&topic=topics/1');
 * const message = await subscription.receive();
 * await message.ack();
 * await subscription.shutdown();
 * ```
 */
export function openSubscription(url: string, options: URLOpenerOptions = {}): Subscription {
  return new URLOpener(options).openSubscription(url);
}
