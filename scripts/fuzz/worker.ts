// Runs one fuzz target in a worker thread for fuzz.ts. Before each check it copies the input into
// the shared buffer and bumps the counter, so that the main thread can name the input of a check
// that hangs or runs out of memory even after terminating this thread.
import { parentPort, workerData } from 'node:worker_threads';
import { type FuzzSummary, runFuzz } from './engine.ts';
import { TARGETS } from './targets.ts';

export interface WorkerData {
  readonly target: string;
  readonly seed: number;
  readonly deadline: number;
  readonly maxLength: number;
  readonly slowMs: number;
  /** Ids of inputs not to check (they hung or crashed a worker before). */
  readonly skip: readonly string[];
  /** Int32 [checks started, current input length], then the input bytes. */
  readonly shared: SharedArrayBuffer;
}

export type WorkerMessage =
  | { readonly type: 'progress'; readonly summary: FuzzSummary }
  | { readonly type: 'done'; readonly summary: FuzzSummary };

const data = workerData as WorkerData;
const load = TARGETS[data.target];
if (load === undefined) throw new Error(`no fuzz target ${data.target}`);
const target = await load();
const header = new Int32Array(data.shared, 0, 2);
const bytes = new Uint8Array(data.shared, 8);
const summary = runFuzz(target, {
  seed: data.seed,
  deadline: data.deadline,
  maxLength: data.maxLength,
  slowMs: data.slowMs,
  skip: new Set(data.skip),
  progressEvery: 2000,
  beforeCheck: (input) => {
    const n = Math.min(input.length, bytes.length);
    bytes.set(input.subarray(0, n));
    Atomics.store(header, 1, n);
    Atomics.add(header, 0, 1);
  },
  onProgress: (s) => parentPort?.postMessage({ type: 'progress', summary: s } satisfies WorkerMessage),
});
parentPort?.postMessage({ type: 'done', summary } satisfies WorkerMessage);
