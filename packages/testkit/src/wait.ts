import { setTimeout as sleep } from 'node:timers/promises';
import { TestkitError } from './errors.ts';

/**
 * Polls `check` until it returns true, at most `timeoutMs`. Errors thrown by `check` count as
 * "not yet"; the last one is reported when time runs out.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const tail = last instanceof Error ? ` (last error: ${last.message})` : '';
      throw new TestkitError('ERR_TESTKIT_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${tail}`, {
        cause: last,
      });
    }
    await sleep(intervalMs);
  }
}
