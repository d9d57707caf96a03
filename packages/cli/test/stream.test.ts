import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, jsonLines, runCli, startCli, waitUntil } from './helpers.ts';

describe('redis-events stream send / recv', { timeout: CLI_TEST_TIMEOUT }, () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('sends arguments with metadata and prints their ids; recv from 0 gets them in order and acks', async () => {
    const send = await runCli([
      'stream',
      'send',
      'orders',
      'one',
      'two',
      'three',
      '-m',
      'source=cli',
      '--url',
      server.url,
    ]);
    expect(send.code).toBe(0);
    const ids = (jsonLines(send.stdout) as { id: string }[]).map((l) => l.id);
    expect(ids).toHaveLength(3);
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    expect(send.stderr).toMatch(/sent 3 messages to orders/);

    const recv = await runCli([
      'stream',
      'recv',
      'orders',
      '--group',
      'g1',
      '--from',
      '0',
      '--count',
      '3',
      '--url',
      server.url,
    ]);
    expect(recv.code).toBe(0);
    const messages = jsonLines(recv.stdout) as {
      id: string;
      body: string;
      metadata: Record<string, string>;
      deliveryAttempt: number;
    }[];
    expect(messages.map((m) => m.body)).toEqual(['one', 'two', 'three']);
    expect(messages.map((m) => m.id)).toEqual(ids);
    expect(messages[0]).toMatchObject({ metadata: { source: 'cli' }, deliveryAttempt: 1 });
    const pending = (await server.command('XPENDING', 'orders', 'g1')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0); // every message acknowledged
  });

  it('sends one message per line of stdin', async () => {
    const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--conditions=@redis-events/source', bin, 'stream', 'send', 'lines', '--url', server.url],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stdin.end(`${Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n')}\n`);
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(jsonLines(out)).toHaveLength(500);
    expect(await server.command('XLEN', 'lines')).toBe(500);
    const last = (await server.command('XREVRANGE', 'lines', '+', '-', 'COUNT', 1)) as [string, string[]][];
    expect(last[0]?.[1]).toContain('line 499');
  });

  it('receives live messages with --no-ack until Ctrl-C, leaving them pending', async () => {
    const cli = startCli(['stream', 'recv', 'live', '--group', 'g2', '--no-ack', '--pretty', '--url', server.url]);
    const client = server.createClient();
    // The group is created at $ when recv starts: wait for it, then send.
    for (let i = 0; i < 100; i++) {
      const groups = (await client.call('XINFO', 'GROUPS', 'live').catch(() => [])) as unknown[];
      if (groups.length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await runCli(['stream', 'send', 'live', 'hello', '--url', server.url]);
    await waitUntil(() => cli.stdoutSoFar.includes('hello')).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${cli.stderrSoFar}; stdout: ${cli.stdoutSoFar}`);
    });
    cli.kill('SIGINT');
    const { code, stdout } = await cli.output;
    expect(code).toBe(130);
    expect(stdout).toMatch(/^\d+-\d+ hello\n$/);
    const pending = (await server.command('XPENDING', 'live', 'g2')) as [number, ...unknown[]];
    expect(pending[0]).toBe(1);
  });

  it('reports a missing stream with --no-create, and bad metadata', async () => {
    const missing = await runCli(['stream', 'send', 'absent', 'x', '--no-create', '--url', server.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/redis-events stream send: /);
    const bad = await runCli(['stream', 'send', 'orders', 'x', '-m', 'novalue', '--url', server.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--metadata takes key=value/);
  });
});
