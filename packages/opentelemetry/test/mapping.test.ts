// The mapping from the packages' channel contexts to spans and metrics, driven by publishing
// contexts shaped as each package README documents them (the real packages are exercised in
// e2e/opentelemetry).
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { instrumentRedisEvents, METRICS, OpenTelemetryError, type RedisEventsInstrumentation } from '../src/index.ts';
import { createTelemetry, histogramOf, type TestTelemetry } from './telemetry.ts';

let telemetry: TestTelemetry;
let instrumentation: RedisEventsInstrumentation;

beforeEach(() => {
  telemetry = createTelemetry();
  instrumentation = instrumentRedisEvents({
    tracerProvider: telemetry.tracerProvider,
    meterProvider: telemetry.meterProvider,
  });
});

afterEach(async () => {
  instrumentation.close();
  await telemetry.shutdown();
});

/** Runs `fn` as the package would: `tracePromise` on the named channel with `context`. */
function traced<T>(name: string, context: object, fn: () => Promise<T>): Promise<T> {
  return tracingChannel(name).tracePromise(fn, context);
}

function inSpan<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const tracer = telemetry.tracerProvider.getTracer('test');
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
}

describe('Redis command spans', () => {
  const command = { command: 'get', args: ['k'], database: 2, serverAddress: '127.0.0.1', serverPort: 6380 };

  it('make no span outside a trace (requireParentSpan), but the duration metric counts them', async () => {
    await traced('ioredis:command', { ...command }, async () => 'v');
    expect(telemetry.spans()).toEqual([]);
    const [point] = await telemetry.points('db.client.operation.duration');
    expect(point?.attributes).toEqual({
      'db.system.name': 'redis',
      'db.operation.name': 'GET',
      'db.namespace': '2',
      'server.address': '127.0.0.1',
      'server.port': 6380,
    });
    expect(histogramOf(point).count).toBe(1);
  });

  it('are children of the active span, named after the command, with the database attributes', async () => {
    await inSpan('request', () => traced('ioredis:command', { ...command }, async () => 'v'));
    const [get, request] = telemetry.spans();
    expect(get?.name).toBe('GET');
    expect(get?.kind).toBe(SpanKind.CLIENT);
    expect(get?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    expect(get?.attributes).toMatchObject({
      'db.system.name': 'redis',
      'db.operation.name': 'GET',
      'db.namespace': '2',
    });
  });

  it('are made outside a trace too with requireParentSpan: false', async () => {
    instrumentation.close();
    instrumentation = instrumentRedisEvents({ tracerProvider: telemetry.tracerProvider, requireParentSpan: false });
    await traced('redis-events:resp:command', { command: 'PING', argsCount: 0 }, async () => 'PONG');
    expect(telemetry.spans().map((s) => s.name)).toEqual(['PING']);
  });

  it('record a Redis error reply as the status code and error.type', async () => {
    const reply = Object.assign(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), {
      name: 'ReplyError',
    });
    const failed = inSpan('request', () =>
      traced('ioredis:command', { ...command }, async () => {
        throw reply;
      }),
    );
    await expect(failed).rejects.toBe(reply);
    const get = telemetry.spans().find((s) => s.name === 'GET');
    expect(get?.status).toEqual({ code: SpanStatusCode.ERROR, message: reply.message });
    expect(get?.attributes).toMatchObject({ 'error.type': 'WRONGTYPE', 'db.response.status_code': 'WRONGTYPE' });
    expect(get?.events.map((e) => e.name)).toEqual(['exception']);
    const [point] = await telemetry.points('db.client.operation.duration');
    expect(point?.attributes['error.type']).toBe('WRONGTYPE');
  });

  it('take a wrapped reply (resp ReplyError as cause) by its prefix, other errors by their code', async () => {
    const wrapped = Object.assign(new Error('XADD failed'), {
      code: 'ERR_STREAMS_REDIS',
      cause: Object.assign(new Error('NOPERM no permission'), { prefix: 'NOPERM' }),
    });
    const timeout = Object.assign(new Error('no reply'), { code: 'ERR_RESP_TIMEOUT' });
    for (const error of [wrapped, timeout]) {
      await inSpan('request', () =>
        traced('redis-events:resp:command', { command: 'XADD', argsCount: 4 }, async () => {
          throw error;
        }),
      ).catch(() => {});
    }
    const types = telemetry
      .spans()
      .filter((s) => s.name === 'XADD')
      .map((s) => s.attributes['error.type']);
    expect(types).toEqual(['NOPERM', 'ERR_RESP_TIMEOUT']);
  });

  it('a MULTI batch is one span with its size', async () => {
    await inSpan('request', () =>
      traced(
        'ioredis:batch',
        { batchMode: 'MULTI', batchSize: 3, database: 0, serverAddress: 'h', serverPort: 1 },
        async () => [],
      ),
    );
    const multi = telemetry.spans().find((s) => s.name === 'MULTI');
    expect(multi?.attributes).toMatchObject({ 'db.operation.name': 'MULTI', 'db.operation.batch.size': 3 });
  });
});

