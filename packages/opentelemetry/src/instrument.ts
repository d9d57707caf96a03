// The entry point: subscribes to the diagnostics channels of every package and turns what they
// report into spans and metrics of the tracer and meter providers given (or the global ones).
import { createRequire } from 'node:module';
import { type MeterProvider, metrics, type TracerProvider, trace } from '@opentelemetry/api';
import { isLogger, type Logger, noopLogger } from '@redis-events/resp';
import { attachIoredis, attachResp } from './channels/commands.ts';
import { type Attachment, PlainChannels } from './channels/common.ts';
import { attachDatabroker } from './channels/databroker.ts';
import { attachEventStore, attachStreamsDriver } from './channels/messages.ts';
import { attachPubsub } from './channels/pubsub.ts';
import { attachReplication } from './channels/replication.ts';
import { attachStreamGroups } from './channels/streams-groups.ts';
import { OpenTelemetryError } from './errors.ts';
import { createInstruments } from './metrics.ts';
import { OperationEngine } from './operations.ts';

/** The instrumentation scope name of every span and metric this package makes. */
export const INSTRUMENTATION_NAME = '@redis-events/opentelemetry';
/** The package's version, the instrumentation scope version. */
export const INSTRUMENTATION_VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version;

/** What can be instrumented, by package directory name; `ioredis` is ioredis's own channels. */
export type InstrumentedPackage =
  | 'resp'
  | 'pubsub'
  | 'streams-driver'
  | 'event-store'
  | 'replication'
  | 'databroker'
  | 'ioredis';

const PACKAGES: readonly InstrumentedPackage[] = [
  'resp',
  'pubsub',
  'streams-driver',
  'event-store',
  'replication',
  'databroker',
  'ioredis',
];

/**
 * Options of {@link instrumentRedisEvents}. Every field is optional.
 *
 * @example
 * ```ts
 * const instrumentation = instrumentRedisEvents({
 *   tracerProvider, // default: the global one (trace.getTracerProvider())
 *   meterProvider, // default: the global one (metrics.getMeterProvider())
 *   requireParentSpan: false, // command spans also outside a trace
 *   messageContext: 'parent', // a consumer's span is a child of its producer's
 *   packages: { ioredis: false }, // you already use @opentelemetry/instrumentation-ioredis
 * });
 * ```
 */
export interface RedisEventsInstrumentationOptions {
  /** Where spans go; default: the global tracer provider. */
  readonly tracerProvider?: TracerProvider | undefined;
  /** Where metrics go; default: the global meter provider. */
  readonly meterProvider?: MeterProvider | undefined;
  /** Make spans (default true). */
  readonly traces?: boolean | undefined;
  /** Record metrics (default true). */
  readonly metrics?: boolean | undefined;
  /**
   * Which packages to instrument, by directory name (default: all). `ioredis: false` leaves out
   * the command spans of ioredis's own channels (if you use `@opentelemetry/instrumentation-ioredis`).
   */
  readonly packages?: Readonly<Partial<Record<InstrumentedPackage, boolean>>> | undefined;
  /**
   * Redis command spans (`XADD`, `GET`...) only inside another span (default true), as
   * `@opentelemetry/instrumentation-ioredis` does: the reads of polling loops and background work
   * then make no traces of their own. Their duration metric is recorded either way.
   */
  readonly requireParentSpan?: boolean | undefined;
  /**
   * How the span of a received message refers to the span that sent it (when the message
   * carried a trace context): `'link'` (default, as the messaging conventions advise: the
   * consumer's trace stays its own) or `'parent'` (the producer's span becomes the parent of a
   * single message's span, for one trace end to end; an ambient span is then linked).
   */
  readonly messageContext?: 'link' | 'parent' | undefined;
  /**
   * Put the sending span's trace context (`traceparent`, `tracestate`) into the messages the
   * packages store (stream entries, event-store events); default true.
   */
  readonly propagate?: boolean | undefined;
  /** Where failures of the instrumentation itself are reported (default: nowhere). */
  readonly logger?: Logger | undefined;
}

/**
 * The handle {@link instrumentRedisEvents} returns. `close()` (or `using`) unsubscribes from
 * every channel and stops the observable metrics; spans in flight still end.
 *
 * @example
 * ```ts
 * using instrumentation = instrumentRedisEvents({ tracerProvider });
 * // ... work ...
 * // leaving the scope unsubscribes, as instrumentation.close() does
 * ```
 */
export interface RedisEventsInstrumentation {
  /** True once `close()` ran. */
  readonly closed: boolean;
  /** Unsubscribes from every channel; idempotent. */
  close(): void;
  [Symbol.dispose](): void;
}

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'tracerProvider',
  'meterProvider',
  'traces',
  'metrics',
  'packages',
  'requireParentSpan',
  'messageContext',
  'propagate',
  'logger',
]);

function argument(message: string): OpenTelemetryError {
  return new OpenTelemetryError('ERR_OTEL_ARGUMENT', message);
}

