// The go-cloud pubsub driver conformance cases (pubsub/drivertest) and the Watermill universal
// pub/sub cases (pubsub/tests/test_pubsub.go) that apply to an at-least-once driver with
// consumer groups, run against a real Redis with the client in RESP2, RESP3 (ioredis' default,
// maps flattened) and RESP3 with maps as objects. Names say which case each test stands for.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis, RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createTopic,
  type Message,
  StreamsError,
  Subscription,
  type SubscriptionOptions,
  Topic,
  type TopicOptions,
} from '../src/index.ts';
import { bodies, consumeAll, receiveN, WEIRD_STRINGS } from './helpers.ts';

const PROTOCOLS: [string, RedisOptions][] = [
  ['RESP2', { protocol: 2 }],
  ['RESP3', { protocol: 3 }],
  ['RESP3 with map objects', { protocol: 3, replyMapping: 'resp3' } as RedisOptions],
];

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

/** Opens topics and subscriptions for one test and shuts down whatever is left after it. */
function harness(clientOptions: RedisOptions) {
  let client: Redis;
  let prefix = '';
  const opened: (Topic | Subscription)[] = [];
  beforeAll(() => {
    client = server.createClient(clientOptions);
  });
  afterEach(async () => {
    // Tests leave messages unsettled on purpose: no grace period for them.
    for (const thing of opened.splice(0)) {
      if (thing instanceof Subscription) await thing.shutdown({ timeoutMs: 0 }).catch(() => {});
      else await thing[Symbol.asyncDispose]().catch(() => {});
    }
  });
  return {
    get client() {
      return client;
    },
    name(label: string) {
      prefix = server.keyPrefix('c');
      return `${prefix}${label}`;
    },
    topic(key: string, options: TopicOptions = {}) {
      const t = new Topic(client, key, { create: true, ...options });
      opened.push(t);
      return t;
    },
    async subscribe(options: SubscriptionOptions) {
      const s = new Subscription(client, options);
      opened.push(s);
      await s.ready().catch(() => {});
      return s;
    },
  };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<StreamsError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(StreamsError);
    expect((err as StreamsError).code).toBe(code);
    return err as StreamsError;
  }
  throw new Error(`expected a rejection with ${code}`);
}

const received = (messages: Message[]) => messages.map((m) => m.body.toString()).sort();