describe('operations nest: a command inside a traced operation is its child', () => {
  it('an XADD issued inside a publish is parented to the publish span, without an active span', async () => {
    await traced(
      'redis-events:pubsub:publish',
      { command: 'PUBLISH', destination: 'orders', bodySize: 5 },
      async () => {
        await Promise.resolve();
        return traced('redis-events:resp:command', { command: 'PUBLISH', argsCount: 2 }, async () => 1);
      },
    );
    const [command, publish] = telemetry.spans();
    expect(publish?.name).toBe('publish orders');
    expect(command?.name).toBe('PUBLISH');
    expect(command?.parentSpanContext?.spanId).toBe(publish?.spanContext().spanId);
    expect(publish?.parentSpanContext).toBeUndefined();
  });
});

describe('@redis-events/pubsub', () => {
  it('a publish is a producer span with the messaging attributes, the receivers and a sent message', async () => {
    const context = { command: 'PUBLISH', destination: 'orders', bodySize: 12, serverAddress: 'h', serverPort: 7000 };
    await traced('redis-events:pubsub:publish', context, async () => {
      Object.assign(context, { result: 2 });
      return 2;
    });
    const [span] = telemetry.spans();
    expect(span?.name).toBe('publish orders');
    expect(span?.kind).toBe(SpanKind.PRODUCER);
    expect(span?.attributes).toEqual({
      'messaging.system': 'redis',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.destination.name': 'orders',
      'messaging.message.body.size': 12,
      'server.address': 'h',
      'server.port': 7000,
      'redis.pubsub.receivers': 2,
    });
    const [sent] = await telemetry.points('messaging.client.sent.messages');
    expect(sent?.value).toBe(1);
    expect(sent?.attributes).toMatchObject({
      'messaging.destination.name': 'orders',
      'messaging.operation.name': 'publish',
    });
  });

  it('a subscribe call under a span is a command span naming its channel or pattern', async () => {
    await inSpan('startup', () =>
      traced(
        'redis-events:pubsub:subscribe',
        { command: 'PSUBSCRIBE', kind: 'pattern', destinations: ['news.*'] },
        async () => {},
      ),
    );
    const span = telemetry.spans().find((s) => s.name === 'PSUBSCRIBE');
    expect(span?.attributes).toMatchObject({
      'db.operation.name': 'PSUBSCRIBE',
      'messaging.destination.template': 'news.*',
    });
  });

  it('received, dropped and missed messages are counted', async () => {
    channel('redis-events:pubsub:message').publish({
      kind: 'pmessage',
      destination: 'news.1',
      pattern: 'news.*',
      bodySize: 3,
    });
    channel('redis-events:pubsub:message').publish({ kind: 'message', destination: 'orders', bodySize: 3 });
    for (let i = 0; i < 3; i++) {
      channel('redis-events:pubsub:drop').publish({
        kind: 'message',
        destination: 'orders',
        policy: 'drop-oldest',
        count: 1,
        dropped: i + 1,
      });
    }
    channel('redis-events:pubsub:gap').publish({ reason: 'reconnect', since: 1000, until: 3500, channels: ['orders'] });
    const consumed = await telemetry.points('messaging.client.consumed.messages');
    expect(consumed.map((p) => [p.attributes['messaging.destination.template'] ?? null, p.value])).toEqual([
      ['news.*', 1],
      [null, 1],
    ]);
    const [dropped] = await telemetry.points(METRICS.pubsubDropped);
    expect(dropped?.value).toBe(3);
    expect(dropped?.attributes).toEqual({
      'messaging.system': 'redis',
      'messaging.destination.name': 'orders',
      'redis.pubsub.overflow_policy': 'drop-oldest',
    });
    const [gaps] = await telemetry.points(METRICS.pubsubGaps);
    expect(gaps?.value).toBe(1);
    const [gapDuration] = await telemetry.points(METRICS.pubsubGapDuration);
    expect(histogramOf(gapDuration).sum).toBe(2.5);
  });
});

