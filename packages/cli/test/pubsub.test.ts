import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, jsonLines, runCli, startCli, waitUntil } from './helpers.ts';

describe('redis-events sub / pub', { timeout: CLI_TEST_TIMEOUT }, () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  async function subscribers(channel: string): Promise<number> {
    const reply = (await server.command('PUBSUB', 'NUMSUB', channel)) as [string, number];
    return reply[1];
  }

  it('receives channel and pattern messages published by pub, then exits after --count', async () => {
    const sub = startCli(['sub', 'orders', 'audit:*', '--count', '3', '--url', server.url]);
    for (let i = 0; i < 100 && (await subscribers('orders')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const pub = await runCli(['pub', 'orders', 'one', 'two', '--url', server.url]);
    expect(pub.code).toBe(0);
    expect(jsonLines(pub.stdout)).toEqual([{ receivers: 1 }, { receivers: 1 }]);
    // The pattern subscription is confirmed after the channel one: wait for it too.
    for (let i = 0; i < 100; i++) {
      if (((await server.command('PUBSUB', 'NUMPAT')) as number) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await runCli(['pub', 'audit:login', 'ada', '--url', server.url]);
    const { code, stdout } = await sub.output;
    expect(code).toBe(0);
    expect(jsonLines(stdout)).toEqual([
      { kind: 'message', channel: 'orders', payload: 'one' },
      { kind: 'message', channel: 'orders', payload: 'two' },
      { kind: 'pmessage', channel: 'audit:login', pattern: 'audit:*', payload: 'ada' },
    ]);
  });

  it('publishes stdin lines; sub prints pretty lines and stops cleanly on Ctrl-C', async () => {
    const sub = startCli(['sub', 'logs', '--pretty', '--url', server.url]);
    for (let i = 0; i < 100 && (await subscribers('logs')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const pub = spawn(
      process.execPath,
      [
        '--conditions=@redis-events/source',
        fileURLToPath(new URL('../src/bin.ts', import.meta.url)),
        'pub',
        'logs',
        '--url',
        server.url,
      ],
      { stdio: ['pipe', 'ignore', 'inherit'] },
    );
    pub.stdin.end('first line\nsecond line\n');
    await new Promise((resolve) => pub.once('close', resolve));
    await waitUntil(() => sub.stdoutSoFar.includes('second line'));
    sub.kill('SIGINT');
    const { code, stdout, stderr } = await sub.output;
    expect(code).toBe(130);
    expect(stdout).toBe('logs first line\nlogs second line\n');
    expect(stderr).toBe('sub stopped by Ctrl-C: 2 messages received\n');
    expect(await subscribers('logs')).toBe(0); // the subscription was closed, not abandoned
  });

  it('restores the subscription after the server restarts and reports the gap', async () => {
    const sub = startCli(['sub', 'resilient', '--url', server.url]);
    for (let i = 0; i < 100 && (await subscribers('resilient')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await server.restart();
    for (let i = 0; i < 200 && (await subscribers('resilient')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await runCli(['pub', 'resilient', 'after', '--url', server.url]);
    await waitUntil(() => sub.stdoutSoFar.includes('after'));
    sub.kill('SIGINT');
    const { stdout, stderr } = await sub.output;
    expect(jsonLines(stdout)).toEqual([{ kind: 'message', channel: 'resilient', payload: 'after' }]);
    expect(stderr).toMatch(/reconnecting/);
    expect(stderr).toMatch(/gap/);
  });

  it('prints a payload that is not UTF-8 as base64, as tail does, and says how many it got on Ctrl-C', async () => {
    const sub = startCli(['sub', 'bytes', '--url', server.url]);
    for (let i = 0; i < 100 && (await subscribers('bytes')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const client = server.createClient();
    await client.publish('bytes', Buffer.from([0xff, 0xfe, 0x41]));
    await client.publish('bytes', 'héllo');
    await waitUntil(() => sub.stdoutSoFar.includes('héllo'));
    sub.kill('SIGTERM');
    const { code, stdout, stderr } = await sub.output;
    expect(jsonLines(stdout)).toEqual([
      { kind: 'message', channel: 'bytes', payload: { base64: Buffer.from([0xff, 0xfe, 0x41]).toString('base64') } },
      { kind: 'message', channel: 'bytes', payload: 'héllo' },
    ]);
    expect(stderr).toBe('sub stopped by SIGTERM: 2 messages received\n');
    expect(code).toBe(143);
  });

  it('says what is wrong', async () => {
    expect((await runCli(['sub'])).code).toBe(2);
    const down = await runCli(['pub', 'x', 'y', '--url', 'redis://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/redis-events pub: /);
  });
});
