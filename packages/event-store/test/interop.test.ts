// The timeline layout shares its keys with Go services that use the Go extension. "Go" here is
// GoExtension (./go-extension.ts): the extension's algorithm ported line by line.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRfc3339Nano } from '../src/go-json.ts';
import { RedisEventStore } from '../src/redis-event-store.ts';
import { GoExtension, goEventJson, unixNanoNow } from './go-extension.ts';
import { delay, freshPrefix } from './helpers.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server?.stop());

for (const protocol of [2, 3] as const) {
  describe(`timeline layout and the Go extension, RESP${protocol}`, () => {
    let client: Redis;
    beforeAll(() => {
      client = server.createClient({ protocol });
    });

    function pair(options: { timelineKeys?: 'go' | 'tagged'; maxEventsPerType?: number; eventTtl?: number } = {}) {
      const prefix = freshPrefix('interop');
      return {
        prefix,
        ours: new RedisEventStore(client, { layout: 'timeline', prefix, ...options }),
        go: new GoExtension(client, prefix),
      };
    }

    it('writes what the Go extension reads: keys, list, JSON fields and time format, byte for byte', async () => {
      const { prefix, ours, go } = pair();
      const payloads = [
        { amount: 12.5, currency: 'EUR', note: '<b>&</b>' },
        { amount: 3, currency: 'USD', note: 'ünï 🎉' },
      ]; // keys in sorted order, as Go writes a map
      const stored = [];
      for (const payload of payloads) stored.push(await ours.storeEvent({ name: 'order:paid', payload }));
      const list = await client.lrange(`${prefix}:order:paid:timeline`, 0, -1);
      expect(list).toEqual(stored.map((s) => `${prefix}:order:paid:${s.id}`));
      for (const [i, s] of stored.entries()) {
        expect(s.id).toMatch(/^\d{19}$/);
        expect(await client.get(`${prefix}:order:paid:${s.id}`)).toBe(
          goEventJson('order:paid', payloads[i], BigInt(s.id)),
        );
      }
      const read = await go.getEvents('order:paid', 10); // Go: oldest first
      expect(read).toEqual(
        stored.map((s, i) => ({ name: 'order:paid', payload: payloads[i], timestamp: formatRfc3339Nano(s.id) })),
      );
      expect(Date.parse(read[0]?.timestamp as string)).toBe(stored[0]?.timestamp.getTime());
    });

    it('reads what the Go extension writes, newest first, with its ids and times', async () => {
      const { ours, go } = pair();
      const keys: string[] = [];
      for (let n = 0; n < 5; n++) keys.push(await go.storeEvent({ name: 'user.created', payload: { n, html: '<i>' } }));
      const events = await ours.getEvents('user.created');
      expect(events.map((e) => e.payload)).toEqual([4, 3, 2, 1, 0].map((n) => ({ n, html: '<i>' })));
      const ids = keys.map((k) => k.slice(k.lastIndexOf(':') + 1)).reverse();
      expect(events.map((e) => e.id)).toEqual(ids);
      expect(events.map((e) => e.timestamp.getTime())).toEqual(ids.map((id) => Number(BigInt(id) / 1_000_000n)));
      expect(await ours.count('user.created')).toBe(5);
      expect((await ours.read('user.created', { after: ids[1], limit: 2 })).map((e) => e.id)).toEqual(ids.slice(2, 4));
    });

    it('interleaves with Go writers in one timeline', async () => {
      const { ours, go } = pair();
      const order: string[] = [];
      for (let i = 0; i < 6; i++) {
        if (i % 2 === 0) await go.storeEvent({ name: 'mixed', payload: { by: 'go', i } });
        else await ours.storeEvent({ name: 'mixed', payload: { by: 'ts', i } });
        order.push(`${i % 2 === 0 ? 'go' : 'ts'}${i}`);
        await delay(2); // Go stamps keys with its own clock: keep the writers apart in time
      }
      const mine = await ours.getEvents('mixed');
      expect(mine.map((e) => `${(e.payload as { by: string }).by}${(e.payload as { i: number }).i}`)).toEqual(
        [...order].reverse(),
      );
      const theirs = await go.getEvents('mixed', 100);
      expect(theirs.map((e) => (e.payload as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it("enforces the cap on a list Go grew, deleting Go's trimmed keys too", async () => {
      const { prefix, ours, go } = pair({ maxEventsPerType: 3 });
      const goKeys: string[] = [];
      for (let n = 0; n < 5; n++) goKeys.push(await go.storeEvent({ name: 'capped', payload: { n } }));
      await ours.storeEvent({ name: 'capped', payload: { n: 5 } });
      expect((await ours.getEvents('capped', 10)).map((e) => (e.payload as { n: number }).n)).toEqual([5, 4, 3]);
      expect(await client.llen(`${prefix}:capped:timeline`)).toBe(3);
      expect(await client.exists(...goKeys.slice(0, 3))).toBe(0);
      // Go's list had no TTL: it keeps none, since Go's events live 24 h whatever our eventTtl is
      expect(await client.pttl(`${prefix}:capped:timeline`)).toBe(-1);
      expect((await go.getEvents('capped')).map((e) => (e.payload as { n: number }).n)).toEqual([3, 4, 5]);
    });

    it('skips index entries whose event is gone, as Go does, and prunes them', async () => {
      const { prefix, ours, go } = pair();
      const keys: string[] = [];
      for (let n = 0; n < 6; n++) keys.push(await go.storeEvent({ name: 'holes', payload: { n } }));
      await client.del(keys[4] as string, keys[2] as string); // evicted or expired in the middle
      expect((await ours.getEvents('holes', 3)).map((e) => (e.payload as { n: number }).n)).toEqual([5, 3, 1]);
      expect(await client.lrange(`${prefix}:holes:timeline`, 0, -1)).toEqual([keys[0], keys[1], keys[3], keys[5]]);
      expect((await go.getEvents('holes')).map((e) => (e.payload as { n: number }).n)).toEqual([0, 1, 3, 5]);
    });

    it('clears what Go wrote, and Go clears what we wrote', async () => {
      const { prefix, ours, go } = pair();
      await go.storeEvent({ name: 'c', payload: 1 });
      await ours.storeEvent({ name: 'c', payload: 2 });
      await ours.clearEvents('c');
      expect(await go.getEvents('c')).toEqual([]);
      expect(await client.keys(`${prefix}:c:*`)).toEqual([`${prefix}:c:floor`]);
      await ours.storeEvent({ name: 'c', payload: 3 });
      await go.clearEvents('c');
      expect(await ours.getEvents('c')).toEqual([]);
    });

    it('never writes two events to one key, even when a Go writer took that nanosecond', async () => {
      const { prefix, ours, go } = pair();
      const last = unixNanoNow() + 10_000_000_000n; // ahead of the server clock: our next id is last + 1
      await go.storeEvent({ name: 'n', payload: 'go-1' }, last);
      // A Go writer has just SET the key of last + 1 and not pushed it yet.
      const taken = `${prefix}:n:${last + 1n}`;
      await client.set(taken, goEventJson('n', 'go-2', last + 1n), 'EX', 86_400);
      const stored = await ours.storeEvent({ name: 'n', payload: 'ts' });
      expect(stored.id).toBe(`${last + 2n}`);
      expect(await client.get(taken)).toBe(goEventJson('n', 'go-2', last + 1n));
      expect((await ours.getEvents('n')).map((e) => e.payload)).toEqual(['ts', 'go-1']);
    });

    it('shares tagged keys with Go services that put the name in braces', async () => {
      const { prefix, ours, go } = pair({ timelineKeys: 'tagged' });
      await go.storeEvent({ name: '{orders}', payload: { from: 'go' } });
      await ours.storeEvent({ name: 'orders', payload: { from: 'ts' } });
      expect((await ours.getEvents('orders')).map((e) => e.payload)).toEqual([{ from: 'ts' }, { from: 'go' }]);
      const theirs = await go.getEvents('{orders}');
      expect(theirs.map((e) => e.payload)).toEqual([{ from: 'go' }, { from: 'ts' }]);
      expect(theirs[1]?.name).toBe('orders');
      expect(await client.exists(`${prefix}:{orders}:timeline`)).toBe(1);
    });

    it("reads Go's time-stamped events within a time range", async () => {
      const { ours, go } = pair();
      const base = unixNanoNow();
      for (let n = 0; n < 5; n++)
        await go.storeEvent({ name: 'timed', payload: { n } }, base + BigInt(n) * 10_000_000n);
      const since = new Date(Number((base + 20_000_000n) / 1_000_000n));
      const until = new Date(Number((base + 30_000_000n) / 1_000_000n));
      expect(
        (await ours.read('timed', { since, until, order: 'oldest' })).map((e) => (e.payload as { n: number }).n),
      ).toEqual([2, 3]);
    });
  });
}
