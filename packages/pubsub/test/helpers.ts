// Shared helpers of the pubsub tests.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisCluster, SpawnedRedis } from '@redis-events/testkit';
import { afterEach } from 'vitest';
import { createPubSubClient, type PubSubClient } from '../src/client.ts';
import { keySlot } from '../src/key-slot.ts';
import type { PubSubGap } from '../src/message-buffer.ts';
import type { PubSubClientOptions } from '../src/options.ts';
import type { PubSubMessage, Subscription, SubscriptionEvent } from '../src/subscription.ts';

/** Waits until `check()` is true, polling; fails with `what` after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A read that timed out is still waiting in the subscription: the next call takes it over. */
const outstanding = new WeakMap<object, Promise<IteratorResult<unknown, undefined>>>();

/** The next event of a subscription, or a failure after `ms` (the read stays pending for the next call). */
export async function nextEvent<P extends string | Buffer>(
  subscription: Subscription<P>,
  ms = 5_000,
): Promise<IteratorResult<SubscriptionEvent<P>, undefined>> {
  let read = outstanding.get(subscription) as Promise<IteratorResult<SubscriptionEvent<P>, undefined>> | undefined;
  if (read === undefined) {
    read = subscription.next();
    outstanding.set(subscription, read);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
  });
  try {
    const result = await Promise.race([read, timeout]);
    outstanding.delete(subscription);
    return result;
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('no event within'))) outstanding.delete(subscription);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads events until `count` messages arrived; returns the messages and the gaps seen on the way. */
export async function readMessages<P extends string | Buffer>(
  subscription: Subscription<P>,
  count: number,
  ms = 10_000,
): Promise<{ messages: PubSubMessage<P>[]; gaps: PubSubGap[] }> {
  const messages: PubSubMessage<P>[] = [];
  const gaps: PubSubGap[] = [];
  const end = Date.now() + ms;
  while (messages.length < count) {
    const left = end - Date.now();
    if (left <= 0) throw new Error(`got ${messages.length} of ${count} messages within ${ms} ms`);
    const result = await nextEvent(subscription, left);
    if (result.done) throw new Error(`the subscription ended after ${messages.length} of ${count} messages`);
    if (result.value.kind === 'gap') gaps.push(result.value);
    else messages.push(result.value);
  }
  return { messages, gaps };
}

/** Reads events until a gap arrives (messages before it are returned too). */
export async function readUntilGap<P extends string | Buffer>(
  subscription: Subscription<P>,
  ms = 15_000,
): Promise<{ gap: PubSubGap; before: PubSubMessage<P>[] }> {
  const before: PubSubMessage<P>[] = [];
  const end = Date.now() + ms;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) throw new Error(`no gap within ${ms} ms`);
    const result = await nextEvent(subscription, left);
    if (result.done) throw new Error('the subscription ended before a gap');
    if (result.value.kind === 'gap') return { gap: result.value, before };
    before.push(result.value);
  }
}

/** Publishes with `publish` every `every` ms until `stop()`; returns what was published. */
export function keepPublishing(publish: (n: number) => Promise<unknown>, every = 5) {
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      await publish(n++).catch(() => {}); // publishes during an outage may fail; the test checks what arrives
      await sleep(every);
    }
  })();
  return {
    get count() {
      return n;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

/**
 * Clients made with shared defaults, closed after each test of the calling `describe` (call it
 * inside one).
 */
export function trackedClients(defaults: () => PubSubClientOptions) {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  return {
    client(options: PubSubClientOptions = {}): PubSubClient {
      const c = createPubSubClient({ ...defaults(), ...options });
      open.push(c);
      return c;
    },
    buffers(options: PubSubClientOptions = {}): PubSubClient<Buffer> {
      const c = createPubSubClient({ ...defaults(), ...options, payloads: 'buffer' });
      open.push(c);
      return c;
    },
  };
}

/** A shard channel name with `prefix` whose slot the given master owns. */
export async function channelOn(cluster: RedisCluster, node: SpawnedRedis, prefix: string): Promise<string> {
  for (let i = 0; ; i++) {
    const name = `{${prefix}${i}}`;
    if ((await cluster.ownerOf(keySlot(name))) === node) return name;
  }
}
