import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { EventStoreError, PublishError } from '../src/errors.ts';
import type { Event, EventStore, StoredEvent } from '../src/event.ts';
import { Mediator } from '../src/mediator.ts';
import { RedisEventStore } from '../src/redis-event-store.ts';
import { freshPrefix } from './helpers.ts';

/** An event store in memory, recording what happens to it. */
class MemoryStore implements EventStore {
  readonly events: StoredEvent[] = [];
  readonly log: string[];
  failWith: Error | undefined;

  constructor(log: string[] = []) {
    this.log = log;
  }

  async storeEvent(event: Event): Promise<StoredEvent> {
    this.log.push(`store ${event.name}`);
    if (this.failWith) throw this.failWith;
    const stored = { ...event, id: String(this.events.length + 1), timestamp: new Date() };
    this.events.push(stored);
    return stored;
  }

  async getEvents(name: string, limit = 0): Promise<StoredEvent[]> {
    const all = this.events.filter((e) => e.name === name).reverse();
    return limit > 0 ? all.slice(0, limit) : all;
  }

  async clearEvents(name: string): Promise<void> {
    this.events.splice(0, this.events.length, ...this.events.filter((e) => e.name !== name));
  }
}

describe('Mediator', () => {
  it('runs the handlers of a name in registration order, then stores the event in every store', async () => {
    const log: string[] = [];
    const mediator = new Mediator();
    const first = new MemoryStore(log);
    const second = new MemoryStore(log);
    mediator.registerEventStore(first);
    mediator.registerEventStore(second);
    mediator.subscribe('user.created', async (event) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      log.push(`a ${JSON.stringify(event.payload)}`);
    });
    mediator.subscribe('user.created', () => {
      log.push('b');
    });
    mediator.subscribe('other', () => {
      log.push('other');
    });
    const stored = await mediator.publish({ name: 'user.created', payload: { id: 1 } });
    expect(log).toEqual(['a {"id":1}', 'b', 'store user.created', 'store user.created']);
    expect(stored).toHaveLength(2);
    expect(first.events).toHaveLength(1);
    expect(second.events).toHaveLength(1);
  });

  it('stores an event without handlers, or refuses it with requireHandlers like the Go mediator', async () => {
    const store = new MemoryStore();
    const lenient = new Mediator();
    lenient.registerEventStore(store);
    await lenient.publish({ name: 'nobody.listens', payload: null });
    expect(store.events).toHaveLength(1);

    const strict = new Mediator({ requireHandlers: true });
    strict.registerEventStore(store);
    await expect(strict.publish({ name: 'nobody.listens', payload: null })).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_NO_HANDLERS',
    });
    expect(store.events).toHaveLength(1);
  });

  it('runs every handler and stores the event even when handlers fail, then reports all failures', async () => {
    const log: string[] = [];
    const mediator = new Mediator();
    const good = new MemoryStore(log);
    const bad = new MemoryStore(log);
    bad.failWith = new Error('disk full');
    mediator.registerEventStore(good);
    mediator.registerEventStore(bad);
    mediator.subscribe('x', () => {
      throw new Error('handler one broke');
    });
    mediator.subscribe('x', () => {
      log.push('second handler ran');
    });
    const err = await mediator.publish({ name: 'x', payload: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect(err).toBeInstanceOf(EventStoreError);
    const publishError = err as PublishError;
    expect(publishError.code).toBe('ERR_EVENT_STORE_PUBLISH');
    expect(publishError.handlerErrors.map((e) => (e as Error).message)).toEqual(['handler one broke']);
    expect(publishError.storeErrors.map((e) => (e as Error).message)).toEqual(['disk full']);
    expect(publishError.stored).toHaveLength(1);
    expect(publishError.cause).toBe(publishError.handlerErrors[0]);
    expect(publishError.message).toBe(
      'publishing "x": 1 of 2 handlers failed (first: handler one broke); 1 of 2 stores failed (first: disk full); every handler ran and every store was tried, see handlerErrors and storeErrors',
    );
    expect(log).toEqual(['second handler ran', 'store x', 'store x']);
    expect(good.events).toHaveLength(1);
  });

  it('unsubscribes and unregisters', async () => {
    const mediator = new Mediator();
    const store = new MemoryStore();
    const calls: number[] = [];
    const handler = (): void => {
      calls.push(1);
    };
    const offA = mediator.subscribe('e', handler);
    mediator.subscribe('e', handler); // the same function twice: it runs twice
    expect(mediator.handlerCount('e')).toBe(2);
    const unregister = mediator.registerEventStore(store);
    await mediator.publish({ name: 'e', payload: 0 });
    expect(calls).toHaveLength(2);
    offA();
    offA(); // a second call does nothing
    expect(mediator.handlerCount('e')).toBe(1);
    unregister();
    expect(mediator.eventStores).toEqual([]);
    await mediator.publish({ name: 'e', payload: 0 });
    expect(calls).toHaveLength(3);
    expect(store.events).toHaveLength(1);
  });

  it('lets a handler unsubscribe while the event is being published', async () => {
    const mediator = new Mediator();
    const seen: string[] = [];
    const off = mediator.subscribe('e', () => {
      seen.push('first');
      off();
    });
    mediator.subscribe('e', () => {
      seen.push('second');
    });
    await mediator.publish({ name: 'e', payload: 0 });
    await mediator.publish({ name: 'e', payload: 0 });
    expect(seen).toEqual(['first', 'second', 'second']);
  });

  it('refuses bad arguments', () => {
    const mediator = new Mediator();
    const code = { code: 'ERR_EVENT_STORE_ARGUMENT' };
    expect(() => mediator.subscribe('', () => {})).toThrow(expect.objectContaining(code));
    expect(() => mediator.subscribe('x', 'nope' as never)).toThrow(expect.objectContaining(code));
    expect(() => mediator.registerEventStore({} as never)).toThrow(expect.objectContaining(code));
    return expect(mediator.publish({ name: '', payload: 1 })).rejects.toMatchObject(code);
  });

  it('types payloads by event name', () => {
    type Events = { 'user.created': { id: number }; 'user.deleted': { id: number; reason: string } };
    const mediator = new Mediator<Events>();
    mediator.subscribe('user.deleted', (event) => {
      expectTypeOf(event.payload).toEqualTypeOf<{ id: number; reason: string }>();
    });
    expectTypeOf(mediator.publish<'user.created'>)
      .parameter(0)
      .toEqualTypeOf<{ readonly name: 'user.created'; readonly payload: { id: number } }>();
    // @ts-expect-error: the payload does not match the name
    void mediator.publish({ name: 'user.created', payload: { id: 'one' } }).catch(() => {});
  });
});

