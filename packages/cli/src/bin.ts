#!/usr/bin/env node
// The `redis-events` binary: Ctrl-C (or SIGTERM) asks the running command to stop cleanly; a
// second Ctrl-C exits at once.
import { main } from './main.ts';

const controller = new AbortController();
let interrupts = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort(new Error(`stopped by ${signal}`));
  });
}
process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