for (const [protocolName, clientOptions] of PROTOCOLS) {
  describe(`go-cloud driver conformance, ${protocolName}`, () => {
    const h = harness(clientOptions);

    it('TestSendReceive: three messages with metadata arrive, with IDs', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const topic = h.topic(key);
      await Promise.all(['0', '1', '2'].map((i) => topic.send({ body: i, metadata: { a: i } })));
      const got = await receiveN(sub, 3);
      for (const m of got) {
        expect(m.id).toMatch(/^\d+-\d+$/);
        expect(m.metadata).toEqual({ a: m.body.toString() });
        expect(m.deliveryAttempt).toBe(1);
        await m.ack();
      }
      expect(received(got)).toEqual(['0', '1', '2']);
    });

    it('TestSendReceiveTwo: two subscriptions (groups) each get every message', async () => {
      const key = h.name('t');
      const a = await h.subscribe({ topic: key, group: 'a' });
      const b = await h.subscribe({ topic: key, group: 'b' });
      const topic = h.topic(key);
      await Promise.all(['0', '1', '2'].map((i) => topic.send({ body: i })));
      expect(received(await receiveN(a, 3))).toEqual(['0', '1', '2']);
      expect(received(await receiveN(b, 3))).toEqual(['0', '1', '2']);
    });

    it('TestSendReceiveJSON: a JSON body round-trips unchanged', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      await h.topic(key).send({ body: '{"Foo": "Bar"}' });
      const [m] = await receiveN(sub, 1);
      expect(m?.body.toString()).toBe('{"Foo": "Bar"}');
    });

    it('TestNack: nacked messages come back soon, counted as a second attempt', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const topic = h.topic(key);
      await Promise.all(['0', '1'].map((i) => topic.send({ body: i })));
      const first = await receiveN(sub, 2);
      await Promise.all(first.map((m) => m.nack()));
      const again = await receiveN(sub, 2);
      expect(received(again)).toEqual(['0', '1']);
      expect(again.map((m) => m.deliveryAttempt)).toEqual([2, 2]);
      await Promise.all(again.map((m) => m.ack()));
      expect(sub.stats).toMatchObject({ nacked: 2, acked: 2, inFlight: 0 });
    });

    it('TestBatching: twelve concurrent sends share pipelines; acks share an XACK', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const topic = h.topic(key);
      const ids = await Promise.all(Array.from({ length: 12 }, () => topic.send({ body: 'same' })));
      expect(new Set(ids).size).toBe(12);
      expect(topic.stats.batches).toBeLessThan(12);
      const got = await receiveN(sub, 12);
      await Promise.all(got.map((m) => m.ack()));
      expect(sub.stats.acked).toBe(12);
    });

    it('TestDoubleAck: a message is settled once; a nack of an unacked one redelivers it', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const topic = h.topic(key);
      await Promise.all(['0', '1', '2'].map((i) => topic.send({ body: i })));
      const [m0, m1, m2] = await receiveN(sub, 3);
      await m0?.ack();
      await m1?.ack();
      expect(() => m0?.ack()).toThrow(expect.objectContaining({ code: 'ERR_STREAMS_SETTLED' }));
      expect(() => m1?.nack()).toThrow(expect.objectContaining({ code: 'ERR_STREAMS_SETTLED' }));
      await m2?.nack();
      const [again] = await receiveN(sub, 1);
      expect(again?.id).toBe(m2?.id);
      await again?.ack();
    });

    it('TestErrorOnSendToClosedTopic: send and a second shutdown fail after shutdown', async () => {
      const topic = new Topic(h.client, h.name('t'), { create: true });
      await topic.shutdown();
      await expectCode(topic.send({ body: 'late' }), 'ERR_STREAMS_CLOSED');
      await expectCode(topic.shutdown(), 'ERR_STREAMS_CLOSED');
    });

    it('TestErrorOnReceiveFromClosedSubscription: receive and a second shutdown fail after shutdown', async () => {
      const sub = new Subscription(h.client, { topic: h.name('t'), group: 'g' });
      await sub.ready();
      await sub.shutdown();
      await expectCode(sub.receive(), 'ERR_STREAMS_CLOSED');
      await expectCode(sub.shutdown(), 'ERR_STREAMS_CLOSED');
    });

    it('TestCancelSendReceive: an aborted signal cancels send and receive', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const signal = AbortSignal.abort();
      await expectCode(h.topic(key).send({ body: 'x' }, { signal }), 'ERR_STREAMS_ABORTED');
      await expectCode(sub.receive({ signal }), 'ERR_STREAMS_ABORTED');
      const later = new AbortController();
      const waiting = sub.receive({ signal: later.signal });
      later.abort();
      await expectCode(waiting, 'ERR_STREAMS_ABORTED');
    });

    it('TestNonExistentTopicSucceedsOnOpenButFailsOnSend: NOT_FOUND on send', async () => {
      const topic = h.topic(h.name('missing'), { create: false });
      const err = await expectCode(topic.send({ body: 'x' }), 'ERR_STREAMS_NOT_FOUND');
      expect(err.message).toMatch(/createTopic/);
      expect(await h.client.exists(topic.key)).toBe(0);
    });

    it('TestNonExistentSubscriptionSucceedsOnOpenButFailsOnReceive: NOT_FOUND on receive', async () => {
      const key = h.name('t');
      await createTopic(h.client, key);
      const sub = await h.subscribe({ topic: key, group: 'nobody-created-it', create: false });
      await expectCode(sub.receive({ signal: AbortSignal.timeout(10_000) }), 'ERR_STREAMS_NOT_FOUND');
      await expectCode(sub.receive(), 'ERR_STREAMS_NOT_FOUND'); // permanent: every later receive too
    });

    it('TestMetadata: the weird strings survive as keys and values; non-UTF-8 metadata is refused', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const topic = h.topic(key);
      const weird = WEIRD_STRINGS;
      const metadata = Object.fromEntries(weird.slice(0, 10).map((s) => [s, s]));
      const rest = Object.fromEntries(weird.slice(10).map((s) => [s, s]));
      await topic.send({ body: '1', metadata });
      await topic.send({ body: '2', metadata: rest });
      const got = await receiveN(sub, 2);
      expect(got.find((m) => m.body.toString() === '1')?.metadata).toEqual(metadata);
      expect(got.find((m) => m.body.toString() === '2')?.metadata).toEqual(rest);
      await expectCode(topic.send({ body: 'x', metadata: { k: '\ud800' } }), 'ERR_STREAMS_ARGUMENT');
    });

    it('TestNonUTF8MessageBody: a body that is not UTF-8 arrives byte for byte', async () => {
      const key = h.name('t');
      const sub = await h.subscribe({ topic: key, group: 'g' });
      const body = Buffer.concat([Buffer.from('weird ☺ \\ " / ..'), Buffer.from([0xbd, 0xb2, 0x00, 0xff])]);
      await h.topic(key).send({ body });
      const [m] = await receiveN(sub, 1);
      expect(m?.body.equals(body)).toBe(true);
    });
  });
}