describe('Mediator with a RedisEventStore', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server?.stop());

  it('stores published events in Redis, newest first', async () => {
    const store = new RedisEventStore(server.createClient(), { prefix: freshPrefix() });
    const mediator = new Mediator<{ 'user.created': { id: number } }>();
    mediator.registerEventStore(store);
    const handled: number[] = [];
    mediator.subscribe('user.created', (event) => {
      handled.push(event.payload.id);
    });
    const [stored] = await mediator.publish({ name: 'user.created', payload: { id: 1 } });
    await mediator.publish({ name: 'user.created', payload: { id: 2 } });
    expect(handled).toEqual([1, 2]);
    const events = await store.getEvents<{ id: number }>('user.created');
    expect(events.map((e) => e.payload.id)).toEqual([2, 1]);
    expect(events[1]?.id).toBe(stored?.id);
    await store.close();
  });

  it('checks the event with the store before any handler runs', async () => {
    const store = new RedisEventStore(server.createClient(), { prefix: freshPrefix() });
    const mediator = new Mediator();
    mediator.registerEventStore(store);
    let ran = false;
    mediator.subscribe('order.paid', () => {
      ran = true;
    });
    await expect(mediator.publish({ name: 'order.paid', payload: { amount: 5n } })).rejects.toMatchObject({
      code: 'ERR_EVENT_STORE_PAYLOAD',
      message: expect.stringMatching(/^event "order.paid": payload\.amount is a BigInt/),
    });
    expect(ran).toBe(false);
    expect(await store.count('order.paid')).toBe(0);
    await store.close();
  });
});