describe('@redis-events/replication', () => {
  it('the handshake is a PSYNC span with its outcome; a full sync a FULLRESYNC span with its size', async () => {
    const handshake = { serverAddress: 'm', serverPort: 6379, attempt: 1, replId: '?', offset: -1 } as Record<
      string,
      unknown
    >;
    const channelOf = tracingChannel('redis-events:replication:handshake');
    channelOf.start.publish(handshake);
    channelOf.end.publish(handshake);
    handshake.result = 'full';
    channelOf.asyncStart.publish(handshake);
    channelOf.asyncEnd.publish(handshake);
    const sync = {
      serverAddress: 'm',
      serverPort: 6379,
      replId: 'abc',
      offset: 14,
      diskless: true,
      size: undefined,
      startedAt: Date.now(),
    } as Record<string, unknown>;
    const syncChannel = tracingChannel('redis-events:replication:sync');
    syncChannel.start.publish(sync);
    syncChannel.end.publish(sync);
    Object.assign(sync, { bytes: 4096, keys: 12 });
    syncChannel.asyncStart.publish(sync);
    syncChannel.asyncEnd.publish(sync);
    const [psync, full] = telemetry.spans();
    expect(psync?.name).toBe('PSYNC');
    expect(psync?.attributes).toMatchObject({ 'redis.replication.psync.result': 'full', 'server.address': 'm' });
    expect(full?.name).toBe('FULLRESYNC');
    expect(full?.attributes).toMatchObject({
      'redis.replication.diskless': true,
      'redis.replication.rdb.size': 4096,
      'redis.replication.rdb.keys': 12,
    });
  });

  it('lag is observed only once a meter read it, then follows the listener, and a silent listener is dropped', async () => {
    const lag = channel('redis-events:replication:lag');
    expect(lag.hasSubscribers).toBe(false);
    expect(await telemetry.points(METRICS.replicationLag)).toEqual([]);
    // The first collection subscribed: the listener now reads its master's offset.
    expect(lag.hasSubscribers).toBe(true);
    lag.publish({ serverAddress: 'm', serverPort: 6379, phase: 'stream', bytes: 2048, seconds: 1.5 });
    const [bytes] = await telemetry.points(METRICS.replicationLag);
    expect(bytes?.value).toBe(2048);
    expect(bytes?.attributes).toEqual({
      'db.system.name': 'redis',
      'server.address': 'm',
      'server.port': 6379,
      'redis.replication.phase': 'stream',
    });
    const [seconds] = await telemetry.points(METRICS.replicationLagTime);
    expect(seconds?.value).toBe(1.5);
    lag.publish({ serverAddress: 'm', serverPort: 6379, phase: 'stream', bytes: 0, seconds: 0 });
    expect((await telemetry.points(METRICS.replicationLag))[0]?.value).toBe(0);
    instrumentation.close();
    expect(lag.hasSubscribers).toBe(false);
  });

  it('counts delivered commands by name and database', async () => {
    const command = channel('redis-events:replication:command');
    command.publish({ command: 'SET', database: 0, argsCount: 2 });
    command.publish({ command: 'SET', database: 0, argsCount: 2 });
    command.publish({ command: 'XADD', database: 1, argsCount: 4 });
    const points = await telemetry.points(METRICS.replicationCommands);
    expect(points.map((p) => [p.attributes['db.operation.name'], p.attributes['db.namespace'], p.value])).toEqual([
      ['SET', '0', 2],
      ['XADD', '1', 1],
    ]);
  });
});

