// Behaviour of RedisEventStore beyond the contract: configuration, arguments, errors, closing,
// script loading, faults, and what the timeline layout does with foreign data.
import { type SpawnedRedis, spawnRedis, startProxy } from '@redis-events/testkit';
import fc from 'fast-check';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.ts';
import { EventStoreError } from '../src/errors.ts';
import type { StoredEvent } from '../src/event.ts';
import { formatRfc3339Nano } from '../src/go-json.ts';
import { RedisEventStore } from '../src/redis-event-store.ts';
import { LUA_RFC3339, TIMELINE_SCRIPTS } from '../src/timeline-layout.ts';
import { delay, freshPrefix, succeeds } from './helpers.ts';

let server: SpawnedRedis;
let client: Redis;
beforeAll(async () => {
  server = await spawnRedis();
  client = server.createClient();
});
afterAll(() => server?.stop());

describe('configuration', () => {
  it('defaults to the Go extension values, the stream layout and JSON', () => {
    const store = new RedisEventStore(client);
    expect(store.config).toMatchObject({
      prefix: 'mediator:events',
      eventTtl: 86_400_000,
      maxEventsPerType: 1000,
      layout: 'stream',
      timelineKeys: 'go',
      maxEventBytes: 1_048_576,
    });
    expect(defaultConfig()).not.toBe(defaultConfig());
  });

  it('refuses bad options with ERR_EVENT_STORE_CONFIG and a message that says what to do', () => {
    const bad: [object, RegExp][] = [
      [{ prefix: '' }, /prefix must be a non-empty string/],
      [{ prefix: 'a{}b' }, /empty hash tag/],
      [{ eventTtl: 0 }, /eventTtl \(ms\) must be an integer from 1/],
      [{ eventTtl: 1.5 }, /eventTtl/],
      [{ maxEventsPerType: -1 }, /maxEventsPerType/],
      [{ maxEventBytes: 2 ** 40 }, /maxEventBytes/],
      [{ layout: 'list' }, /layout must be "stream" or "timeline"/],
      [{ serializer: { serialize: JSON.stringify } }, /serializer must be an object with serialize/],
      [{ timelineKeys: 'hashed' }, /timelineKeys must be "go" or "tagged"/],
    ];
    for (const [options, message] of bad) {
      expect(() => new RedisEventStore(client, options)).toThrow(
        expect.objectContaining({ code: 'ERR_EVENT_STORE_CONFIG', message: expect.stringMatching(message) }),
      );
    }
    expect(() => new RedisEventStore({} as never)).toThrow(/must be an ioredis Redis or Cluster client/);
  });

  it('refuses the Go keys on a Redis Cluster, and picks the tagged keys there by default', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    expect(() => new RedisEventStore(cluster, { layout: 'timeline', timelineKeys: 'go' })).toThrow(
      /timelineKeys "go" puts every event in its own hash slot/,
    );
    expect(new RedisEventStore(cluster, { layout: 'timeline' }).config.timelineKeys).toBe('tagged');
    cluster.disconnect();
  });

  it('names the keys of an event name', () => {
    expect(new RedisEventStore(client).keysOf('user:created')).toEqual({ keys: ['mediator:events:{user%3Acreated}'] });
    expect(new RedisEventStore(client, { layout: 'timeline' }).keysOf('user:created')).toEqual({
      keys: ['mediator:events:user:created:timeline', 'mediator:events:user:created:floor'],
      pattern: 'mediator:events:user:created:<unix nanoseconds>',
    });
  });
});

