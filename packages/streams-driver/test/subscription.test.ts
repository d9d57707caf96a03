// Subscription behaviour on a real Redis: the bound on unsettled messages, draining this
// consumer's own pending entries once, reclaiming from dead consumers across the whole pending
// list, dead letters, malformed and deleted entries, leases, deleting acknowledged entries,
// NOACK, and a group that disappears.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createGroup,
  type DeadLetterEvent,
  deleteGroup,
  type MalformedEvent,
  readDeadLetters,
  StreamsError,
  Subscription,
  type SubscriptionOptions,
  Topic,
} from '../src/index.ts';
import { eventually, receiveN, sleep } from './helpers.ts';

let server: SpawnedRedis;
let redis: Redis;
const opened: Subscription[] = [];

beforeAll(async () => {
  server = await spawnRedis();
  redis = server.createClient();
});
afterAll(() => server.stop());
afterEach(async () => {
  for (const s of opened.splice(0)) await s.shutdown({ timeoutMs: 0 }).catch(() => {});
});

async function subscribe(options: SubscriptionOptions): Promise<Subscription> {
  const s = new Subscription(redis, options);
  opened.push(s);
  await s.ready();
  return s;
}

async function send(key: string, n: number, prefix = 'm'): Promise<string[]> {
  const topic = new Topic(redis, key, { create: true });
  const ids = await Promise.all(
    Array.from({ length: n }, (_, i) => topic.send({ body: `${prefix}${i}`, metadata: { i: String(i) } })),
  );
  await topic.shutdown();
  return ids;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toSatisfy((err) => err instanceof StreamsError && err.code === code);
}

async function pendingOf(key: string, group: string, consumer?: string): Promise<unknown[][]> {
  const args = consumer ? [key, group, '-', '+', 1000, consumer] : [key, group, '-', '+', 1000];
  return (await redis.call('xpending', ...args)) as unknown[][];
}