describe('@redis-events/databroker', () => {
  it('a put is a span with its versions; sync batches give the lag histogram and the change counter', async () => {
    const put = { backend: 'main', records: 2 } as Record<string, unknown>;
    await traced('redis-events:databroker:put', put, async () => {
      Object.assign(put, {
        serverAddress: 'h',
        serverPort: 1,
        database: 0,
        firstVersion: 7,
        lastVersion: 8,
        mode: 'script',
      });
    });
    const [span] = telemetry.spans();
    expect(span?.name).toBe('databroker put');
    expect(span?.attributes).toMatchObject({
      'redis.databroker.backend': 'main',
      'redis.databroker.records': 2,
      'redis.databroker.version.last': 8,
      'server.address': 'h',
    });
    const sync = channel('redis-events:databroker:sync');
    sync.publish({
      backend: 'main',
      type: 'user',
      source: 'push',
      count: 2,
      lastModifiedAt: 10_000,
      receivedAt: 10_250,
    });
    sync.publish({
      backend: 'main',
      type: 'user',
      source: 'push',
      count: 1,
      lastModifiedAt: 20_000,
      receivedAt: 19_990,
    });
    const [lag] = await telemetry.points(METRICS.databrokerSyncLag);
    expect(histogramOf(lag).count).toBe(2);
    expect(histogramOf(lag).sum).toBeCloseTo(0.25); // the skewed reading counts as 0
    const [changes] = await telemetry.points(METRICS.databrokerSyncChanges);
    expect(changes?.value).toBe(3);
  });
});

