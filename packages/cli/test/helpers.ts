import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** The CLI as a real process, running the TypeScript sources. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, ['--conditions=@redis-events/source', bin, ...args], {
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const output = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
  // Getters, not values: Object.assign would copy what was printed so far, once.
  return Object.defineProperties(Object.assign(child, { output }), {
    stdoutSoFar: { get: () => stdout },
    stderrSoFar: { get: () => stderr },
  }) as RunningCli;
}

/** A CLI process still running, with what it printed so far. */
export type RunningCli = ChildProcess & {
  output: Promise<CliResult>;
  readonly stdoutSoFar: string;
  readonly stderrSoFar: string;
};

/** What a finished CLI process printed and returned. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).output;
}

/** JSON lines of stdout. */
export function jsonLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as unknown);
}

/**
 * The timeout of a test that runs the CLI as processes: each start of Node takes seconds on a
 * machine whose cores are shared by many jobs, and some tests start several. The tests wait for
 * conditions; this bound only ends a test that hangs.
 */
export const CLI_TEST_TIMEOUT = 180_000;

/** Polls until `check` holds (at most `timeoutMs`). */
export async function waitUntil(check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the CLI');
    await new Promise((r) => setTimeout(r, 25));
  }
}
