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