function checkBoolean(options: Record<string, unknown>, name: string): boolean | undefined {
  const value = options[name];
  if (value !== undefined && typeof value !== 'boolean') {
    throw argument(`instrumentRedisEvents(): ${name} must be a boolean, not ${typeof value}`);
  }
  return value as boolean | undefined;
}

function checkOptions(options: unknown): RedisEventsInstrumentationOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw argument('instrumentRedisEvents() takes an options object');
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.has(key)) {
      const guess = [...OPTION_NAMES].find((name) => name.toLowerCase() === key.toLowerCase());
      throw argument(
        `instrumentRedisEvents() has no option "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}; it knows ${[...OPTION_NAMES].join(', ')}`,
      );
    }
  }
  for (const name of ['traces', 'metrics', 'requireParentSpan', 'propagate']) checkBoolean(o, name);
  if (o.tracerProvider !== undefined && typeof (o.tracerProvider as TracerProvider).getTracer !== 'function') {
    throw argument('instrumentRedisEvents(): tracerProvider must have getTracer() (a TracerProvider)');
  }
  if (o.meterProvider !== undefined && typeof (o.meterProvider as MeterProvider).getMeter !== 'function') {
    throw argument('instrumentRedisEvents(): meterProvider must have getMeter() (a MeterProvider)');
  }
  if (o.messageContext !== undefined && o.messageContext !== 'link' && o.messageContext !== 'parent') {
    throw argument(
      `instrumentRedisEvents(): messageContext must be 'link' or 'parent', not ${String(o.messageContext)}`,
    );
  }
  if (o.logger !== undefined && !isLogger(o.logger)) {
    throw argument('instrumentRedisEvents(): logger must have debug(), warn() and error() (console, pino...)');
  }
  if (o.packages !== undefined) {
    if (typeof o.packages !== 'object' || o.packages === null) {
      throw argument('instrumentRedisEvents(): packages must be an object such as { ioredis: false }');
    }
    for (const [name, value] of Object.entries(o.packages)) {
      if (!(PACKAGES as readonly string[]).includes(name)) {
        throw argument(`instrumentRedisEvents(): packages has no "${name}"; it knows ${PACKAGES.join(', ')}`);
      }
      if (typeof value !== 'boolean') throw argument(`instrumentRedisEvents(): packages.${name} must be a boolean`);
    }
  }
  return o as RedisEventsInstrumentationOptions;
}

/**
 * Turns what every `@redis-events` package reports on `node:diagnostics_channel` into
 * OpenTelemetry spans and metrics: Redis commands, stream sends, receives and acks with trace
 * context carried in the messages, Pub/Sub publishes, drops and gaps, replication lag, databroker
 * puts and sync lag. Call it once, early (before work starts); it patches nothing, and costs
 * nothing until a package reports something. Returns a handle whose `close()` unsubscribes.
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
 * import { instrumentRedisEvents } from '@redis-events/opentelemetry';
 *
 * const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] });
 * const instrumentation = instrumentRedisEvents({ tracerProvider });
 * // ... topic.send(), subscription.receive() ... make spans
 * instrumentation.close();
 * ```
 */
export function instrumentRedisEvents(options?: RedisEventsInstrumentationOptions): RedisEventsInstrumentation {
  const o = checkOptions(options);
  const logger = o.logger ?? noopLogger;
  const tracer =
    o.traces === false
      ? undefined
      : (o.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  const instruments =
    o.metrics === false
      ? undefined
      : createInstruments(
          (o.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION),
        );
  const engine = new OperationEngine({
    tracer,
    instruments,
    requireParentSpan: o.requireParentSpan ?? true,
    messageContext: o.messageContext ?? 'link',
    propagate: o.propagate ?? true,
    logger,
  });
  const failed = (where: string, err: unknown) => engine.failed(where, err);
  const plain = new PlainChannels(failed);
  const closers: (() => void)[] = [];
  const attachment: Attachment = {
    engine,
    instruments,
    plain: (name, handler) => plain.subscribe(name, handler),
    onClose: (fn) => closers.push(fn),
    failed,
  };
  const enabled = (name: InstrumentedPackage) => o.packages?.[name] !== false;
  if (enabled('resp')) attachResp(attachment);
  if (enabled('ioredis')) attachIoredis(attachment);
  if (enabled('pubsub')) attachPubsub(attachment);
  if (enabled('replication')) attachReplication(attachment);
  if (enabled('databroker')) attachDatabroker(attachment);
  if (enabled('streams-driver')) {
    attachStreamsDriver(attachment);
    attachStreamGroups(attachment);
  }
  if (enabled('event-store')) attachEventStore(attachment);

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    engine.close();
    plain.close();
    for (const fn of closers.splice(0)) {
      try {
        fn();
      } catch (err) {
        failed('close', err);
      }
    }
  };
  return {
    get closed() {
      return closed;
    },
    close,
    [Symbol.dispose]: close,
  };
}
