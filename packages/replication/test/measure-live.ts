// Run as its own process by listener-memory.test.ts: a listener takes a full sync from the
// master on the given port and this prints what it received and the process' peak resident
// memory, so the figure holds nothing but the listener.
import { ReplicaListener } from '../src/index.ts';

const port = Number(process.argv[2]);
if (!port) throw new Error('usage: measure-live.ts <port>');
// With --expose-gc, the live heap is sampled after a full collection every 50,000 events.
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const baselineRss = process.memoryUsage.rss();
const baselineHeap = process.memoryUsage().heapUsed;
let maxLiveHeap = 0;
let events = 0;
let keys = 0;
let parts = 0;
let maxPart = 0;
let hashFields = 0;
let rdbBytes = 0;
const started = performance.now();
for await (const event of new ReplicaListener({ port, aof: false })) {
  if (gc && ++events % 50_000 === 0) {
    gc();
    maxLiveHeap = Math.max(maxLiveHeap, process.memoryUsage().heapUsed - baselineHeap);
  }
  if (event.kind === 'end') rdbBytes = event.size;
  if (event.kind !== 'entry') continue;
  parts++;
  if (event.last) keys++;
  const size = Array.isArray(event.value) ? event.value.length : Buffer.isBuffer(event.value) ? event.value.length : 0;
  maxPart = Math.max(maxPart, size);
  if (event.type === 'hash' && event.key.toString() === 'big:hash') hashFields += event.value.length;
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ keys, parts, maxPart, hashFields, rdbBytes, baselineRss, peakRss: process.resourceUsage().maxRSS * 1024, maxLiveHeap, seconds })}\n`,
);
