#!/usr/bin/env node
// The `redis-events` binary: Ctrl-C (or SIGTERM) asks the running command to stop cleanly, and
// the exit code says which signal it was (130, 143); a second one exits at once.
import { StopRequest } from './errors.ts';
import { main } from './main.ts';

const controller = new AbortController();
let interrupts = 0;
let firstStop: StopRequest | undefined;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    interrupts++;
    const stop = new StopRequest(signal);
    if (interrupts > 1) process.exit((firstStop ?? stop).exitCode);
    firstStop = stop;
    controller.abort(stop);
  });
}
const code = await main(process.argv.slice(2), { signal: controller.signal });
process.exitCode = code;
// Everything the command opened is closed by now; should a library still hold a handle (a timer,
// a socket in its teardown), the command's result is already final, so do not let it keep the
// process alive. Output written before is flushed first.
process.stdout.write('', () => {
  setTimeout(() => {
    if (process.env.REDIS_EVENTS_DEBUG) {
      const handles = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo();
      process.stderr.write(`redis-events: exiting with ${handles.length} handles still open: ${handles.join(', ')}\n`);
    }
    process.exit(code);
  }, 500).unref();
});
