// What measure-parse.ts and measure-live.ts report: counts of the entries that came, and the
// process' memory while they came. With --expose-gc, the live heap is sampled after a full
// collection every 50,000 events: what the parser really holds, apart from garbage V8 has not
// collected yet.
import type { ReplicationEvent } from '../src/index.ts';

export interface EventMeasure {
  keys: number;
  parts: number;
  maxPart: number;
  hashFields: number;
  rdbBytes: number;
  baselineRss: number;
  peakRss: number;
  maxLiveHeap: number;
  seconds: number;
}

export async function measureEvents(events: () => AsyncIterable<ReplicationEvent>): Promise<EventMeasure> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baselineRss = process.memoryUsage.rss();
  const baselineHeap = process.memoryUsage().heapUsed;
  const m = { keys: 0, parts: 0, maxPart: 0, hashFields: 0, rdbBytes: 0, maxLiveHeap: 0 };
  let count = 0;
  const started = performance.now();
  for await (const event of events()) {
    if (gc && ++count % 50_000 === 0) {
      gc();
      m.maxLiveHeap = Math.max(m.maxLiveHeap, process.memoryUsage().heapUsed - baselineHeap);
    }
    if (event.kind === 'end') m.rdbBytes = event.size;
    if (event.kind !== 'entry') continue;
    m.parts++;
    if (event.last) m.keys++;
    const size = Array.isArray(event.value)
      ? event.value.length
      : Buffer.isBuffer(event.value)
        ? event.value.length
        : 0;
    m.maxPart = Math.max(m.maxPart, size);
    if (event.type === 'hash' && event.key.toString() === 'big:hash') m.hashFields += event.value.length;
  }
  const seconds = (performance.now() - started) / 1000;
  return { ...m, baselineRss, peakRss: process.resourceUsage().maxRSS * 1024, seconds };
}
