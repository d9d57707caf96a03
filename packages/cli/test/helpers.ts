import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** The CLI as a real process, running the TypeScript sources. */
export function startCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): ChildProcess & { output: Promise<CliResult> } {
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
  return Object.assign(child, {
    output,
    get stdoutSoFar() {
      return stdout;
    },
  });
}

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
