// The testkit keeps the lifecycle contract of every package: a bounded start whose error says why,
// `{ signal }` on what waits (rejecting with ERR_TESTKIT_ABORTED, name AbortError, and leaving no
// process behind), and an optional logger.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from '../src/cluster.ts';
import { TestkitError } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import { freePort } from '../src/ports.ts';
import { trackedPids } from '../src/processes.ts';
import { startProxy } from '../src/proxy.ts';
import { startReplicaSet } from '../src/replica-set.ts';
import { connectRedis } from '../src/server.ts';
import { spawnRedis } from '../src/spawned.ts';
import { waitFor } from '../src/wait.ts';
import { isRunning } from './helpers.ts';

let dir: string;
/** A server that answers --version and then never becomes ready. */
let neverReady: string;
/** A server that becomes ready and ignores SIGTERM. */
let stubborn: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'testkit-lifecycle-'));
  neverReady = join(dir, 'never-ready-server');
  writeFileSync(
    neverReady,
    '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Redis server v=7.2.0 sha=0 malloc=libc bits=64"; exit 0; fi\necho "starting, slowly"\nexec sleep 600\n',
  );
  chmodSync(neverReady, 0o755);
  stubborn = join(dir, 'stubborn-server');
  writeFileSync(
    stubborn,
    '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Redis server v=7.2.0 sha=0 malloc=libc bits=64"; exit 0; fi\ntrap "" TERM\necho "Ready to accept connections tcp"\nwhile :; do sleep 1; done\n',
  );
  chmodSync(stubborn, 0o755);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A logger that keeps what it is told. */
function recordingLogger(): Logger & { lines: { level: string; context: object; message: string }[] } {
  const lines: { level: string; context: object; message: string }[] = [];
  const at = (level: string) => (context: object, message: string) => lines.push({ level, context, message });
  return { lines, debug: at('debug'), warn: at('warn'), error: at('error') };
}

