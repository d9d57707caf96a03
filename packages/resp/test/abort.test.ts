// Abortable waits: prompt, typed, and leaving no listener or timer behind.
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { abortable, delay, respAbortError, throwIfAborted } from '../src/abort.ts';
import { RedisEventsError, RespError } from '../src/errors.ts';

// The timers delay() created, followed one by one: a process-wide count moves with the runner's own timers.
type TrackedTimer = NodeJS.Timeout & { _destroyed?: boolean };
let created: TrackedTimer[] = [];
function trackTimers(): void {
  created = [];
  const real = globalThis.setTimeout;
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((...args: Parameters<typeof real>) => {
    const timer = real(...args) as TrackedTimer;
    created.push(timer);
    return timer;
  }) as typeof real);
}
/** Timers created since trackTimers() that are still pending (neither fired nor cleared). */
const pending = () => created.filter((t) => t._destroyed !== true).length;
afterEach(() => {
  vi.restoreAllMocks();
});
const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

class DemoError extends RedisEventsError {
  static override readonly errorName: string = 'DemoError';
  constructor(message: string, options?: ConstructorParameters<typeof RedisEventsError>[3]) {
    super('@redis-events/demo', 'ERR_DEMO_ABORTED', message, options);
  }
}
const demoAborted = (reason: unknown) => new DemoError('the call was aborted', { cause: reason, name: 'AbortError' });

describe('respAbortError', () => {
  it("is a RespError named 'AbortError' with the reason as cause", () => {
    const reason = new Error('shutting down');
    const err = respAbortError(reason);
    expect(err).toBeInstanceOf(RespError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ERR_RESP_ABORTED', cause: reason });
    expect(err.message).toBe('the call was aborted: shutting down');
    expect(respAbortError(undefined).message).toBe('the call was aborted');
  });
});

describe('throwIfAborted', () => {
  it('throws the package error only once the signal fired', () => {
    const controller = new AbortController();
    expect(() => throwIfAborted(controller.signal, demoAborted)).not.toThrow();
    expect(() => throwIfAborted(undefined)).not.toThrow();
    controller.abort('bye');
    expect(() => throwIfAborted(controller.signal, demoAborted)).toThrow(DemoError);
    expect(() => throwIfAborted(controller.signal)).toThrow(expect.objectContaining({ code: 'ERR_RESP_ABORTED' }));
  });
});

describe('abortable', () => {
  it('settles like the promise when the signal does not fire, and removes its listener', async () => {
    const controller = new AbortController();
    await expect(abortable(Promise.resolve(7), controller.signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('no')), controller.signal)).rejects.toThrow('no');
    expect(listeners(controller.signal)).toBe(0);
    await expect(abortable(Promise.resolve('x'), undefined)).resolves.toBe('x');
  });

  it('rejects as soon as the signal fires, with the package error, and reports no unhandled rejection', async () => {
    const controller = new AbortController();
    let reject: (err: Error) => void = () => {};
    const never = new Promise<never>((_, r) => {
      reject = r;
    });
    const waiting = abortable(never, controller.signal, demoAborted);
    expect(listeners(controller.signal)).toBe(1);
    const reason = new Error('user pressed Ctrl-C');
    controller.abort(reason);
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DemoError);
    expect(err).toMatchObject({ name: 'AbortError', cause: reason });
    expect(listeners(controller.signal)).toBe(0);
    reject(new Error('late failure')); // must not surface as an unhandled rejection
    await new Promise((r) => setImmediate(r));
  });

  it('rejects at once when the signal fired before', async () => {
    const signal = AbortSignal.abort(new Error('too late'));
    const err = await abortable(new Promise(() => {}), signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ERR_RESP_ABORTED' });
    expect(listeners(signal)).toBe(0);
  });
});

describe('delay', () => {
  it('waits, then leaves no timer and no listener', async () => {
    const controller = new AbortController();
    trackTimers();
    const start = performance.now();
    await delay(20, { signal: controller.signal });
    expect(performance.now() - start).toBeGreaterThanOrEqual(15);
    expect(listeners(controller.signal)).toBe(0);
    expect(pending()).toBe(0);
  });

  it('resolves early on abort without abortError, and clears its timer', async () => {
    const controller = new AbortController();
    trackTimers();
    const waiting = delay(60_000, { signal: controller.signal });
    expect(pending()).toBe(1);
    controller.abort();
    await expect(waiting).resolves.toBeUndefined();
    expect(pending()).toBe(0);
    expect(listeners(controller.signal)).toBe(0);
  });

  it('rejects on abort with abortError, and clears its timer', async () => {
    const controller = new AbortController();
    trackTimers();
    const waiting = delay(60_000, { signal: controller.signal, abortError: demoAborted });
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toBeInstanceOf(DemoError);
    expect(pending()).toBe(0);
    await expect(delay(10, { signal: controller.signal, abortError: demoAborted })).rejects.toMatchObject({
      name: 'AbortError',
    });
    await expect(delay(60_000, { signal: controller.signal })).resolves.toBeUndefined();
    expect(pending()).toBe(0);
  });

  it('can leave the process free to exit', async () => {
    trackTimers();
    const waiting = delay(30, { unref: true });
    expect(created).toHaveLength(1);
    expect(created[0]?.hasRef()).toBe(false);
    await waiting;
    expect(pending()).toBe(0);
  });

  it('treats a negative or NaN wait as no wait', async () => {
    await expect(delay(-5)).resolves.toBeUndefined();
    await expect(delay(Number.NaN)).resolves.toBeUndefined();
  });
});
