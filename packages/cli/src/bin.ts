#!/usr/bin/env node
// The `redis-events` binary: Ctrl-C (or SIGTERM) asks the running command to stop cleanly, and
// the exit code says which signal it was (130, 143); a second one exits at once, and so does a
// command that has not finished closing 2 s after the first (servers it started are ended on exit).
import { enableCompileCache } from 'node:module';

// Node keeps the compiled code of our modules (and their type-stripped source when run from
// TypeScript, as ./run demo does) in its cache folder: a second start compiles nothing. Before
// the imports below, which are therefore dynamic.
enableCompileCache();
const { StopRequest } = await import('./errors.ts');
const { main } = await import('./main.ts');

/** From the first Ctrl-C to the exit, at the latest. */
const STOP_DEADLINE_MS = 1_900;
const controller = new AbortController();
let interrupts = 0;
let firstStop: InstanceType<typeof StopRequest> | undefined;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    interrupts++;
    const stop = new StopRequest(signal);
    if (interrupts > 1) process.exit((firstStop ?? stop).exitCode);
    firstStop = stop;
    controller.abort(stop);
    setTimeout(() => {
      process.stderr.write(
        `redis-events: still closing 2 s after ${stop.message.replace('stopped by ', '')}; exiting now\n`,
      );
      process.exit(stop.exitCode);
    }, STOP_DEADLINE_MS).unref();
  });
}
const code = await main(process.argv.slice(2), { signal: controller.signal });
// Everything the command opened is closed by now and its result is final: a handle a library
// still holds (a timer, a socket in its teardown) must not keep the process alive, so exit once
// what was written has been handed to the terminal or pipe.
process.exitCode = code;
process.stdout.write('', () => process.exit(code));
setTimeout(() => process.exit(code), 500).unref();
