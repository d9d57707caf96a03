// A message sent in one process and received in another, each with its own OpenTelemetry SDK
// (in-memory exporters): the producer's `send` span puts its trace context into the stream entry's
// metadata, and the consumer's `receive` span, in its own trace, is linked to that span.
import { execFile } from 'node:child_process';
import { SpanKind } from '@opentelemetry/api';
import { instrumentRedisEvents, type RedisEventsInstrumentation } from '@redis-events/opentelemetry';
import { Subscription } from '@redis-events/streams-driver';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTelemetry, type TestTelemetry } from '../../packages/opentelemetry/test/telemetry.ts';

interface ExportedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parent: string | undefined;
  attributes: Record<string, unknown>;
}

// The producer: a separate Node process with its own SDK, printing its finished spans as JSON.
const PRODUCER = `
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { instrumentRedisEvents } from '@redis-events/opentelemetry';
import { Topic } from '@redis-events/streams-driver';
import { Redis } from 'ioredis';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const instrumentation = instrumentRedisEvents({ tracerProvider });
const redis = new Redis(process.env.REDIS_URL, { lazyConnect: true });
await redis.connect();
const topic = new Topic(redis, process.env.TOPIC);
const id = await tracerProvider.getTracer('shop').startActiveSpan('place order', async (span) => {
  try {
    return await topic.send({ body: 'order 42', metadata: { type: 'placed' } });
  } finally {
    span.end();
  }
});
await topic.shutdown();
redis.disconnect();
instrumentation.close();
const spans = exporter.getFinishedSpans().map((s) => ({
  name: s.name,
  kind: s.kind,
  traceId: s.spanContext().traceId,
  spanId: s.spanContext().spanId,
  parent: s.parentSpanContext?.spanId,
  attributes: s.attributes,
}));
process.stdout.write(JSON.stringify({ id, spans }));
`;

function runProducer(env: Record<string, string>): Promise<{ id: string; spans: ExportedSpan[] }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--conditions=@redis-events/source', '-e', PRODUCER],
      { cwd: import.meta.dirname, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`the producer failed: ${stderr || error.message}`));
        else resolve(JSON.parse(stdout) as { id: string; spans: ExportedSpan[] });
      },
    );
  });
}

let redis: Redis;
let telemetry: TestTelemetry;
let instrumentation: RedisEventsInstrumentation;
const topic = `otel-trace:${process.pid}:orders`;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  telemetry = createTelemetry();
  instrumentation = instrumentRedisEvents({
    tracerProvider: telemetry.tracerProvider,
    meterProvider: telemetry.meterProvider,
  });
});

afterAll(async () => {
  instrumentation.close();
  await telemetry.shutdown();
  await redis.del(topic);
  redis.disconnect();
});

describe('trace context through a stream message, across processes', () => {
  it("the consumer's receive span is linked to the producer's send span", async () => {
    const subscription = new Subscription(redis, { topic, group: 'billing', consumer: 'c1' });
    await subscription.ready();
    const produced = await runProducer({ REDIS_URL: inject('redisUrl'), TOPIC: topic });

    // The producer: place order > send <topic> > XADD, the send a PRODUCER span naming the entry.
    const order = produced.spans.find((s) => s.name === 'place order');
    const send = produced.spans.find((s) => s.name === `send ${topic}`);
    const xadd = produced.spans.find((s) => s.name === 'XADD');
    expect(send).toMatchObject({
      kind: SpanKind.PRODUCER,
      parent: order?.spanId,
      traceId: order?.traceId,
      attributes: {
        'messaging.system': 'redis',
        'messaging.operation.type': 'send',
        'messaging.destination.name': topic,
        'messaging.message.id': produced.id,
        'messaging.message.body.size': 8,
      },
    });
    expect(xadd?.parent).toBe(send?.spanId);

    const message = await subscription.receive();
    expect(message.id).toBe(produced.id);
    // The trace context travels as the entry's metadata, beside the application's own.
    expect(message.metadata).toEqual({ type: 'placed', traceparent: `00-${send?.traceId}-${send?.spanId}-01` });
    await message.ack();
    await subscription.shutdown();

    const spans = telemetry.spans();
    const receive = spans.find((s) => s.name === `receive ${topic}`);
    expect(receive?.kind).toBe(SpanKind.CLIENT);
    expect(receive?.attributes).toMatchObject({
      'messaging.operation.type': 'receive',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': 'billing',
      'messaging.client.id': 'c1',
      'messaging.message.id': produced.id,
    });
    // Its own trace (the messaging conventions' default), linked to the producer's span.
    expect(receive?.spanContext().traceId).not.toBe(send?.traceId);
    expect(receive?.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([[send?.traceId, send?.spanId]]);
    const ack = spans.find((s) => s.name === `ack ${topic}`);
    expect(ack?.attributes).toMatchObject({
      'messaging.operation.type': 'settle',
      'messaging.message.id': produced.id,
    });
    const consumed = await telemetry.points('messaging.client.consumed.messages');
    expect(consumed.filter((p) => p.attributes['messaging.destination.name'] === topic).map((p) => p.value)).toEqual([
      1,
    ]);
  });
});
