import { createHook } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SpawnedRedis, type SpawnRedisOptions, spawnRedis } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { type Message, type RetryEvent, StreamsError, type Subscription } from '../src/index.ts';

export { sleep };

/** Polls until `check` is true, failing with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Records the timers created from now on; `pending()` lists those still armed and keeping the
 * process alive (ref'd), each with the stack that created it.
 */
export function trackTimers(): { pending(): string[]; stop(): void } {
  type Timer = { hasRef?: () => boolean; _destroyed?: boolean };
  const live = new Map<number, { timer: Timer; stack: string }>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      const stack = (new Error().stack ?? '').split('\n').slice(4, 10).join('\n');
      live.set(id, { timer: resource as Timer, stack });
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return {
    // The destroy hook of a cleared timer runs later (on a loaded machine, after the check):
    // a cleared or fired timer is marked _destroyed at once.
    pending: () =>
      [...live.values()]
        .filter(({ timer }) => timer.hasRef?.() !== false && timer._destroyed !== true)
        .map(({ stack }) => stack),
    stop: () => hook.disable(),
  };
}

/** Receives `count` messages, failing when they do not come within `timeoutMs`. */
export async function receiveN(sub: Subscription, count: number, timeoutMs = 15_000): Promise<Message[]> {
  const out: Message[] = [];
  const signal = AbortSignal.timeout(timeoutMs);
  const events: string[] = [];
  const onRetry = (e: RetryEvent) => events.push(`${e.operation}: ${e.error.message}`);
  sub.on('retry', onRetry);
  try {
    while (out.length < count) out.push(await sub.receive({ signal }));
  } catch (err) {
    // Say what the subscription went through, so that a failure on a loaded machine explains itself.
    throw new Error(
      `received ${out.length} of ${count}: ${String(err)}; stats ${JSON.stringify(sub.stats)}; retries: ${events.slice(-5).join(' | ') || 'none'}`,
      { cause: err },
    );
  } finally {
    sub.off('retry', onRetry);
  }
  return out;
}

/**
 * Receives and acks until every body in `expected` was seen at least once; returns how often each
 * body came (duplicates are allowed: at-least-once).
 */
export async function consumeAll(
  subs: readonly Subscription[],
  expected: ReadonlySet<string>,
  timeoutMs = 20_000,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const done = new AbortController();
  const signal = AbortSignal.any([done.signal, AbortSignal.timeout(timeoutMs)]);
  const acks: Promise<void>[] = [];
  const missing = () => [...expected].filter((b) => !seen.has(b));
  let left = expected.size;
  await Promise.all(
    subs.map(async (sub) => {
      while (left > 0) {
        let m: Message;
        try {
          m = await sub.receive({ signal });
        } catch (err) {
          if (left === 0) return;
          throw new Error(
            `${missing().length} of ${expected.size} messages never arrived (${missing().slice(0, 5).join(', ')}...): ${String(err)}`,
          );
        }
        const body = m.body.toString();
        const count = seen.get(body) ?? 0;
        seen.set(body, count + 1);
        if (count === 0 && expected.has(body)) left--;
        acks.push(m.ack());
        if (left === 0) done.abort();
      }
    }),
  );
  await Promise.all(acks);
  return seen;
}

/** Bodies `${prefix}0` ... `${prefix}${n - 1}`. */
export function bodies(n: number, prefix = 'm'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/** A server spawned for the whole test file and a client of it, read after beforeAll ran. */
export function useServer(options: SpawnRedisOptions = {}): { readonly server: SpawnedRedis; readonly redis: Redis } {
  let server: SpawnedRedis | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    server = await spawnRedis(options);
    redis = server.createClient();
  });
  afterAll(() => server?.stop());
  return {
    get server() {
      if (!server) throw new Error('useServer() is read before beforeAll ran');
      return server;
    },
    get redis() {
      if (!redis) throw new Error('useServer() is read before beforeAll ran');
      return redis;
    },
  };
}

/** The StreamsError code a promise rejects with, or undefined when it resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return err instanceof StreamsError ? err.code : `not a StreamsError: ${String(err)}`;
  }
  return undefined;
}

/** go-cloud drivertest's "weird strings": separators, dots, quotes, spaces, digits, non-ASCII, all of ASCII. */
export const WEIRD_STRINGS: readonly string[] = [
  'simple',
  'has/slashes/in/it',
  'has/../dots',
  'has\\backslashes',
  'has"quotes\'',
  'has spaces',
  '0startswithdigit',
  '☺☺☺',
  ...Array.from({ length: 8 }, (_, chunk) =>
    String.fromCharCode(...Array.from({ length: 16 }, (_, i) => chunk * 16 + i)),
  ),
];