describe('arguments', () => {
  for (const layout of ['stream', 'timeline'] as const) {
    it(`refuses bad names, events, cursors, times and tail options (${layout})`, async () => {
      const store = new RedisEventStore(client, { layout, prefix: freshPrefix() });
      const argument = { code: 'ERR_EVENT_STORE_ARGUMENT' };
      await expect(store.storeEvent({ name: '', payload: 1 })).rejects.toMatchObject(argument);
      await expect(store.storeEvent(null as never)).rejects.toMatchObject(argument);
      await expect(store.getEvents(7 as never)).rejects.toMatchObject(argument);
      await expect(store.read('x', { after: '12-x' })).rejects.toMatchObject(argument);
      await expect(store.read('x', { after: layout === 'stream' ? '123' : '1-0' })).rejects.toMatchObject(argument);
      await expect(store.read('x', { order: 'up' as never })).rejects.toMatchObject(argument);
      await expect(store.read('x', { until: Number.POSITIVE_INFINITY })).rejects.toMatchObject(argument);
      await expect(store.count('')).rejects.toMatchObject(argument);
      await expect(store.clearEvents('')).rejects.toMatchObject(argument);
      expect(() => store.tail('x', { batchSize: 0 })).toThrow(expect.objectContaining(argument));
      expect(() => store.tail('x', { after: 'nope' })).toThrow(expect.objectContaining(argument));
      await expect(store.storeEvent({ name: 'x', payload: 'y'.repeat(2_000_000) })).rejects.toMatchObject({
        code: 'ERR_EVENT_STORE_PAYLOAD',
        message: expect.stringMatching(/takes 2000002 bytes, more than maxEventBytes \(1048576\)/),
      });
    });
  }

  it('refuses a serializer that does not write JSON in the timeline layout, which Go must parse', async () => {
    const store = new RedisEventStore(client, {
      layout: 'timeline',
      prefix: freshPrefix(),
      serializer: { serialize: (p) => `plain ${String(p)}`, deserialize: (t) => t },
    });
    await expect(store.storeEvent({ name: 'x', payload: 1 })).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_PAYLOAD',
      message: expect.stringMatching(/the serializer must return JSON text; it returned "plain 1"/),
    });
    expect(await store.count('x')).toBe(0);
  });

  it('wraps a throwing or wrong custom serializer in a payload error', async () => {
    const throwing = new RedisEventStore(client, {
      prefix: freshPrefix(),
      serializer: {
        serialize: () => {
          throw new Error('cannot encode');
        },
        deserialize: JSON.parse,
      },
    });
    await expect(throwing.storeEvent({ name: 'x', payload: 1 })).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_PAYLOAD',
      message: 'event "x": the serializer refused the payload: cannot encode',
    });
    const wrong = new RedisEventStore(client, {
      prefix: freshPrefix(),
      serializer: { serialize: () => 42 as never, deserialize: JSON.parse },
    });
    await expect(wrong.storeEvent({ name: 'x', payload: 1 })).rejects.toThrow(
      /returned number; it must return a string/,
    );
  });
});

