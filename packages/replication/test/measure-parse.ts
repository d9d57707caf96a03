// Run as its own process by memory.test.ts: parses one RDB file and prints what it found and
// the process' peak resident memory, so the figure holds nothing but the parse.
import { parseRdbFile } from '../src/index.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: measure-parse.ts <file.rdb>');
// With --expose-gc, the live heap is sampled after a full collection every 50,000 events: what the
// parser really holds, apart from garbage V8 has not collected yet.
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
const started = performance.now();
for await (const event of parseRdbFile(path)) {
  if (gc && ++events % 50_000 === 0) {
    gc();
    maxLiveHeap = Math.max(maxLiveHeap, process.memoryUsage().heapUsed - baselineHeap);
  }
  if (event.kind !== 'entry') continue;
  parts++;
  if (event.last) keys++;
  const size = Array.isArray(event.value) ? event.value.length : Buffer.isBuffer(event.value) ? event.value.length : 0;
  maxPart = Math.max(maxPart, size);
  if (event.type === 'hash' && event.key.toString() === 'big:hash') hashFields += event.value.length;
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ keys, parts, maxPart, hashFields, baselineRss, peakRss: process.resourceUsage().maxRSS * 1024, maxLiveHeap, seconds })}\n`,
);
