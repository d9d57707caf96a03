// The lifecycle matrix (issue 14, root README "One lifecycle"): every package against the same
// faults on real servers. A package's file declares one row per scenario:
//
//   lifecycleMatrix('pubsub', {
//     'nothing listening': { operation: 'createPubSubClient()', code: 'ERR_PUBSUB_CONNECTION', withinMs: 12_000,
//       run: (env) => createPubSubClient({ url: env.nothingListening().url }) },
//     ...
//   });
//
// For each row the harness sets up the scenario (servers, a paused proxy, an ACL user: not
// tracked), then runs the row while tracking what it creates, and asserts that:
// - the row's promise rejects with a RedisEventsError of the given code (and, for aborts, named
//   'AbortError'), plus whatever the row's own `check` adds;
// - it does so within `withinMs` of the trigger (the start of the row, or the moment the row
//   calls `env.trigger()`: right before it aborts or kills the server). A bound is a behaviour
//   ("fails within connectTimeout + 2 s"), never a benchmark: make it generous;
// - once the row's cleanups ran, no timer (ref'd), socket or child process it created is left.
// After the file, it prints the matrix: one line per row with the measured time to failure.
import { createHook } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisEventsError } from '@redis-events/resp';
import { freePort, type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The scenarios of the matrix, in the order they are printed. */
export const SCENARIOS = [
  'nothing listening',
  'black hole',
  'wrong password',
  'ACL user missing a command',
  'abort mid-call',
  'close with work in flight',
  'server killed mid-call',
] as const;

export type Scenario = (typeof SCENARIOS)[number];

/** Where a client can be pointed. */
export interface Target {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/** What a row gets to build its scenario. */
export interface ScenarioEnv {
  /** A loopback port where nothing listens (connection refused). */
  nothingListening(): Promise<Target>;
  /** A proxy that accepts connections and never passes a byte either way (paused). */
  blackHole(): Promise<Target>;
  /** The password-protected server, with a wrong password. */
  wrongPassword(): Promise<Target>;
  /** A user of the plain server allowed everything but `command` (`'select'`, `'xreadgroup'`...). */
  aclUserWithout(command: string): Promise<Target>;
  /** The plain server, shared by the rows of the file (use your own keys). */
  server(): Promise<Target & { readonly redis: SpawnedRedis }>;
  /** A server of the row's own, to kill: `kill()` is SIGKILL. */
  ownServer(): Promise<Target & { readonly redis: SpawnedRedis }>;
  /**
   * Marks now as the moment the time to failure counts from: call it right before the operation
   * (a connect), or right before what makes it fail (the abort, the kill). Default: the row's start.
   */
  trigger(): void;
  /** Runs after the failure, before the leak check: close what the row opened. */
  defer(cleanup: () => unknown): void;
}

/** One row: a package's operation under one scenario. */
export interface RowSpec {
  /** What is called, for the matrix: `connect()`, `send(BLPOP)`, `close({ timeoutMs: 200 })`. */
  readonly operation: string;
  /** The `code` of the RedisEventsError the operation must fail with. */
  readonly code: string;
  /** The bound on the time from the trigger to the failure, in ms. Generous: a behaviour. */
  readonly withinMs: number;
  /** The error's `name` must be `'AbortError'` (abort rows). Default: true for 'abort mid-call'. */
  readonly abortError?: boolean | undefined;
  /** Builds what the row needs that must not count as the row's own (servers, users...). */
  readonly setup?: ((env: ScenarioEnv) => Promise<void>) | undefined;
  /** Runs the operation; the returned promise must reject. */
  readonly run: (env: ScenarioEnv) => Promise<unknown>;
  /** More assertions on the error (`abandoned`, the message names the address...). */
  readonly check?: ((err: RedisEventsError) => void) | undefined;
  /** Why the row does not apply to this package, instead of `run` (printed in the matrix). */
  readonly notApplicable?: string | undefined;
}

/** A measured row of the matrix. */
export interface MatrixRow {
  readonly pkg: string;
  readonly scenario: Scenario;
  readonly operation: string;
  readonly code: string;
  readonly ms: number | undefined;
  readonly withinMs: number;
  readonly note?: string | undefined;
}

// -------------------------------------------------------------------------------------------------
// What a row leaves behind

interface Tracked {
  readonly type: string;
  readonly stack: string;
  readonly resource: { hasRef?: () => boolean; _destroyed?: boolean };
}

const TRACKED_TYPES = new Set(['Timeout', 'TCPWRAP', 'TLSWRAP', 'PIPEWRAP', 'PROCESSWRAP']);

/**
 * Records the timers, sockets and child processes created from now on, until they are destroyed.
 * `left()` lists those still alive: timers that are ref'd and not cleared (a cleared timer's
 * destroy hook may run late, so `_destroyed` is checked too), sockets and processes not closed.
 */
export function trackResources(): { left(): string[]; stop(): void } {
  const live = new Map<number, Tracked>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (!TRACKED_TYPES.has(type)) return;
      const stack = (new Error().stack ?? '').split('\n').slice(3, 9).join('\n');
      live.set(id, { type, stack, resource: resource as Tracked['resource'] });
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return {
    left: () =>
      [...live.values()]
        .filter(({ type, resource }) =>
          type === 'Timeout' ? resource.hasRef?.() !== false && resource._destroyed !== true : true,
        )
        .map(({ type, stack }) => `${type}\n${stack}`),
    stop: () => hook.disable(),
  };
}

/** Waits until `left()` is empty (handles close a few ticks after their owners), or returns what is left. */
async function settled(tracker: { left(): string[] }, ms = 3000): Promise<string[]> {
  const end = performance.now() + ms;
  for (;;) {
    const left = tracker.left();
    if (left.length === 0 || performance.now() > end) return left;
    await sleep(20);
  }
}

// -------------------------------------------------------------------------------------------------
// Servers shared by the rows of a file

interface Shared {
  plain: SpawnedRedis;
  secured: SpawnedRedis;
}

const PASSWORD = 'lifecycle-secret';
let users = 0;

function targetOf(host: string, port: number, auth?: { username?: string; password?: string }): Target {
  const user = auth?.username ? encodeURIComponent(auth.username) : '';
  const pass = auth?.password ? `:${encodeURIComponent(auth.password)}` : '';
  const at = user || pass ? `${user}${pass}@` : '';
  return { host, port, url: `redis://${at}${host}:${port}`, ...auth };
}

function environment(
  shared: () => Shared,
  own: { proxies: TcpProxy[]; servers: SpawnedRedis[]; cleanups: (() => unknown)[]; triggered: number | undefined },
): ScenarioEnv {
  return {
    async nothingListening() {
      return targetOf('127.0.0.1', await freePort());
    },
    async blackHole() {
      const proxy = await startProxy({ target: shared().plain });
      own.proxies.push(proxy);
      proxy.pause();
      return targetOf('127.0.0.1', proxy.port);
    },
    async wrongPassword() {
      const server = shared().secured;
      return targetOf(server.host, server.port, { password: 'not-the-password' });
    },
    async aclUserWithout(command: string) {
      const server = shared().plain;
      const user = await server.createUser({
        username: `lifecycle-${++users}`,
        password: 'pw',
        rules: ['~*', '&*', '+@all', `-${command}`],
      });
      return targetOf(server.host, server.port, { username: user.username, password: user.password });
    },
    async server() {
      const server = shared().plain;
      return { ...targetOf(server.host, server.port), redis: server };
    },
    async ownServer() {
      const server = await spawnRedis();
      own.servers.push(server);
      return { ...targetOf(server.host, server.port), redis: server };
    },
    trigger() {
      own.triggered = performance.now();
    },
    defer(cleanup) {
      own.cleanups.push(cleanup);
    },
  };
}

/** Runs `work`, swallowing its failure: cleanups must all run. */
async function quietly(work: () => unknown): Promise<void> {
  try {
    await work();
  } catch {
    // a cleanup that fails does not hide the row's result; leaks are checked after
  }
}

// -------------------------------------------------------------------------------------------------
// The matrix

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '-';
  return ms < 10 ? ms.toFixed(1) : String(Math.round(ms));
}

/** The matrix as a Markdown table. */
export function formatMatrix(rows: readonly MatrixRow[]): string {
  const lines = [
    '| package | scenario | operation | code | time to failure (ms) | bound (ms) |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.pkg} | ${r.scenario} | ${r.operation} | ${r.note ?? `\`${r.code}\``} | ${formatMs(r.ms)} | ${r.note ? '-' : r.withinMs} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Declares the lifecycle rows of a package: one test per scenario (every scenario must be
 * given, as a row or with `notApplicable`), and the matrix printed after them.
 */
export function lifecycleMatrix(pkg: string, rows: Readonly<Record<Scenario, RowSpec>>): void {
  const measured: MatrixRow[] = [];
  let shared: Shared | undefined;

  describe(`${pkg}: the lifecycle matrix`, () => {
    beforeAll(async () => {
      const [plain, secured] = await Promise.all([spawnRedis(), spawnRedis({ password: PASSWORD })]);
      // The testkit's own admin connections open now, not inside a tracked row.
      await Promise.all([plain.command('PING'), secured.command('PING')]);
      shared = { plain, secured };
    });
    afterAll(async () => {
      await Promise.all([shared?.plain.stop(), shared?.secured.stop()]);
      console.log(`\nlifecycle matrix: ${pkg}\n${formatMatrix(measured)}\n`);
    });

    for (const scenario of SCENARIOS) {
      const row = rows[scenario];
      const reason = row.notApplicable;
      if (reason !== undefined) {
        it(`${scenario}: does not apply (${reason})`, () => {
          expect(reason.trim()).not.toBe('');
          const note = `n/a: ${reason}`;
          measured.push({ pkg, scenario, operation: row.operation, code: row.code, ms: undefined, withinMs: 0, note });
        });
        continue;
      }
      it(`${scenario}: ${row.operation} fails with ${row.code} within ${row.withinMs} ms and leaves nothing behind`, async () => {
        const own = {
          proxies: [] as TcpProxy[],
          servers: [] as SpawnedRedis[],
          cleanups: [] as (() => unknown)[],
          triggered: undefined as number | undefined,
        };
        const env = environment(() => {
          if (!shared) throw new Error('the shared servers are not up');
          return shared;
        }, own);
        await row.setup?.(env);
        const tracker = trackResources();
        let failure: unknown;
        let ms: number | undefined;
        let left: string[] = [];
        try {
          const started = performance.now();
          try {
            await row.run(env);
          } catch (err) {
            failure = err;
          }
          ms = performance.now() - (own.triggered ?? started);
          for (const cleanup of own.cleanups.reverse()) await quietly(cleanup);
          for (const proxy of own.proxies) await quietly(() => proxy.close());
          for (const server of own.servers) await quietly(() => server.stop());
          left = await settled(tracker);
        } finally {
          tracker.stop();
        }
        measured.push({ pkg, scenario, operation: row.operation, code: row.code, ms, withinMs: row.withinMs });
        expect(failure, `${row.operation} did not fail`).toBeDefined();
        expect(failure, `${String(failure)} is not a RedisEventsError`).toBeInstanceOf(RedisEventsError);
        const err = failure as RedisEventsError;
        expect({ code: err.code, message: err.message }).toMatchObject({ code: row.code });
        if (row.abortError ?? scenario === 'abort mid-call') expect(err.name).toBe('AbortError');
        row.check?.(err);
        expect(ms, `time to failure ${formatMs(ms)} ms, bound ${row.withinMs} ms`).toBeLessThanOrEqual(row.withinMs);
        expect(left, 'timers, sockets or processes left behind').toEqual([]);
      });
    }
  });
}
