// The soak: publishing, streaming and syncing for a few minutes while the testkit proxy cuts and
// pauses connections and the server restarts (AOF, fsync always, so acknowledged writes survive).
// Each client runs in its own process, so its memory is its own. Bounded in time and in faults.
//
//   pnpm soak                        # 5 minutes
//   pnpm soak --minutes 1            # shorter (pnpm soak -- --minutes 1 works too)
//
// Prints a report: acknowledged messages lost (must be 0), duplicates (allowed where delivery is
// at-least-once), subscriptions restored, and each client's memory at start and end; then one
// JSON line (`{"soak":...}`) with the same figures, for comparing runs. Exits 1 when anything was
// lost or a worker failed.
import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnRedis, startProxy } from '@redis-events/testkit';

// pnpm 12 hands a script `--` as an argument of its own (`pnpm soak -- --minutes 1`)
const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    minutes: { type: 'string', default: '5' },
    'fault-every': { type: 'string', default: '10' },
    workers: { type: 'string', default: 'streams,databroker,pubsub' },
    report: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error(`--minutes must be a positive number (fractions allowed, e.g. 0.5), not "${values.minutes}"`);
  process.exit(2);
}
const faultEvery = Number(values['fault-every']) * 1000;
const kinds = String(values.workers).split(',');

const log = (text: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

const server = await spawnRedis({ persistence: 'aof' });
const proxy = await startProxy({ target: server });
const proxyUrl = `redis://${proxy.host}:${proxy.port}`;
log(
  `${server.version.text} on ${server.port}, proxy on ${proxy.port}; ${minutes} min, a fault every ~${faultEvery / 1000} s`,
);

interface FinalReport {
  counters: Record<string, number>;
  memoryStart: { rssMiB: number; heapMiB: number };
  memoryEnd: { rssMiB: number; heapMiB: number };
}
interface WorkerState {
  child: ChildProcess;
  last?: Record<string, number> | undefined;
  final?: FinalReport | undefined;
  error?: string | undefined;
}
const workers = new Map<string, WorkerState>();
for (const kind of kinds) {
  const child = fork(join(import.meta.dirname, `worker-${kind}.ts`), [proxyUrl, server.url], {
    execArgv: ['--conditions=@redis-events/source', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const state: WorkerState = { child };
  child.on('exit', (code) => {
    if (code !== 0 && !state.error) state.error = `exited with code ${code}`;
  });
  child.on(
    'message',
    (message: { type: string; counters?: Record<string, number>; message?: string } & Record<string, unknown>) => {
      if (message.type === 'stats' && message.counters) state.last = message.counters;
      if (message.type === 'final') state.final = message as unknown as FinalReport;
      if (message.type === 'error') state.error = message.message ?? 'failed';
    },
  );
  workers.set(kind, state);
}

const faults = { cut: 0, pause: 0, restart: 0 };
const endAt = Date.now() + minutes * 60_000;
let round = 0;
while (Date.now() < endAt) {
  await new Promise((r) => setTimeout(r, faultEvery * (0.5 + Math.random())));
  if (Date.now() >= endAt) break;
  const fault = (['cut', 'pause', 'restart'] as const)[round++ % 3] ?? 'cut';
  if (fault === 'cut') proxy.cut();
  else if (fault === 'pause') {
    proxy.pause();
    await new Promise((r) => setTimeout(r, 2_000));
    proxy.resume();
  } else await server.restart();
  faults[fault]++;
  log(`${fault}; ${[...workers].map(([k, w]) => `${k} ${JSON.stringify(w.last ?? {})}`).join(' | ')}`);
}

log('stopping the producers and draining');
// Draining is bounded: a worker that has not ended a minute after the stop failed (a client that
// cannot shut down is a finding of the soak, not a reason for the soak to hang).
const DRAIN_MS = 60_000;
const running = [...workers.entries()].filter(([, w]) => w.child.exitCode === null && w.child.connected);
for (const [, w] of running) w.child.send({ type: 'stop' });
await Promise.all(
  running.map(
    ([kind, w]) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          w.error ??= `did not stop within ${DRAIN_MS / 1000} s after the stop; last counters ${JSON.stringify(w.last ?? {})}`;
          log(`${kind} ${w.error}; killing it`);
          w.child.kill('SIGKILL');
        }, DRAIN_MS);
        w.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      }),
  ),
);
await proxy.close();
await server.stop();

let failed = false;
const lines = [
  `## Soak: ${minutes} min, ${server.version.text}`,
  '',
  `Faults: ${faults.cut} connection cuts, ${faults.pause} pauses of 2 s, ${faults.restart} server restarts (AOF, fsync always).`,
  '',
  '| client | counters | memory after warm-up → at the end (RSS / heap after GC) |',
  '|---|---|---|',
];
for (const [kind, w] of workers) {
  if (w.error || !w.final) {
    failed = true;
    lines.push(`| ${kind} | FAILED: ${(w.error ?? 'no final report').split('\n')[0]} | |`);
    continue;
  }
  const c = w.final.counters;
  // Pub/Sub may lose messages in a gap (at most once), but never duplicate or reorder them, and
  // every fault must end with the subscription restored.
  if ((c.lost ?? 0) > 0 || (c.ackedCameBack ?? 0) > 0 || (c.outOfOrder ?? 0) > 0) failed = true;
  if (kind === 'pubsub' && ((c.duplicates ?? 0) > 0 || (c.subscriptionsRestored ?? 0) < faults.cut + faults.restart))
    failed = true;
  lines.push(
    `| ${kind} | ${Object.entries(c)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )} | ${w.final.memoryStart.rssMiB} → ${w.final.memoryEnd.rssMiB} MiB / ${w.final.memoryStart.heapMiB} → ${w.final.memoryEnd.heapMiB} MiB |`,
  );
}
lines.push(
  '',
  failed
    ? '**FAILED**: something was lost, came back after its ack, or a worker failed.'
    : 'Nothing acknowledged was lost.',
);
const report = lines.join('\n');
console.log(report);
if (values.report) writeFileSync(values.report, `${report}\n`);
const summary = {
  soak: {
    minutes,
    server: server.version.text,
    faults,
    passed: !failed,
    clients: Object.fromEntries(
      [...workers].map(([kind, w]) => [
        kind,
        w.final
          ? { counters: w.final.counters, memoryStart: w.final.memoryStart, memoryEnd: w.final.memoryEnd }
          : { error: (w.error ?? 'no final report').split('\n')[0] },
      ]),
    ),
  },
};
console.log(JSON.stringify(summary));
process.exitCode = failed ? 1 : 0;
