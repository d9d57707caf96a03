import { isLogger, type Logger } from '@redis-events/resp';
import { EventStoreError } from './errors.ts';
import { checkPrefix, type TimelineKeys } from './keys.ts';
import { jsonSerializer, type Serializer } from './serializer.ts';

/**
 * How events are kept in Redis:
 * - `stream` (default): one Redis Stream per event name;
 * - `timeline`: the Go extension's layout (a JSON string key per event and a list of those keys
 *   per name), so that Go and TypeScript services share one store.
 *
 * @example
 * ```ts
 * const shared = new RedisEventStore(redis, { layout: 'timeline', eventTtl: 86_400_000 });
 * ```
 */
export type EventStoreLayout = 'stream' | 'timeline';

/**
 * The configuration of a {@link RedisEventStore}; see {@link defaultConfig} for the defaults.
 *
 * @example
 * ```ts
 * const config: EventStoreConfig = { ...defaultConfig(), prefix: 'shop:events', eventTtl: 3_600_000 };
 * ```
 */
export interface EventStoreConfig {
  /** Start of every key. Default `mediator:events`. */
  readonly prefix: string;
  /** How long an event lives, in milliseconds. Default 24 h (86 400 000). */
  readonly eventTtl: number;
  /** Most events kept per name; older ones are dropped as new ones come. Default 1000. */
  readonly maxEventsPerType: number;
  /** Data layout. Default `stream`. */
  readonly layout: EventStoreLayout;
  /**
   * `timeline` layout only: `go` (the Go extension's exact keys, standalone Redis) or `tagged`
   * (a hash tag per name, for Redis Cluster). Default `go` with a `Redis` client, `tagged` with a
   * `Cluster`.
   */
  readonly timelineKeys?: TimelineKeys | undefined;
  /** Payload encoding. Default {@link jsonSerializer}. */
  readonly serializer: Serializer;
  /** Largest serialized payload accepted, in bytes. Default 1 MiB. */
  readonly maxEventBytes: number;
  /**
   * How long a call waits for a client that is not connected (yet, or any more) before it fails
   * with `ERR_EVENT_STORE_CONNECT`, naming the address and the cause. Default 10 000 ms.
   */
  readonly connectTimeoutMs: number;
}

/**
 * Options of the {@link RedisEventStore} constructor: any part of {@link EventStoreConfig}, and
 * a logger for what happens in the background (a tail waiting out an outage, the connection of
 * a store made from a URL).
 *
 * @example
 * ```ts
 * const options: EventStoreOptions = { prefix: 'shop:events', maxEventsPerType: 10_000, logger: console };
 * ```
 */
export interface EventStoreOptions extends Partial<EventStoreConfig> {
  /** Where background events go (`debug`, `warn`, `error`). Default: nowhere. */
  readonly logger?: Logger | undefined;
}

const OPTION_KEYS: readonly (keyof EventStoreOptions)[] = [
  'prefix',
  'eventTtl',
  'maxEventsPerType',
  'layout',
  'timelineKeys',
  'serializer',
  'maxEventBytes',
  'connectTimeoutMs',
  'logger',
];

/**
 * The defaults, as in the Go extension: prefix `mediator:events`, 24 h TTL, 1000 events per name;
 * plus the `stream` layout, JSON payloads and a 1 MiB payload limit.
 *
 * @example
 * ```ts
 * const store = new RedisEventStore(redis, { ...defaultConfig(), eventTtl: 60_000 });
 * ```
 */
export function defaultConfig(): EventStoreConfig {
  return {
    prefix: 'mediator:events',
    eventTtl: 86_400_000,
    maxEventsPerType: 1000,
    layout: 'stream',
    serializer: jsonSerializer,
    maxEventBytes: 1_048_576,
    connectTimeoutMs: 10_000,
  };
}

function positiveInteger(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      `${name} must be an integer from 1 to ${max}, not ${String(value)}`,
    );
  }
  return value;
}

/**
 * A checked configuration with every default applied, as `RedisEventStore.config` shows it.
 *
 * @example
 * ```ts
 * const { layout, timelineKeys } = new RedisEventStore(cluster, { layout: 'timeline' }).config; // 'timeline', 'tagged'
 * ```
 */
export type ResolvedConfig = Required<Omit<EventStoreConfig, 'timelineKeys'>> & { readonly timelineKeys: TimelineKeys };

/** Applies defaults and checks every option; throws `ERR_EVENT_STORE_CONFIG`. */
export function resolveConfig(options: EventStoreOptions, cluster: boolean): ResolvedConfig {
  if (typeof options !== 'object' || options === null) {
    throw new EventStoreError('ERR_EVENT_STORE_CONFIG', 'the store options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new EventStoreError(
        'ERR_EVENT_STORE_CONFIG',
        `unknown store option "${key}"; the options are ${OPTION_KEYS.join(', ')}`,
      );
    }
  }
  if (options.logger !== undefined && !isLogger(options.logger)) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      'logger needs debug, warn and error methods (console and pino have them)',
    );
  }
  const defaults = defaultConfig();
  const pick = <K extends keyof EventStoreConfig>(key: K): EventStoreConfig[K] =>
    options[key] === undefined ? defaults[key] : (options[key] as EventStoreConfig[K]);
  const prefix = pick('prefix');
  checkPrefix(prefix);
  const eventTtl = positiveInteger('eventTtl (ms)', pick('eventTtl'), 2 ** 46);
  const maxEventsPerType = positiveInteger('maxEventsPerType', pick('maxEventsPerType'), 2 ** 31);
  const maxEventBytes = positiveInteger('maxEventBytes', pick('maxEventBytes'), 512 * 1024 * 1024);
  const connectTimeoutMs = positiveInteger('connectTimeoutMs', pick('connectTimeoutMs'), 3_600_000);
  const layout = pick('layout');
  if (layout !== 'stream' && layout !== 'timeline') {
    throw new EventStoreError('ERR_EVENT_STORE_CONFIG', `layout must be "stream" or "timeline", not ${String(layout)}`);
  }
  const serializer = pick('serializer');
  if (
    typeof serializer !== 'object' ||
    serializer === null ||
    typeof serializer.serialize !== 'function' ||
    typeof serializer.deserialize !== 'function'
  ) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      'serializer must be an object with serialize(payload) and deserialize(text) functions',
    );
  }
  const timelineKeys = options.timelineKeys ?? (cluster ? 'tagged' : 'go');
  if (timelineKeys !== 'go' && timelineKeys !== 'tagged') {
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      `timelineKeys must be "go" or "tagged", not ${String(timelineKeys)}`,
    );
  }
  if (layout === 'timeline' && timelineKeys === 'go' && cluster) {
    throw new EventStoreError(
      'ERR_EVENT_STORE_CONFIG',
      `timelineKeys "go" puts every event in its own hash slot, so appends cannot be atomic on a Redis Cluster; use timelineKeys "tagged" (a Go service shares those keys when it names the event "{name}"), or the stream layout`,
    );
  }
  return { prefix, eventTtl, maxEventsPerType, layout, timelineKeys, serializer, maxEventBytes, connectTimeoutMs };
}
