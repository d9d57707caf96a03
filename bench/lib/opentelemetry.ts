// The OpenTelemetry instrumentation as a service would run it, for the "with the OpenTelemetry
// instrumentation" rows: an SDK tracer provider (always sampled, batched, spans handed to an
// exporter that only counts them) and a meter provider whose reader collects at the end, and
// @redis-events/opentelemetry with its defaults.
import { type Counter, context, type Histogram, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import { instrumentRedisEvents } from '@redis-events/opentelemetry';

class CountingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    this.spans += spans.length;
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

class EndReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export interface BenchTelemetry {
  /** A tracer and a histogram of the SDK, for rows that instrument by hand. */
  handles(): { tracer: Tracer; histogram: Histogram; counter: Counter };
  /** Flushes and stops the SDK; returns how many spans were exported. */
  close(): Promise<{ spans: number }>;
}

/**
 * Installs the SDK and (unless `instrument: false`, for rows that instrument by hand) the
 * instrumentation in this (benchmark case) process.
 */
export function instrumentForBench(options: { readonly instrument?: boolean | undefined } = {}): BenchTelemetry {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporter = new CountingExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] });
  const reader = new EndReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation =
    options.instrument === false ? undefined : instrumentRedisEvents({ tracerProvider, meterProvider });
  return {
    handles: () => ({
      tracer: tracerProvider.getTracer('bench'),
      histogram: meterProvider.getMeter('bench').createHistogram('bench.duration', { unit: 's' }),
      counter: meterProvider.getMeter('bench').createCounter('bench.sent'),
    }),
    async close() {
      await reader.collect();
      instrumentation?.close();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      context.disable();
      return { spans: exporter.spans };
    },
  };
}
