import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../src/wait.ts';
import { isRunning } from './helpers.ts';

// A separate Node process starts a server through the testkit, then ends in the given way; the
// server must not outlive it.
async function orphanAfter(ending: 'exit' | 'SIGINT' | 'SIGTERM' | 'SIGKILL'): Promise<{ pid: number; dir: string }> {
  const script = `
    import { spawnRedis } from '@redis-events/testkit';
    const server = await spawnRedis();
    console.log(JSON.stringify({ pid: server.pid, dir: server.dir }));
    if (process.argv[1] === 'exit') process.exit(0);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(
    process.execPath,
    ['--conditions=@redis-events/source', '--input-type=module', '-e', script, ending],
    {
      cwd: new URL('..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
  const started = JSON.parse(line) as { pid: number; dir: string };
  if (ending !== 'exit') child.kill(ending);
  await new Promise((resolve) => child.once('exit', resolve));
  return started;
}

describe('no server outlives its owner', () => {
  it.each(['exit', 'SIGINT', 'SIGTERM', 'SIGKILL'] as const)('owner ends by %s', async (ending) => {
    const { pid, dir } = await orphanAfter(ending);
    await waitFor(`server ${pid} to end`, () => !isRunning(pid), 5_000);
    if (ending !== 'SIGKILL') expect(existsSync(dir)).toBe(false); // SIGKILL: the next run reaps the folder
  });
});

// A program that handles Ctrl-C itself (a CLI, a server with a graceful shutdown) owns its
// shutdown: the testkit must not pull its servers away from under it at the signal, only end
// them when the process exits.
describe('a program with its own signal handler', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('keeps its servers through %s until it stops them', async (signal) => {
    const script = `
      import { spawnRedis } from '@redis-events/testkit';
      process.on(process.argv[1], async () => {
        // The graceful shutdown still talks to the server...
        const pong = await server.command('PING').catch((err) => 'failed: ' + err.message);
        console.log(JSON.stringify({ pong }));
        await server.stop();
        process.exit(0);
      });
      const server = await spawnRedis();
      console.log(JSON.stringify({ pid: server.pid }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(
      process.execPath,
      ['--conditions=@redis-events/source', '--input-type=module', '-e', script, signal],
      // Its own process group, as a shell gives a job: Ctrl-C at a terminal signals the whole group.
      { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'], detached: true },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const { pid } = JSON.parse((await lines.next()).value as string) as { pid: number };
    process.kill(-(child.pid as number), signal);
    const after = JSON.parse((await lines.next()).value as string) as { pong: string };
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(after.pong).toBe('PONG');
    expect(code).toBe(0);
    await waitFor(`server ${pid} to end`, () => !isRunning(pid), 5_000);
  });
});
