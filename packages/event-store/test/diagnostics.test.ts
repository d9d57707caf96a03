// The diagnostics channels (CONTRIBUTING "Diagnostics channels"): append, read and a tail's
// batches, in both layouts, and nothing published while nobody listens.
import { tracingChannel } from 'node:diagnostics_channel';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AppendTrace, CHANNELS, type ReadTrace } from '../src/index.ts';
import { RedisEventStore } from '../src/redis-event-store.ts';
import { freshPrefix } from './helpers.ts';

let server: SpawnedRedis;
let client: Redis;
beforeAll(async () => {
  server = await spawnRedis();
  client = server.createClient();
});
afterAll(() => server?.stop());

type Recorded = { event: string; context: Record<string, unknown> };
const undo: (() => void)[] = [];
afterEach(() => {
  for (const u of undo.splice(0)) u();
});

function trace(name: string): Recorded[] {
  const out: Recorded[] = [];
  const record = (event: string) => (context: object) =>
    out.push({ event, context: { ...(context as Record<string, unknown>) } });
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

const ends = <T>(recorded: Recorded[]): T[] =>
  recorded.filter((r) => r.event === 'asyncEnd').map((r) => r.context as unknown as T);

describe.each(['stream', 'timeline'] as const)('diagnostics channels, %s layout', (layout) => {
  it('append: the name, the payload size and the stored id; a refusal on the error event', async () => {
    const appends = trace(CHANNELS.append);
    const store = new RedisEventStore(client, { prefix: freshPrefix(), layout });
    const stored = await store.storeEvent({ name: 'order.paid', payload: { amount: 'é' } });
    expect(appends.map((a) => a.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(ends<AppendTrace>(appends)).toEqual([
      {
        destination: 'order.paid',
        layout,
        bodySize: Buffer.byteLength(JSON.stringify({ amount: 'é' })),
        serverAddress: server.host,
        serverPort: server.port,
        messageId: stored.id,
        result: stored,
      },
    ]);
    const aborted = store.storeEvent({ name: 'order.paid', payload: 1 }, { signal: AbortSignal.abort() });
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_ABORTED' });
    expect(appends.find((a) => a.event === 'error')?.context.error).toMatchObject({ code: 'ERR_EVENT_STORE_ABORTED' });
    await store.close();
  });

  it("read and a tail's batches: the name and the ids that came back", async () => {
    const reads = trace(CHANNELS.read);
    const batches = trace(CHANNELS.tail);
    const store = new RedisEventStore(client, { prefix: freshPrefix(), layout });
    const tail = store.tail('order.paid', { pollIntervalMs: 10 });
    const first = tail.next(); // the tail starts now: later events are its
    const a = await store.storeEvent({ name: 'order.paid', payload: 1 });
    expect((await first).value?.id).toBe(a.id);
    const b = await store.storeEvent({ name: 'order.paid', payload: 2 });
    expect((await tail.next()).value?.id).toBe(b.id);
    await tail.close();
    const got = await store.read('order.paid', { order: 'oldest' });
    expect(ends<ReadTrace>(reads)).toMatchObject([
      {
        destination: 'order.paid',
        layout,
        batchSize: 2,
        messages: [{ messageId: a.id }, { messageId: b.id }],
        result: got,
      },
    ]);
    const tailed = ends<ReadTrace>(batches).flatMap((batch) => batch.messages?.map((m) => m.messageId) ?? []);
    expect(tailed).toEqual([a.id, b.id]);
    expect(ends<ReadTrace>(batches)[0]).toMatchObject({ destination: 'order.paid', layout });
    await store.close();
  });
});

it('publishes nothing while nobody listens', () => {
  expect(tracingChannel(CHANNELS.append).hasSubscribers).toBe(false);
  expect(tracingChannel(CHANNELS.read).hasSubscribers).toBe(false);
  expect(tracingChannel(CHANNELS.tail).hasSubscribers).toBe(false);
});