describe('Watermill universal pub/sub cases', () => {
  const h = harness({});

  it('TestPublishSubscribe: 100 messages published before subscribing arrive with payload and metadata; the loop ends at shutdown', async () => {
    const key = h.name('t');
    const topic = h.topic(key);
    await Promise.all(bodies(100).map((b) => topic.send({ body: b, metadata: { test: `meta-${b}` } })));
    const sub = new Subscription(h.client, { topic: key, group: 'g', from: '0' });
    const got: Message[] = [];
    const loop = (async () => {
      for await (const m of sub) {
        got.push(m);
        await m.ack();
        if (got.length === 100) void sub.shutdown();
      }
    })();
    await loop; // ends because the subscription shut down
    expect(received(got)).toEqual(bodies(100).sort());
    for (const m of got) expect(m.metadata.test).toBe(`meta-${m.body.toString()}`);
  });

  it('TestConcurrentSubscribe: 2000 messages from 20 publishers; 10 consumers of one group get them all, disjoint', async () => {
    const key = h.name('t');
    const subs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => h.subscribe({ topic: key, group: 'g', consumer: `c${i}`, prefetch: 20 })),
    );
    const all = bodies(2000);
    await Promise.all(
      Array.from({ length: 20 }, async (_, p) => {
        const topic = h.topic(key);
        for (let i = p; i < all.length; i += 20) await topic.send({ body: all[i] as string });
      }),
    );
    const seen = await consumeAll(subs, new Set(all));
    expect(seen.size).toBe(2000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true); // no reclaim happened: disjoint sets
    expect(subs.filter((s) => s.stats.delivered > 0).length).toBeGreaterThan(1);
  });

  it('TestConcurrentSubscribeMultipleTopics: 10 topics published and consumed at once each get their own set', async () => {
    await Promise.all(
      Array.from({ length: 10 }, async (_, t) => {
        const key = `${h.name('t')}-${t}`;
        const sub = await h.subscribe({ topic: key, group: 'g' });
        const topic = h.topic(key);
        const mine = bodies(50, `t${t}-`);
        await Promise.all(mine.map((b) => topic.send({ body: b })));
        const seen = await consumeAll([sub], new Set(mine));
        expect([...seen.keys()].sort()).toEqual([...mine].sort());
      }),
    );
  });

  it('TestResendOnError: the first deliveries are nacked; all 100 still arrive', async () => {
    const key = h.name('t');
    const sub = await h.subscribe({ topic: key, group: 'g' });
    const topic = h.topic(key);
    const all = bodies(100);
    await Promise.all(all.map((b) => topic.send({ body: b })));
    const first = await receiveN(sub, 2);
    await Promise.all(first.map((m) => m.nack()));
    const seen = await consumeAll([sub], new Set(all));
    expect(seen.size).toBe(100);
  });

  it('TestNoAck (with maxInFlight 1): no second message while the first is unacked; the next after ack', async () => {
    const key = h.name('t');
    const sub = await h.subscribe({ topic: key, group: 'g', maxInFlight: 1 });
    const topic = h.topic(key);
    await topic.send({ body: 'first' });
    await topic.send({ body: 'second' });
    const [first] = await receiveN(sub, 1);
    await expectCode(sub.receive({ signal: AbortSignal.timeout(300) }), 'ERR_STREAMS_ABORTED');
    await first?.ack();
    const [second] = await receiveN(sub, 1);
    expect(second?.body.toString()).toBe('second');
  });

  it('TestContinueAfterSubscribeClose: subscribers that come and go lose nothing', async () => {
    const key = h.name('t');
    const topic = h.topic(key);
    await createTopic(h.client, key);
    const first = await h.subscribe({ topic: key, group: 'g', from: '0' });
    const all = bodies(500);
    await Promise.all(all.map((b) => topic.send({ body: b })));
    const seen = new Set<string>();
    let sub = first;
    for (let round = 0; seen.size < all.length && round < 100; round++) {
      const batch = await receiveN(sub, Math.min(37, all.length - seen.size));
      for (const m of batch) {
        seen.add(m.body.toString());
        void m.ack();
      }
      await sub.shutdown({ timeoutMs: 2000 });
      sub = await h.subscribe({ topic: key, group: 'g', consumer: `c${round}` });
    }
    expect(seen.size).toBe(all.length);
  });

  it('TestConcurrentClose: ten subscribers opened and closed together; a fresh one then gets all 50', async () => {
    const key = h.name('t');
    const subs = Array.from(
      { length: 10 },
      (_, i) => new Subscription(h.client, { topic: key, group: 'g', consumer: `c${i}` }),
    );
    await Promise.all(subs.map((s) => s.shutdown()));
    const fresh = await h.subscribe({ topic: key, group: 'g' });
    const topic = h.topic(key);
    const all = bodies(50);
    await Promise.all(all.map((b) => topic.send({ body: b })));
    expect((await consumeAll([fresh], new Set(all))).size).toBe(50);
  });

  it('TestContinueAfterErrors: short-lived subscribers nack and close; a final one gets all 50', async () => {
    const key = h.name('t');
    const options = { topic: key, group: 'g', maxDeliveries: Number.POSITIVE_INFINITY } as const;
    await (await h.subscribe(options)).shutdown(); // creates the group, then leaves
    const topic = h.topic(key);
    const all = bodies(50);
    await Promise.all(all.map((b) => topic.send({ body: b })));
    for (let i = 0; i < 3; i++) {
      const sub = await h.subscribe({ ...options, consumer: `bad${i}` });
      for (const m of await receiveN(sub, 5)) await m.nack();
      await sub.shutdown();
    }
    const last = await h.subscribe({ ...options, consumer: 'good' });
    expect((await consumeAll([last], new Set(all))).size).toBe(50);
  });

  it('TestPublishSubscribeInOrder (order per producer): one topic object, one consumer, stream order', async () => {
    const key = h.name('t');
    const sub = await h.subscribe({ topic: key, group: 'g' });
    const topic = h.topic(key);
    const all = Array.from({ length: 1000 }, (_, i) => `type${i % 16}:${i}`);
    await Promise.all(all.map((b) => topic.send({ body: b })));
    const got = await receiveN(sub, 1000);
    expect(got.map((m) => m.body.toString())).toEqual(all);
    await Promise.all(got.map((m) => m.ack()));
  });

  it('TestPublisherClose: messages sent right before each publisher shuts down are all stored', async () => {
    const key = h.name('t');
    const sub = await h.subscribe({ topic: key, group: 'g' });
    const all = bodies(2000);
    await Promise.all(
      Array.from({ length: 20 }, async (_, p) => {
        const topic = new Topic(h.client, key, { create: true });
        const sends = all.filter((_, i) => i % 20 === p).map((b) => topic.send({ body: b }));
        await topic.shutdown(); // flushes what is pending
        await Promise.all(sends);
      }),
    );
    expect((await consumeAll([sub], new Set(all))).size).toBe(2000);
  });

  it('TestTopic: a message reaches only the subscription of its topic', async () => {
    const k1 = h.name('one');
    const k2 = h.name('two');
    const s1 = await h.subscribe({ topic: k1, group: 'g' });
    const s2 = await h.subscribe({ topic: k2, group: 'g' });
    await h.topic(k1).send({ body: 'for-1' });
    await h.topic(k2).send({ body: 'for-2' });
    expect(received(await receiveN(s1, 1))).toEqual(['for-1']);
    expect(received(await receiveN(s2, 1))).toEqual(['for-2']);
    await expectCode(s1.receive({ signal: AbortSignal.timeout(200) }), 'ERR_STREAMS_ABORTED');
  });

  it('TestSubscribeCtx: a subscription shut down with messages read ahead hands them back; a new one gets all 20', async () => {
    const key = h.name('t');
    const sub = await h.subscribe({ topic: key, group: 'g', ackDeadlineMs: 60_000 });
    const topic = h.topic(key);
    const all = bodies(20);
    await Promise.all(all.map((b) => topic.send({ body: b })));
    await receiveN(sub, 1); // the rest is read ahead into the buffer; this one is held, never settled
    await expect(sub.shutdown({ timeoutMs: 0 })).rejects.toMatchObject({
      code: 'ERR_STREAMS_ABANDONED',
      abandoned: { held: 1 }, // the read-ahead ones were handed back, not abandoned
    });
    // Long ack deadline: only released messages can arrive quickly; the held one waits for its deadline.
    const next = await h.subscribe({ topic: key, group: 'g', ackDeadlineMs: 60_000 });
    const got = await receiveN(next, 19);
    expect(new Set(got.map((m) => m.body.toString())).size).toBe(19);
    // Handed back unseen: the read ahead does not count as a delivery attempt.
    expect(got.every((m) => m.deliveryAttempt === 1)).toBe(true);
  });

  it('TestNewSubscriberReceivesOldMessages: groups created later from 0 get everything so far', async () => {
    const key = h.name('t');
    const topic = h.topic(key);
    const all: string[] = [];
    for (let i = 0; i < 3; i++) {
      const more = bodies(10, `r${i}-`);
      all.push(...more);
      await Promise.all(more.map((b) => topic.send({ body: b })));
      const sub = await h.subscribe({ topic: key, group: `late${i}`, from: '0' });
      expect(received(await receiveN(sub, all.length))).toEqual([...all].sort());
    }
  });

  it('TestConsumerGroups: two groups made before publishing each receive all 50', async () => {
    const key = h.name('t');
    const a = await h.subscribe({ topic: key, group: 'a' });
    const b = await h.subscribe({ topic: key, group: 'b' });
    const topic = h.topic(key);
    const all = bodies(50);
    await Promise.all(all.map((x) => topic.send({ body: x })));
    expect((await consumeAll([a], new Set(all))).size).toBe(50);
    expect((await consumeAll([b], new Set(all))).size).toBe(50);
  });
});