describe('start', () => {
  it('is bounded: a server not ready in time is killed, and the error says so with its log', async () => {
    const before = new Set(trackedPids());
    const starting = spawnRedis({ binary: neverReady, startTimeoutMs: 1_000 }).catch((e: unknown) => e);
    await waitFor('the server process', () => trackedPids().some((pid) => !before.has(pid)));
    const [pid] = trackedPids().filter((p) => !before.has(p));
    const err = await starting;
    expect(err).toBeInstanceOf(TestkitError);
    expect(err).toMatchObject({ code: 'ERR_TESTKIT_START', package: '@redis-events/testkit' });
    expect((err as Error).message).toMatch(/did not become ready within 1000 ms[\s\S]*starting, slowly/);
    expect(isRunning(pid as number)).toBe(false);
  });

  it('ends at once with a signal that already fired, starting nothing', async () => {
    const before = trackedPids().length;
    const reason = new Error('not wanted');
    const err = await spawnRedis({ signal: AbortSignal.abort(reason) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TestkitError);
    expect(err).toMatchObject({ code: 'ERR_TESTKIT_ABORTED', name: 'AbortError', cause: reason });
    expect(trackedPids().length).toBe(before);
  });

  it('ends when its signal fires while the server starts: the process is killed', async () => {
    const controller = new AbortController();
    const before = new Set(trackedPids());
    const starting = spawnRedis({ binary: neverReady, startTimeoutMs: 600_000, signal: controller.signal });
    // The condition for the abort: the server process exists (it never becomes ready).
    await waitFor('the server process', () => trackedPids().some((pid) => !before.has(pid)));
    const [pid] = trackedPids().filter((p) => !before.has(p));
    controller.abort(new Error('changed my mind'));
    const err = await starting.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TESTKIT_ABORTED', name: 'AbortError' });
    expect((err as Error).message).toMatch(/starting redis 7\.2\.0 on port \d+ was aborted/);
    await waitFor(
      'the killed process to be gone',
      () => !isRunning(pid as number) && !trackedPids().includes(pid as number),
    );
  });

  it('leaves a restart free of the signal its spawn was given', async () => {
    const controller = new AbortController();
    const server = await spawnRedis({ signal: controller.signal });
    try {
      controller.abort();
      await server.restart();
      expect(await server.command('PING')).toBe('PONG');
      const err = await server.restart({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_TESTKIT_ABORTED', name: 'AbortError' });
    } finally {
      await server.stop();
    }
  });
});

describe('waits', () => {
  it('waitFor ends with ERR_TESTKIT_ABORTED when its signal fires, before its bound', async () => {
    const controller = new AbortController();
    let polls = 0;
    const waiting = waitFor(
      'something that never happens',
      () => {
        if (++polls === 3) controller.abort();
        return false;
      },
      600_000,
      10,
      controller.signal,
    );
    await expect(waiting).rejects.toMatchObject({
      code: 'ERR_TESTKIT_ABORTED',
      name: 'AbortError',
      message: 'waiting for something that never happens was aborted',
    });
    expect(polls).toBe(3);
  });

  it('a replica set takes a signal for its start and its waits', async () => {
    await expect(startReplicaSet({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_TESTKIT_ABORTED',
      name: 'AbortError',
    });
    const set = await startReplicaSet({ replicas: 1 });
    try {
      // A replica that never links (its master is frozen) holds the wait until the signal ends it.
      const controller = new AbortController();
      await set.master.createClient().set('k', 'v');
      set.replicas[0]?.suspend();
      const replica = set.replicas[0];
      let polled = 0;
      const info = replica?.info.bind(replica);
      // The condition for the abort: the wait has asked the frozen replica (which never answers).
      if (replica && info)
        replica.info = (section) => {
          polled++;
          return info(section);
        };
      const waiting = set.waitForSync({ timeoutMs: 600_000, signal: controller.signal });
      await waitFor('the wait to ask the frozen replica', () => polled > 0);
      controller.abort();
      await expect(waiting).rejects.toMatchObject({ code: 'ERR_TESTKIT_ABORTED', name: 'AbortError' });
      set.replicas[0]?.resume();
      await set.waitForSync({ timeoutMs: 60_000 });
    } finally {
      await set.stop();
    }
  });

  it('a cluster start ends on its signal, with every node it started stopped', async () => {
    const controller = new AbortController();
    const before = new Set(trackedPids());
    const starting = startCluster({ masters: 3, signal: controller.signal });
    await waitFor('a first node', () => trackedPids().some((pid) => !before.has(pid)), 60_000);
    controller.abort();
    await expect(starting).rejects.toMatchObject({ code: 'ERR_TESTKIT_ABORTED', name: 'AbortError' });
    await waitFor('every node to be gone', () => trackedPids().every((pid) => before.has(pid)), 30_000);
  });

  it('waitFor still says what it waited for when its bound runs out', async () => {
    await expect(waitFor('the impossible', () => false, 50, 10)).rejects.toMatchObject({
      code: 'ERR_TESTKIT_TIMEOUT',
      message: 'timed out after 50 ms waiting for the impossible',
    });
  });
});

describe('connect', () => {
  it('names the cause when a server given by URL cannot be reached, not "Connection is closed"', async () => {
    const port = await freePort();
    const err = await connectRedis(`redis://127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TESTKIT_START' });
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  });

  it('is bounded against a server that accepts the connection and never answers', async () => {
    const server = await spawnRedis();
    const hole = await startProxy({ target: server });
    hole.pause();
    try {
      const err = await connectRedis(hole.url, { connectTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_TESTKIT_START' });
      expect((err as Error).message).toBe(`cannot reach the server at 127.0.0.1:${hole.port}: no reply within 500 ms`);
      const aborted = await connectRedis(hole.url, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
      expect(aborted).toMatchObject({ code: 'ERR_TESTKIT_ABORTED', name: 'AbortError' });
    } finally {
      await hole.close();
      await server.stop();
    }
  });

  it('names a wrong password', async () => {
    const server = await spawnRedis({ password: 'right' });
    try {
      const err = await connectRedis(`redis://:wrong@127.0.0.1:${server.port}`).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/WRONGPASS/);
    } finally {
      await server.stop();
    }
  });
});

describe('logger', () => {
  it('is told when a server starts and stops', async () => {
    const logger = recordingLogger();
    const server = await spawnRedis({ logger });
    const { port } = server;
    await server.stop();
    expect(logger.lines.map((l) => [l.level, l.message])).toEqual([
      ['debug', 'redis-server started'],
      ['debug', 'redis-server stopped'],
    ]);
    expect(logger.lines[0]?.context).toMatchObject({ port, version: server.version.text });
    expect(existsSync(server.dir)).toBe(false);
  });

  it('is warned when a server would not stop and had to be killed', async () => {
    const logger = recordingLogger();
    const server = await spawnRedis({ binary: stubborn, logger });
    const pid = server.pid as number;
    await server.stop(); // SIGTERM is ignored: SIGKILL after the 5 s grace
    expect(isRunning(pid)).toBe(false);
    const warning = logger.lines.find((l) => l.level === 'warn');
    expect(warning?.message).toBe('redis-server did not end on SIGTERM within 5000 ms; killed with SIGKILL');
    expect(warning?.context).toMatchObject({ pid, port: server.port });
  });
});
