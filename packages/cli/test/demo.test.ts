import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.ts';

describe('redis-events demo', () => {
  it('runs every subsystem on an embedded Redis and shuts it down', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--duration', '3']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^redis +embedded spawned (redis|valkey) \d+\.\d+\.\d+ at 127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/\nevents +handler saw order #1 /);
    expect(stdout).toMatch(/\nstreams +billing-a acked \d+-\d+: \{"orderId":1/);
    expect(stdout).toMatch(/\nstreams +billing-b acked /); // two consumers share the group's messages
    expect(stdout).toMatch(/\npubsub +subscriber heard on chat: hello #1 from the demo/);
    expect(stdout).toMatch(/\nbroker +watcher synced user\/ada v1: /);
    expect(stdout).toMatch(/\nreplica +db0 XADD demo:[0-9a-f]+:orders/);
    expect(stdout).toMatch(/\nevents +the store's newest events: #\d+, #\d+, #\d+/);
    const summary =
      /events {3}(\d+) published, (\d+) handled[\s\S]*streams {2}(\d+) sent, acked by billing-a (\d+) and billing-b (\d+)[\s\S]*pubsub {3}(\d+) published, (\d+) heard[\s\S]*broker {3}(\d+) records put, (\d+) synced/.exec(
        stdout,
      );
    if (!summary) throw new Error(`no summary in:\n${stdout}`);
    const [published, handled, sent, ackedA, ackedB, chat, heard, puts, synced] = summary.slice(1).map(Number);
    expect(handled).toBe(published);
    expect((ackedA ?? 0) + (ackedB ?? 0)).toBe(sent);
    expect(heard).toBe(chat);
    expect(synced).toBe(puts);
    expect(stdout).toMatch(/the embedded Redis is stopped; nothing is left running\n$/);
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