describe('Subscription', () => {
  it('bounds unsettled messages: reading pauses at maxInFlight, in Redis too, and resumes after acks', async () => {
    const key = server.keyPrefix();
    const sub = await subscribe({ topic: key, group: 'g', consumer: 'c', maxInFlight: 5, prefetch: 5 });
    await send(key, 50);
    const first = await receiveN(sub, 5);
    await rejectsWith(sub.receive({ signal: AbortSignal.timeout(300) }), 'ERR_STREAMS_ABORTED');
    expect(sub.stats.inFlight).toBe(5);
    expect(await pendingOf(key, 'g', 'c')).toHaveLength(5); // nothing more was read from Redis
    await Promise.all(first.map((m) => m.ack()));
    const next = await receiveN(sub, 5);
    expect(next.map((m) => m.body.toString())).toEqual(['m5', 'm6', 'm7', 'm8', 'm9']);
  });

  it('drains its own pending entries once after a restart, then reads new ones, never its own in-flight ones again', async () => {
    const key = server.keyPrefix();
    await createGroup(redis, key, 'g', { from: '$' });
    await send(key, 3, 'old');
    // A previous run of consumer "c1" read three entries and died before acking.
    await redis.call('xreadgroup', 'GROUP', 'g', 'c1', 'COUNT', 3, 'STREAMS', key, '>');
    await send(key, 2, 'new');
    const sub = await subscribe({ topic: key, group: 'g', consumer: 'c1' });
    const got = await receiveN(sub, 5);
    expect(got.map((m) => m.body.toString())).toEqual(['old0', 'old1', 'old2', 'new0', 'new1']);
    expect(got.map((m) => m.deliveryAttempt)).toEqual([2, 2, 2, 1, 1]);
    await rejectsWith(sub.receive({ signal: AbortSignal.timeout(300) }), 'ERR_STREAMS_ABORTED');
  });

  it('keeps one copy of a message whose deadline passed while this subscription still holds it', async () => {
    const key = server.keyPrefix();
    const sub = await subscribe({
      topic: key,
      group: 'g',
      ackDeadlineMs: 150,
      claimIntervalMs: 30,
      maxLeaseMs: 0, // no renewal: its own claim pass takes the message again
      features: { readClaim: false },
    });
    await send(key, 1);
    const [m] = await receiveN(sub, 1);
    await eventually('a reclaim of the held message', () => sub.stats.duplicatesSuppressed > 0);
    await rejectsWith(sub.receive({ signal: AbortSignal.timeout(200) }), 'ERR_STREAMS_ABORTED');
    await m?.ack();
    expect(await pendingOf(key, 'g')).toHaveLength(0);
  });

  it("reclaims a dead consumer's entries even when they sit behind many live ones in the pending list", async () => {
    const key = server.keyPrefix();
    await createGroup(redis, key, 'g', { from: '$' });
    await send(key, 50, 'live');
    await send(key, 5, 'dead');
    await redis.call('xreadgroup', 'GROUP', 'g', 'busy', 'COUNT', 50, 'STREAMS', key, '>');
    await redis.call('xreadgroup', 'GROUP', 'g', 'dead', 'COUNT', 5, 'STREAMS', key, '>');
    const live = (await pendingOf(key, 'g', 'busy')).map((row) => row[0] as string);
    const dead = (await pendingOf(key, 'g', 'dead')).map((row) => row[0] as string);
    await redis.call('xclaim', key, 'g', 'dead', 0, ...dead, 'IDLE', 100_000, 'JUSTID');
    // COUNT 1 per XAUTOCLAIM scans at most 10 entries: the cursor must walk past the 50 live ones.
    const sub = await subscribe({
      topic: key,
      group: 'g',
      ackDeadlineMs: 50_000,
      prefetch: 1,
      maxInFlight: 1,
      features: { readClaim: false },
    });
    const got: string[] = [];
    for (let i = 0; i < 5; i++) {
      await redis.call('xclaim', key, 'g', 'busy', 0, ...live, 'JUSTID'); // the live consumer keeps working
      const [m] = await receiveN(sub, 1);
      expect(m?.deliveryAttempt).toBe(2);
      got.push(m?.body.toString() ?? '');
      await m?.ack();
    }
    expect(got.sort()).toEqual(['dead0', 'dead1', 'dead2', 'dead3', 'dead4']);
    expect(sub.stats.claimed).toBe(5);
  });

  it('dead-letters a message delivered more than maxDeliveries times, atomically with its ack', async () => {
    const key = server.keyPrefix();
    const sub = await subscribe({ topic: key, group: 'g', maxDeliveries: 2 });
    const events: DeadLetterEvent[] = [];
    sub.on('deadLetter', (e) => events.push(e));
    const [id] = await send(key, 1, 'poison');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [m] = await receiveN(sub, 1);
      expect(m?.deliveryAttempt).toBe(attempt);
      await m?.nack();
    }
    await eventually('the dead letter', () => events.length === 1);
    expect(events[0]).toMatchObject({ id, reason: 'max-deliveries', attempts: 3, deadLetterKey: `{${key}}:dead` });
    const [dead] = await readDeadLetters(redis, sub.deadLetterKey);
    expect(dead).toMatchObject({ sourceId: id, topic: key, group: 'g', attempts: 3, reason: 'max-deliveries' });
    expect(dead?.body?.toString()).toBe('poison0');
    expect(dead?.metadata).toEqual({ i: '0' });
    expect(await pendingOf(key, 'g')).toHaveLength(0);
    expect(sub.stats.deadLettered).toBe(1);
  });

  it('moves a message to the dead-letter stream on request, with the reason', async () => {
    const key = server.keyPrefix();
    const sub = await subscribe({ topic: key, group: 'g', deadLetterKey: `${key}:rejects`, deadLetterMaxLen: 100 });
    await send(key, 2);
    const [a, b] = await receiveN(sub, 2);
    await a?.deadLetter('price is negative');
    await b?.ack();
    const dead = await readDeadLetters(redis, `${key}:rejects`);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ sourceId: a?.id, reason: 'price is negative', attempts: 1 });
    expect(await pendingOf(key, 'g')).toHaveLength(0);
    expect(await readDeadLetters(redis, `${key}:rejects`, { after: dead[0]?.id as string })).toEqual([]);
  });

  it('dead-letters or acks entries from foreign producers that cannot be decoded, and keeps reading', async () => {
    const key = server.keyPrefix();
    const malformed: MalformedEvent[] = [];
    const sub = await subscribe({ topic: key, group: 'g' });
    sub.on('malformed', (e) => malformed.push(e));
    const noBody = (await redis.xadd(key, '*', 'type', 'order', 'id', '5')) as string;
    const badHeaders = (await redis.xadd(key, '*', 'headers', '{oops', 'body', 'x')) as string;
    await send(key, 1, 'fine');
    const [m] = await receiveN(sub, 1);
    expect(m?.body.toString()).toBe('fine0');
    await eventually('two malformed reports', () => malformed.length === 2 && sub.stats.deadLettered === 2);
    expect(malformed.map((e) => [e.id, e.action, e.error.code])).toEqual([
      [noBody, 'dead-letter', 'ERR_STREAMS_MALFORMED'],
      [badHeaders, 'dead-letter', 'ERR_STREAMS_MALFORMED'],
    ]);
    const dead = await readDeadLetters(redis, sub.deadLetterKey);
    expect(dead.map((d) => [d.sourceId, d.body])).toEqual([
      [noBody, undefined],
      [badHeaders, undefined],
    ]);
    expect(dead[0]?.reason).toMatch(/^malformed: .*no "body" field/);

    const key2 = server.keyPrefix();
    const acking = await subscribe({ topic: key2, group: 'g', onMalformed: 'ack' });
    await redis.xadd(key2, '*', 'nobody', 'here');
    await eventually(
      'the malformed entry acknowledged',
      async () => acking.stats.malformed === 1 && (await pendingOf(key2, 'g')).length === 0,
    );
    expect(await redis.exists(acking.deadLetterKey)).toBe(0);
  });

  it('acknowledges pending entries whose data was deleted, found by the drain and by reclaiming', async () => {
    const key = server.keyPrefix();
    await createGroup(redis, key, 'g', { from: '$' });
    const ids = await send(key, 4);
    await redis.call('xreadgroup', 'GROUP', 'g', 'me', 'COUNT', 2, 'STREAMS', key, '>');
    await redis.call('xreadgroup', 'GROUP', 'g', 'gone', 'COUNT', 2, 'STREAMS', key, '>');
    await redis.call('xdel', key, ...ids);
    const deleted: string[] = [];
    const sub = new Subscription(redis, {
      topic: key,
      group: 'g',
      consumer: 'me',
      ackDeadlineMs: 100,
      claimIntervalMs: 50,
      features: { readClaim: false },
    });
    opened.push(sub);
    sub.on('deleted', (e) => deleted.push(...e.ids));
    await eventually('all four reported deleted', () => deleted.length === 4);
    expect(deleted.sort()).toEqual([...ids].sort());
    await eventually('an empty pending list', async () => (await pendingOf(key, 'g')).length === 0);
    expect(sub.stats.deletedWhilePending).toBe(4);
  });

  it('renews the lease of messages it holds while alive, until maxLeaseMs', async () => {
    const key = server.keyPrefix();
    const common = { topic: key, group: 'g', ackDeadlineMs: 300, features: { readClaim: false } };
    const slow = await subscribe({ ...common, consumer: 'slow', maxLeaseMs: 1500, claimIntervalMs: 60_000 });
    await send(key, 5);
    const [held] = await receiveN(slow, 1); // the other four wait in its buffer
    const other = await subscribe({ ...common, consumer: 'other', claimIntervalMs: 30 });
    await sleep(1000); // three ack deadlines: without renewal all five would have moved
    expect(other.stats.delivered).toBe(0);
    const taken = await receiveN(other, 5); // past maxLeaseMs, renewal stops: they move
    expect(taken.map((m) => m.id)).toContain(held?.id);
    expect(taken.every((m) => m.deliveryAttempt === 2)).toBe(true);
  });

  it('extends the ack deadline of one message on request, until another consumer took it over', async () => {
    const key = server.keyPrefix();
    const common = { topic: key, group: 'g', ackDeadlineMs: 300, maxLeaseMs: 0, features: { readClaim: false } };
    const slow = await subscribe({ ...common, consumer: 'slow', claimIntervalMs: 60_000 });
    await send(key, 1);
    const [m] = await receiveN(slow, 1);
    const other = await subscribe({ ...common, consumer: 'other', claimIntervalMs: 30 });
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      expect(await m?.extendAckDeadline()).toBe(true);
    }
    expect(other.stats.delivered).toBe(0);
    const [taken] = await receiveN(other, 1); // no more extensions: the deadline passes
    expect(taken?.id).toBe(m?.id);
    expect(await m?.extendAckDeadline()).toBe(false);
    await taken?.ack();
  });

  it('deletes entries once every group has acknowledged them (deleteAcked)', async () => {
    const key = server.keyPrefix();
    const a = await subscribe({ topic: key, group: 'a', deleteAcked: true });
    const b = await subscribe({ topic: key, group: 'b', deleteAcked: true });
    await send(key, 3);
    await createGroup(redis, key, 'late', { from: '$' }); // created after: it never needs them
    for (const m of await receiveN(a, 3)) await m.ack();
    expect(await redis.xlen(key)).toBe(3); // group b has not read them
    const fromB = await receiveN(b, 3);
    await fromB[0]?.ack();
    expect(await redis.xlen(key)).toBe(2);
    await Promise.all(fromB.slice(1).map((m) => m.ack()));
    expect(await redis.xlen(key)).toBe(0);
  });

  it('reads with NOACK when asked: nothing pending, ack is free, nack is refused', async () => {
    const key = server.keyPrefix();
    const sub = await subscribe({ topic: key, group: 'g', noAck: true });
    await send(key, 2);
    const [m1, m2] = await receiveN(sub, 2);
    expect(await pendingOf(key, 'g')).toHaveLength(0);
    await m1?.ack();
    await rejectsWith(m2?.nack() as Promise<void>, 'ERR_STREAMS_UNSUPPORTED');
  });

  it('creates the group again from 0 when it (or the whole stream) disappears under a live subscriber', async () => {
    const key = server.keyPrefix();
    const sub = await subscribe({ topic: key, group: 'g', blockMs: 100 });
    let recreated = 0;
    sub.on('recreated', () => recreated++);
    await send(key, 1, 'before');
    await (await receiveN(sub, 1))[0]?.ack();
    await deleteGroup(redis, key, 'g');
    await send(key, 1, 'after');
    const again = await receiveN(sub, 2); // from 0: the old one comes again, nothing is skipped
    expect(again.map((m) => m.body.toString()).sort()).toEqual(['after0', 'before0']);
    expect(recreated).toBe(1);
    await redis.del(key);
    await send(key, 1, 'reborn'); // a new stream: its first ID may repeat an ID of the old one
    const [m] = await receiveN(sub, 1);
    expect(m?.body.toString()).toBe('reborn0');
    expect(recreated).toBe(2);
    await Promise.all(again.map((old) => old.ack())); // messages of the old group: nothing to ack
    expect(await redis.call('xpending', key, 'g', '-', '+', 10)).toHaveLength(1); // reborn0 is still pending
    await m?.ack();
    expect(await redis.call('xpending', key, 'g', '-', '+', 10)).toHaveLength(0);
  });

  it('fails for good on permanent errors, with the error on every receive and a failed event', async () => {
    const key = server.keyPrefix();
    await redis.set(key, 'not a stream');
    const broken = new Subscription(redis, { topic: key, group: 'g' });
    opened.push(broken);
    await rejectsWith(broken.ready(), 'ERR_STREAMS_WRONG_TYPE');
    await rejectsWith(broken.receive(), 'ERR_STREAMS_WRONG_TYPE');

    const key2 = server.keyPrefix();
    const sub = await subscribe({ topic: key2, group: 'g', blockMs: 50 });
    const failed = new Promise<StreamsError>((resolve) => sub.once('failed', resolve));
    const waiting = sub.receive();
    await redis.del(key2);
    await redis.set(key2, 'now a string');
    expect((await failed).code).toBe('ERR_STREAMS_WRONG_TYPE');
    await rejectsWith(waiting, 'ERR_STREAMS_WRONG_TYPE');
  });

  it('works behind an ioredis keyPrefix: the stream and dead-letter keys carry it', async () => {
    const prefixed = server.createClient({ keyPrefix: 'app:' });
    const key = server.keyPrefix('kp');
    const sub = new Subscription(prefixed, { topic: key, group: 'g', maxDeliveries: 1 });
    opened.push(sub);
    await sub.ready();
    const topic = new Topic(prefixed, key);
    await Promise.all([topic.send({ body: 'x' }), topic.send({ body: 'y' })]);
    const [a, b] = await receiveN(sub, 2);
    await a?.ack();
    await b?.nack();
    await eventually('the dead letter', () => sub.stats.deadLettered === 1);
    expect(await redis.exists(key)).toBe(0);
    expect(await redis.xlen(`app:${key}`)).toBe(2);
    expect(await redis.xlen(`app:{${key}}:dead`)).toBe(1);
    expect((await readDeadLetters(prefixed, sub.deadLetterKey))[0]?.body?.toString()).toBe(b?.body.toString());
  });

  it('switches off optional features the server rejects, and goes on the 7.0 way', async (ctx) => {
    if (server.version.flavor === 'redis' && server.version.major >= 8)
      return ctx.skip('the server has these features');
    const key = server.keyPrefix();
    const forced = { readClaim: true, xnack: true, xackdel: true };
    const sub = await subscribe({
      topic: key,
      group: 'g',
      consumer: 'c',
      features: forced,
      deleteAcked: true,
      blockMs: 100,
    });
    expect(sub.features).toEqual(forced);
    await send(key, 2);
    const [a, b] = await receiveN(sub, 2); // XREADGROUP ... CLAIM was refused: plain reads
    await a?.nack(); // XNACK was refused: released with XCLAIM
    const [again] = await receiveN(sub, 1);
    expect(again?.id).toBe(a?.id);
    await Promise.all([again?.ack(), b?.ack()]); // XACKDEL was refused: the script deletes
    expect(await redis.xlen(key)).toBe(0);
    expect(sub.features).toEqual({ readClaim: false, xnack: false, xackdel: false });
  });

  it('checks its options', () => {
    const bad: Partial<SubscriptionOptions>[] = [
      { topic: '' },
      { group: '' },
      { from: 'latest' },
      { maxInFlight: 0 },
      { ackDeadlineMs: -1 },
      { maxDeliveries: 0 },
      { onMalformed: 'explode' as never },
      { deadLetterKey: '' },
      { topic: 'a{}b}' },
    ];
    for (const options of bad) {
      expect(() => new Subscription(redis, { topic: 't', group: 'g', ...options })).toThrow(
        expect.objectContaining({ code: 'ERR_STREAMS_ARGUMENT' }),
      );
    }
  });
});