describe("ioredis' keyPrefix", () => {
  for (const layout of ['stream', 'timeline'] as const) {
    it(`works under a client key prefix, keys and all (${layout})`, async () => {
      const prefixed = server.createClient({ keyPrefix: 'app:' });
      const prefix = freshPrefix();
      const store = new RedisEventStore(prefixed, { layout, prefix });
      const tail = store.tail('k', { pollIntervalMs: 20, blockMs: 1000 });
      const next = tail.next();
      await delay(30);
      const stored = await store.storeEvent({ name: 'k', payload: 1 });
      await store.storeEvent({ name: 'k', payload: 2 });
      expect((await store.getEvents('k')).map((e) => e.payload)).toEqual([2, 1]);
      expect(await store.count('k')).toBe(2);
      expect((await next).value?.id).toBe(stored.id);
      await tail.close();
      const keys = await client.keys(`app:${prefix}:*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(await client.keys(`${prefix}:*`)).toEqual([]);
      if (layout === 'timeline') {
        expect(await client.lrange(`app:${prefix}:k:timeline`, 0, -1)).toEqual(
          expect.arrayContaining([`app:${prefix}:k:${stored.id}`]),
        );
      }
      await store.clearEvents('k');
      expect(await store.getEvents('k')).toEqual([]);
      prefixed.disconnect();
    });
  }
});

describe('permissions', () => {
  it('works for an ACL user limited to its prefix, with the rules the README gives', async () => {
    const user = await server.createUser({
      username: 'events',
      password: 'pw',
      rules: ['~app:*', '+@connection', '+@scripting', '+@read', '+@write', '+time', '-@dangerous'],
    });
    const limited = server.createClient({ username: user.username, password: user.password, enableReadyCheck: false });
    for (const layout of ['stream', 'timeline'] as const) {
      const store = new RedisEventStore(limited, { layout, prefix: `app:${freshPrefix()}` });
      const tail = store.tail('acl', { pollIntervalMs: 20, blockMs: 1000 });
      const next = tail.next();
      await delay(30);
      await store.storeEvent({ name: 'acl', payload: 1 });
      expect((await store.getEvents('acl')).map((e) => e.payload)).toEqual([1]);
      expect(await store.count('acl')).toBe(1);
      expect((await next).value?.payload).toBe(1);
      await tail.close();
      await store.clearEvents('acl');
      await expect(
        new RedisEventStore(limited, { layout, prefix: 'other' }).storeEvent({ name: 'acl', payload: 1 }),
      ).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_REDIS', message: expect.stringMatching(/NOPERM/) });
    }
  });
});

describe('closing', () => {
  it('never closes a client it did not create, and refuses calls once closed', async () => {
    const own = server.createClient();
    const store = new RedisEventStore(own, { prefix: freshPrefix() });
    await store.storeEvent({ name: 'x', payload: 1 });
    const tail = store.tail('x');
    const pending = tail.next();
    await store.close();
    await store.close(); // twice is fine
    expect(store.closed).toBe(true);
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await own.ping()).toBe('PONG');
    await expect(store.getEvents('x')).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_CLOSED' });
    expect(() => store.tail('x')).toThrow(expect.objectContaining({ code: 'ERR_EVENT_STORE_CLOSED' }));
  });

  it('creates a client from a URL and closes it', async () => {
    const store = new RedisEventStore(server.url, { prefix: freshPrefix() });
    await store.storeEvent({ name: 'x', payload: 1 });
    const before = Number((await server.info('clients')).connected_clients);
    await store.close();
    await expect
      .poll(async () => Number((await server.info('clients')).connected_clients), { timeout: 5000 })
      .toBe(before - 1);
  });
});

describe('Redis errors', () => {
  it('says which key holds another type', async () => {
    const store = new RedisEventStore(client, { prefix: freshPrefix() });
    const [key] = store.keysOf('taken').keys;
    await client.set(key as string, 'not a stream');
    const err = await store.getEvents('taken').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventStoreError);
    expect(err).toMatchObject({ code: 'ERR_EVENT_STORE_REDIS' });
    expect((err as Error).message).toMatch(
      /WRONGTYPE.*the key .*\{taken\} holds another type of value: .*choose another prefix/,
    );
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('reports stream entries it did not write', async () => {
    const store = new RedisEventStore(client, { prefix: freshPrefix() });
    const [key] = store.keysOf('foreign').keys;
    await client.xadd(key as string, '*', 'other', 'field');
    await expect(store.getEvents('foreign')).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_DECODE',
      message: expect.stringMatching(/holds an entry this store did not write \(entry \d+-0 has no payload field\)/),
    });
  });

  it('reports stored text that is not JSON, and timeline entries that are not event keys', async () => {
    const prefix = freshPrefix();
    const store = new RedisEventStore(client, { layout: 'timeline', prefix });
    const now = `${Date.now()}000000`;
    await client.set(`${prefix}:bad:${now}`, '{"name":"bad",', 'EX', 60);
    await client.rpush(`${prefix}:bad:timeline`, `${prefix}:bad:${now}`);
    await expect(store.getEvents('bad')).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_DECODE',
      message: expect.stringMatching(new RegExp(`:bad:${now} does not hold JSON`)),
    });
    await client.set(`${prefix}:odd:${now}`, '{"name":"odd"}', 'EX', 60);
    await client.rpush(`${prefix}:odd:timeline`, `${prefix}:odd:${now}`);
    await expect(store.getEvents('odd')).rejects.toThrow(/without a "payload" field/);
    await client.rpush(`${prefix}:weird:timeline`, 'somebody-else');
    await client.set('somebody-else', '{}');
    await expect(store.getEvents('weird')).rejects.toThrow(
      /holds "somebody-else", which is not a ".*:weird:<unix nanoseconds>" key/,
    );
    await client.del('somebody-else');
  });

  it('fails with ERR_EVENT_STORE_CONNECT within connectTimeoutMs when Redis is down, and works again when it is back', async () => {
    const down = await spawnRedis();
    const flaky = down.createClient({ maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    flaky.on('error', () => {}); // reconnect noise; failures reach the calls
    const store = new RedisEventStore(flaky, { prefix: freshPrefix(), connectTimeoutMs: 500 });
    await store.storeEvent({ name: 'x', payload: 1 });
    await down.kill();
    await expect.poll(() => flaky.status).not.toBe('ready');
    const err = await store.storeEvent({ name: 'x', payload: 2 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_EVENT_STORE_CONNECT' });
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${down.port}.*ECONNREFUSED`));
    await down.start();
    await expect.poll(() => succeeds(store.storeEvent({ name: 'x', payload: 3 }))).toBe(true);
    await down.stop();
  });
});

