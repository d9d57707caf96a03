// The contract every layout keeps, on every topology and protocol. The test files call
// defineContract() once per (layout, server, client options).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStoreLayout, EventStoreOptions } from '../src/config.ts';
import { EventStoreError } from '../src/errors.ts';
import type { StoredEvent } from '../src/event.ts';
import type { RedisClient } from '../src/redis-client.ts';
import { RedisEventStore } from '../src/redis-event-store.ts';
import type { Serializer } from '../src/serializer.ts';
import { compareIds, delay, expectStrictOrder, freshPrefix, globEscape, scanKeys } from './helpers.ts';

export interface ContractTarget {
  /** Shown in the describe title, e.g. "standalone, RESP3". */
  readonly label: string;
  readonly layout: EventStoreLayout;
  /** A new client (closed by the target's owner at the end of the file). */
  readonly connect: () => RedisClient;
  /** The hash slot of a key, on a cluster. */
  readonly keySlot?: (key: string) => Promise<number>;
}

interface Payload {
  readonly n: number;
}

export function defineContract(target: ContractTarget): void {
  describe(`${target.layout} layout, ${target.label}`, () => {
    let client: RedisClient;
    const stores: RedisEventStore[] = [];

    beforeAll(() => {
      client = target.connect();
    });
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
    });

    function makeStore(options: EventStoreOptions = {}, on: RedisClient = client): RedisEventStore {
      const store = new RedisEventStore(on, { layout: target.layout, prefix: freshPrefix(), ...options });
      stores.push(store);
      return store;
    }

    function keysUnder(store: RedisEventStore): Promise<string[]> {
      return scanKeys(client, `${globEscape(store.config.prefix)}:*`);
    }

    async function append(store: RedisEventStore, name: string, count: number, from = 0): Promise<StoredEvent[]> {
      const out: StoredEvent[] = [];
      for (let n = from; n < from + count; n++) out.push(await store.storeEvent({ name, payload: { n } }));
      return out;
    }

    const ns = (events: readonly StoredEvent[]): number[] => events.map((e) => (e.payload as Payload).n);

    it('stores a payload and reads it back with its id and the server time', async () => {
      const store = makeStore();
      const before = Date.now();
      const payload = {
        text: 'ünïcödé <b>&amp;</b> \u2028 🎉',
        number: -12.5e-3,
        flags: [true, false, null],
        nested: { deep: { list: [1, 'two', { three: 3 }] } },
        at: new Date('2024-05-13T10:20:30.123Z'),
        dropped: undefined,
      };
      const stored = await store.storeEvent({ name: 'user.created', payload });
      const [read] = await store.getEvents('user.created');
      expect(read).toEqual({
        name: 'user.created',
        id: stored.id,
        timestamp: stored.timestamp,
        payload: {
          text: payload.text,
          number: payload.number,
          flags: payload.flags,
          nested: payload.nested,
          at: '2024-05-13T10:20:30.123Z',
        },
      });
      expect(stored.payload).toBe(payload);
      expect(stored.timestamp.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(stored.timestamp.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    });

    it('returns the newest first, in exact storage order, and oldest first on request', async () => {
      const store = makeStore();
      const stored = await append(store, 'order', 30);
      const newest = await store.getEvents('order');
      expect(ns(newest)).toEqual([...Array(30).keys()].reverse());
      expect(newest.map((e) => e.id)).toEqual(stored.map((e) => e.id).reverse());
      expectStrictOrder(
        newest.map((e) => e.id),
        'newest',
      );
      const oldest = await store.read('order', { order: 'oldest' });
      expect(ns(oldest)).toEqual([...Array(30).keys()]);
    });

    it('limits reads: n newest, 0 or none meaning maxEventsPerType, bad limits refused', async () => {
      const store = makeStore({ maxEventsPerType: 8 });
      await append(store, 'limited', 8);
      expect(ns(await store.getEvents('limited', 3))).toEqual([7, 6, 5]);
      expect(await store.getEvents('limited', 0)).toHaveLength(8);
      expect(await store.getEvents('limited')).toHaveLength(8);
      expect(await store.getEvents('limited', 1000)).toHaveLength(8);
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3' as unknown as number]) {
        await expect(store.getEvents('limited', bad)).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_ARGUMENT' });
      }
    });

    it('keeps at most maxEventsPerType events per name, with nothing left over', async () => {
      const store = makeStore({ maxEventsPerType: 5 });
      await append(store, 'capped', 12);
      expect(await store.count('capped')).toBe(5);
      expect(ns(await store.getEvents('capped', 100))).toEqual([11, 10, 9, 8, 7]);
      expect(ns(await store.read('capped', { order: 'oldest', limit: 100 }))).toEqual([7, 8, 9, 10, 11]);
      const keys = await keysUnder(store);
      if (target.layout === 'stream') {
        expect(keys).toEqual(store.keysOf('capped').keys);
        expect(await client.call('XLEN', keys[0] as string)).toBe(5);
      } else {
        const list = store.keysOf('capped').keys[0] as string;
        const indexed = (await client.call('LRANGE', list, 0, -1)) as string[];
        expect(indexed).toHaveLength(5);
        expect(keys).toEqual([...indexed, list].sort());
      }
    });

    it('expires events after eventTtl, the index with them', async () => {
      const store = makeStore({ eventTtl: 300 });
      await append(store, 'short', 3);
      expect(await store.count('short')).toBe(3);
      await delay(450);
      expect(await store.getEvents('short')).toEqual([]);
      expect(await store.read('short', { order: 'oldest' })).toEqual([]);
      expect(await store.count('short')).toBe(0);
      expect(await keysUnder(store)).toEqual([]);
    });

    it('never returns an expired event, and never fewer than limit live ones', async () => {
      const store = makeStore({ eventTtl: 900 });
      await append(store, 'mixed', 4, 0); // expire first
      await delay(500);
      await append(store, 'mixed', 3, 100);
      await delay(500); // the first four are 1000 ms old, the last three 500 ms
      expect(ns(await store.getEvents('mixed', 10))).toEqual([102, 101, 100]);
      expect(ns(await store.getEvents('mixed', 2))).toEqual([102, 101]);
      expect(ns(await store.read('mixed', { order: 'oldest', limit: 2 }))).toEqual([100, 101]);
      expect(await store.count('mixed')).toBe(3);
    });

    it('stores 1,000 concurrent appends within the same milliseconds: all kept, unique, ordered', async () => {
      const writers = 8;
      const perWriter = 125;
      const connections = Array.from({ length: writers }, () => target.connect());
      const store = makeStore({ maxEventsPerType: 2000 });
      const name = 'burst';
      const perConnection = connections.map((c) => new RedisEventStore(c, store.config));
      stores.push(...perConnection);
      // Every append is sent before any reply comes back: 8 connections x 125 in flight at once.
      const results = await Promise.all(
        perConnection.flatMap((s, w) =>
          Array.from({ length: perWriter }, (_, seq) => s.storeEvent({ name, payload: { w, seq } })),
        ),
      );
      expect(new Set(results.map((r) => r.id)).size).toBe(1000);
      expect(await store.count(name)).toBe(1000);
      const all = await store.getEvents(name, 1000);
      expect(all).toHaveLength(1000);
      expectStrictOrder(
        all.map((e) => e.id),
        'newest',
      );
      expect(new Set(all.map((e) => e.id))).toEqual(new Set(results.map((r) => r.id)));
      // One connection's commands run in the order sent, so each writer's events are in order.
      for (let w = 0; w < writers; w++) {
        const seqs = all
          .filter((e) => (e.payload as { w: number }).w === w)
          .map((e) => (e.payload as { seq: number }).seq);
        expect(seqs).toEqual([...Array(perWriter).keys()].reverse());
      }
      const perMs = new Map<number, number>();
      for (const e of all) perMs.set(e.timestamp.getTime(), (perMs.get(e.timestamp.getTime()) ?? 0) + 1);
      expect(Math.max(...perMs.values())).toBeGreaterThan(1); // the burst did share milliseconds
      for (const c of connections) c.disconnect();
    });

    it('clears atomically: appends pipelined around clears land wholly before or after', async () => {
      const store = makeStore();
      const name = 'cleared';
      const ops: Promise<unknown>[] = [];
      for (let n = 0; n < 10; n++) ops.push(store.storeEvent({ name, payload: { n } }));
      ops.push(store.clearEvents(name));
      for (let n = 10; n < 20; n++) ops.push(store.storeEvent({ name, payload: { n } }));
      ops.push(store.clearEvents(name));
      for (let n = 20; n < 25; n++) ops.push(store.storeEvent({ name, payload: { n } }));
      await Promise.all(ops);
      expect(ns(await store.getEvents(name))).toEqual([24, 23, 22, 21, 20]);
      expect(await store.count(name)).toBe(5);
      const keys = await keysUnder(store);
      if (target.layout === 'timeline') {
        const list = store.keysOf(name).keys[0] as string;
        const indexed = (await client.call('LRANGE', list, 0, -1)) as string[];
        expect(keys).toEqual([...indexed, list, store.keysOf(name).keys[1] as string].sort()); // no orphans
      }
    });

    it('clears atomically while another connection appends: a suffix survives, no orphans, ids keep growing', async () => {
      const writer = target.connect();
      const store = makeStore();
      const writing = new RedisEventStore(writer, store.config);
      stores.push(writing);
      const name = 'race';
      // The writer sends 10 appends every millisecond while the other connection clears every
      // two: the server runs them interleaved.
      const appends: Promise<StoredEvent>[] = [];
      const writing$ = (async () => {
        for (let batch = 0; batch < 30; batch++) {
          for (let i = 0; i < 10; i++) appends.push(writing.storeEvent({ name, payload: { n: batch * 10 + i } }));
          await delay(1);
        }
      })();
      const clearing$ = (async () => {
        for (let i = 0; i < 10; i++) {
          await delay(2);
          await store.clearEvents(name);
        }
      })();
      await Promise.all([writing$, clearing$]);
      const stored = await Promise.all(appends);
      const left = ns(await store.read(name, { order: 'oldest' }));
      expect(left).toEqual(left.length === 0 ? [] : [...Array(left.length).keys()].map((i) => 300 - left.length + i));
      expect(await store.count(name)).toBe(left.length);
      if (target.layout === 'timeline') {
        const list = store.keysOf(name).keys[0] as string;
        const indexed = (await client.call('LRANGE', list, 0, -1)) as string[];
        const values = (await keysUnder(store)).filter((k) => /:\d+$/.test(k));
        expect(values.sort()).toEqual([...indexed].sort());
      }
      await store.clearEvents(name);
      const after = await store.storeEvent({ name, payload: { n: 1000 } });
      const newest = stored.reduce((a, b) => (compareIds(a.id, b.id) > 0 ? a : b));
      expect(compareIds(after.id, newest.id)).toBeGreaterThan(0);
      writer.disconnect();
    });

    it('keeps names with ":", "{", "}" and "%" apart, each name in one hash slot', async () => {
      const store = makeStore();
      const names = ['a', 'a:b', 'a:b:c', 'a%3Ab', '{a}', 'a{b}c', '}{', '{}', 'x:timeline', 'x:floor', 'ünï:cödé 🎉'];
      for (const name of names) {
        await store.storeEvent({ name, payload: { name, i: 1 } });
        await store.storeEvent({ name, payload: { name, i: 2 } });
      }
      for (const name of names) {
        const events = await store.getEvents(name);
        expect(events.map((e) => e.payload)).toEqual([
          { name, i: 2 },
          { name, i: 1 },
        ]);
        expect(events.every((e) => e.name === name)).toBe(true);
      }
      if (target.keySlot) {
        for (const name of names) {
          const [main] = store.keysOf(name).keys;
          const keys = [main as string];
          if (target.layout === 'timeline')
            keys.push(...((await client.call('LRANGE', main as string, 0, -1)) as string[]));
          const slots = new Set(await Promise.all(keys.map((k) => target.keySlot?.(k))));
          expect(slots.size).toBe(1);
        }
      }
    });

    it('gives an empty list for an unknown name, and creates nothing', async () => {
      const store = makeStore();
      expect(await store.getEvents('never.seen')).toEqual([]);
      expect(await store.getEvents('never.seen', 5)).toEqual([]);
      expect(await store.read('never.seen', { order: 'oldest', since: 0, until: Date.now() })).toEqual([]);
      expect(await store.count('never.seen')).toBe(0);
      await store.clearEvents('never.seen');
      expect(await keysUnder(store)).toEqual([]);
    });

    it('reads a time range, bounds inclusive', async () => {
      const store = makeStore();
      // Events 3 ms apart, so that no two share the millisecond that bounds a range.
      const spaced = async (from: number): Promise<StoredEvent[]> => {
        const out: StoredEvent[] = [];
        for (let n = from; n < from + 3; n++) {
          out.push(await store.storeEvent({ name: 'ranged', payload: { n } }));
          await delay(3);
        }
        return out;
      };
      const early = await spaced(0);
      await delay(15);
      const late = await spaced(10);
      const firstLate = late[0] as StoredEvent;
      const lastEarly = early[2] as StoredEvent;
      expect(ns(await store.read('ranged', { since: firstLate.timestamp }))).toEqual([12, 11, 10]);
      expect(ns(await store.read('ranged', { until: lastEarly.timestamp.getTime() }))).toEqual([2, 1, 0]);
      expect(
        ns(await store.read('ranged', { since: early[1]?.timestamp, until: firstLate.timestamp, order: 'oldest' })),
      ).toEqual([1, 2, 10]);
      expect(await store.read('ranged', { since: Date.now() + 60_000 })).toEqual([]);
      await expect(store.read('ranged', { since: new Date(Number.NaN) })).rejects.toMatchObject({
        code: 'ERR_EVENT_STORE_ARGUMENT',
      });
    });

    it('pages through events after an id, in both orders, also within a time range', async () => {
      const store = makeStore();
      const stored = await append(store, 'paged', 25);
      for (const order of ['newest', 'oldest'] as const) {
        const pages: number[][] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.read('paged', { order, limit: 10, after });
          if (page.length === 0) break;
          pages.push(ns(page));
          after = page.at(-1)?.id;
        }
        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        const expected = [...Array(25).keys()];
        expect(pages.flat()).toEqual(order === 'newest' ? expected.reverse() : expected);
      }
      const middle = stored[12] as StoredEvent;
      expect(ns(await store.read('paged', { after: middle.id, limit: 3 }))).toEqual([11, 10, 9]);
      expect(ns(await store.read('paged', { after: middle.id, limit: 3, order: 'oldest' }))).toEqual([13, 14, 15]);
      // a cursor that never existed works as a position
      expect(
        ns(
          await store.read('paged', {
            after: store.config.layout === 'stream' ? '0-0' : '0',
            order: 'oldest',
            limit: 2,
          }),
        ),
      ).toEqual([0, 1]);
      await expect(store.read('paged', { after: 'not-an-id' })).rejects.toMatchObject({
        code: 'ERR_EVENT_STORE_ARGUMENT',
      });
    });

    it('counts live events', async () => {
      const store = makeStore({ maxEventsPerType: 4 });
      expect(await store.count('counted')).toBe(0);
      await append(store, 'counted', 3);
      expect(await store.count('counted')).toBe(3);
      await append(store, 'counted', 3);
      expect(await store.count('counted')).toBe(4);
      await store.clearEvents('counted');
      expect(await store.count('counted')).toBe(0);
    });

    it('tails new events in order, resumes after an id, and ends on abort', async () => {
      const store = makeStore();
      await append(store, 'tailed', 2, 0); // before the tail: not delivered
      const controller = new AbortController();
      const tail = store.tail('tailed', { signal: controller.signal, pollIntervalMs: 20, blockMs: 2000 });
      const first = tail.next(); // the tail starts at the newest event when tail() is called
      await delay(50);
      const stored = await append(store, 'tailed', 5, 10);
      const got: StoredEvent[] = [(await first).value as StoredEvent];
      for (let i = 1; i < 5; i++) got.push((await tail.next()).value as StoredEvent);
      expect(ns(got)).toEqual([10, 11, 12, 13, 14]);
      expect(got.map((e) => e.id)).toEqual(stored.map((e) => e.id));

      const replay = store.tail('tailed', { after: stored[1]?.id, pollIntervalMs: 20 });
      const replayed: number[] = [];
      for await (const event of replay) {
        replayed.push((event.payload as Payload).n);
        if (replayed.length === 3) break;
      }
      expect(replayed).toEqual([12, 13, 14]);

      const pending = tail.next();
      controller.abort();
      expect(await pending).toEqual({ done: true, value: undefined });
      expect(await tail.next()).toEqual({ done: true, value: undefined });
    });

    it('tails on across a clear, with the events stored after it', async () => {
      const store = makeStore();
      await using tail = store.tail('tail.clear', { pollIntervalMs: 20, blockMs: 2000 });
      const next = tail.next();
      await delay(30);
      await store.storeEvent({ name: 'tail.clear', payload: { n: 1 } });
      expect((await next).value?.payload).toEqual({ n: 1 });
      await store.clearEvents('tail.clear');
      await store.storeEvent({ name: 'tail.clear', payload: { n: 2 } });
      expect((await tail.next()).value?.payload).toEqual({ n: 2 });
    });

    it('keeps the payload rules: Date to ISO string, undefined dropped, BigInt refused', async () => {
      const store = makeStore();
      await store.storeEvent({
        name: 'rules',
        payload: { at: new Date(0), gone: undefined, list: [undefined, 1], nothing: null },
      });
      expect((await store.getEvents('rules'))[0]?.payload).toEqual({
        at: '1970-01-01T00:00:00.000Z',
        list: [null, 1],
        nothing: null,
      });
      await store.storeEvent({ name: 'rules', payload: undefined });
      expect((await store.getEvents('rules', 1))[0]?.payload).toBeNull();
      const refused = await store.storeEvent({ name: 'rules', payload: { amount: 10n } }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(EventStoreError);
      expect(refused).toMatchObject({ code: 'ERR_EVENT_STORE_PAYLOAD' });
      expect((refused as Error).message).toMatch(/payload\.amount is a BigInt \(10n\)/);
      expect(await store.count('rules')).toBe(2);
    });

    it('takes a custom serializer', async () => {
      const bigintJson: Serializer = {
        serialize: (payload) =>
          JSON.stringify(payload, (_k, v: unknown) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v)),
        deserialize: (text) =>
          JSON.parse(text, (_k, v: unknown) =>
            v !== null && typeof v === 'object' && typeof (v as { $bigint?: unknown }).$bigint === 'string'
              ? BigInt((v as { $bigint: string }).$bigint)
              : v,
          ),
      };
      const store = makeStore({ serializer: bigintJson });
      await store.storeEvent({ name: 'big', payload: { amount: 2n ** 70n, label: '<x>' } });
      expect((await store.getEvents('big'))[0]?.payload).toEqual({ amount: 2n ** 70n, label: '<x>' });
    });
  });
}
