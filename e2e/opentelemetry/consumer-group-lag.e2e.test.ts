// Consumer-group lag and pending from @redis-events/opentelemetry's gauges against a real Redis:
// after the consumer stopped reading (its in-flight bound is full) and sends stopped, what a
// metrics collection reports is what XINFO GROUPS and XPENDING say.
import { instrumentRedisEvents, METRICS, type RedisEventsInstrumentation } from '@redis-events/opentelemetry';
import { Subscription, Topic } from '@redis-events/streams-driver';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTelemetry, type TestTelemetry } from '../../packages/opentelemetry/test/telemetry.ts';

let redis: Redis;
let telemetry: TestTelemetry;
let instrumentation: RedisEventsInstrumentation;
const prefix = `otel-lag:${process.pid}:`;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  telemetry = createTelemetry();
  instrumentation = instrumentRedisEvents({ meterProvider: telemetry.meterProvider, traces: false });
});

afterAll(async () => {
  instrumentation.close();
  await telemetry.shutdown();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** XINFO GROUPS for one group, as a record. */
async function xinfo(topic: string, group: string): Promise<Record<string, unknown>> {
  const rows = (await redis.call('XINFO', 'GROUPS', topic)) as unknown[][];
  for (const row of rows) {
    const record = Object.fromEntries(Array.from({ length: row.length / 2 }, (_, i) => [row[2 * i], row[2 * i + 1]]));
    if (record.name === group) return record;
  }
  throw new Error(`no group ${group} on ${topic}`);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('consumer-group metrics', () => {
  it('lag and pending equal what XINFO GROUPS says once the consumer paused', async () => {
    const topic = `${prefix}orders`;
    // No group is live yet: a collection reads nothing and reports no group.
    expect(await telemetry.points(METRICS.streamLag)).toEqual([]);

    const subscription = new Subscription(redis, {
      topic,
      group: 'billing',
      consumer: 'c1',
      maxInFlight: 3,
      prefetch: 3,
    });
    await subscription.ready();
    const sender = new Topic(redis, topic);
    const sentAt = Date.now();
    for (let i = 0; i < 10; i++) await sender.send({ body: `order ${i}` });
    // The reader takes 3 (its in-flight bound) and stops; nothing is acknowledged.
    await waitFor('3 entries pending', async () => (await xinfo(topic, 'billing')).pending === 3);

    const info = await xinfo(topic, 'billing');
    expect(info.lag).toBe(7);
    const attributes = {
      'messaging.system': 'redis',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': 'billing',
      'server.address': redis.options.host,
      'server.port': redis.options.port,
    };
    const metrics = await telemetry.collect();
    const point = (name: string) => metrics.find((m) => m.descriptor.name === name)?.dataPoints;
    expect(point(METRICS.streamLag)).toMatchObject([{ value: info.lag, attributes }]);
    expect(point(METRICS.streamPending)).toMatchObject([{ value: info.pending, attributes }]);
    // Both oldest entries were added after sentAt, by the server's clock (same host here).
    const [pendingAge] = point(METRICS.streamPendingTime) ?? [];
    const [lagAge] = point(METRICS.streamLagTime) ?? [];
    expect(pendingAge?.value).toBeGreaterThanOrEqual(0);
    expect(pendingAge?.value).toBeLessThanOrEqual((Date.now() - sentAt) / 1000 + 1);
    expect(lagAge?.value).toBeGreaterThanOrEqual(0);
    expect(lagAge?.value).toBeLessThanOrEqual((Date.now() - sentAt) / 1000 + 1);

    // Acknowledge everything: the group catches up, lag and pending fall to 0.
    let acked = 0;
    for await (const message of subscription) {
      await message.ack();
      if (++acked === 10) break;
    }
    await waitFor('nothing pending', async () => (await xinfo(topic, 'billing')).pending === 0);
    const after = await telemetry.collect();
    const value = (name: string) => after.find((m) => m.descriptor.name === name)?.dataPoints[0]?.value;
    expect(value(METRICS.streamLag)).toBe(0);
    expect(value(METRICS.streamPending)).toBe(0);
    expect(value(METRICS.streamLagTime)).toBe(0);
    expect(value(METRICS.streamPendingTime)).toBe(0);

    await sender.shutdown();
    // A subscription that ended is no longer read (a fresh meter sees no group; the SDK's
    // cumulative gauges would repeat their last value).
    await subscription.shutdown(); // everything was acknowledged: nothing to wait for
    const fresh = createTelemetry();
    const second = instrumentRedisEvents({ meterProvider: fresh.meterProvider, traces: false });
    expect(await fresh.points(METRICS.streamLag)).toEqual([]);
    second.close();
    await fresh.shutdown();
  });
});