describe('script loading', () => {
  for (const layout of ['stream', 'timeline'] as const) {
    it(`keeps the order of pipelined calls when the server lost its scripts (${layout})`, async () => {
      const own = server.createClient();
      const store = new RedisEventStore(own, { layout, prefix: freshPrefix() });
      await store.storeEvent({ name: 'o', payload: { n: -1 } }); // scripts loaded
      await server.command('SCRIPT', 'FLUSH');
      const calls: Promise<unknown>[] = [];
      for (let n = 0; n < 5; n++) calls.push(store.storeEvent({ name: 'o', payload: { n } }));
      calls.push(store.clearEvents('o'));
      for (let n = 5; n < 8; n++) calls.push(store.storeEvent({ name: 'o', payload: { n } }));
      const read = store.getEvents('o');
      await Promise.all(calls);
      expect((await read).map((e) => e.payload)).toEqual([{ n: 7 }, { n: 6 }, { n: 5 }]);
      own.disconnect();
    });
  }

  it('keeps the order of the first calls on a fresh client', async () => {
    const own = server.createClient();
    await server.command('SCRIPT', 'FLUSH');
    const store = new RedisEventStore(own, { prefix: freshPrefix() });
    const stored = store.storeEvent({ name: 'first', payload: 1 });
    const read = store.getEvents('first');
    await stored;
    expect((await read).map((e) => e.payload)).toEqual([1]);
    own.disconnect();
  });
});

describe('live tail under faults', () => {
  for (const layout of ['stream', 'timeline'] as const) {
    it(`waits out a server restart and goes on (${layout})`, async () => {
      const restarting = await spawnRedis();
      const store = new RedisEventStore(restarting.createClient(), { layout, prefix: freshPrefix() });
      const tail = store.tail('t', { pollIntervalMs: 20, blockMs: 500 });
      const first = tail.next();
      await delay(50);
      await store.storeEvent({ name: 't', payload: 1 });
      expect((await first).value?.payload).toBe(1);
      const second = tail.next();
      await restarting.restart(); // the data survives (SAVE before restart)
      await expect.poll(() => succeeds(store.storeEvent({ name: 't', payload: 2 }))).toBe(true);
      expect((await second).value?.payload).toBe(2);
      await tail.close();
      await restarting.stop();
    });
  }

  for (const layout of ['stream', 'timeline'] as const) {
    it(`starts when tail() is called, also while its client is still connecting (${layout})`, async () => {
      const prefix = freshPrefix();
      await using proxy = await startProxy({ target: server });
      const slow = server.createClient({ port: proxy.port });
      slow.on('error', () => {});
      const store = new RedisEventStore(slow, { layout, prefix });
      const other = new RedisEventStore(client, { layout, prefix }); // another connection, same events
      await store.storeEvent({ name: 'n', payload: 'before' }); // answered before tail(): left out exactly
      proxy.pause(); // the tail's start cannot reach Redis yet
      // Asked before tail(), but stored by Redis after it (after 'during'): yielded.
      const unanswered = store.storeEvent({ name: 'n', payload: 'asked before, stored after' });
      const tail = store.tail('n', { pollIntervalMs: 20, blockMs: 500 });
      const first = tail.next();
      await other.storeEvent({ name: 'n', payload: 'during' }); // stored while the start waits
      proxy.resume();
      await unanswered;
      expect((await first).value?.payload).toBe('during');
      expect((await tail.next()).value?.payload).toBe('asked before, stored after');
      await store.storeEvent({ name: 'n', payload: 'after' });
      expect((await tail.next()).value?.payload).toBe('after');
      await tail.close();
      slow.disconnect();
    });

    it(`yields what was stored while its start failed and was retried (${layout})`, async () => {
      const prefix = freshPrefix();
      await using proxy = await startProxy({ target: server });
      proxy.refuse(true);
      const failing = server.createClient({ port: proxy.port, maxRetriesPerRequest: 0, retryStrategy: () => 20 });
      failing.on('error', () => {});
      const store = new RedisEventStore(failing, { layout, prefix });
      const other = new RedisEventStore(client, { layout, prefix });
      await other.storeEvent({ name: 'n', payload: 'long before' });
      await delay(20); // the server's clock moves past it
      const tail = store.tail('n', { pollIntervalMs: 20, blockMs: 500 });
      const first = tail.next();
      await delay(100); // the start fails, and is retried with backoff
      await other.storeEvent({ name: 'n', payload: 'during' });
      proxy.refuse(false);
      expect((await first).value?.payload).toBe('during');
      await tail.close();
      failing.disconnect();
    });
  }

  it('ends with ERR_EVENT_STORE_CLOSED when its client is closed for good', async () => {
    const own = server.createClient();
    const store = new RedisEventStore(own, { layout: 'timeline', prefix: freshPrefix() });
    const tail = store.tail('gone', { pollIntervalMs: 10 });
    const next = tail.next();
    await delay(30);
    own.disconnect();
    await expect(next).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_CLOSED' });
  });

  it('ends with ERR_EVENT_STORE_CLOSED when its client is closed before the tail started', async () => {
    const own = server.createClient();
    const store = new RedisEventStore(own, { layout: 'timeline', prefix: freshPrefix() });
    const tail = store.tail('gone', { pollIntervalMs: 10 });
    own.disconnect(); // the start (its first command) has not been answered
    await expect(tail.next()).rejects.toMatchObject({ code: 'ERR_EVENT_STORE_CLOSED' });
  });

  it('waits out a server that is down when the tail starts', async () => {
    const later = await spawnRedis();
    const store = new RedisEventStore(later.createClient(), { layout: 'timeline', prefix: freshPrefix() });
    await later.kill();
    const tail = store.tail('late-start', { pollIntervalMs: 20 });
    const first = tail.next();
    await delay(200);
    await later.start();
    await expect.poll(() => succeeds(store.storeEvent({ name: 'late-start', payload: 'x' }))).toBe(true);
    expect((await first).value?.payload).toBe('x');
    await tail.close();
    await later.stop();
  });

  it('skips entries that expired before the tail read them', async () => {
    const store = new RedisEventStore(client, { prefix: freshPrefix(), eventTtl: 200 });
    const old = await store.storeEvent({ name: 'late', payload: 'old' });
    await delay(300);
    const fresh: StoredEvent = await store.storeEvent({ name: 'late', payload: 'fresh' });
    const tail = store.tail('late', { after: `${old.timestamp.getTime() - 1}-0`, blockMs: 200 });
    expect((await tail.next()).value?.id).toBe(fresh.id);
    await tail.close();
  });
});

