// Turns the operations of a TracingChannel into spans and duration metrics. One engine serves
// every package: a mapping (see channels/*.ts) says what a context means (span name, kind,
// attributes, carriers) and what to record, the engine does the lifecycle.
//
// Parenting: a traced call runs inside `start.runStores(context)`, so the engine binds its own
// AsyncLocalStorage to each `start` channel; an operation that starts inside another (the XADD
// of a `send`, the INFO of a sync) finds its parent there before looking at the application's
// active context. The OpenTelemetry API offers no public way to bind its own storage.
import { AsyncLocalStorage } from 'node:async_hooks';
import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import {
  type Attributes,
  type Context,
  context as contextApi,
  type Link,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from '@redis-events/resp';
import type { Instruments } from './metrics.ts';
import { ATTR_DB_RESPONSE_STATUS_CODE, ATTR_ERROR_TYPE } from './semconv.ts';
import { extractTraceContext, injectTraceContext } from './trace-context.ts';

/** What a mapping says about an operation when it starts. */
export interface OperationStart {
  readonly name: string;
  readonly kind: SpanKind;
  readonly attributes: Attributes;
  /** Carriers of received messages known at the start (a message being processed). */
  readonly carriers?: readonly unknown[] | undefined;
}

/** How the operations of one TracingChannel become spans and metrics. */
export interface OperationMapping<C extends object = object> {
  /** The TracingChannel's name (without the `tracing:` prefix and the event suffix). */
  readonly channel: string;
  /**
   * A Redis command (or a batch of them): it gets a span only under a parent span when
   * `requireParentSpan` is on, as polling loops would otherwise fill traces.
   */
  readonly command?: boolean | undefined;
  /** The operation ends at `end` (traceSync) rather than at `asyncEnd`. */
  readonly sync?: boolean | undefined;
  /** The context has a `carrier` to fill with the operation's trace context (a message sent). */
  readonly inject?: boolean | undefined;
  /** Name, kind and attributes of the span; undefined when this context is not traced. */
  begin(context: C): OperationStart | undefined;
  /** Attributes known once the operation ended (its result), and carriers read back. */
  finish?: ((context: C) => OperationEnd | undefined) | undefined;
  /** Records the operation's metrics: `attributes` are the span's, `seconds` its duration. */
  record?:
    | ((instruments: Instruments, context: C, seconds: number, attributes: Attributes, errorType?: string) => void)
    | undefined;
}

/** What a mapping adds when an operation ended. */
export interface OperationEnd {
  readonly attributes?: Attributes | undefined;
  /** Carriers of the messages the operation received, linked to the span. */
  readonly carriers?: readonly unknown[] | undefined;
}

/** The engine's settings (from the instrumentation's options). */
export interface EngineSettings {
  readonly tracer: Tracer | undefined;
  readonly instruments: Instruments | undefined;
  readonly requireParentSpan: boolean;
  readonly messageContext: 'link' | 'parent';
  readonly propagate: boolean;
  readonly logger: Logger;
}

interface OperationState {
  readonly span: Span | undefined;
  /** The context operations started inside this one take as their parent. */
  readonly context: Context;
  readonly startedAt: number;
  readonly attributes: Attributes;
  errorType: string | undefined;
  done: boolean;
}

type Handlers = Parameters<TracingChannel<object, object>['subscribe']>[0];

/** Subscribes mappings to their channels; `close()` unsubscribes them all. */
export class OperationEngine {
  readonly #settings: EngineSettings;
  readonly #store = new AsyncLocalStorage<Context>();
  // null: seen and not traced (begin() said so, or failed), so the transform and `start` agree.
  // Kept on the context under a non-enumerable symbol, not in a WeakMap: a WeakMap's entries
  // (one per operation, short-lived) are ephemerons the garbage collector processes apart, which
  // cost more than the span itself.
  readonly #states = new ContextStates();
  readonly #detach: (() => void)[] = [];
  #failures = 0;

  constructor(settings: EngineSettings) {
    this.#settings = settings;
  }

  /** The parent of an operation starting now: an enclosing operation's, else the application's. */
  parentContext(): Context {
    return this.#store.getStore() ?? contextApi.active();
  }

  /** The state of a traced context, for mappings that read it later (a message's span). */
  spanOf(context: object): Span | undefined {
    return this.#states.get(context)?.span ?? undefined;
  }

  attach<C extends object>(mapping: OperationMapping<C>): void {
    const channel = tracingChannel<C>(mapping.channel);
    const finish = (context: C) => this.#finish(mapping, context);
    const handlers: Handlers = {
      start: (context) => {
        this.#begin(mapping, context as C);
      },
      end: mapping.sync ? (context) => finish(context as C) : noop,
      asyncStart: noop,
      asyncEnd: mapping.sync ? noop : (context) => finish(context as C),
      error: (context) => this.#error(context as C),
    };
    channel.subscribe(handlers as never);
    // The transform runs before `start` is published: it creates the state, the handler finds it.
    const transform = (context: C) => this.#begin(mapping, context)?.context ?? this.parentContext();
    channel.start.bindStore(this.#store as AsyncLocalStorage<never>, transform as never);
    this.#detach.push(() => {
      channel.unsubscribe(handlers as never);
      channel.start.unbindStore(this.#store as AsyncLocalStorage<never>);
    });
  }

  close(): void {
    for (const detach of this.#detach.splice(0)) detach();
  }

  #begin<C extends object>(mapping: OperationMapping<C>, context: C): OperationState | undefined {
    const known = this.#states.get(context);
    if (known !== undefined) return known ?? undefined;
    this.#states.set(context, null);
    try {
      const start = mapping.begin(context);
      if (start === undefined) return undefined;
      const parent = this.parentContext();
      const span = this.#startSpan(mapping, start, parent);
      const carrier = (context as { carrier?: unknown }).carrier;
      if (mapping.inject && this.#settings.propagate && isCarrier(carrier)) {
        const spanContext = span?.spanContext() ?? trace.getSpanContext(parent);
        if (spanContext !== undefined) injectTraceContext(spanContext, carrier);
      }
      const state: OperationState = {
        span,
        context: span !== undefined ? trace.setSpan(parent, span) : parent,
        startedAt: performance.now(),
        attributes: start.attributes,
        errorType: undefined,
        done: false,
      };
      this.#states.set(context, state);
      return state;
    } catch (err) {
      this.failed(mapping.channel, err);
      return undefined;
    }
  }

  #startSpan<C extends object>(mapping: OperationMapping<C>, start: OperationStart, parent: Context): Span | undefined {
    const tracer = this.#settings.tracer;
    if (tracer === undefined) return undefined;
    if (mapping.command && this.#settings.requireParentSpan && trace.getSpanContext(parent) === undefined) return;
    const remote = contextsOf(start.carriers);
    let parentContext = parent;
    let links: Link[] | undefined;
    if (remote.length === 1 && this.#settings.messageContext === 'parent') {
      // The producer's span becomes the parent; the ambient span, if any, is linked instead.
      parentContext = trace.setSpanContext(parent, remote[0] as SpanContext);
      const ambient = trace.getSpanContext(parent);
      if (ambient !== undefined) links = [{ context: ambient }];
    } else if (remote.length > 0) {
      links = remote.map((context) => ({ context }));
    }
    return tracer.startSpan(
      start.name,
      { kind: start.kind, attributes: start.attributes, ...(links ? { links } : {}) },
      parentContext,
    );
  }

  #error<C extends object>(context: C): void {
    const state = this.#states.get(context);
    if (state == null || state.errorType !== undefined) return;
    const error = (context as { error?: unknown }).error;
    state.errorType = errorType(error);
    const span = state.span;
    if (span === undefined) return;
    try {
      const status = responseStatus(error);
      span.setAttribute(ATTR_ERROR_TYPE, state.errorType);
      if (status !== undefined) span.setAttribute(ATTR_DB_RESPONSE_STATUS_CODE, status);
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    } catch (err) {
      this.failed('error', err);
    }
  }

  #finish<C extends object>(mapping: OperationMapping<C>, context: C): void {
    const state = this.#states.get(context);
    if (state == null || state.done) return;
    state.done = true;
    const seconds = (performance.now() - state.startedAt) / 1000;
    // A context that got `error` without the error event (some packages set it before asyncEnd).
    if (state.errorType === undefined && (context as { error?: unknown }).error !== undefined) this.#error(context);
    try {
      const end = mapping.finish?.(context);
      let attributes = state.attributes;
      if (end?.attributes !== undefined) attributes = { ...attributes, ...end.attributes };
      const span = state.span;
      if (span !== undefined) {
        if (end?.attributes !== undefined) span.setAttributes(end.attributes);
        const remote = contextsOf(end?.carriers);
        if (remote.length > 0) span.addLinks(remote.map((c) => ({ context: c })));
        span.end();
      }
      const instruments = this.#settings.instruments;
      if (instruments !== undefined && mapping.record !== undefined) {
        mapping.record(instruments, context, seconds, attributes, state.errorType);
      }
    } catch (err) {
      this.failed(mapping.channel, err);
    }
  }

  /** Reports a failure of the instrumentation itself: logged the first times, then at powers of 10. */
  failed(where: string, err: unknown): void {
    // An instrumentation must never break the operation it observes; say so a few times only.
    this.#failures++;
    if (this.#failures <= 3 || Number.isInteger(Math.log10(this.#failures))) {
      this.#settings.logger.warn(
        { package: '@redis-events/opentelemetry', channel: where, failures: this.#failures, err },
        'the OpenTelemetry instrumentation failed to handle an event; the operation itself is not affected',
      );
    }
  }
}

