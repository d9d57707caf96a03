// A replication listener's lag from @redis-events/opentelemetry's gauges against a real master:
// while the master is written faster than the consumer takes the commands, the lag in bytes and
// seconds rises; once the consumer keeps up, it falls back to 0. The gauges are what a meter
// collects, nothing else is read. The handshake and the full sync are spans.
import { instrumentRedisEvents, METRICS, type RedisEventsInstrumentation } from '@redis-events/opentelemetry';
import { ReplicaListener } from '@redis-events/replication';
import { spawnRedis } from '@redis-events/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createTelemetry, type TestTelemetry } from '../../packages/opentelemetry/test/telemetry.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let telemetry: TestTelemetry | undefined;
let instrumentation: RedisEventsInstrumentation | undefined;
afterEach(async () => {
  instrumentation?.close();
  await telemetry?.shutdown();
});

/** The gauge's single point (the one listener), or undefined while it has none. */
async function lagOf(t: TestTelemetry): Promise<{ bytes: number; seconds: number; attributes: object } | undefined> {
  const metrics = await t.collect();
  const point = (name: string) => metrics.find((m) => m.descriptor.name === name)?.dataPoints;
  const bytes = point(METRICS.replicationLag);
  const seconds = point(METRICS.replicationLagTime);
  if (bytes?.length !== 1 || seconds?.length !== 1) return undefined;
  return {
    bytes: bytes[0]?.value as number,
    seconds: seconds[0]?.value as number,
    attributes: bytes[0]?.attributes as object,
  };
}

async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('replication lag metrics', () => {
  it('rise while the master is written faster than the consumer takes, and fall back to 0', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    const t = createTelemetry();
    telemetry = t;
    instrumentation = instrumentRedisEvents({ meterProvider: t.meterProvider, tracerProvider: t.tracerProvider });
    // Before any listener: no reading, no point.
    expect(await lagOf(t)).toBeUndefined();

    const listener = new ReplicaListener({ port: master.port, ackInterval: 100, maxQueuedEvents: 16 });
    let slow = false;
    let commands = 0;
    const consumed = (async () => {
      for await (const event of listener) {
        if (event.kind !== 'command') continue;
        commands++;
        if (slow) await sleep(20);
      }
    })();
    // Caught up after the snapshot: the gauge says 0 in the stream phase.
    const idle = await until('a first reading', async () => {
      const lag = await lagOf(t);
      return lag?.bytes === 0 && listener.checkpoint !== undefined ? lag : undefined;
    });
    expect(idle).toMatchObject({
      seconds: 0,
      attributes: {
        'db.system.name': 'redis',
        'server.address': '127.0.0.1',
        'server.port': master.port,
        'redis.replication.phase': 'stream',
      },
    });
    // The handshake and the snapshot were traced.
    const spans = t.spans().map((s) => [s.name, s.attributes['redis.replication.psync.result'] ?? null]);
    expect(spans).toEqual([
      ['PSYNC', 'full'],
      ['FULLRESYNC', null],
    ]);
    expect(t.spans()[0]?.attributes).toMatchObject({ 'server.port': master.port, 'redis.replication.attempt': 1 });

    slow = true;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) writes.push(client.set(`k${i}`, 'v'.repeat(100)));
    await Promise.all(writes);
    // 400 writes of ~130 bytes each, taken at 20 ms each: the listener is behind for seconds.
    const behind = await until('the lag to rise', async () => {
      const lag = await lagOf(t);
      return lag !== undefined && lag.bytes > 10_000 && lag.seconds > 0.2 ? lag : undefined;
    });
    expect(behind.bytes).toBeLessThanOrEqual(400 * 200);
    expect(commands).toBeLessThan(400);

    slow = false;
    await until('the lag to fall back to 0', async () => {
      const lag = await lagOf(t);
      return lag?.bytes === 0 && lag.seconds === 0 ? lag : undefined;
    });
    expect(commands).toBeGreaterThanOrEqual(400);
    await listener.close();
    await consumed;
  });
});
