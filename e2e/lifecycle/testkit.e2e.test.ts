// The lifecycle rows of @redis-events/testkit: connectRedis (a server given by URL) under each
// connection fault, and spawnRedis (its start, a waiting call) aborted or with its server killed
// before it is ready. The testkit's stop() abandons nothing, so the close row does not apply.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, expect } from 'vitest';
import { lifecycleMatrix, type ScenarioEnv } from './harness.ts';

// connectRedis gives up when the server has not answered its first command within
// connectTimeoutMs (2 s here); a refused connection or a rejected handshake fails at once.
const CONNECT_TIMEOUT = 2_000;
const CONNECT_BOUND = CONNECT_TIMEOUT + 2_000;

// A server binary that answers --version, writes its pid, and never becomes ready: a start that
// is still waiting when the row aborts it or kills the process.
const dir = mkdtempSync(join(tmpdir(), 'lifecycle-testkit-'));
const neverReady = join(dir, 'redis-server');
const pidFile = join(dir, 'pid');
writeFileSync(
  neverReady,
  `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Redis server v=7.2.0 sha=0 malloc=libc bits=64"; exit 0; fi\necho $$ > '${pidFile}'\nexec sleep 600\n`,
);
chmodSync(neverReady, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Resolves with the pid of the never-ready server once it runs (the start is waiting). */
async function started(): Promise<number> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      if (pid > 0) return pid;
    } catch {
      // not yet written
    }
    if (performance.now() > deadline) throw new Error('the never-ready server did not start');
    await sleep(10);
  }
}

/** Connects to `url` as a server the testkit did not start; closed by the harness after the row. */
async function connect(env: ScenarioEnv, url: string): Promise<void> {
  env.trigger();
  const server = await connectRedis(url, { connectTimeoutMs: CONNECT_TIMEOUT });
  env.defer(() => server.stop());
}

lifecycleMatrix('testkit', {
  'nothing listening': {
    operation: 'connectRedis(url)',
    code: 'ERR_TESTKIT_START',
    withinMs: CONNECT_BOUND,
    run: async (env) => connect(env, (await env.nothingListening()).url),
    check: (err) => expect(err.message).toMatch(/cannot reach the server at .*127\.0\.0\.1:\d+.*ECONNREFUSED/),
  },
  'black hole': {
    operation: 'connectRedis(url)',
    code: 'ERR_TESTKIT_START',
    withinMs: CONNECT_BOUND,
    run: async (env) => connect(env, (await env.blackHole()).url),
    check: (err) => expect(err.message).toMatch(/cannot reach the server at 127\.0\.0\.1:\d+: no reply within 2000 ms/),
  },
  'wrong password': {
    operation: 'connectRedis(url)',
    code: 'ERR_TESTKIT_START',
    withinMs: CONNECT_BOUND,
    run: async (env) => connect(env, (await env.wrongPassword()).url),
    check: (err) => expect(err.message).toMatch(/WRONGPASS/),
  },
  'ACL user missing a command': {
    operation: 'connectRedis(url) (reads INFO)',
    code: 'ERR_TESTKIT_START',
    withinMs: CONNECT_BOUND,
    run: async (env) => connect(env, (await env.aclUserWithout('info')).url),
    check: (err) => expect(err.message).toMatch(/NOPERM/),
  },
  'abort mid-call': {
    operation: 'spawnRedis({ signal })',
    code: 'ERR_TESTKIT_ABORTED',
    withinMs: 2_000,
    setup: async () => rmSync(pidFile, { force: true }),
    run: async (env) => {
      const controller = new AbortController();
      const starting = spawnRedis({ binary: neverReady, startTimeoutMs: 600_000, signal: controller.signal });
      starting.catch(() => {});
      const pid = await started();
      env.trigger();
      controller.abort(new Error('the test gave up'));
      try {
        await starting;
      } finally {
        env.defer(() => expect(isRunning(pid)).toBe(false));
      }
    },
    check: (err) => expect(err.message).toMatch(/^starting redis 7\.2\.0 on port \d+ was aborted$/),
  },
  'close with work in flight': {
    operation: 'server.stop()',
    code: '-',
    withinMs: 0,
    notApplicable:
      'stop() abandons nothing: it ends its server (SIGTERM, SIGKILL after 5 s, with a warning to the logger) and resolves',
    run: async () => undefined,
  },
  'server killed mid-call': {
    operation: 'spawnRedis() (kill -9 before ready)',
    code: 'ERR_TESTKIT_START',
    withinMs: 2_000,
    setup: async () => rmSync(pidFile, { force: true }),
    run: async (env) => {
      const starting = spawnRedis({ binary: neverReady, startTimeoutMs: 600_000 });
      starting.catch(() => {});
      const pid = await started();
      env.trigger();
      process.kill(pid, 'SIGKILL');
      await starting;
    },
    check: (err) => expect(err.message).toMatch(/exited while starting \(SIGKILL\)/),
  },
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