describe('timeline layout specifics', () => {
  it('formats times in Lua exactly as Go does', async () => {
    const seconds = fc.integer({ min: 0, max: 253_402_300_799 });
    const nanos = fc.oneof(fc.integer({ min: 0, max: 999_999_999 }), fc.constant(0), fc.constant(100_000_000));
    const samples = fc.sample(fc.tuple(seconds, nanos), 2000);
    const script = `${LUA_RFC3339}
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = rfc3339(tonumber(ARGV[i]), tonumber(ARGV[i + 1])) end
return out`;
    const args = samples.flat();
    const formatted = (await client.eval(script, 0, ...args)) as string[];
    expect(formatted).toEqual(samples.map(([s, f]) => formatRfc3339Nano(`${BigInt(s) * 1_000_000_000n + BigInt(f)}`)));
  });

  it('keeps ids growing after a clear, even when the clock is behind them', async () => {
    const prefix = freshPrefix();
    const store = new RedisEventStore(client, { layout: 'timeline', prefix });
    const future = (BigInt(Date.now()) + 60_000n) * 1_000_000n;
    await client.set(`${prefix}:f:${future}`, '{"name":"f","payload":0,"timestamp":"x"}', 'PX', 60_000);
    await client.rpush(`${prefix}:f:timeline`, `${prefix}:f:${future}`);
    await store.clearEvents('f');
    expect(await client.get(`${prefix}:f:floor`)).toBe(`${future}`);
    const next = await store.storeEvent({ name: 'f', payload: 1 });
    expect(next.id).toBe(`${future + 1n}`);
    // Formatted in Lua (a minute ahead: not the second the client guessed), as Go would.
    expect(await client.get(`${prefix}:f:${next.id}`)).toBe(
      `{"name":"f","payload":1,"timestamp":"${formatRfc3339Nano(next.id)}"}`,
    );
  });

  it('writes the same timestamp whether the client guessed the server second right or not', async () => {
    const prefix = freshPrefix();
    const list = `${prefix}:g:timeline`;
    const head = '{"name":"g","payload":1,"timestamp":"';
    const append = TIMELINE_SCRIPTS[0] as (typeof TIMELINE_SCRIPTS)[number];
    const seconds = String((await client.time())[0]);
    const right = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
    const ids: string[] = [];
    for (const [second, dateTime] of [
      [seconds, right], // the fast path (unless the second turned meanwhile)
      ['0', '1970-01-01T00:00:00'], // wrong: Lua formats
    ] as const) {
      ids.push((await client.eval(append.source, 1, list, 60_000, 1000, head, '', second, dateTime)) as string);
    }
    for (const id of ids) {
      expect(await client.get(`${prefix}:g:${id}`)).toBe(`${head}${formatRfc3339Nano(id)}"}`);
    }
  });

  it('gives the index the TTL of its newest event', async () => {
    const prefix = freshPrefix();
    const store = new RedisEventStore(client, { layout: 'timeline', prefix, eventTtl: 60_000 });
    await store.storeEvent({ name: 'ttl', payload: 1 });
    const listTtl = await client.pttl(`${prefix}:ttl:timeline`);
    expect(listTtl).toBeGreaterThan(50_000);
    expect(listTtl).toBeLessThanOrEqual(60_000);
  });
});
