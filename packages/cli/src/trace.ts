// `--trace`: the spans of a command printed to stderr as they end (what it did, how long), made by
// @redis-events/opentelemetry from the packages' diagnostics channels. The tracer here is a
// small printer implementing the OpenTelemetry API, so the CLI needs no SDK.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  type Attributes,
  type AttributeValue,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { instrumentRedisEvents } from '@redis-events/opentelemetry';

/** Where printed spans go: one line each. */
export type TraceOutput = (line: string) => void;

const SHOWN = ['db.namespace', 'messaging.destination.name', 'messaging.consumer.group.name', 'messaging.message.id'];

class PrintedSpan implements Span {
  readonly #context: SpanContext;
  readonly #start = performance.now();
  readonly #printer: SpanPrinter;
  readonly #depth: number;
  readonly #attributes: Attributes;
  #name: string;
  #status: SpanStatus = { code: SpanStatusCode.UNSET };
  #links = 0;
  #ended = false;

  constructor(
    printer: SpanPrinter,
    name: string,
    options: SpanOptions,
    parent: SpanContext | undefined,
    depth: number,
  ) {
    this.#printer = printer;
    this.#name = name;
    this.#depth = depth;
    this.#attributes = { ...options.attributes };
    this.#links = options.links?.length ?? 0;
    this.#context = {
      traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: TraceFlags.SAMPLED,
    };
  }

  get depth(): number {
    return this.#depth;
  }

  spanContext(): SpanContext {
    return this.#context;
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.#attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.#attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(_link: Link): this {
    this.#links++;
    return this;
  }
  addLinks(links: Link[]): this {
    this.#links += links.length;
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.#status = status;
    return this;
  }
  updateName(name: string): this {
    this.#name = name;
    return this;
  }
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#printer.print(this, this.#name, performance.now() - this.#start, this.#attributes, this.#status, this.#links);
  }
  isRecording(): boolean {
    return !this.#ended;
  }
  recordException(): void {}
  get startedAt(): number {
    return this.#start;
  }
}

/** Prints spans as they end: offset from the command's start, nesting, name, duration, key attributes. */
class SpanPrinter implements Tracer, TracerProvider {
  readonly #output: TraceOutput;
  readonly #origin = performance.now();
  readonly #spans = new WeakMap<SpanContext, PrintedSpan>();
  count = 0;

  constructor(output: TraceOutput) {
    this.#output = output;
  }

  getTracer(): Tracer {
    return this;
  }

  startSpan(name: string, options: SpanOptions = {}, context?: Context): Span {
    const parent = context === undefined ? undefined : trace.getSpanContext(context);
    const depth = parent === undefined ? 0 : (this.#spans.get(parent)?.depth ?? -1) + 1;
    const span = new PrintedSpan(this, name, options, parent, depth);
    this.#spans.set(span.spanContext(), span);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: unknown[]): ReturnType<F> {
    const fn = rest[rest.length - 1] as F;
    return fn(this.startSpan(name)) as ReturnType<F>;
  }

  print(span: PrintedSpan, name: string, ms: number, attributes: Attributes, status: SpanStatus, links: number): void {
    this.count++;
    const details: string[] = [];
    const address = attributes['server.address'];
    if (address !== undefined) {
      const port = attributes['server.port'];
      details.push(port === undefined ? String(address) : `${String(address)}:${String(port)}`);
    }
    for (const key of SHOWN) {
      if (attributes[key] !== undefined) details.push(`${key.split('.').pop()}=${String(attributes[key])}`);
    }
    if (links > 0) details.push(`linked to ${links} producer span${links > 1 ? 's' : ''}`);
    if (status.code === SpanStatusCode.ERROR)
      details.push(`failed: ${String(attributes['error.type'] ?? status.message)}`);
    const offset = (span.startedAt - this.#origin).toFixed(1).padStart(8);
    const indent = '  '.repeat(Math.max(0, span.depth));
    this.#output(
      `trace ${offset} ms  ${indent}${name}  ${formatMs(ms)}${details.length > 0 ? `  (${details.join(', ')})` : ''}`,
    );
  }
}

function formatMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

/** A running `--trace`: `stop()` unsubscribes and prints the total. */
export interface CommandTrace {
  stop(label: string): void;
}

/** Starts printing the spans of every Redis operation of this process to `output`. */
export function startCommandTrace(output: TraceOutput): CommandTrace {
  const printer = new SpanPrinter(output);
  const instrumentation = instrumentRedisEvents({
    tracerProvider: printer,
    metrics: false,
    requireParentSpan: false, // a command has no enclosing span: show every Redis command
  });
  const started = performance.now();
  return {
    stop(label) {
      instrumentation.close();
      output(
        `trace ${label}: ${printer.count} span${printer.count === 1 ? '' : 's'} in ${formatMs(performance.now() - started)}`,
      );
    },
  };
}
