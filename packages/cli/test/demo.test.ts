import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, runCli, startCli, waitUntil } from './helpers.ts';

describe('redis-events demo', { timeout: CLI_TEST_TIMEOUT }, () => {
  it('runs every subsystem on an embedded Redis and shuts it down', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--duration', '3']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^redis +starting an embedded Redis\.\.\.\nredis +embedded spawned (redis|valkey) \d+\.\d+\.\d+ at 127\.0\.0\.1:\d+/,
    );
    expect(stdout).toMatch(/\nevents +handler saw order #1 /);
    expect(stdout).toMatch(/\nstreams +billing-a acked \d+-\d+: \{"orderId":1/);
    expect(stdout).toMatch(/\nstreams +billing-b acked /); // two consumers share the group's messages
    expect(stdout).toMatch(/\npubsub +subscriber heard on chat: hello #1 from the demo/);
    expect(stdout).toMatch(/\nbroker +watcher synced user\/ada v1: /);
    expect(stdout).toMatch(/\nreplica +db0 XADD demo:[0-9a-f]+:orders/);
    expect(stdout).toMatch(/\nevents +the store's newest events: #\d+, #\d+, #\d+/);
    const summary =
      /events +(\d+) order events? published through the Mediator, (\d+) handled[\s\S]*streams +(\d+) messages? sent to a topic; the group's two consumers shared them: billing-a acked (\d+), billing-b (\d+)[\s\S]*pubsub +(\d+) chat messages? published, (\d+) heard[\s\S]*broker +(\d+) records? put with versions, (\d+) synced/.exec(
        stdout,
      );
    if (!summary) throw new Error(`no summary in:\n${stdout}`);
    const [published, handled, sent, ackedA, ackedB, chat, heard, puts, synced] = summary.slice(1).map(Number);
    expect(handled).toBe(published);
    expect((ackedA ?? 0) + (ackedB ?? 0)).toBe(sent);
    expect(heard).toBe(chat);
    expect(synced).toBe(puts);
    expect(stdout).not.toMatch(/\b1 (records|messages|order events|chat messages|writes)\b/);
    expect(stdout).toMatch(/the embedded Redis is stopped; nothing is left running\n$/);
  });

  it.each([
    ['SIGINT', 130, 'Ctrl-C'],
    ['SIGTERM', 143, 'SIGTERM'],
  ] as const)('stops on %s with a summary, its embedded Redis stopped', async (signal, exitCode, said) => {
    const cli = startCli(['demo']);
    await waitUntil(() => /\nstreams +billing-. acked/.test(cli.stdoutSoFar), 60_000);
    const port = Number(/at 127\.0\.0\.1:(\d+)/.exec(cli.stdoutSoFar)?.[1]);
    cli.kill(signal);
    const { code, stdout, stderr } = await cli.output;
    expect(stderr).toBe('');
    expect(stdout).toMatch(new RegExp(`what happened in \\d+ s, until ${said}\\n`));
    expect(stdout).toMatch(/the embedded Redis is stopped; nothing is left running\n$/);
    expect(code).toBe(exitCode);
    // Nothing listens on its port any more.
    const { createConnection } = await import('node:net');
    const refused = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  it('stops on Ctrl-C while its embedded Redis starts, and that server is killed', async () => {
    // A server that never becomes ready (it writes its pid, then waits): the stop comes mid-start.
    const dir = mkdtempSync(join(tmpdir(), 'cli-demo-start-'));
    const fake = join(dir, 'redis-server');
    const pidFile = join(dir, 'pid');
    writeFileSync(
      fake,
      `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Redis server v=7.2.0 sha=0 malloc=libc bits=64"; exit 0; fi\necho $$ > '${pidFile}'\nexec sleep 600\n`,
    );
    chmodSync(fake, 0o755);
    try {
      const cli = startCli(['demo'], { REDIS_SERVER_BIN: fake, REDIS_SERVER: '', REDIS_SERVERS_DIR: '' });
      await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 60_000);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      cli.kill('SIGINT');
      const { code, stdout, stderr } = await cli.output;
      expect(stdout).toBe('redis    starting an embedded Redis...\n');
      expect(stderr).toBe('demo stopped by Ctrl-C while starting; the embedded Redis is stopped\n');
      expect(code).toBe(130);
      await waitUntil(() => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails at once, naming the cause, when --url leads nowhere', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--url', 'redis://127.0.0.1:1']);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      'redis-events demo: cannot connect to redis://127.0.0.1:1: connection refused (nothing listens there)\n',
    );
    expect(code).toBe(1);
  });

  describe('with --url', () => {
    let server: SpawnedRedis;
    beforeAll(async () => {
      server = await spawnRedis();
    });
    afterAll(() => server.stop());

    it('stays in its own namespace, leaves other keys alone and deletes its own', async () => {
      const client = server.createClient();
      await client.set('someone-else', 'untouched');
      await client.xadd('their:stream', '*', 'f', 'v');
      const { code, stdout, stderr } = await runCli(['demo', '--duration', '2', '--url', server.url]);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toMatch(/everything lives under demo:[0-9a-f]+:\* and \{demo-[0-9a-f]+\}:\*/);
      expect(stdout).toMatch(/\nreplica +db0 XADD demo:/);
      expect(stdout).not.toMatch(/their:stream|someone-else/);
      expect(stdout).toMatch(/the demo's keys are deleted from redis:\/\/127\.0\.0\.1/);
      expect((await client.keys('*')).sort()).toEqual(['someone-else', 'their:stream']);
      expect(await client.get('someone-else')).toBe('untouched');
    });
  });
});
