// @redis-events/pubsub through @redis-events/opentelemetry against a real Redis: a subscribe
// call and publishes under an application span are its children, with the server's answer (how
// many received); messages received are counted, and what a full buffer dropped is counted as
// the subscription itself counts it.

import { SpanKind } from '@opentelemetry/api';
import { instrumentRedisEvents, METRICS, type RedisEventsInstrumentation } from '@redis-events/opentelemetry';
import { createPubSubClient } from '@redis-events/pubsub';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createTelemetry, type TestTelemetry } from '../../packages/opentelemetry/test/telemetry.ts';

let telemetry: TestTelemetry | undefined;
let instrumentation: RedisEventsInstrumentation | undefined;
afterEach(async () => {
  instrumentation?.close();
  await telemetry?.shutdown();
});

describe('Pub/Sub spans and metrics', () => {
  it('subscribe and publish are spans of the caller; receptions and drops are counted', async () => {
    const t = createTelemetry();
    telemetry = t;
    instrumentation = instrumentRedisEvents({ tracerProvider: t.tracerProvider, meterProvider: t.meterProvider });
    const channel = `otel-pubsub:${process.pid}`;
    const client = createPubSubClient(inject('redisUrl'));
    const subscription = client.createSubscription({ highWaterMark: 2, overflow: 'drop-newest' });
    const tracer = t.tracerProvider.getTracer('app');
    await tracer.startActiveSpan('request', async (span) => {
      await subscription.subscribe(channel);
      for (let i = 0; i < 5; i++) await client.publish(channel, `message ${i}`);
      span.end();
    });
    // Nobody reads: 2 stay buffered, 3 are dropped.
    const end = Date.now() + 20_000;
    while (subscription.dropped < 3) {
      if (Date.now() > end) throw new Error(`dropped ${subscription.dropped}, not 3`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const spans = t.spans();
    const request = spans.find((s) => s.name === 'request');
    // The subscribe call's span (pubsub's channel) holds the command its connection wrote (resp's).
    const subscribe = spans.find(
      (s) => s.name === 'SUBSCRIBE' && s.parentSpanContext?.spanId === request?.spanContext().spanId,
    );
    const written = spans.filter((s) => s.name === 'SUBSCRIBE' && s !== subscribe);
    expect(written.map((s) => s.parentSpanContext?.spanId)).toEqual([subscribe?.spanContext().spanId]);
    const publishes = spans.filter((s) => s.name === `publish ${channel}`);
    expect(subscribe?.attributes).toMatchObject({
      'db.system.name': 'redis',
      'db.operation.name': 'SUBSCRIBE',
      'messaging.destination.name': channel,
    });
    expect(publishes).toHaveLength(5);
    for (const publish of publishes) {
      expect(publish.kind).toBe(SpanKind.PRODUCER);
      expect(publish.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
      expect(publish.attributes).toMatchObject({
        'messaging.system': 'redis',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': channel,
        'messaging.message.body.size': 9,
        'redis.pubsub.receivers': 1,
      });
    }

    const metrics = await t.collect();
    const points = (name: string) => metrics.find((m) => m.descriptor.name === name)?.dataPoints ?? [];
    const consumed = points('messaging.client.consumed.messages').filter(
      (p) => p.attributes['messaging.destination.name'] === channel,
    );
    expect(consumed.map((p) => p.value)).toEqual([5]);
    const dropped = points(METRICS.pubsubDropped).filter((p) => p.attributes['messaging.destination.name'] === channel);
    expect(dropped).toMatchObject([
      { value: subscription.dropped, attributes: { 'redis.pubsub.overflow_policy': 'drop-newest' } },
    ]);
    const sent = points('messaging.client.sent.messages').filter(
      (p) => p.attributes['messaging.destination.name'] === channel,
    );
    expect(sent.map((p) => p.value)).toEqual([5]);
    await client.close();
  });
});
