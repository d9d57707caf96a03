// The harness's leak tracker finds what a row leaves behind, and nothing else.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { formatMatrix, trackResources } from './harness.ts';

async function settle(tracker: { left(): string[] }): Promise<string[]> {
  for (let i = 0; i < 100 && tracker.left().length > 0; i++) await sleep(20);
  return tracker.left();
}

describe('trackResources', () => {
  it("reports a ref'd timer until it is cleared, and not an unref'd one", async () => {
    const tracker = trackResources();
    try {
      const timer = setTimeout(() => {}, 60_000);
      const quiet = setTimeout(() => {}, 60_000).unref();
      expect(tracker.left().filter((l) => l.startsWith('Timeout'))).toHaveLength(1);
      clearTimeout(timer);
      clearTimeout(quiet);
      expect(await settle(tracker)).toEqual([]);
    } finally {
      tracker.stop();
    }
  });

  it('reports a socket until it is closed', async () => {
    const server = createServer((socket) => socket.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const tracker = trackResources();
    try {
      const socket = netConnect({ port, host: '127.0.0.1' });
      socket.on('error', () => {});
      await once(socket, 'connect');
      expect(tracker.left().some((l) => l.startsWith('TCPWRAP'))).toBe(true);
      socket.destroy();
      expect(await settle(tracker)).toEqual([]);
    } finally {
      tracker.stop();
      server.close();
    }
  });

  it('reports a child process until it exited', async () => {
    const tracker = trackResources();
    try {
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
      expect(tracker.left().some((l) => l.startsWith('PROCESSWRAP'))).toBe(true);
      child.kill('SIGKILL');
      await once(child, 'exit');
      expect(await settle(tracker)).toEqual([]);
    } finally {
      tracker.stop();
    }
  });
});

describe('formatMatrix', () => {
  it('prints one line per row, with the time and the bound', () => {
    const text = formatMatrix([
      {
        pkg: 'resp',
        scenario: 'black hole',
        operation: 'connect()',
        code: 'ERR_RESP_CONNECT',
        ms: 1012.4,
        withinMs: 3000,
      },
      { pkg: 'x', scenario: 'abort mid-call', operation: 'y()', code: 'ERR_X', ms: 0.42, withinMs: 1000 },
      {
        pkg: 'z',
        scenario: 'wrong password',
        operation: 'z()',
        code: 'ERR_Z',
        ms: undefined,
        withinMs: 0,
        note: 'n/a: no password',
      },
    ]);
    expect(text.split('\n')).toEqual([
      '| package | scenario | operation | code | time to failure (ms) | bound (ms) |',
      '|---|---|---|---|---|---|',
      '| resp | black hole | connect() | `ERR_RESP_CONNECT` | 1012 | 3000 |',
      '| x | abort mid-call | y() | `ERR_X` | 0.4 | 1000 |',
      '| z | wrong password | z() | n/a: no password | - | - |',
    ]);
  });
});
