// The diagnostics channels (CONTRIBUTING "Diagnostics channels"): what each publishes, the trace
// context carried in the message, and nothing added while nobody listens.
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type DeadLetterNotice,
  type ReceiveTrace,
  type RedeliveryEvent,
  type SendTrace,
  type SettleTrace,
  Subscription,
  Topic,
} from '../src/index.ts';
import { useServer } from './helpers.ts';

const ctx = useServer();
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

type Recorded = { event: string; context: Record<string, unknown> };
const undo: (() => void)[] = [];
afterEach(() => {
  for (const u of undo.splice(0)) u();
});

/** Records every event of a tracing channel, with a copy of its context at that moment. */
function trace(name: string, onStart?: (context: Record<string, unknown>) => void): Recorded[] {
  const out: Recorded[] = [];
  const record = (event: string) => (context: object) => {
    if (event === 'start') onStart?.(context as Record<string, unknown>);
    out.push({ event, context: { ...(context as Record<string, unknown>) } });
  };
  const handlers = {
    start: record('start'),
    end: record('end'),
    asyncStart: record('asyncStart'),
    asyncEnd: record('asyncEnd'),
    error: record('error'),
  };
  tracingChannel(name).subscribe(handlers);
  undo.push(() => tracingChannel(name).unsubscribe(handlers));
  return out;
}

function listen(name: string): unknown[] {
  const out: unknown[] = [];
  const onMessage = (message: unknown) => out.push(message);
  subscribe(name, onMessage);
  undo.push(() => unsubscribe(name, onMessage));
  return out;
}

describe('diagnostics channels', () => {
  it('send: the context names the stream, the body size and the entry ID; the carrier is stored with the message', async () => {
    const key = ctx.server.keyPrefix();
    const sends = trace(CHANNELS.send, (context) => {
      (context.carrier as Record<string, string>).traceparent = TRACEPARENT;
      (context.carrier as Record<string, string>).other = 'not stored';
    });
    const topic = new Topic(ctx.redis, key, { create: true });
    const id = await topic.send({ body: 'héllo', metadata: { kind: 'greeting' } });
    expect(sends.map((s) => s.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const end = sends.at(-1)?.context as unknown as SendTrace;
    expect(end).toMatchObject({
      destination: key,
      bodySize: Buffer.byteLength('héllo'),
      messageId: id,
      result: id,
      serverAddress: ctx.server.host,
      serverPort: ctx.server.port,
    });
    const [, fields] = (await ctx.redis.xrange(key, '-', '+'))[0] as [string, string[]];
    const headers = JSON.parse(fields[fields.indexOf('headers') + 1] as string) as Record<string, string>;
    expect(headers).toEqual({ kind: 'greeting', traceparent: TRACEPARENT });
    await topic.shutdown();
  });

  it("send: the application's own traceparent wins; a refused message fails the same way, on the error event", async () => {
    const key = ctx.server.keyPrefix();
    const sends = trace(CHANNELS.send, (context) => {
      (context.carrier as Record<string, string>).traceparent = TRACEPARENT;
    });
    const topic = new Topic(ctx.redis, key, { create: true });
    await topic.send({ body: 'x', metadata: { traceparent: 'mine' } });
    const [, fields] = (await ctx.redis.xrange(key, '-', '+'))[0] as [string, string[]];
    expect(JSON.parse(fields[fields.indexOf('headers') + 1] as string)).toEqual({ traceparent: 'mine' });
    sends.length = 0;
    await expect(topic.send({ body: 'x', metdata: {} } as never)).rejects.toMatchObject({
      code: 'ERR_STREAMS_ARGUMENT',
      message: expect.stringContaining('unknown field "metdata"'),
    });
    expect(sends.find((s) => s.event === 'error')?.context.error).toMatchObject({ code: 'ERR_STREAMS_ARGUMENT' });
    await topic.shutdown();
  });

  it('receive, ack, nack and redelivery: the message, its carrier and its attempts', async () => {
    const key = ctx.server.keyPrefix();
    trace(CHANNELS.send, (context) => {
      (context.carrier as Record<string, string>).traceparent = TRACEPARENT;
    });
    const receives = trace(CHANNELS.receive);
    const acks = trace(CHANNELS.ack);
    const nacks = trace(CHANNELS.nack);
    const redeliveries = listen(CHANNELS.redelivery);
    const topic = new Topic(ctx.redis, key, { create: true });
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g', from: '0' });
    const id = await topic.send({ body: 'abc' });
    const first = await sub.receive();
    await first.nack();
    const again = await sub.receive();
    expect(again.id).toBe(id);
    await again.ack();
    const ends = receives.filter((r) => r.event === 'asyncEnd').map((r) => r.context as unknown as ReceiveTrace);
    expect(ends).toMatchObject([
      { destination: key, group: 'g', consumer: sub.consumer, messageId: id, bodySize: 3, deliveryAttempt: 1 },
      { messageId: id, deliveryAttempt: 2 },
    ]);
    expect(ends[0]?.carrier).toEqual({ traceparent: TRACEPARENT });
    const settled = (r: Recorded[]) =>
      r.filter((e) => e.event === 'asyncEnd').map((e) => e.context as unknown as SettleTrace);
    expect(settled(nacks)).toMatchObject([{ destination: key, group: 'g', messageId: id, deliveryAttempt: 1 }]);
    expect(settled(acks)).toMatchObject([{ destination: key, group: 'g', messageId: id, deliveryAttempt: 2 }]);
    expect(redeliveries as RedeliveryEvent[]).toEqual([
      { destination: key, group: 'g', consumer: sub.consumer, messageId: id, deliveryAttempt: 2, count: 1 },
    ]);
    await sub.shutdown();
    await topic.shutdown();
  });

  it('dead-letter: one notice per message moved, once Redis confirmed the move', async () => {
    const key = ctx.server.keyPrefix();
    const notices = listen(CHANNELS.deadLetter);
    const topic = new Topic(ctx.redis, key, { create: true });
    const sub = new Subscription(ctx.redis, { topic: key, group: 'g', from: '0' });
    const id = await topic.send({ body: 'poison' });
    const message = await sub.receive();
    await message.deadLetter('cannot parse');
    expect(notices as DeadLetterNotice[]).toEqual([
      {
        destination: key,
        group: 'g',
        consumer: sub.consumer,
        messageId: id,
        reason: 'cannot parse',
        deliveryAttempt: 1,
        deadLetterKey: sub.deadLetterKey,
        count: 1,
      },
    ]);
    expect(await ctx.redis.xlen(sub.deadLetterKey)).toBe(1);
    await sub.shutdown();
    await topic.shutdown();
  });

  it('adds nothing to a message while nobody listens', async () => {
    expect(tracingChannel(CHANNELS.send).hasSubscribers).toBe(false);
    const key = ctx.server.keyPrefix();
    const topic = new Topic(ctx.redis, key, { create: true });
    await topic.send({ body: 'x' });
    const [, fields] = (await ctx.redis.xrange(key, '-', '+'))[0] as [string, string[]];
    const at = fields.indexOf('headers');
    const headers = at === -1 ? {} : (JSON.parse(fields[at + 1] as string) as Record<string, string>);
    expect(headers).toEqual({});
    await topic.shutdown();
  });
});
