import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Every process the testkit starts is recorded three ways, so none outlives the test run:
// 1. in memory, ended by pid on process exit, and on SIGINT/SIGTERM/SIGHUP when nothing else
//    handles the signal (a program that does owns its shutdown: its servers stay up until it
//    stops them or exits);
// 2. on Linux, started under `setpriv --pdeathsig KILL`, so the kernel kills it if the thread that
//    spawned it dies (a runner killed with SIGKILL, a vitest worker torn down);
// 3. in a pid file, so the next run reaps what a crashed run left behind.

const registryDir = join(tmpdir(), 'redis-events-testkit');
const live = new Map<number, { child: ChildProcess; file: string; dirs: string[] }>();
let hooked = false;
let reaped = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function looksLikeServer(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    return /(redis|valkey)-server/.test(cmdline);
  } catch {
    return false;
  }
}

/** Ends processes left by test runs that died without cleaning up. Runs once per process. */
function reapStale(): void {
  if (reaped) return;
  reaped = true;
  let files: string[];
  try {
    files = readdirSync(registryDir);
  } catch {
    return;
  }
  for (const name of files) {
    const file = join(registryDir, name);
    try {
      const entry = JSON.parse(readFileSync(file, 'utf8')) as {
        owner: number;
        pid: number;
        dirs?: string[] | undefined;
      };
      if (alive(entry.owner)) continue;
      if (alive(entry.pid) && looksLikeServer(entry.pid)) process.kill(entry.pid, 'SIGKILL');
      for (const dir of entry.dirs ?? []) rmSync(dir, { recursive: true, force: true });
      unlinkSync(file);
    } catch {
      // A file being written or removed by another run: leave it to that run.
    }
  }
}

function killAllSync(): void {
  for (const [pid, entry] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    for (const dir of entry.dirs) rmSync(dir, { recursive: true, force: true });
    rmSync(entry.file, { force: true });
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else handles the signal: a graceful shutdown that may still need the servers. They
  // end with the process ('exit' below), or by pdeathsig if it dies harder.
  if (process.listenerCount(signal) > 1) return;
  // Nobody does: the default action (death by the signal) follows, with the servers ended first.
  killAllSync();
  process.off(signal, onSignal);
  process.kill(process.pid, signal);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
}

let setprivPath: string | null | undefined;
function setpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform === 'linux') {
    for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
      try {
        accessSync(candidate, constants.X_OK);
        setprivPath = candidate;
        break;
      } catch {
        // try the next one
      }
    }
  }
  return setprivPath;
}

/** Options of {@link spawnTracked}. */
export interface SpawnTrackedOptions {
  readonly cwd?: string | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Folders removed when the process is reaped after a crash of the test run. */
  readonly dirs?: readonly string[] | undefined;
}

/**
 * Spawns a long-running process that the testkit ends at teardown whatever happens. Standard
 * input is closed; stdout and stderr are pipes for the caller to read. It runs in a session of
 * its own, so that a Ctrl-C typed at the terminal reaches the program that owns it (which then
 * stops it in order) and not the server directly.
 */
export function spawnTracked(bin: string, args: readonly string[], options: SpawnTrackedOptions = {}): ChildProcess {
  reapStale();
  hookExit();
  const guard = setpriv();
  const child = guard
    ? spawn(guard, ['--pdeathsig', 'KILL', '--', bin, ...args], {
        cwd: options.cwd,
        env: options.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
    : spawn(bin, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid === undefined) return child; // spawn failed; the 'error' event tells why
  mkdirSync(registryDir, { recursive: true });
  const file = join(registryDir, `${process.pid}-${pid}.json`);
  const dirs = [...(options.dirs ?? [])];
  writeFileSync(file, JSON.stringify({ owner: process.pid, pid, bin, dirs }));
  live.set(pid, { child, file, dirs });
  child.once('exit', () => {
    const entry = live.get(pid);
    if (entry?.child === child) {
      live.delete(pid);
      rmSync(file, { force: true });
    }
  });
  return child;
}

/** Pids of the processes this process has started and not yet seen exit. */
export function trackedPids(): number[] {
  return [...live.keys()];
}

/**
 * Sends `signal` to a child and resolves once it has exited; escalates to SIGKILL after
 * `graceMs` (calling `onKill` first).
 */
export async function endProcess(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
  onKill?: (() => void) | undefined,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => {
    if (signal !== 'SIGKILL') onKill?.();
    child.kill('SIGKILL');
  }, graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}
