// What @redis-events/opentelemetry costs per operation, without Redis: 20,000 operations shaped
// like a stream send (a context with destination, size and carrier, traced with tracePromise
// behind the packages' `hasSubscribers` guard), run one after another:
// - nobody listening: the guard alone (what every package pays when nothing is installed);
// - ours, metrics only: the instrumentation installed, a command outside a trace (no span,
//   one histogram record);
// - ours: a PRODUCER span each with its trace context written into the carrier, the SDK with a
//   batching processor and an exporter that only counts;
// - @opentelemetry/api by hand: what an application would write around the same call for the
//   same telemetry (a span with its attributes, the sent-messages counter and the duration
//   histogram with the same attributes), no diagnostics channel, no trace context in a carrier.
import { tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { SpanKind } from '@opentelemetry/api';
import { type BenchCase, runSuite } from '../lib/harness.ts';
import { type BenchTelemetry, instrumentForBench } from '../lib/opentelemetry.ts';

const N = Number(process.env.BENCH_OPERATIONS ?? 20_000);
const group = `${N} operations shaped like a stream send, one after another`;

interface SendContext {
  readonly destination: string;
  readonly bodySize: number;
  readonly serverAddress: string;
  readonly serverPort: number;
  readonly carrier: Record<string, string>;
}

const send = tracingChannel<SendContext>('redis-events:streams-driver:send');
const command = tracingChannel<object>('ioredis:command');

const work = async (): Promise<string> => '1700000000000-0';

/** As a package publishes: build the context and trace only while someone subscribes. */
function guardedSend(): Promise<string> {
  if (!send.hasSubscribers) return work();
  const context: SendContext = {
    destination: 'orders',
    bodySize: 1024,
    serverAddress: '127.0.0.1',
    serverPort: 6379,
    carrier: {},
  };
  return send.tracePromise(work, context);
}

function guardedCommand(): Promise<string> {
  if (!command.hasSubscribers) return work();
  return command.tracePromise(work, {
    command: 'xadd',
    args: [],
    database: 0,
    serverAddress: '127.0.0.1',
    serverPort: 6379,
  });
}

async function loop(operation: () => Promise<string>): Promise<{ ops: number }> {
  for (let i = 0; i < N; i++) {
    if ((await operation()) !== '1700000000000-0') throw new Error('wrong result');
  }
  return { ops: N };
}

interface Installed {
  telemetry: BenchTelemetry | undefined;
}

function withTelemetry(subject: string, operation: () => Promise<string>, install: boolean): BenchCase<Installed> {
  return {
    group,
    subject,
    setup: () => ({ telemetry: install ? instrumentForBench() : undefined }),
    run: () => loop(operation),
    async teardown({ telemetry }) {
      if (telemetry === undefined) return;
      const { spans } = await telemetry.close();
      process.stderr.write(`    ${subject}: ${spans} spans exported\n`);
    },
  };
}

/** The hand-written alternative: a span and a histogram record around the call. */
function byHand(): BenchCase<Installed & ReturnType<BenchTelemetry['handles']>> {
  return {
    group,
    subject: '@opentelemetry/api by hand',
    setup: () => {
      const telemetry = instrumentForBench({ instrument: false });
      return { telemetry, ...telemetry.handles() };
    },
    run: ({ tracer, histogram, counter }) =>
      loop(async () => {
        const started = performance.now();
        const span = tracer.startSpan('send orders', {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': 'redis',
            'messaging.operation.type': 'send',
            'messaging.destination.name': 'orders',
            'messaging.message.body.size': 1024,
            'server.address': '127.0.0.1',
            'server.port': 6379,
          },
        });
        try {
          const id = await work();
          span.setAttribute('messaging.message.id', id);
          return id;
        } finally {
          span.end();
          // The same two metrics with the same attributes as the instrumentation records.
          const metric = {
            'messaging.system': 'redis',
            'messaging.operation.type': 'send',
            'messaging.operation.name': 'send',
            'messaging.destination.name': 'orders',
            'server.address': '127.0.0.1',
            'server.port': 6379,
          };
          counter.add(1, metric);
          histogram.record((performance.now() - started) / 1000, metric);
        }
      }),
    async teardown({ telemetry: installed }) {
      await installed?.close();
    },
  };
}

await runSuite(import.meta.url, 'opentelemetry: cost per operation (no Redis)', [
  withTelemetry('ours', guardedSend, true),
  withTelemetry('nobody listening', guardedSend, false),
  withTelemetry('ours, metrics only (a command outside a trace)', guardedCommand, true),
  byHand(),
]);
