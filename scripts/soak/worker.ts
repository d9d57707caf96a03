// The frame of a soak worker process: it receives the proxy URL, reports counters to the parent
// over IPC every few seconds with its memory use, and stops on the parent's "stop" message.
export interface WorkerContext {
  readonly proxyUrl: string;
  readonly directUrl: string;
  /** Aborted when the parent asks the worker to stop producing and drain. */
  readonly stopSignal: AbortSignal;
  /**
   * Runs `fn` once the stop is asked, or at once when it already was: a stop can come while a
   * worker is still setting up (a short soak on a loaded machine), and a listener added to an
   * aborted signal never runs.
   */
  onStop(fn: () => void): void;
  report(counters: Record<string, number>): void;
}

function memory(): { rssMiB: number; heapMiB: number } {
  // Collect first when allowed (--expose-gc), so the heap figure is what is retained.
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rssMiB: Math.round(m.rss / 1048576), heapMiB: Math.round(m.heapUsed / 1048576) };
}

export async function runWorker(
  name: string,
  body: (context: WorkerContext) => Promise<Record<string, number>>,
): Promise<void> {
  const send = (message: unknown) => process.send?.(message);
  const stop = new AbortController();
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') stop.abort();
  });
  const startMemory = { value: memory() };
  setTimeout(() => {
    startMemory.value = memory(); // after warm-up
  }, 5_000).unref();
  try {
    const final = await body({
      proxyUrl: process.argv[2] ?? '',
      directUrl: process.argv[3] ?? '',
      stopSignal: stop.signal,
      onStop: (fn) => {
        if (stop.signal.aborted) fn();
        else stop.signal.addEventListener('abort', fn, { once: true });
      },
      report: (counters) => send({ type: 'stats', name, counters, memory: memory() }),
    });
    send({ type: 'final', name, counters: final, memoryStart: startMemory.value, memoryEnd: memory() });
  } catch (err) {
    send({ type: 'error', name, message: (err as Error).stack ?? String(err) });
    process.exitCode = 1;
  }
  process.disconnect?.();
}