function noop(): void {}

/** The engine's state of each context it saw, on the context itself (see OperationEngine). */
class ContextStates {
  readonly #key = Symbol('@redis-events/opentelemetry state');
  // For a context that cannot take a property (frozen by its publisher).
  readonly #sealed = new WeakMap<object, OperationState | null>();

  get(context: object): OperationState | null | undefined {
    const state = (context as Record<symbol, OperationState | null | undefined>)[this.#key];
    return state !== undefined || Object.isExtensible(context) ? state : this.#sealed.get(context);
  }

  set(context: object, state: OperationState | null): void {
    const key = this.#key;
    if (Object.hasOwn(context, key)) (context as Record<symbol, OperationState | null>)[key] = state;
    else if (Object.isExtensible(context)) {
      Object.defineProperty(context, key, { value: state, writable: true, enumerable: false, configurable: true });
    } else this.#sealed.set(context, state);
  }
}

function isCarrier(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function contextsOf(carriers: readonly unknown[] | undefined): SpanContext[] {
  if (carriers === undefined || carriers.length === 0) return [];
  const out: SpanContext[] = [];
  for (const carrier of carriers) {
    const context = extractTraceContext(carrier);
    if (context !== undefined) out.push(context);
  }
  return out;
}

/**
 * `error.type`: the Redis error reply's prefix when the failure is one (`WRONGTYPE`, `NOPERM`),
 * else the error's stable `code` (`ERR_STREAMS_TIMEOUT`), else its class name; low cardinality by
 * construction.
 */
export function errorType(error: unknown): string {
  const status = responseStatus(error);
  if (status !== undefined) return status;
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '' && code.length <= 64) return code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '' && name !== 'Error' && name.length <= 64) return name;
  }
  return '_OTHER';
}

const PREFIX = /^[A-Z][A-Z_-]{1,31}$/;

/**
 * `db.response.status_code`: the prefix of a Redis error reply (`WRONGTYPE`, `NOPERM`), from
 * resp's `ReplyError.prefix` or an ioredis `ReplyError`, also when a package wrapped it (`cause`).
 */
export function responseStatus(error: unknown): string | undefined {
  let current = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const prefix = (current as { prefix?: unknown }).prefix;
    if (typeof prefix === 'string' && PREFIX.test(prefix)) return prefix;
    if ((current as { name?: unknown }).name === 'ReplyError') {
      const message = String((current as { message?: unknown }).message ?? '');
      const first = message.split(' ', 1)[0] ?? '';
      if (PREFIX.test(first)) return first;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export { SpanKind };