describe('the instrumentation', () => {
  it('refuses unknown and wrong options with ERR_OTEL_ARGUMENT, naming the field', () => {
    const attempt = (options: unknown) => {
      try {
        instrumentRedisEvents(options as never);
      } catch (err) {
        return err;
      }
      throw new Error('accepted');
    };
    const typo = attempt({ tracerprovider: telemetry.tracerProvider });
    expect(typo).toBeInstanceOf(OpenTelemetryError);
    expect(typo).toMatchObject({ code: 'ERR_OTEL_ARGUMENT', package: '@redis-events/opentelemetry' });
    expect((typo as Error).message).toContain('did you mean "tracerProvider"');
    expect(attempt({ messageContext: 'child' })).toMatchObject({ code: 'ERR_OTEL_ARGUMENT' });
    expect(attempt({ packages: { redis: false } })).toMatchObject({ code: 'ERR_OTEL_ARGUMENT' });
    expect(attempt({ tracerProvider: {} })).toMatchObject({ code: 'ERR_OTEL_ARGUMENT' });
    expect(attempt({ requireParentSpan: 'yes' })).toMatchObject({ code: 'ERR_OTEL_ARGUMENT' });
  });

  it('after close() nothing is traced or counted, and the channels have no subscriber left', async () => {
    instrumentation.close();
    expect(instrumentation.closed).toBe(true);
    instrumentation.close(); // idempotent
    await traced('redis-events:pubsub:publish', { command: 'PUBLISH', destination: 'x' }, async () => 1);
    expect(telemetry.spans()).toEqual([]);
    for (const name of ['redis-events:pubsub:publish', 'ioredis:command', 'redis-events:replication:sync']) {
      expect(tracingChannel(name).hasSubscribers).toBe(false);
    }
    expect(channel('redis-events:pubsub:drop').hasSubscribers).toBe(false);
  });

  it('a tracer that throws never breaks the operation; the logger hears it', async () => {
    instrumentation.close();
    const warnings: unknown[] = [];
    const broken = {
      getTracer: () => ({
        startSpan: () => {
          throw new Error('tracer broke');
        },
        startActiveSpan: () => {
          throw new Error('tracer broke');
        },
      }),
    };
    instrumentation = instrumentRedisEvents({
      tracerProvider: broken as never,
      metrics: false,
      logger: { debug() {}, warn: (context) => warnings.push(context), error() {} },
    });
    const result = await traced('redis-events:pubsub:publish', { command: 'PUBLISH', destination: 'x' }, async () => 1);
    expect(result).toBe(1);
    expect(warnings).toHaveLength(1);
  });

  it('traces: false and metrics: false turn either side off', async () => {
    instrumentation.close();
    instrumentation = instrumentRedisEvents({
      tracerProvider: telemetry.tracerProvider,
      meterProvider: telemetry.meterProvider,
      traces: false,
    });
    await traced('redis-events:pubsub:publish', { command: 'PUBLISH', destination: 'x' }, async () => 1);
    expect(telemetry.spans()).toEqual([]);
    expect((await telemetry.points('messaging.client.sent.messages'))[0]?.value).toBe(1);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});

describe('@redis-events/streams-driver and @redis-events/event-store messages', () => {
  const sendContext = () =>
    ({ destination: 'orders', bodySize: 12, serverAddress: 'r', serverPort: 6379, carrier: {} }) as {
      carrier: Record<string, string>;
      messageId?: string;
    } & Record<string, unknown>;

  it('a send is a PRODUCER span whose trace context goes into the message carrier', async () => {
    const context = sendContext();
    const id = await traced('redis-events:streams-driver:send', context, async () => '1700000000000-0');
    expect(id).toBe('1700000000000-0');
    const [send] = telemetry.spans();
    expect(send?.name).toBe('send orders');
    expect(send?.kind).toBe(SpanKind.PRODUCER);
    expect(send?.attributes).toEqual({
      'messaging.system': 'redis',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': 'orders',
      'messaging.message.body.size': 12,
      'messaging.message.id': '1700000000000-0',
      'server.address': 'r',
      'server.port': 6379,
    });
    expect(context.carrier.traceparent).toBe(`00-${send?.spanContext().traceId}-${send?.spanContext().spanId}-01`);
    const [sent] = await telemetry.points('messaging.client.sent.messages');
    expect(sent?.value).toBe(1);
  });

  it('a receive is linked to the span of the producer of each message (or its child with messageContext: parent)', async () => {
    const first = sendContext();
    const second = sendContext();
    await traced('redis-events:streams-driver:send', first, async () => '1-0');
    await traced('redis-events:streams-driver:send', second, async () => '2-0');
    const [send1, send2] = telemetry.spans();
    const batch = {
      destination: 'orders',
      group: 'billing',
      consumer: 'c1',
      messages: [
        { messageId: '1-0', carrier: { ...first.carrier } },
        { messageId: '2-0', carrier: { ...second.carrier } },
        { messageId: '3-0', carrier: { traceparent: 'not a trace context' } },
      ],
    };
    await traced('redis-events:streams-driver:receive', batch, async () => batch.messages);
    const receive = telemetry.spans().find((s) => s.name === 'receive orders');
    expect(receive?.kind).toBe(SpanKind.CLIENT);
    expect(receive?.attributes).toMatchObject({
      'messaging.operation.type': 'receive',
      'messaging.consumer.group.name': 'billing',
      'messaging.client.id': 'c1',
      'messaging.batch.message_count': 3,
    });
    expect(receive?.links.map((l) => l.context.spanId)).toEqual([
      send1?.spanContext().spanId,
      send2?.spanContext().spanId,
    ]);
    expect(receive?.parentSpanContext).toBeUndefined();
    const [consumed] = await telemetry.points('messaging.client.consumed.messages');
    expect(consumed?.value).toBe(3);

    instrumentation.close();
    instrumentation = instrumentRedisEvents({ tracerProvider: telemetry.tracerProvider, messageContext: 'parent' });
    const one = {
      destination: 'orders',
      group: 'billing',
      messageId: '1-0',
      deliveryAttempt: 2,
      carrier: { ...first.carrier },
    };
    await traced('redis-events:streams-driver:receive', one, async () => undefined);
    const child = telemetry.spans().at(-1);
    expect(child?.parentSpanContext?.spanId).toBe(send1?.spanContext().spanId);
    expect(child?.spanContext().traceId).toBe(send1?.spanContext().traceId);
    expect(child?.attributes).toMatchObject({ 'messaging.message.id': '1-0', 'redis.stream.delivery_attempt': 2 });
  });

  it('ack and nack are settle spans; redeliveries and dead letters are counted', async () => {
    await traced(
      'redis-events:streams-driver:ack',
      { destination: 'orders', group: 'g', messageId: '1-0' },
      async () => 1,
    );
    await traced(
      'redis-events:streams-driver:nack',
      { destination: 'orders', group: 'g', messageId: '2-0' },
      async () => 1,
    );
    expect(
      telemetry
        .spans()
        .map((s) => [s.name, s.attributes['messaging.operation.type'], s.attributes['messaging.message.id']]),
    ).toEqual([
      ['ack orders', 'settle', '1-0'],
      ['nack orders', 'settle', '2-0'],
    ]);
    channel('redis-events:streams-driver:redelivery').publish({ destination: 'orders', group: 'g', messageId: '2-0' });
    channel('redis-events:streams-driver:dead-letter').publish({ destination: 'orders', group: 'g', messageId: '2-0' });
    const attributes = {
      'messaging.system': 'redis',
      'messaging.destination.name': 'orders',
      'messaging.consumer.group.name': 'g',
    };
    expect(await telemetry.points(METRICS.streamRedeliveries)).toMatchObject([{ value: 1, attributes }]);
    expect(await telemetry.points(METRICS.streamDeadLetters)).toMatchObject([{ value: 1, attributes }]);
  });

  it('event-store appends carry the trace context; reads and tails link to it', async () => {
    const append = { destination: 'order-42', carrier: {} as Record<string, string> };
    await traced('redis-events:event-store:append', append, async () => '5-0');
    const tail = { destination: 'order-42', carriers: [{ ...append.carrier }] };
    await traced('redis-events:event-store:tail', tail, async () => undefined);
    const [appended, tailed] = telemetry.spans();
    expect(appended?.name).toBe('append order-42');
    expect(appended?.kind).toBe(SpanKind.PRODUCER);
    expect(tailed?.name).toBe('tail order-42');
    expect(tailed?.links.map((l) => l.context.spanId)).toEqual([appended?.spanContext().spanId]);
  });

  it('a failed send marks its span and carries no message ID; propagate: false leaves the carrier empty', async () => {
    const failure = Object.assign(new Error('too big'), { code: 'ERR_STREAMS_ARGUMENT' });
    await traced('redis-events:streams-driver:send', sendContext(), async () => {
      throw failure;
    }).catch(() => {});
    const [failed] = telemetry.spans();
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('ERR_STREAMS_ARGUMENT');
    expect(failed?.attributes['messaging.message.id']).toBeUndefined();

    instrumentation.close();
    instrumentation = instrumentRedisEvents({ tracerProvider: telemetry.tracerProvider, propagate: false });
    const context = sendContext();
    await traced('redis-events:streams-driver:send', context, async () => '1-0');
    expect(context.carrier).toEqual({});
  });

  it('packages: { "streams-driver": false } leaves those channels alone', async () => {
    instrumentation.close();
    instrumentation = instrumentRedisEvents({
      tracerProvider: telemetry.tracerProvider,
      packages: { 'streams-driver': false },
    });
    expect(tracingChannel('redis-events:streams-driver:send').hasSubscribers).toBe(false);
    expect(tracingChannel('redis-events:event-store:append').hasSubscribers).toBe(true);
  });
});

describe('contexts', () => {
  it('a frozen context is traced too, and the instrumentation leaves no enumerable field on any context', async () => {
    // Published by hand (tracePromise itself sets `result`, which a frozen context refuses).
    const frozen = Object.freeze({ destination: 'orders', group: 'g', consumer: 'c', messageId: '1-0' });
    const ack = tracingChannel('redis-events:streams-driver:ack');
    ack.start.publish(frozen);
    ack.end.publish(frozen);
    ack.asyncStart.publish(frozen);
    ack.asyncEnd.publish(frozen);
    const open = { destination: 'orders', bodySize: 1, carrier: {} };
    await traced('redis-events:streams-driver:send', open, async () => '2-0');
    expect(telemetry.spans().map((s) => s.name)).toEqual(['ack orders', 'send orders']);
    expect(Object.keys(open)).toEqual(['destination', 'bodySize', 'carrier', 'result']);
    expect(JSON.parse(JSON.stringify(open))).toEqual({
      destination: 'orders',
      bodySize: 1,
      carrier: { traceparent: expect.stringMatching(/^00-/) },
      result: '2-0',
    });
  });
});
